"""The calls view: every call that went through the gateway, and its statistics.

It reads the inference path's batches and keeps the records the gateway wrote (`source: gateway`),
each id once. Statistics are computed from the rows of the asked time range (default: the last day),
so their percentiles are exact; a range of millions of calls takes seconds, as the inference report does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from domain.ab_testing import CallFeedback
from domain.gateway_calls import OK, SOURCE
from domain.inference import InferenceBatch
from projections.costs import stored_ids
from projections.database import Cursor, Database
from projections.engine import LoggedEvent, Projection
from projections.rows import format_ts

_INSERTED = (
    "id, at, model, version, requested, endpoint, stream, caller, status, upstream, upstream_model, http_status, "
    "error_kind, input_tokens, cached_input_tokens, output_tokens, estimated, latency_ms, ttfb_ms, cost, "
    "cost_source, price, arm, ab_test, fallback_from, attempts, position"
)
_COLUMNS = _INSERTED + ", feedback_correct, feedback_score, feedback_at"


class GatewayCallsProjection(Projection):
    name = "gateway_calls"
    # 2: the A/B test of a call, and the feedback on it
    schema_version = 2
    event_classes = (InferenceBatch.Recorded, CallFeedback.Given)
    tables = {
        "gateway_calls": (
            "id TEXT PRIMARY KEY, at TEXT NOT NULL, model TEXT NOT NULL, version INTEGER, requested TEXT NOT NULL, "
            "endpoint TEXT NOT NULL, stream BOOLEAN NOT NULL, caller TEXT NOT NULL, status TEXT NOT NULL, "
            "upstream TEXT, upstream_model TEXT, http_status INTEGER, error_kind TEXT, input_tokens BIGINT NOT NULL, "
            "cached_input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, estimated BOOLEAN NOT NULL, "
            "latency_ms DOUBLE PRECISION NOT NULL, ttfb_ms DOUBLE PRECISION, cost TEXT, cost_source TEXT NOT NULL, "
            "price TEXT, arm TEXT, ab_test TEXT, fallback_from TEXT, attempts TEXT NOT NULL, position BIGINT NOT NULL, "
            "feedback_correct BOOLEAN, feedback_score DOUBLE PRECISION, feedback_at TEXT"
        ),
    }
    indexes = [("gateway_calls", "at"), ("gateway_calls", "model, at")]

    def apply(self, cur: Cursor, tables: dict[str, str], events: Sequence[LoggedEvent]) -> None:
        table = tables["gateway_calls"]
        calls = [(logged.position, r) for logged in events if isinstance(logged.event, InferenceBatch.Recorded)
                 for r in logged.event.records if r.get("source") == SOURCE]  # fmt: skip
        self._insert(cur, table, calls)
        feedback = [(e.correct, e.score, format_ts(e.timestamp), e.call_id) for e in (x.event for x in events)
                    if isinstance(e, CallFeedback.Given)]  # fmt: skip
        if feedback:  # a call's feedback follows its record in the log (the command reads the record)
            cur.executemany(f"UPDATE {table} SET feedback_correct = ?, feedback_score = ?, feedback_at = ? "
                            "WHERE id = ?", feedback)  # fmt: skip

    @staticmethod
    def _insert(cur: Cursor, table: str, calls: list[tuple[int, dict[str, Any]]]) -> None:
        if not calls:
            return
        known = stored_ids(cur, table, [r["id"] for _, r in calls])
        rows = []
        for position, r in calls:
            if r["id"] in known:
                continue
            known.add(r["id"])
            c = r["call"]
            rows.append(
                (r["id"], r["at"], r["model"], r["version"], c["requested"], c["endpoint"], c["stream"], c["caller"],
                 c["status"], c["upstream"], c["upstream_model"], c["http_status"], c["error_kind"],
                 r["input_tokens"], r["cached_input_tokens"], r["output_tokens"], c["estimated"], r["latency_ms"],
                 c["ttfb_ms"], r["cost"], r["cost_source"], r["price"], c["arm"], r["ab_test"], c["fallback_from"],
                 json.dumps(c["attempts"]), position)
            )  # fmt: skip
        cur.executemany(f"INSERT INTO {table} ({_INSERTED}) VALUES ({', '.join('?' * 27)})", rows)


# --------------------------------------------------------------------- queries


def _where(filters: dict[str, Any]) -> tuple[list[str], list[Any]]:
    clauses, params = [], []
    for column, op in (("model", "="), ("version", "="), ("arm", "="), ("ab_test", "="), ("status", "="),
                       ("caller", "=")):  # fmt: skip
        if filters.get(column) is not None:
            clauses.append(f"{column} {op} ?")
            params.append(filters[column])
    if filters.get("since") is not None:
        clauses.append("at >= ?")
        params.append(filters["since"])
    if filters.get("until") is not None:
        clauses.append("at <= ?")
        params.append(filters["until"])
    return clauses, params


def _call(row: dict[str, Any]) -> dict[str, Any]:
    feedback = None if row["feedback_at"] is None else {
        "correct": bool(row["feedback_correct"]), "score": row["feedback_score"], "at": row["feedback_at"]}  # fmt: skip
    return {**row, "stream": bool(row["stream"]), "estimated": bool(row["estimated"]), "feedback": feedback,
            "cost": None if row["cost"] is None else Decimal(row["cost"]),
            "attempts": json.loads(row["attempts"])}  # fmt: skip


def list_calls(db: Database, *, after: tuple[str, str] | None = None, limit: int = 100, **filters: Any) -> list[dict]:
    """Calls in (at, id) order, newest last, a page after the cursor `after`."""
    clauses, params = _where(filters)
    if after is not None:
        clauses.append("(at > ? OR (at = ? AND id > ?))")
        params += [after[0], after[0], after[1]]
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    with db.read() as cur:
        rows = cur.execute(f"SELECT {_COLUMNS} FROM gateway_calls {where} ORDER BY at, id LIMIT ?",
                           [*params, limit]).fetchall()  # fmt: skip
    return [_call(r) for r in rows]


def get_call(db: Database, call_id: str) -> dict[str, Any] | None:
    with db.read() as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM gateway_calls WHERE id = ?", (call_id,)).fetchone()
    return None if row is None else _call(row)


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile of sorted `values` (None for none)."""
    if not values:
        return None
    rank = max(1, -(-len(values) * q // 100))  # ceil(n * q / 100)
    return values[int(rank) - 1]


class _Stats:
    __slots__ = ("calls", "errors", "latencies", "ttfbs", "input_tokens", "output_tokens", "estimated", "cost",
                 "unpriced", "fallbacks", "rated", "correct")  # fmt: skip

    def __init__(self) -> None:
        self.calls = self.errors = self.input_tokens = self.output_tokens = self.estimated = 0
        self.unpriced = self.fallbacks = self.rated = self.correct = 0
        self.latencies: list[float] = []
        self.ttfbs: list[float] = []
        self.cost = Decimal(0)

    def add(self, row: dict[str, Any]) -> None:
        self.calls += 1
        self.errors += row["status"] != OK
        self.latencies.append(row["latency_ms"])
        if row["ttfb_ms"] is not None:
            self.ttfbs.append(row["ttfb_ms"])
        self.input_tokens += row["input_tokens"]
        self.output_tokens += row["output_tokens"]
        self.estimated += bool(row["estimated"])
        self.fallbacks += row["fallback_from"] is not None
        if row["feedback_correct"] is not None:
            self.rated += 1
            self.correct += bool(row["feedback_correct"])
        if row["cost"] is None:
            self.unpriced += 1
        else:
            self.cost += Decimal(row["cost"])

    def as_dict(self) -> dict[str, Any]:
        self.latencies.sort()
        self.ttfbs.sort()
        return {
            "calls": self.calls, "errors": self.errors, "error_rate": self.errors / self.calls if self.calls else 0.0,
            "latency_p50_ms": percentile(self.latencies, 50), "latency_p95_ms": percentile(self.latencies, 95),
            "ttfb_p50_ms": percentile(self.ttfbs, 50), "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens, "estimated_calls": self.estimated, "cost": self.cost,
            "unpriced_calls": self.unpriced, "fallbacks": self.fallbacks, "rated_calls": self.rated,
            "accuracy": self.correct / self.rated if self.rated else None,
        }  # fmt: skip


def call_stats(db: Database, *, bucket: str = "minute", **filters: Any) -> dict[str, Any]:
    """Per model and version: calls, errors, latency p50/p95, tokens and cost over the filter, and the same
    per `bucket` (minute or day) of the call's time."""
    clauses, params = _where(filters)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    width = 16 if bucket == "minute" else 10  # 2026-12-02T14:05 | 2026-12-02
    totals: dict[tuple[str, int | None], _Stats] = {}
    series: dict[tuple[str, str, int | None], _Stats] = {}
    with db.read() as cur:
        rows = cur.execute(
            "SELECT at, model, version, status, latency_ms, ttfb_ms, input_tokens, output_tokens, estimated, cost, "
            f"fallback_from, feedback_correct FROM gateway_calls {where}", params,
        ).fetchall()  # fmt: skip
    for row in rows:
        key = (row["model"], row["version"])
        totals.setdefault(key, _Stats()).add(row)
        series.setdefault((row["at"][:width], *key), _Stats()).add(row)
    return {
        "models": [{"model": m, "version": v} | s.as_dict() for (m, v), s in sorted(totals.items(), key=_order)],
        "series": [{"bucket": b, "model": m, "version": v} | s.as_dict()
                   for (b, m, v), s in sorted(series.items(), key=_order)],
    }  # fmt: skip


def _order(item: tuple[tuple[Any, ...], Any]) -> tuple[Any, ...]:
    return tuple(-1 if k is None else k for k in item[0])


def arm_latency_p95(db: Database, test_id: str, arm: str) -> float | None:
    """The p95 latency of an A/B arm's gateway calls."""
    with db.read() as cur:
        rows = cur.execute("SELECT latency_ms FROM gateway_calls WHERE ab_test = ? AND arm = ?", (test_id, arm))
        latencies = sorted(r["latency_ms"] for r in rows.fetchall())
    return percentile(latencies, 95)
