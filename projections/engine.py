"""The projection engine: builds read models from the notification log.

A projection is a few tables plus a tracking row (name, position) in the same
database as the events. The engine reads the log in batches and commits the view
changes and the new position in one transaction, so a crash neither skips nor
double-counts an event. The tracking row is also the lock: a batch first locks
it (`SELECT ... FOR UPDATE` on PostgreSQL, the write lock on SQLite), so two
workers of one projection never apply a batch at once, whatever process they
run in.

Rebuild is blue/green: the projection is replayed from position zero into fresh
tables beside the live ones while queries keep reading the old tables; then, in
one transaction holding the lock, the last events are applied, the old tables
are dropped and the new ones renamed into place.

We do not use eventsourcing's ProjectionRunner: it cannot follow a SQLite
application and commits one transaction per event (see README, design notes).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain.errors import NotFound
from projections.database import Cursor, Database

log = logging.getLogger(__name__)

TRACKING_TABLE = "projection_tracking"


@dataclass(frozen=True)
class LoggedEvent:
    """A domain event with its position (notification id) in the global log."""

    position: int
    event: Any


class EventLog:
    """Reads the application's notification log in order, decoding events.

    Batches are read on the projection's own connection, inside its transaction:
    on SQLite, calling the library's recorder while holding the database's write
    lock would deadlock against a command that holds the library's writer lock
    and waits for ours. The SQL follows the library's own table layout."""

    def __init__(self, app: Application, dialect: str) -> None:
        self.recorder = app.recorder
        self.mapper = app.mapper
        table = app.recorder.events_table_name
        if dialect == "sqlite":
            id_column = "rowid"
        else:
            id_column, table = "notification_id", f"{app.recorder.datastore.schema}.{table}"
        self._select = (
            f"SELECT {id_column} AS position, originator_id, originator_version, topic, state FROM {table} "
            f"WHERE {id_column} > ? AND {id_column} <= ?"
        )
        self._order = f" ORDER BY {id_column} LIMIT ?"
        self._head = f"SELECT MAX({id_column}) AS head FROM {table}"

    def head(self, cur: Cursor | None = None) -> int:
        """The newest position; through `cur` when inside a transaction."""
        if cur is None:
            return self.recorder.max_notification_id() or 0
        row = cur.execute(self._head).fetchone()
        return int(row["head"] or 0) if row else 0

    def read(self, cur: Cursor, *, after: int, limit: int, stop: int, topics: Sequence[str] = ()) -> list[LoggedEvent]:
        sql = self._select
        params: list[Any] = [after, stop]
        if topics:
            sql += f" AND topic IN ({', '.join('?' for _ in topics)})"
            params += topics
        rows = cur.execute(sql + self._order, [*params, limit]).fetchall()
        to_domain_event = self.mapper.to_domain_event
        return [
            LoggedEvent(
                int(r["position"]),
                to_domain_event(
                    StoredEvent(r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]))
                ),
            )
            for r in rows
        ]


class Projection(ABC):
    """A read model: its tables and how a batch of events changes them.

    `tables` maps a logical table name to its column definitions; `apply` writes
    to the physical names it is given, which differ during a rebuild."""

    name: ClassVar[str]
    #: bump when the tables or the meaning of a column change: `db init` then rebuilds
    schema_version: ClassVar[int] = 1
    tables: ClassVar[dict[str, str]]
    #: (table, columns) pairs; created after the tables are in place
    indexes: ClassVar[list[tuple[str, str]]] = []
    #: event classes the projection reads; other events are skipped cheaply
    event_classes: ClassVar[tuple[type, ...]]

    @property
    def topics(self) -> list[str]:
        return [get_topic(cls) for cls in self.event_classes]

    @abstractmethod
    def apply(self, cur: Cursor, tables: dict[str, str], events: Sequence[LoggedEvent]) -> None:
        """Applies a batch of events in log order, within the engine's transaction."""


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    updated_at: str | None

    @property
    def lag(self) -> int:
        return max(self.head - self.position, 0)


