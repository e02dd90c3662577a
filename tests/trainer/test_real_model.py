"""The real embedded base: SmolLM2-135M-Instruct from its GGUF wheel, NF4, a few steps.

Slow (about a minute on 2 cores, plus ~25 s for the one-time conversion); CI runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from loraledger.registry import Registry
from loraledger.registry.store import sha256_file
from loraledger.trainer.base_models import EMBEDDED_NAME, add_base, embedded_gguf
from loraledger.trainer.inference import ask

from tests.conftest import ENGINEER
from tests.trainer.conftest import write_config

pytestmark = pytest.mark.slow


def test_embedded_base_trains_with_nf4(
    registry: Registry, tmp_path: Path, clean_code: Path, faq: object
) -> None:
    base = add_base(registry, name=None, directory=None, actor=ENGINEER)
    assert base.ref == f"{EMBEDDED_NAME}@v1" and base.kind == "embedded"
    assert base.origin["source_sha256"] == sha256_file(embedded_gguf())
    assert [step["step"][:10] for step in base.origin["conversion"]] == ["dequantize", "rebuild th"]
    assert {f.path for f in base.files} >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert base.architecture == "llama"
    registry.base_models.verify(base.ref)
    again = add_base(registry, name=None, directory=None, actor=ENGINEER)
    assert again.digest == base.digest  # the cached conversion is the same bytes

    from loraledger.trainer.train import train

    config = write_config(
        tmp_path / "c.yaml", base=EMBEDDED_NAME, max_steps=3, batch_size=2, max_seq_length=96
    )
    result = train(registry, config, actor=ENGINEER, code_dir=clean_code, work_dir=tmp_path / "w")
    run = result.run
    assert run.quantization["method"] == "nf4" and run.base_digest == base.digest
    assert run.compute_dtype == "float32" or "faster" in run.compute_dtype_reason
    assert len(run.loss_curve) == 3 and all(p.loss > 0 for p in run.loss_curve)
    registry.adapters.verify(result.version.ref)

    answers = ask(
        registry, ["What is the capital of France?"], base=EMBEDDED_NAME, max_new_tokens=12
    )
    assert "Paris" in answers[0]
