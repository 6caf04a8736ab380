"""Deployment status: what is deployed now, since when, by whom and why, and at any past time.

`dep_models` and `dep_versions` answer "now" with a few indexed rows whatever
the history's length; `dep_history` (one row per version status change) answers
`as_of` questions without replaying aggregates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.registry import RegisteredModel
from projections.database import Cursor, Database
from projections.engine import LoggedEvent, Projection
from projections.rows import Upserts, format_ts
from projections.version_changes import REGISTRY_EVENTS, status_changes

_MODEL_COLUMNS = "model, deployed_version, deployed_since, deployed_by, deploy_reason, deploy_event"


class DeploymentStatusProjection(Projection):
    name = "deployments"
    schema_version = 1
    event_classes = REGISTRY_EVENTS
    tables = {
        "dep_models": (
            "model TEXT PRIMARY KEY, deployed_version INTEGER, deployed_since TEXT, deployed_by TEXT, "
            "deploy_reason TEXT, deploy_event TEXT, position BIGINT"
        ),
        "dep_versions": (
            "model TEXT NOT NULL, number INTEGER NOT NULL, status TEXT, status_since TEXT, PRIMARY KEY (model, number)"
        ),
        "dep_history": (
            "model TEXT NOT NULL, number INTEGER NOT NULL, position BIGINT NOT NULL, status TEXT NOT NULL, "
            "at TEXT NOT NULL, actor TEXT, reason TEXT, event_type TEXT, PRIMARY KEY (model, number, position)"
        ),
    }
    indexes = [("dep_history", "at")]

    def apply(self, cur: Cursor, tables: dict[str, str], events: Sequence[LoggedEvent]) -> None:
        models = Upserts(tables["dep_models"], ("model",))
        versions = Upserts(tables["dep_versions"], ("model", "number"))
        history: list[tuple[Any, ...]] = []
        for logged in events:
            event = logged.event
            if isinstance(event, RegisteredModel.ModelRegistered):
                models.set((event.model,), **_undeployed(logged.position))
            for change in status_changes(event):
                at = format_ts(change.at)
                versions.set((change.model, change.number), status=change.status, status_since=at)
                history.append(
                    (change.model, change.number, logged.position, change.status, at,
                     change.actor, change.reason, change.event_type)
                )  # fmt: skip
                if change.deploys:
                    models.set(
                        (change.model,),
                        deployed_version=change.number,
                        deployed_since=at,
                        deployed_by=change.actor,
                        deploy_reason=change.reason,
                        deploy_event=change.event_type,
                        position=logged.position,
                    )
                elif change.left_deployment:
                    models.set((change.model,), **_undeployed(logged.position))
        models.flush(cur)
        versions.flush(cur)
        if history:
            cur.executemany(
                f"INSERT INTO {tables['dep_history']} "
                "(model, number, position, status, at, actor, reason, event_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                history,
            )


def _undeployed(position: int) -> dict[str, Any]:
    return dict(
        deployed_version=None,
        deployed_since=None,
        deployed_by=None,
        deploy_reason=None,
        deploy_event=None,
        position=position,
    )


# --------------------------------------------------------------------- queries


def _status(row: dict[str, Any], versions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": row["model"],
        "deployed_version": row["deployed_version"],
        "deployed_since": row["deployed_since"],
        "deployed_by": row["deployed_by"],
        "reason": row["deploy_reason"],
        "event_type": row["deploy_event"],
        "versions": versions,
    }


def _in(values: Sequence[Any]) -> str:
    return "(" + ", ".join("?" for _ in values) + ")"


def current_status(db: Database, *, after: str | None = None, limit: int = 100, model: str | None = None) -> list[dict]:
    """The deployment status of models now, ordered by name (a page of them)."""
    with db.read() as cur:
        if model is not None:
            rows = cur.execute(f"SELECT {_MODEL_COLUMNS} FROM dep_models WHERE model = ?", (model,)).fetchall()
        else:
            rows = cur.execute(
                f"SELECT {_MODEL_COLUMNS} FROM dep_models WHERE model > ? ORDER BY model LIMIT ?",
                (after or "", limit),
            ).fetchall()
        if not rows:
            return []
        names = [r["model"] for r in rows]
        version_rows = cur.execute(
            "SELECT model, number, status, status_since FROM dep_versions "
            f"WHERE model IN {_in(names)} ORDER BY model, number",
            names,
        ).fetchall()
    versions: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for v in version_rows:
        versions[v["model"]].append({"version": v["number"], "status": v["status"], "since": v["status_since"]})
    return [_status(r, versions[r["model"]]) for r in rows]


def status_as_of(
    db: Database, as_of: str, *, after: str | None = None, limit: int = 100, model: str | None = None
) -> list[dict]:
    """The deployment status as it was at `as_of` (a formatted UTC timestamp)."""
    with db.read() as cur:
        if model is not None:
            names = [model]
        else:
            names = [
                r["model"]
                for r in cur.execute(
                    "SELECT DISTINCT model FROM dep_history WHERE at <= ? AND model > ? ORDER BY model LIMIT ?",
                    (as_of, after or "", limit),
                ).fetchall()
            ]
        if not names:
            return []
        rows = cur.execute(
            "SELECT h.model, h.number, h.status, h.at, h.actor, h.reason, h.event_type FROM dep_history h "
            "JOIN (SELECT model, number, MAX(position) AS position FROM dep_history "
            f"      WHERE at <= ? AND model IN {_in(names)} GROUP BY model, number) last "
            "ON h.model = last.model AND h.number = last.number AND h.position = last.position "
            "ORDER BY h.model, h.number",
            [as_of, *names],
        ).fetchall()
    by_model: dict[str, dict[str, Any]] = {}
    for r in rows:
        state = by_model.setdefault(
            r["model"],
            {"model": r["model"], "deployed_version": None, "deployed_since": None, "deployed_by": None,
             "deploy_reason": None, "deploy_event": None, "versions": []},
        )  # fmt: skip
        state["versions"].append({"version": r["number"], "status": r["status"], "since": r["at"]})
        if r["status"] == "DEPLOYED":
            state.update(
                deployed_version=r["number"],
                deployed_since=r["at"],
                deployed_by=r["actor"],
                deploy_reason=r["reason"],
                deploy_event=r["event_type"],
            )
    return [_status(s, s["versions"]) for s in by_model.values()]
