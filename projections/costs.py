"""Costs: per job, per model and per day, kept as exact decimal totals.

Totals are Decimals added in Python and stored as text: SQLite has no exact
decimal type, and a sum must equal the sum of its records to the last digit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from domain.costs import TrainingCost
from domain.inference import InferenceBatch
from projections.database import Cursor, Database
from projections.engine import LoggedEvent, Projection
from projections.rows import Upserts, format_ts

_MODEL_COLUMNS = (
    "model, training_cost, jobs, inferences, input_tokens, cached_input_tokens, output_tokens, inference_cost"
)
_JOB_COLUMNS = (
    "job_id, model_name, base_model, dataset_size, training_tokens, epochs, training_hours, at, total_cost, "
    "cost_source, unit_price, unit, price_pattern, price_effective_from, recorded_by, position"
)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class CostProjection(Projection):
    name = "costs"
    # 3: gateway calls (records with `source: gateway`) keep their registry version; an unpriced call has no cost
    schema_version = 3
    event_classes = (TrainingCost.Recorded, InferenceBatch.Recorded)
    tables = {
        "cost_jobs": (
            "job_id TEXT PRIMARY KEY, model_name TEXT NOT NULL, base_model TEXT, dataset_size BIGINT, "
            "training_tokens BIGINT, epochs INTEGER, training_hours TEXT, at TEXT NOT NULL, total_cost TEXT NOT NULL, "
            "cost_source TEXT, unit_price TEXT, unit TEXT, price_pattern TEXT, price_effective_from TEXT, "
            "recorded_by TEXT, position BIGINT NOT NULL"
        ),
        "cost_models": (
            "model TEXT PRIMARY KEY, training_cost TEXT NOT NULL, jobs INTEGER NOT NULL, inferences BIGINT NOT NULL, "
            "input_tokens BIGINT NOT NULL, cached_input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, "
            "inference_cost TEXT NOT NULL"
        ),
        "inference_records": (
            "id TEXT PRIMARY KEY, model TEXT NOT NULL, at TEXT NOT NULL, input_tokens BIGINT NOT NULL, "
            "cached_input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, latency_ms DOUBLE PRECISION, "
            "cost TEXT, cost_source TEXT NOT NULL, price TEXT, is_fine_tuned BOOLEAN NOT NULL, "
            "ab_test TEXT, tags TEXT, version INTEGER, position BIGINT NOT NULL"
        ),
        "cost_daily": (
            "day TEXT NOT NULL, model TEXT NOT NULL, training_cost TEXT NOT NULL, jobs INTEGER NOT NULL, "
            "inferences BIGINT NOT NULL, input_tokens BIGINT NOT NULL, cached_input_tokens BIGINT NOT NULL, "
            "output_tokens BIGINT NOT NULL, inference_cost TEXT NOT NULL, PRIMARY KEY (day, model)"
        ),
    }
    indexes = [("cost_jobs", "model_name"), ("inference_records", "model, at")]

    def apply(self, cur: Cursor, tables: dict[str, str], events: Sequence[LoggedEvent]) -> None:
        jobs: list[tuple[Any, ...]] = []
        inferences: list[tuple[int, list[dict[str, Any]]]] = []
        totals = {"cost_models": Totals(("model",)), "cost_daily": Totals(("day", "model"))}
        for logged in events:
            e = logged.event
            if isinstance(e, TrainingCost.Recorded):
                at = format_ts(e.at)
                jobs.append(
                    (e.job_id, e.model_name, e.base_model, e.dataset_size, e.training_tokens, e.epochs,
                     _text(e.training_hours), at, str(e.total_cost), e.cost_source, _text(e.unit_price), e.unit,
                     e.price_pattern, None if e.price_effective_from is None else format_ts(e.price_effective_from),
                     e.actor, logged.position)
                )  # fmt: skip
                totals["cost_models"].add((e.model_name,), training_cost=e.total_cost, jobs=1)
                totals["cost_daily"].add((at[:10], e.model_name), training_cost=e.total_cost, jobs=1)
            elif isinstance(e, InferenceBatch.Recorded):
                inferences.append((logged.position, e.records))
        if inferences:
            self._apply_inferences(cur, tables["inference_records"], inferences, totals)
        if jobs:
            cur.executemany(
                f"INSERT INTO {tables['cost_jobs']} ({_JOB_COLUMNS}) VALUES ({', '.join('?' * 16)})",
                jobs,
            )
        for table, batch in totals.items():
            batch.flush(cur, tables[table])

    @staticmethod
    def _apply_inferences(
        cur: Cursor, table: str, batches: list[tuple[int, list[dict[str, Any]]]], totals: dict[str, Totals]
    ) -> None:
        """Counts each record id once: ids stored by an earlier batch, or repeated in this one, are skipped."""
        ids = [r["id"] for _, records in batches for r in records]
        known = stored_ids(cur, table, ids)
        rows = []
        for position, records in batches:
            for r in records:
                if r["id"] in known:
                    continue
                known.add(r["id"])
                stamp = r["at"]  # already UTC with microseconds: the stored format
                rows.append(
                    (r["id"], r["model"], stamp, r["input_tokens"], r["cached_input_tokens"], r["output_tokens"],
                     r["latency_ms"], r["cost"], r["cost_source"], r["price"], r["is_fine_tuned"], r["ab_test"],
                     json.dumps(r["tags"]) if r["tags"] else None, r.get("version"), position)
                )  # fmt: skip
                cost = r["cost"]  # None: a gateway call nobody priced (counted, with no cost)
                amounts = {
                    "inferences": 1, "input_tokens": r["input_tokens"], "cached_input_tokens": r["cached_input_tokens"],
                    "output_tokens": r["output_tokens"], "inference_cost": Decimal(cost) if cost is not None else 0,
                }  # fmt: skip
                totals["cost_models"].add((r["model"],), **amounts)
                totals["cost_daily"].add((stamp[:10], r["model"]), **amounts)
        cur.executemany(
            f"INSERT INTO {table} (id, model, at, input_tokens, cached_input_tokens, output_tokens, latency_ms, cost, "
            f"cost_source, price, is_fine_tuned, ab_test, tags, version, position) VALUES ({', '.join('?' * 15)})",
            rows,
        )


def stored_ids(cur: Cursor, table: str, ids: Sequence[str], chunk: int = 900, *, key: str = "id") -> set[str]:
    """Which of `ids` are stored already (in chunks: SQLite limits the number of parameters)."""
    found: set[str] = set()
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        rows = cur.execute(f"SELECT {key} FROM {table} WHERE {key} IN ({', '.join('?' * len(part))})", part).fetchall()
        found.update(r[key] for r in rows)
    return found


#: the running totals of cost_models and cost_daily, with their types
TOTAL_COLUMNS: dict[str, type] = {
    "training_cost": Decimal,
    "jobs": int,
    "inferences": int,
    "input_tokens": int,
    "cached_input_tokens": int,
    "output_tokens": int,
    "inference_cost": Decimal,
}


class Totals:
    """A batch's additions to running totals, written once per row: read, add exactly, write."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.deltas: dict[tuple[str, ...], dict[str, Any]] = {}

    def add(self, key: tuple[str, ...], **amounts: Any) -> None:
        delta = self.deltas.setdefault(key, {})
        for column, amount in amounts.items():
            delta[column] = delta.get(column, 0) + amount

    def flush(self, cur: Cursor, table: str) -> None:
        if not self.deltas:
            return
        where = " AND ".join(f"{c} = ?" for c in self.keys)
        upserts = Upserts(table, self.keys)
        for key, delta in self.deltas.items():
            row = cur.execute(f"SELECT {', '.join(TOTAL_COLUMNS)} FROM {table} WHERE {where}", key).fetchone()
            new = {}
            for column, kind in TOTAL_COLUMNS.items():
                stored = kind(row[column]) if row else kind(0)
                total = stored + delta.get(column, 0)
                new[column] = str(total) if kind is Decimal else total
            upserts.set(key, **new)
        upserts.flush(cur)


