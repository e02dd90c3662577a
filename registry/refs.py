"""Names and references to versions: ``NAME``, ``NAME@vN`` and ``NAME@latest``.

Names are safe to use as file names, SQL values and in log lines alike: 1-64 characters
of letters, digits, '.', '_' and '-', starting with a letter or a digit. Anything else
(path separators, quotes, semicolons, whitespace, control characters) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loraledger.errors import InputError, NotFound

from .db import Connection

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# a version is written one way only: bank@v01 is not bank@v1 (nor a typo silently read as
# it), and at most 18 digits, so it fits every backend's integer
_REF_RE = re.compile(r"(?P<name>[^@]*)(?:@(?:v(?P<version>[1-9][0-9]{0,17})|(?P<latest>latest)))?")


def validate_name(name: str, *, what: str = "name") -> str:
    """Return ``name`` if it is a valid registry name, else raise :class:`InputError`."""
    if not _NAME_RE.fullmatch(name) or ".." in name:
        shown = repr(name[:40]) + (f" (… {len(name):,} characters)" if len(name) > 40 else "")
        raise InputError(
            f"{what} {shown} is invalid: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no path separators, quotes, spaces or "
            "control characters)"
        )
    return name


@dataclass(frozen=True, order=True)
class Ref:
    """A reference to a version of an adapter or a dataset; ``version=None`` means the
    latest one."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@v{self.version}"

    @classmethod
    def parse(cls, text: str, *, what: str = "adapter") -> Ref:
        match = _REF_RE.fullmatch(text)
        if match is None:
            raise InputError(
                f"{what} reference {text!r} is invalid: write NAME, NAME@vN (N from 1, without "
                "leading zeros) or NAME@latest"
            )
        name = validate_name(match["name"], what=f"{what} name")
        return cls(name, int(match["version"]) if match["version"] else None)


def resolve_version(
    conn: Connection, table: str, ref: Ref | str, *, what: str, list_command: str
) -> Ref:
    """Pin ``ref`` to an existing version in ``table`` (columns ``name``, ``version``).

    Raises :class:`NotFound` naming the versions that do exist.
    """
    parsed = Ref.parse(ref, what=what) if isinstance(ref, str) else ref
    versions = [
        int(r[0])
        for r in conn.execute(
            f"SELECT version FROM {table} WHERE name = ? ORDER BY version", [parsed.name]
        ).fetchall()
    ]
    if not versions:
        raise NotFound(f"no {what} named {parsed.name!r}; see `{list_command}`")
    version = versions[-1] if parsed.version is None else parsed.version
    if version not in versions:
        raise NotFound(
            f"{parsed.name} has no version v{version} (it has v{versions[0]}..v{versions[-1]})"
        )
    return Ref(parsed.name, version)


def next_version(conn: Connection, table: str, name: str) -> int:
    """The version number the next row for ``name`` in ``table`` gets (1, 2, 3, ...);
    read inside the write transaction that inserts it, so concurrent writers serialise."""
    row = conn.execute(
        f"SELECT coalesce(max(version), 0) + 1 FROM {table} WHERE name = ?", [name]
    ).fetchone()
    return int(row[0]) if row else 1


def version_and_environment(
    version: tuple[str, int] | None, environment: str | None
) -> tuple[str, list[object]]:
    """SQL conditions (to follow ``WHERE true``) and parameters selecting rows of one
    adapter version (columns ``adapter_name``, ``adapter_version``) and/or environment."""
    sql, params = "", []
    if version is not None:
        sql += " AND adapter_name = ? AND adapter_version = ?"
        params += [version[0], version[1]]
    if environment is not None:
        sql += " AND environment = ?"
        params.append(environment)
    return sql, params
