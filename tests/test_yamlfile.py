"""Every YAML file a user writes: one line naming the file, the line and the field, and for
an unknown key the keys that are known at that place."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from loraledger.errors import InputError
from loraledger.yamlfile import known_keys, load_validated


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: int = 1
    beta: int = 2


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    inner: Inner | None = None
    items: list[Inner] = []
    named: dict[str, Inner] = {}


@pytest.mark.parametrize(
    ("body", "where", "known"),
    [
        ("name: x\nnmae: y\n", ":2: field 'nmae'", "inner, items, name, named"),
        ("name: x\ninner: {alfa: 1}\n", ":2: field 'inner.alfa'", "alpha, beta"),
        (
            "name: x\nitems:\n  - {beta: 1}\n  - {gamma: 1}\n",
            ":4: field 'items.1.gamma'",
            "alpha, beta",
        ),
        ("name: x\nnamed:\n  one: {delta: 1}\n", ":3: field 'named.one.delta'", "alpha, beta"),
    ],
)
def test_an_unknown_key_names_its_line_and_the_known_keys(
    tmp_path: Path, body: str, where: str, known: str
) -> None:
    path = tmp_path / "file.yaml"
    path.write_text(body)
    with pytest.raises(InputError) as raised:
        load_validated(path, Outer, what="test file")
    assert str(raised.value) == (
        f"{path}{where}: is not a known setting; the known ones here are {known}"
    )


def test_known_keys_is_empty_where_no_model_is() -> None:
    assert known_keys(Outer, ("name",)) == [] and known_keys(Outer, ("nope",)) == []
    assert known_keys(Outer, ()) == ["inner", "items", "name", "named"]
