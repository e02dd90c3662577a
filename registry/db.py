"""Short-lived DuckDB connections that wait politely for the one-writer lock.

DuckDB lets one process at a time open a database file read-write, and a read-only
opener conflicts with that writer too. So no LoRA Ledger operation keeps a connection
open beyond itself: it opens, runs one short transaction and closes. An operation made of
many reads (a trace, a gate check) runs them in one :meth:`Database.session`, which
shares one read-only connection among them for its duration (opening one costs
milliseconds) and closes it before any write. When another process holds the
lock, opening is retried with jittered exponential backoff until ``lock_timeout``
seconds have passed, then :class:`LockTimeout` says who held it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar, cast

import duckdb

from loraledger.errors import LockTimeout, NotARegistry, UsageError

DEFAULT_LOCK_TIMEOUT_S = 30.0
LOCK_TIMEOUT_ENV = "LORALEDGER_LOCK_TIMEOUT"

Connection = duckdb.DuckDBPyConnection
T = TypeVar("T")


class _Session:
    """The connection shared by one operation (opened lazily; read-write when the
    operation ends in a write), and the results of lookups it already made (cleared by
    any write)."""

    def __init__(self, writable: bool) -> None:
        self.writable = writable
        self.conn: Connection | None = None
        self.memo: dict[Hashable, Any] = {}

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


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


def _is_lock_conflict(error: duckdb.Error) -> bool:
    text = str(error)
    return "Could not set lock" in text or "Conflicting lock" in text


class Database:
    """One registry database file, opened per transaction."""

    def __init__(self, path: Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.path = path
        self.lock_timeout = lock_timeout

    def _connect(self, *, read_only: bool) -> Connection:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.005
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as error:
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

    def _session(self) -> _Session | None:
        sessions = _SESSIONS.get()
        return sessions.get(str(self.path)) if sessions else None

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
        session = _Session(writable)
        token = _SESSIONS.set({**(_SESSIONS.get() or {}), str(self.path): session})
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
            conn.close()

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
                yield from _transaction(session.conn)
                return
            session.close()
        conn = self._connect(read_only=False)
        try:
            yield from _transaction(conn)
        finally:
            conn.close()


def _transaction(conn: Connection) -> Iterator[Connection]:
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _holder(error: duckdb.Error) -> str:
    text = str(error)
    marker = "(PID "
    start = text.find(marker)
    if start < 0:
        return "holder unknown"
    end = text.find(")", start)
    return "held by PID " + text[start + len(marker) : end]
