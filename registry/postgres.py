"""A registry's database on a PostgreSQL server: a team's registry (docs/deployment.md).

The same operations as the embedded DuckDB file (:class:`~.db.Database`), over a
``postgresql://user@host:port/dbname`` URL. The password comes from where libpq looks for
it -- ``PGPASSWORD``, a ``.pgpass`` file, a service file -- and never from the URL, which is
shown in messages and may sit in a shell's history.

* No connection is held between operations: each opens one (``autocommit``, explicit
  transactions) and closes it; a session's reads share one.
* An operation's reads run in one read-only REPEATABLE READ transaction: they see one
  state of the registry (a check comparing rows with their events never sees another
  writer's commit land between its queries), and a read path cannot write by mistake.
* Writes are serialised per registry by an advisory lock a write connection takes when it
  opens and lets go when it closes (or its process dies): writers on different machines
  queue for a fraction of a second rather than fork the audit chain or both win a
  contested promotion, and a write's own reads see no other writer's commit, as on
  DuckDB's file; readers never wait. A wait longer than the lock timeout ends with
  :class:`LockTimeout`.
* The SQL is the registry's one SQL with ``?`` placeholders, rewritten here once per
  statement to psycopg's ``%s``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from loraledger.errors import (
    LockTimeout,
    PermissionDenied,
    StorageError,
    UsageError,
    VerificationError,
)

from .db import LOCK_TIMEOUT_ENV, Connection, Cursor, Database
from .dialect import POSTGRESQL, REVOCABLE_TABLES, WRITER_ROLE, guard_triggers

SCHEMES = ("postgresql", "postgres")
# pg_advisory_lock's key for "this registry's writer": the ASCII of "LoRALedg".
WRITE_LOCK_KEY = 0x4C6F52414C656467


def is_url(location: object) -> bool:
    """Whether a ``--registry`` value names a PostgreSQL database rather than a directory."""
    return isinstance(location, str) and urlsplit(location).scheme in SCHEMES


def check_url(url: str) -> str:
    """``url`` if it is a usable registry URL: a host and a database, no password."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise UsageError(f"{url!r} is not a postgresql:// URL")
    if parts.password is not None:
        raise UsageError(
            "the registry URL holds a password; take it out and give it as libpq does -- "
            "a ~/.pgpass line or PGPASSWORD -- so it never shows in a command line or a log"
        )
    if not parts.path.strip("/"):
        raise UsageError(
            f"the registry URL {url!r} names no database; add one: postgresql://USER@HOST:PORT/DBNAME"
        )
    return url


@functools.lru_cache(maxsize=1024)
def psycopg_sql(query: str) -> str:
    """The registry's SQL (``?`` placeholders) as psycopg's: ``?`` becomes ``%s`` and a
    literal ``%`` is doubled, outside quoted strings and identifiers."""
    out: list[str] = []
    for part in re.split(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")", query):
        if part.startswith(("'", '"')):
            out.append(part.replace("%", "%%"))
        else:
            out.append(part.replace("%", "%%").replace("?", "%s"))
    return "".join(out)


