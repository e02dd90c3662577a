"""The training compute dtype: set by the user, or decided by timing the real step.

On a GPU the rule is fixed (bfloat16 where the GPU has it, else float16). On a CPU no
flag says which dtype trains faster: a CPU can list ``avx512_bf16`` and still multiply
bfloat16 slower than float32, and bfloat16 without native support is about ten times
slower. So the decision times the training step itself -- the model at hand, LoRA-wrapped
and quantized as configured, forward and backward on a micro-batch of the real data --
in both dtypes, interleaved, after a warm-up, keeping each dtype's fastest time (other
work only ever adds time). Rounds are repeated while the two are within the noise;
bfloat16 is chosen only when it is clearly faster. A first matrix product of the model's
shape in each dtype skips the step's timing where bfloat16 is hopelessly slower.

The decision is cached under a key of everything it depends on (CPU model and its
bfloat16 flags, torch version, thread count, and the model: base digest, quantization,
LoRA settings, batch shape), so the same config trains the same bytes on the same
machine. A measurement taken while other processes used more than ``BUSY_SHARE`` of the
CPU is used for that run but never cached. ``LORALEDGER_FORCE_COMPUTE_DTYPE`` forces the
outcome of the automatic decision (the test suite runs with each dtype forced).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loraledger.registry.audit import canonical_json, utcnow

from loraledger.atomic import write_atomically
from loraledger.errors import InputError, UsageError

FORCE_ENV = "LORALEDGER_FORCE_COMPUTE_DTYPE"
DTYPES = ("float32", "bfloat16", "float16")
CACHE_FILE = "training-compute-dtype.json"
FASTER_BY = 1.25  # bfloat16 must beat float32 by this factor (it is also less exact)
CLEAR_BY = 3.0  # a gap this wide needs no further rounds
MIN_ROUNDS, MAX_ROUNDS = 2, 6
SCREEN_REPEATS = 5
LOAD_WINDOW = 0.3  # seconds: the shortest window whose CPU counters say anything
BUSY_SHARE = 0.15  # of the machine's CPU time used by other processes while measuring

StepFactory = Callable[[str], Callable[[], None]]


@dataclass(frozen=True)
class DtypeDecision:
    """The dtype, why, and (for a measured decision) the measurements behind it."""

    dtype: str
    reason: str
    measurements: dict[str, Any] | None = field(default=None)


def decide(
    requested: str,
    device: str,
    *,
    model_key: dict[str, Any],
    steps: StepFactory,
    cache: Path,
    cpu: str,
    screen: tuple[int, int] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> DtypeDecision:
    """The compute dtype for training ``model_key`` on ``device``.

    ``steps(dtype)`` builds the model in that dtype and returns one training step
    (forward and backward, no optimizer step); it is called only when a CPU decision has
    to be measured. ``screen`` (rows, hidden size) first times one matrix product of
    the model's shape in each dtype: where bfloat16 is ``CLEAR_BY`` times slower at that
    (a CPU without native bfloat16: often 10 to 100 times), its training step cannot win,
    and timing it -- minutes for a 135M model -- is skipped. ``clock`` times the steps
    (the load on the machine is read from /proc/stat whatever it is).
    """
    import torch

    if requested != "auto":
        if requested not in DTYPES:
            raise UsageError(f"the compute dtype is {requested!r}; use auto or {', '.join(DTYPES)}")
        return DtypeDecision(requested, "set in the config or by --compute-dtype")
    forced = os.environ.get(FORCE_ENV)
    if forced:
        if forced not in DTYPES:
            raise UsageError(f"{FORCE_ENV} is {forced!r}; use one of {', '.join(DTYPES)}")
        return DtypeDecision(forced, f"forced by {FORCE_ENV}")
    if device == "cuda":
        if torch.cuda.is_bf16_supported():
            return DtypeDecision("bfloat16", "the GPU supports bfloat16 natively")
        return DtypeDecision("float16", "the GPU lacks bfloat16")
    key = {
        "cpu": cpu,
        "cpu_bf16_flags": sorted(cpu_bf16_flags()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": model_key,
    }
    key_hash = hashlib.sha256(canonical_json(key).encode()).hexdigest()
    known = _read_cache(cache)
    if key_hash in known:
        entry = known[key_hash]
        return DtypeDecision(
            entry["dtype"],
            f"{entry['reason']}; measured {entry['measured_at']} and cached in {cache}",
            entry["measurements"] | {"cached": True},
        )
    dtype, reason, measurements = _measure(steps, screen, clock)
    measurements["key"] = key
    if measurements["other_load"] is None or measurements["other_load"] > BUSY_SHARE:
        share = measurements["other_load"]
        load = "an unknown share" if share is None else f"{share:.0%}"
        speedup = measurements.get("bfloat16_speedup", 0.0)
        if dtype == "bfloat16" and speedup < CLEAR_BY:
            # A lead measured under load is noise as often as not: two runs of the same
            # config would train in different dtypes, into different bytes. Under load
            # only a clear lead picks the less exact dtype.
            dtype, reason = (
                "float32",
                (
                    f"bfloat16 measured {speedup:.2f}x faster, but under load only a lead of "
                    f"{CLEAR_BY:.0f}x counts ({reason})"
                ),
            )
        reason += (
            f"; other processes used {load} of the CPU while it was measured, so it is not cached"
        )
        return DtypeDecision(dtype, reason, measurements | {"cached": False})
    known[key_hash] = {
        "dtype": dtype,
        "reason": reason,
        "measured_at": utcnow().isoformat(timespec="seconds"),
        "measurements": measurements,
    }
    _write_cache(cache, known)
    return DtypeDecision(dtype, reason, measurements | {"cached": False})


def screened_choice(rows: int, hidden: int) -> str | None:
    """The dtype ``decide("auto", "cpu")`` picks from the matmul screen alone at this shape
    (float32, where bfloat16 multiplies ``CLEAR_BY`` times slower: a CPU without native
    bfloat16), or None where it would go on to time the real step. ``make test-dtypes``
    skips forcing what auto already ran."""
    _, slower = _screen(rows, hidden)
    return "float32" if slower >= CLEAR_BY else None


def _screen(rows: int, hidden: int) -> tuple[dict[str, float], float]:
    """The matmul screen: each dtype's fastest product, and how many times slower
    bfloat16 is."""
    products = _matmul_seconds(rows, hidden)
    return products, products["bfloat16"] / products["float32"]


def checkpoint_dtype(directory: Path) -> str:
    """The dtype a checkpoint's ``config.json`` names (float32 where it names none or
    another): what ``from_pretrained(dtype="auto")``, and so plain ``lm_eval --model hf``,
    computes in. Evaluation and inference use it unless told otherwise."""
    path = directory / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the model's config ({exc})", path=path) from None
    named = str(config.get("dtype") or config.get("torch_dtype") or "float32")
    named = named.removeprefix("torch.")
    return named if named in DTYPES else "float32"


def _measure(
    steps: StepFactory, screen: tuple[int, int] | None, clock: Callable[[], float]
) -> tuple[str, str, dict[str, Any]]:
    """Time both dtypes' steps interleaved; returns the dtype, the reason and the numbers."""
    order = ("float32", "bfloat16")
    idle_load = _idle_load()
    before = _cpu_sample()
    if screen is not None:
        products, slower = _screen(*screen)
        if slower >= CLEAR_BY:
            other_load = _worst(idle_load, _other_load(before, _cpu_sample()))
            reason = (
                f"bfloat16 multiplies {slower:.0f}x slower than float32 here ({screen[0]}x"
                f"{screen[1]} by {screen[1]}x{screen[1]}, fastest of {SCREEN_REPEATS}: float32 "
                f"{products['float32'] * 1e3:.2f} ms, bfloat16 {products['bfloat16'] * 1e3:.2f} "
                "ms), so its training step cannot be faster; the step was not timed"
            )
            return (
                "float32",
                reason,
                {
                    "method": "matmul screen",
                    "matmul_seconds": {k: round(v, 6) for k, v in products.items()},
                    "shape": list(screen),
                    "bfloat16_speedup": round(1 / slower, 4),
                    "other_load": None if other_load is None else round(other_load, 4),
                },
            )
    runs = {name: steps(name) for name in order}
    for name in order:  # warm-up: allocation and kernel choice happen on the first call
        runs[name]()
    seconds: dict[str, list[float]] = {name: [] for name in order}
    ratio = 1.0
    for round_ in range(1, MAX_ROUNDS + 1):
        for name in order:
            started = clock()
            runs[name]()
            seconds[name].append(clock() - started)
        ratio = min(seconds["float32"]) / min(seconds["bfloat16"])  # > 1: bfloat16 faster
        enough = round_ >= MIN_ROUNDS or max(ratio, 1 / ratio) >= CLEAR_BY
        if enough and not _within_noise(ratio, seconds):
            break
    other_load = _worst(idle_load, _other_load(before, _cpu_sample()))
    best = {name: min(values) for name, values in seconds.items()}
    measured = (
        f"one training step, fastest of {len(seconds['float32'])} interleaved: float32 "
        f"{best['float32'] * 1e3:.1f} ms, bfloat16 {best['bfloat16'] * 1e3:.1f} ms"
    )
    if ratio >= FASTER_BY and not _within_noise(ratio, seconds):
        dtype, reason = "bfloat16", f"bfloat16 trains {ratio:.2f}x faster here ({measured})"
    elif ratio >= FASTER_BY:
        dtype, reason = "float32", f"bfloat16's lead is within the noise ({measured})"
    else:
        dtype, reason = "float32", f"bfloat16 is not clearly faster here ({measured})"
    measurements = {
        "method": "training step",
        "seconds": {name: [round(s, 6) for s in values] for name, values in seconds.items()},
        "best_seconds": {name: round(s, 6) for name, s in best.items()},
        "bfloat16_speedup": round(ratio, 4),
        "rounds": len(seconds["float32"]),
        "other_load": None if other_load is None else round(other_load, 4),
    }
    return dtype, reason, measurements