# --------------------------------------------------------------------- queries


def _decimal(row: dict[str, Any], *columns: str) -> dict[str, Any]:
    return {**row, **{c: None if row[c] is None else Decimal(row[c]) for c in columns}}


def job_cost(db: Database, job_id: str) -> dict[str, Any] | None:
    with db.read() as cur:
        row = cur.execute(f"SELECT {_JOB_COLUMNS} FROM cost_jobs WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else _decimal(row, "total_cost", "unit_price", "training_hours")


def model_costs(db: Database, model: str) -> dict[str, Any] | None:
    """A model's training and inference totals, with its jobs."""
    with db.read() as cur:
        row = cur.execute(f"SELECT {_MODEL_COLUMNS} FROM cost_models WHERE model = ?", (model,)).fetchone()
        jobs = cur.execute(
            f"SELECT {_JOB_COLUMNS} FROM cost_jobs WHERE model_name = ? ORDER BY position", (model,)
        ).fetchall()
    if row is None:
        return None
    return (
        {"model": row["model"]}
        | _typed(row)
        | {"job_list": [_decimal(j, "total_cost", "unit_price", "training_hours") for j in jobs]}
    )


def stored_inference_ids(db: Database, ids: Sequence[str]) -> set[str]:
    # PostgreSQL takes up to 65,535 parameters, so one round trip holds a whole batch
    chunk = 10_000 if db.dialect == "postgresql" else 900
    with db.read() as cur:
        return stored_ids(cur, "inference_records", ids, chunk)


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    """Stored totals as numbers, with the cost per call (None before the first call)."""
    values = {c: kind(row[c]) for c, kind in TOTAL_COLUMNS.items()}
    calls = values["inferences"]
    return values | {"cost_per_call": values["inference_cost"] / calls if calls else None}


def cost_summary(db: Database, *, since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """Per model and overall: training cost and jobs, inference count, tokens, cost and cost per call;
    and the same per day and model. `since`/`until` (YYYY-MM-DD, inclusive) bound the days."""
    clauses, params = [], []
    if since:
        clauses.append("day >= ?")
        params.append(since)
    if until:
        clauses.append("day <= ?")
        params.append(until)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    with db.read() as cur:
        models = cur.execute(f"SELECT {_MODEL_COLUMNS} FROM cost_models ORDER BY model").fetchall()
        days = cur.execute(
            f"SELECT day, {_MODEL_COLUMNS} FROM cost_daily {where} ORDER BY day, model", params
        ).fetchall()
    overall = {c: sum((kind(m[c]) for m in models), kind(0)) for c, kind in TOTAL_COLUMNS.items()}
    return {
        "models": [{"model": m["model"]} | _typed(m) for m in models],
        "total": _typed(overall),
        "days": [{"day": d["day"], "model": d["model"]} | _typed(d) for d in days],
    }


_RECORD_COLUMNS = (
    "id, model, at, input_tokens, cached_input_tokens, output_tokens, latency_ms, cost, cost_source, price, "
    "is_fine_tuned, ab_test, tags, version, position"
)


def inference_costs(
    db: Database,
    *,
    model: str | None = None,
    since: str | None = None,
    until: str | None = None,
    after: tuple[str, str] | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Inference records filtered by model and time range (formatted UTC times, inclusive), a page
    at a time in (at, id) order, with exact totals over the whole filter. The totals read every
    matching record's cost: a report over millions of records takes seconds, not milliseconds
    (the cost summary answers per model and day from running totals)."""
    clauses, params = [], []
    for clause, value in (("model = ?", model), ("at >= ?", since), ("at <= ?", until)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    page_where = " AND ".join([*clauses, "(at > ? OR (at = ? AND id > ?))"]) if after else None
    with db.read() as cur:
        if after:
            page_params = [*params, after[0], after[0], after[1]]
            rows = cur.execute(
                f"SELECT {_RECORD_COLUMNS} FROM inference_records WHERE {page_where} ORDER BY at, id LIMIT ?",
                [*page_params, limit],
            ).fetchall()
        else:
            rows = cur.execute(
                f"SELECT {_RECORD_COLUMNS} FROM inference_records {where} ORDER BY at, id LIMIT ?", [*params, limit]
            ).fetchall()
        sums = cur.execute(
            "SELECT COUNT(*) AS inferences, COALESCE(SUM(input_tokens), 0) AS input_tokens, "
            "COALESCE(SUM(cached_input_tokens), 0) AS cached_input_tokens, "
            f"COALESCE(SUM(output_tokens), 0) AS output_tokens FROM inference_records {where}",
            params,
        ).fetchone()
        costs = cur.execute(f"SELECT cost FROM inference_records {where}", params).fetchall()
    total_cost = sum((Decimal(c["cost"]) for c in costs if c["cost"] is not None), Decimal(0))
    calls = int(sums["inferences"])
    records = [
        {**r, "cost": None if r["cost"] is None else Decimal(r["cost"]), "is_fine_tuned": bool(r["is_fine_tuned"]),
         "tags": json.loads(r["tags"]) if r["tags"] else []}
        for r in rows
    ]  # fmt: skip
    return {
        "records": records,
        "totals": {
            "inferences": calls,
            "input_tokens": int(sums["input_tokens"]),
            "cached_input_tokens": int(sums["cached_input_tokens"]),
            "output_tokens": int(sums["output_tokens"]),
            "inference_cost": total_cost,
            "cost_per_call": total_cost / calls if calls else None,
        },
    }
