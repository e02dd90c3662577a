"""The content-addressed artifact store: ``objects/sha256/<ab>/<sha256>``.

Files enter the store by an atomic rename of a file already written into the registry's
``tmp/`` directory (same file system), so an object is either absent or complete. The
database row that points at an object is committed only after the rename; a crash in
between leaves an unreferenced object, never a reference to a missing one. Objects are
made read-only after they are stored.

A team's store may instead be object storage (:class:`ObjectStorage`, implemented for
S3 by :class:`~loraledger.registry.s3.S3Objects`): each object is then uploaded under
the same key before the rename (and before the database row is committed), and the
directory is this machine's cache of objects downloaded and verified against their
names. Whatever is read is hashed again by its reader, as from a directory.
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
from typing import BinaryIO, Protocol, TypeVar

from loraledger.errors import VerificationError
from loraledger.processes import running

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


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """A failed write says which file: ``write()`` raises ENOSPC with no file name, and a
    full disk reported as "No space left on device" alone leaves the user to guess."""
    try:
        yield
    except OSError as error:
        if error.filename is None:
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise


def copy_hashing(
    source: BufferedReader, target: Path, on_bytes: Callable[[int], None] | None = None
) -> str:
    """Copy the open file ``source`` to a new file ``target`` and return the sha256 of the
    bytes written: one read of each byte, each chunk hashed while a second thread writes
    it (hashing and writing both let go of the GIL). ``on_bytes`` is told each chunk's
    size."""
    digest = hashlib.sha256()
    buffers = (_chunk_for(source), _chunk_for(source))
    with naming(target), target.open("xb") as out, ThreadPoolExecutor(1) as writer:
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


CACHE_ENV = "LORALEDGER_CACHE"


def cache_dir(registry_id: str) -> Path:
    """This machine's cache of a registry's objects from an object store:
    ``$LORALEDGER_CACHE/<registry id>`` (default ``$XDG_CACHE_HOME/loraledger``, else
    ``~/.cache/loraledger``). Every object in it was verified against its name on the way
    in, and is hashed again by whoever reads it."""
    base = os.environ.get(CACHE_ENV)
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = str(Path(xdg) / "loraledger")
    return Path(base) / registry_id


class ObjectStorage(Protocol):
    """Objects by key in a shared object store (S3 and what speaks its protocol)."""

    @property
    def location(self) -> str: ...

    def where(self, key: str) -> str:
        """The object's address, for messages."""
        ...

    def exists(self, key: str) -> bool: ...

    def create(self, key: str, source: Path | bytes) -> bool:
        """Write ``source`` at ``key`` unless it exists; whether it was written."""
        ...

    def read(self, key: str) -> bytes | None: ...

    def download(self, key: str, target: Path) -> str | None:
        """Write the object into the new file ``target``; the sha256 of what was written
        (None when there is no such object)."""
        ...

    def keys(self, prefix: str, after: str | None = None) -> Iterator[str]: ...

    def delete(self, keys: list[str]) -> None: ...


def object_key(sha256: str) -> str:
    """An artifact's key, in a directory store and an object store alike."""
    return f"sha256/{sha256[:2]}/{sha256}"


class ArtifactStore:
    """Files by sha256 under ``root`` (``<registry>/objects``), staged in ``tmp``; with
    ``objects``, kept there and ``root`` a verified cache of them."""

    def __init__(self, root: Path, tmp: Path, objects: ObjectStorage | None = None) -> None:
        self.root = root
        self.tmp = tmp
        self.objects = objects

    @property
    def location(self) -> str:
        return self.objects.location if self.objects is not None else str(self.root)

    def path_of(self, sha256: str) -> Path:
        """Where the object is (or would be) in the directory: for an object store, in
        this machine's cache (see :meth:`local`)."""
        return self.root / object_key(sha256)

    def contains(self, sha256: str) -> bool:
        if self.path_of(sha256).is_file():
            return True
        return self.objects is not None and self.objects.exists("objects/" + object_key(sha256))

    def adopt(self, staged: Path, sha256: str) -> Path:
        """Move a staged file whose sha256 the caller computed into the store (uploading
        it first to an object store that does not hold it yet).

        If the object already exists the staged copy is removed instead (same bytes).
        """
        target = self.path_of(sha256)
        if target.is_file():
            staged.unlink()
            return target
        if self.objects is not None:
            key = "objects/" + object_key(sha256)
            if not self.objects.exists(key):
                self.objects.create(key, staged)  # content addressed: a racing twin is the same
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(staged, target)
        return target

    def local(self, sha256: str) -> Path | None:
        """The object as a file on this machine: in the directory, or downloaded from the
        object store into the cache after its bytes were hashed and found to be its name
        (a download that is not is refused). None when the store has no such object."""
        target = self.path_of(sha256)
        if target.is_file() or self.objects is None:
            return target if target.is_file() else None
        self.tmp.mkdir(parents=True, exist_ok=True)
        staged = self.tmp / staging_name("get")
        key = "objects/" + object_key(sha256)
        digest = self.objects.download(key, staged)
        if digest is None:
            return None
        if digest != sha256:
            staged.unlink(missing_ok=True)
            raise VerificationError(
                f"artifact {sha256} in the object store ({self.objects.where(key)}) does not "
                f"hash to its name (it hashes to {digest[:16]}…): it was modified; restore it "
                "from a backup"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(staged, target)
        return target

    def digests(self) -> Iterator[str]:
        """The sha256 of every stored object (named so; a reader hashes it again)."""
        if self.objects is None:
            yield from (path.name for path in (self.root / "sha256").glob("*/*"))
            return
        for key in self.objects.keys("objects/sha256/"):
            yield key.rsplit("/", 1)[-1]

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` and return its sha256."""
        digest = hashlib.sha256(data).hexdigest()
        if not self.path_of(digest).is_file():
            staged = self.tmp / staging_name("obj")
            self.tmp.mkdir(parents=True, exist_ok=True)
            with naming(staged), staged.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self.adopt(staged, digest)
        return digest

    def read_verified(self, sha256: str) -> bytes:
        """The object's bytes, refused if missing or if they no longer hash to its name."""
        path = self.local(sha256)
        try:
            if path is None:
                raise FileNotFoundError(sha256)
            data = path.read_bytes()
        except FileNotFoundError:
            raise VerificationError(
                f"artifact {sha256} is missing from the store ({self.location}); restore the "
                "registry from a backup"
            ) from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise VerificationError(
                f"artifact {sha256} in the store was modified ({path}); restore it from a backup"
            )
        return data

    def object_of(self, relpath: str, sha256: str) -> Path:
        """The stored object of the file ``relpath``; a missing one raises
        :class:`VerificationError` naming the file."""
        source = self.local(sha256)
        if source is None:
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
            if running(int(parts[1])):
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        return removed
