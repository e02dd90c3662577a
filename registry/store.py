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
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loraledger.errors import VerificationError


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


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
            staged = self.tmp / f"obj-{os.getpid()}-{uuid.uuid4().hex}"
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

    def materialize(self, files: dict[str, str], dest: Path, *, link: bool) -> None:
        """Lay out ``{relative path: sha256}`` under ``dest``.

        ``link=True`` hard-links objects (fast, for a read-only look), falling back to a
        copy across file systems; ``link=False`` always copies (for handing files out).
        A missing object raises :class:`VerificationError` naming the file.
        """
        for rel, digest in files.items():
            source = self.path_of(digest)
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if not source.is_file():
                raise VerificationError(
                    f"file {rel!r} (sha256 {digest}) is missing from the artifact store; "
                    "restore the registry from a backup"
                )
            if link:
                try:
                    os.link(source, target)
                    continue
                except OSError:
                    pass
            shutil.copyfile(source, target)

    @contextmanager
    def scratch(self, prefix: str) -> Iterator[Path]:
        """A private directory under ``tmp/`` removed afterwards, whatever happens.

        Its name carries the process id so that :meth:`remove_stale_scratch` can clear
        what a killed process left behind.
        """
        self.tmp.mkdir(parents=True, exist_ok=True)
        path = self.tmp / f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        path.mkdir()
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def remove_stale_scratch(self) -> int:
        """Remove scratch directories and staged objects of processes no longer alive."""
        removed = 0
        if not self.tmp.is_dir():
            return 0
        for entry in self.tmp.iterdir():
            parts = entry.name.split("-")
            if len(parts) < 3 or not parts[1].isdigit() or _pid_alive(int(parts[1])):
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