def _matmul_seconds(rows: int, hidden: int) -> dict[str, float]:
    """Fastest time of a (rows x hidden) by (hidden x hidden) product per dtype,
    interleaved."""
    import torch

    generator = torch.Generator().manual_seed(0)
    a = torch.randn(rows, hidden, generator=generator)
    b = torch.randn(hidden, hidden, generator=generator)
    pairs = {"float32": (a, b), "bfloat16": (a.bfloat16(), b.bfloat16())}
    best = dict.fromkeys(pairs, float("inf"))
    for x, y in pairs.values():  # warm-up
        x @ y
    for _ in range(SCREEN_REPEATS):
        for name, (x, y) in pairs.items():
            started = time.perf_counter()
            x @ y
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def _within_noise(ratio: float, seconds: dict[str, list[float]]) -> bool:
    """Whether the gap between the two bests is smaller than either's own spread."""
    if len(seconds["float32"]) < 2:
        return False  # one round: only a gap of CLEAR_BY or more ends the measuring then
    spread = max((max(v) - min(v)) / min(v) for v in seconds.values())
    return abs(ratio - 1) < spread


def cpu_bf16_flags() -> set[str]:
    """The CPU's bfloat16 instruction flags (avx512_bf16, amx_bf16, ...), from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    flags = next(
        (ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []
    )
    return {f for f in flags if "bf16" in f}


def _cpu_sample() -> tuple[float, float, float] | None:
    """(machine busy seconds, this process's CPU seconds, wall seconds), or None where
    /proc/stat is not readable."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    ticks = [int(f) for f in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    per_second = os.sysconf("SC_CLK_TCK")
    own = os.times()
    return (sum(ticks) - idle) / per_second, own.user + own.system, time.monotonic()


def _idle_load() -> float | None:
    """Other processes' share of the CPU over ``LOAD_WINDOW`` seconds while this one
    waits: the load a measurement too short to sample by itself is taken under."""
    before = _cpu_sample()
    time.sleep(LOAD_WINDOW)
    return _other_load(before, _cpu_sample())


def _worst(idle: float | None, during: float | None) -> float | None:
    """The higher of the two loads; unknown if the idle one is (``during`` may be too
    short a window to say anything, and is then None)."""
    if idle is None:
        return None
    return idle if during is None else max(idle, during)


def _other_load(
    before: tuple[float, float, float] | None, after: tuple[float, float, float] | None
) -> float | None:
    """The share of the machine's CPU time that other processes used in between, or
    None for a window under ``LOAD_WINDOW`` (the kernel counts in ticks of 10 ms)."""
    if before is None or after is None:
        return None
    wall = after[2] - before[2]
    capacity = wall * (os.cpu_count() or 1)
    if wall < LOAD_WINDOW:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return max(0.0, min(1.0, others / capacity))


def _read_cache(cache: Path) -> dict[str, Any]:
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _write_cache(cache: Path, known: dict[str, Any]) -> None:
    write_atomically(cache, json.dumps(known, indent=2, sort_keys=True) + "\n")
