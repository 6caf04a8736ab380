"""The projection engine on both stores: batches, crash safety, rebuild, locking, read-your-writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from api.runtime import Runtime
from domain.errors import NotFound
from projections.audit import AuditTrailProjection
from projections.engine import ProjectionEngine
from tests.support.history import save_history
from tests.support.positions import SEEDED, pos
from tests.support.views import dump_views


@pytest.fixture
def history(runtime: Runtime) -> int:
    """A history of 30 models x 40 events, not yet projected."""
    return save_history(runtime.registry, models=30, events_per_model=40)


def second_runtime(url: str) -> Iterator[Runtime]:
    rt = Runtime.open(url)
    try:
        yield rt
    finally:
        rt.close()


def test_catching_up_in_small_batches_projects_every_event_once(runtime: Runtime, history: int) -> None:
    runtime.engine.batch_size = 7  # many batches, one ending mid-stream
    positions = runtime.engine.catch_up()
    head = runtime.engine.log.head()
    assert history == 1200 and positions == {
        "ab_stats": head,
        "audit": head,
        "costs": head,
        "datasets": head,
        "deployments": head,
        "evaluations": head,
        "examples": head,
        "gateway_calls": head,
        "jobs": head,
        "registry": head,
    }
    with runtime.db.read() as cur:
        assert cur.execute("SELECT COUNT(*) AS n FROM audit_log").fetchone()["n"] == history
        assert cur.execute("SELECT COUNT(*) AS n FROM dep_models").fetchone()["n"] == 30
        deployed = cur.execute(
            "SELECT model, COUNT(*) AS n FROM dep_versions WHERE status = 'DEPLOYED' GROUP BY model"
        ).fetchall()
    assert all(r["n"] == 1 for r in deployed)


def test_a_rebuild_from_zero_gives_identical_views(runtime: Runtime, history: int) -> None:
    runtime.engine.batch_size = 13
    runtime.engine.catch_up()
    incremental = dump_views(runtime)
    for name in ("deployments", "registry", "audit"):
        report = runtime.engine.rebuild(name)
        assert report.position == runtime.engine.log.head()
    assert dump_views(runtime) == incremental


def test_a_rebuild_while_commands_keep_arriving_misses_nothing(runtime: Runtime, history: int) -> None:
    runtime.engine.rebuild_batch_size = 50  # a long bulk phase, so writes land during it
    done = threading.Event()

    def write() -> None:
        n = 0
        while not done.is_set() or n < 20:
            runtime.registry.register_version(
                f"live-{n % 3}", base_model="b", job_id=f"j{n}", dataset_size=n, actor="w"
            )
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        runtime.engine.rebuild("audit")
    finally:
        done.set()
        writer.join()
    runtime.engine.catch_up()
    after_concurrent_rebuild = dump_views(runtime)
    runtime.engine.rebuild("audit")
    assert dump_views(runtime) == after_concurrent_rebuild
    with runtime.db.read() as cur:
        assert cur.execute("SELECT COUNT(*) AS n FROM audit_log").fetchone()["n"] == runtime.engine.log.head() - SEEDED


class WorkerKilled(BaseException):
    """Not an error of the projection (that would be retried, then quarantined) but the worker's end."""


class FailsOnce(AuditTrailProjection):
    """Crashes in the middle of a batch, once: as a worker killed mid-transaction would."""

    def __init__(self) -> None:
        self.failed = False

    def apply(self, cur, tables, events) -> None:
        super().apply(cur, tables, events)
        if not self.failed and events[-1].position > 100:
            self.failed = True
            raise WorkerKilled("worker crashed")


def test_a_crash_mid_batch_neither_skips_nor_double_counts(runtime: Runtime, history: int) -> None:
    engine = ProjectionEngine(runtime.db, runtime.engine.log, [FailsOnce()], batch_size=64)
    with pytest.raises(WorkerKilled, match="worker crashed"):
        engine.catch_up()
    stopped_at = engine.positions()["audit"]
    with runtime.db.read() as cur:
        rows = cur.execute("SELECT COUNT(*) AS n, MAX(position) AS last FROM audit_log").fetchone()
    # views and position agree: every registry event up to the position, and none after
    assert rows["n"] == stopped_at - SEEDED and rows["last"] == stopped_at

    engine.catch_up()
    resumed = dump_views(runtime)["audit_log"]
    runtime.engine.rebuild("audit")
    assert dump_views(runtime)["audit_log"] == resumed
    assert len(resumed) == history


