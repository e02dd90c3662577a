"""Faults of the machine (issue #18): a full disk or a failed mirror write is one line,
never a traceback; a change commits whole or leaves nothing, and one that committed is
reported as committed even when the checkpoint file beside the database could not be
written (which the next open brings up to date)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from loraledger.registry.synthetic import write_lora_adapter

from tests.cli.conftest import Cli


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 12 MB filesystem of its own (tmpfs), where a registry runs out of space."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def one_line(err: str, *parts: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in lines[0], lines[0]


def test_a_disk_full_during_registration_leaves_nothing(small_disk: Path, tmp_path: Path) -> None:
    cli = Cli(small_disk / "reg", tmp_path / "keys")
    cli("init")
    cli("keys", "create", "alice", "--role", "admin")
    cli("keys", "create", "eve", "--role", "engineer", actor="alice")
    free = os.statvfs(small_disk)
    room = free.f_bavail * free.f_frsize
    big = write_lora_adapter(tmp_path / "big", hidden=1024, layers=4, r=64)  # ~8 MB of weights
    assert sum(p.stat().st_size for p in big.iterdir()) > room
    result = cli("adapters", "register", str(big), "--name", "big", actor="eve", code=74)
    one_line(result.stderr, "error: No space left on device", "free space and run the command")
    assert f"({small_disk / 'reg' / 'tmp'}/" in result.stderr  # the file that did not fit
    assert json.loads(cli("adapters", "list", "--json").stdout) == []
    assert list((small_disk / "reg" / "tmp").iterdir()) == []  # no half-copied files stay
    assert "rows match their signed records" in cli("audit", "verify").stdout


def test_a_change_that_committed_is_reported_committed_on_a_full_disk(
    small_disk: Path, tmp_path: Path
) -> None:
    # Room for the adapter's copies but not for DuckDB to fold its write-ahead log into
    # the file at the end: the change committed (durable in the log), so it is reported
    # as registered, with one warning line, and the next open finishes the file.
    cli = Cli(small_disk / "reg", tmp_path / "keys")
    cli("init")
    cli("keys", "create", "alice", "--role", "admin")
    cli("keys", "create", "eve", "--role", "engineer", actor="alice")
    adapter = write_lora_adapter(tmp_path / "a", hidden=256, layers=2, r=8)
    size = sum(p.stat().st_size for p in adapter.iterdir())
    free = os.statvfs(small_disk)
    filler = small_disk / "filler"
    filler.write_bytes(bytes(free.f_bavail * free.f_frsize - 2 * size - 8192))
    result = cli("adapters", "register", str(adapter), "--name", "bot", actor="eve")
    assert result.stdout.startswith("Registered bot@v1")
    one_line(result.stderr, "warning: ", "could not be brought up to date (disk full?)")
    filler.unlink()
    listed = json.loads(cli("adapters", "list", "--json").stdout)
    assert [v["name"] for v in listed] == ["bot"]
    assert "rows match their signed records (2 identities, 1 adapter_versions" in (
        cli("audit", "verify").stdout
    )


def test_checkpoints_missing_from_the_mirror_are_written_at_the_next_open(
    ready: Cli, tmp_path: Path
) -> None:
    # what a failed append after a commit leaves: the database has checkpoints the file
    # beside it lacks (a file that is ahead of the database is refused instead)
    mirror = tmp_path / "reg" / "audit-checkpoints.jsonl"
    lines = mirror.read_text().splitlines()
    mirror.write_text("".join(line + "\n" for line in lines[:-1]))
    ready("keys", "list")
    assert mirror.read_text().splitlines() == lines
    assert "rows match their signed records" in ready("audit", "verify").stdout


def test_a_line_cut_short_in_the_mirror_does_not_spoil_the_next(ready: Cli, tmp_path: Path) -> None:
    mirror = tmp_path / "reg" / "audit-checkpoints.jsonl"
    with mirror.open("ab") as f:
        f.write(b'{"seq": 99, "head_ha')  # a write the disk cut off
    ready("keys", "create", "bob", "--role", "reviewer", actor="alice")
    lines = mirror.read_text().splitlines()
    assert all(json.loads(line)["seq"] > 0 for line in lines)  # the torn bytes are gone
    assert "rows match their signed records" in ready("audit", "verify").stdout


def test_a_read_only_registry_reads_and_refuses_a_change_as_a_storage_fault(
    small_disk: Path, tmp_path: Path
) -> None:
    """A registry on a read-only mount (a restored backup, a replica) answered a change
    with exit 2, as if the user had typed something wrong (issue #35): it is the
    machine's refusal, exit 74, one line; reading works, and no key pair is left."""
    cli = Cli(small_disk / "reg", tmp_path / "keys")
    cli("init")
    cli("keys", "create", "alice", "--role", "admin")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        assert "identity.create" in cli("audit", "log").stdout
        result = cli("keys", "create", "bob", "--role", "reviewer", actor="alice", code=74)
        one_line(result.stderr, f"{small_disk / 'reg'}/", "cannot be written here",
                 "Read-only file system", "reading commands still work")  # fmt: skip
        assert not (tmp_path / "keys" / "bob.pem").exists()
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
