"""The training compute dtype: set, forced, or decided by timing the real step -- never
cached from a busy machine, never reused for another model, torch or thread count, and
the same adapter whatever the load."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from loraledger.registry import BaseModelVersion, DatasetVersion, Registry
from loraledger.trainer import compute_dtype
from loraledger.trainer.compute_dtype import BUSY_SHARE, CACHE_FILE, FORCE_ENV, decide
from loraledger.trainer.train import train

from loraledger.errors import UsageError
from tests.conftest import ENGINEER
from tests.trainer.conftest import write_config

KEY = {"base_digest": "b" * 64, "quantization": "nf4", "rows": 4}
SPIN = """
import sys, time
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    pass
"""


@pytest.fixture(autouse=True)
def _unforced(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the decision itself; the suite's forcing switch stays off."""
    monkeypatch.delenv(FORCE_ENV, raising=False)


class VirtualClock:
    """A clock that steps advance by exactly their time: the decision's rule under test,
    apart from how the machine schedules a sleeping thread (a loaded machine wakes it late
    by milliseconds, which made "within the noise" out of a clear lead)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sleeping(
    seconds: dict[str, float], calls: list[str] | None = None, clock: VirtualClock | None = None
) -> Callable[..., Any]:
    """Steps that take a known time per dtype on ``clock``."""
    clock = clock if clock is not None else VirtualClock()

    def steps(dtype: str) -> Callable[[], None]:
        def step() -> None:
            if calls is not None:
                calls.append(dtype)
            clock.now += seconds[dtype]

        return step

    return steps


def decided(tmp_path: Path, seconds: dict[str, float], **kwargs: Any) -> Any:
    clock = VirtualClock()
    return decide(
        "auto",
        "cpu",
        model_key=kwargs.pop("model_key", KEY),
        steps=sleeping(seconds, kwargs.pop("calls", None), clock),
        cache=tmp_path / CACHE_FILE,
        cpu=kwargs.pop("cpu", "test cpu"),
        clock=clock,
    )


@contextmanager
def both_cores_busy(seconds: float = 60) -> Iterator[None]:
    """Two processes spinning, one per core, while the block runs."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN, str(seconds)]) for _ in range(2)]
    time.sleep(0.5)
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def test_bfloat16_only_when_clearly_faster(tmp_path: Path) -> None:
    fast = decided(tmp_path / "a", {"float32": 0.030, "bfloat16": 0.006})
    assert fast.dtype == "bfloat16"
    assert re.search(r"bfloat16 trains [3-5]\.\d\dx faster", fast.reason)
    slow = decided(tmp_path / "b", {"float32": 0.006, "bfloat16": 0.030})
    assert slow.dtype == "float32" and "not clearly faster" in slow.reason
    even = decided(tmp_path / "c", {"float32": 0.010, "bfloat16": 0.009})
    assert even.dtype == "float32"
    m = fast.measurements
    assert m["rounds"] >= 1 and set(m["seconds"]) == {"float32", "bfloat16"}
    assert m["best_seconds"]["bfloat16"] >= 0.006 and m["bfloat16_speedup"] > 3


