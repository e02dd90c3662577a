"""A team's registry under concurrent writers: registrations per second with 1, 4 and 8
writer processes at once, on a directory registry (DuckDB, the embedded default), on
a PostgreSQL registry (a server started for the run, its store a directory) and on a
PostgreSQL registry whose store is S3 (moto's server mode, an emulator on this machine:
its numbers say what the S3 code path costs here, not what a real bucket answers), on
this machine.

Each writer is a process of its own (as on its own machine) registering small adapters
(a few kB: the database's share of a registration is what differs between the two)
through the library; the rate is all registrations over the wall time from the common
start to the last one. The peer of each number is the same writer count on the other
backend in the same run.

What to expect: DuckDB's file takes one writer at a time across processes (the others
wait on its lock with backoff); PostgreSQL serialises the commit too (one advisory lock a
registry, so the chain never forks) but not the hashing, signing and staging before it,
and writers queue on the server instead of polling a file lock.

    .venv/bin/python benchmarks/bench_team.py [--per-writer 20] [--writers 1 4 8] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, add_arguments, write_results
from loraledger.registry import Registry, Role
from loraledger.registry.keys import KeyStore

from tests.postgres import PASSWORD, running_server
from tests.s3 import running_s3

WRITER = """
import sys, time
from pathlib import Path
from loraledger.registry import Registry
from loraledger.registry.keys import KeyStore
from loraledger.registry.synthetic import write_lora_adapter
address, keys, work, name, count, start = sys.argv[1:7]
registry = Registry.open(address, keys=KeyStore(Path(keys)))
adapters = [write_lora_adapter(Path(work) / f"{name}-{i}", hidden=32, layers=2, r=4,
                               seed=hash((name, i)) % 10**6) for i in range(int(count))]
while time.time() < float(start):
    time.sleep(0.002)
for adapter in adapters:
    registry.adapters.register(adapter, name, actor="eve")
print(time.time(), flush=True)
"""


def setup(registry: Registry) -> None:
    registry.identities.create("alice", Role.ADMIN, actor=None)
    registry.identities.create("eve", Role.ENGINEER, actor="alice")


def rate(address: Path | str, keys: Path, work: Path, writers: int, per_writer: int) -> float:
    """Registrations per second with ``writers`` processes registering at once."""
    start = time.time() + 3.0 + 0.5 * writers  # every process started and ready before it
    env = {**os.environ, "PGPASSWORD": PASSWORD, "LORALEDGER_LOCK_TIMEOUT": "600"}
    command = [sys.executable, "-c", WRITER, str(address), str(keys), str(work)]
    procs = [
        subprocess.Popen(
            [*command, f"w{writers}x{n}", str(per_writer), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for n in range(writers)
    ]
    ends = []
    for proc in procs:
        out, err = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(err[-3000:])
        ends.append(float(out.strip().splitlines()[-1]))
    return writers * per_writer / (max(ends) - start)


def main() -> None:
    parser = add_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--per-writer", type=int, default=20)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    if args.quick:
        args.per_writer, args.writers = 3, [1, 2]
    results: dict[str, Any] = {"per_writer": args.per_writer, "writers": args.writers}
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_server() as server,
        running_s3() as bucket,
    ):
        root = Path(tmp)
        os.environ.update({"PGPASSWORD": PASSWORD, **bucket.environment})
        os.environ["LORALEDGER_CACHE"] = str(root / "cache")
        registries = {
            "duckdb": Registry.init(root / "dir", keys=KeyStore(root / "keys-duckdb")),
            "postgresql": Registry.init(
                server.create_database("team"),
                store=root / "store",
                keys=KeyStore(root / "keys-postgresql"),
            ),
            "postgresql+s3": Registry.init(
                server.create_database("team_s3"),
                store=bucket.new_prefix(),
                keys=KeyStore(root / "keys-postgresql+s3"),
            ),
        }
        for registry in registries.values():
            setup(registry)
        for writers in args.writers:
            for label, registry in registries.items():
                work = root / f"work-{label}-{writers}"
                work.mkdir()
                keys = root / f"keys-{label}"
                per_s = rate(registry.address, keys, work, writers, args.per_writer)
                results[f"{label}_{writers}_per_s"] = per_s
                print(f"{label:<11} {writers} writer(s): {per_s:6.1f} registrations/s", flush=True)
            for label in ("postgresql", "postgresql+s3"):
                results[f"{label}_vs_duckdb_{writers}"] = (
                    results[f"{label}_{writers}_per_s"] / results[f"duckdb_{writers}_per_s"]
                )
        for label, registry in registries.items():
            registry.verify_audit()
            counts = registry.verify_records()
            expected = sum(args.writers) * args.per_writer
            assert counts["adapter_versions"] == expected, (label, counts)
    print(
        f"\n{'writers':<9}{'directory':>12}{'PostgreSQL':>12}{'PG/dir':>9}{'PG+S3':>12}{'/dir':>8}"
    )
    for writers in args.writers:
        print(
            f"{writers:<9}{results[f'duckdb_{writers}_per_s']:>10.1f}/s"
            f"{results[f'postgresql_{writers}_per_s']:>10.1f}/s"
            f"{results[f'postgresql_vs_duckdb_{writers}']:>8.2f}x"
            f"{results[f'postgresql+s3_{writers}_per_s']:>10.1f}/s"
            f"{results[f'postgresql+s3_vs_duckdb_{writers}']:>7.2f}x"
        )
    write_results("bench_team", args, results)


if __name__ == "__main__":
    main()
