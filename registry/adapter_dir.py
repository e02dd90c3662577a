"""Validating a Hugging Face PEFT adapter directory before it enters the registry.

A directory is accepted only if it holds regular files (no symlinks, no special files,
no git metadata), a valid ``adapter_config.json`` and an ``adapter_model.safetensors``
whose header parses and covers the file. Pickle-based weights (``.bin``, ``.pt``,
``.pkl``, ...) are refused by name and never opened, let alone unpickled; any other file
whose content is a pickle (a protocol 2+ header, or a zip archive holding a ``.pkl`` as
``torch.save`` writes) is refused whatever its name, by its first bytes -- unless it is
laid out as safetensors (a header length, a JSON header, offsets inside the file), whose
first bytes can look like a pickle's. File count and
sizes are bounded (:class:`Limits`), and names with invisible or direction-changing
characters are refused: two files must never look the same in a listing.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from loraledger.errors import InputError
from loraledger.inputs import is_invisible, loads_json

from .store import copy_hashing, in_parallel, sha256_stream

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True)
class Limits:
    """How much an adapter directory may hold (``adapters register --max-file-bytes``,
    ``--max-files``, ``--max-total-bytes`` raise them)."""

    max_files: int = 1000
    max_file_bytes: int = 2**30
    max_total_bytes: int = 4 * 2**30


PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"})
# model-signing's CLI leaves these out of a signature by default; a file that is stored
# but not signed would be a hole, so they are refused instead.
GIT_METADATA = frozenset({".git", ".gitattributes", ".gitignore", ".github", ".gitmodules"})


class AdapterConfig(BaseModel):
    """The fields of ``adapter_config.json`` the registry relies on; others are kept."""

    model_config = ConfigDict(extra="allow")

    peft_type: str = Field(min_length=1, description="e.g. LORA")
    base_model_name_or_path: str | None = None
    r: int | None = Field(default=None, gt=0)
    lora_alpha: float | None = None
    target_modules: list[str] | str | None = None

    @model_validator(mode="after")
    def _lora_needs_rank(self) -> AdapterConfig:
        if self.peft_type.upper() == "LORA" and self.r is None:
            raise ValueError("a LORA adapter needs 'r' (the rank), a positive integer")
        return self


@dataclass(frozen=True)
class ScannedFile:
    relpath: str  # '/'-separated
    size_bytes: int


@dataclass(frozen=True)
class AdapterDirectory:
    """A scanned adapter directory: its files, in sorted order."""

    root: Path
    files: tuple[ScannedFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size_bytes for f in self.files)

    @classmethod
    def scan(cls, root: Path, limits: Limits | None = None) -> AdapterDirectory:
        """List the directory's files, refusing anything that may not be registered
        (beyond ``limits``: more files, a larger file or more bytes in all)."""
        limits = limits or Limits()
        if not root.exists():
            raise InputError("adapter directory does not exist", path=root)
        if root.is_symlink() or not root.is_dir():
            raise InputError(
                "is not a directory; pass the PEFT adapter directory (the one holding "
                f"{CONFIG_FILE})",
                path=root,
            )
        files = []
        for found in _walk(root, root):
            files.append(found)
            if len(files) > limits.max_files:
                raise InputError(
                    f"holds more than {limits.max_files} files; an adapter has a few (raise "
                    "the limit with --max-files)",
                    path=root,
                )
            if found.size_bytes > limits.max_file_bytes:
                raise InputError(
                    f"{found.relpath!r} is {found.size_bytes:,} bytes, over the limit of "
                    f"{limits.max_file_bytes:,} for one file (raise it with --max-file-bytes)",
                    path=root,
                )
        total = sum(f.size_bytes for f in files)
        if total > limits.max_total_bytes:
            raise InputError(
                f"holds {total:,} bytes, over the limit of {limits.max_total_bytes:,} (raise it "
                "with --max-total-bytes)",
                path=root,
            )
        files.sort(key=lambda f: f.relpath)
        names = {f.relpath for f in files}
        for required in (CONFIG_FILE, WEIGHTS_FILE):
            if required not in names:
                raise InputError(
                    f"{required} is missing; save the adapter with "
                    "model.save_pretrained(DIR, safe_serialization=True)",
                    path=root,
                )
        return cls(root, tuple(files))

    def copy_to(
        self, dest: Path, on_bytes: Callable[[int], None] | None = None, *, link: bool = False
    ) -> dict[str, str]:
        """Copy every scanned file to ``dest``, never following a symlink planted since
        the scan (the copy is what gets validated, signed and stored), and return the
        sha256 of each copy as written, by relative path: one read of each byte, files in
        parallel. ``link``: hard-link each file instead where the file system allows (no
        copy: for a directory that will not change, as the trainer's own output); else
        copied. ``on_bytes`` is told how many bytes each chunk copied, for a progress
        bar (from several threads)."""
        for entry in self.files:
            (dest / entry.relpath).parent.mkdir(parents=True, exist_ok=True)

        def copy(entry: ScannedFile) -> str:
            path = self.root / entry.relpath
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as source:
                opened = os.fstat(source.fileno())
                if not stat.S_ISREG(opened.st_mode):
                    raise InputError("is no longer a regular file", path=path)
                if link and _linked(path, dest / entry.relpath, opened):
                    digest = sha256_stream(source)
                    if on_bytes is not None:
                        on_bytes(opened.st_size)
                    return digest
                return copy_hashing(source, dest / entry.relpath, on_bytes)

        return in_parallel(copy, {entry.relpath: entry for entry in self.files})


def _linked(source: Path, target: Path, opened: os.stat_result) -> bool:
    """Hard-link ``source`` to ``target`` if the file system allows; the link must be to
    the very file opened (``opened``), not to one put in its place since."""
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:  # another file system, links not supported or not permitted
        return False
    made = os.lstat(target)
    if (made.st_dev, made.st_ino) != (opened.st_dev, opened.st_ino):
        target.unlink()
        raise InputError("was replaced while it was being registered; register again", path=source)
    return True


def _walk(root: Path, directory: Path) -> Iterator[ScannedFile]:
    with os.scandir(directory) as entries:
        for entry in entries:
            path = Path(entry.path)
            rel = path.relative_to(root).as_posix()
            _check_name(root, rel)
            if entry.is_symlink():
                raise InputError(
                    f"symlink {rel!r} is refused: adapter files must be regular files inside "
                    "the directory; copy the target in instead",
                    path=root,
                )
            if entry.name in GIT_METADATA:
                raise InputError(
                    f"git metadata {rel!r} is refused (it would be stored but not signed); "
                    "register a copy of the adapter without it",
                    path=root,
                )
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(root, path)
                continue
            if not entry.is_file(follow_symlinks=False):
                raise InputError(
                    f"{rel!r} is not a regular file (device, socket or pipe); remove it",
                    path=root,
                )
            if path.suffix.lower() in PICKLE_SUFFIXES:
                raise InputError(
                    f"pickle-based file {rel!r} is refused and was not opened: pickles can run "
                    "code when loaded; save the adapter with safe_serialization=True and "
                    "remove the pickle file",
                    path=root,
                )
            yield ScannedFile(rel, entry.stat(follow_symlinks=False).st_size)


MAX_SAFETENSORS_HEADER = 100_000_000  # the safetensors library's own limit


def parses_as_safetensors(path: Path) -> bool:
    """Whether the file is laid out as safetensors: an 8-byte little-endian header length
    N, then N bytes of a JSON object whose tensors' ``data_offsets`` lie inside the rest
    of the file. Read from the header alone, nothing loaded."""
    size = path.stat().st_size
    with path.open("rb") as f:
        length = int.from_bytes(f.read(8), "little")
        if size < 8 or not 2 <= length <= min(size - 8, MAX_SAFETENSORS_HEADER):
            return False
        header = f.read(length)
    try:
        parsed = loads_json(header.decode("utf-8"))
    except (UnicodeDecodeError, InputError):
        return False
    if not isinstance(parsed, dict):
        return False
    body = size - 8 - length
    for name, tensor in parsed.items():
        if name == "__metadata__":
            continue
        offsets = tensor.get("data_offsets") if isinstance(tensor, dict) else None
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= body
        ):
            return False
    return True


def refuse_pickle(path: Path, *, shown_as: Path | None = None) -> None:
    """Refuse a file whose content is a pickle, judged by its bytes alone (never
    unpickled): a protocol 2-5 header, or a zip archive holding a ``.pkl`` member (what
    ``torch.save`` writes). A file laid out as safetensors is not a pickle, whatever its
    first bytes: a header 0x380 bytes long begins ``80 03``, as a protocol-3 pickle does."""
    with path.open("rb") as f:
        head = f.read(4)
    where = shown_as or path
    if parses_as_safetensors(path):
        return
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        raise InputError(
            f"is a pickle (protocol {head[1]}) whatever its name, and was not opened: pickles "
            "can run code when loaded; save the adapter with safe_serialization=True",
            path=where,
        )
    if head == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as archive:
                pickled = [n for n in archive.namelist() if n.endswith(".pkl")]
        except (zipfile.BadZipFile, OSError):
            return
        if pickled:
            raise InputError(
                f"is a zip of pickles ({pickled[0]}: what torch.save writes) whatever its name, "
                "and was not opened; save the adapter with safe_serialization=True",
                path=where,
            )


def _check_name(root: Path, rel: str) -> None:
    invisible = [c for c in rel if is_invisible(c) and ord(c) >= 32 and ord(c) != 127]
    if invisible:
        codes = ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(invisible))
        raise InputError(
            f"file name '{rel.encode('unicode_escape').decode()}' has invisible or "
            f"direction-changing characters ({codes}): it would look like another name; "
            "rename it",
            path=root,
        )
    bad = [c for c in rel if ord(c) < 32 or ord(c) == 127 or c == "\\"]
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        bad.append("?")
    if bad:
        raise InputError(
            f"file name {rel!r} has control characters, backslashes or bytes that are not "
            "UTF-8; rename it",
            path=root,
        )


def read_adapter_config(
    path: Path, *, shown_as: Path | None = None
) -> tuple[AdapterConfig, dict[str, Any]]:
    """Parse and validate ``adapter_config.json``; returns the model and the raw object.

    Errors name ``shown_as`` (the user's file) when ``path`` is a staged copy of it.
    """
    where = shown_as or path
    with path.open("rb") as f:
        data = f.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise InputError(
            f"is larger than {MAX_CONFIG_BYTES} bytes; is it really a config?", path=where
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"is not UTF-8 (byte {error.start}); save it as UTF-8 JSON", path=where
        ) from None
    # duplicate keys, NaN, endless nesting and giant integers refused, naming the file
    raw = loads_json(text, path=where)
    if not isinstance(raw, dict):
        raise InputError("must hold a JSON object", path=where)
    try:
        config = AdapterConfig.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise InputError(
            first["msg"].removeprefix("Value error, "), path=where, field=field
        ) from None
    return config, raw


def check_safetensors(path: Path, *, shown_as: Path | None = None) -> None:
    """Parse a safetensors header (and check it covers the file) without loading tensors."""
    from safetensors import SafetensorError, safe_open

    where = shown_as or path
    try:
        with safe_open(str(path), framework="numpy") as handle:
            handle.keys()
    except SafetensorError as error:
        raise InputError(
            f"not a valid safetensors file ({error}); re-save the adapter", path=where
        ) from None