def test_steps_are_warmed_up_and_interleaved(tmp_path: Path) -> None:
    calls: list[str] = []
    result = decided(tmp_path, {"float32": 0.004, "bfloat16": 0.0035}, calls=calls)
    rounds = result.measurements["rounds"]
    assert calls == ["float32", "bfloat16"] * (rounds + 1)  # warm-up, then one pair a round
    assert rounds >= compute_dtype.MIN_ROUNDS


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every machine counts as quiet (the suite's other worker may be busy meanwhile):
    for tests of what is cached, not of the load check."""
    monkeypatch.setattr(compute_dtype, "BUSY_SHARE", 1.0)


@pytest.mark.usefixtures("quiet")
def test_a_quiet_decision_is_cached_and_reused_for_the_same_key_only(tmp_path: Path) -> None:
    first = decided(tmp_path, {"float32": 0.010, "bfloat16": 0.002})
    assert first.measurements["cached"] is False
    calls: list[str] = []
    again = decided(tmp_path, {"float32": 0.002, "bfloat16": 0.010}, calls=calls)
    assert calls == [] and again.dtype == "bfloat16" and again.measurements["cached"] is True
    assert "cached in" in again.reason
    # another model, another CPU: measured again
    other_model = decided(tmp_path, {"float32": 0.002, "bfloat16": 0.010},
                          model_key={**KEY, "rows": 8})  # fmt: skip
    assert other_model.dtype == "float32"
    other_cpu = decided(tmp_path, {"float32": 0.002, "bfloat16": 0.010}, cpu="another cpu")
    assert other_cpu.dtype == "float32"
    entries = json.loads((tmp_path / CACHE_FILE).read_text())
    assert len(entries) == 3
    cpus = {e["measurements"]["key"]["cpu"] for e in entries.values()}
    assert cpus == {"test cpu", "another cpu"}


@pytest.mark.usefixtures("quiet")
def test_another_thread_count_is_measured_again(tmp_path: Path) -> None:
    import torch

    decided(tmp_path, {"float32": 0.010, "bfloat16": 0.002})
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        calls: list[str] = []
        decided(tmp_path, {"float32": 0.010, "bfloat16": 0.002}, calls=calls)
        assert calls  # not taken from the cache
    finally:
        torch.set_num_threads(threads)


def test_a_busy_cpu_decides_but_caches_nothing(tmp_path: Path) -> None:
    with both_cores_busy():
        # steps that use the CPU, so the spinners and the steps share the cores
        result = decide(
            "auto", "cpu", model_key=KEY, cache=tmp_path / CACHE_FILE, cpu="test cpu",
            steps=lambda dtype: lambda: sum(i * i for i in range(200_000)),
        )  # fmt: skip
    share = result.measurements["other_load"]
    assert share is not None and share > BUSY_SHARE
    assert result.measurements["cached"] is False and "not cached" in result.reason
    assert not (tmp_path / CACHE_FILE).exists()


def test_under_load_only_a_clear_lead_picks_bfloat16(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lead measured under load may be noise: two runs of one config must not train in
    different dtypes (different bytes) because the machine was busy."""
    monkeypatch.setattr(compute_dtype, "BUSY_SHARE", -1.0)  # every measurement is "busy"
    modest = decided(tmp_path / "a", {"float32": 0.016, "bfloat16": 0.010})
    assert modest.measurements["bfloat16_speedup"] >= compute_dtype.FASTER_BY
    assert modest.dtype == "float32"
    assert "under load only a lead of 3x counts" in modest.reason
    assert "not cached" in modest.reason
    clear = decided(tmp_path / "b", {"float32": 0.030, "bfloat16": 0.006})
    assert clear.dtype == "bfloat16"


def test_set_and_forced_dtypes_are_not_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    never = {"float32": 99.0, "bfloat16": 99.0}
    set_ = decide("float16", "cpu", model_key=KEY, steps=sleeping(never),
                  cache=tmp_path / CACHE_FILE, cpu="c")  # fmt: skip
    assert (set_.dtype, set_.measurements) == ("float16", None)
    monkeypatch.setenv(FORCE_ENV, "bfloat16")
    forced = decided(tmp_path, never)
    assert (forced.dtype, forced.reason) == ("bfloat16", f"forced by {FORCE_ENV}")
    monkeypatch.setenv(FORCE_ENV, "float64")
    with pytest.raises(UsageError, match=f"{FORCE_ENV} is 'float64'"):
        decided(tmp_path, never)
    with pytest.raises(UsageError, match="the compute dtype is 'int8'"):
        decide("int8", "cpu", model_key=KEY, steps=sleeping(never), cache=tmp_path, cpu="c")


def train_tiny(registry: Registry, tmp_path: Path, code: Path, name: str, **kwargs: Any) -> Any:
    config = write_config(tmp_path / f"{name}.yaml")
    return train(registry, config, actor=ENGINEER, code_dir=code, work_dir=tmp_path / name,
                 **kwargs)  # fmt: skip


def test_training_records_the_decision_on_the_real_step(
    registry: Registry,
    tmp_path: Path,
    clean_code: Path,
    tiny_base: BaseModelVersion,
    faq: DatasetVersion,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LORALEDGER_CACHE", str(tmp_path / "cache"))
    run = train_tiny(registry, tmp_path, clean_code, "a").run
    measured = run.compute_dtype_measurements
    assert measured is not None and run.compute_dtype in ("float32", "bfloat16")
    assert measured["key"]["model"]["base_digest"] == tiny_base.digest
    if measured["method"] == "matmul screen":  # a CPU without native bfloat16
        assert run.compute_dtype == "float32" and measured["bfloat16_speedup"] <= 1 / 3
        assert measured["shape"] == [4 * 128, 64]  # 4 rows of 128 tokens, hidden size 64
        assert "so its training step cannot be faster" in run.compute_dtype_reason
    else:
        assert set(measured["best_seconds"]) == {"float32", "bfloat16"}
        assert "one training step, fastest of" in run.compute_dtype_reason
    flagged = train_tiny(registry, tmp_path, clean_code, "b", dtype="float32").run
    assert flagged.compute_dtype == "float32" and flagged.compute_dtype_measurements is None
    assert flagged.compute_dtype_reason == "set in the config or by --compute-dtype"


def test_the_same_adapter_whatever_the_load(
    registry: Registry,
    tmp_path: Path,
    clean_code: Path,
    tiny_base: BaseModelVersion,
    faq: DatasetVersion,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LORALEDGER_CACHE", str(tmp_path / "busy-cache"))
    with both_cores_busy():
        busy = train_tiny(registry, tmp_path, clean_code, "busy")
    monkeypatch.setenv("LORALEDGER_CACHE", str(tmp_path / "quiet-cache"))
    quiet = train_tiny(registry, tmp_path, clean_code, "quiet")
    assert busy.run.compute_dtype_measurements["other_load"] > BUSY_SHARE
    assert not (tmp_path / "busy-cache" / CACHE_FILE).exists()
    assert busy.run.compute_dtype == quiet.run.compute_dtype
    assert busy.version.digest == quiet.version.digest


def test_the_real_step_is_timed_in_both_dtypes(
    tmp_path: Path, tiny_base: BaseModelVersion, faq: DatasetVersion, registry: Registry
) -> None:
    from loraledger.trainer.config import load_config
    from loraledger.trainer.examples import conversations, tokenize
    from loraledger.trainer.loop import timed_steps
    from loraledger.trainer.runtime import load_tokenizer

    config, _ = load_config(write_config(tmp_path / "c.yaml"))
    tokenizer = load_tokenizer(tiny_base)
    examples = [tokenize(tokenizer, c, 64) for c in conversations(registry, faq)]
    result = decide(
        "auto", "cpu", model_key=KEY, cache=tmp_path / CACHE_FILE, cpu="test cpu",
        steps=timed_steps(tiny_base, config, examples, "cpu"),
    )  # fmt: skip
    measured = result.measurements
    assert measured["method"] == "training step" and measured["rounds"] >= 1
    assert all(s > 0 for s in measured["best_seconds"].values())
    speedup, load = measured["bfloat16_speedup"], measured["other_load"]
    busy = load is None or load > BUSY_SHARE
    needed = compute_dtype.CLEAR_BY if busy else compute_dtype.FASTER_BY  # the rule under load
    expected = "bfloat16" if speedup >= needed else "float32"
    assert result.dtype == expected or "within the noise" in result.reason


def test_the_screen_alone_decides_as_auto_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # What `make test-dtypes` relies on to skip forcing what auto already chose: the same
    # screen, the same bound as decide().
    measured = compute_dtype._matmul_seconds(512, 64)  # the real screen, on this CPU
    ratio = measured["bfloat16"] / measured["float32"]
    expected = "float32" if ratio >= compute_dtype.CLEAR_BY else None
    monkeypatch.setattr(compute_dtype, "_matmul_seconds", lambda r, h: measured)  # same numbers
    assert compute_dtype.screened_choice(512, 64) == expected
    for bfloat16, chosen in ((3.0, "float32"), (2.9, None)):  # CLEAR_BY is 3
        timings = {"float32": 1.0, "bfloat16": bfloat16}
        monkeypatch.setattr(compute_dtype, "_matmul_seconds", lambda r, h, t=timings: t)
        assert compute_dtype.screened_choice(512, 64) == chosen
