"""Where signed audit checkpoints are published outside the database.

A checkpoint is committed in the database with the events it covers and then published
here, so cutting the newest events (and their checkpoints) out of the database is caught
by what was published (:meth:`~loraledger.registry.audit.AuditLog.check_tail`). Two
places implement :class:`PublishedCheckpoints`:

- :class:`CheckpointFile`: ``audit-checkpoints.jsonl`` in the registry's directory (or a
  PostgreSQL registry's shared store directory), one line appended per checkpoint;
- :class:`CheckpointObjects`: one object per checkpoint under ``checkpoints/`` of an
  S3-compatible store, written with a conditional create, so nothing published is ever
  overwritten and writers on several machines never collide.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Protocol

from loraledger.errors import VerificationError

from .models import Checkpoint
from .store import ObjectStorage

CHECKPOINT_FILE = "audit-checkpoints.jsonl"
_TAIL_BYTES = 8192  # several checkpoint lines (each well under 1 KiB)
PREFIX = "checkpoints/"


def checkpoint_line(checkpoint: Checkpoint) -> bytes:
    """A checkpoint as one line of canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(
        checkpoint.model_dump(mode="json"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return (text + "\n").encode("utf-8")


def parse(record: str | bytes, origin: str, holder: str) -> Checkpoint:
    """A published record read back; one that is not a checkpoint was edited."""
    try:
        return Checkpoint.model_validate_json(record)
    except ValueError:
        raise VerificationError(
            f"{origin} is not a checkpoint record: {holder} was edited"
        ) from None


class PublishedCheckpoints(Protocol):
    """The checkpoints published outside the database, in the order they were."""

    @property
    def name(self) -> str:
        """How a message names this place (``audit-checkpoints.jsonl``, an s3:// URL)."""
        ...

    def publish(self, checkpoint: Checkpoint) -> None:
        """Publish a committed checkpoint."""
        ...

    def newest(self) -> Checkpoint | None:
        """The newest checkpoint published (None when there is none)."""
        ...

    def everything(self) -> list[tuple[str, Checkpoint]]:
        """Every published checkpoint, with where it is (``FILE:LINE``, a key); a record
        that is not a checkpoint raises :class:`VerificationError` naming it."""
        ...


class CheckpointFile:
    """Checkpoints as lines appended to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return self.path.name

    def publish(self, checkpoint: Checkpoint) -> None:
        """Append one line (one write). A line cut short by an earlier failed write (disk
        full) was never a record: it is cut off first, so it neither spoils this line
        nor reads as an edit."""
        line = checkpoint_line(checkpoint)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self._regular(fd)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                tail = os.pread(fd, min(size, _TAIL_BYTES), max(0, size - _TAIL_BYTES))
                end = tail.rfind(b"\n")
                os.ftruncate(fd, size - len(tail) + end + 1 if end >= 0 else 0)
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
            os.fsync(fd)
        finally:
            os.close(fd)

    def newest(self) -> Checkpoint | None:
        """Only the file's end is read; a line being appended right now is skipped."""
        try:
            with self.path.open("rb") as f:
                self._regular(f.fileno())
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - _TAIL_BYTES))
                tail = f.read(_TAIL_BYTES)
        except FileNotFoundError:
            return None
        for line in reversed(tail.splitlines()):
            try:
                return Checkpoint.model_validate_json(line)
            except ValueError:
                continue  # a partial line (being written) or an edit: `audit verify` names it
        return None

    def everything(self) -> list[tuple[str, Checkpoint]]:
        try:
            with self.path.open("rb") as f:
                self._regular(f.fileno())
                lines = f.read().decode("utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            lines = []
        found: list[tuple[str, Checkpoint]] = []
        for number, line in enumerate(lines, start=1):
            origin = f"{self.name}:{number}"
            found.append((origin, parse(line, origin, "the file")))
        return found

    def _regular(self, fd: int) -> None:
        """The file must be a regular file: a device or FIFO put in its place would be
        read without end (or hang)."""
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise VerificationError(
                f"{self.path} is not a regular file (a device, FIFO or directory was put in "
                "its place); restore it from a backup"
            )


class CheckpointObjects:
    """Checkpoints as objects ``checkpoints/<seq, 12 digits>-<sha256 of the record, 16
    hex>.json`` in an object store: listed in key order, which is event order.

    The newest is found by listing from the newest this process has seen (a registry's
    checkpoints run to one per change)."""

    def __init__(self, objects: ObjectStorage) -> None:
        self.objects = objects
        self._seen: str | None = None

    @property
    def name(self) -> str:
        return f"{self.objects.where(PREFIX)}"

    def publish(self, checkpoint: Checkpoint) -> None:
        line = checkpoint_line(checkpoint)
        key = f"{PREFIX}{checkpoint.seq:012d}-{hashlib.sha256(line).hexdigest()[:16]}.json"
        self.objects.create(key, line)  # the same record published twice is one object

    def newest(self) -> Checkpoint | None:
        key, data = self._newest(self._seen)
        if key is not None and data is None:  # deleted since: list from the start
            key, data = self._newest(None)
        self._seen = key if data is not None else None
        if key is None or data is None:
            return None
        return parse(data, self.objects.where(key), "it")

    def _newest(self, after: str | None) -> tuple[str | None, bytes | None]:
        last = after
        for key in self.objects.keys(PREFIX, after=after):
            last = key
        return last, None if last is None else self.objects.read(last)

    def everything(self) -> list[tuple[str, Checkpoint]]:
        found: list[tuple[str, Checkpoint]] = []
        for key in list(self.objects.keys(PREFIX)):
            data = self.objects.read(key)
            if data is not None:
                found.append((key, parse(data, self.objects.where(key), "it")))
        return found