def test_two_workers_of_one_projection_never_apply_the_same_events(
    runtime: Runtime, history: int, database_url: str
) -> None:
    others = second_runtime(database_url)
    other = next(others)
    try:
        runtime.engine.batch_size = other.engine.batch_size = 25
        threads = [threading.Thread(target=rt.engine.catch_up) for rt in (runtime, other, runtime, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with runtime.db.read() as cur:
            counts = cur.execute("SELECT COUNT(*) AS n, COUNT(DISTINCT position) AS d FROM audit_log").fetchone()
        assert counts["n"] == counts["d"] == history
        concurrent = dump_views(runtime)
        runtime.engine.rebuild("deployments")
        runtime.engine.rebuild("registry")
        assert dump_views(runtime) == concurrent
    finally:
        others.close()


def test_a_worker_that_finds_the_projection_locked_skips_it_without_waiting(postgres_url: str) -> None:
    Runtime.init_schema(postgres_url)
    holder, follower = Runtime.open(postgres_url), Runtime.open(postgres_url)
    try:
        holder.registry.register_version("bot", base_model="b", job_id="j", dataset_size=1, actor="t")
        with holder.db.transaction() as cur:
            cur.execute("SELECT position FROM projection_tracking WHERE name = 'audit' FOR UPDATE")
            positions = follower.engine.catch_up(["audit"], wait=False)
            assert "audit" not in positions
        assert follower.engine.catch_up(["audit"], wait=False) == {"audit": pos(2)}
    finally:
        holder.close()
        follower.close()


def test_read_your_writes_waits_for_a_position_another_worker_applies(runtime: Runtime, database_url: str) -> None:
    others = second_runtime(database_url)
    worker = next(others)
    try:
        r = runtime.registry.register_version("bot", base_model="b", job_id="j", dataset_size=1, actor="t")
        assert not runtime.engine.wait_for(r.recorded.position, timeout=0.05)  # nobody applied it yet
        applier = threading.Thread(target=worker.engine.catch_up)
        applier.start()
        assert runtime.engine.wait_for(r.recorded.position, timeout=10)
        applier.join()
    finally:
        others.close()


def test_rebuilding_an_unknown_projection_names_the_known_ones(runtime: Runtime) -> None:
    with pytest.raises(
        NotFound,
        match="Unknown projection 'prompts': the projections are ab_stats, audit, costs, datasets, deployments, "
        "evaluations, examples, gateway_calls, jobs, registry",
    ):
        runtime.engine.rebuild("prompts")


def test_db_init_rebuilds_a_projection_whose_schema_version_changed(runtime: Runtime, history: int) -> None:
    runtime.engine.catch_up()
    before = dump_views(runtime)
    with runtime.db.transaction() as cur:
        cur.execute("UPDATE projection_tracking SET schema_version = 0 WHERE name = 'registry'")
        cur.execute("DELETE FROM registry_versions")
    _, rebuilt = Runtime.init_schema(runtime.config.url)
    assert [r.name for r in rebuilt] == ["registry"]
    assert dump_views(runtime) == before


def test_two_rebuilds_at_once_each_build_their_own_tables_and_end_identical(
    runtime: Runtime, history: int, database_url: str
) -> None:
    runtime.engine.catch_up()
    expected = dump_views(runtime)
    others = second_runtime(database_url)
    other = next(others)
    try:
        runtime.engine.rebuild_batch_size = other.engine.rebuild_batch_size = 100
        with ThreadPoolExecutor(max_workers=2) as pool:
            reports = [f.result() for f in [pool.submit(rt.engine.rebuild, "registry") for rt in (runtime, other)]]
        assert [r.position for r in reports] == [runtime.engine.log.head()] * 2
        assert dump_views(runtime) == expected
        with runtime.db.read() as cur:
            row = cur.execute("SELECT generation FROM projection_tracking WHERE name = 'registry'").fetchone()
        assert row["generation"] == 2
    finally:
        others.close()


def test_batches_end_at_their_byte_budget_and_still_project_every_event_once(runtime: Runtime, history: int) -> None:
    engine = ProjectionEngine(runtime.db, runtime.engine.log, [AuditTrailProjection()], batch_bytes=1)
    with runtime.db.read() as cur, engine.log.reading(cur) as log:
        first, more = engine.log.read_batch(log, after=0, limit=1000, stop=engine.log.head(), max_bytes=1)
    assert len(first) == 1 and more  # one event is over the budget already: the batch ends there

    engine.catch_up()

    assert engine.positions()["audit"] == runtime.engine.log.head()
    with runtime.db.read() as cur:
        assert cur.execute("SELECT COUNT(*) AS n FROM audit_log").fetchone()["n"] == history
