"""Test helpers: raw SQL for tampering, and a snapshot to prove nothing was written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loraledger.registry import Registry
from loraledger.registry.db import Connection
from loraledger.registry.published import CheckpointFile

TABLES = (
    "identities",
    "artifacts",
    "signatures",
    "adapters",
    "adapter_versions",
    "adapter_files",
    "audit_events",
    "audit_checkpoints",
)


def sql(registry: Registry, statement: str, params: list[Any] | None = None) -> list[Any]:
    """Run raw SQL as an attacker (or a careless admin) with file access would; on
    PostgreSQL as one with the server's superuser, who can switch the append-only
    triggers off (``session_replication_role``): what is then edited must still be
    found by verification."""
    with tampering(registry) as conn:
        if params is None and ";" in statement:  # several statements, no parameters
            for part in statement.split(";")[:-1]:
                conn.execute(part)
            statement = statement.split(";")[-1]
        result = conn.execute(statement, params or [])
        try:
            return result.fetchall()
        except Exception:
            return []


@contextmanager
def tampering(registry: Registry) -> Iterator[Connection]:
    """A write transaction of someone editing the database behind LoRA Ledger's back
    (on PostgreSQL, the superuser with the append-only triggers switched off)."""
    with registry.db.write() as conn:
        if registry.db.dialect.name == "postgresql":
            conn.execute("SET LOCAL session_replication_role = replica")
        yield conn


def snapshot(registry: Registry) -> dict[str, Any]:
    """Everything a failed operation must leave untouched.

    The audit events of refusals (``*.refused``) are left out, with the checkpoints the
    refused actors signed over them: a refused action records one on purpose, and
    :func:`refusals` shows them.
    """
    with registry.db.read() as conn:
        refused = {
            r[0]
            for r in conn.execute(
                "SELECT seq FROM audit_events WHERE action LIKE '%.refused'"
            ).fetchall()
        }
        state: dict[str, Any] = {
            t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
            for t in TABLES
            if t not in ("audit_events", "audit_checkpoints")
        }
        state["audit_events"] = conn.execute(
            "SELECT * FROM audit_events WHERE action NOT LIKE '%.refused' ORDER BY seq"
        ).fetchall()
        state["audit_checkpoints"] = [
            r
            for r in sorted(conn.execute("SELECT * FROM audit_checkpoints").fetchall(), key=repr)
            if r[0] not in refused
        ]
    state["objects"] = sorted(registry.store.digests())
    state["tmp"] = sorted(p.name for p in registry.store.tmp.iterdir())
    file = checkpoint_file(registry)
    state["checkpoints"] = [
        line
        for line in (file.read_text().splitlines() if file.exists() else [])
        if json.loads(line)["seq"] not in refused
    ]
    return state


def checkpoint_file(registry: Registry) -> Path:
    """The file a directory-store registry publishes its checkpoints to."""
    published = registry.audit.published
    assert isinstance(published, CheckpointFile), published
    return published.path


@contextmanager
def flipped_weights(registry: Registry, ref: str) -> Iterator[None]:
    """Flip one bit of a stored version's weights file for the duration of the block, as
    an attacker with write access to the store would, and put it back afterwards."""
    version = registry.adapters.get(ref)
    entry = next(f for f in version.files if f.path == "adapter_model.safetensors")
    target = registry.store.path_of(entry.sha256)
    original = target.read_bytes()
    target.chmod(0o644)
    target.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        yield
    finally:
        target.write_bytes(original)
        target.chmod(0o444)


def refusals(registry: Registry) -> list[tuple[str, str, str]]:
    """(actor, attempted action, reason) of every audited access refusal, oldest first."""
    return [
        (e.actor, e.payload["action"], e.payload["reason"])
        for e in registry.audit_events(action="access.refused")
    ]


Sample = tuple[str, int, str, str, str, bool | None, str | None]


def replace_samples(conn: Connection, samples: list[Sample]) -> None:
    """The run ``run``'s samples, and only they, in ``conn``'s ``eval_samples``: texts in
    several fields, a category or none, the rest fixed (a quote, a backslash, JSON)."""
    conn.execute("DELETE FROM eval_samples")
    for task, doc_id, filter_, text, other, passed, category in samples:
        conn.execute(
            "INSERT INTO eval_samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ["run", task, doc_id, filter_, text, "h\\", '"p"', text, other, "t/x",
             '{"acc": 1.0}', passed, other, category],
        )  # fmt: skip