class PostgresConnection:
    """A psycopg connection speaking the registry's SQL (:class:`~.db.Connection`)."""

    dialect = POSTGRESQL

    def __init__(self, raw: Any, *, read_only: bool) -> None:
        self.raw = raw
        self.read_only = read_only

    def execute(self, query: str, parameters: Any = None, /) -> Cursor:
        cursor = self.raw.cursor()
        # without parameters psycopg sends the text as it is (a function body's % too)
        with self._refusals():
            cursor.execute(query if parameters is None else psycopg_sql(query), parameters)
        return cursor  # type: ignore[no-any-return]

    def executemany(self, query: str, parameters: Sequence[Any], /) -> None:
        with self.raw.cursor() as cursor, self._refusals():
            cursor.executemany(psycopg_sql(query), parameters)

    def copy_in(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` with ``COPY ... FROM STDIN`` (bulk loading: a registry copy)."""
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self.raw.cursor() as cursor, self._refusals(), cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    @contextmanager
    def _refusals(self) -> Iterator[None]:
        """The server's refusals as the registry's errors: a privilege this account lacks
        (an auditor writing, anyone editing history) and a lost connection."""
        import psycopg

        try:
            yield
        except psycopg.errors.LockNotAvailable:
            raise  # a writer's wait for the lock: said by _take_write_lock, with its limit
        except psycopg.errors.InsufficientPrivilege as error:
            user = self.raw.info.user
            raise PermissionDenied(
                f"the registry database refused {user!r}: {str(error).splitlines()[0]}; an "
                "auditor's account only reads, and nobody's edits history -- act through "
                "a writer's account (docs/deployment.md)"
            ) from error
        except psycopg.OperationalError as error:
            raise StorageError(
                f"the registry database stopped answering ({str(error).strip().splitlines()[0]}); "
                "the change, if any, committed whole or not at all: run the command again"
            ) from error

    def close(self) -> None:
        self.raw.close()


class PostgresDatabase(Database):
    """A registry's database on a PostgreSQL server, opened per operation."""

    dialect = POSTGRESQL
    snapshot_begin = ""  # every read connection is one snapshot already

    def __init__(self, url: str, *, lock_timeout: float) -> None:
        self.url = check_url(url)
        self.lock_timeout = lock_timeout

    @property
    def location(self) -> str:
        return self.url  # never holds a password: check_url refuses one

    def _connect(self, *, read_only: bool) -> Connection:
        import psycopg
        from psycopg.types.string import TextLoader

        options = "-c default_transaction_read_only=on" if read_only else ""
        try:
            raw = psycopg.connect(
                self.url,
                autocommit=True,
                application_name="loraledger",
                connect_timeout=max(1, round(self.lock_timeout)),
                options=options,
            )
        except psycopg.OperationalError as error:
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else "refused"
            raise StorageError(
                f"cannot connect to the registry database {self.location} ({reason}); check "
                "that the server is up and reachable, and that the password is in ~/.pgpass "
                "or PGPASSWORD"
            ) from error
        for json_type in ("json", "jsonb"):  # JSON as its text, as DuckDB returns it
            raw.adapters.register_loader(json_type, TextLoader)
        conn = PostgresConnection(raw, read_only=read_only)
        try:
            if read_only:
                # one snapshot for all of an operation's reads: a check comparing rows with
                # events never sees a writer's commit land between its two queries
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            else:
                self._take_write_lock(conn)
        except BaseException:
            raw.close()
            raise
        return conn

    def _take_write_lock(self, conn: PostgresConnection) -> None:
        """This registry's writer lock, for as long as the connection lives (closing it,
        or the process dying, lets go): a write connection's reads and its transaction
        see no other writer's commit, as on DuckDB's file."""
        import psycopg

        conn.execute(f"SET lock_timeout = '{int(self.lock_timeout * 1000)}ms'")
        try:
            conn.execute("SELECT pg_advisory_lock(?)", [WRITE_LOCK_KEY])
        except psycopg.errors.LockNotAvailable as error:
            raise LockTimeout(
                f"the registry database {self.location} stayed busy with another "
                f"writer for {self.lock_timeout:g}s; retry when it is done, or raise "
                f"{LOCK_TIMEOUT_ENV}"
            ) from error
        conn.execute("SET lock_timeout = 0")

    def _release(self, conn: Connection) -> None:
        assert isinstance(conn, PostgresConnection)
        conn.close()

    def may_append(self, conn: Connection) -> bool:
        row = conn.execute(
            "SELECT has_table_privilege(current_user, 'audit_events', 'INSERT')"
        ).fetchone()
        return bool(row and row[0])

    def check_guards(self, conn: Connection) -> int:
        """Every trigger that makes history append-only is there and enabled: the
        database's owner or a superuser can drop one or switch it off (``ALTER TABLE ...
        DISABLE TRIGGER``), and nothing else would say so. What was edited meanwhile is
        found by checking the rows against their signed events (``audit verify``)."""
        found = dict(
            conn.execute(
                "SELECT c.relname || '.' || t.tgname, t.tgenabled::text FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND NOT t.tgisinternal"
            ).fetchall()
        )
        checked = 0
        for table, names in guard_triggers().items():
            for name in names:
                state = found.get(f"{table}.{name}")
                if state not in ("O", "A"):  # fires in every session ('D' off, 'R' replica only)
                    what = "is missing" if state is None else "is switched off"
                    raise VerificationError(
                        f"the trigger {name} on {table} {what} in {self.location}: that table "
                        "no longer refuses edits (only the database's owner or a superuser can "
                        "do that); run `loraledger db-roles` with the owner's account, which "
                        "makes every guard afresh, then `loraledger audit verify`, which finds "
                        "any row edited meanwhile"
                    )
                checked += 1
        return checked


AUDITOR_ROLE = "loraledger_auditor"
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def role_statements(
    database: str,
    schema: str = "public",
    *,
    writers: Sequence[str] = (),
    auditors: Sequence[str] = (),
) -> list[str]:
    """The SQL that gives a registry's database its two kinds of account: writers
    (``loraledger_writer``: read everything, insert rows, update an identity's revocation;
    never update or delete history, never change the schema or insert into its
    bookkeeping -- the schema version and the registry's settings) and auditors
    (``loraledger_auditor``: read only), each existing login role named joining one.
    Then every guard on history made afresh (:meth:`~.dialect.Dialect.guards`: a trigger
    dropped or switched off is back). Run by the database's owner; idempotent. Future
    tables (a migration run by the owner) get the same grants."""
    for name in (*writers, *auditors):
        if not _ROLE_NAME.fullmatch(name):
            raise UsageError(
                f"{name!r} is not a plain PostgreSQL role name (lower-case letters, digits "
                "and _, not starting with a digit); create the login role with such a name"
            )
    db, sch = _quoted(database), _quoted(schema)
    both = f"{WRITER_ROLE}, {AUDITOR_ROLE}"
    out = [
        f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        for role in (WRITER_ROLE, AUDITOR_ROLE)
    ]
    out += [
        f"REVOKE ALL ON DATABASE {db} FROM PUBLIC",
        f"GRANT CONNECT ON DATABASE {db} TO {both}",
        f"REVOKE ALL ON SCHEMA {sch} FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA {sch} TO {both}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {sch} FROM PUBLIC",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {sch} TO {both}",
        f"GRANT INSERT ON ALL TABLES IN SCHEMA {sch} TO {WRITER_ROLE}",
        *(f"GRANT UPDATE ON {sch}.{t} TO {WRITER_ROLE}" for t in REVOCABLE_TABLES),
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {sch} GRANT SELECT ON TABLES TO {both}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {sch} GRANT INSERT ON TABLES TO {WRITER_ROLE}",
    ]
    out += [f"GRANT {WRITER_ROLE} TO {_quoted(n)}" for n in writers]
    out += [f"GRANT {AUDITOR_ROLE} TO {_quoted(n)}" for n in auditors]
    return [*out, *POSTGRESQL.guards()]


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def create_roles(
    db: PostgresDatabase, *, writers: Sequence[str] = (), auditors: Sequence[str] = ()
) -> list[str]:
    """Run :func:`role_statements` on ``db``'s database (as its owner); the statements
    run, in one transaction."""
    import psycopg

    with db.read() as conn:
        database, schema = conn.execute("SELECT current_database(), current_schema()").fetchone()
    statements = role_statements(database, schema, writers=writers, auditors=auditors)
    try:
        with db.write() as conn:
            for statement in statements:
                conn.execute(statement)
    except (PermissionDenied, psycopg.errors.UndefinedObject) as error:
        reason = str(error.__cause__ or error).splitlines()[0]
        raise PermissionDenied(
            f"the roles could not be set up on {db.location}: {reason}; "
            "run `loraledger db-roles` as the database's owner (who ran `loraledger init`), "
            "and create each login role first (CREATE ROLE name LOGIN)"
        ) from error
    return statements


__all__ = [
    "AUDITOR_ROLE",
    "WRITER_ROLE",
    "PostgresConnection",
    "PostgresDatabase",
    "check_url",
    "create_roles",
    "is_url",
    "psycopg_sql",
    "role_statements",
]
