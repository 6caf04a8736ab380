"""Small tools every projection uses: batched upserts and stored value formats."""

from __future__ import annotations

import json
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from projections.database import Cursor


def format_ts(value: datetime) -> str:
    """UTC, fixed width with microseconds: stored timestamps sort as text."""
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def to_json(value: Any) -> str:
    return json.dumps(value, default=_jsonable, separators=(",", ":"), sort_keys=True)


@dataclass
class Upserts:
    """Collects the changes of one batch per row, then writes each row once.

    A row registered and changed three times in a batch costs one INSERT; a row
    only changed costs one upsert that updates just the columns that were set."""

    table: str
    keys: tuple[str, ...]
    rows: dict[Hashable, dict[str, Any]] = field(default_factory=dict)

    def set(self, key: tuple[Any, ...], **values: Any) -> None:
        row = self.rows.get(key)
        if row is None:
            self.rows[key] = dict(zip(self.keys, key, strict=True)) | values
        else:
            row.update(values)

    def flush(self, cur: Cursor) -> None:
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for row in self.rows.values():
            columns = tuple(row)
            groups.setdefault(columns, []).append(tuple(row.values()))
        for columns, values in groups.items():
            updates = [c for c in columns if c not in self.keys]
            action = "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in updates) if updates else "DO NOTHING"
            cur.executemany(
                f"INSERT INTO {self.table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)}) "
                f"ON CONFLICT ({', '.join(self.keys)}) {action}",
                values,
            )
        self.rows.clear()
