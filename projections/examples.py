"""Collected examples, each stored once by id, with its latest rating: the input of dataset builds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.examples import ExampleBatch, ExampleRating
from projections.costs import stored_ids
from projections.database import Cursor, Database
from projections.engine import LoggedEvent, Projection

COLUMNS = "example_id, prompt, response, system, messages, domain, task_type, rating, source, model, at, tags, position"


class ExamplesProjection(Projection):
    name = "examples"
    schema_version = 1
    event_classes = (ExampleBatch.Recorded, ExampleRating.Started, ExampleRating.Rated)
    tables = {
        "examples": (
            "example_id TEXT PRIMARY KEY, prompt TEXT, response TEXT, system TEXT, messages TEXT, domain TEXT, "
            "task_type TEXT, rating INTEGER, source TEXT NOT NULL, model TEXT, at TEXT NOT NULL, tags TEXT, "
            "position BIGINT NOT NULL"
        ),
    }
    indexes = [("examples", "at"), ("examples", "domain, task_type")]

    def apply(self, cur: Cursor, tables: dict[str, str], events: Sequence[LoggedEvent]) -> None:
        table = tables["examples"]
        rows: list[tuple[Any, ...]] = []
        ratings: list[tuple[int, str]] = []
        batches = [le for le in events if isinstance(le.event, ExampleBatch.Recorded)]
        known = stored_ids(cur, table, [e["example_id"] for le in batches for e in le.event.examples], key="example_id")
        for logged in events:
            e = logged.event
            if isinstance(e, ExampleBatch.Recorded):
                self._flush_ratings(cur, table, ratings)  # ratings before this batch apply to what is stored
                for x in e.examples:
                    if x["example_id"] in known:
                        continue
                    known.add(x["example_id"])
                    rows.append((x["example_id"], x["prompt"], x["response"], x["system"],
                                 None if x["messages"] is None else json.dumps(x["messages"]), x["domain"],
                                 x["task_type"], x["rating"], x["source"], x["model"], x["at"],
                                 json.dumps(x["tags"]) if x["tags"] else None, logged.position))  # fmt: skip
            else:  # a rating, in log order after the rows inserted so far
                self._flush_rows(cur, table, rows)
                ratings.append((e.rating, e.example_id))
        self._flush_ratings(cur, table, ratings)
        self._flush_rows(cur, table, rows)

    @staticmethod
    def _flush_rows(cur: Cursor, table: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            cur.executemany(f"INSERT INTO {table} ({COLUMNS}) VALUES ({', '.join('?' * 13)})", rows)
            rows.clear()

    @staticmethod
    def _flush_ratings(cur: Cursor, table: str, ratings: list[tuple[int, str]]) -> None:
        if ratings:
            cur.executemany(f"UPDATE {table} SET rating = ? WHERE example_id = ?", ratings)
            ratings.clear()


# --------------------------------------------------------------------- queries


@dataclass(frozen=True)
class ExampleFilter:
    min_rating: int | None = None
    domain: str | None = None
    task_type: str | None = None
    source: str | None = None
    since: str | None = None  # stored UTC timestamps, inclusive
    until: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for clause, value in (
            ("rating >= ?", self.min_rating), ("domain = ?", self.domain), ("task_type = ?", self.task_type),
            ("source = ?", self.source), ("at >= ?", self.since), ("at <= ?", self.until),
        ):  # fmt: skip
            if value is not None:
                clauses.append(clause)
                params.append(value)
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def example_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "messages": json.loads(row["messages"]) if row["messages"] else None,
            "tags": json.loads(row["tags"]) if row["tags"] else []}  # fmt: skip


def list_examples(
    db: Database, f: ExampleFilter, *, after: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    where, params = f.where()
    page = f"{where} {'AND' if where else 'WHERE'} example_id > ?"
    with db.read() as cur:
        rows = cur.execute(
            f"SELECT {COLUMNS} FROM examples {page} ORDER BY example_id LIMIT ?", [*params, after or "", limit]
        ).fetchall()
    return [example_row(r) for r in rows]


def stored_example_ids(db: Database, ids: Sequence[str]) -> set[str]:
    chunk = 10_000 if db.dialect == "postgresql" else 900
    with db.read() as cur:
        return stored_ids(cur, "examples", ids, chunk, key="example_id")
