"""Serving bundles: atomic sync, byte-identical after rollback, drift found offline; the
deployed version loaded as a ready, verified model."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from loraledger.policies.serving import check, load_deployed, sync
from loraledger.registry import Registry

from loraledger.errors import Conflict, InputError
from tests.harness.conftest import PLAIN, eval_registry  # noqa: F401  (fixture)
from tests.policies.helpers import deploy


def tree(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_sync_rollback_sync_gives_back_the_same_bytes(
    eval_registry: Registry,
    tmp_path: Path,
) -> None:
    serve = tmp_path / "serve"
    with pytest.raises(Conflict, match="serving runs nothing"):
        sync(eval_registry, "serving", serve)
    deploy(eval_registry, "serving", PLAIN[0])
    first = sync(eval_registry, "serving", serve)
    assert (serve / "current").is_symlink() and not first.reused
    v1 = tree((serve / "current").resolve())
    assert set(v1) >= {"adapter/adapter_model.safetensors", "signature.sig", "release.json"}
    assert check(serve) == []
    deploy(eval_registry, "serving", PLAIN[1])
    sync(eval_registry, "serving", serve)
    assert tree((serve / "current").resolve()) != v1
    deploy(eval_registry, "serving", PLAIN[0], action="rollback")
    back = sync(eval_registry, "serving", serve)
    assert back.reused and tree((serve / "current").resolve()) == v1
    assert not [p for p in serve.iterdir() if p.name.startswith(".")]  # nothing half-written


def test_check_reports_drift_offline(eval_registry: Registry, tmp_path: Path) -> None:
    serve = tmp_path / "serve"
    deploy(eval_registry, "drift", PLAIN[1])
    sync(eval_registry, "drift", serve)
    weights = (serve / "current" / "adapter" / "adapter_model.safetensors").resolve()
    weights.chmod(0o644)
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    (serve / "current" / "adapter" / "extra.txt").write_text("x")
    (problem,) = check(serve)
    assert "faq-bot@v2" in problem and "adapter_model.safetensors" in problem
    again = sync(eval_registry, "drift", serve)  # a damaged release is rewritten, not reused
    assert not again.reused and check(serve) == []
    with pytest.raises(InputError, match="has no 'current' bundle"):
        check(tmp_path / "empty")


def test_load_deployed_gives_a_verified_peft_model(
    eval_registry: Registry,
) -> None:
    deploy(eval_registry, "load", PLAIN[0])
    model, tokenizer, deployment = load_deployed(eval_registry, "load")
    assert deployment.adapter == PLAIN[0]
    assert type(model).__name__.startswith("PeftModel") and not model.training
    ids = tokenizer("Hello", return_tensors="pt")
    assert model(**ids).logits.shape[-1] == model.config.vocab_size
