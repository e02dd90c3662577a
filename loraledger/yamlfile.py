"""YAML files validated by a pydantic model, with errors that name the file, line and field.

One loader for every YAML file a user writes (training configs, release policies): the
bytes are read once, hashed (the hash is what decisions record), parsed safely, validated,
and the first problem is reported as one :class:`InputError` pointing at the line of the
offending key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError

from loraledger.errors import InputError
from loraledger.inputs import load_yaml, read_bytes

ModelT = TypeVar("ModelT", bound=BaseModel)


def load_validated(path: Path, model: type[ModelT], *, what: str) -> tuple[ModelT, str, str]:
    """``path`` parsed and validated as ``model``; returns it, the sha256 of the file's bytes
    and its text (for line lookups by later checks). ``what`` names the file in errors."""
    return validated_bytes(read_bytes(path, what=what), model, what=what, path=path)


def validated_bytes(
    raw: bytes, model: type[ModelT], *, what: str, path: Path | str
) -> tuple[ModelT, str, str]:
    """:func:`load_validated` for bytes already read (a record of the registry: ``path``
    names it in errors)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise InputError("is not UTF-8 text", path=path, line=line) from None
    data: Any = load_yaml(text, path=path)  # duplicate keys, depth and alias bombs refused
    if not isinstance(data, dict):
        raise InputError(f"must be a YAML mapping ({what})", path=path)
    try:
        value = model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        loc = tuple(first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "missing":
            message = "is required"
        elif first["type"] == "extra_forbidden":
            known = known_keys(model, loc[:-1])
            message = (
                f"is not a known setting; the known ones here are {', '.join(known)}"
                if known
                else "is not a known setting; see the documentation for the allowed keys"
            )
        raise InputError(
            message, path=path, line=line_of(text, loc), field=dotted(loc) or None
        ) from None
    return value, hashlib.sha256(raw).hexdigest(), text


def known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model accepts at ``loc`` (a mapping inside ``model``), sorted: its
    fields, or what its classmethod ``policy_keys()`` names where it has one (an
    environment's registered gate rules). Empty where ``loc`` does not lead to a model."""
    current: Any = model
    for part in loc:
        current = _inner(current, part)
        if current is None:
            return []
    found = next(
        (
            c
            for c in (current, *get_args(current))
            if isinstance(c, type) and issubclass(c, BaseModel)
        ),
        None,
    )
    if found is None:
        return []
    named = getattr(found, "policy_keys", None)
    return sorted(named() if callable(named) else found.model_fields)


def _inner(annotation: Any, part: int | str) -> Any:
    """The type one step inside ``annotation``: a model's field, a list's item, a dict's
    value (through ``X | None``)."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            if isinstance(part, str) and part in candidate.model_fields:
                return candidate.model_fields[part].annotation
            continue
        origin = get_origin(candidate)
        if origin in (list, tuple) and isinstance(part, int):
            return get_args(candidate)[0]
        if origin is dict and isinstance(part, str):
            return get_args(candidate)[1]
    return None


def dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def as_value_error(check: Callable[[], object]) -> None:
    """Run a check that raises InputError, so pydantic reports it with its field.

    The ValueError is raised outside the except block on purpose: chained to the
    InputError, its traceback kept objects alive until interpreter exit.
    """
    try:
        check()
    except InputError as error:
        message = str(error)
    else:
        return
    raise ValueError(message)


def line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """The YAML line (1-based) of the node at ``loc``, or of its nearest parent."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            key = next((k for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line = (key or match).start_mark.line + 1
            node = match
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


__all__ = ["as_value_error", "dotted", "known_keys", "line_of", "load_validated"]
