"""Names and references: ``NAME``, ``NAME@vN`` and ``NAME@latest``.

Names are safe to use as file names, SQL values and in log lines alike: 1-64 characters
of letters, digits, '.', '_' and '-', starting with a letter or a digit. Anything else
(path separators, quotes, semicolons, whitespace, control characters) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loraledger.errors import InputError

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_REF_RE = re.compile(r"(?P<name>[^@]*)(?:@(?:v(?P<version>[0-9]+)|(?P<latest>latest)))?")


def validate_name(name: str, *, what: str = "name") -> str:
    """Return ``name`` if it is a valid registry name, else raise :class:`InputError`."""
    if not _NAME_RE.fullmatch(name) or ".." in name:
        raise InputError(
            f"{what} {name!r} is invalid: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no path separators, quotes, spaces or "
            "control characters)"
        )
    return name


@dataclass(frozen=True, order=True)
class AdapterRef:
    """An adapter version reference; ``version=None`` means the latest one."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@v{self.version}"

    @classmethod
    def parse(cls, text: str) -> AdapterRef:
        match = _REF_RE.fullmatch(text)
        if match is None or (match["version"] is not None and int(match["version"]) < 1):
            raise InputError(
                f"adapter reference {text!r} is invalid: write NAME, NAME@vN (N >= 1) "
                "or NAME@latest"
            )
        name = validate_name(match["name"], what="adapter name")
        return cls(name, int(match["version"]) if match["version"] else None)
