"""A/B test statistics: each test's settings and status, and per-arm sufficient statistics.

Per arm: n, correct, and for latency and cost the count, mean and sum of squared
deviations, merged batch by batch with Chan's parallel update (numerically
stable, unlike raw sums of squares), plus the exact cost total. Every statistic
is computed from these few numbers, so a live view costs the same at any volume.
A sample counts once per id; samples appended after a test's conclusion are not counted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from domain.ab_results import ArmStats
from domain.ab_testing import ABTest, CallFeedback, SampleBatch, TestConfig
from domain.statistics import Moments
from projections.costs import stored_ids
from projections.database import Cursor, Database
from projections.engine import LoggedEvent, Projection
from projections.rows import Upserts, format_ts

_SETTINGS = ("model_a", "model_b", "split", "alpha", "min_samples", "weight_accuracy", "weight_latency",
             "weight_cost", "match_mode", "gateway_model", "on_win", "guardrail_error_rate", "guardrail_p95_ms",
             "max_duration_s")  # fmt: skip
#: the settings of tests created before a setting existed
_DEFAULTS = {"on_win": "none"}
_ARM_COLUMNS = "n, correct, lat_mean, lat_m2, cost_mean, cost_m2, cost_total, rated, errors"


class ABStatsProjection(Projection):
    name = "ab_stats"
    # 2: gateway calls are samples whose outcome comes later (rated), with their errors; feedback
    # 3: the policy's settings, and a challenger stopped by a guardrail
    schema_version = 3
    event_classes = (ABTest.Created, ABTest.Concluded, ABTest.Abandoned, ABTest.ChallengerStopped,
                     SampleBatch.Recorded, CallFeedback.Given)  # fmt: skip
    tables = {
        "ab_tests": (
            "test_id TEXT PRIMARY KEY, model_a TEXT, model_b TEXT, split DOUBLE PRECISION, alpha DOUBLE PRECISION, "
            "min_samples INTEGER, weight_accuracy DOUBLE PRECISION, weight_latency DOUBLE PRECISION, "
            "weight_cost DOUBLE PRECISION, match_mode TEXT, gateway_model TEXT, on_win TEXT, "
            "guardrail_error_rate DOUBLE PRECISION, guardrail_p95_ms DOUBLE PRECISION, "
            "max_duration_s DOUBLE PRECISION, "
            "challenger_stopped TEXT, status TEXT, created_at TEXT, created_by TEXT, "
            "ended_at TEXT, ended_by TEXT, end_reason TEXT, concluded_position BIGINT, result TEXT"
        ),
        "ab_arms": (
            "test_id TEXT NOT NULL, arm TEXT NOT NULL, n BIGINT NOT NULL, correct BIGINT NOT NULL, "
            "lat_mean DOUBLE PRECISION NOT NULL, lat_m2 DOUBLE PRECISION NOT NULL, "
            "cost_mean DOUBLE PRECISION NOT NULL, cost_m2 DOUBLE PRECISION NOT NULL, cost_total TEXT NOT NULL, "
            "rated BIGINT NOT NULL, errors BIGINT NOT NULL, PRIMARY KEY (test_id, arm)"
        ),
        "ab_sample_ids": "id TEXT PRIMARY KEY",
    }

    def apply(self, cur: Cursor, tables: dict[str, str], events: Sequence[LoggedEvent]) -> None:
        tests = Upserts(tables["ab_tests"], ("test_id",))
        concluded: dict[str, int] = {}  # test -> the position its result covers, as of this batch
        arms: dict[tuple[str, str], ArmStats] = {}
        new_ids: list[tuple[str]] = []
        for logged in events:
            e = logged.event
            if isinstance(e, ABTest.Created):
                settings = {k: getattr(e, k, _DEFAULTS.get(k)) for k in _SETTINGS}
                tests.set((e.test_id,), **settings, status="running",
                          created_at=format_ts(e.timestamp), created_by=e.actor)  # fmt: skip
            elif isinstance(e, ABTest.Concluded):
                concluded[e.test_id] = e.position
                tests.set((e.test_id,), status="concluded", ended_at=format_ts(e.timestamp), ended_by=e.actor,
                          end_reason=e.reason, concluded_position=e.position, result=json.dumps(e.result))  # fmt: skip
            elif isinstance(e, ABTest.ChallengerStopped):
                stopped = {"at": format_ts(e.timestamp), "by": e.actor, "reason": e.reason, "breach": e.breach}
                tests.set((e.test_id,), challenger_stopped=json.dumps(stopped))
            elif isinstance(e, ABTest.Abandoned):
                tests.set((e.test_id,), status="abandoned", ended_at=format_ts(e.timestamp), ended_by=e.actor,
                          end_reason=e.reason)  # fmt: skip
            elif isinstance(e, CallFeedback.Given):
                if e.test_id is None or _after_conclusion(cur, tables, concluded, e.test_id, logged.position):
                    continue
                key = f"{e.test_id}:{e.call_id}"
                if key not in {k for (k,) in new_ids} and not stored_ids(cur, tables["ab_sample_ids"], [key]):
                    continue  # the call was not counted as a sample (its test had ended)
                arm_key = (e.test_id, e.arm)
                current = arms.get(arm_key) or _load_arm(cur, tables["ab_arms"], *arm_key)
                arms[arm_key] = replace(current, rated=current.outcomes + 1, correct=current.correct + e.correct)
            elif isinstance(e, SampleBatch.Recorded):
                if _after_conclusion(cur, tables, concluded, e.test_id, logged.position):
                    continue  # after the conclusion: never part of the result
                keys = [f"{e.test_id}:{s['sample_id']}" for s in e.samples]
                known = stored_ids(cur, tables["ab_sample_ids"], keys) | {k for (k,) in new_ids}
                by_arm: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
                for key, sample in zip(keys, e.samples, strict=True):
                    if key not in known:
                        known.add(key)
                        new_ids.append((key,))
                        by_arm[sample["arm"]].append(sample)
                for arm, samples in by_arm.items():
                    if samples:
                        key = (e.test_id, arm)
                        current = arms.get(key) or _load_arm(cur, tables["ab_arms"], *key)
                        arms[key] = _merge(current, samples)
        tests.flush(cur)
        cur.executemany(f"INSERT INTO {tables['ab_sample_ids']} (id) VALUES (?)", new_ids)
        upserts = Upserts(tables["ab_arms"], ("test_id", "arm"))
        for key, s in arms.items():
            upserts.set(key, n=s.n, correct=s.correct, lat_mean=s.latency.mean, lat_m2=s.latency.m2,
                        cost_mean=s.cost.mean, cost_m2=s.cost.m2, cost_total=str(s.cost_total), rated=s.outcomes,
                        errors=s.errors)  # fmt: skip
        upserts.flush(cur)


def _after_conclusion(cur: Cursor, tables: dict[str, str], concluded: dict[str, int], test_id: str,
                      position: int) -> bool:  # fmt: skip
    """Whether an event at `position` comes after its test's conclusion (and so is not counted)."""
    cutoff = concluded.get(test_id)
    if cutoff is None:
        cutoff = _concluded_position(cur, tables["ab_tests"], test_id)
        if cutoff is not None:
            concluded[test_id] = cutoff
    return cutoff is not None and position > cutoff


