"""SQL access for projections, tracking and idempotency keys, on SQLite or PostgreSQL.

This is our own connection handling beside eventsourcing's recorder (which owns
the event tables), because a projection batch must lock its tracking row and
commit view changes and position together.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from eventsourcing import persistence

from adapters.store import DEFAULT_POOL_TIMEOUT, StoreConfig
from projections.database import Database, Dialect, Row


class _Cursor:
    """One cursor API over sqlite3 and psycopg: `?` placeholders, dict rows."""

    __slots__ = ("_raw", "_translate")

    def __init__(self, raw: Any, translate: Any) -> None:
        self._raw = raw
        self._translate = translate

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        self._raw.execute(self._translate(sql), params)
        return self

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self._raw.executemany(self._translate(sql), rows)

    def fetchone(self) -> Row | None:
        return self._raw.fetchone()

    def fetchall(self) -> list[Row]:
        return self._raw.fetchall()

    def fetchmany(self, size: int) -> list[Row]:
        return self._raw.fetchmany(size)


#: what sqlite3 says when the database, not the statement, is at fault (it reports an integer
#: overflow or a syntax error as an OperationalError too)
_SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "readonly")
#: eventsourcing's wrappers that say the database did not answer, when they wrap nothing we can read
_WRAPPED_FAILURES = (persistence.OperationalError, persistence.InterfaceError, persistence.InternalError)
_BARE_WRAPPERS = (persistence.DatabaseError, persistence.PersistenceError)


def is_store_failure(error: BaseException | None) -> bool:
    """Whether an error is the database's (down, restarting, unreachable, pool exhausted, locked, a
    lock or statement timeout), so a retry later may succeed, rather than the statement's (a value out
    of range, a duplicate key, a syntax error), which fails every time. The one rule for the HTTP
    answers (503) and the projection engine (retry the batch, never quarantine). eventsourcing wraps
    the driver's errors, so the cause decides where there is one."""
    # psycopg loads with the first PostgreSQL store (a SQLite run never needs it): a psycopg error
    # can only exist once it is loaded.
    psycopg, pool = sys.modules.get("psycopg"), sys.modules.get("psycopg_pool")
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, sqlite3.OperationalError):
            return any(word in str(error).lower() for word in _SQLITE_UNAVAILABLE)
        if psycopg is not None:
            if isinstance(error, psycopg.errors.ProgramLimitExceeded):  # a row too large: the data's fault
                return False
            if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError | psycopg.InternalError) or (
                pool is not None and isinstance(error, pool.PoolTimeout)
            ):
                return True
        if isinstance(error, sqlite3.Error) or (psycopg is not None and isinstance(error, psycopg.Error)):
            return False  # data, integrity, programming errors
        if error.__cause__ is None and (isinstance(error, _WRAPPED_FAILURES) or type(error) in _BARE_WRAPPERS):
            return True  # a wrapper whose cause is unknown: the database's, to be safe
        error = error.__cause__
    return False


def _same(sql: str) -> str:
    return sql


@lru_cache(maxsize=1024)
def _to_psycopg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


class SQLiteDatabase:
    dialect: Dialect = "sqlite"

    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
            conn.row_factory = _dict_row
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
            self._local.durable = None
            with self._guard:
                self._all.append(conn)
        return conn

    @contextmanager
    def _tx(self, begin: str, durable: bool = True) -> Iterator[_Cursor]:
        conn = self._connection()
        if self._local.durable is not durable:
            # In WAL mode, NORMAL commits atomically but syncs only at checkpoints.
            conn.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
            self._local.durable = durable
        conn.execute(begin)
        try:
            yield _Cursor(conn.cursor(), _same)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def transaction(self, *, durable: bool = True) -> Iterator[_Cursor]:
        # IMMEDIATE takes the write lock now, so a batch never has to upgrade a read lock.
        return self._tx("BEGIN IMMEDIATE", durable)

    def read(self) -> Iterator[_Cursor]:
        return self._tx("BEGIN")

    def is_transient(self, error: BaseException) -> bool:
        return is_store_failure(error)

    def close(self) -> None:
        with self._guard:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.ProgrammingError:  # closed from its own thread already
                    pass
            self._all.clear()
        self._local = threading.local()


class PostgresDatabase:
    dialect: Dialect = "postgresql"

    def __init__(self, conninfo: str, *, max_size: int = 20, timeout: float = DEFAULT_POOL_TIMEOUT) -> None:
        # A bounded wait for a connection, and a connection the server dropped (restart,
        # admin shutdown) checked and replaced before use: an outage answers 503 fast.
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self.pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            open=True,
            timeout=timeout,
            check=ConnectionPool.check_connection,
        )

    @contextmanager
    def _tx(self, durable: bool = True) -> Iterator[_Cursor]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            if not durable:
                cur.execute("SET LOCAL synchronous_commit TO OFF")
            yield _Cursor(cur, _to_psycopg)

    def transaction(self, *, durable: bool = True) -> Iterator[_Cursor]:
        return self._tx(durable)

    def read(self) -> Iterator[_Cursor]:
        return self._tx()

    def is_transient(self, error: BaseException) -> bool:
        return is_store_failure(error)

    @contextmanager
    def advisory_lock(self, key: int) -> Iterator[None]:
        """A session-level lock across processes (used around schema creation)."""
        with self.pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def close(self) -> None:
        self.pool.close()


def open_database(config: StoreConfig) -> Database:
    """The read models' database: on SQLite their own file, on PostgreSQL the store itself."""
    if config.dialect == "sqlite":
        assert config.sqlite_views_path is not None
        return SQLiteDatabase(config.sqlite_views_path)
    return PostgresDatabase(config.conninfo(), timeout=config.pool_timeout)


def open_event_database(config: StoreConfig, views: Database) -> Database:
    """Our own access to the database that holds the events and the Idempotency-Key table
    (the library's recorder marks keys in its insert transaction): on SQLite the events file,
    on PostgreSQL the same database as `views`."""
    if config.dialect == "sqlite":
        assert config.sqlite_path is not None
        return SQLiteDatabase(config.sqlite_path)
    return views
