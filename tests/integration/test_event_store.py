"""The event store on both backends: exact round-trips, a schema created once, nothing lost on restart."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent

from api.runtime import Runtime, SchemaMissing
from domain.registry import RegisteredModel, model_id
from tests.support.positions import pos


class Probe(Aggregate):
    """A test aggregate whose event carries every value type the domain stores."""

    class Noted(Aggregate.Event):
        amount: Decimal
        at: datetime
        ref: UUID

        def apply(self, agg: Probe) -> None:
            agg.noted = (self.amount, self.at, self.ref)

    def note(self, amount: Decimal, at: datetime, ref: UUID) -> None:
        self.trigger_event(self.Noted, amount=amount, at=at, ref=ref)


def test_decimal_timezone_aware_datetime_and_uuid_round_trip_exactly(runtime: Runtime) -> None:
    amount = Decimal("12345678901234567890.123456789000")
    at = datetime(2026, 11, 26, 14, 2, 0, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    ref = uuid4()
    probe = Probe()
    probe.note(amount, at, ref)
    runtime.registry.save(probe)

    amount2, at2, ref2 = runtime.registry.repository.get(probe.id).noted
    assert (amount2, str(amount2)) == (amount, "12345678901234567890.123456789000")
    assert at2 == at and at2.utcoffset() == timedelta(hours=5, minutes=30) and at2.microsecond == 123456
    assert ref2 == ref and isinstance(ref2, UUID)


def test_registry_events_keep_cost_as_decimal_and_timestamps_in_utc(runtime: Runtime) -> None:
    runtime.registry.register_version("bot", base_model="b", job_id="j", dataset_size=3, cost="0.10", actor="t")
    registered = list(runtime.registry.events.get(model_id("bot")))[1]
    assert registered.cost == Decimal("0.10") and str(registered.cost) == "0.10"
    assert registered.timestamp.utcoffset() == timedelta(0)


def test_restarting_the_process_loses_nothing(database_url: str) -> None:
    Runtime.init_schema(database_url)
    first = Runtime.open(database_url)
    for _ in range(3):
        first.registry.register_version("bot", base_model="b", job_id="j", dataset_size=1, actor="t")
    first.registry.deploy("bot", 2, actor="t", reason="go")
    first.close()

    second = Runtime.open(database_url)
    try:
        model = second.registry.load("bot")
        assert model.statuses == ["READY", "DEPLOYED", "READY"]
        second.engine.catch_up()
        assert second.engine.log.head() == pos(5)
        assert all(s.position == pos(5) for s in second.engine.status())
    finally:
        second.close()


def test_a_postgresql_worker_starts_with_table_creation_off_and_says_to_run_db_init(postgres_url: str) -> None:
    with pytest.raises(SchemaMissing, match="run `ft-cli db init` once"):
        Runtime.open(postgres_url)
    Runtime.init_schema(postgres_url)
    Runtime.init_schema(postgres_url)  # a second init changes nothing and does not fail
    rt = Runtime.open(postgres_url)
    try:
        assert rt.registry.env.get("CREATE_TABLE") == "n"
    finally:
        rt.close()


def test_the_sqlite_file_and_its_folder_are_created_on_first_use(tmp_path) -> None:
    path = tmp_path / "nested" / "dir" / "events.sqlite3"
    rt = Runtime.open(f"sqlite:///{path}")
    try:
        rt.registry.register_version("bot", base_model="b", job_id="j", dataset_size=1, actor="t")
    finally:
        rt.close()
    assert path.exists()


def test_a_long_lived_model_loads_from_a_snapshot_and_still_obeys_every_rule(runtime: Runtime) -> None:
    registry = runtime.registry
    for n in range(3):
        registry.register_version("busy", base_model="b", job_id=f"j{n}", dataset_size=n, actor="t")
    for i in range(131):  # well past the snapshot interval
        registry.deploy("busy", 1 + i % 3, actor="t")
    snapshots = list(registry.snapshots.get(model_id("busy")))
    interval = registry.snapshotting_intervals[RegisteredModel]
    assert snapshots and snapshots[-1].originator_version % interval == 0
    model = registry.load("busy")
    replayed = registry.repository.get(model_id("busy"), version=model.version)  # the same state from events alone
    assert model.statuses == replayed.statuses == ["ARCHIVED", "DEPLOYED", "ARCHIVED"]
    assert registry.rollback("busy", 1, actor="t").previous == 2


def test_many_processes_initialising_one_postgresql_database_at_once_do_not_race(postgres_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [f.result() for f in [pool.submit(Runtime.init_schema, postgres_url) for _ in range(4)]]
    assert all(config.dialect == "postgresql" for config, _ in results)
    rt = Runtime.open(postgres_url)
    try:
        assert rt.engine.missing_projections() == []
    finally:
        rt.close()


def test_a_batch_event_of_several_megabytes_is_stored_on_postgresql(postgres_url: str) -> None:
    """The library's pipelined insert deadlocks now and then on such a batch; our recorder does not pipeline."""
    Runtime.init_schema(postgres_url)
    rt = Runtime.open(postgres_url)
    try:
        for _ in range(3):  # the deadlock was intermittent: try more than once
            stored = StoredEvent(uuid4(), 1, "tests:Big", b"x" * 12_000_000)
            rt.registry.recorder.insert_events([stored])
        assert rt.registry.recorder.max_notification_id() == pos(3)
        assert type(rt.registry.recorder).__name__ == "UnpipelinedApplicationRecorder"
    finally:
        rt.close()


def test_an_opened_postgresql_store_keeps_few_connections_at_rest(postgres_url: str) -> None:
    """A server and its projection worker fit PostgreSQL's default max_connections (100) with room to spare."""
    import psycopg

    Runtime.init_schema(postgres_url)
    rt = Runtime.open(postgres_url)
    try:
        rt.engine.catch_up()
        with psycopg.connect(postgres_url) as probe:
            held = probe.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND pid <> pg_backend_pid()").fetchone()[0]  # fmt: skip
    finally:
        rt.close()
    assert held <= 20, f"one opened store holds {held} connections"