def _concluded_position(cur: Cursor, table: str, test_id: str) -> int | None:
    row = cur.execute(f"SELECT concluded_position FROM {table} WHERE test_id = ?", (test_id,)).fetchone()
    return None if row is None or row["concluded_position"] is None else int(row["concluded_position"])


def _row_to_arm(row: dict[str, Any] | None) -> ArmStats:
    if row is None:
        return ArmStats()
    n = int(row["n"])
    return ArmStats(
        n=n, correct=int(row["correct"]), latency=Moments(n, row["lat_mean"], row["lat_m2"]),
        cost=Moments(n, row["cost_mean"], row["cost_m2"]), cost_total=Decimal(row["cost_total"]),
        rated=int(row["rated"]), errors=int(row["errors"]),
    )  # fmt: skip


def _load_arm(cur: Cursor, table: str, test_id: str, arm: str) -> ArmStats:
    row = cur.execute(f"SELECT {_ARM_COLUMNS} FROM {table} WHERE test_id = ? AND arm = ?", (test_id, arm)).fetchone()
    return _row_to_arm(row)


def _merge(current: ArmStats, samples: list[dict[str, Any]]) -> ArmStats:
    costs = [Decimal(s["cost"]) for s in samples]
    return ArmStats(
        n=current.n + len(samples),
        correct=current.correct + sum(1 for s in samples if s["correct"]),
        latency=current.latency.merge(Moments.of([s["latency_ms"] for s in samples])),
        cost=current.cost.merge(Moments.of([float(c) for c in costs])),
        cost_total=current.cost_total + sum(costs, Decimal(0)),
        rated=current.outcomes + sum(1 for s in samples if s["correct"] is not None),
        errors=current.errors + sum(1 for s in samples if s.get("error")),
    )


