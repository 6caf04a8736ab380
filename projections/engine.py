"""The projection engine: builds read models from the notification log.

(Long on purpose: batching, savepoints, quarantine, rebuild and catch-up share one lock protocol
on the tracking row, and read correctly only side by side.)

A projection is a few tables plus a tracking row (name, position) in the same
database as the events. The engine reads the log in batches and commits the view
changes and the new position in one transaction, so a crash neither skips nor
double-counts an event. The tracking row is also the lock: a batch first locks
it (`SELECT ... FOR UPDATE` on PostgreSQL, the write lock on SQLite), so two
workers of one projection never apply a batch at once, whatever process they
run in.

A projection that cannot apply an event never stops the others, the commands or
the server: each projection applies its share of a batch inside a savepoint; on a
failure it retries event by event, and an event that still fails is quarantined
for that projection (a row in `projection_quarantine`, shown by `status` and
`GET /v1/projections`) and skipped. Once fixed, an operator re-applies it
(`reapply`). Errors of the database itself (a lost connection, a lock timeout)
are not the event's fault: they abort the batch, which the follower retries.

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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
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
QUARANTINE_TABLE = "projection_quarantine"
#: how often an event is tried, one at a time, before it is quarantined
APPLY_ATTEMPTS = 3
#: the longest error text kept for a quarantined event
MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True)
class LoggedEvent:
    """A domain event with its position (notification id) in the global log. An event
    the mapper could not decode has `event` None and the reason in `error`."""

    position: int
    event: Any
    topic: str = ""
    originator_id: str = ""
    originator_version: int = 0
    error: str | None = None


class EventLog:
    """Reads the application's notification log in order, decoding events.

    Batches are read on our own connections, never through the library's recorder:
    on SQLite, calling the recorder while holding a write lock would deadlock against
    a command that holds the library's writer lock and waits for ours. Where the
    events live in the projections' database (PostgreSQL), they are read inside the
    projection's transaction; where they live apart (`events`: SQLite's events file),
    in a read transaction of their own, which takes no lock a writer waits for. The
    SQL follows the library's own table layout."""

    def __init__(self, app: Application, dialect: str, events: Database | None = None) -> None:
        self.recorder = app.recorder
        self.mapper = app.mapper
        self.events = events
        table = app.recorder.events_table_name
        if dialect == "sqlite":
            id_column = "rowid"
        else:
            id_column, table = "notification_id", f"{app.recorder.datastore.schema}.{table}"
        self._id_column = id_column
        self._select = (
            f"SELECT {id_column} AS position, originator_id, originator_version, topic, state FROM {table} "
            f"WHERE {id_column} > ? AND {id_column} <= ?"
        )
        self._order = f" ORDER BY {id_column} LIMIT ?"
        self._head = f"SELECT MAX({id_column}) AS head FROM {table}"

    @contextmanager
    def reading(self, cur: Cursor) -> Iterator[Cursor]:
        """A cursor that sees the events, for a projection transaction whose cursor is `cur`."""
        if self.events is None:
            yield cur
        else:
            with self.events.read() as events_cur:
                yield events_cur

    def head(self, cur: Cursor | None = None) -> int:
        """The newest position; through `cur` when inside a transaction."""
        if cur is None:
            return self.recorder.max_notification_id() or 0
        row = cur.execute(self._head).fetchone()
        return int(row["head"] or 0) if row else 0

    def read(self, cur: Cursor, *, after: int, limit: int, stop: int, topics: Sequence[str] = ()) -> list[LoggedEvent]:
        return self.read_batch(cur, after=after, limit=limit, stop=stop, topics=topics)[0]

    def read_batch(
        self, cur: Cursor, *, after: int, limit: int, stop: int, topics: Sequence[str] = (),
        max_bytes: int | None = None,
    ) -> tuple[list[LoggedEvent], bool]:
        """Events after `after` up to `stop`, at most `limit` of them and (once one is read) about
        `max_bytes` of stored state; and whether it stopped short of `stop` for either limit."""
        sql = self._select
        params: list[Any] = [after, stop]
        if topics:
            sql += f" AND topic IN ({', '.join('?' for _ in topics)})"
            params += topics
        cur.execute(sql + self._order, [*params, limit])
        if max_bytes is None:
            rows = cur.fetchall()
            return [self._decode(r) for r in rows], len(rows) == limit
        rows, size = [], 0
        while size < max_bytes and (chunk := cur.fetchmany(16)):
            for r in chunk:  # rows past the budget stay unread (the next batch starts at them)
                rows.append(r)
                size += len(r["state"])
                if size >= max_bytes:
                    break
        return [self._decode(r) for r in rows], len(rows) == limit or size >= max_bytes

    def read_positions(self, cur: Cursor, positions: Sequence[int]) -> list[LoggedEvent]:
        """The events at these positions (for re-applying quarantined ones), in log order."""
        if not positions:
            return []
        sql = self._select.split(" WHERE ")[0] + f" WHERE {self._id_column} IN ({', '.join('?' for _ in positions)})"
        rows = cur.execute(sql + f" ORDER BY {self._id_column}", list(positions)).fetchall()
        return [self._decode(r) for r in rows]

    def _decode(self, r: Any) -> LoggedEvent:
        position, topic = int(r["position"]), r["topic"]
        stored = StoredEvent(r["originator_id"], r["originator_version"], topic, bytes(r["state"]))
        try:
            event = self.mapper.to_domain_event(stored)
        except Exception as exc:  # an event no code can read: quarantined by the projections that follow it
            return LoggedEvent(position, None, topic, str(r["originator_id"]), int(r["originator_version"]),
                               error=f"cannot decode: {type(exc).__name__}: {exc}")  # fmt: skip
        return LoggedEvent(position, event, topic, str(r["originator_id"]), int(r["originator_version"]))


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
    #: events this projection could not apply and skipped (see `quarantined`)
    quarantined: int = 0

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


