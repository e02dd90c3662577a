"""The audit chain: every edit, deletion, insertion, reordering, rewrite and truncation
of events made through raw SQL is found and named."""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loraledger.registry import AdapterVersion, Registry, Role, audit, schema
from loraledger.registry.audit import (
    CHAIN_FORMAT,
    GENESIS_HASH,
    AuditLog,
    NewEvent,
    event_hash,
    parse_head,
    utcnow,
    verify_excerpt,
)
from loraledger.registry.keys import KeyStore
from loraledger.registry.published import CHECKPOINT_FILE, CheckpointFile

from loraledger.errors import InputError, PermissionDenied, VerificationError
from tests.conftest import ADMIN, ENGINEER, small_adapter
from tests.registry.helpers import checkpoint_file, sql, tampering


@pytest.fixture
def busy(registry: Registry, tmp_path: Path) -> Registry:
    """A registry with a few more events: 5 identity/registry events + 3 registrations."""
    for i in range(3):
        registry.adapters.register(small_adapter(tmp_path / f"a{i}", i), f"a{i}", actor=ENGINEER)
    return registry


def test_a_fresh_chain_verifies(busy: Registry) -> None:
    report = busy.verify_audit()
    assert report.events == 8 and report.head_seq == 8
    assert report.head_hash == busy.audit_events()[-1].hash
    # every change after init is checkpointed, in the database and in the file
    assert report.checkpoints_verified == 2 * 7


