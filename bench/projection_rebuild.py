"""Rebuild throughput of the deployment projection, and eventsourcing's ProjectionRunner beside it.

Both read the same PostgreSQL log. The library's runner commits one transaction
per event, so it gets the first LIBRARY_EVENTS events of that log rather than
all of them (a throughput is a throughput); ours replays the whole log.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection, ProjectionRunner
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

from api.runtime import Runtime
from application.registry import Registry
from bench.common import ThrowawayPostgres, fresh_store
from domain.registry import RegisteredModel
from projections.version_changes import REGISTRY_EVENTS, status_changes
from tests.support.history import save_history

MODELS = 1000
LIBRARY_EVENTS = 20_000


class LibraryDeploymentView(PostgresTrackingRecorder):
    """The deployment projection's tables, written the library's way: one event per transaction."""

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        for ddl in (
            "CREATE TABLE IF NOT EXISTS {0}.lib_dep_models (model TEXT PRIMARY KEY, deployed_version INTEGER, "
            "deployed_since TEXT, deployed_by TEXT, deploy_reason TEXT, deploy_event TEXT, position BIGINT)",
            "CREATE TABLE IF NOT EXISTS {0}.lib_dep_versions (model TEXT, number INTEGER, status TEXT, "
            "status_since TEXT, PRIMARY KEY (model, number))",
            "CREATE TABLE IF NOT EXISTS {0}.lib_dep_history (model TEXT, number INTEGER, position BIGINT, "
            "status TEXT, at TEXT, actor TEXT, reason TEXT, event_type TEXT, PRIMARY KEY (model, number, position))",
        ):
            self.sql_create_statements.append(SQL(ddl).format(schema))

    def apply(self, event: Any, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            self._insert_tracking(curs, tracking)
            if isinstance(event, RegisteredModel.ModelRegistered):
                curs.execute(
                    "INSERT INTO lib_dep_models (model, position) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (event.model, tracking.notification_id),
                )
            for c in status_changes(event):
                at = c.at.isoformat()
                curs.execute(
                    "INSERT INTO lib_dep_versions VALUES (%s, %s, %s, %s) ON CONFLICT (model, number) "
                    "DO UPDATE SET status = excluded.status, status_since = excluded.status_since",
                    (c.model, c.number, c.status, at),
                )
                curs.execute(
                    "INSERT INTO lib_dep_history VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (c.model, c.number, tracking.notification_id, c.status, at, c.actor, c.reason, c.event_type),
                )
                if c.deploys or c.left_deployment:
                    curs.execute(
                        "UPDATE lib_dep_models SET deployed_version = %s, deployed_since = %s, deployed_by = %s, "
                        "deploy_reason = %s, deploy_event = %s, position = %s WHERE model = %s",
                        (c.number, at, c.actor, c.reason, c.event_type, tracking.notification_id, c.model)
                        if c.deploys
                        else (None, None, None, None, None, tracking.notification_id, c.model),
                    )


class LibraryDeploymentProjection(Projection[LibraryDeploymentView]):
    name = "libdeployments"
    topics = tuple(get_topic(cls) for cls in REGISTRY_EVENTS)

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(domain_event, tracking)


def _ours(url: str) -> dict[str, float]:
    rt = Runtime.open(url)
    try:
        report = rt.engine.rebuild("deployments")
        return {"events": report.events, "seconds": report.seconds, "events_per_s": report.events_per_second}
    finally:
        rt.close()


def _library(url: str) -> dict[str, float]:
    env = Runtime.open(url)
    config = env.config
    with env.db.read() as cur:
        target = cur.execute(
            "SELECT notification_id FROM ft_events ORDER BY notification_id OFFSET %s LIMIT 1" % (LIBRARY_EVENTS - 1)
        ).fetchone()["notification_id"]
    env.close()
    started = time.perf_counter()
    with ProjectionRunner(
        application_class=Registry,
        projection_class=LibraryDeploymentProjection,
        view_class=LibraryDeploymentView,
        env=config.eventsourcing_env(create_table=True),
    ) as runner:
        runner.wait(target, timeout=900)
        seconds = time.perf_counter() - started
    return {"events": LIBRARY_EVENTS, "seconds": seconds, "events_per_s": LIBRARY_EVENTS / seconds}


def run(pg: ThrowawayPostgres, tmp: Path, events: int) -> dict[str, Any]:
    results: dict[str, Any] = {"events": events}
    for kind in ("sqlite", "postgresql"):
        with fresh_store(kind, pg, tmp, f"rebuild_{kind}") as url:
            rt = Runtime.open(url)
            try:
                appended = save_history(rt.registry, models=MODELS, events_per_model=events // MODELS)
            finally:
                rt.close()
            assert appended == events, appended
            results[kind] = _ours(url)
            if kind == "postgresql":
                results["library_runner_postgresql"] = _library(url)
    ours, lib = results["postgresql"]["events_per_s"], results["library_runner_postgresql"]["events_per_s"]
    results["ratio_vs_library_runner"] = ours / lib
    return results
