"""Stored responses for `Idempotency-Key`: a retried POST gets the first answer, and appends nothing.

A request reserves its key before the command runs. The reservation has an owner
(a token per request) and a lease: a duplicate sent while the first still runs is
told to wait (409 with Retry-After), and a reservation left by a request that died
(kill -9, a database outage) is taken over by a retry once its lease has run out.

The command's events and the mark "this key committed, at position N" are written
in one transaction (the recorders in adapters/pg_recorder.py and
adapters/sqlite_recorder.py call `mark_committed`), and only the reservation's
current owner can write that mark. So a retry after a commit never appends again:
it replays the stored answer, or, when the process died between the commit and
storing the answer, it is told that the request was recorded and where. A committed
reservation is never released. Keys are scoped by actor and expire after a day, as
with Stripe's keys.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from projections.database import Cursor, Database

TABLE = "idempotency_requests"
#: the first layout, without owner, lease or commit mark: its reservations could not be taken over
OLD_TABLE = "idempotency_keys"
DEFAULT_LEASE_SECONDS = 10.0


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reservation:
    """Who holds a key now: `owner` is a fresh token per request (a fencing token)."""

    actor: str
    key: str
    owner: str


@dataclass(frozen=True)
class Outcome:
    """What `begin` found: reserved (run the request), a stored response to replay, a request
    still in progress (retry after `retry_after` seconds), a request that committed at
    `position` but whose answer was lost, or the same key used for a different request."""

    kind: str  # "reserved" | "replay" | "in_progress" | "committed" | "mismatch"
    reservation: Reservation | None = None
    response: StoredResponse | None = None
    retry_after: int = 0
    position: int | None = None


class ReservationLost(Exception):
    """The request's lease ran out and a retry took its key over: this request records nothing."""


#: the reservation of the request running in this context, read by the recorders
current_reservation: ContextVar[Reservation | None] = ContextVar("current_reservation", default=None)


def mark_committed(execute: Callable[[str, Sequence[Any]], Any], placeholder: str, positions: Sequence[int]) -> None:
    """Inside the recorder's insert transaction: marks the running request's key as committed.

    `execute` runs one statement on the recorder's cursor and returns the affected row count.
    No row means the lease ran out and a retry owns the key now: raising rolls the events back."""
    reservation = current_reservation.get()
    if reservation is None or not positions:
        return
    p = placeholder
    changed = execute(
        f"UPDATE {TABLE} SET committed_position = {p} WHERE actor = {p} AND key = {p} AND owner = {p}",
        (max(positions), reservation.actor, reservation.key, reservation.owner),
    )
    if changed != 1:
        raise ReservationLost(reservation.key)


def _now() -> datetime:
    return datetime.now(UTC)


class IdempotencyStore:
    def __init__(self, db: Database, *, ttl: timedelta = timedelta(hours=24)) -> None:
        self.db = db
        self.ttl = ttl

    @staticmethod
    def create_schema(cur: Cursor) -> None:
        cur.execute(f"DROP TABLE IF EXISTS {OLD_TABLE}")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (actor TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL, "
            "owner TEXT NOT NULL, lease_until DOUBLE PRECISION NOT NULL, committed_position BIGINT, "
            "status_code INTEGER, headers TEXT, body TEXT, created_at TEXT NOT NULL, PRIMARY KEY (actor, key))"
        )

    def begin(self, actor: str, key: str, request_hash: str, *, lease: float = DEFAULT_LEASE_SECONDS) -> Outcome:
        now, owner = _now(), uuid.uuid4().hex
        mine = Reservation(actor, key, owner)
        until = time.time() + lease
        with self.db.transaction() as cur:
            inserted = cur.execute(
                f"INSERT INTO {TABLE} (actor, key, request_hash, owner, lease_until, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (actor, key) DO NOTHING RETURNING key",
                (actor, key, request_hash, owner, until, now.isoformat()),
            ).fetchone()
            if inserted is not None:
                return Outcome("reserved", mine)
            row = cur.execute(
                f"SELECT request_hash, owner, lease_until, committed_position, status_code, headers, body, created_at "
                f"FROM {TABLE} WHERE actor = ? AND key = ?",
                (actor, key),
            ).fetchone()
            assert row is not None  # the conflict above means it exists, and keys are only deleted under a lock
            expired = datetime.fromisoformat(row["created_at"]) < now - self.ttl
            if expired:  # a day old: the key may be used afresh
                cur.execute(
                    f"UPDATE {TABLE} SET request_hash = ?, owner = ?, lease_until = ?, committed_position = NULL, "
                    "status_code = NULL, headers = NULL, body = NULL, created_at = ? WHERE actor = ? AND key = ?",
                    (request_hash, owner, until, now.isoformat(), actor, key),
                )
                return Outcome("reserved", mine)
            if row["request_hash"] != request_hash:
                return Outcome("mismatch")
            if row["status_code"] is not None:
                stored = StoredResponse(int(row["status_code"]), json.loads(row["headers"]), row["body"].encode())
                return Outcome("replay", response=stored)
            if row["committed_position"] is not None:
                return Outcome("committed", position=int(row["committed_position"]))
            left = float(row["lease_until"]) - time.time()
            if left > 0:
                return Outcome("in_progress", retry_after=max(1, math.ceil(left)))
            # The request that held the key died (or lost its database) before committing:
            # take the key over. Its owner can no longer mark it committed.
            # Conditional on the old owner, so of two retries racing for it one wins.
            taken = cur.execute(
                f"UPDATE {TABLE} SET owner = ?, lease_until = ? WHERE actor = ? AND key = ? AND owner = ? "
                "AND committed_position IS NULL RETURNING key",
                (owner, until, actor, key, row["owner"]),
            ).fetchone()
            return Outcome("reserved", mine) if taken else Outcome("in_progress", retry_after=1)

    def renew(self, reservation: Reservation, *, lease: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Extends a running request's lease; False if a retry has taken the key over."""
        with self.db.transaction() as cur:
            row = cur.execute(
                f"UPDATE {TABLE} SET lease_until = ? WHERE actor = ? AND key = ? AND owner = ? RETURNING key",
                (time.time() + lease, reservation.actor, reservation.key, reservation.owner),
            ).fetchone()
        return row is not None

    def complete(self, reservation: Reservation, response: StoredResponse) -> None:
        """Stores the answer for retries to replay (only while this request still owns the key)."""
        with self.db.transaction() as cur:
            cur.execute(
                f"UPDATE {TABLE} SET status_code = ?, headers = ?, body = ? WHERE actor = ? AND key = ? AND owner = ?",
                (response.status_code, json.dumps(response.headers), response.body.decode("utf-8"),
                 reservation.actor, reservation.key, reservation.owner),
            )  # fmt: skip

    def release(self, reservation: Reservation) -> None:
        """Forgets a reservation whose request failed on our side, so a retry runs again at once.
        A reservation that committed is kept: its retry must not append again."""
        with self.db.transaction() as cur:
            cur.execute(
                f"DELETE FROM {TABLE} WHERE actor = ? AND key = ? AND owner = ? AND committed_position IS NULL "
                "AND status_code IS NULL",
                (reservation.actor, reservation.key, reservation.owner),
            )
