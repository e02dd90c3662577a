"""The tamper-evident audit log: a hash chain of events plus signed checkpoints.

Each event's hash covers its sequence number, the previous event's hash, its time,
actor, action, subject and payload, so editing, deleting, inserting or reordering events
breaks the chain at the first event touched. Rewriting the whole chain consistently is
caught by checkpoints: after every state change the acting identity signs "the head is
event SEQ with hash H" with its private key (which never enters the registry). A
checkpoint is stored in the database, in the same transaction as the events it covers,
and published outside it after the commit (appended to ``audit-checkpoints.jsonl``
beside the database, or written as an object of an S3 store: :mod:`.published`), so
cutting the newest events (and their checkpoints) out of the database is caught by
what was published. For protection against someone who can rewrite both, keep the head printed by
``loraledger audit head`` elsewhere and pass it to ``audit verify --expect-head``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from loraledger.errors import InputError, VerificationError

from .db import Connection, dialect_of
from .dialect import DUCKDB
from .keys import SigningKey, fingerprint, verify_signature
from .models import AuditEvent, AuditReport, Checkpoint
from .published import PublishedCheckpoints

GENESIS_HASH = "0" * 64
CHAIN_FORMAT = 1


class SignerKeys(Protocol):
    """Which keys could sign a checkpoint: by the signer's name and the checkpoint's place
    in the chain (a person holds several keys over time; see :class:`.trust.KeyRing`)."""

    def checkpoint_keys(self, name: str, seq: int) -> Sequence[str]:
        """The PEM public keys valid for ``name`` at event ``seq``."""
        ...

    def void_keys(self, name: str, seq: int) -> Sequence[tuple[str, str]]:
        """``name``'s keys that were compromised at ``seq``, as (PEM, why)."""
        ...


@dataclass(frozen=True)
class StaticKeys:
    """Keys without a history (an excerpt checked on its own, a pack's keys): each name's
    key or keys, valid everywhere."""

    keys: Mapping[str, str | Sequence[str]]

    def checkpoint_keys(self, name: str, seq: int) -> Sequence[str]:
        found = self.keys.get(name)
        return [] if found is None else [found] if isinstance(found, str) else list(found)

    def void_keys(self, name: str, seq: int) -> Sequence[tuple[str, str]]:
        return []


def signer_keys(keys: SignerKeys | Mapping[str, str | Sequence[str]]) -> SignerKeys:
    return StaticKeys(keys) if isinstance(keys, Mapping) else keys


class VoidCheckpoint(VerificationError):
    """A checkpoint that verifies only with a key compromised at its place: it vouches for
    nothing, and a later checkpoint by a valid key must cover what it signed."""


_CHECKPOINT_COLUMNS = "seq, head_hash, signer, signature, created_at, key_fingerprint"


