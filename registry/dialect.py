"""The SQL dialects a registry's database speaks, and the few places they differ.

The migrations in ``registry/sql/`` are written once, numbered once, in the SQL that
DuckDB (the embedded default) and PostgreSQL (a team's registry, issue #20) share. What
differs lives here and only here:

* types: DuckDB's ``DOUBLE`` is PostgreSQL's ``DOUBLE PRECISION``;
* statements DuckDB writes with its own clauses (``QUALIFY``), given in PostgreSQL's
  words, statement by statement -- a new such statement without a translation is refused
  when its migration is read, not discovered on a team's server;
* what PostgreSQL adds once the migrations have run (:meth:`Dialect.guards`): every
  history table refuses ``UPDATE``, ``DELETE`` and ``TRUNCATE`` at the database (a
  trigger, whoever the user), an identity's row takes one change, its revocation, and
  the schema's own bookkeeping takes no writer's insert -- so an edit of what was signed
  is refused rather than only detected. A later migration that must rewrite rows of a
  history table switches its trigger off and on around that statement, itself.

Every table of the schema is in exactly one of :data:`HISTORY_TABLES`,
:data:`REVOCABLE_TABLES` and :data:`META_TABLES` (tests/registry/test_dialect.py): a new
table is append-only unless its migration says otherwise here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Written once and never changed by LoRA Ledger: every row a decision, a trace or an
# export reads, and the chain that records them.
HISTORY_TABLES = (
    "audit_events",
    "audit_checkpoints",
    "signatures",
    "artifacts",
    "adapters",
    "adapter_versions",
    "adapter_files",
    "datasets",
    "dataset_records",
    "base_models",
    "base_model_files",
    "training_runs",
    "training_run_datasets",
    "eval_runs",
    "eval_metrics",
    "eval_samples",
    "comparisons",
    "comparison_results",
    "approvals",
    "deployments",
    "gate_checks",
    "attestations",
    "policy_versions",
)
# Inserted once and changed once: an identity's revocation (itself a signed, audited
# event) sets its status and the revocation's columns; nothing else of the row changes.
REVOCABLE_TABLES = ("identities",)
# The schema's own bookkeeping, written by the database's owner (`init`, a migration):
# a writer's account may read them, never insert (a future schema version inserted by a
# writer would lock every account out).
META_TABLES = ("registry_meta", "schema_migrations")
WRITER_ROLE = "loraledger_writer"

_POSTGRES_STATEMENTS = {
    # DuckDB: SELECT * FROM v_adapter_versions QUALIFY row_number() OVER (...) = 1
    "v_latest_adapter_versions": (
        "CREATE VIEW v_latest_adapter_versions AS\n"
        "SELECT DISTINCT ON (name) * FROM v_adapter_versions ORDER BY name, version DESC"
    ),
}

_REFUSE_FUNCTION = """\
CREATE OR REPLACE FUNCTION loraledger_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'LoRA Ledger: % on % refused: the registry''s history is append-only',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'what was signed is never edited; record a new statement instead';
END
$$"""

_REVOCATION_FUNCTION = """\
CREATE OR REPLACE FUNCTION loraledger_revocation_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = 'active' AND NEW.status = 'revoked'
       AND (NEW.name, NEW.role, NEW.public_key_pem, NEW.key_fingerprint, NEW.created_at,
            NEW.created_by)
           IS NOT DISTINCT FROM (OLD.name, OLD.role, OLD.public_key_pem, OLD.key_fingerprint,
                                 OLD.created_at, OLD.created_by) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'LoRA Ledger: % on % refused: an identity changes only by its revocation',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'enrol a new identity, or revoke this one with `loraledger keys revoke`';
END
$$"""


def guard_triggers() -> dict[str, tuple[str, ...]]:
    """The triggers that guard history on PostgreSQL, by table: what `audit verify`
    expects to find there, each one enabled."""
    out: dict[str, tuple[str, ...]] = {t: (f"{t}_append_only",) for t in HISTORY_TABLES}
    out.update({t: (f"{t}_revocation_only", f"{t}_no_truncate") for t in REVOCABLE_TABLES})
    return out


class DialectError(RuntimeError):
    """A migration holds a statement this dialect has no translation for: a bug in the
    shipped SQL (as a misnumbered migration is), caught before it reaches a database."""


@dataclass(frozen=True)
class Dialect:
    """How one database speaks the registry's SQL."""

    name: str

    def statements(self, sql: str) -> list[str]:
        """A migration's text as this dialect's statements, in order, with what the
        dialect adds for the tables it creates."""
        if self.name == "duckdb":
            return split_statements(sql)
        return [_postgres(statement) for statement in split_statements(sql)]

    def guards(self) -> list[str]:
        """What this dialect adds after the migrations have run, in the same transaction:
        on PostgreSQL the triggers that make history append-only (made afresh, so a
        registry migrated by an earlier release gets every one of them) and the writers'
        inserts into the bookkeeping tables taken back; nothing on DuckDB."""
        if self.name == "duckdb":
            return []
        out = [_REFUSE_FUNCTION, _REVOCATION_FUNCTION]
        for table in HISTORY_TABLES:
            out += _trigger(
                f"{table}_append_only", table, "UPDATE OR DELETE OR TRUNCATE", "STATEMENT",
                "loraledger_append_only",
            )  # fmt: skip
        for table in REVOCABLE_TABLES:
            out += _trigger(
                f"{table}_revocation_only", table, "UPDATE OR DELETE", "ROW",
                "loraledger_revocation_only",
            )  # fmt: skip
            out += _trigger(
                f"{table}_no_truncate", table, "TRUNCATE", "STATEMENT", "loraledger_append_only"
            )
        out.append(
            f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{WRITER_ROLE}') "
            f"THEN REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {', '.join(META_TABLES)} "
            f"FROM {WRITER_ROLE}; END IF; END $$"
        )
        return out


DUCKDB = Dialect("duckdb")
POSTGRESQL = Dialect("postgresql")


def split_statements(sql: str) -> list[str]:
    """The statements of a migration file: ``--`` comments dropped, split at ``;``.

    The shipped migrations hold no ``;`` inside a string literal or a function body;
    :func:`_postgres`'s own function is added after the split."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _postgres(statement: str) -> str:
    view = re.match(r"CREATE VIEW (\w+)", statement)
    if re.search(r"\bQUALIFY\b", statement):
        if view is None or view.group(1) not in _POSTGRES_STATEMENTS:
            raise DialectError(
                "a migration uses DuckDB's QUALIFY in a statement with no PostgreSQL "
                f"translation: {statement[:80]!r}; add one to registry/dialect.py"
            )
        return _POSTGRES_STATEMENTS[view.group(1)]
    return re.sub(r"\bDOUBLE\b(?!\s+PRECISION)", "DOUBLE PRECISION", statement)


def _trigger(name: str, table: str, events: str, level: str, function: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {name} ON {table}",
        f"CREATE TRIGGER {name} BEFORE {events} ON {table} "
        f"FOR EACH {level} EXECUTE FUNCTION {function}()",
    ]


__all__ = [
    "DUCKDB",
    "HISTORY_TABLES",
    "META_TABLES",
    "POSTGRESQL",
    "REVOCABLE_TABLES",
    "WRITER_ROLE",
    "Dialect",
    "DialectError",
    "guard_triggers",
    "split_statements",
]
