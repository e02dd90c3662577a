"""Where LoRA Ledger writes what a user asked for, checked before a byte is written.

A destination of the wrong kind (a file where a directory is wanted, a directory, FIFO
or device where a file is), or one reached through a symlink -- the path itself or its
parent -- is refused with one line: a symlink would silently send the write somewhere
else (another user's directory, a served model). Resolve the link yourself and pass the
real path if that is what you mean.
"""

from __future__ import annotations

import stat
from pathlib import Path

from loraledger.errors import InputError
from loraledger.inputs import kind_of


def _not_through_a_link(path: Path) -> None:
    for candidate, what in ((path, "it"), (path.parent, "its parent folder")):
        if candidate.is_symlink():
            raise InputError(
                f"{what} is a symlink (to {candidate.readlink()}); LoRA Ledger does not write "
                "through links: pass the real path",
                path=path,
            )
    if path.parent.exists() and not path.parent.is_dir():
        raise InputError("its parent is not a directory", path=path)


def replaceable(path: Path) -> Path:
    """``path`` as a file that a write may rename over: absent, a regular file or a link
    (the rename replaces the link, never what it points to). A directory, FIFO, socket or
    device is refused -- renaming over ``/dev/null`` as root would replace the device with
    a file, and every other program writing to it would then fail."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return path
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise InputError(
            f"is {kind_of(mode)}, not a regular file; pass the name of a file to write",
            path=path,
        )
    return path


def output_file(path: Path) -> Path:
    """``path`` as the name of a file to (re)write: new, or an existing regular file
    (not a link, nor anything that :func:`replaceable` refuses)."""
    _not_through_a_link(path)
    return replaceable(path)


def output_directory(path: Path) -> Path:
    """``path`` as a directory to write into: new, or an existing directory."""
    _not_through_a_link(path)
    if path.exists() and not path.is_dir():
        raise InputError("is a file, not a directory; pass a directory", path=path)
    return path


__all__ = ["output_directory", "output_file", "replaceable"]