# --------------------------------------------------------------------- queries


def _test(row: dict[str, Any]) -> dict[str, Any]:
    config = TestConfig(test_id=row["test_id"], **{k: row[k] for k in _SETTINGS})
    return {
        "config": config,
        "status": row["status"],
        "created_at": row["created_at"],
        "created_by": row["created_by"],
        "ended_at": row["ended_at"],
        "ended_by": row["ended_by"],
        "end_reason": row["end_reason"],
        "concluded_position": row["concluded_position"],
        "challenger_stopped": json.loads(row["challenger_stopped"]) if row["challenger_stopped"] else None,
        "result": json.loads(row["result"]) if row["result"] else None,
    }


def get_test(db: Database, test_id: str) -> dict[str, Any] | None:
    """A test with its per-arm sufficient statistics, in one snapshot."""
    with db.read() as cur:
        row = cur.execute("SELECT * FROM ab_tests WHERE test_id = ?", (test_id,)).fetchone()
        if row is None:
            return None
        arms = {
            r["arm"]: _row_to_arm(r)
            for r in cur.execute(f"SELECT arm, {_ARM_COLUMNS} FROM ab_arms WHERE test_id = ?", (test_id,)).fetchall()
        }
    return _test(row) | {"arms": (arms.get("a", ArmStats()), arms.get("b", ArmStats()))}


def list_tests(db: Database, *, after: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    with db.read() as cur:
        rows = cur.execute(
            "SELECT * FROM ab_tests WHERE test_id > ? ORDER BY test_id LIMIT ?", (after or "", limit)
        ).fetchall()
    return [_test(r) for r in rows]


def stored_sample_ids(db: Database, test_id: str, sample_ids: Sequence[str]) -> set[str]:
    keys = [f"{test_id}:{s}" for s in sample_ids]  # test ids never hold a colon
    chunk = 10_000 if db.dialect == "postgresql" else 900
    with db.read() as cur:
        found = stored_ids(cur, "ab_sample_ids", keys, chunk)
    return {k.split(":", 1)[1] for k in found}


def running_gateway_tests(db: Database) -> list[tuple[TestConfig, bool]]:
    """The running tests that split a registered model's gateway calls, oldest first, each with whether
    its challenger is stopped."""
    with db.read() as cur:
        rows = cur.execute("SELECT * FROM ab_tests WHERE status = 'running' AND gateway_model IS NOT NULL "
                           "ORDER BY created_at, test_id").fetchall()  # fmt: skip
    return [(_test(r)["config"], r["challenger_stopped"] is not None) for r in rows]


def running_tests_with_policy(db: Database) -> list[str]:
    with db.read() as cur:
        rows = cur.execute("SELECT test_id FROM ab_tests WHERE status = 'running' AND (on_win <> 'none' OR "
                           "guardrail_error_rate IS NOT NULL OR guardrail_p95_ms IS NOT NULL OR max_duration_s IS "
                           "NOT NULL) ORDER BY test_id").fetchall()  # fmt: skip
    return [r["test_id"] for r in rows]
