"""Training configs: defaults from the model, errors with the YAML line and field."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from loraledger.trainer.config import load_config

from loraledger.errors import InputError, LedgerWarning

GOOD = """\
base: smollm2-135m-instruct
datasets: [bank-support]
adapter_name: bank-support
lora: {r: 8, alpha: 16, dropout: 0.05, target_modules: all-linear}
quantization: nf4
learning_rate: 2.0e-4
max_steps: 60
batch_size: 8
seed: 1234
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(text)
    return path


def test_the_documented_example_loads(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    config, digest = load_config(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (config.quantization, config.double_quant, config.compute_dtype) == ("nf4", True, "auto")
    assert config.lora.target_modules == "all-linear" and config.gradient_accumulation == 1
    assert config.unknown_keys == []


def test_an_unknown_key_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r":\d+: field 'future_option': is not a known setting; "
                       "the known ones here are adapter_name, base, batch_size"):  # fmt: skip
        load_config(write(tmp_path, GOOD + "future_option: 3\n"))
    # an alias bomb under an unknown key is refused before anything expands
    bomb = "x: &x [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"x{i}: &x{i} [{', '.join([f'*x{i - 1}' if i else '*x'] * 10)}]\n" for i in range(6)
    )
    with pytest.raises(InputError, match="expands to more than 100,000 values"):
        load_config(write(tmp_path, GOOD + bomb))


def test_a_newer_format_warns_and_keeps_nothing_it_does_not_know(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "format_version: 2\nfuture_option: 3\n")
    with pytest.warns(LedgerWarning, match="format 2 is newer .*ignoring future_option"):
        config, _ = load_config(path)
    assert config.unknown_keys == ["future_option"]
    assert "future_option" not in config.model_dump() and "ignored_keys" not in config.model_dump()
    with pytest.raises(InputError, match="ignored_keys is not a setting"):
        load_config(write(tmp_path, GOOD + "ignored_keys: [a]\n"))


def test_duplicate_keys_are_refused_with_both_lines(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="has the key 'seed' twice \\(lines \\d+ and \\d+\\)"):
        load_config(write(tmp_path, GOOD + "seed: 1\nseed: 2\n"))


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (GOOD.replace("base: smollm2-135m-instruct\n", ""), ":", "field 'base': is required"),
        (
            GOOD.replace("batch_size: 8", "batch_size: eight"),
            ":8: field 'batch_size'",
            "valid integer",
        ),
        (
            GOOD.replace("quantization: nf4", "quantization: int3"),
            ":5: field 'quantization'",
            "'nf4', 'fp4' or 'none'",
        ),
        (GOOD.replace("r: 8", "r: 0"), ":4: field 'lora.r'", "greater than 0"),
        (GOOD + "epochs: 2\n", ":", "give exactly one of max_steps or epochs"),
        (
            GOOD.replace("[bank-support]", "[bank-support, bank-support]"),
            ":2: field 'datasets'",
            "listed twice",
        ),
        (
            GOOD.replace("[bank-support]", "['bank support']"),
            ":2: field 'datasets'",
            "dataset name 'bank support' is invalid",
        ),
        (
            GOOD.replace("adapter_name: bank-support", "adapter_name: a/b"),
            ":3: field 'adapter_name'",
            "adapter name 'a/b' is invalid",
        ),
        (
            GOOD.replace("lora: {", "lora: {bogus: 1, "),
            ":4: field 'lora.bogus'",
            "is not a known setting",
        ),
    ],
)
def test_errors_name_line_and_field(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}{where}"), str(caught.value)
    assert message in str(caught.value)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "lora: [unclosed\n")
    with pytest.raises(InputError, match=r"train.yaml:\d+: invalid YAML"):
        load_config(path)


def test_not_a_mapping_and_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="must be a YAML mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(InputError, match="training config does not exist"):
        load_config(tmp_path / "nope.yaml")
