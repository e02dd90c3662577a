"""What every benchmark shares: ``--quick`` and ``--out``, the machine's facts, and the
results file.

``--quick`` runs the same code at sizes that take seconds: `make test` runs every
benchmark this way (tests/benchmarks/test_quick.py), so one that no longer runs fails the
build. Its numbers only show that the benchmark runs; the targets are for the full sizes
(`make bench`).

Each benchmark writes ``OUT/<name>.json`` (``benchmarks/out`` unless ``--out``): what it
measured, whether it was a quick run, when, on which commit, and the machine's facts, so
a number can be read two years later against the machine that produced it.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run as a script: the repository's packages and tests
    sys.path.insert(0, str(ROOT))

from loraledger.trainer.compute_dtype import cpu_bf16_flags  # noqa: E402
from loraledger.trainer.runtime import machine  # noqa: E402

LIBRARIES = ("torch", "transformers", "peft", "lm_eval", "duckdb", "model-signing")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, seconds each: shows that the benchmark runs (make test)",
    )
    parser.add_argument(
        "--out", type=Path, default=HERE / "out", help="folder for the results file"
    )
    return parser


def facts() -> dict[str, Any]:
    """The machine, the Python and the libraries that produced a number."""
    info = machine()
    info["cpu_bf16_flags"] = sorted(cpu_bf16_flags())
    info["python"] = platform.python_version()
    for name in LIBRARIES:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    return info


def commit() -> str | None:
    """The repository's commit (with "+dirty" when the tree has changes), if it is one."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def write_results(name: str, args: argparse.Namespace, results: dict[str, Any]) -> Path:
    """``results`` with the run's facts, as ``args.out/<name>.json``; returns the path."""
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{name}.json"
    record = {
        "benchmark": name,
        "quick": bool(args.quick),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": facts(),
        "results": results,
    }
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"results: {path}")
    return path
