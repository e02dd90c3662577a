"""Where LoRA Ledger writes (loraledger/paths.py, loraledger/atomic.py): a rename never
replaces a device, a FIFO, a socket or a directory; a link is replaced, never followed."""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

import pytest

from loraledger.atomic import write_atomically
from loraledger.errors import InputError
from loraledger.paths import output_file, replaceable


def nodes(directory: Path) -> list[tuple[Path, str]]:
    made = [(directory / "fifo", "a named pipe (FIFO)"), (directory / "dir", "a directory")]
    os.mkfifo(made[0][0])
    made[1][0].mkdir()
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(directory / "sock"))
    made.append((directory / "sock", "a socket"))
    if os.geteuid() == 0:  # a node like /dev/null's, made here rather than risking the real one
        os.mknod(directory / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        made.append((directory / "null", "a character device"))
    return made


def test_a_write_never_replaces_a_special_file(tmp_path: Path) -> None:
    for node, kind in nodes(tmp_path):
        before = node.lstat()
        for check in (replaceable, output_file, lambda p: write_atomically(p, b"x")):
            with pytest.raises(InputError, match=re.escape(f"is {kind}, not a regular file")):
                check(node)
        after = node.lstat()
        assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_a_file_or_a_new_name_is_written_and_a_link_is_replaced_not_followed(
    tmp_path: Path,
) -> None:
    write_atomically(tmp_path / "new", "one")
    write_atomically(tmp_path / "new", "two")
    assert (tmp_path / "new").read_text() == "two"
    target = tmp_path / "target"
    target.write_text("kept")
    link = tmp_path / "link"
    link.symlink_to(target)
    write_atomically(link, "written")
    assert not link.is_symlink() and link.read_text() == "written"
    assert target.read_text() == "kept"
    link.unlink()
    link.symlink_to(target)
    with pytest.raises(InputError, match="is a symlink"):
        output_file(link)  # what a user names is never a link
