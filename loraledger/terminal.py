"""Text that came from a user, made safe to print: every control, invisible and
direction-changing character is shown as an escape (``\\x1b``, ``\\u202e``, ``\\n``), so
what a user typed can neither drive the terminal (colours, cursor moves, a fake prompt),
hide part of a line, nor break the one line an error is."""

from __future__ import annotations

import unicodedata

_UNSAFE = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"))
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` with each unsafe character escaped (others, and plain ASCII, unchanged)."""
    if text.isascii() and text.isprintable():
        return text  # the common case, checked in C
    return "".join(_escape(c) if _unsafe(c) else c for c in text)


def _unsafe(character: str) -> bool:
    return unicodedata.category(character) in _UNSAFE


def _escape(character: str) -> str:
    named = _NAMED.get(character)
    if named is not None:
        return named
    code = ord(character)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else (f"\\U{code:08x}")
    )


__all__ = ["printable"]
