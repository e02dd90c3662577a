"""Every benchmark runs: its quick mode (seconds of work at small sizes) end to end, as its
own process, writing its results file with the machine's facts. A benchmark whose set-up
or measurement no longer works fails here, in `make test`, instead of rotting until
someone runs `make bench`. The numbers of a quick run are not checked against targets
(they are for the full sizes): only that each ratio was measured."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_CACHE
from tests.dashboard.browser import CHROMIUM

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"


def run_quick(script: str, out: Path, *extra: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"},
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    record = json.loads((out / f"{Path(script).stem}.json").read_text())
    assert record["quick"] is True
    assert record["benchmark"] == Path(script).stem
    assert record["machine"]["cpu_count"] == os.cpu_count()
    assert "cpu_bf16_flags" in record["machine"]
    assert record["machine"]["duckdb"]
    return dict(record["results"])


def measured(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_registry_benchmark(tmp_path: Path) -> None:
    results = run_quick("bench_registry.py", tmp_path)
    assert results["bytes"] >= 15_000_000
    for key in (
        "register_time_vs_model_signing_sign",
        "register_link_time_vs_model_signing_sign",
        "verify_speed_vs_model_signing",
        "audit_verify_cli_s",
    ):
        assert measured(results[key]), key
    assert results["audit_events"] >= 2_000


def test_governance_benchmark(tmp_path: Path) -> None:
    results = run_quick("bench_governance.py", tmp_path)
    assert results["full"]["adapter_versions"] == 200
    assert results["small"]["adapter_versions"] == 20
    assert results["postgresql"]["adapter_versions"] == 200
    for key in ("trace", "gate_check", "impact", "audit_verify"):
        assert measured(results[f"{key}_full_vs_small"]), key
        assert measured(results[f"{key}_postgresql_vs_duckdb"]), key


def test_team_benchmark(tmp_path: Path) -> None:
    results = run_quick("bench_team.py", tmp_path)
    for writers in (1, 2):
        assert measured(results[f"postgresql_vs_duckdb_{writers}"]), writers
        assert measured(results[f"postgresql+s3_vs_duckdb_{writers}"]), writers


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make installs it)")
def test_dashboard_benchmark(tmp_path: Path) -> None:
    results = run_quick("bench_dashboard.py", tmp_path)
    assert set(results["full_vs_small"]) >= {"overview", "review (gate check)", "datasets"}
    assert all(measured(v) for v in results["full_vs_small"].values())


@pytest.mark.slow
def test_trainer_benchmark(tmp_path: Path) -> None:
    results = run_quick("bench_trainer.py", tmp_path)
    contenders = results["contenders"]
    assert set(contenders) == {
        "loraledger", "loraledger-ckpt@float32", "recipe-bf16", "recipe-fp32",
    }  # fmt: skip
    for name, contender in contenders.items():
        assert measured(contender["tokens_per_second"]), name
        assert measured(contender["mfu"]), name
    assert contenders["loraledger-ckpt@float32"]["compute_dtype"] == "float32"
    # MFU is against the peak of the dtype the contender computed in
    peaks = results["gemm_peak_flops"]
    assert contenders["recipe-bf16"]["gemm_peak_flops"] == peaks["bfloat16"]
    assert contenders["recipe-fp32"]["gemm_peak_flops"] == peaks["float32"]


@pytest.mark.slow
def test_harness_benchmark(tmp_path: Path) -> None:
    results = run_quick("bench_harness.py", tmp_path, "--work", str(tmp_path / "work"))
    assert results["adapters"] == 1
    assert measured(results["speedup"])
    assert measured(results["peak_rss_vs_one_lm_eval"])


@pytest.mark.slow
@pytest.mark.llama
def test_serving_benchmark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the suite's cache: llama.cpp built once (the demo builds it first in `make test`)
    monkeypatch.setenv("LORALEDGER_CACHE", str(TEST_CACHE))
    results = run_quick("bench_serving.py", tmp_path)
    assert results["new_tokens"] == 8
    for key in ("first_serve", "promote_new_version"):
        assert measured(results[key]["to_answer_s"]), key
    assert measured(results["llama_vs_ask"])
    assert measured(results["llama_vs_ask_with_load"])
    assert measured(results["no_repack_vs_repack"]) and isinstance(results["cpu_has_amx"], bool)
