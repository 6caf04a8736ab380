"""Fine-tuning jobs as they stand now: status, provider ids, result, lineage and the latest metrics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from domain.job_specs import TERMINAL, JobStatus
from domain.jobs import FineTuningJob
from projections.database import Cursor, Database
from projections.engine import LoggedEvent, Projection
from projections.rows import Upserts, format_ts, to_json

_COLUMNS = (
    "job_id, provider, provider_job_id, status, base_model, model_name, registry_version, method, hyperparameters, "
    "training, validation, estimate, files, fine_tuned_model, trained_tokens, error, metrics, estimated_finish, "
    "created_at, created_by, updated_at, finished_at, published, timing, position"
)
_JSON = ("hyperparameters", "training", "validation", "estimate", "files", "error", "metrics", "published", "timing")
ACTIVE = tuple(s.value for s in JobStatus if s not in TERMINAL)


class JobsProjection(Projection):
    name = "jobs"
    schema_version = 2  # 2: local runs' measured throughput
    event_classes = (
        FineTuningJob.Created, FineTuningJob.VersionLinked, FineTuningJob.FileUploaded, FineTuningJob.Submitted,
        FineTuningJob.StatusChanged, FineTuningJob.Progressed, FineTuningJob.Succeeded, FineTuningJob.Failed,
        FineTuningJob.Cancelled, FineTuningJob.Refused, FineTuningJob.ModelDeleted, FineTuningJob.ThroughputMeasured,
        FineTuningJob.Published,
    )  # fmt: skip
    tables = {
        # Only the key is NOT NULL: a batch upserts just the columns an event changes.
        "jobs": (
            "job_id TEXT PRIMARY KEY, provider TEXT, provider_job_id TEXT, status TEXT, base_model TEXT, "
            "model_name TEXT, registry_version INTEGER, method TEXT, hyperparameters TEXT, training TEXT, "
            "validation TEXT, estimate TEXT, files TEXT, fine_tuned_model TEXT, trained_tokens BIGINT, error TEXT, "
            "metrics TEXT, estimated_finish BIGINT, created_at TEXT, created_by TEXT, updated_at TEXT, "
            "finished_at TEXT, published TEXT, timing TEXT, position BIGINT"
        ),
        # what finished local runs measured, for later time estimates of the same model on the same hardware
        "job_throughput": (
            "job_id TEXT PRIMARY KEY, base_model TEXT NOT NULL, hardware TEXT NOT NULL, device TEXT, backend TEXT, "
            "parameters BIGINT, counted_tokens BIGINT NOT NULL, train_seconds DOUBLE PRECISION NOT NULL, "
            "wall_seconds DOUBLE PRECISION NOT NULL, measured_at TEXT NOT NULL, position BIGINT NOT NULL"
        ),
    }
    indexes = [("jobs", "provider_job_id"), ("jobs", "status"), ("jobs", "fine_tuned_model"),
               ("job_throughput", "base_model, hardware, position")]  # fmt: skip

    def apply(self, cur: Cursor, tables: dict[str, str], events: Sequence[LoggedEvent]) -> None:
        table = tables["jobs"]
        rows = Upserts(table, ("job_id",))
        files: dict[str, dict[str, str]] = {}
        for logged in events:
            e = logged.event
            key = (e.job_id,)
            at = format_ts(e.timestamp)
            if isinstance(e, FineTuningJob.Created):
                files[e.job_id] = {}
                rows.set(key, provider=e.provider, provider_job_id=None, status=JobStatus.CREATED.value,
                         base_model=e.base_model, model_name=e.model_name, registry_version=None, method=e.method,
                         hyperparameters=to_json(e.hyperparameters), training=to_json(e.training),
                         validation=to_json(e.validation), estimate=to_json(e.estimate), files=to_json({}),
                         fine_tuned_model=None, trained_tokens=None, error=None, metrics=None, estimated_finish=None,
                         created_at=at, created_by=e.actor, finished_at=None, published=None, timing=None)  # fmt: skip
            elif isinstance(e, FineTuningJob.VersionLinked):
                rows.set(key, registry_version=e.number)
            elif isinstance(e, FineTuningJob.FileUploaded):
                if e.job_id not in files:
                    row = cur.execute(f"SELECT files FROM {table} WHERE job_id = ?", (e.job_id,)).fetchone()
                    files[e.job_id] = json.loads(row["files"]) if row and row["files"] else {}
                files[e.job_id][e.role] = e.file_id
                rows.set(key, files=to_json(files[e.job_id]))
            elif isinstance(e, FineTuningJob.Submitted):
                rows.set(key, provider_job_id=e.provider_job_id, status=e.status)
            elif isinstance(e, (FineTuningJob.StatusChanged, FineTuningJob.Progressed)):
                if isinstance(e, FineTuningJob.StatusChanged):
                    rows.set(key, status=e.to_status)
                if e.metrics is not None:
                    rows.set(key, metrics=to_json(e.metrics))
                rows.set(key, estimated_finish=e.estimated_finish)
            elif isinstance(e, FineTuningJob.Succeeded):
                rows.set(key, status=JobStatus.SUCCEEDED.value, fine_tuned_model=e.fine_tuned_model,
                         trained_tokens=e.trained_tokens, finished_at=at, estimated_finish=None)  # fmt: skip
            elif isinstance(e, (FineTuningJob.Failed, FineTuningJob.Refused)):
                status = JobStatus.FAILED if isinstance(e, FineTuningJob.Failed) else JobStatus.REFUSED
                rows.set(key, status=status.value, error=to_json({"code": e.code, "message": e.message}),
                         finished_at=at, estimated_finish=None)  # fmt: skip
            elif isinstance(e, FineTuningJob.Cancelled):
                rows.set(key, status=JobStatus.CANCELLED.value, finished_at=at, estimated_finish=None)
            elif isinstance(e, FineTuningJob.ModelDeleted):
                rows.set(key, fine_tuned_model=None)
            elif isinstance(e, FineTuningJob.Published):
                rows.set(key, published=to_json({"ollama_model": e.ollama_model, "host": e.host, "family": e.family,
                                                 "chat_url": e.host.rstrip("/") + "/v1/chat/completions"}))
            elif isinstance(e, FineTuningJob.ThroughputMeasured):
                rows.set(key, timing=to_json({"wall_seconds": e.wall_seconds, "train_seconds": e.train_seconds,
                                              "hardware": e.hardware, "device": e.device, "backend": e.backend}))
                cur.execute(
                    f"INSERT INTO {tables['job_throughput']} (job_id, base_model, hardware, device, backend, "
                    "parameters, counted_tokens, train_seconds, wall_seconds, measured_at, position) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (e.job_id, e.base_model, e.hardware, e.device, e.backend, e.parameters, e.counted_tokens,
                     e.train_seconds, e.wall_seconds, at, logged.position),
                )  # fmt: skip
            rows.set(key, updated_at=at, position=logged.position)
        rows.flush(cur)


# --------------------------------------------------------------------- queries


def _job(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (json.loads(v) if k in _JSON and v is not None else v) for k, v in row.items()}


def get_job(db: Database, job_id: str) -> dict[str, Any] | None:
    """A job by our id, or by the provider's job id (ftjob-...)."""
    with db.read() as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ? OR provider_job_id = ? ORDER BY job_id LIMIT 1",
            (job_id, job_id),
        ).fetchone()
    return None if row is None else _job(row)


