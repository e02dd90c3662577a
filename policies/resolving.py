"""Which adapter a serving engine may load: exactly what an environment runs, verified.

:func:`resolve_promoted` is what a serving engine's loader asks before it loads an adapter
by name (the vLLM resolver plugin, :mod:`.vllm_resolver`, is one such loader). It answers
with a verified copy on disk, or refuses with the reason:

* the name must be the exact version the environment runs now (``NAME@vN``): not an
  older one, not a bare ``NAME`` (an engine caches what it loaded under the name it was
  asked for, so the name must pin the bytes);
* the engine's base must be the adapter's: its registered base name or ref, the model it
  was converted from, or the ``base_model_name_or_path`` its adapter was saved with;
* every link of the environment's trace must verify: the signed, audited deployment
  record, the adapter's signature and files, its training run, base, datasets, the gate
  check and the approvals the promotion rests on (:func:`.trace.trace_environment`);
* the files handed over are a copy verified as it was written (:func:`.serving.sync`),
  re-checked against their signature and against the deployment the environment runs
  now (:func:`.serving.check_against`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from loraledger.registry import Registry
from loraledger.registry.models import Deployment, TrainingRun

from loraledger.errors import Conflict, VerificationError

from . import serving
from .trace import trace_environment


class Unresolved(Conflict):
    """A serving engine asked for an adapter it may not load; the message says why."""


@dataclass(frozen=True)
class Resolved:
    deployment: Deployment
    path: Path  # the verified adapter directory to load
    base: str  # the base model the adapter was trained on (its registry ref)


def resolve_promoted(
    registry: Registry, environment: str, base_model_name: str, lora_name: str, directory: Path
) -> Resolved:
    """The adapter ``lora_name`` for an engine serving ``base_model_name``, if it is what
    ``environment`` runs now, verified, copied under ``directory``; else
    :class:`Unresolved` (or the verification error) naming why."""
    name = lora_name.rsplit("@v", 1)[0]
    current = registry.deployments.serving(environment, name)
    if current is None:
        raise Unresolved(f"{environment} runs no version of {name}; promote one first")
    if lora_name != current.adapter:
        hint = (
            f"ask for the exact version, {current.adapter}"
            if lora_name == name
            else f"{environment} runs {current.adapter}"
        )
        raise Unresolved(f"{lora_name!r} is not what {environment} runs: {hint}")
    run = registry.adapters.training_run(current.adapter)
    names = _base_names(registry, current.adapter, run)
    verified = _verified(registry, environment, name)  # a broken trace is said before a wrong name
    if base_model_name not in names:
        raise Unresolved(
            f"{current.adapter} was trained on {sorted(names)[0]}, and the engine serves "
            f"{base_model_name!r}; serve it on its own base"
        )
    return _copied(registry, environment, directory / name, verified, run)


def verified_current(
    registry: Registry, environment: str, directory: Path, name: str | None = None
) -> Resolved:
    """What ``environment`` runs now of adapter ``name`` (None: of the one adapter it
    runs), every link of its trace verified, as a verified copy under ``directory``
    (:func:`.serving.sync`, re-checked against its signature and against the deployment
    the environment runs now)."""
    current = _verified(registry, environment, name)
    return _copied(
        registry, environment, directory, current, registry.adapters.training_run(current.adapter)
    )


def _copied(
    registry: Registry,
    environment: str,
    directory: Path,
    current: Deployment,
    run: TrainingRun | None,
) -> Resolved:
    """``current`` (verified; ``run``: its training run) as a verified copy under
    ``directory``."""
    result = serving.sync(registry, environment, directory, name=current.name)
    serving.check_against(registry, directory)
    drift = serving.check_release(result.release)
    if drift:
        raise VerificationError(f"the copy of {current.adapter} does not verify: {drift[0]}")
    return Resolved(
        deployment=result.deployment,
        path=result.release / "adapter",
        base=run.base_ref if run else "",
    )


def _verified(registry: Registry, environment: str, name: str | None) -> Deployment:
    """The environment's current deployment of ``name``, after its whole trace verified."""
    trace = trace_environment(registry, environment, name=name)
    broken = [link for link in trace.links if not link.verified]
    if broken:
        problems = "; ".join(f"{link.kind} {link.ref}: {link.problem}" for link in broken)
        adapter = trace.deployment.adapter if trace.deployment else environment
        raise VerificationError(f"{adapter} in {environment} does not verify: {problems}")
    assert trace.deployment is not None  # (a trace of an environment names its deployment)
    return trace.deployment


def _base_names(registry: Registry, ref: str, run: TrainingRun | None) -> set[str]:
    """The names an engine may give the adapter's base (``run``: its training run)."""
    version = registry.adapters.get(ref)
    names = {version.base_model_name} if version.base_model_name else set()
    if run is not None:
        base = registry.base_models.get(run.base_ref)
        names |= {base.name, base.ref, base.location}
        model = base.origin.get("model")
        if isinstance(model, str):
            names.add(model)
    return names


__all__ = ["Resolved", "Unresolved", "resolve_promoted", "verified_current"]