@dataclass(frozen=True)
class QuarantinedEvent:
    """An event one projection could not apply: skipped, kept here until re-applied."""

    projection: str
    position: int
    topic: str
    originator_id: str
    originator_version: int
    error: str
    attempts: int
    quarantined_at: str


@dataclass(frozen=True)
class ReapplyReport:
    name: str
    applied: list[int]
    still_failing: list[QuarantinedEvent]


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
        batch_bytes: int = 8_000_000,
    ) -> None:
        self.db = db
        self.log = event_log
        self.projections = {p.name: p for p in projections}
        self.batch_size = batch_size
        self.rebuild_batch_size = rebuild_batch_size
        # A batch also ends after about this much stored state (a few batches of 10,000 records): on SQLite
        # it holds the write lock while it applies, and commands wait for that lock.
        self.batch_bytes = batch_bytes
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
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} ("
            "projection TEXT NOT NULL, position BIGINT NOT NULL, topic TEXT NOT NULL, originator_id TEXT NOT NULL, "
            "originator_version BIGINT NOT NULL, error TEXT NOT NULL, attempts INTEGER NOT NULL, "
            "quarantined_at TEXT NOT NULL, PRIMARY KEY (projection, position))"
        )
        return stale

    def drop_schema(self, cur: Cursor) -> None:
        """Drops the tracking, quarantine and every projection's tables through `cur` (used to
        clear read models from a database that no longer holds them; they rebuild from the log)."""
        for table in [TRACKING_TABLE, QUARANTINE_TABLE, *(t for p in self.projections.values() for t in p.tables)]:
            cur.execute(f"DROP TABLE IF EXISTS {table}")

    def missing_projections(self) -> list[str]:
        """Projections with no tracking row: the schema needs `ft-cli db init`."""
        try:
            with self.db.read() as cur:
                rows = cur.execute(f"SELECT name FROM {TRACKING_TABLE}").fetchall()
        except Exception:  # the tracking table itself is missing (sqlite3 and psycopg differ in class)
            return sorted(self.projections)
        present = {r["name"] for r in rows}
        try:
            with self.db.read() as cur:
                cur.execute(f"SELECT COUNT(*) AS n FROM {QUARANTINE_TABLE}").fetchone()
        except Exception:  # a store initialised before the quarantine existed
            return sorted(self.projections)
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
            counts = cur.execute(
                f"SELECT projection, COUNT(*) AS n FROM {QUARANTINE_TABLE} GROUP BY projection"
            ).fetchall()
        by_name = {r["name"]: r for r in rows}
        quarantined = {r["projection"]: int(r["n"]) for r in counts}
        return [
            ProjectionStatus(name, int(by_name[name]["position"]), head, by_name[name]["updated_at"],
                             quarantined.get(name, 0))  # fmt: skip
            for name in sorted(self.projections)
            if name in by_name
        ]

    def quarantined(self, name: str | None = None, *, limit: int = 1000) -> list[QuarantinedEvent]:
        """Events skipped because a projection could not apply them, oldest first."""
        sql = f"SELECT * FROM {QUARANTINE_TABLE}"
        params: list[Any] = []
        if name is not None:
            sql += " WHERE projection = ?"
            params.append(self.get(name).name)
        with self.db.read() as cur:
            rows = cur.execute(sql + " ORDER BY position, projection LIMIT ?", [*params, limit]).fetchall()
        return [_quarantined(r) for r in rows]

    # -------------------------------------------------------------- isolation

    @contextmanager
    def _savepoint(self, cur: Cursor) -> Iterator[None]:
        """Undoes one projection's changes on error, keeping the rest of the batch. If even the
        rollback fails, the connection is broken: that error ends the whole batch."""
        cur.execute("SAVEPOINT projection_apply")
        try:
            yield
        except BaseException:
            cur.execute("ROLLBACK TO SAVEPOINT projection_apply")
            cur.execute("RELEASE SAVEPOINT projection_apply")
            raise
        cur.execute("RELEASE SAVEPOINT projection_apply")

    def _apply_isolated(
        self, cur: Cursor, p: Projection, tables: dict[str, str], events: Sequence[LoggedEvent]
    ) -> list[QuarantinedEvent]:
        """Applies `events` to one projection; returns the events it could not apply, which
        are skipped. A database failure (not the event's fault) is raised instead."""
        readable = [e for e in events if e.error is None]
        if len(readable) == len(events):
            try:
                with self._savepoint(cur):
                    p.apply(cur, tables, readable)
                return []
            except Exception as exc:
                if self.db.is_transient(exc):
                    raise
        # Find the poison: one event at a time, each retried before it is given up.
        failed = []
        for e in events:
            error, attempts = e.error, 1 if e.error else 0
            while e.error is None and attempts < APPLY_ATTEMPTS:
                attempts += 1
                try:
                    with self._savepoint(cur):
                        p.apply(cur, tables, [e])
                    error = None
                    break
                except Exception as exc:
                    if self.db.is_transient(exc):
                        raise
                    error = f"{type(exc).__name__}: {exc}"
            if error is not None:
                log.error("projection %s quarantined the event at position %d (%s): %s",
                          p.name, e.position, e.topic, error)  # fmt: skip
                failed.append(QuarantinedEvent(p.name, e.position, e.topic, e.originator_id, e.originator_version,
                                               error[:MAX_ERROR_LENGTH], attempts, _now()))  # fmt: skip
        return failed

    @staticmethod
    def _keep_quarantined(cur: Cursor, events: Sequence[QuarantinedEvent]) -> None:
        for q in events:
            cur.execute(
                f"INSERT INTO {QUARANTINE_TABLE} (projection, position, topic, originator_id, originator_version, "
                "error, attempts, quarantined_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (projection, position) "
                "DO UPDATE SET error = excluded.error, attempts = "
                f"{QUARANTINE_TABLE}.attempts + excluded.attempts, quarantined_at = excluded.quarantined_at",
                (q.projection, q.position, q.topic, q.originator_id, q.originator_version, q.error, q.attempts,
                 q.quarantined_at),
            )  # fmt: skip

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
        with self.db.transaction(durable=False) as cur, self.log.reading(cur) as log:
            positions: dict[str, int] = {}
            for name in sorted(names):  # one lock order everywhere, so workers never deadlock
                try:
                    positions[name] = self._lock_position(cur, name, wait=wait)
                except ProjectionBusy:
                    continue
            if not positions:
                raise ProjectionBusy(", ".join(names))
            head = self.log.head(log)
            start = min(positions.values())
            if start >= head:
                return positions, True
            selected = [self.projections[n] for n in positions]
            topics = sorted({t for p in selected for t in p.topics})
            events, full = self.log.read_batch(log, after=start, limit=self.batch_size, stop=head, topics=topics,
                                               max_bytes=self.batch_bytes)  # fmt: skip
            end = events[-1].position if full else head
            for p in selected:
                mine = [e for e in events if e.position > positions[p.name] and _follows(p, e)]
                if mine:
                    self._keep_quarantined(cur, self._apply_isolated(cur, p, {t: t for t in p.tables}, mine))
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
        skipped: list[QuarantinedEvent] = []
        while True:
            head = self.log.head()
            if position >= head:
                break
            with self.db.transaction(durable=False) as cur, self.log.reading(cur) as log:
                position, n = self._replay(cur, log, p, shadow, position, head, skipped)
            applied += n

        # Switch: under the projection's lock, apply what arrived meanwhile and swap.
        with self._local_locks[name], self.db.transaction(durable=False) as cur, self.log.reading(cur) as log:
            self._lock_position(cur, name, wait=True)
            head = self.log.head(log)
            while position < head:
                position, n = self._replay(cur, log, p, shadow, position, head, skipped)
                applied += n
            # The rebuilt tables come with their own quarantine: what failed this time.
            cur.execute(f"DELETE FROM {QUARANTINE_TABLE} WHERE projection = ?", (name,))
            self._keep_quarantined(cur, skipped)
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

    def _replay(
        self, cur: Cursor, log: Cursor, p: Projection, tables: dict[str, str], position: int, head: int,
        skipped: list[QuarantinedEvent],
    ) -> tuple[int, int]:  # fmt: skip
        events = self.log.read(log, after=position, limit=self.rebuild_batch_size, stop=head, topics=p.topics)
        mine = [e for e in events if _follows(p, e)]
        if mine:
            skipped += self._apply_isolated(cur, p, tables, mine)
        full = len(events) == self.rebuild_batch_size
        return (events[-1].position if full else head), len(events)

    # ----------------------------------------------------------------- reapply

    def reapply(self, name: str, positions: Iterable[int] | None = None) -> ReapplyReport:
        """Applies quarantined events of one projection again (after a fix): those that now
        apply leave the quarantine; the others stay, with their new error. They are applied
        now, after the events that followed them; where order matters, rebuild instead."""
        p = self.get(name)
        wanted = None if positions is None else sorted(set(positions))
        with self._local_locks[p.name], self.db.transaction(durable=False) as cur, self.log.reading(cur) as log:
            self._lock_position(cur, p.name, wait=True)
            rows = cur.execute(
                f"SELECT * FROM {QUARANTINE_TABLE} WHERE projection = ? ORDER BY position", (p.name,)
            ).fetchall()
            held = {int(r["position"]): r for r in rows if wanted is None or int(r["position"]) in wanted}
            if wanted is not None and set(wanted) - set(held):
                missing = ", ".join(str(n) for n in sorted(set(wanted) - set(held)))
                raise NotFound(f"Projection {p.name!r} has no quarantined event at position {missing}: "
                               f"`ft-cli projections quarantine {p.name}` lists them.")  # fmt: skip
            events = self.log.read_positions(log, sorted(held))
            failed = self._apply_isolated(cur, p, {t: t for t in p.tables}, events) if events else []
            still = {q.position for q in failed}
            applied = [e.position for e in events if e.position not in still]
            cur.executemany(f"DELETE FROM {QUARANTINE_TABLE} WHERE projection = ? AND position = ?",
                            [(p.name, n) for n in applied])  # fmt: skip
            self._keep_quarantined(cur, failed)
        kept = self.quarantined(p.name, limit=100_000)
        return ReapplyReport(p.name, applied, [q for q in kept if q.position in still])


def _follows(p: Projection, e: LoggedEvent) -> bool:
    """Whether the projection reads this event (an undecodable one: by its topic)."""
    return isinstance(e.event, p.event_classes) if e.error is None else e.topic in p.topics


def _quarantined(r: Any) -> QuarantinedEvent:
    return QuarantinedEvent(r["projection"], int(r["position"]), r["topic"], r["originator_id"],
                            int(r["originator_version"]), r["error"], int(r["attempts"]), r["quarantined_at"])
