"""The SQL dialects a registry's database speaks, and the few places they differ.

The migrations in ``registry/sql/`` are written once, numbered once, in the SQL that
DuckDB (the embedded default) and PostgreSQL (a team's registry, issue #20) share. What
differs lives here and only here:

* types: DuckDB's ``DOUBLE`` is PostgreSQL's ``DOUBLE PRECISION``;
* statements DuckDB writes with its own clauses (``QUALIFY``), given in PostgreSQL's
  words, statement by statement -- a new such statement without a translation is refused
  when its migration is read, not discovered on a team's server;
* what PostgreSQL adds: history tables refuse ``UPDATE``, ``DELETE`` and ``TRUNCATE`` at
  the database (a trigger, whoever the user), so an edit of what was signed is refused
  rather than only detected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Written once and never changed by LoRA Ledger (identities are: a revocation updates its
# row; the revocation itself is a signed, audited event).
HISTORY_TABLES = (
    "audit_events",
    "audit_checkpoints",
    "signatures",
    "adapter_versions",
    "adapter_files",
    "approvals",
    "deployments",
    "gate_checks",
    "attestations",
)

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
        out: list[str] = []
        for statement in split_statements(sql):
            out.append(_postgres(statement))
            created = _created_table(statement)
            if created in HISTORY_TABLES:
                if _REFUSE_FUNCTION not in out:  # once per migration, before its triggers
                    out.append(_REFUSE_FUNCTION)
                out.append(_append_only(created))
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


def _created_table(statement: str) -> str | None:
    found = re.match(r"CREATE TABLE (\w+)", statement)
    return found.group(1) if found else None


def _append_only(table: str) -> str:
    return (
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION loraledger_append_only()"
    )


__all__ = ["DUCKDB", "HISTORY_TABLES", "POSTGRESQL", "Dialect", "DialectError", "split_statements"]
