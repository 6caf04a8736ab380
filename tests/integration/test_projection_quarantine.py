"""Poison events: an event a projection cannot apply is quarantined for that projection, and
everything else goes on (the other projections, later events, commands, the server's start)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from fastapi.testclient import TestClient

from api.http.app import create_app
from api.runtime import Runtime
from api.settings import Settings
from domain.errors import NotFound
from domain.inference import InferenceBatch
from domain.registry import RegisteredModel
from projections.audit import AuditTrailProjection
from projections.engine import ProjectionEngine

HUGE = 2**62  # two of these overflow a 64-bit sum: the store cannot hold the total


def record(runtime: Runtime, *ids: str, model: str = "gpt-4o-mini", tokens: int = 100) -> None:
    runtime.record_inferences(
        [{"id": i, "model": model, "input_tokens": tokens, "output_tokens": 10, "latency_ms": 5,
          "is_fine_tuned": False} for i in ids],
        actor="alice",
    )  # fmt: skip


def force_poison_batch(runtime: Runtime) -> None:
    """Appends, past every domain check, a batch whose token total no 64-bit column can hold."""
    record(runtime, "template")
    template = next(
        e.event for e in _all_events(runtime) if isinstance(e.event, InferenceBatch.Recorded)
    ).records[0]
    poison = [template | {"id": f"poison-{k}", "input_tokens": HUGE} for k in range(2)]
    batch = InferenceBatch._create(InferenceBatch.Recorded, records=poison, prices={}, actor="mallory")
    runtime.ledger.save(batch)


def _all_events(runtime: Runtime) -> list[Any]:
    with runtime.db.read() as cur, runtime.engine.log.reading(cur) as log:
        return runtime.engine.log.read(log, after=0, limit=100_000, stop=runtime.engine.log.head())


def force_undecodable_event(runtime: Runtime) -> int:
    """A registry event whose stored state no code can decode (as hand surgery might leave)."""
    topic = get_topic(RegisteredModel.VersionRegistered)
    runtime.registry.recorder.insert_events([StoredEvent(uuid4(), 1, topic, b"\x00not json")])
    return runtime.engine.log.head()


def quarantine_of(runtime: Runtime) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for q in runtime.engine.quarantined():
        found.setdefault(q.projection, []).append(q.position)
    return found


def test_a_batch_whose_totals_overflow_is_quarantined_by_the_cost_projection_alone(runtime: Runtime) -> None:
    force_poison_batch(runtime)
    poison_at = runtime.engine.log.head()
    record(runtime, "after-1", "after-2")
    runtime.registry.register_version("support-bot", base_model="gpt-4o-mini-2024-07-18", job_id="ftjob-1",
                              dataset_size=10, actor="alice")  # fmt: skip

    positions = runtime.engine.catch_up()

    head = runtime.engine.log.head()
    assert set(positions.values()) == {head}  # no projection stopped
    assert quarantine_of(runtime) == {"costs": [poison_at]}
    [q] = runtime.engine.quarantined("costs")
    assert q.attempts == 3 and q.topic == get_topic(InferenceBatch.Recorded)
    assert "overflow" in q.error.lower() or "out of range" in q.error.lower()
    with runtime.db.read() as cur:
        ids = [r["id"] for r in cur.execute("SELECT id FROM inference_records ORDER BY id").fetchall()]
        versions = cur.execute("SELECT COUNT(*) AS n FROM dep_versions").fetchone()["n"]
    assert ids == ["after-1", "after-2", "template"] and versions == 1
    assert {s.name: s.quarantined for s in runtime.engine.status()}["costs"] == 1


def test_an_event_no_code_can_decode_is_quarantined_by_every_projection_that_follows_its_topic(
    runtime: Runtime,
) -> None:
    bad = force_undecodable_event(runtime)
    runtime.registry.register_version("support-bot", base_model="gpt-4o-mini-2024-07-18", job_id="ftjob-1",
                              dataset_size=10, actor="alice")  # fmt: skip

    runtime.engine.catch_up()

    followers = sorted(p.name for p in runtime.engine.projections.values()
                       if get_topic(RegisteredModel.VersionRegistered) in p.topics)  # fmt: skip
    assert followers and quarantine_of(runtime) == {name: [bad] for name in followers}
    assert all("cannot decode" in q.error for q in runtime.engine.quarantined())
    with runtime.db.read() as cur:
        assert cur.execute("SELECT COUNT(*) AS n FROM dep_versions").fetchone()["n"] == 1


def test_the_server_starts_and_answers_commands_with_a_poison_event_in_the_log(runtime: Runtime) -> None:
    force_poison_batch(runtime)
    poison_at = runtime.engine.log.head()
    force_undecodable_event(runtime)
    settings = Settings(database_url=runtime.config.url, poll_jobs=False)
    with TestClient(create_app(settings, runtime)) as client:
        registered = client.post("/v1/models/support-bot/versions",
                                 json={"base_model": "gpt-4o-mini-2024-07-18", "job_id": "ftjob-1",
                                       "dataset_size": 10})  # fmt: skip
        assert registered.status_code == 201, registered.text
        listing = client.get("/v1/projections").json()
        health = client.get("/healthz").json()
    by_name = {p["name"]: p for p in listing}
    assert all(p["lag"] == 0 for p in listing)
    assert by_name["costs"]["quarantined"] == 1
    assert by_name["costs"]["quarantine"][0]["position"] == poison_at
    assert health["quarantined"] == sum(p["quarantined"] for p in listing) > 1


class BrokenUntilFixed(AuditTrailProjection):
    """Cannot apply one model's events until `fixed` (as a bug later mended would)."""

    def __init__(self) -> None:
        self.fixed = False

    def apply(self, cur, tables, events) -> None:
        if not self.fixed and any(getattr(e.event, "model", None) == "cursed" for e in events):
            raise ValueError("cannot apply events of 'cursed'")
        super().apply(cur, tables, events)


