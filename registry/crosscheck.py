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

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from loraledger.errors import VerificationError

from .models import AuditEvent

RESTORE = (
    "the database was edited outside LoRA Ledger; restore it from a backup "
    "(`loraledger audit verify` names every such row)"
)
_MISSING = object()
T = TypeVar("T")


def _show(value: Any) -> str:
    if value is _MISSING:
        return "nothing"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _exact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def check_row(
    table: str, row_id: str, stored: Mapping[str, Any], signed: Mapping[str, Any], source: str
) -> None:
    """Every field of ``stored`` (the row, as JSON values) must equal the same field of
    ``signed`` (the record, as JSON values); the first that does not is named."""
    for field, value in stored.items():
        recorded = signed.get(field, _MISSING)
        if recorded != value and _exact(recorded) != _exact(value):  # NaN equals NaN
            raise VerificationError(
                f"{table} row {row_id}: {field} is {_show(value)} but {source} says "
                f"{_show(recorded)}; {RESTORE}"
            )


def parsed(table: str, row_id: object, build: Callable[[], T]) -> T:
    """``build()`` -- a record made from a row's columns -- or, where the columns do not
    make one (a value of the wrong type, JSON that is not), a :class:`VerificationError`
    naming the row and the field."""
    try:
        return build()
    except (ValueError, TypeError, KeyError) as error:
        errors = getattr(error, "errors", None)
        if callable(errors):  # pydantic's: the field and what is wrong with it
            first = errors()[0]
            detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        else:
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise VerificationError(
            f"{table} row {row_id} is not a record LoRA Ledger wrote ({detail}); {RESTORE}"
        ) from None


def record_sha256(value: Any) -> str:
    """sha256 over the canonical JSON of ``value`` (a record dumped as JSON values): what an
    audit event records of a record whose every field it does not carry."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


ROW_DIGEST = "row_sha256"  # in registration events since 2026-12: the whole row's sha256


def row_record(row: BaseModel) -> dict[str, Any]:
    """A row's record as a registration event's :data:`ROW_DIGEST` covers it: every field
    but its time, which is the event's own."""
    return row.model_dump(mode="json", exclude={"created_at"})


def the_event(table: str, row_id: str, events: Sequence[AuditEvent], action: str) -> AuditEvent:
    """The one ``action`` event of a row (``events``: its subject's); none, or several,
    means the row was not written by LoRA Ledger."""
    if len(events) != 1:
        raise VerificationError(
            f"{table} row {row_id} has {len(events)} {action} audit events, not one: it was "
            f"not written by LoRA Ledger; {RESTORE}"
        )
    return events[0]


def check_digest(
    table: str, row_id: str, value: Any, recorded: Any, source: str, what: str
) -> None:
    """``value`` (the row's record as JSON values) must hash to ``recorded`` (the digest
    ``source`` holds), when it holds one: the fields it does not state one by one
    (``what``, as the message names them)."""
    if recorded is not None and record_sha256(value) != recorded:
        raise VerificationError(
            f"{table} row {row_id}: {what} differs from what {source} recorded (its "
            f"sha256); {RESTORE}"
        )


def check_against_event(
    table: str,
    row_id: str,
    stated: Mapping[str, Any],
    event: AuditEvent,
    record: Any,
    digest_key: str,
    what: str,
) -> None:
    """A row against the audit event that wrote it: ``stated`` (the fields the event
    states one by one, with ``actor`` and ``subject``) field by field, then ``record``
    (the whole row as JSON values) by the sha256 the event keeps under ``digest_key``
    (``what`` names the fields only the digest covers)."""
    source = f"audit event #{event.seq}"
    recorded = {**event.payload, "actor": event.actor, "subject": event.subject}
    check_row(table, row_id, stated, recorded, source)
    check_digest(table, row_id, record, event.payload.get(digest_key), source, what)


def by_subject(events: Sequence[AuditEvent]) -> dict[str, list[AuditEvent]]:
    """``events`` grouped by their subject, each group oldest first."""
    grouped: dict[str, list[AuditEvent]] = {}
    for event in events:
        grouped.setdefault(event.subject, []).append(event)
    return grouped


def check_registrations(
    table: str,
    rows: Sequence[T],
    events: Sequence[AuditEvent],
    subject_of: Callable[[T], str],
    check: Callable[[T, list[AuditEvent]], object],
) -> int:
    """Every row of ``table`` against the events of its subject (``check``: the row and its
    events), and no event left without its row; returns the rows checked."""
    grouped = by_subject(events)
    for row in rows:
        check(row, grouped.pop(subject_of(row), []))
    for subject, found in sorted(grouped.items()):
        raise VerificationError(
            f"{table} row {subject.split(':', 1)[-1]}, recorded by audit event "
            f"#{found[0].seq}, is missing from the database; {RESTORE}"
        )
    return len(rows)


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


__all__ = [
    "RESTORE",
    "ROW_DIGEST",
    "by_subject",
    "check_against_event",
    "check_digest",
    "check_registrations",
    "check_row",
    "check_same_ids",
    "parsed",
    "record_sha256",
    "row_record",
    "the_event",
]
