"""Running a suite on adapter versions (and bare bases) with lm-evaluation-harness.

One process, one base load: the base is re-hashed against the registry, loaded quantized
as the adapters' training runs recorded, and every adapter -- each verified through
:meth:`Adapters.open_verified` and checked against its base -- is loaded into one peft
model under its own name. Each subject then runs the suite through lm-eval's
``simple_evaluate`` on the same ``HFLM``, its rows served by its own adapter (or none, for
the bare base), generation batches shared by all subjects (:mod:`.multiplex`). lm-eval's request
cache is never used: it is keyed on the request alone, not the model (upstream
EleutherAI/lm-evaluation-harness#2715, #4063), so it would hand one adapter's answers to
another.

Each subject's run is recorded when it ends (:meth:`Evaluations.record`): complete with
every metric and sample, or failed/interrupted with none. The suite is re-hashed after
each run; a suite edited while it ran is refused.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loraledger.registry import Registry
from loraledger.registry.audit import canonical_json, utcnow
from loraledger.registry.models import (
    BaseModelVersion,
    EvalRun,
    EvalSubject,
)
from loraledger.registry.permissions import Action

from loraledger.errors import (
    EvaluationFailed,
    InputError,
    LedgerError,
    UsageError,
    VerificationError,
)

from . import judging
from .judge_check import check_judge
from .multiplex import BASE
from .results import convert_results
from .suites import SUITE_DTYPES as EVAL_DTYPES
from .suites import Suite, find_suite

LIBRARIES = ("lm_eval", "torch", "transformers", "peft", "bitsandbytes", "datasets")
QUANTIZATIONS = ("nf4", "fp4", "none")


@dataclass(frozen=True)
class EvalOptions:
    """How a suite is run; recorded with every run."""

    batch_size: int = 8
    limit: int | None = None
    seed: int = 1234
    quantization: str = "none"  # for bare bases evaluated without adapters
    double_quant: bool = True
    bootstrap_iters: int = 1000  # lm-eval's stderr of non-mean aggregations
    # The numerics of the run: float32, bfloat16, float16, or "auto" for the dtype the
    # base's checkpoint names (float32 if none), which is what plain `lm_eval --model hf`
    # loads for the same model arguments. None: the suite's setting, else "auto". Never
    # a speed heuristic: results must not depend on the CPU or on how busy it is.
    compute_dtype: str | None = None


@dataclass(frozen=True)
class _Plan:
    subjects: list[EvalSubject]
    base_ref: str
    quantization: dict[str, Any]
    compute_dtype: str
    libraries: dict[str, str]


def evaluate(
    registry: Registry,
    refs: Sequence[str],
    suite: Suite | str | Path,
    *,
    actor: str | None,
    options: EvalOptions | None = None,
    on_subject: Callable[[int, int, EvalSubject], None] | None = None,
) -> list[EvalRun]:
    """Run ``suite`` on every subject in ``refs`` (adapter refs or ``base:NAME``)."""
    options = options or EvalOptions()
    if not refs:
        raise UsageError("name at least one adapter version or base:NAME to evaluate")
    if options.batch_size < 1 or (options.limit is not None and options.limit < 1):
        raise UsageError("--batch-size and --limit must be at least 1")
    registry.act_as(actor, Action.EVAL)  # refuse early, before minutes of work
    suite = suite if isinstance(suite, Suite) else find_suite(suite)
    configs = suite.task_configs()  # every task YAML must load before a model is
    suite.load_rules()  # the rules a suite's own scoring.py registers, for the reasons
    judge, judged = _judge(registry, suite)  # a judge that cannot load fails before the base
    from loraledger.trainer.runtime import default_device, load_base_model

    device = default_device()
    plan = _plan(registry, refs, options)
    _quiet_libraries()
    base = registry.base_models.verify(plan.base_ref)
    plan = replace(
        plan, compute_dtype=eval_dtype(options.compute_dtype or suite.compute_dtype, base)
    )
    for subject in plan.subjects:
        if subject.kind == "adapter":
            registry.adapters.require_base(subject.ref, base)
    model, tokenizer = load_base_model(
        base,
        plan.quantization["method"],
        bool(plan.quantization.get("double_quant")),
        plan.compute_dtype,
        device,
    )
    model = _load_adapters(registry, model, plan.subjects)
    model.eval()

    from .multiplex import MultiplexedHFLM

    lm = MultiplexedHFLM(
        pretrained=model,
        tokenizer=tokenizer,
        batch_size=options.batch_size,
        device=device,
        subjects=[peft_name(s) for s in plan.subjects],
        per_row=_is_peft(model),
    )
    from lm_eval.tasks import TaskManager

    # Index the suite folder only: lm-eval's own task library is thousands of YAMLs, read
    # on every TaskManager() -- seconds per subject for nothing.
    tasks = TaskManager(include_path=str(suite.directory), include_defaults=False)
    runs = []
    with judging.judged_by(judge):  # what the `refusal` / `answered` rules consult
        for index, subject in enumerate(plan.subjects):
            if on_subject is not None:
                on_subject(index, len(plan.subjects), subject)
            lm.activate(peft_name(subject))
            try:
                runs.append(
                    _run_one(
                        registry, lm, tasks, configs, subject, suite, plan, options, actor, judged
                    )
                )
            finally:
                lm.finish(peft_name(subject))
    return runs


def _judge(registry: Registry, suite: Suite) -> tuple[judging.RefusalJudge, dict[str, Any] | None]:
    """The refusal judge the suite names (its model verified), and what a run it scores
    records of it: its identity and its accuracy on the labelled set."""
    if not suite.judges():
        return judging.RULES, None
    judge = judging.build_judge(suite.judge, judging.models_of(registry))
    return judge, check_judge(judge=judge).summary()


def adapter_key(subject: EvalSubject) -> str:
    """The peft adapter name an adapter version is loaded under."""
    return "v_" + hashlib.sha256(subject.ref.encode()).hexdigest()[:16]


def peft_name(subject: EvalSubject) -> str:
    """Which adapter serves the subject's rows: its own, or none for a bare base."""
    return adapter_key(subject) if subject.kind == "adapter" else BASE


