"""Untrusted input within limits (loraledger/inputs.py): every refusal is one InputError
naming the file and line; random bytes and random nested documents never get anything
else out of a parser."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loraledger.errors import InputError
from loraledger.inputs import (
    MAX_DEPTH,
    load_yaml,
    loads_json,
    read_bytes,
    read_text,
    regular_file,
)
from loraledger.inputs import (
    lines as read_lines,
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1, "a": 2}', "has the key 'a' twice"),
        ('{"x": [{"b": 1, "b": 1}]}', "has the key 'b' twice"),
        ("[NaN]", "has NaN"),
        ('{"v": -Infinity}', "has -Infinity"),
        ("[1e999]", "has the number 1e999, too large"),
        ("[" + "7" * 5000 + "]", "integer of 5,000 digits"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"the limit is {MAX_DEPTH}"),
        ('{"a": ', "invalid JSON: Expecting value"),
    ],
)
def test_json_refusals_name_the_place(text: str, message: str) -> None:
    with pytest.raises(InputError, match=f"^data.jsonl:7: .*{message}"):
        loads_json(text, path="data.jsonl", line=7)


def test_json_within_the_limits_reads_as_json() -> None:
    text = '{"a": [1, 2.5, {"b": null, "c": "\\u00e9"}], "n": -12}'
    assert loads_json(text) == json.loads(text)
    deepest = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads_json(deepest) == json.loads(deepest)


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("staging:\n  approvals: {count: 2}\nstaging:\n  a: 1\n", "'staging' twice", 3),
        ("a: {b: 1, b: 2}\n", "'b' twice", 1),
        ("a: 1\n" + "b: " + "[" * 5000 + "]" * 5000 + "\n", "nested", None),
        ("- " * 100_000 + "x\n", "nested", None),
        ("a: &a [*a]\n", "refers to itself", 1),
        ("a: [1\n", "invalid YAML", None),
    ],
)
def test_yaml_refusals_name_the_place(text: str, message: str, line: int | None) -> None:
    with pytest.raises(InputError, match=message) as refused:
        load_yaml(text, path="p.yaml")
    assert str(refused.value).startswith("p.yaml")
    if line is not None:
        assert refused.value.line == line


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for name, previous in zip("bcdefghi", "abcdefgh", strict=True):
        bomb += f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    with pytest.raises(InputError, match="expands to more than 100,000 values"):
        load_yaml(bomb)
    # shared anchors of a reasonable size are fine
    assert load_yaml("x: &x {k: 1}\ny: *x\n") == {"x": {"k": 1}, "y": {"k": 1}}


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path, kind in (
        (fifo, "a named pipe \\(FIFO\\)"),
        (Path("/dev/zero"), "a character device"),
        (tmp_path, "a directory"),
    ):
        with pytest.raises(InputError, match=f"is {kind}, not a regular file"):
            read_bytes(path)
        with pytest.raises(InputError, match="not a regular file"):
            list(read_lines(path))
    with pytest.raises(InputError, match="does not exist"):
        regular_file(tmp_path / "nothing")


def test_sizes_and_lines_are_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(InputError, match="larger than 1,000 bytes.*raise it with --max"):
        read_bytes(big, limit=1000, flag="--max")
    long = tmp_path / "long.jsonl"
    long.write_bytes(b'{"a": 1}\n' + b"y" * 5000 + b"\n{}\n")
    read = read_lines(long, max_line=100, flag="--max-line-bytes")
    assert next(read) == (1, b'{"a": 1}\n')
    with pytest.raises(InputError, match=":2: is longer than 100 bytes.*--max-line-bytes"):
        next(read)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(InputError, match="latin.yaml:2: is not UTF-8"):
        read_text(latin)


# --- fuzz: nothing but InputError (or a value) comes out -------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=30,
)


def _parse_or_refuse(parse: Any, data: Any) -> None:
    with contextlib.suppress(InputError):
        parse(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_give_a_value_or_an_input_error(data: bytes) -> None:
    _parse_or_refuse(loads_json, data)
    _parse_or_refuse(load_yaml, data.decode("utf-8", errors="replace"))


@settings(max_examples=200, deadline=None)
@given(json_values, st.integers(0, 200))
def test_random_documents_give_a_value_or_an_input_error(value: Any, cut: int) -> None:
    text = json.dumps(value)  # NaN and Infinity included, as Python writes them
    _parse_or_refuse(loads_json, text)
    _parse_or_refuse(loads_json, text[:cut])
    _parse_or_refuse(load_yaml, text)
    _parse_or_refuse(load_yaml, text[:cut])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3 * MAX_DEPTH), st.sampled_from(["[", '{"k": ']))
def test_any_depth_gives_a_value_or_an_input_error(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * depth + "1" + closer * depth
    for parse in (loads_json, load_yaml):
        try:
            parse(text)
        except InputError as error:
            assert depth > MAX_DEPTH - 1 and "nested" in str(error)


# --- every parser the product exposes, fed random bytes and documents ------------------


def _parsers(tmp_path: Path) -> list[tuple[str, Any]]:
    from loraledger.policies.pack_checks import read_pack
    from loraledger.policies.release import load_policy
    from loraledger.registry.adapter_dir import read_adapter_config
    from loraledger.trainer.config import load_config
    from loraledger.trainer.datasets import analyse

    return [
        ("data.jsonl", analyse),
        ("train.yaml", load_config),
        ("policy.yaml", load_policy),
        ("adapter_config.json", read_adapter_config),
        ("pack.tar.gz", read_pack),
    ]


documents = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: (json.dumps(v) + "\n" + json.dumps(v) + "\n").encode()),
    st.dictionaries(st.sampled_from(["version", "environments", "base", "datasets", "peft_type",
                                     "r", "max_steps", "adapter_name", "staging"]),
                    json_values, max_size=5).map(lambda d: json.dumps(d).encode()),
)  # fmt: skip


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=documents)
def test_every_parser_gives_a_value_or_a_ledger_error(tmp_path: Path, data: bytes) -> None:
    from loraledger.errors import LedgerError

    for name, parse in _parsers(tmp_path):
        path = tmp_path / name
        path.write_bytes(data)
        with contextlib.suppress(LedgerError):
            parse(path)
