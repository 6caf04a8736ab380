"""Stored responses for `Idempotency-Key`: a retried POST gets the first answer, and appends nothing.

The key is reserved before the command runs, so a duplicate sent while the first
is still running is told so (409) instead of running twice. Keys are scoped by
actor and expire after a day, as with Stripe's keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from projections.database import Cursor, Database

TABLE = "idempotency_keys"


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Outcome:
    """What `begin` found: reserved (run the request), a stored response to replay,
    a request still in progress, or the same key used for a different request."""

    kind: str  # "reserved" | "replay" | "in_progress" | "mismatch"
    response: StoredResponse | None = None


def _now() -> datetime:
    return datetime.now(UTC)


class IdempotencyStore:
    def __init__(self, db: Database, *, ttl: timedelta = timedelta(hours=24)) -> None:
        self.db = db
        self.ttl = ttl

    @staticmethod
    def create_schema(cur: Cursor) -> None:
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (actor TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL, "
            "status_code INTEGER, headers TEXT, body TEXT, created_at TEXT NOT NULL, PRIMARY KEY (actor, key))"
        )

    def begin(self, actor: str, key: str, request_hash: str) -> Outcome:
        now = _now()
        with self.db.transaction() as cur:
            inserted = cur.execute(
                f"INSERT INTO {TABLE} (actor, key, request_hash, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (actor, key) DO NOTHING RETURNING key",
                (actor, key, request_hash, now.isoformat()),
            ).fetchone()
            if inserted is not None:
                return Outcome("reserved")
            row = cur.execute(
                f"SELECT request_hash, status_code, headers, body, created_at FROM {TABLE} WHERE actor = ? AND key = ?",
                (actor, key),
            ).fetchone()
            assert row is not None  # the conflict above means it exists, and keys are only deleted under a lock
            if datetime.fromisoformat(row["created_at"]) < now - self.ttl:
                cur.execute(
                    f"UPDATE {TABLE} SET request_hash = ?, status_code = NULL, headers = NULL, body = NULL, "
                    "created_at = ? WHERE actor = ? AND key = ?",
                    (request_hash, now.isoformat(), actor, key),
                )
                return Outcome("reserved")
        if row["request_hash"] != request_hash:
            return Outcome("mismatch")
        if row["status_code"] is None:
            return Outcome("in_progress")
        return Outcome(
            "replay",
            StoredResponse(int(row["status_code"]), json.loads(row["headers"]), row["body"].encode("utf-8")),
        )

    def complete(self, actor: str, key: str, response: StoredResponse) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                f"UPDATE {TABLE} SET status_code = ?, headers = ?, body = ? WHERE actor = ? AND key = ?",
                (response.status_code, json.dumps(response.headers), response.body.decode("utf-8"), actor, key),
            )

    def release(self, actor: str, key: str) -> None:
        """Forgets a reservation whose request failed on our side, so a retry runs again."""
        with self.db.transaction() as cur:
            cur.execute(f"DELETE FROM {TABLE} WHERE actor = ? AND key = ? AND status_code IS NULL", (actor, key))