def register(runtime: Runtime, name: str) -> None:
    runtime.registry.register_version(name, base_model="gpt-4o-mini-2024-07-18", job_id="ftjob-1", dataset_size=10,
                              actor="alice")  # fmt: skip


def test_quarantined_events_are_reapplied_once_the_projection_is_fixed(runtime: Runtime) -> None:
    broken = BrokenUntilFixed()
    engine = ProjectionEngine(runtime.db, runtime.engine.log, [broken], batch_size=50)
    for name in ("alpha", "cursed", "omega"):
        register(runtime, name)

    engine.catch_up()
    quarantined = engine.quarantined("audit")
    cursed = [q.position for q in quarantined]
    assert len(cursed) == 2  # the model's creation and its first version
    assert engine.status()[0].position == runtime.engine.log.head()
    assert audited_models(runtime) == ["alpha", "alpha", "omega", "omega"]

    still = engine.reapply("audit")  # not fixed yet: they stay, with more tries counted
    assert still.applied == [] and [s.position for s in still.still_failing] == cursed
    assert [q.attempts for q in engine.quarantined("audit")] == [q.attempts * 2 for q in quarantined]

    broken.fixed = True
    report = engine.reapply("audit", [cursed[0]])
    assert report.applied == [cursed[0]] and [q.position for q in engine.quarantined()] == [cursed[1]]
    report = engine.reapply("audit")

    assert report.applied == [cursed[1]] and report.still_failing == []
    assert engine.quarantined() == []
    assert audited_models(runtime) == ["alpha", "alpha", "cursed", "cursed", "omega", "omega"]


def audited_models(runtime: Runtime) -> list[str]:
    with runtime.db.read() as cur:
        return [r["model"] for r in cur.execute("SELECT model FROM audit_log ORDER BY position").fetchall()]


def test_a_rebuild_quarantines_the_same_events_again_and_forgets_the_mended_ones(runtime: Runtime) -> None:
    broken = BrokenUntilFixed()
    engine = ProjectionEngine(runtime.db, runtime.engine.log, [broken], batch_size=50)
    for name in ("alpha", "cursed", "omega"):
        register(runtime, name)
    engine.catch_up()
    before = [q.position for q in engine.quarantined("audit")]

    engine.rebuild("audit")
    assert [q.position for q in engine.quarantined("audit")] == before

    broken.fixed = True
    engine.rebuild("audit")
    assert engine.quarantined("audit") == []


class DatabaseTrouble(AuditTrailProjection):
    """Fails as the database does when it is not the event's fault."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def apply(self, cur, tables, events) -> None:
        raise self.error


#: what each store raises when the database, not the event, is at fault
DATABASE_ERRORS = {
    "sqlite": sqlite3.OperationalError("database is locked"),
    "postgresql": psycopg.OperationalError("server closed the connection unexpectedly"),
}


def test_a_database_failure_stops_the_batch_for_a_retry_and_quarantines_nothing(runtime: Runtime) -> None:
    error = DATABASE_ERRORS[runtime.db.dialect]
    engine = ProjectionEngine(runtime.db, runtime.engine.log, [DatabaseTrouble(error)])
    register(runtime, "alpha")
    start = engine.positions()["audit"]

    with pytest.raises(type(error)):
        engine.catch_up()

    assert engine.positions()["audit"] == start and engine.quarantined() == []


def test_reapplying_a_position_that_is_not_quarantined_is_refused(runtime: Runtime) -> None:
    with pytest.raises(NotFound, match="no quarantined event at position 999"):
        runtime.engine.reapply("audit", [999])


def test_an_operator_sees_and_reapplies_the_quarantine_over_http_and_the_cli(runtime: Runtime) -> None:
    force_poison_batch(runtime)
    poison_at = runtime.engine.log.head()
    runtime.engine.catch_up()
    settings = Settings(database_url=runtime.config.url, poll_jobs=False)
    with TestClient(create_app(settings, runtime)) as client:
        listed = client.get("/v1/projections/costs/quarantine").json()
        unknown = client.get("/v1/projections/nope/quarantine")
        reapplied = client.post("/v1/projections/costs/quarantine/reapply", json={"positions": [poison_at]})
    assert [q["position"] for q in listed] == [poison_at]
    assert "SQLite INTEGER" in listed[0]["error"] or "out of range" in listed[0]["error"]
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert reapplied.status_code == 200
    assert reapplied.json()["applied"] == [] and reapplied.json()["still_failing"][0]["position"] == poison_at

    env = {k: v for k, v in os.environ.items() if not k.startswith("FT_")} | {"FT_DATABASE_URL": runtime.config.url}
    cli = str(Path(sys.executable).parent / "ft-cli")
    status = subprocess.run([cli, "projections", "status", "--json"], env=env, capture_output=True, text=True,
                            timeout=120, check=True)  # fmt: skip
    assert {r["name"]: r["quarantined"] for r in json.loads(status.stdout)}["costs"] == 1
    shown = subprocess.run([cli, "projections", "quarantine", "costs"], env=env, capture_output=True, text=True,
                           timeout=120, check=True)  # fmt: skip
    assert str(poison_at) in shown.stdout and "projections reapply" in shown.stderr
    again = subprocess.run([cli, "projections", "reapply", "costs"], env=env, capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert again.returncode == 1 and "0 applied, 1 still failing" in again.stdout
