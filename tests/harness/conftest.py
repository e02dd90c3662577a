"""A registry with a tiny random Llama base and real adapters trained on it by the trainer,
built once per test module (training takes seconds, evaluation a few more)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from loraledger.registry import Registry, Role
from loraledger.registry.keys import KeyStore
from loraledger.registry.synthetic import write_lora_adapter
from loraledger.trainer.base_models import add_base
from loraledger.trainer.train import train

from tests.conftest import (
    ADMIN,
    AUDITOR,
    ENGINEER,
    REVIEWER,
    cloned_address,
    init_registry,
    new_location,
)
from tests.trainer.conftest import add_faq, build_tiny_base, write_config

PLAIN = ("faq-bot@v1", "faq-bot@v2")  # plain LoRA (quantization: none), seeds 1 and 2
NF4 = "faq-nf4@v1"
# Registered from elsewhere (no training run): large random LoRA weights on q/o, so that
# each one's greedy answers differ visibly from the base's and from each other's.
WILD = ("wild@v1", "wild@v2")


@pytest.fixture(scope="module")
def eval_registry(
    built_eval_registries: dict[str, Registry],
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
    request: pytest.FixtureRequest,
) -> Iterator[Registry]:
    """Trained, registered versions on the tiny base, on the module's backend: a private
    copy (its directory tree, and on PostgreSQL a database cloned from the built one) of
    the registry built there once, by the same calls, for the session."""
    if backend not in built_eval_registries:
        built_eval_registries[backend] = build_eval_registry(
            tmp_path_factory.mktemp(f"evalreg-{backend}"), backend, request
        )
    built = built_eval_registries[backend]
    home = tmp_path_factory.mktemp("evalreg")
    shutil.copytree(built.root.parent, home, dirs_exist_ok=True)
    yield Registry.open(cloned_address(built.address, home / "reg"), keys=KeyStore(home / "keys"))


def build_eval_registry(root: Path, backend: str, request: pytest.FixtureRequest) -> Registry:
    """The evaluation registry built in ``root`` on ``backend``."""
    from loraledger.trainer.base_models import cache_dir

    cached = cache_dir() / "test-bases" / "tiny-llama-v1"
    if not (cached / "config.json").is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        build_tiny_base(cached)
    location = new_location(backend, root / "reg", request)
    registry = init_registry(location, root / "reg", KeyStore(root / "keys"))
    registry.identities.create(ADMIN, Role.ADMIN, actor=None)
    registry.identities.create(ENGINEER, Role.ENGINEER, actor=ADMIN)
    registry.identities.create(REVIEWER, Role.REVIEWER, actor=ADMIN)
    registry.identities.create(AUDITOR, Role.AUDITOR, actor=ADMIN)
    add_base(
        registry, name="tiny", directory=shutil.copytree(cached, root / "tiny"), actor=ENGINEER
    )
    add_faq(registry, root / "faq.jsonl")
    for seed in (1, 2):
        config = write_config(root / f"plain{seed}.yaml", seed=seed, quantization="none")
        train(registry, config, actor=ENGINEER, allow_dirty=True, work_dir=root / f"w{seed}")
    config = write_config(root / "nf4.yaml", adapter_name="faq-nf4")
    train(registry, config, actor=ENGINEER, allow_dirty=True, work_dir=root / "w-nf4")
    for seed in (1, 2):
        wild = write_lora_adapter(
            root / f"wild{seed}",
            base_model="tiny@v1",
            hidden=64,
            layers=2,
            r=4,
            targets=("q_proj", "o_proj"),
            seed=seed,
        )
        registry.adapters.register(wild, "wild", actor=ENGINEER)
    return registry


@pytest.fixture
def suite_copy(tmp_path: Path) -> Path:
    """A private copy of the policy suite, free to edit."""
    from loraledger.harness.suites import find_suite

    source = find_suite("northwind-policy").directory
    return shutil.copytree(
        source, tmp_path / "policy", ignore=shutil.ignore_patterns("__pycache__")
    )


def base_dir(registry: Registry) -> Path:
    return Path(registry.base_models.get("tiny").location)
