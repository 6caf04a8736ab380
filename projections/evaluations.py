"""Evaluations with their frozen metrics, and every prediction, for listing and pairwise comparison."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from domain.evaluations import Evaluation, PredictionBatch
from projections.database import Cursor, Database
from projections.engine import LoggedEvent, Projection
from projections.rows import Upserts, format_ts, to_json

_COLUMNS = "evaluation_id, model, model_type, modes, normalisation, source, status, metrics, created_at, created_by, "\
           "position"  # fmt: skip
_PREDICTION_COLUMNS = "evaluation_id, example_id, prediction, reference, label, latency_ms, cost"


class EvaluationsProjection(Projection):
    name = "evaluations"
    schema_version = 1
    event_classes = (Evaluation.Created, Evaluation.Completed, Evaluation.Failed, PredictionBatch.Recorded)
    tables = {
        "evaluations": (
            "evaluation_id TEXT PRIMARY KEY, model TEXT, model_type TEXT, modes TEXT, normalisation TEXT, "
            "source TEXT, status TEXT, metrics TEXT, created_at TEXT, created_by TEXT, position BIGINT"
        ),
        "evaluation_predictions": (
            "evaluation_id TEXT NOT NULL, example_id TEXT NOT NULL, prediction TEXT NOT NULL, reference TEXT NOT NULL, "
            "label TEXT, latency_ms DOUBLE PRECISION, cost TEXT, position BIGINT NOT NULL, "
            "PRIMARY KEY (evaluation_id, example_id)"
        ),
    }
    indexes = [("evaluations", "model")]

    def apply(self, cur: Cursor, tables: dict[str, str], events: Sequence[LoggedEvent]) -> None:
        rows = Upserts(tables["evaluations"], ("evaluation_id",))
        predictions = []
        for logged in events:
            e = logged.event
            if isinstance(e, PredictionBatch.Recorded):
                predictions += [(e.evaluation_id, p["example_id"], p["prediction"], p["reference"], p["label"],
                                 p["latency_ms"], None if p["cost"] is None else str(p["cost"]), logged.position)
                                for p in e.predictions]  # fmt: skip
                continue
            key = (e.evaluation_id,)
            if isinstance(e, Evaluation.Created):
                rows.set(key, model=e.model, model_type=e.model_type, modes=json.dumps(e.modes),
                         normalisation=json.dumps(e.normalisation), source=to_json(e.source), status="running",
                         metrics=None, created_at=format_ts(e.timestamp), created_by=e.actor)  # fmt: skip
            elif isinstance(e, Evaluation.Completed):
                rows.set(key, status="completed", metrics=to_json(e.metrics))
            elif isinstance(e, Evaluation.Failed):
                rows.set(key, status="failed", metrics=to_json({"error": e.error}))
            rows.set(key, position=logged.position)
        rows.flush(cur)
        if predictions:
            # Each example is predicted once per evaluation: a second prediction of it (two runs resuming
            # the same evaluation at once) is left out, so the metrics count every example once.
            cur.executemany(
                f"INSERT INTO {tables['evaluation_predictions']} ({_PREDICTION_COLUMNS}, position) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (evaluation_id, example_id) DO NOTHING",
                predictions,
            )


def _evaluation(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, **{k: None if row[k] is None else json.loads(row[k])
                      for k in ("modes", "normalisation", "source", "metrics")}}  # fmt: skip


def get_evaluation(db: Database, evaluation_id: str) -> dict[str, Any] | None:
    with db.read() as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM evaluations WHERE evaluation_id = ?", (evaluation_id,)).fetchone()
    return None if row is None else _evaluation(row)


def list_evaluations(db: Database, *, model: str | None = None, after: str | None = None,
                     limit: int = 100) -> list[dict[str, Any]]:  # fmt: skip
    where, params = "evaluation_id > ?", [after or ""]
    if model is not None:
        where += " AND model = ?"
        params.append(model)
    with db.read() as cur:
        rows = cur.execute(f"SELECT {_COLUMNS} FROM evaluations WHERE {where} ORDER BY evaluation_id LIMIT ?",
                           [*params, limit]).fetchall()  # fmt: skip
    return [_evaluation(r) for r in rows]


def predictions(db: Database, evaluation_id: str, *, after: str | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    sql = (f"SELECT {_PREDICTION_COLUMNS} FROM evaluation_predictions WHERE evaluation_id = ? AND example_id > ? "
           "ORDER BY example_id")  # fmt: skip
    params: list[Any] = [evaluation_id, after or ""]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    with db.read() as cur:
        rows = cur.execute(sql, params).fetchall()
    return [{**r, "cost": None if r["cost"] is None else Decimal(r["cost"])} for r in rows]
