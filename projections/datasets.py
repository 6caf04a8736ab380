"""Dataset builds and their members: which examples each dataset holds, in which split."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from domain.datasets import Dataset
from projections.database import Cursor, Database
from projections.engine import LoggedEvent, Projection
from projections.examples import COLUMNS as EXAMPLE_COLUMNS
from projections.examples import ExampleFilter, example_row
from projections.rows import format_ts

_COLUMNS = (
    "dataset_id, spec, content_hash, train, test, rejected, stats, rejected_list, created_at, created_by, position"
)


class DatasetProjection(Projection):
    name = "datasets"
    schema_version = 1
    event_classes = (Dataset.Built,)
    tables = {
        "datasets": (
            "dataset_id TEXT PRIMARY KEY, spec TEXT NOT NULL, content_hash TEXT NOT NULL, train INTEGER NOT NULL, "
            "test INTEGER NOT NULL, rejected INTEGER NOT NULL, stats TEXT NOT NULL, rejected_list TEXT NOT NULL, "
            "created_at TEXT NOT NULL, created_by TEXT, position BIGINT NOT NULL"
        ),
        "dataset_members": (
            "dataset_id TEXT NOT NULL, example_id TEXT NOT NULL, split TEXT NOT NULL, "
            "PRIMARY KEY (dataset_id, example_id)"
        ),
    }
    indexes = [("dataset_members", "example_id")]

    def apply(self, cur: Cursor, tables: dict[str, str], events: Sequence[LoggedEvent]) -> None:
        for logged in events:
            e = logged.event
            cur.execute(
                f"INSERT INTO {tables['datasets']} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (e.dataset_id, json.dumps(e.spec), e.content_hash, len(e.train_ids), len(e.test_ids),
                 len(e.rejected), json.dumps(e.stats), json.dumps(e.rejected), format_ts(e.timestamp), e.actor,
                 logged.position),
            )  # fmt: skip
            cur.executemany(
                f"INSERT INTO {tables['dataset_members']} (dataset_id, example_id, split) VALUES (?, ?, ?)",
                [(e.dataset_id, i, "train") for i in e.train_ids] + [(e.dataset_id, i, "test") for i in e.test_ids],
            )


# --------------------------------------------------------------------- queries


def _dataset(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "spec": json.loads(row["spec"]), "stats": json.loads(row["stats"]),
            "rejected_list": json.loads(row["rejected_list"])}  # fmt: skip


def get_dataset(db: Database, dataset_id: str) -> dict[str, Any] | None:
    with db.read() as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM datasets WHERE dataset_id = ?", (dataset_id,)).fetchone()
    return None if row is None else _dataset(row)


def list_datasets(db: Database, *, after: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    with db.read() as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM datasets WHERE dataset_id > ? ORDER BY dataset_id LIMIT ?", (after or "", limit)
        ).fetchall()
    return [_dataset(r) for r in rows]


def member_examples(db: Database, dataset_id: str, split: str) -> list[dict[str, Any]]:
    """The dataset's examples (content as collected), in example-id order."""
    cols = ", ".join(f"e.{c.strip()}" for c in EXAMPLE_COLUMNS.split(","))
    where, params = "m.dataset_id = ?", [dataset_id]
    if split != "all":
        where += " AND m.split = ?"
        params.append(split)
    with db.read() as cur:
        rows = cur.execute(
            f"SELECT {cols} FROM dataset_members m JOIN examples e ON e.example_id = m.example_id "
            f"WHERE {where} ORDER BY m.split DESC, e.example_id",
            params,
        ).fetchall()
    return [example_row(r) for r in rows]


def matching_examples(db: Database, f: ExampleFilter) -> list[dict[str, Any]]:
    where, params = f.where()
    with db.read() as cur:
        rows = cur.execute(f"SELECT {EXAMPLE_COLUMNS} FROM examples {where} ORDER BY example_id", params).fetchall()
    return [example_row(r) for r in rows]


def emptying_filter(db: Database, f: ExampleFilter) -> str | None:
    """When the filters leave no example: the first one (in order) that emptied the selection."""
    steps = [("min_rating", f.min_rating), ("domain", f.domain), ("task_type", f.task_type), ("source", f.source),
             ("since", f.since), ("until", f.until)]  # fmt: skip
    with db.read() as cur:
        if cur.execute("SELECT COUNT(*) AS n FROM examples").fetchone()["n"] == 0:
            return "(none: no examples are collected yet)"
        applied: dict[str, Any] = {}
        for name, value in steps:
            if value is None:
                continue
            applied[name] = value
            where, params = ExampleFilter(**applied).where()
            if cur.execute(f"SELECT COUNT(*) AS n FROM examples {where}", params).fetchone()["n"] == 0:
                return f"{name}={value!r}"
    return None
