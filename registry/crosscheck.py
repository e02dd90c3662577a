"""The database is an index; the signed records are the truth.

Every row a decision reads -- an approval, a deployment, an adapter version -- indexes a
signed record: its own signed payload, and the audit event that recorded it (which the
hash chain, up to a checkpoint signed by the actor, protects). Where the row is read it is
compared with that record field by field; a row that differs, a row whose event is
missing, or an event whose row is missing is a :class:`VerificationError` that names the
table, the row and the field. These are the comparisons; the collections say which
record each of their rows indexes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from loraledger.errors import VerificationError

RESTORE = (
    "the database was edited outside LoRA Ledger; restore it from a backup "
    "(`loraledger audit verify` names every such row)"
)
_MISSING = object()


def _show(value: Any) -> str:
    if value is _MISSING:
        return "nothing"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def check_row(
    table: str, row_id: str, stored: Mapping[str, Any], signed: Mapping[str, Any], source: str
) -> None:
    """Every field of ``stored`` (the row, as JSON values) must equal the same field of
    ``signed`` (the record, as JSON values); the first that does not is named."""
    for field, value in stored.items():
        recorded = signed.get(field, _MISSING)
        if recorded != value:
            raise VerificationError(
                f"{table} row {row_id}: {field} is {_show(value)} but {source} says "
                f"{_show(recorded)}; {RESTORE}"
            )


def check_same_ids(
    table: str, where: str, rows: Sequence[str], recorded: Sequence[tuple[str, int]]
) -> None:
    """The ids of the rows of ``table`` (of ``where``: a version, an environment; empty for
    the whole table) must be, in order, the ids the audit log recorded (``recorded``: id
    and event number): none deleted, inserted or moved."""
    of = f" ({where})" if where else ""
    row_ids = set(rows)
    for row_id, seq in recorded:
        if row_id not in row_ids:
            raise VerificationError(
                f"{table} row {row_id}{of}, recorded by audit event #{seq}, is missing from "
                f"the database; {RESTORE}"
            )
    audited = {row_id for row_id, _ in recorded}
    for row_id in rows:
        if row_id not in audited:
            raise VerificationError(
                f"{table} row {row_id}{of} has no audit event: it was not written by LoRA "
                f"Ledger; {RESTORE}"
            )
    if list(rows) != [row_id for row_id, _ in recorded]:
        raise VerificationError(
            f"the {table} rows{of} are not in the order the audit log recorded them; {RESTORE}"
        )


__all__ = ["RESTORE", "check_row", "check_same_ids"]
