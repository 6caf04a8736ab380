"""The registry listing: every model and every version with its facts and status."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from domain.costs import TrainingCost
from domain.jobs import FineTuningJob
from domain.registry import RegisteredModel
from projections.database import Cursor, Database
from projections.engine import LoggedEvent, Projection
from projections.rows import Upserts, format_ts
from projections.version_changes import REGISTRY_EVENTS, status_changes

_MODEL_COLUMNS = (
    "name, created_at, created_by, version_count, latest_version, deployed_version, updated_at, stream_version"
)
_VERSION_COLUMNS = (
    "model, number, base_model, job_id, dataset_size, accuracy, cost, status, "
    "registered_at, registered_by, status_changed_at, deployed_at, serving"
)


class RegistryListingProjection(Projection):
    name = "registry"
    # 2: a version's cost also comes from its job's training cost; 3: where its job's result is served;
    # 4: `serving` is the version's serving target (domain/serving.py)
    schema_version = 4
    event_classes = (*REGISTRY_EVENTS, TrainingCost.Recorded, FineTuningJob.Published)
    tables = {
        "registry_models": (
            "name TEXT PRIMARY KEY, created_at TEXT, created_by TEXT, version_count INTEGER, "
            "latest_version INTEGER, deployed_version INTEGER, updated_at TEXT, stream_version INTEGER"
        ),
        "registry_versions": (
            "model TEXT NOT NULL, number INTEGER NOT NULL, base_model TEXT, job_id TEXT, "
            "dataset_size BIGINT, accuracy DOUBLE PRECISION, cost TEXT, status TEXT, registered_at TEXT, "
            "registered_by TEXT, status_changed_at TEXT, deployed_at TEXT, serving TEXT, PRIMARY KEY (model, number)"
        ),
    }
    indexes = [("registry_versions", "job_id")]

    def apply(self, cur: Cursor, tables: dict[str, str], events: Sequence[LoggedEvent]) -> None:
        models = Upserts(tables["registry_models"], ("name",))
        versions = Upserts(tables["registry_versions"], ("model", "number"))
        for logged in events:
            event = logged.event
            at = format_ts(event.timestamp)
            if isinstance(event, TrainingCost.Recorded):
                # A fine-tuning job registers its version first and records its cost when it succeeds.
                models.flush(cur)
                versions.flush(cur)
                cur.execute(
                    f"UPDATE {tables['registry_versions']} SET cost = ? "
                    "WHERE model = ? AND job_id = ? AND cost IS NULL",
                    (str(event.total_cost), event.model_name, event.job_id),
                )
                continue
            if isinstance(event, FineTuningJob.Published):
                # A local run published to Ollama is served there (stores from before ServingChanged say so).
                models.flush(cur)
                versions.flush(cur)
                serving = {"base_url": event.host.rstrip("/") + "/v1", "model": event.ollama_model}
                cur.execute(f"UPDATE {tables['registry_versions']} SET serving = ? WHERE job_id = ?",
                            (json.dumps(serving), event.job_id))  # fmt: skip
                continue
            if isinstance(event, RegisteredModel.ModelRegistered):
                models.set(
                    (event.model,),
                    created_at=at,
                    created_by=event.actor,
                    version_count=0,
                    latest_version=None,
                    deployed_version=None,
                )
            elif isinstance(event, RegisteredModel.VersionRegistered):
                # Version numbers are consecutive from 1, so the newest number is also the count.
                models.set((event.model,), version_count=event.number, latest_version=event.number)
                versions.set(
                    (event.model, event.number),
                    base_model=event.base_model,
                    job_id=event.job_id,
                    dataset_size=event.dataset_size,
                    accuracy=event.accuracy,
                    cost=None if event.cost is None else str(event.cost),
                    registered_at=at,
                    registered_by=event.actor,
                    deployed_at=None,
                )
            elif isinstance(event, RegisteredModel.ServingChanged):
                versions.set((event.model, event.number),
                             serving=None if event.serving is None else json.dumps(event.serving))  # fmt: skip
            elif isinstance(event, RegisteredModel.VersionEvaluated):
                versions.set((event.model, event.number), accuracy=event.accuracy)
            for change in status_changes(event):
                versions.set((change.model, change.number), status=change.status, status_changed_at=at)
                if change.deploys:
                    versions.set((change.model, change.number), deployed_at=at)
                    models.set((change.model,), deployed_version=change.number)
                elif change.left_deployment:
                    models.set((change.model,), deployed_version=None)
            models.set((event.model,), updated_at=at, stream_version=event.originator_version)
        models.flush(cur)
        versions.flush(cur)


# --------------------------------------------------------------------- queries


def _model(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "created_at": row["created_at"],
        "created_by": row["created_by"],
        "version_count": row["version_count"],
        "latest_version": row["latest_version"],
        "deployed_version": row["deployed_version"],
        "updated_at": row["updated_at"],
        "etag": row["stream_version"],
    }


def _version(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": row["number"],
        "model_name": row["model"],
        "base_model": row["base_model"],
        "job_id": row["job_id"],
        "dataset_size": row["dataset_size"],
        "accuracy": row["accuracy"],
        "cost": None if row["cost"] is None else Decimal(row["cost"]),
        "status": row["status"],
        "registered_at": row["registered_at"],
        "registered_by": row["registered_by"],
        "status_changed_at": row["status_changed_at"],
        "deployed_at": row["deployed_at"],
        "serving": None if row["serving"] is None else json.loads(row["serving"]),
    }


def list_models(db: Database, *, after: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    with db.read() as cur:
        rows = cur.execute(
            f"SELECT {_MODEL_COLUMNS} FROM registry_models WHERE name > ? ORDER BY name LIMIT ?",
            (after or "", limit),
        ).fetchall()
    return [_model(r) for r in rows]


def get_model(db: Database, name: str) -> dict[str, Any] | None:
    with db.read() as cur:
        row = cur.execute(f"SELECT {_MODEL_COLUMNS} FROM registry_models WHERE name = ?", (name,)).fetchone()
    return None if row is None else _model(row)


def list_versions(
    db: Database, name: str, *, status: str | None = None, after: int = 0, limit: int = 1000
) -> list[dict[str, Any]]:
    sql = f"SELECT {_VERSION_COLUMNS} FROM registry_versions WHERE model = ? AND number > ?"
    params: list[Any] = [name, after]
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    with db.read() as cur:
        rows = cur.execute(sql + " ORDER BY number LIMIT ?", [*params, limit]).fetchall()
    return [_version(r) for r in rows]


def get_version(db: Database, name: str, number: int | None) -> dict[str, Any] | None:
    """One version; `number=None` means the latest."""
    with db.read() as cur:
        if number is None:
            row = cur.execute(
                f"SELECT {_VERSION_COLUMNS} FROM registry_versions WHERE model = ? ORDER BY number DESC LIMIT 1",
                (name,),
            ).fetchone()
        else:
            row = cur.execute(
                f"SELECT {_VERSION_COLUMNS} FROM registry_versions WHERE model = ? AND number = ?", (name, number)
            ).fetchone()
    return None if row is None else _version(row)


def export_registry(db: Database) -> dict[str, list[dict[str, Any]]]:
    """The seed's export shape: a model name mapped to its list of versions."""
    with db.read() as cur:
        rows = cur.execute(f"SELECT {_VERSION_COLUMNS} FROM registry_versions ORDER BY model, number").fetchall()
    exported: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        v = _version(r)
        exported.setdefault(r["model"], []).append(
            {k: v[k] for k in ("version", "model_name", "base_model", "job_id", "dataset_size", "accuracy",
                               "cost", "status", "registered_at", "deployed_at")}
        )  # fmt: skip
    return exported


def serving_versions(db: Database) -> tuple[int, list[dict[str, Any]]]:
    """What the gateway routes by, read in one transaction with the position it reflects: each model's
    deployed version and the versions deployed before it (for a `previous` fallback), with their targets."""
    with db.read() as cur:
        tracked = cur.execute("SELECT position FROM projection_tracking WHERE name = ?", ("registry",)).fetchone()
        rows = cur.execute(
            "SELECT model, number, status, deployed_at, serving FROM registry_versions "
            "WHERE status = 'DEPLOYED' OR deployed_at IS NOT NULL ORDER BY model, deployed_at"
        ).fetchall()
    versions = [{"model": r["model"], "version": r["number"], "status": r["status"], "deployed_at": r["deployed_at"],
                 "serving": None if r["serving"] is None else json.loads(r["serving"])} for r in rows]  # fmt: skip
    return (tracked["position"] if tracked else 0), versions