def job_for_model(db: Database, fine_tuned_model: str) -> dict[str, Any] | None:
    with db.read() as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM jobs WHERE fine_tuned_model = ?", (fine_tuned_model,)).fetchone()
    return None if row is None else _job(row)


def list_jobs(
    db: Database, *, status: str | None = None, model_name: str | None = None, after: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:  # fmt: skip
    """Newest first; `after` is the last job id of the previous page."""
    clauses, params = [], []
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    if model_name is not None:
        clauses.append("model_name = ?")
        params.append(model_name)
    if after is not None:
        clauses.append("(created_at, job_id) < (SELECT created_at, job_id FROM jobs WHERE job_id = ?)")
        params.append(after)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    with db.read() as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM jobs {where} ORDER BY created_at DESC, job_id DESC LIMIT ?", [*params, limit]
        ).fetchall()
    return [_job(r) for r in rows]


def latest_throughput(db: Database, base_model: str, hardware: str) -> dict[str, Any] | None:
    """The last measured local run of this model on this hardware, if any."""
    with db.read() as cur:
        return cur.execute(
            "SELECT job_id, counted_tokens, train_seconds, wall_seconds, parameters, device FROM job_throughput "
            "WHERE base_model = ? AND hardware = ? ORDER BY position DESC LIMIT 1",
            (base_model, hardware),
        ).fetchone()


def active_job_ids(db: Database) -> list[str]:
    """Jobs that have not finished, oldest first: what the poller keeps current."""
    marks = ", ".join("?" for _ in ACTIVE)
    with db.read() as cur:
        rows = cur.execute(
            f"SELECT job_id FROM jobs WHERE status IN ({marks}) ORDER BY created_at, job_id", ACTIVE
        ).fetchall()
    return [r["job_id"] for r in rows]
