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
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from loraledger.errors import InputError

ModelT = TypeVar("ModelT", bound=BaseModel)


def load_validated(path: Path, model: type[ModelT], *, what: str) -> tuple[ModelT, str, str]:
    """``path`` parsed and validated as ``model``; returns it, the sha256 of the file's bytes
    and its text (for line lookups by later checks). ``what`` names the file in errors."""
    import yaml

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} does not exist", path=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("is not UTF-8", path=path) from None
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        raise InputError(
            f"invalid YAML: {problem}", path=path, line=mark.line + 1 if mark else None
        ) from None
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
            message = "is not a known setting; see the documentation for the allowed keys"
        raise InputError(
            message, path=path, line=line_of(text, loc), field=dotted(loc) or None
        ) from None
    return value, hashlib.sha256(raw).hexdigest(), text


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


__all__ = ["as_value_error", "dotted", "line_of", "load_validated"]
