from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from loraledger.registry.store import CHUNK, HOST_TAG, ArtifactStore, copy_hashing, sha256_file

from loraledger.errors import VerificationError


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "objects", tmp_path / "tmp")


def test_put_and_read_back(store: ArtifactStore) -> None:
    digest = store.put_bytes(b"hello")
    assert digest == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert store.read_verified(digest) == b"hello"
    assert store.path_of(digest).parent.name == digest[:2]
    assert store.path_of(digest).stat().st_mode & 0o222 == 0  # stored read-only


def test_same_bytes_stored_once(store: ArtifactStore) -> None:
    assert store.put_bytes(b"x") == store.put_bytes(b"x")
    assert len(list(store.digests())) == 1
    assert list(store.tmp.iterdir()) == []


def test_modified_object_is_refused(store: ArtifactStore) -> None:
    digest = store.put_bytes(b"original")
    path = store.path_of(digest)
    path.chmod(0o644)
    path.write_bytes(b"0riginal")
    with pytest.raises(VerificationError, match="was modified"):
        store.read_verified(digest)


def test_missing_object_is_refused(store: ArtifactStore) -> None:
    digest = store.put_bytes(b"gone")
    store.path_of(digest).unlink()
    with pytest.raises(VerificationError, match="missing from the store"):
        store.read_verified(digest)


def test_copying_out_or_hashing_refuses_a_missing_object(
    store: ArtifactStore, tmp_path: Path
) -> None:
    with pytest.raises(VerificationError, match="'a.json'.*missing"):
        store.copy_out({"a.json": "0" * 64}, tmp_path / "out")
    with pytest.raises(VerificationError, match="'a.json'.*missing"):
        store.hash_objects({"a.json": "0" * 64})


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 7])
def test_copy_hashing_writes_and_hashes_every_byte(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    seen: list[int] = []
    with (tmp_path / "src").open("rb") as source:
        digest = copy_hashing(source, tmp_path / "dst", seen.append)
    assert (tmp_path / "dst").read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()
    assert sum(seen) == size


def test_copy_hashing_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "src").write_bytes(b"new")
    (tmp_path / "dst").write_bytes(b"kept")
    with (tmp_path / "src").open("rb") as source, pytest.raises(FileExistsError):
        copy_hashing(source, tmp_path / "dst")
    assert (tmp_path / "dst").read_bytes() == b"kept"


def test_copied_out_files_are_hashed_as_written(store: ArtifactStore, tmp_path: Path) -> None:
    files = {"a/x.bin": store.put_bytes(b"x" * 10), "y.json": store.put_bytes(b"{}")}
    assert store.copy_out(files, tmp_path / "out") == files
    assert (tmp_path / "out" / "a" / "x.bin").read_bytes() == b"x" * 10
    assert store.hash_objects(files) == files


def test_scratch_is_removed_even_on_error(store: ArtifactStore) -> None:
    with pytest.raises(RuntimeError), store.scratch("t") as path:
        (path / "f").write_text("x")
        raise RuntimeError
    assert list(store.tmp.iterdir()) == []


def test_stale_scratch_of_dead_processes_is_removed(store: ArtifactStore) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    store.tmp.mkdir(parents=True)
    (store.tmp / f"reg-{pid}-abc").mkdir()
    (store.tmp / f"obj-{pid}-def-{HOST_TAG}").write_bytes(b"x")
    alive = store.tmp / f"reg-{os.getpid()}-live-{HOST_TAG}"
    alive.mkdir()
    # a shared store: the same process id on another machine is that machine's to judge
    elsewhere = store.tmp / f"reg-{pid}-xyz-{'0' * 8}"
    elsewhere.mkdir()
    assert store.remove_stale_scratch() == 2
    assert sorted(store.tmp.iterdir()) == sorted([alive, elsewhere])


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    assert sha256_file(path).startswith("2cf24dba")
