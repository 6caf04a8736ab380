"""The audit trail: every audited event in global order, filterable and paginated.

Each row keeps the event's position, time, model, version, type, actor, reason
and the rest of its payload, so "who changed what, when and why" is one query.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from projections.database import Cursor, Database
from projections.engine import LoggedEvent, Projection
from projections.rows import format_ts, to_json
from projections.version_changes import REGISTRY_EVENTS

#: fields shown in their own columns, or owned by the event-sourcing library
_NOT_PAYLOAD = {"originator_id", "originator_version", "timestamp", "originator_topic", "model", "actor", "reason"}

AUDITED_EVENTS: tuple[type, ...] = REGISTRY_EVENTS


def _version_of(event: Any) -> int | None:
    for attr in ("number", "to_version"):
        value = getattr(event, attr, None)
        if value is not None:
            return int(value)
    return None


class AuditTrailProjection(Projection):
    name = "audit"
    schema_version = 1
    event_classes = AUDITED_EVENTS
    tables = {
        "audit_log": (
            "position BIGINT PRIMARY KEY, at TEXT NOT NULL, model TEXT, version INTEGER, event_type TEXT NOT NULL, "
            "actor TEXT, reason TEXT, stream_id TEXT NOT NULL, stream_version INTEGER NOT NULL, payload TEXT NOT NULL"
        ),
    }
    indexes = [
        ("audit_log", "model, position"),
        ("audit_log", "event_type, position"),
        ("audit_log", "actor, position"),
        ("audit_log", "at"),
    ]

    def apply(self, cur: Cursor, tables: dict[str, str], events: Sequence[LoggedEvent]) -> None:
        rows = []
        for logged in events:
            e = logged.event
            payload = {k: v for k, v in vars(e).items() if k not in _NOT_PAYLOAD}
            rows.append(
                (
                    logged.position,
                    format_ts(e.timestamp),
                    getattr(e, "model", None),
                    _version_of(e),
                    type(e).__name__,
                    getattr(e, "actor", None),
                    getattr(e, "reason", None),
                    str(e.originator_id),
                    e.originator_version,
                    to_json(payload),
                )
            )
        cur.executemany(
            f"INSERT INTO {tables['audit_log']} (position, at, model, version, event_type, actor, reason, "
            "stream_id, stream_version, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


@dataclass(frozen=True)
class AuditFilter:
    model: str | None = None
    event_type: str | None = None
    actor: str | None = None
    since: str | None = None  # formatted UTC timestamps, inclusive
    until: str | None = None
    after: int = 0  # position cursor, exclusive
    limit: int = 100


def query_audit(db: Database, f: AuditFilter) -> list[dict[str, Any]]:
    clauses, params = ["position > ?"], [f.after]
    for column, value in (("model", f.model), ("event_type", f.event_type), ("actor", f.actor)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if f.since is not None:
        clauses.append("at >= ?")
        params.append(f.since)
    if f.until is not None:
        clauses.append("at <= ?")
        params.append(f.until)
    with db.read() as cur:
        rows = cur.execute(
            "SELECT position, at, model, version, event_type, actor, reason, payload FROM audit_log "
            f"WHERE {' AND '.join(clauses)} ORDER BY position LIMIT ?",
            [*params, f.limit],
        ).fetchall()
    return [
        {
            "position": r["position"],
            "timestamp": r["at"],
            "model": r["model"],
            "version": r["version"],
            "event_type": r["event_type"],
            "actor": r["actor"],
            "reason": r["reason"],
            "payload": json.loads(r["payload"]),
        }
        for r in rows
    ]


def audited_event_types() -> list[str]:
    return sorted(cls.__name__ for cls in AUDITED_EVENTS)