def test_events_link_and_hash(busy: Registry) -> None:
    events = busy.audit_events()
    assert [e.seq for e in events] == list(range(1, 9))
    assert events[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash


def test_filters(busy: Registry) -> None:
    assert [e.subject for e in busy.audit_events(action="adapter.register")] == [
        "adapter:a0@v1",
        "adapter:a1@v1",
        "adapter:a2@v1",
    ]
    assert {e.actor for e in busy.audit_events(actor=ADMIN)} == {ADMIN}
    assert [e.seq for e in busy.audit_events(limit=2, newest_first=True)] == [8, 7]


EDITS = {
    "edit payload": (
        'UPDATE audit_events SET payload = \'{"digest":"0"}\' WHERE seq = 6',
        "event #6: its content does not match its hash",
    ),
    "edit actor": (
        "UPDATE audit_events SET actor = 'rita' WHERE seq = 6",
        "event #6: its content does not match its hash",
    ),
    "edit time": (
        "UPDATE audit_events SET created_at = created_at + INTERVAL '1 second' WHERE seq = 3",
        "event #3: its content does not match its hash",
    ),
    "delete middle": (
        "DELETE FROM audit_events WHERE seq = 4",
        "broken at event #4: the next stored event is #5",
    ),
    "delete first": (
        "DELETE FROM audit_events WHERE seq = 1",
        "broken at event #1: the next stored event is #2",
    ),
    "insert": (
        "INSERT INTO audit_events SELECT 100, created_at, actor, action, subject, "
        "payload, prev_hash, hash FROM audit_events WHERE seq = 8",
        "broken at event #9: the next stored event is #100",
    ),
    "reorder": (
        "UPDATE audit_events SET seq = CASE seq WHEN 6 THEN -7 WHEN 7 THEN -6 END "
        "WHERE seq IN (6, 7); UPDATE audit_events SET seq = -seq WHERE seq < 0",
        "broken at event #6: it does not link to event #5",
    ),
    "relink": (
        "UPDATE audit_events SET prev_hash = (SELECT prev_hash FROM audit_events "
        "WHERE seq = 5) WHERE seq = 6",
        "broken at event #6: it does not link",
    ),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_raw_sql_edits_are_found(busy: Registry, case: str) -> None:
    statement, message = EDITS[case]
    sql(busy, statement)
    with pytest.raises(VerificationError, match=message):
        busy.verify_audit()


def _rechain(registry: Registry) -> None:
    """What a careful attacker does after an edit: recompute every hash and link."""
    with tampering(registry) as conn:
        rows = conn.execute(
            "SELECT seq, created_at, actor, action, subject, payload FROM audit_events ORDER BY seq"
        ).fetchall()
        prev = GENESIS_HASH
        for number, (seq, at, actor, action, subject, payload) in enumerate(rows, start=1):
            digest = event_hash(number, prev, at, actor, action, subject, payload)
            conn.execute(
                "UPDATE audit_events SET seq = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                [number, prev, digest, seq],
            )
            prev = digest


def test_a_consistently_rewritten_chain_is_caught_by_checkpoints(busy: Registry) -> None:
    sql(busy, "UPDATE audit_events SET actor = 'rita' WHERE seq = 6")
    _rechain(busy)
    with pytest.raises(VerificationError, match="audit log rewritten: checkpoint at event #6"):
        busy.verify_audit()


def test_deleting_an_event_and_rechaining_is_caught(busy: Registry) -> None:
    sql(busy, "DELETE FROM audit_events WHERE seq = 5")
    _rechain(busy)
    with pytest.raises(VerificationError, match="audit log (rewritten|truncated)"):
        busy.verify_audit()


def test_truncating_newest_events_and_their_checkpoints_is_caught(busy: Registry) -> None:
    sql(busy, "DELETE FROM audit_events WHERE seq > 6")
    sql(busy, "DELETE FROM audit_checkpoints WHERE seq > 6")
    with pytest.raises(
        VerificationError, match="audit log truncated: checkpoint at event #7 .*the log ends at #6"
    ):
        busy.verify_audit()


def test_deleting_checkpoints_from_the_database_is_caught(busy: Registry) -> None:
    sql(busy, "DELETE FROM audit_checkpoints WHERE seq = 3")
    with pytest.raises(VerificationError, match="was deleted from the database"):
        busy.verify_audit()


def test_editing_the_checkpoint_file_is_caught(busy: Registry) -> None:
    path = checkpoint_file(busy)
    lines = path.read_text().splitlines()
    record = json.loads(lines[-1])
    record["head_hash"] = "f" * 64
    lines[-1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(VerificationError, match="signature does not verify"):
        busy.verify_audit()
    path.write_text("not json\n")
    with pytest.raises(VerificationError, match="audit-checkpoints.jsonl:1 is not a checkpoint"):
        busy.verify_audit()


def test_a_forged_checkpoint_is_caught(busy: Registry) -> None:
    sql(busy, "UPDATE audit_checkpoints SET signer = 'rita' WHERE seq = 8")
    with pytest.raises(VerificationError, match="signed by rita.*does not verify"):
        busy.verify_audit()


def test_a_checkpoint_by_an_unknown_signer(busy: Registry) -> None:
    sql(busy, "UPDATE audit_checkpoints SET signer = 'ghost' WHERE seq = 8")
    with pytest.raises(VerificationError, match="held no valid key at that point of the chain"):
        busy.verify_audit()


def test_expected_head(busy: Registry) -> None:
    seq, digest = busy.audit_head()
    assert busy.verify_audit(expect_head=(seq, digest)).head_seq == seq
    sql(busy, f"DELETE FROM audit_events WHERE seq = {seq}")
    sql(busy, f"DELETE FROM audit_checkpoints WHERE seq = {seq}")
    checkpoint_file(busy).write_text("")  # the attacker cleaned the file too
    busy.verify_audit()  # nothing inside the registry can tell...
    with pytest.raises(VerificationError, match="does not contain the expected head"):
        busy.verify_audit(expect_head=(seq, digest))  # ...but a head kept elsewhere can


def test_parse_head() -> None:
    assert parse_head("12:" + "A" * 64) == (12, "a" * 64)
    for bad in ["12", "x:" + "a" * 64, "0:" + "a" * 64, "3:abc"]:
        with pytest.raises(InputError, match="--expect-head"):
            parse_head(bad)


def test_revoked_signers_checkpoints_still_verify(
    registry: Registry, registered: AdapterVersion
) -> None:
    registry.identities.revoke(ENGINEER, actor=ADMIN, reason="moved on")
    registry.verify_audit()


# --- property tests on an in-memory chain ------------------------------------------


def _memory_chain(actions: list[str]) -> tuple[duckdb.DuckDBPyConnection, AuditLog]:
    conn = duckdb.connect()
    schema.apply_pending(conn, utcnow())
    log = AuditLog("test-registry", CheckpointFile(Path("/nonexistent") / CHECKPOINT_FILE))
    log.append_many(
        conn, [NewEvent("a", act, f"s:{i}", {"i": i, "text": act}) for i, act in enumerate(actions)]
    )
    return conn, log


_actions = st.lists(st.text(min_size=1, max_size=12), min_size=2, max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=_actions, data=st.data())
def test_any_single_field_edit_is_found(actions: list[str], data: st.DataObject) -> None:
    conn, log = _memory_chain(actions)
    log.verify(conn, {})
    seq = data.draw(st.integers(1, len(actions)))
    column = data.draw(
        st.sampled_from(["actor", "action", "subject", "payload", "prev_hash", "hash"])
    )
    old = conn.execute(f"SELECT {column} FROM audit_events WHERE seq = ?", [seq]).fetchone()
    new = data.draw(st.text(max_size=70).filter(lambda v: v != old[0]))
    conn.execute(f"UPDATE audit_events SET {column} = ? WHERE seq = ?", [new, seq])
    with pytest.raises(VerificationError, match=f"event #{seq}"):
        log.verify(conn, {})


@settings(max_examples=60, deadline=None)
@given(actions=_actions, data=st.data())
def test_any_deletion_or_swap_is_found(actions: list[str], data: st.DataObject) -> None:
    conn, log = _memory_chain(actions)
    n = len(actions)
    if data.draw(st.booleans()):
        seq = data.draw(st.integers(1, n - 1))  # the newest needs a checkpoint: tested above
        conn.execute("DELETE FROM audit_events WHERE seq = ?", [seq])
    else:
        a = data.draw(st.integers(1, n - 1))
        b = data.draw(st.integers(a + 1, n))
        conn.execute("UPDATE audit_events SET seq = -1 WHERE seq = ?", [a])
        conn.execute("UPDATE audit_events SET seq = ? WHERE seq = ?", [a, b])
        conn.execute("UPDATE audit_events SET seq = ? WHERE seq = -1", [b])
    with pytest.raises(VerificationError, match="audit chain broken"):
        log.verify(conn, {})


# The chain is hashed in SQL first (a fast path) and in Python wherever SQL does not
# vouch for a row: SQL must never vouch for a row other than the one written.

_field = st.text(max_size=40)
_fields = st.tuples(_field, _field, _field, _field)  # actor, action, subject, payload


@functools.cache
def _schema_only() -> duckdb.DuckDBPyConnection:
    """One in-memory database with the schema, shared by the examples (each one's chain
    replaces the last): migrating a database for each of 250 examples took two minutes."""
    conn = duckdb.connect()
    schema.apply_pending(conn, utcnow())
    return conn


def _stored_once(
    written: tuple[str, ...], stored: tuple[str, ...]
) -> tuple[duckdb.DuckDBPyConnection, bool]:
    """A one-event chain whose hash is that of ``written`` but whose row holds ``stored``;
    and whether SQL vouched for the row."""
    conn = _schema_only()
    conn.execute("DELETE FROM audit_events")
    now = utcnow()
    conn.execute(
        "INSERT INTO audit_events VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
        [now, *stored, GENESIS_HASH, event_hash(1, GENESIS_HASH, now, *written)],
    )
    ((_, _, _, vouched),) = conn.execute(audit._VOUCHED_SQL, [CHAIN_FORMAT, 1]).fetchall()
    return conn, bool(vouched)


@settings(max_examples=150, deadline=None)
@given(written=_fields, edited=_fields, which=st.sets(st.integers(0, 3), min_size=1))
def test_sql_vouches_for_no_edited_row(
    written: tuple[str, ...], edited: tuple[str, ...], which: set[int]
) -> None:
    stored = tuple(edited[i] if i in which else written[i] for i in range(4))
    conn, vouched = _stored_once(written, stored)
    log = AuditLog("test-registry", CheckpointFile(Path("/nonexistent") / CHECKPOINT_FILE))
    if stored == written:
        log.check_links(conn)
    else:
        assert not vouched
        with pytest.raises(VerificationError, match="event #1: its content does not match"):
            log.check_links(conn)


@settings(max_examples=100, deadline=None)
@given(written=_fields)
def test_sql_vouches_for_every_row_without_control_characters(written: tuple[str, ...]) -> None:
    """The fast path is taken: only a control character in a field (which DuckDB escapes
    as \\u001F, Python as \\u001f) leaves a row to Python."""
    _, vouched = _stored_once(written, written)
    plain = all(ord(c) >= 0x20 or c in "\b\f\n\r\t" for c in "".join(written))
    if plain:
        assert vouched


def test_checkpoint_needs_a_non_empty_chain(keystore: KeyStore) -> None:
    conn = duckdb.connect()
    schema.apply_pending(conn, utcnow())
    with pytest.raises(VerificationError, match="the audit log is empty"):
        AuditLog("r", CheckpointFile(Path("/nonexistent") / CHECKPOINT_FILE)).checkpoint(
            conn, keystore.create("k")
        )


def test_single_events_verify_against_the_nearest_checkpoint(busy: Registry) -> None:
    events = busy.audit_events()
    assert busy.verify_audit_events(events[-3:]) >= 1
    # (not an identity event: every key comes from those, so an edited one fails every
    # check -- tests/test_forgery.py)
    target = next(e for e in events[3:] if not e.action.startswith("identity."))
    busy.verify_audit_events([target])
    sql(busy, "UPDATE audit_events SET payload = '{}' WHERE seq = ?", [target.seq])
    (edited,) = [e for e in busy.audit_events() if e.seq == target.seq]  # read again
    with pytest.raises(VerificationError, match=f"event #{target.seq}"):
        busy.verify_audit_events([edited])  # (what was verified before hashes otherwise)
    busy.verify_audit_events(events[-1:])  # far from the edit: only its own piece is read
    with pytest.raises(VerificationError):
        busy.verify_audit()  # the whole chain still catches it


def test_an_excerpt_must_end_at_its_checkpoint(busy: Registry) -> None:
    with busy.db.read() as conn:
        events, checkpoint = busy.audit.excerpt(conn, 2)
    keys = {i.name: i.public_key_pem for i in busy.identities.list()}
    verify_excerpt(events, checkpoint, keys)
    with pytest.raises(VerificationError, match="not at the checkpoint"):
        verify_excerpt(events[:-1], checkpoint, keys)
    forged = [*events[:-1], {**events[-1], "actor": "mallory"}]
    with pytest.raises(VerificationError, match="does not match its hash"):
        verify_excerpt(forged, checkpoint, keys)


def test_verifying_since_a_known_head_checks_only_what_came_after(
    busy: Registry, tmp_path: Path
) -> None:
    head = busy.verify_audit(expect_head=None)
    busy.adapters.register(small_adapter(tmp_path / "late", 9), "late", actor=ENGINEER)
    report = busy.verify_audit(since=(head.head_seq, head.head_hash))
    assert report.events == 1 and report.head_seq == 9
    assert report.head_hash == busy.verify_audit().head_hash
    assert report.checkpoints_verified == 2  # the new change's, in the database and the file
    assert busy.verify_audit(since=(report.head_seq, report.head_hash)).events == 0


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("UPDATE audit_events SET actor = 'rita' WHERE seq = 9", "its content does not match"),
        ("UPDATE audit_events SET hash = 'x' WHERE seq = 8", "event #8 no longer has the hash"),
    ],
)
def test_verifying_since_a_head_still_catches_edits(
    busy: Registry, tmp_path: Path, statement: str, message: str
) -> None:
    head = busy.verify_audit()
    busy.adapters.register(small_adapter(tmp_path / "late", 9), "late", actor=ENGINEER)
    sql(busy, statement)
    with pytest.raises(VerificationError, match=message):
        busy.verify_audit(since=(head.head_seq, head.head_hash))


def cut_tail(registry: Registry, seq: int) -> None:
    """Events from ``seq`` on deleted with their checkpoints, from the database and from
    the published checkpoints alike: a log consistent in itself (issue #35)."""
    sql(registry, "DELETE FROM audit_events WHERE seq >= ?", [seq])
    sql(registry, "DELETE FROM audit_checkpoints WHERE seq >= ?", [seq])
    path = checkpoint_file(registry)
    kept = [line for line in path.read_text().splitlines() if json.loads(line)["seq"] < seq]
    path.write_text("".join(line + "\n" for line in kept))


def test_a_refusal_erased_with_its_published_line_is_refused_where_it_was_seen(
    busy: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An engineer's refused action, deleted from the database together with its line in
    audit-checkpoints.jsonl, left no trace. The machine that saw the log remembers the
    newest head it saw and refuses a log that no longer holds it -- on every read a
    decision makes, not only in `audit verify`."""
    with pytest.raises(PermissionDenied):
        busy.identities.create("mallory", Role.ADMIN, actor=ENGINEER)
    refused, _ = busy.audit_head()
    assert busy.audit_events()[-1].action.endswith(".refused")
    busy.verify_records()  # this machine has now seen the refusal
    cut_tail(busy, refused)
    again = Registry.open(busy.address, keys=busy.keys)
    assert again.verify_audit().head_seq == refused - 1  # consistent in itself
    for read in (again.verify_records, lambda: again.adapters.registration("a0@v1")):
        with pytest.raises(VerificationError, match=f"this machine saw event #{refused} "):
            read()
    # a machine that never saw it cannot tell (docs/threat-model.md: keep heads elsewhere)
    monkeypatch.setenv("LORALEDGER_KNOWN_ROOTS", str(tmp_path / "elsewhere" / "roots.json"))
    Registry.open(busy.address, keys=busy.keys).verify_records()


def test_the_published_checkpoints_deleted_or_emptied_is_an_error(busy: Registry) -> None:
    path = checkpoint_file(busy)
    for damage in (path.unlink, lambda: path.write_text("")):
        saved = path.read_bytes()
        damage()
        with pytest.raises(VerificationError, match=f"{path.name} is missing or empty, though"):
            Registry.open(busy.address, keys=busy.keys).verify_records()
        path.write_bytes(saved)
