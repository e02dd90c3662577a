"""Several processes at once, and processes killed at random points.

DuckDB lets one process write at a time; registrations from several processes must all
land (none lost, versions 1..N without gaps), and a registration killed with SIGKILL at
any point must leave either the whole version or nothing visible, with the audit chain
intact.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loraledger.registry import Registry
from loraledger.registry.synthetic import write_lora_adapter

from tests.conftest import ENGINEER, small_adapter

REPO = Path(__file__).resolve().parents[2]

WORKER = """
import sys, time
from pathlib import Path
from loraledger.registry import Registry
from loraledger.registry.keys import KeyStore
root, keys, adapter, name, count, start = sys.argv[1:7]
while time.time() < float(start):
    time.sleep(0.005)
registry = Registry.open(root, keys=KeyStore(Path(keys)))
for _ in range(int(count)):
    print(registry.adapters.register(Path(adapter), name, actor="eve").ref, flush=True)
"""


def _worker(
    registry: Registry, adapter: Path, name: str, count: int, start: float
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            WORKER,
            str(registry.address),
            str(registry.keys.directory),
            str(adapter),
            name,
            str(count),
            str(start),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def _check_consistent(registry: Registry, verified: set[str] | None = None) -> list[str]:
    """The invariants after anything: chain verifies, every visible version verifies (but
    those in ``verified``, checked after an earlier round: nothing writes them since),
    every row matches its record."""
    registry.verify_audit()
    registry.verify_records()
    refs = [v.ref for v in registry.adapters.list()]
    for ref in refs:
        if verified is None or ref not in verified:
            registry.adapters.verify(ref)
    if verified is not None:
        verified.update(refs)
    registered = [
        e.subject.removeprefix("adapter:") for e in registry.audit_events(action="adapter.register")
    ]
    assert sorted(registered) == sorted(refs)  # an event for each version, no more
    return refs


def test_four_processes_registering_at_once_lose_nothing(
    registry: Registry, tmp_path: Path
) -> None:
    adapters = [small_adapter(tmp_path / f"a{i}", seed=i) for i in range(4)]
    start = time.time() + 2.0
    workers = [_worker(registry, adapters[i], "shared", 3, start) for i in range(4)]
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err
        outputs.extend(out.split())
    assert sorted(outputs, key=lambda r: int(r.split("@v")[1])) == [
        f"shared@v{n}" for n in range(1, 13)
    ]
    refs = _check_consistent(registry)
    assert refs == [f"shared@v{n}" for n in range(1, 13)]
    digests = {registry.adapters.get(r).digest for r in refs}
    assert len(digests) == 4  # each process's own adapter, three times each


def _kill_rounds(registry: Registry, tmp_path: Path, rounds: int) -> None:
    adapter = write_lora_adapter(tmp_path / "big", hidden=512, layers=24, r=16)  # ~6 MB
    rng = random.Random(int(os.environ.get("LORALEDGER_CRASH_SEED", "2")))
    # One undisturbed run tells how long a registration takes from process start.
    started = time.monotonic()
    probe = _worker(registry, adapter, "probe", 1, 0)
    probe.communicate(timeout=120)
    span = time.monotonic() - started
    survived = killed = 0
    verified: set[str] = set()
    for _ in range(rounds):
        worker = _worker(registry, adapter, "crashy", 1, 0)
        time.sleep(rng.uniform(0.0, span * 1.1))
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            killed += 1
        else:
            survived += 1
        worker.communicate(timeout=60)
        refs = _check_consistent(registry, verified)
        assert [r for r in refs if r.startswith("crashy@")] == [
            f"crashy@v{n}" for n in range(1, sum(r.startswith("crashy@") for r in refs) + 1)
        ]
    assert killed > 0
    registry.adapters.register(adapter, "after", actor=ENGINEER)  # the lock was released
    assert list(registry.store.tmp.iterdir()) == []  # the last register cleared staging
    _check_consistent(registry)


def test_sigkill_at_random_points_leaves_a_consistent_registry(
    registry: Registry, tmp_path: Path
) -> None:
    _kill_rounds(registry, tmp_path, rounds=8)


@pytest.mark.slow
def test_sigkill_many_times(registry: Registry, tmp_path: Path) -> None:
    _kill_rounds(registry, tmp_path, rounds=40)
