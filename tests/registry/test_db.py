"""The one-writer lock: waits with backoff, then a clear timeout naming the holder;
threads of one process take turns; closing hands the file back at once."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from loraledger.registry import Registry
from loraledger.registry.db import DuckDatabase as Database
from loraledger.registry.db import lock_timeout_from_env

from loraledger.errors import LockTimeout, UsageError


@pytest.fixture(scope="module")
def backend() -> str:
    """DuckDB's file lock (PostgreSQL's writer lock: tests/registry/test_postgres.py)."""
    return "duckdb"


HOLD = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.close()
"""


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_waits_for_a_short_lock(empty_registry: Registry) -> None:
    holder = _hold_lock(empty_registry.db.path, 1.0)
    started = time.monotonic()
    with empty_registry.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == (1,)
    assert time.monotonic() - started > 0.3
    holder.wait()


def test_times_out_naming_the_holder(empty_registry: Registry) -> None:
    holder = _hold_lock(empty_registry.db.path, 5.0)
    try:
        db = Database(empty_registry.db.path, lock_timeout=0.5)
        pattern = f"held by PID {holder.pid}.*LORALEDGER_LOCK_TIMEOUT"
        with pytest.raises(LockTimeout, match=pattern), db.write():
            pass
    finally:
        holder.kill()
        holder.wait()


def test_write_rolls_back_on_error(empty_registry: Registry) -> None:
    with pytest.raises(RuntimeError), empty_registry.db.write() as conn:
        conn.execute("INSERT INTO registry_meta VALUES ('x', 'y')")
        raise RuntimeError
    with empty_registry.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM registry_meta WHERE key = 'x'").fetchone() == (0,)


def test_lock_timeout_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORALEDGER_LOCK_TIMEOUT", "2.5")
    assert lock_timeout_from_env() == 2.5
    monkeypatch.setenv("LORALEDGER_LOCK_TIMEOUT", "soon")
    with pytest.raises(UsageError, match="not a positive number"):
        lock_timeout_from_env()


def test_closing_releases_the_file_to_other_processes(empty_registry: Registry) -> None:
    """A connection is an ATTACH in this process's engine; closing it detaches, so
    another process can take the write lock at once (and sees what was written)."""
    with empty_registry.db.write() as conn:
        conn.execute("INSERT INTO registry_meta VALUES ('x', 'y')")
    with empty_registry.db.read() as conn:
        conn.execute("SELECT 1")
    other = (
        "import sys, duckdb; c = duckdb.connect(sys.argv[1]); "
        "print(c.execute(\"SELECT value FROM registry_meta WHERE key = 'x'\").fetchone()[0])"
    )
    done = subprocess.run(
        [sys.executable, "-c", other, str(empty_registry.db.path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "y"
    assert not empty_registry.db.path.with_name(empty_registry.db.path.name + ".wal").exists()


def test_threads_of_one_process_take_turns(empty_registry: Registry) -> None:
    """Readers and writers in several threads (the dashboard's sessions) never meet a
    DuckDB configuration or lock error, and every write lands."""
    db = empty_registry.db
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(15):
                if i % 3 == 0:
                    with db.write() as conn:
                        conn.execute(
                            "INSERT INTO registry_meta VALUES (?, 'v')", [f"t{worker}-{i}"]
                        )
                with db.session(), db.read() as conn:
                    conn.execute("SELECT count(*) FROM registry_meta").fetchone()
                    with db.read() as nested:  # joins the session's connection
                        nested.execute("SELECT 1").fetchone()
        except BaseException as error:  # collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.read() as conn:
        count = conn.execute("SELECT count(*) FROM registry_meta WHERE key LIKE 't%'").fetchone()
    assert count == (4 * 5,)