def utcnow() -> datetime:
    """Now in UTC, naive, at the microsecond precision DuckDB stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(
    seq: int,
    prev_hash: str,
    created_at: datetime,
    actor: str,
    action: str,
    subject: str,
    payload: str,
) -> str:
    """sha256 over the canonical JSON array of the event's fields (payload as text)."""
    material = canonical_json(
        [
            CHAIN_FORMAT,
            seq,
            prev_hash,
            created_at.isoformat(timespec="microseconds"),
            actor,
            action,
            subject,
            payload,
        ]
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def checkpoint_message(
    registry_id: str,
    seq: int,
    head_hash: str,
    signer: str,
    created_at: datetime,
    key_fingerprint: str | None = None,
) -> bytes:
    """The text a checkpoint signs: v2 names the signer's key (a person holds several),
    v1 -- written before -- the signer only."""
    moment = created_at.isoformat(timespec="microseconds")
    head = f"{registry_id}\n{seq}\n{head_hash}\n{signer}\n"
    if key_fingerprint is None:
        return f"loraledger-checkpoint/v1\n{head}{moment}\n".encode()
    return f"loraledger-checkpoint/v2\n{head}{key_fingerprint}\n{moment}\n".encode()


@dataclass(frozen=True)
class NewEvent:
    actor: str
    action: str
    subject: str
    payload: dict[str, Any]


class AuditLog:
    """The audit chain of one registry (``registry_id``), its checkpoints also published
    in ``published`` (:mod:`.published`)."""

    def __init__(self, registry_id: str, published: PublishedCheckpoints) -> None:
        self.registry_id = registry_id
        self.published = published
        # Events this process verified up to a signed checkpoint: seq -> (hash, the seq of
        # that checkpoint). An event read again whose content still hashes to it is the
        # content that was verified.
        self._verified: dict[int, tuple[str, int]] = {}
        # Events whose own change was signed with a key compromised there (its checkpoint
        # void, a later one covering them): seq -> why. Intact, but not anyone's word.
        self._void: dict[int, str] = {}
        # The hash of an event as the database holds it now, read outside the caller's
        # snapshot (set by the core): a team's registry is written from other machines
        # while a read runs, so the file may name a checkpoint committed after it began.
        self.committed_hash: Callable[[int], str | None] | None = None

    # --- writing ----------------------------------------------------------------------

    def append(
        self, conn: Connection, actor: str, action: str, subject: str, payload: dict[str, Any]
    ) -> AuditEvent:
        """Append one event inside the caller's transaction."""
        return self.append_many(conn, [NewEvent(actor, action, subject, payload)])[-1]

    def append_many(self, conn: Connection, new: Iterable[NewEvent]) -> list[AuditEvent]:
        """Append events in order inside the caller's transaction."""
        head = conn.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        row = head.fetchone()
        seq, prev = (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)
        events: list[AuditEvent] = []
        rows: list[list[Any]] = []
        for item in new:
            seq += 1
            now = utcnow()
            text = canonical_json(item.payload)
            digest = event_hash(seq, prev, now, item.actor, item.action, item.subject, text)
            events.append(
                AuditEvent(
                    seq=seq,
                    created_at=now,
                    actor=item.actor,
                    action=item.action,
                    subject=item.subject,
                    payload=item.payload,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            rows.append([seq, now, item.actor, item.action, item.subject, text, prev, digest])
            prev = digest
        if rows:
            # Column-wise lists through unnest: one statement however many events
            # (executemany costs ~1 ms a row in DuckDB).
            columns = [list(column) for column in zip(*rows, strict=True)]
            conn.execute(
                "INSERT INTO audit_events SELECT unnest(?::BIGINT[]), unnest(?::TIMESTAMP[]), "
                "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
                columns,
            )
        return events

    def checkpoint(self, conn: Connection, key: SigningKey) -> Checkpoint:
        """Sign the current head with ``key`` inside the caller's transaction."""
        row = conn.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        head = row.fetchone()
        if head is None:
            raise VerificationError("the audit log is empty; the registry was not initialised")
        now = utcnow()
        seq, head_hash = int(head[0]), str(head[1])
        message = checkpoint_message(
            self.registry_id, seq, head_hash, key.name, now, key.fingerprint
        )
        signature = key.sign(message)
        conn.execute(
            f"INSERT INTO audit_checkpoints ({_CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            [seq, head_hash, key.name, signature, now, key.fingerprint],
        )
        return Checkpoint(
            registry_id=self.registry_id,
            seq=seq,
            head_hash=head_hash,
            signer=key.name,
            signature=signature,
            created_at=now,
            key_fingerprint=key.fingerprint,
        )

    def publish(self, checkpoint: Checkpoint) -> None:
        """Publish a committed checkpoint outside the database."""
        self.published.publish(checkpoint)

    def republish(self, conn: Connection) -> int:
        """Append to the checkpoint file the checkpoints the database committed after the
        file's newest one (a publish that failed after its commit: disk full); returns
        how many. Only a file that ends on a checkpoint the database still holds, with
        the same hash, is extended: a database cut behind the file is never papered over
        (:meth:`check_tail` refuses it), and a missing file is not made anew."""
        published = self.last_published()
        if published is None:
            return 0
        row = conn.execute(
            "SELECT hash FROM audit_events WHERE seq = ?", [published.seq]
        ).fetchone()
        if row is None or row[0] != published.head_hash:
            return 0
        missing = [
            self._checkpoint(r)
            for r in conn.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints "
                "WHERE seq > ? ORDER BY seq, created_at",
                [published.seq],
            ).fetchall()
        ]
        for checkpoint in missing:
            self.publish(checkpoint)
        return len(missing)

    # --- reading ----------------------------------------------------------------------

    def events(
        self,
        conn: Connection,
        *,
        actor: str | None = None,
        action: str | None = None,
        subject: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
        actions: Collection[str] | None = None,
    ) -> list[AuditEvent]:
        """Events oldest first (or newest first), filtered by actor, one action or any of
        ``actions``, and subject."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("actor", actor), ("action", action), ("subject", subject)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if actions is not None:
            where.append("action IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(actions))
        sql = "SELECT seq, created_at, actor, action, subject, payload, prev_hash, hash "
        sql += "FROM audit_events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [
            AuditEvent(
                seq=r[0],
                created_at=r[1],
                actor=r[2],
                action=r[3],
                subject=r[4],
                payload=_payload(r[0], r[5]),
                prev_hash=r[6],
                hash=r[7],
            )
            for r in conn.execute(sql, params).fetchall()
        ]

    def excerpt(self, conn: Connection, first_seq: int) -> tuple[list[dict[str, Any]], Checkpoint]:
        """Events from ``first_seq`` to the newest signed checkpoint, as stored (payload
        text included, so each hash can be recomputed), with that checkpoint: a piece of
        the chain anyone can check with the signer's public key (:func:`verify_excerpt`)."""
        row = conn.execute(
            f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints "
            "WHERE seq >= ? ORDER BY seq DESC LIMIT 1",
            [first_seq],
        ).fetchone()
        if row is None:
            raise VerificationError(
                f"no signed checkpoint covers audit event #{first_seq}; act once more (any "
                "change signs one) and export again"
            )
        checkpoint = self._checkpoint(row)
        return _excerpt_events(conn, first_seq, checkpoint.seq), checkpoint

    def verify_events(
        self,
        conn: Connection,
        seqs: Iterable[int],
        public_keys: SignerKeys | Mapping[str, str | Sequence[str]],
        *,
        skip_void: bool = True,
    ) -> int:
        """Check that the events ``seqs`` are intact without reading the whole chain: each
        is verified, with the links after it, up to the first signed checkpoint at or after
        it (every change signs one, so these pieces are short); two queries in all.
        Returns the number of checkpoints used. ``audit verify`` checks the whole chain.

        A checkpoint signed by a key compromised at its place vouches for nothing: the
        piece runs on to the next checkpoint (a later change by a valid key covers it);
        with ``skip_void`` False it is refused (the identity history, which must be signed
        by its own changes)."""
        wanted = sorted(set(seqs))
        if not wanted:
            return 0
        checkpoints = [  # the first checkpoint at or after each wanted event, only
            self._checkpoint(r)
            for r in conn.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints "
                "WHERE seq IN (SELECT (SELECT min(c.seq) FROM audit_checkpoints c "
                "WHERE c.seq >= t.w) FROM unnest(?::BIGINT[]) AS t(w)) ORDER BY seq, created_at",
                [wanted],
            ).fetchall()
        ]
        pieces: list[tuple[int, Checkpoint]] = []  # (first seq, the checkpoint ending it)
        for seq in wanted:
            if pieces and seq <= pieces[-1][1].seq:
                continue
            covering = next((cp for cp in checkpoints if cp.seq >= seq), None)
            if covering is None:
                raise VerificationError(
                    f"no signed checkpoint covers audit event #{seq}; act once more (any "
                    "change signs one) and verify again"
                )
            pieces.append((seq, covering))
        select = (
            "SELECT seq, created_at, actor, action, subject, payload, prev_hash, hash "
            "FROM audit_events WHERE seq BETWEEN ? AND ?"
        )  # one range per branch: each reads only its own row groups (an OR scans all)
        rows = conn.execute(
            " UNION ALL ".join(select for _ in pieces),
            [bound for first, cp in pieces for bound in (first, cp.seq)],
        ).fetchall()
        by_seq = {r[0]: r for r in rows}
        for first, checkpoint in pieces:
            piece = [
                _excerpt_event(by_seq[seq])
                for seq in range(first, checkpoint.seq + 1)
                if seq in by_seq
            ]
            while True:
                try:
                    verify_excerpt(piece, checkpoint, public_keys)
                    break
                except VoidCheckpoint as void:
                    if not skip_void:
                        raise
                    self._void.update((e["seq"], str(void)) for e in piece)
                    checkpoint, piece = self._past_void(conn, first, checkpoint)
            self._verified.update((e["seq"], (e["hash"], checkpoint.seq)) for e in piece)
        return len(pieces)

    def forget_verified(self) -> None:
        """Verify every event afresh on its next read (the keys' history changed)."""
        self._verified.clear()
        self._void.clear()

    def void_reason(self, seq: int) -> str | None:
        """Why event ``seq`` is nobody's word -- its own change's checkpoint was signed with
        a key compromised there -- when a read verified it so; None otherwise."""
        return self._void.get(seq)

    def _past_void(
        self, conn: Connection, first: int, void: Checkpoint
    ) -> tuple[Checkpoint, list[dict[str, Any]]]:
        """The next checkpoint after a void one, with events ``first`` to it."""
        row = conn.execute(
            f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints "
            "WHERE seq > ? ORDER BY seq, created_at LIMIT 1",
            [void.seq],
        ).fetchone()
        if row is None:
            raise VerificationError(
                f"audit event #{void.seq} is covered only by a checkpoint signed with a "
                f"compromised key of {void.signer}; any change by a valid key covers it: "
                "act once more and verify again"
            )
        checkpoint = self._checkpoint(row)
        return checkpoint, _excerpt_events(conn, first, checkpoint.seq)

    def verify_read(
        self,
        conn: Connection,
        events: Iterable[AuditEvent],
        public_keys: SignerKeys | Mapping[str, str | Sequence[str]],
    ) -> int:
        """:meth:`verify_events` for events already read, skipping each that this process
        verified before and whose content still hashes to what was verified; returns the
        number of signed checkpoints that cover them."""
        events = list(events)
        unverified = [
            e.seq
            for e in events
            if self._verified.get(e.seq, ("",))[0] != e.hash
            or event_hash(
                e.seq,
                e.prev_hash,
                e.created_at,
                e.actor,
                e.action,
                e.subject,
                canonical_json(e.payload),
            )
            != e.hash
        ]
        self.verify_events(conn, unverified, public_keys)
        return len({self._verified[e.seq][1] for e in events})

    def last_published(self) -> Checkpoint | None:
        """The newest checkpoint published outside the database (None when none is)."""
        return self.published.newest()

    def check_tail(self, conn: Connection) -> None:
        """The database's log must still hold the newest published checkpoint's event,
        with its hash: events cut from the end of the log (with their rows and the
        checkpoints in the database) are refused where a decision reads the log. Nor may
        it have a gap: events are numbered 1, 2, 3, ... with none missing, so an event
        deleted from the middle (a rollback, with its row) is refused by every read, not
        only by a full ``audit verify``; renumbering what follows would change their
        hashes, which the signed checkpoints and the published head catch."""
        (count, first, last) = conn.execute(
            "SELECT count(*), coalesce(min(seq), 1), coalesce(max(seq), 0) FROM audit_events"
        ).fetchone() or (0, 1, 0)
        if count != last or (count and first != 1):
            raise VerificationError(
                f"audit log has a gap: {count} events numbered #{first} to #{last}; events "
                "were deleted from the middle of the log (`loraledger audit verify` names "
                "where): restore the registry from a backup"
            )
        published = self.last_published()
        if published is None:
            (held,) = conn.execute("SELECT count(*) FROM audit_checkpoints").fetchone() or (0,)
            if held:  # it is written with the first change: its absence is a deletion
                raise VerificationError(
                    f"{self.published.name} is missing or empty, though the database holds {held} "
                    "signed checkpoints that were published there: the published record of "
                    "the log was deleted; restore it from a backup"
                )
            return
        row = conn.execute(
            "SELECT hash FROM audit_events WHERE seq = ?", [published.seq]
        ).fetchone()
        if row is None and self.committed_hash is not None:
            committed = self.committed_hash(published.seq)
            if committed == published.head_hash:
                return  # committed after this read's snapshot began: not a cut
            row = None if committed is None else (committed,)
        if row is None:
            seq, _ = self.head(conn)
            raise VerificationError(
                f"audit log truncated: {self.published.name} records a checkpoint at event "
                f"#{published.seq} (signed by {published.signer}) but the log ends at #{seq}; "
                "events were deleted: restore the registry from a backup"
            )
        if row[0] != published.head_hash:
            raise VerificationError(
                f"audit log rewritten: {self.published.name} records hash "
                f"{published.head_hash[:16]}… for event #{published.seq} but the log has "
                f"{str(row[0])[:16]}…; restore the registry from a backup"
            )

    def check_links(self, conn: Connection, since: tuple[int, str] | None = None) -> None:
        """Recompute the hash chain alone (after ``since``); raise at the first break."""
        first, prev = (since[0] + 1, since[1]) if since else (1, GENESIS_HASH)
        _chain(conn, first, prev)

    def covering_signers(self, conn: Connection, seqs: list[int]) -> dict[int, str]:
        """For each event of ``seqs``, the signer of the first checkpoint at or after it."""
        if not seqs:
            return {}
        rows = conn.execute(
            "SELECT t.w, (SELECT c.signer FROM audit_checkpoints c WHERE c.seq >= t.w "
            "ORDER BY c.seq, c.created_at LIMIT 1) FROM unnest(?::BIGINT[]) AS t(w)",
            [seqs],
        ).fetchall()
        return {int(seq): str(signer) for seq, signer in rows if signer is not None}

    def head(self, conn: Connection) -> tuple[int, str]:
        row = conn.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        head = row.fetchone()
        return (int(head[0]), str(head[1])) if head else (0, GENESIS_HASH)

    # --- verifying --------------------------------------------------------------------

    def verify(
        self,
        conn: Connection,
        public_keys: SignerKeys | Mapping[str, str | Sequence[str]],
        *,
        expect_head: tuple[int, str] | None = None,
        since: tuple[int, str] | None = None,
    ) -> AuditReport:
        """Recompute the chain and check every checkpoint; raise at the first break.

        ``public_keys`` gives the keys that could sign a checkpoint at its place (the
        signer created before it, not revoked, the key enrolled and not ended): one
        signed outside that window is refused, and one signed by a key compromised there
        is counted as void (it vouches for nothing; later checkpoints cover its events).
        ``since`` -- a head ``(seq, hash)`` verified before -- checks only what came
        after it (and that event ``seq`` still has that hash): the dashboard re-verifies
        on every load at the cost of the new events alone.
        """
        started = time.perf_counter()
        first, prev = (since[0] + 1, since[1]) if since else (1, GENESIS_HASH)
        if since is not None and since[0] > 0:
            row = conn.execute("SELECT hash FROM audit_events WHERE seq = ?", [since[0]])
            found = row.fetchone()
            if found is None or found[0] != since[1]:
                raise VerificationError(
                    f"audit log rewritten: event #{since[0]} no longer has the hash "
                    f"{since[1][:16]}… it had when last verified"
                )
        hashes = _chain(conn, first, prev)
        head_seq = first - 1 + len(hashes)
        head_hash = hashes[-1] if hashes else prev

        checkpoints = [(o, cp) for o, cp in self._stored_checkpoints(conn) if cp.seq >= first]
        void: set[tuple[int, str, str, str]] = set()  # (held in the database and published)
        for origin, cp in checkpoints:
            try:
                _verify_checkpoint(self.registry_id, origin, cp, public_keys, hashes, first)
            except VoidCheckpoint:
                void.add(_cp_key(cp))
        db_entries = {_cp_key(cp) for origin, cp in checkpoints if origin == "database"}
        for origin, cp in checkpoints:
            if origin != "database" and _cp_key(cp) not in db_entries:
                raise VerificationError(
                    f"checkpoint at event #{cp.seq} (signed by {cp.signer}) is in "
                    f"{self.published.name} but was deleted from the database"
                )
        if expect_head is not None:
            seq, digest = expect_head
            known = hashes[seq - first] if first <= seq <= head_seq else None
            if seq > head_seq or (known is not None and known != digest):
                raise VerificationError(
                    f"the log does not contain the expected head #{seq} {digest[:16]}…: "
                    "events were truncated or rewritten"
                )
        return AuditReport(
            events=len(hashes),
            head_seq=head_seq,
            head_hash=head_hash,
            checkpoints_verified=sum(_cp_key(cp) not in void for _, cp in checkpoints),
            checkpoints_void=len(void) or None,
            seconds=time.perf_counter() - started,
        )

    def _checkpoint(self, row: tuple[Any, ...]) -> Checkpoint:
        """A checkpoint from its row (:data:`_CHECKPOINT_COLUMNS`)."""
        seq, head_hash, signer, signature, created_at, key_fingerprint = row
        return Checkpoint(
            registry_id=self.registry_id, seq=seq, head_hash=head_hash, signer=signer,
            signature=signature, created_at=created_at, key_fingerprint=key_fingerprint,
        )  # fmt: skip

    def _stored_checkpoints(self, conn: Connection) -> list[tuple[str, Checkpoint]]:
        found: list[tuple[str, Checkpoint]] = [
            ("database", self._checkpoint(r))
            for r in conn.execute(f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints").fetchall()
        ]
        return found + self.published.everything()


def _cp_key(cp: Checkpoint) -> tuple[int, str, str, str]:
    return (cp.seq, cp.head_hash, cp.signer, cp.signature)


# Each event's hash recomputed in SQL (a quarter of the time Python takes): the JSON
# array DuckDB writes is the one canonical_json writes for the fields the log holds, but
# for a control character in a string (DuckDB writes \u001F, Python \u001f). A row whose
# SQL hash equals its stored one is vouched for -- equal JSON texts decode to the same
# fields, so an edit cannot pass -- and every other row is hashed again in Python, which
# decides.
_VOUCHED_SQL = (
    "SELECT seq, prev_hash, hash, sha256(json_array(?, seq, prev_hash, "
    "strftime(created_at, '%Y-%m-%dT%H:%M:%S.%f'), actor, action, subject, payload)::VARCHAR)"
    " = hash FROM audit_events WHERE seq >= ? ORDER BY seq"
)

# PostgreSQL's json_build_array writes ``[a, b]``, but its to_json of a text is the JSON
# string canonical_json writes (compact, non-ASCII as itself, control characters as
# lower-case ``\u00xx``): the array is joined from those. As on DuckDB, a row whose SQL
# hash differs from its stored one is hashed again in Python, which decides.
_VOUCHED_SQL_POSTGRES = (
    "SELECT seq, prev_hash, hash, encode(sha256(convert_to('[' || ?::text || ',' || "
    "seq::text || ',' || to_json(prev_hash)::text || ',' || "
    "to_json(to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.US'))::text || ',' || "
    "to_json(actor)::text || ',' || to_json(action)::text || ',' || "
    "to_json(subject)::text || ',' || to_json(payload)::text || ']', 'UTF8')), 'hex') = hash "
    "FROM audit_events WHERE seq >= ? ORDER BY seq"
)


def _chain(conn: Connection, first: int, prev: str) -> list[str]:
    """The hashes of events ``first`` onwards, each checked against its content and its
    link to the one before (``prev``: the hash before ``first``); raise at the first
    break."""
    query = _VOUCHED_SQL if dialect_of(conn) is DUCKDB else _VOUCHED_SQL_POSTGRES
    links = conn.execute(query, [CHAIN_FORMAT, first]).fetchall()
    unvouched = [seq for seq, _, _, vouched in links if not vouched]
    rows = (
        {
            r[0]: r
            for r in conn.execute(
                "SELECT seq, created_at, actor, action, subject, payload, prev_hash, hash "
                "FROM audit_events WHERE seq IN (SELECT unnest(?::BIGINT[]))",
                [unvouched],
            ).fetchall()
        }
        if unvouched
        else {}
    )
    hashes: list[str] = []
    for expected_seq, (seq, prev_hash, digest, vouched) in enumerate(links, start=first):
        _check_link(expected_seq, seq, prev_hash, prev)
        if not vouched:
            _check_content(rows[seq])
        hashes.append(digest)
        prev = digest
    return hashes


def _check_link(expected_seq: int, seq: int, prev_hash: str, prev: str) -> None:
    if seq != expected_seq:
        raise VerificationError(
            f"audit chain broken at event #{expected_seq}: the next stored event is #{seq} "
            "(an event was deleted or inserted)"
        )
    if prev_hash != prev:
        raise VerificationError(
            f"audit chain broken at event #{seq}: it does not link to event #{seq - 1} "
            "(events were deleted, inserted, reordered or rewritten)"
        )


def _verify_chain(
    rows: list[tuple[Any, ...]], *, first_seq: int = 1, prev: str = GENESIS_HASH
) -> list[str]:
    """:func:`_chain` over rows already read (seq, created_at, actor, action, subject,
    payload, prev_hash, hash), each hashed in Python."""
    hashes: list[str] = []
    for expected_seq, row in enumerate(rows, start=first_seq):
        seq, prev_hash, digest = row[0], row[6], row[7]
        _check_link(expected_seq, seq, prev_hash, prev)
        _check_content(row)
        hashes.append(digest)
        prev = digest
    return hashes


def _check_content(row: tuple[Any, ...]) -> None:
    seq, created_at, actor, action, subject, payload, prev_hash, digest = row
    if event_hash(seq, prev_hash, created_at, actor, action, subject, payload) != digest:
        raise VerificationError(
            f"audit chain broken at event #{seq}: its content does not match its hash "
            "(the event was edited)"
        )


def _verify_checkpoint(
    registry_id: str,
    origin: str,
    cp: Checkpoint,
    public_keys: SignerKeys | Mapping[str, str | Sequence[str]],
    hashes: list[str],
    first_seq: int = 1,
) -> None:
    """``hashes`` are those of events ``first_seq`` onwards."""
    where = f"checkpoint at event #{cp.seq} ({origin}, signed by {cp.signer})"
    if cp.registry_id != registry_id:
        raise VerificationError(f"{where} belongs to another registry ({cp.registry_id})")
    keys = signer_keys(public_keys)
    named = cp.key_fingerprint  # the key a v2 checkpoint names: only it may have signed
    held = keys.checkpoint_keys(cp.signer, cp.seq)
    pems = [p for p in held if named in (None, fingerprint(p))]
    if held and not pems and not any(fingerprint(p) == named for p, _ in keys.void_keys(
            cp.signer, cp.seq)):  # fmt: skip
        raise VerificationError(
            f"{where}: the key it names ({str(named)[:16]}…) is not one {cp.signer} held valid "
            "there; the signature does not verify (forged or edited)"
        )
    message = checkpoint_message(
        registry_id, cp.seq, cp.head_hash, cp.signer, cp.created_at, cp.key_fingerprint
    )
    if not any(verify_signature(pem, cp.signature, message) for pem in pems):
        for pem, why in keys.void_keys(cp.signer, cp.seq):
            if named in (None, fingerprint(pem)) and verify_signature(pem, cp.signature, message):
                raise VoidCheckpoint(f"{where} is void: {why}")
        if not pems:
            raise VerificationError(
                f"{where}: the signer held no valid key at that point of the chain (not a "
                "registered identity, not yet created, or already revoked)"
            )
        raise VerificationError(f"{where}: the signature does not verify (forged or edited)")
    last = first_seq - 1 + len(hashes)
    if cp.seq > last:
        raise VerificationError(
            f"audit log truncated: {where} records event #{cp.seq} but the log ends at #{last}"
        )
    if hashes[cp.seq - first_seq] != cp.head_hash:
        raise VerificationError(
            f"audit log rewritten: {where} records hash {cp.head_hash[:16]}… for event "
            f"#{cp.seq} but the log now has {hashes[cp.seq - first_seq][:16]}…"
        )


_EXCERPT_FIELDS = (
    "seq",
    "created_at",
    "actor",
    "action",
    "subject",
    "payload",
    "prev_hash",
    "hash",
)


def _payload(seq: int, text: str) -> dict[str, Any]:
    """An event's payload, which must be a JSON object (the hash chain says whether it is
    the one written; this only keeps a mangled one from reaching a reader as another
    type)."""
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict):
        raise VerificationError(
            f"audit event #{seq} has a payload that is not a JSON object: the log was edited; "
            "restore the registry from a backup"
        )
    return payload


def _excerpt_events(conn: Connection, first: int, last: int) -> list[dict[str, Any]]:
    """Events ``first`` to ``last`` as an excerpt holds them."""
    rows = conn.execute(
        "SELECT seq, created_at, actor, action, subject, payload, prev_hash, hash "
        "FROM audit_events WHERE seq BETWEEN ? AND ? ORDER BY seq",
        [first, last],
    ).fetchall()
    return [_excerpt_event(r) for r in rows]


def _excerpt_event(row: tuple[Any, ...]) -> dict[str, Any]:
    seq, created_at, *rest = row
    values = (seq, created_at.isoformat(timespec="microseconds"), *rest)
    return dict(zip(_EXCERPT_FIELDS, values, strict=True))


def verify_excerpt(
    events: list[dict[str, Any]],
    checkpoint: Checkpoint,
    public_keys: SignerKeys | Mapping[str, str | Sequence[str]],
) -> None:
    """Check a contiguous piece of a chain (as :meth:`AuditLog.excerpt` writes it): every
    event's hash over its content, every link to the one before, and the last event being
    the head that ``checkpoint`` signs (``public_keys``: the signers' keys, or a mapping of
    signer name to PEM or PEMs)."""
    if not events:
        raise VerificationError("the audit excerpt is empty")
    try:
        rows = [
            (*(e[f] for f in _EXCERPT_FIELDS[:1]), datetime.fromisoformat(e["created_at"]),
             *(e[f] for f in _EXCERPT_FIELDS[2:]))
            for e in events
        ]  # fmt: skip
    except (KeyError, TypeError, ValueError) as error:
        raise VerificationError(f"an audit excerpt event is malformed ({error})") from None
    first = events[0]
    hashes = _verify_chain(rows, first_seq=int(first["seq"]), prev=str(first["prev_hash"]))
    if checkpoint.seq != events[-1]["seq"]:
        raise VerificationError(
            f"the audit excerpt ends at event #{events[-1]['seq']}, not at the checkpoint's "
            f"#{checkpoint.seq}"
        )
    padded = [""] * (int(first["seq"]) - 1) + hashes
    _verify_checkpoint(checkpoint.registry_id, "excerpt", checkpoint, public_keys, padded)


def parse_head(text: str) -> tuple[int, str]:
    """Parse ``SEQ:HASH`` as printed by ``loraledger audit head``."""
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or int(seq) < 1 or len(digest) != 64:
        raise InputError(
            f"--expect-head {text!r} is invalid: write SEQ:HASH as printed by "
            "`loraledger audit head`"
        )
    return int(seq), digest.lower()
