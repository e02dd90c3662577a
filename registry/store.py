"""The content-addressed artifact store: ``objects/sha256/<ab>/<sha256>``.

Files enter the store by an atomic rename of a file already written into the registry's
``tmp/`` directory (same file system), so an object is either absent or complete. The
database row that points at an object is committed only after the rename; a crash in
between leaves an unreferenced object, never a reference to a missing one. Objects are
made read-only after they are stored.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from io import BufferedReader
from pathlib import Path
from typing import BinaryIO, TypeVar

from loraledger.errors import VerificationError

# Large chunks: a thread hashing beside another that holds the GIL (importing, parsing)
# waits for it at each chunk, up to the 5 ms switch interval; at 16 MB a chunk that
# wait costs little (hashlib.file_digest's 256 KB chunks ran at half speed so).
CHUNK = 1 << 24
K = TypeVar("K")
V = TypeVar("V")


def sha256_file(path: Path) -> str:
    with path.open("rb", buffering=0) as handle:
        return sha256_stream(handle)


def sha256_stream(source: BinaryIO) -> str:
    """The sha256 of what is left to read of ``source``."""
    digest = hashlib.sha256()
    buffer = _chunk_for(source)
    view = memoryview(buffer)
    while count := source.readinto(buffer):  # type: ignore[attr-defined]
        digest.update(view[:count])
    return digest.hexdigest()


def _chunk_for(source: BinaryIO | BufferedReader) -> bytearray:
    """A read buffer of CHUNK bytes, or of the file's size where that is smaller: a
    small file (a config, a README) costs no 16 MB allocation (0.7 ms each, on every
    verify of a trace or gate check)."""
    try:
        size = os.fstat(source.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        size = CHUNK
    return bytearray(max(1, min(CHUNK, size)))


def copy_hashing(
    source: BufferedReader, target: Path, on_bytes: Callable[[int], None] | None = None
) -> str:
    """Copy the open file ``source`` to a new file ``target`` and return the sha256 of the
    bytes written: one read of each byte, each chunk hashed while a second thread writes
    it (hashing and writing both let go of the GIL). ``on_bytes`` is told each chunk's
    size."""
    digest = hashlib.sha256()
    buffers = (_chunk_for(source), _chunk_for(source))
    with target.open("xb") as out, ThreadPoolExecutor(1) as writer:
        pending: Future[int] | None = None
        turn = 0
        while True:
            # the write that used this buffer last (two chunks ago) finished before the
            # previous chunk's write was handed over
            buffer = buffers[turn]
            turn ^= 1
            count = source.readinto(buffer)
            if not count:
                break
            chunk = memoryview(buffer)[:count]
            if pending is not None:
                pending.result()
            pending = writer.submit(out.write, chunk)
            digest.update(chunk)
            if on_bytes is not None:
                on_bytes(count)
        if pending is not None:
            pending.result()
    return digest.hexdigest()


def in_parallel(work: Callable[[V], K], items: Mapping[str, V]) -> dict[str, K]:
    """``work`` on each value of ``items`` in threads (one a core), by key; the first
    exception raised is raised here. For file work that lets go of the GIL."""
    if len(items) <= 1:
        return {key: work(value) for key, value in items.items()}
    with ThreadPoolExecutor(min(len(items), os.cpu_count() or 1)) as pool:
        futures = {key: pool.submit(work, value) for key, value in items.items()}
        return {key: future.result() for key, future in futures.items()}


# This machine, in the names of what it stages: a team's store is one directory shared
# by several machines, where a process id means something only on the machine it ran on.
HOST_TAG = hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:8]


def staging_name(prefix: str) -> str:
    """A name for a staged file or scratch directory: ``PREFIX-PID-RANDOM-HOST``."""
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:12]}-{HOST_TAG}"


class ArtifactStore:
    """Files by sha256 under ``root`` (``<registry>/objects``), staged in ``tmp``."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp

    def path_of(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def contains(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def adopt(self, staged: Path, sha256: str) -> Path:
        """Move a staged file whose sha256 the caller computed into the store.

        If the object already exists the staged copy is removed instead (same bytes).
        """
        target = self.path_of(sha256)
        if target.is_file():
            staged.unlink()
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(staged, target)
        return target

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` and return its sha256."""
        digest = hashlib.sha256(data).hexdigest()
        if not self.contains(digest):
            staged = self.tmp / staging_name("obj")
            self.tmp.mkdir(parents=True, exist_ok=True)
            with staged.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self.adopt(staged, digest)
        return digest

    def read_verified(self, sha256: str) -> bytes:
        """The object's bytes, refused if missing or if they no longer hash to its name."""
        path = self.path_of(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise VerificationError(
                f"artifact {sha256} is missing from the store ({path}); restore the registry "
                "from a backup"
            ) from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise VerificationError(
                f"artifact {sha256} in the store was modified ({path}); restore it from a backup"
            )
        return data

    def object_of(self, relpath: str, sha256: str) -> Path:
        """The stored object of the file ``relpath``; a missing one raises
        :class:`VerificationError` naming the file."""
        source = self.path_of(sha256)
        if not source.is_file():
            raise VerificationError(
                f"file {relpath!r} (sha256 {sha256}) is missing from the artifact store; "
                "restore the registry from a backup"
            )
        return source

    def hash_objects(self, files: Mapping[str, str]) -> dict[str, str]:
        """The sha256 of each stored object of ``{relative path: sha256}`` as it is now
        (hashed in parallel), by relative path."""
        objects = {rel: self.object_of(rel, digest) for rel, digest in files.items()}
        return in_parallel(sha256_file, objects)

    def copy_out(self, files: Mapping[str, str], dest: Path) -> dict[str, str]:
        """Copy the objects of ``{relative path: sha256}`` to ``dest`` and return the sha256
        of each copy as written (one read of each byte, files in parallel), by relative
        path: what is handed out is what was hashed."""
        objects = {rel: self.object_of(rel, digest) for rel, digest in files.items()}
        for rel in objects:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)

        def copy(rel: str) -> str:
            with objects[rel].open("rb") as source:
                return copy_hashing(source, dest / rel)

        return in_parallel(copy, {rel: rel for rel in objects})

    @contextmanager
    def scratch(self, prefix: str) -> Iterator[Path]:
        """A private directory under ``tmp/`` removed afterwards, whatever happens.

        Its name carries the process id so that :meth:`remove_stale_scratch` can clear
        what a killed process left behind.
        """
        self.tmp.mkdir(parents=True, exist_ok=True)
        path = self.tmp / staging_name(prefix)
        path.mkdir()
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def remove_stale_scratch(self) -> int:
        """Remove scratch directories and staged objects of this machine's processes that
        are no longer alive (another machine's, in a shared store, are its own to clear)."""
        removed = 0
        if not self.tmp.is_dir():
            return 0
        for entry in self.tmp.iterdir():
            parts = entry.name.split("-")
            if len(parts) < 3 or not parts[1].isdigit():
                continue
            if len(parts) >= 4 and parts[3] != HOST_TAG:
                continue  # staged on another machine
            if _pid_alive(int(parts[1])):
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        return removed

    def iter_objects(self) -> Iterator[Path]:
        yield from (self.root / "sha256").glob("*/*")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
