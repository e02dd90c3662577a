"""Short-lived database connections: the one way the registry reads and writes its index.

:class:`Database` is the seam between the registry and the database server behind it:
operations (``read``, ``write``, ``session``, ``memo``) written once, over connections each
backend opens and closes. The embedded default is :class:`DuckDatabase` (one DuckDB file,
below); a team's registry is :class:`~loraledger.registry.postgres.PostgresDatabase`.

DuckDB lets one process at a time open a database file read-write, and a read-only
opener conflicts with that writer too. So no LoRA Ledger operation keeps a connection
open beyond itself: it opens, runs one short transaction and closes. An operation made of
many reads (a trace, a gate check) runs them in one :meth:`Database.session`, which
shares one read-only connection among them for its duration (opening one costs
milliseconds) and closes it before any write. When another process holds the
lock, opening is retried with jittered exponential backoff until ``lock_timeout``
seconds have passed, then :class:`LockTimeout` says who held it.

"Opening" is an ``ATTACH`` into one in-memory DuckDB engine per process, and closing a
``DETACH`` (which checkpoints and releases the file lock): starting a DuckDB instance
costs about 13 ms, attaching a file about 2. Within a process the threads (the
dashboard's sessions) take turns on a file, one operation at a time, so no two of them
can hold it with different modes.
"""

from __future__ import annotations

import atexit
import itertools
import os
import random
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import duckdb

from loraledger.errors import (
    LedgerWarning,
    LockTimeout,
    NotARegistry,
    StorageError,
    UsageError,
)

from .dialect import DUCKDB, Dialect

DEFAULT_LOCK_TIMEOUT_S = 30.0
LOCK_TIMEOUT_ENV = "LORALEDGER_LOCK_TIMEOUT"

T = TypeVar("T")


class Cursor(Protocol):
    """What a query returns, on every backend (DB-API 2.0's shape)."""

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int = ..., /) -> list[Any]: ...


class Connection(Protocol):
    """A connection as the registry uses it: ``?`` placeholders on every backend."""

    def execute(self, query: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, query: str, parameters: Sequence[Any], /) -> Any: ...


def dialect_of(conn: Connection) -> Dialect:
    """The dialect ``conn`` speaks (a backend's connection names its own; DuckDB's cannot)."""
    return cast(Dialect, getattr(conn, "dialect", DUCKDB))


class _Session:
    """The connection shared by one operation (opened lazily; read-write when the
    operation ends in a write), and the results of lookups it already made (cleared by
    any write)."""

    def __init__(self, database: Database, writable: bool) -> None:
        self.database = database
        self.writable = writable
        self.conn: Connection | None = None
        self.memo: dict[Hashable, Any] = {}

    def close(self) -> None:
        if self.conn is not None:
            self.database._release(self.conn)
            self.conn = None


@dataclass
class _Attachment:
    alias: str
    read_only: bool
    users: int


