"""eventsourcing's SQLite application recorder, plus the Idempotency-Key mark in its insert transaction.

The library inserts a command's events in one transaction and calls `_insert_events`
inside it; marking the running request's key as committed there means the events
and the mark commit together or not at all (see adapters/idempotency.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from adapters.idempotency import mark_committed


class MarkingSQLiteRecorder(SQLiteApplicationRecorder):
    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int]:
        positions = super()._insert_events(c, stored_events, **kwargs) or []

        def execute(sql: str, params: Sequence[Any]) -> int:
            c.execute(sql, params)
            return c.sqlite_cursor.rowcount

        mark_committed(execute, "?", positions)
        return positions