def _is_peft(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def eval_dtype(requested: str | None, base: BaseModelVersion) -> str:
    """The compute dtype of an evaluation: ``requested``, or for "auto" (and None) the
    dtype the base's ``config.json`` names -- what lm-eval's ``HFLM(dtype="auto")`` and
    so plain ``lm_eval --model hf`` load -- and float32 where it names none."""
    name = requested or "auto"
    if name not in EVAL_DTYPES:
        raise UsageError(f"the compute dtype is {name!r}; use one of {', '.join(EVAL_DTYPES)}")
    if name != "auto":
        return name
    from loraledger.trainer.compute_dtype import checkpoint_dtype

    return checkpoint_dtype(Path(base.location))


def _plan(registry: Registry, refs: Sequence[str], options: EvalOptions) -> _Plan:
    subjects: list[EvalSubject] = []
    for ref in refs:
        subject = registry.evaluations.subject(ref)
        if subject not in subjects:
            subjects.append(subject)
    bases = sorted({f"{s.base_name}@v{s.base_version}" for s in subjects})
    if len(bases) > 1:
        listing = "; ".join(f"{s.ref} on {s.base_name}@v{s.base_version}" for s in subjects)
        raise UsageError(
            f"one evaluation loads one base, and these need {len(bases)} ({listing}); "
            "evaluate each base's adapters in a run of its own"
        )
    recorded: dict[str, dict[str, Any]] = {}
    for subject in subjects:
        if subject.kind != "adapter":
            continue
        run = registry.adapters.training_run(subject.ref)
        if run is not None:
            recorded[subject.ref] = {
                "method": run.quantization.method,
                "double_quant": run.quantization.double_quant,
            }
    distinct = {canonical_json(q) for q in recorded.values()}
    if len(distinct) > 1:
        listing = "; ".join(f"{r}: {q['method']}" for r, q in recorded.items())
        raise UsageError(
            f"these adapters were trained on differently quantized bases ({listing}); "
            "evaluate them in separate runs so each sees the base it was trained on"
        )
    if recorded:
        quantization = next(iter(recorded.values()))
    else:
        if options.quantization not in QUANTIZATIONS:
            raise UsageError(
                f"--quantization is {options.quantization!r}; use one of {', '.join(QUANTIZATIONS)}"
            )
        quantization = {
            "method": options.quantization,
            "double_quant": options.double_quant and options.quantization != "none",
        }
    # The dtype is decided once the base is verified (eval_dtype reads its config).
    return _Plan(subjects, bases[0], quantization, "", _libraries())


def _load_adapters(registry: Registry, model: Any, subjects: list[EvalSubject]) -> Any:
    """Wrap the base once and load each adapter, verified, under its own name."""
    from peft import PeftModel

    peft_model: Any = None
    for subject in subjects:
        if subject.kind != "adapter":
            continue
        with _naming(subject), registry.adapters.open_verified(subject.ref) as (version, path):
            if version.digest != subject.artifact_digest:
                raise VerificationError(
                    f"{subject.ref} changed while the evaluation started; run it again"
                )
            if peft_model is None:
                peft_model = PeftModel.from_pretrained(
                    model, str(path), adapter_name=adapter_key(subject)
                )
            else:
                peft_model.load_adapter(str(path), adapter_name=adapter_key(subject))
    return peft_model if peft_model is not None else model


@contextmanager
def _naming(subject: EvalSubject) -> Iterator[None]:
    """Verification errors name the version they refuse."""
    try:
        yield
    except VerificationError as exc:
        raise VerificationError(f"{subject.ref} was not loaded: {exc}") from exc


def _run_one(
    registry: Registry,
    lm: Any,
    tasks: Any,
    configs: list[dict[str, Any]],
    subject: EvalSubject,
    suite: Suite,
    plan: _Plan,
    options: EvalOptions,
    actor: str | None,
    judged: dict[str, Any] | None,
) -> EvalRun:
    import lm_eval

    started = utcnow()
    settings: dict[str, Any] = {
        "apply_chat_template": suite.apply_chat_template,
        "system_instruction": suite.system_instruction,
        "limit": options.limit,
        "batch_size": options.batch_size,
        "num_fewshot": None,
        "bootstrap_iters": options.bootstrap_iters,
    }
    if judged is not None:
        # scored by a refusal judge: which, and how far it agrees with people
        settings["judge"] = judged
    shell = {
        "id": str(uuid.uuid4()),
        "subject": subject,
        "quantization": plan.quantization,
        "compute_dtype": plan.compute_dtype,
        "suite_name": suite.name,
        "suite_kind": suite.kind,
        "suite_digest": suite.digest,
        "suite_files": suite.files,
        "settings": settings,
        "seed": options.seed,
        "lm_eval_version": lm_eval.__version__,
        "libraries": plan.libraries,
        "started_at": started,
        "created_by": actor or "",
    }
    try:
        results = lm_eval.simple_evaluate(
            model=lm,
            tasks=copy.deepcopy(configs),  # lm-eval may change the dicts it is given
            task_manager=tasks,
            log_samples=True,
            apply_chat_template=suite.apply_chat_template,
            system_instruction=suite.system_instruction,
            limit=options.limit,
            random_seed=options.seed,
            numpy_random_seed=options.seed,
            torch_random_seed=options.seed,
            fewshot_random_seed=options.seed,
            bootstrap_iters=options.bootstrap_iters,
            use_cache=None,  # never: keyed on the request alone (see the module docstring)
        )
        if results is None:
            raise RuntimeError("lm-eval returned no results")
        if suite.rehash() != suite.digest:
            raise VerificationError(
                f"suite {suite.name!r} changed on disk while it ran ({suite.directory}); "
                "nothing was stored as complete -- run the evaluation again"
            )
        metrics, samples, hashes = convert_results(results, suite)
    except KeyboardInterrupt:
        _record_unfinished(registry, shell, "interrupted", "interrupted by the user", actor)
        raise
    except Exception as exc:
        message = str(exc) if isinstance(exc, LedgerError) else f"{type(exc).__name__}: {exc}"
        _record_unfinished(registry, shell, "failed", message, actor)
        where = (
            f"the evaluation of {subject.ref} on suite {suite.name!r} failed in lm-eval: "
            f"{message}; nothing was stored as complete"
        )
        if isinstance(exc, InputError):  # the suite's own data or rules, met mid-run
            raise InputError(where) from exc
        if isinstance(exc, LedgerError):
            raise
        raise EvaluationFailed(where) from exc
    run = EvalRun(
        **shell,
        task_config_hashes=hashes,
        status="complete",
        error=None,
        sample_count=len(samples),
        results_sha256=None,
        finished_at=utcnow(),
        metrics=metrics,
        samples=samples,
    )
    return registry.evaluations.record(run, actor=actor)


def _record_unfinished(
    registry: Registry, shell: dict[str, Any], status: str, error: str, actor: str | None
) -> None:
    """Record a run that did not finish; never mask the original error."""
    run = EvalRun(
        **shell,
        task_config_hashes={},
        status=status,
        error=error[:2000],
        sample_count=0,
        results_sha256=None,
        finished_at=utcnow(),
    )
    try:
        registry.evaluations.record(run, actor=actor)
    except (LedgerError, OSError):
        logging.getLogger(__name__).warning("could not record the %s run %s", status, run.id)


def _libraries() -> dict[str, str]:
    from loraledger.trainer.base_models import library_versions

    return library_versions(*LIBRARIES)


def _quiet_libraries() -> None:
    """lm-eval and datasets talk a lot at INFO; suites are local, so stay offline."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for name in ("lm_eval", "lm-eval", "datasets", "evaluate"):
        logging.getLogger(name).setLevel(logging.ERROR)


__all__ = ["EvalOptions", "adapter_key", "evaluate"]
