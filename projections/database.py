"""The little the projections need from a SQL database, as a protocol.

adapters/database.py implements it for SQLite and PostgreSQL. SQL here is
written once with `?` placeholders; the PostgreSQL adapter translates them.
Both dialects share `INSERT ... ON CONFLICT ... DO UPDATE`, `ALTER TABLE ...
RENAME TO` and transactional DDL, which is all the engine relies on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgresql"]
Row = dict[str, Any]


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def fetchone(self) -> Row | None: ...

    def fetchall(self) -> list[Row]: ...

    def fetchmany(self, size: int) -> list[Row]: ...


class Database(Protocol):
    dialect: Dialect

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Cursor]:
        """A read-write transaction, committed on success and rolled back on error.
        On SQLite it holds the database's write lock from its first statement.

        durable=False lets the commit return before it reaches the disk: fine for
        projections, which a crash only sets back to an earlier, consistent
        position (views and position commit together), never for facts."""

    def is_transient(self, error: BaseException) -> bool:
        """Whether an error is the database's (a lost connection, a lock or statement timeout),
        so retrying later may succeed, rather than the statement's (a value out of range)."""

    def read(self) -> AbstractContextManager[Cursor]:
        """A read-only transaction: one consistent snapshot for several queries."""

    def close(self) -> None: ...
