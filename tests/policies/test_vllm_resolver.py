"""The vLLM LoRA resolver plugin, in vLLM 0.33's own plugin loader and resolver registry:
it resolves only the exact version an environment runs, on its base, verified, and
refuses (None, with the reason logged) what was rolled back, never promoted, tampered
with, asked for on another base or by a bare name."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from loraledger.policies import vllm_resolver
from loraledger.policies.serving import check_against
from loraledger.registry import Registry

from loraledger.errors import VerificationError
from tests.harness.conftest import PLAIN, eval_registry  # noqa: F401  (fixture)
from tests.policies.helpers import deploy
from tests.registry.helpers import flipped_weights

vllm_plugins = pytest.importorskip("vllm.plugins", reason="needs vllm==0.33.0 (make installs it)")
from vllm.lora.resolver import LoRAResolverRegistry  # noqa: E402


def resolve(resolver: Any, base: str, name: str) -> Any:
    return asyncio.run(resolver.resolve_lora(base, name))


def files(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


@pytest.fixture
def resolver(
    eval_registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """The resolver as vLLM gets it: its plugin loader runs our entry point, configured by
    the process environment, for an environment of the test's own (`.environment`)."""
    monkeypatch.setenv(vllm_resolver.ENVIRONMENT_ENV, f"vllm-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv(vllm_resolver.REGISTRY_ENV, str(eval_registry.address))
    monkeypatch.setenv(vllm_resolver.DIRECTORY_ENV, str(tmp_path / "adapters"))
    monkeypatch.setenv("VLLM_PLUGINS", "loraledger")  # ours alone
    monkeypatch.setattr(LoRAResolverRegistry, "resolvers", {})
    plugins = vllm_plugins.load_plugins_by_group(vllm_plugins.DEFAULT_PLUGINS_GROUP)
    assert list(plugins) == ["loraledger"]
    plugins["loraledger"]()
    assert list(LoRAResolverRegistry.get_supported_resolvers()) == ["loraledger"]
    return LoRAResolverRegistry.get_resolver("loraledger")


def test_without_an_environment_the_plugin_registers_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(vllm_resolver.ENVIRONMENT_ENV, raising=False)
    monkeypatch.setattr(LoRAResolverRegistry, "resolvers", {})
    vllm_resolver.register()
    assert not LoRAResolverRegistry.get_supported_resolvers()


def test_only_what_the_environment_runs_resolves(
    resolver: Any,
    eval_registry: Registry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="loraledger.vllm")
    assert resolve(resolver, "tiny", PLAIN[0]) is None
    env = resolver.environment
    assert f"{env} runs no version of faq-bot; promote one first" in caplog.text
    deploy(eval_registry, env, PLAIN[0])
    request = resolve(resolver, "tiny", PLAIN[0])
    assert request is not None and request.lora_name == PLAIN[0] and request.lora_int_id > 0
    version = eval_registry.adapters.get(PLAIN[0])
    assert Path(request.lora_path).parent.name == version.digest
    stored = {f.path: f.sha256 for f in version.files}
    assert files(Path(request.lora_path)) == stored  # the approved bytes, verified copy
    base = eval_registry.base_models.get("tiny")
    for name in (base.ref, base.location):  # the engine may name its base either way
        assert resolve(resolver, name, PLAIN[0]) is not None
    caplog.clear()
    assert resolve(resolver, "HuggingFaceTB/SmolLM2-135M-Instruct", PLAIN[0]) is None
    assert "serve it on its own base" in caplog.text
    assert resolve(resolver, "tiny", "faq-bot") is None  # a bare name could pin nothing
    assert f"ask for the exact version, {PLAIN[0]}" in caplog.text
    for unknown in (PLAIN[1], "no-such@v1"):
        assert resolve(resolver, "tiny", unknown) is None
        assert f"{env} runs {PLAIN[0]}" in caplog.text


def test_promotion_and_rollback_move_what_resolves(
    resolver: Any,
    eval_registry: Registry,
) -> None:
    env = resolver.environment
    deploy(eval_registry, env, PLAIN[0])
    first = resolve(resolver, "tiny", PLAIN[0]).lora_path
    deploy(eval_registry, env, PLAIN[1])
    # what `loraledger sync DIR --check` says of the resolver's folder of the name while
    # vLLM may still hold the first version under its name
    with pytest.raises(VerificationError, match=f"serves {PLAIN[0]} .* now runs {PLAIN[1]}"):
        check_against(eval_registry, resolver.directory / "faq-bot")
    assert resolve(resolver, "tiny", PLAIN[0]) is None
    assert resolve(resolver, "tiny", PLAIN[1]) is not None
    deploy(eval_registry, env, PLAIN[0], action="rollback")
    assert resolve(resolver, "tiny", PLAIN[1]) is None
    again = resolve(resolver, "tiny", PLAIN[0]).lora_path
    assert again == first and files(Path(again)) == {
        f.path: f.sha256 for f in eval_registry.adapters.get(PLAIN[0]).files
    }


def test_tampered_bytes_are_refused(
    resolver: Any,
    eval_registry: Registry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    deploy(eval_registry, resolver.environment, PLAIN[0])
    with flipped_weights(eval_registry, PLAIN[0]):
        assert resolve(resolver, "tiny", PLAIN[0]) is None
    assert f"loraledger refused LoRA '{PLAIN[0]}'" in caplog.text
    assert "does not verify" in caplog.text or "do not match" in caplog.text
    assert resolve(resolver, "tiny", PLAIN[0]) is not None  # once the bytes are back