class _Engine:
    """This process's in-memory DuckDB instance, the registry files attached to it and
    one re-entrant lock per file."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.conn = duckdb.connect(":memory:")
        atexit.register(self.conn.close)  # before the interpreter tears the bindings down
        self.guard = threading.Lock()
        self.locks: dict[str, threading.RLock] = {}
        self.attached: dict[str, _Attachment] = {}
        self.aliases = itertools.count()

    def lock(self, key: str) -> threading.RLock:
        with self.guard:
            return self.locks.setdefault(key, threading.RLock())


_ENGINE: _Engine | None = None
_ENGINE_GUARD = threading.Lock()


def _engine() -> _Engine:
    global _ENGINE
    with _ENGINE_GUARD:
        if _ENGINE is None or _ENGINE.pid != os.getpid():  # not the parent's, after a fork
            _ENGINE = _Engine()
        return _ENGINE


_SESSIONS: ContextVar[dict[str, _Session] | None] = ContextVar(
    "loraledger_db_sessions", default=None
)


def lock_timeout_from_env() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise UsageError(f"{LOCK_TIMEOUT_ENV}={raw!r} is not a positive number of seconds")
    return value


def _is_unwritable(error: duckdb.Error) -> bool:
    """DuckDB could not open the file for writing: a read-only mount, or no permission."""
    return any(words in str(error) for words in ("Read-only file system", "Permission denied"))


def _reason(error: duckdb.Error) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text.rsplit(": ", 1)[-1]


def _is_lock_conflict(error: duckdb.Error) -> bool:
    text = str(error)
    return "Could not set lock" in text or "Conflicting lock" in text


class Database(ABC):
    """A registry's database, opened per operation: what every backend shares."""

    dialect: Dialect
    lock_timeout: float

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the database is, for messages (never with a password)."""

    @abstractmethod
    def _connect(self, *, read_only: bool) -> Connection:
        """A connection for one operation; give it back with :meth:`_release`."""

    @abstractmethod
    def _release(self, conn: Connection) -> None: ...

    def check_guards(self, conn: Connection) -> int:
        """Check that the database still refuses edits of history, where it can (a
        PostgreSQL server's triggers); return the guards checked. A DuckDB file has none:
        whoever can write the file can edit it, and the signatures and the audit chain
        find what was edited."""
        return 0

    def may_append(self, conn: Connection) -> bool:
        """Whether this account may append to the audit log: False for a read-only
        account (an auditor's on PostgreSQL), whose reads are not recorded."""
        return True

    def _transaction(self, conn: Connection) -> Iterator[Connection]:
        """One transaction on ``conn``: committed on success, rolled back on any
        exception."""
        conn.execute("BEGIN TRANSACTION")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # how a transaction that sees one state of the database throughout begins
    snapshot_begin = "BEGIN TRANSACTION"

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read connection of its own in one transaction: every query in the block sees
        the same state of the database, whatever others commit meanwhile (for copying a
        whole registry)."""
        conn = self._connect(read_only=True)
        try:
            if self.snapshot_begin:
                conn.execute(self.snapshot_begin)
            try:
                yield conn
            finally:
                conn.execute("ROLLBACK")
        finally:
            self._release(conn)

    def _session(self) -> _Session | None:
        sessions = _SESSIONS.get()
        return sessions.get(self.location) if sessions else None

    @contextmanager
    def session(self, *, writable: bool = False) -> Iterator[None]:
        """Let the reads inside this block share one connection (nested sessions join
        the outer one). A read-only session closes it before a write (DuckDB allows one
        configuration per file and process) and the next read opens it again; a
        ``writable`` session -- for an operation of reads that ends in a write, such as a
        gate check -- opens it read-write once and runs its writes on it, holding the
        file for the operation's duration (a fraction of a second)."""
        if self._session() is not None:
            yield
            return
        session = _Session(self, writable)
        token = _SESSIONS.set({**(_SESSIONS.get() or {}), self.location: session})
        try:
            yield
        finally:
            _SESSIONS.reset(token)
            session.close()

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, remembered for the rest of the session under ``key`` (for
        lookups of immutable records read several times by one operation); outside a
        session it is simply computed."""
        session = self._session()
        if session is None:
            return compute()
        if key not in session.memo:
            session.memo[key] = compute()
        return cast(T, session.memo[key])

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection (several readers may share the file)."""
        session = self._session()
        if session is not None:
            if session.conn is None:
                session.conn = self._connect(read_only=not session.writable)
            yield session.conn
            return
        conn = self._connect(read_only=True)
        try:
            yield conn
        finally:
            self._release(conn)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A read-write connection inside one transaction: committed on success,
        rolled back on any exception, closed either way."""
        session = self._session()
        if session is not None:
            session.memo.clear()
            if session.writable:
                if session.conn is None:
                    session.conn = self._connect(read_only=False)
                try:
                    yield from self._transaction(session.conn)
                finally:
                    session.memo.clear()  # what was looked up inside it may be stale now
                return
            session.close()
        conn = self._connect(read_only=False)
        try:
            yield from self._transaction(conn)
        finally:
            self._release(conn)


class DuckDatabase(Database):
    """One registry database file (DuckDB, embedded), opened per transaction."""

    dialect = DUCKDB

    def __init__(self, path: Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.path = path
        self.lock_timeout = lock_timeout

    @property
    def location(self) -> str:
        return str(self.path)

    def _connect(self, *, read_only: bool) -> Connection:
        """A cursor on this file, attached in this process's engine; give it back with
        :meth:`_release`. Waits (up to ``lock_timeout``) for another thread of this
        process using the file, then for another process holding its lock."""
        engine = _engine()
        key = os.path.realpath(self.path)
        lock = engine.lock(key)
        if not lock.acquire(timeout=self.lock_timeout):
            raise LockTimeout(
                f"the registry database {self.path} stayed busy with another operation of "
                f"this process for {self.lock_timeout:g}s; retry when it is done, or raise "
                f"{LOCK_TIMEOUT_ENV}"
            )
        try:
            attachment = engine.attached.get(key)
            if attachment is None:
                attachment = _Attachment(self._attach(engine, key, read_only), read_only, 0)
                engine.attached[key] = attachment
            elif attachment.read_only and not read_only:
                raise RuntimeError(  # pragma: no cover - a programming error
                    "a write inside a read-only connection to the same registry"
                )
            cursor = engine.conn.cursor()
            try:
                cursor.execute(f"USE {attachment.alias}")
            except BaseException:
                cursor.close()
                raise
            attachment.users += 1
            return cursor
        except BaseException:
            self._detach_unused(engine, key)
            lock.release()
            raise

    def _release(self, conn: Connection) -> None:
        engine = _engine()
        key = os.path.realpath(self.path)
        try:
            cast(duckdb.DuckDBPyConnection, conn).close()
            attachment = engine.attached.get(key)
            if attachment is not None:
                attachment.users -= 1
            self._detach_unused(engine, key)
        finally:
            engine.lock(key).release()

    @staticmethod
    def _detach_unused(engine: _Engine, key: str) -> None:
        attachment = engine.attached.get(key)
        if attachment is not None and attachment.users <= 0:
            del engine.attached[key]
            with engine.conn.cursor() as cursor:  # a cursor per use: threads share the engine
                try:
                    cursor.execute(f"DETACH {attachment.alias}")
                except duckdb.IOException as error:
                    if "CHECKPOINT during DETACH failed" not in str(error):
                        raise
                    # Detached; what committed is durable in the write-ahead log beside the
                    # file, which the next open folds in. Not a failure of the change.
                    warnings.warn(
                        f"{key} could not be brought up to date (disk full?): the changes "
                        "made are kept in its write-ahead log (.wal) and folded in when it is "
                        "next opened with space; free space soon",
                        LedgerWarning,
                        stacklevel=2,
                    )

    def _attach(self, engine: _Engine, key: str, read_only: bool) -> str:
        alias = f"registry_{next(engine.aliases)}"
        quoted = key.replace("'", "''")
        sql = f"ATTACH '{quoted}' AS {alias}" + (" (READ_ONLY)" if read_only else "")
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.005
        while True:
            try:
                with engine.conn.cursor() as cursor:
                    cursor.execute(sql)
                return alias
            except duckdb.IOException as error:
                if not read_only and _is_unwritable(error):
                    raise StorageError(
                        f"{self.path}: the registry database cannot be written here "
                        f"({_reason(error)}); reading commands still work -- for a change, "
                        "use a writable copy or give this user write access"
                    ) from error
                if not _is_lock_conflict(error):
                    raise NotARegistry(
                        f"cannot open the registry database: {error}; check the path and "
                        "the file's permissions",
                        path=self.path,
                    ) from error
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"the registry database {self.path} stayed locked by another process "
                        f"for {self.lock_timeout:g}s ({_holder(error)}); retry when it is "
                        f"done, or raise {LOCK_TIMEOUT_ENV}"
                    ) from error
            except duckdb.Error as error:
                raise NotARegistry(
                    f"not a readable DuckDB registry database ({error}); point --registry "
                    "at a directory made by `loraledger init`",
                    path=self.path,
                ) from error
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 1.6, 0.25)


def _holder(error: duckdb.Error) -> str:
    text = str(error)
    marker = "(PID "
    start = text.find(marker)
    if start < 0:
        return "holder unknown"
    end = text.find(")", start)
    return "held by PID " + text[start + len(marker) : end]
