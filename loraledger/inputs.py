"""Reading what a user hands in, within limits: one place for every file, line, JSON and
YAML document LoRA Ledger parses from outside.

A careless or hostile input must end as one :class:`~loraledger.errors.InputError`
naming the file, line and field -- never a traceback, a hang or memory running out, and
never a silently different meaning:

- only regular files are read (a FIFO would hang, ``/dev/zero`` never ends), and no more
  of one than its limit;
- lines are read in bounded pieces, so a "line" of gigabytes is refused at its limit;
- JSON: duplicate keys, ``NaN``/``Infinity`` (and numbers that overflow to them),
  integers longer than :data:`MAX_INT_DIGITS` digits and nesting deeper than
  :data:`MAX_DEPTH` are refused (a duplicate key would otherwise keep only its last
  value);
- YAML: the same for duplicate keys and depth, and an alias expansion past
  :data:`MAX_YAML_NODES` nodes (a "billion laughs") is refused before anything is built
  from it.

The limits are documented in docs/cli.md ("Input limits"); the flags that raise them are
named in each message.
"""

from __future__ import annotations

import json
import math
import os
import stat
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loraledger.errors import InputError

MAX_DEPTH = 64  # nesting of JSON and YAML documents
MAX_INT_DIGITS = 100  # digits of one JSON integer
MAX_YAML_NODES = 100_000  # nodes of a YAML document once its aliases are expanded
MAX_DOCUMENT_BYTES = 16 * 2**20  # a config, a policy, an adapter_config.json
MAX_LINE_BYTES = 8 * 2**20  # one JSONL record

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words ("a regular file", "a character
    device", ...)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "not a file")


def regular_file(path: Path, *, what: str = "file") -> os.stat_result:
    """The file's status, once it is known to be a regular file (links followed):
    anything else -- missing, a directory, a FIFO, a device, a socket -- is refused
    before a byte is read."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{what} does not exist", path=path) from None
    except PermissionError:
        raise InputError(f"{what} cannot be read (permission denied)", path=path) from None
    except OSError as error:
        raise InputError(f"{what} cannot be read ({error.strerror})", path=path) from None
    if not stat.S_ISREG(status.st_mode):
        raise InputError(
            f"is {kind_of(status.st_mode)}, not a regular file; pass the {what} itself", path=path
        )
    return status


def read_bytes(
    path: Path, *, limit: int = MAX_DOCUMENT_BYTES, what: str = "file", flag: str = ""
) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (``flag``: the option that
    raises the limit, named in the refusal)."""
    regular_file(path, what=what)
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as error:
        raise InputError(f"{what} cannot be read ({error.strerror})", path=path) from None
    if len(data) > limit:
        raise InputError(
            f"is larger than {limit:,} bytes, the limit for a {what}"
            + (f"; raise it with {flag}" if flag else ""),
            path=path,
        )
    return data


def read_text(path: Path, *, limit: int = MAX_DOCUMENT_BYTES, what: str = "file") -> str:
    """:func:`read_bytes` decoded as UTF-8 (refused, with its line, where it is not)."""
    data = read_bytes(path, limit=limit, what=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError("is not UTF-8 text", path=path, line=line) from None


def lines(
    path: Path, *, max_line: int = MAX_LINE_BYTES, flag: str = ""
) -> Iterator[tuple[int, bytes]]:
    """The lines of a regular file, numbered from 1, each read in a bounded piece: a line
    longer than ``max_line`` bytes is refused at that line without reading the rest."""
    regular_file(path)
    with open(path, "rb") as f:
        number = 0
        while True:
            line = f.readline(max_line + 1)
            if not line:
                return
            number += 1
            if len(line) > max_line and not line.endswith(b"\n"):
                raise InputError(
                    f"is longer than {max_line:,} bytes, the limit for one line"
                    + (f"; raise it with {flag}" if flag else ""),
                    path=path,
                    line=number,
                )
            yield number, line


def is_invisible(character: str) -> bool:
    """Zero-width, direction-changing and other invisible characters (Unicode format
    characters, Cf), and control characters (Cc): refused in names, so two names never
    look the same."""
    return unicodedata.category(character) in ("Cf", "Cc")


# --- JSON -------------------------------------------------------------------------------


class _Refused(ValueError):
    """A JSON value refused while decoding (turned into an InputError by the caller)."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Refused(f"has the key {key!r} twice; keep one")
        found[key] = value
    return found


def _constant(name: str) -> Any:
    raise _Refused(f"has {name}, which is not a number JSON allows; use a finite number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"has the number {text[:40]}, too large for a float; use a finite number")
    return value


def _int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"has an integer of {digits:,} digits; the limit is {MAX_INT_DIGITS} digits")
    return int(text)


def loads_json(
    text: str | bytes, *, path: Path | str | None = None, line: int | None = None
) -> Any:
    """``text`` parsed as strict JSON (see the module): one InputError at ``path`` and
    ``line`` for anything refused."""
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_constant=_constant,
            parse_float=_float,
            parse_int=_int,
        )
    except _Refused as error:
        raise InputError(str(error), path=path, line=line) from None
    except RecursionError:
        raise InputError(
            f"is nested too deeply; the limit is {MAX_DEPTH} levels", path=path, line=line
        ) from None
    except json.JSONDecodeError as error:
        raise InputError(
            f"invalid JSON: {error.msg} (column {error.colno})",
            path=path,
            line=line if line is not None else error.lineno,
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"invalid JSON ({error})", path=path, line=line) from None
    check_depth(value, path=path, line=line)
    return value


def check_depth(value: Any, *, path: Path | str | None = None, line: int | None = None) -> None:
    """Refuse a parsed document nested more than :data:`MAX_DEPTH` levels."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise InputError(
                    f"is nested {MAX_DEPTH + 1} levels or more; the limit is {MAX_DEPTH}",
                    path=path,
                    line=line,
                )
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


# --- YAML -------------------------------------------------------------------------------


def load_yaml(text: str, *, path: Path | str | None = None) -> Any:
    """``text`` parsed as YAML with the safe loader, refusing duplicate keys (naming the
    key and its line), nesting past :data:`MAX_DEPTH` and alias expansion past
    :data:`MAX_YAML_NODES` nodes."""
    import yaml

    try:
        loader = _strict_loader()(text)  # (its reader refuses control characters at once)
    except yaml.YAMLError as error:
        raise InputError(f"invalid YAML: {error}".splitlines()[0], path=path) from None
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise InputError(
                f"is nested too deeply; the limit is {MAX_DEPTH} levels", path=path
            ) from None
        except yaml.YAMLError as error:
            raise _invalid(error, path) from None
        if node is None:
            return None
        _check_nodes(node, path)
        try:
            value = loader.construct_document(node)
        except _DuplicateKey as error:
            raise InputError(str(error), path=path, line=error.line) from None
        except yaml.YAMLError as error:
            raise _invalid(error, path) from None
    finally:
        loader.dispose()
    check_depth(value, path=path)  # (an alias can carry a shallow value deep)
    return value


def _invalid(error: Exception, path: Path | str | None) -> InputError:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    return InputError(f"invalid YAML: {problem}", path=path, line=mark.line + 1 if mark else None)


class _DuplicateKey(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _check_nodes(root: Any, path: Path | str | None) -> None:
    """Depth and expanded size of a composed document, without expanding it: each node's
    size is counted once per reference (aliases are shared nodes)."""
    import yaml

    sizes: dict[int, int] = {}
    visiting: set[int] = set()  # the nodes on the path being walked: a cycle comes back
    # iterative post-order walk; depth counted on the way down
    stack: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        if not done and id(node) in visiting:
            raise InputError(
                "refers to itself through an alias (*reference); write the values out",
                path=path,
                line=node.start_mark.line + 1,
            )
        if depth > MAX_DEPTH:
            raise InputError(
                f"is nested {MAX_DEPTH + 1} levels or more; the limit is {MAX_DEPTH}",
                path=path,
                line=node.start_mark.line + 1,
            )
        children = (
            [item for pair in node.value for item in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        if done:
            total = 1 + sum(sizes[id(child)] for child in children)
            if total > MAX_YAML_NODES:
                raise InputError(
                    f"expands to more than {MAX_YAML_NODES:,} values through its aliases "
                    "(&anchors and *references); write the values out",
                    path=path,
                    line=node.start_mark.line + 1,
                )
            sizes[id(node)] = total
            visiting.discard(id(node))
            continue
        if id(node) in sizes:
            continue
        visiting.add(id(node))
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)


_LOADER: Any = None


def _strict_loader() -> Any:
    """yaml.SafeLoader refusing a mapping that names a key twice (PyYAML keeps the last)."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    class StrictLoader(yaml.SafeLoader):  # type: ignore[misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                self.flatten_mapping(node)
                seen: dict[Any, int] = {}
                for key_node, _ in node.value:
                    key = self.construct_object(key_node, deep=True)
                    try:
                        first = seen.get(key)
                    except TypeError:  # an unhashable key: the base class says so
                        break
                    line = key_node.start_mark.line + 1
                    if first is not None:
                        raise _DuplicateKey(
                            f"has the key {key!r} twice (lines {first} and {line}); keep one",
                            line,
                        )
                    seen[key] = line
            return super().construct_mapping(node, deep=deep)

    _LOADER = StrictLoader
    return _LOADER


__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_INT_DIGITS",
    "MAX_LINE_BYTES",
    "MAX_YAML_NODES",
    "check_depth",
    "is_invisible",
    "lines",
    "load_yaml",
    "loads_json",
    "read_bytes",
    "read_text",
    "regular_file",
]