@dataclass(frozen=True)
class RebuildReport:
    name: str
    events: int
    position: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / max(self.seconds, 1e-9)


class ProjectionBusy(Exception):
    """Another worker holds the projection's lock right now."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ProjectionEngine:
    def __init__(
        self,
        db: Database,
        event_log: EventLog,
        projections: Iterable[Projection],
        *,
        batch_size: int = 2000,
        rebuild_batch_size: int = 5000,
    ) -> None:
        self.db = db
        self.log = event_log
        self.projections = {p.name: p for p in projections}
        self.batch_size = batch_size
        self.rebuild_batch_size = rebuild_batch_size
        # In-process coordination: one thread applies per projection, others wait on the condition.
        self._local_locks = {name: threading.Lock() for name in self.projections}
        self._advanced = threading.Condition()
        self._known_positions: dict[str, int] = {}
        self._wake = threading.Event()

    # ------------------------------------------------------------------ schema

    def create_schema(self, cur: Cursor) -> list[str]:
        """Creates the tracking table and every projection's tables; returns the
        projections whose stored schema version differs and so need a rebuild."""
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {TRACKING_TABLE} ("
            "name TEXT PRIMARY KEY, position BIGINT NOT NULL, generation INTEGER NOT NULL, "
            "schema_version INTEGER NOT NULL, updated_at TEXT)"
        )
        stale = []
        for p in self.projections.values():
            row = cur.execute(f"SELECT schema_version FROM {TRACKING_TABLE} WHERE name = ?", (p.name,)).fetchone()
            if row is None:
                self._create_tables(cur, p, {t: t for t in p.tables})
                self._create_indexes(cur, p)
                cur.execute(
                    f"INSERT INTO {TRACKING_TABLE} (name, position, generation, schema_version, updated_at) "
                    "VALUES (?, 0, 0, ?, ?)",
                    (p.name, p.schema_version, _now()),
                )
            elif row["schema_version"] != p.schema_version:
                stale.append(p.name)
        return stale

    def missing_projections(self) -> list[str]:
        """Projections with no tracking row: the schema needs `ft-cli db init`."""
        try:
            with self.db.read() as cur:
                rows = cur.execute(f"SELECT name FROM {TRACKING_TABLE}").fetchall()
        except Exception:  # the tracking table itself is missing (sqlite3 and psycopg differ in class)
            return sorted(self.projections)
        present = {r["name"] for r in rows}
        return sorted(set(self.projections) - present)

    @staticmethod
    def _create_tables(cur: Cursor, p: Projection, names: dict[str, str]) -> None:
        for logical, columns in p.tables.items():
            cur.execute(f"CREATE TABLE {names[logical]} ({columns})")

    @staticmethod
    def _create_indexes(cur: Cursor, p: Projection) -> None:
        for table, columns in p.indexes:
            suffix = "_".join(c.strip().split()[0] for c in columns.split(","))
            cur.execute(f"CREATE INDEX IF NOT EXISTS ix_{table}_{suffix} ON {table} ({columns})")

    # ------------------------------------------------------------------ status

    def get(self, name: str) -> Projection:
        try:
            return self.projections[name]
        except KeyError:
            known = ", ".join(sorted(self.projections))
            raise NotFound(f"Unknown projection {name!r}: the projections are {known}.") from None

    def positions(self) -> dict[str, int]:
        with self.db.read() as cur:
            rows = cur.execute(f"SELECT name, position FROM {TRACKING_TABLE}").fetchall()
        return {r["name"]: int(r["position"]) for r in rows if r["name"] in self.projections}

    def status(self) -> list[ProjectionStatus]:
        head = self.log.head()
        with self.db.read() as cur:
            rows = cur.execute(f"SELECT name, position, updated_at FROM {TRACKING_TABLE}").fetchall()
        by_name = {r["name"]: r for r in rows}
        return [
            ProjectionStatus(name, int(by_name[name]["position"]), head, by_name[name]["updated_at"])
            for name in sorted(self.projections)
            if name in by_name
        ]

    # ----------------------------------------------------------- incremental

    def _lock_position(self, cur: Cursor, name: str, *, wait: bool) -> int:
        if self.db.dialect == "postgresql":
            sql = f"SELECT position FROM {TRACKING_TABLE} WHERE name = ? FOR UPDATE"
            sql += "" if wait else " SKIP LOCKED"
        else:  # the SQLite transaction already holds the database's write lock
            sql = f"SELECT position FROM {TRACKING_TABLE} WHERE name = ?"
        row = cur.execute(sql, (name,)).fetchone()
        if row is None:
            if self.db.dialect == "postgresql" and not wait:
                raise ProjectionBusy(name)
            raise NotFound(f"Projection {name!r} has no tracking row: run `ft-cli db init`.")
        return int(row["position"])

    def _apply_batch(self, names: list[str], *, wait: bool) -> tuple[dict[str, int], bool]:
        """Applies one batch of the log to several projections in one transaction: the
        events are read and decoded once. Returns the new positions and whether the
        batch reached the head. Busy projections (wait=False) are left out."""
        with self.db.transaction(durable=False) as cur:
            positions: dict[str, int] = {}
            for name in sorted(names):  # one lock order everywhere, so workers never deadlock
                try:
                    positions[name] = self._lock_position(cur, name, wait=wait)
                except ProjectionBusy:
                    continue
            if not positions:
                raise ProjectionBusy(", ".join(names))
            head = self.log.head(cur)
            start = min(positions.values())
            if start >= head:
                return positions, True
            selected = [self.projections[n] for n in positions]
            topics = sorted({t for p in selected for t in p.topics})
            events = self.log.read(cur, after=start, limit=self.batch_size, stop=head, topics=topics)
            full = len(events) == self.batch_size
            end = events[-1].position if full else head
            for p in selected:
                mine = [e for e in events if e.position > positions[p.name] and isinstance(e.event, p.event_classes)]
                if mine:
                    p.apply(cur, {t: t for t in p.tables}, mine)
                positions[p.name] = max(positions[p.name], end)
            cur.executemany(
                f"UPDATE {TRACKING_TABLE} SET position = ?, updated_at = ? WHERE name = ?",
                [(pos, _now(), name) for name, pos in positions.items()],
            )
        return positions, not full

    def _drain(self, names: list[str], *, wait: bool) -> None:
        """Applies batches until the head (the caller holds the names' local locks)."""
        done = False
        while not done:
            try:
                positions, done = self._apply_batch(names, wait=wait)
            except ProjectionBusy:
                return
            for name, position in positions.items():
                self._note(name, position)

    def _with_local_locks(self, names: Iterable[str], *, blocking: bool) -> list[str]:
        """Takes this process's lock of each projection that is free; returns their names."""
        taken = []
        for name in sorted(names):
            if self._local_locks[name].acquire(blocking=blocking):
                taken.append(name)
        return taken

    def _release(self, names: list[str]) -> None:
        for name in names:
            self._local_locks[name].release()

    def catch_up(self, names: Iterable[str] | None = None, *, wait: bool = True) -> dict[str, int]:
        """Brings projections up to the head of the log as it is now, and returns
        their positions. With wait=False a projection busy elsewhere is skipped."""
        taken = self._with_local_locks(names if names is not None else self.projections, blocking=wait)
        try:
            if taken:
                self._drain(taken, wait=wait)
        finally:
            self._release(taken)
        return dict(self._known_positions)

    def reach(self, position: int, *, timeout: float = 5.0) -> bool:
        """After a command: makes every projection include `position`. A thread that
        finds a projection already being applied (here or elsewhere) waits for it."""
        behind = [n for n in self.projections if self._known_positions.get(n, -1) < position]
        taken = self._with_local_locks(behind, blocking=False)
        try:
            if taken:
                self._drain(taken, wait=True)
        finally:
            self._release(taken)
        return self.wait_for(position, timeout=timeout)

    def _note(self, name: str, position: int) -> None:
        with self._advanced:
            if position > self._known_positions.get(name, -1):
                self._known_positions[name] = position
            self._advanced.notify_all()

    def wait_for(self, position: int, *, names: Iterable[str] | None = None, timeout: float = 5.0) -> bool:
        """Read-your-writes: waits (bounded) until the projections reach `position`.

        Other processes may be the ones applying, so the tracking table is the
        truth; a local notification just wakes the wait early."""
        wanted = list(names) if names is not None else list(self.projections)
        deadline = time.monotonic() + timeout
        while True:
            if all(self._known_positions.get(n, -1) >= position for n in wanted):
                return True
            positions = self.positions()
            for n, pos in positions.items():
                self._note(n, pos)
            if all(positions.get(n, -1) >= position for n in wanted):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._advanced:
                self._advanced.wait(min(remaining, 0.05))

    def follow(self, stop: threading.Event, *, interval: float = 0.2) -> None:
        """Keeps every projection current until `stop` is set (the worker loop)."""
        while not stop.is_set():
            try:
                self.catch_up(wait=False)
            except Exception:  # keep following; the next round retries from the stored position
                log.exception("projection catch-up failed; retrying")
            self._wake.wait(interval)
            self._wake.clear()

    def poke(self) -> None:
        """Wakes the follower now (after a write whose caller does not wait for the projections)."""
        self._wake.set()

    # ----------------------------------------------------------------- rebuild

    def rebuild(self, name: str) -> RebuildReport:
        """Replays one projection from position zero into fresh tables, then swaps them in."""
        p = self.get(name)
        started = time.perf_counter()
        with self.db.transaction(durable=False) as cur:
            # Taking a generation number first gives two concurrent rebuilds tables of their own.
            self._lock_position(cur, name, wait=True)
            cur.execute(f"UPDATE {TRACKING_TABLE} SET generation = generation + 1 WHERE name = ?", (name,))
            row = cur.execute(f"SELECT generation FROM {TRACKING_TABLE} WHERE name = ?", (name,)).fetchone()
            shadow = {t: f"{t}__g{row['generation']}" for t in p.tables}
            for table in shadow.values():
                cur.execute(f"DROP TABLE IF EXISTS {table}")
            self._create_tables(cur, p, shadow)

        # Bulk phase: the live tables keep serving queries and following the log.
        position, applied = 0, 0
        while True:
            head = self.log.head()
            if position >= head:
                break
            with self.db.transaction(durable=False) as cur:
                position, n = self._replay(cur, p, shadow, position, head)
            applied += n

        # Switch: under the projection's lock, apply what arrived meanwhile and swap.
        with self._local_locks[name], self.db.transaction(durable=False) as cur:
            self._lock_position(cur, name, wait=True)
            head = self.log.head(cur)
            while position < head:
                position, n = self._replay(cur, p, shadow, position, head)
                applied += n
            for logical, physical in shadow.items():
                cur.execute(f"DROP TABLE IF EXISTS {logical}")
                cur.execute(f"ALTER TABLE {physical} RENAME TO {logical}")
            self._create_indexes(cur, p)
            cur.execute(
                f"UPDATE {TRACKING_TABLE} SET position = ?, schema_version = ?, updated_at = ? WHERE name = ?",
                (position, p.schema_version, _now(), name),
            )
        self._note(name, position)
        return RebuildReport(name, applied, position, time.perf_counter() - started)

    def _replay(self, cur: Cursor, p: Projection, tables: dict[str, str], position: int, head: int) -> tuple[int, int]:
        events = self.log.read(cur, after=position, limit=self.rebuild_batch_size, stop=head, topics=p.topics)
        if events:
            p.apply(cur, tables, events)
        full = len(events) == self.rebuild_batch_size
        return (events[-1].position if full else head), len(events)
