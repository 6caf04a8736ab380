"""On SQLite the read models live in a file of their own beside the events.

SQLite has one write lock per file. With the projections' tables in the events file, the
projection worker's batches and the server's inserts took turns on one lock; apart, the
worker writes the views file and reads the events file in a snapshot that blocks no writer.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from api.runtime import Runtime
from projections.costs import cost_summary
from projections.engine import QUARANTINE_TABLE, TRACKING_TABLE


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def _record(rt: Runtime, *ids: str) -> int:
    recorded = rt.record_inferences(
        [{"id": i, "model": "gpt-4o-mini", "input_tokens": 100, "output_tokens": 10, "latency_ms": 5,
          "is_fine_tuned": False} for i in ids],
        actor="alice",
    )  # fmt: skip
    assert recorded.recorded is not None
    return recorded.recorded.position


def test_the_read_models_live_in_their_own_file_and_the_idempotency_keys_stay_with_the_events(tmp_path) -> None:
    events = tmp_path / "events.sqlite3"
    Runtime.init_schema(f"sqlite:///{events}")

    views = tmp_path / "events.views.sqlite3"
    assert {TRACKING_TABLE, QUARANTINE_TABLE, "inference_records"} <= _tables(views)
    assert "idempotency_requests" not in _tables(views)
    assert "idempotency_requests" in _tables(events) and "stored_events" in _tables(events)
    assert TRACKING_TABLE not in _tables(events)


def test_a_projection_holding_the_views_write_lock_never_holds_up_a_command(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/events.sqlite3"
    rt = Runtime.open(url)
    holder = sqlite3.connect(tmp_path / "events.views.sqlite3", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # what a projection batch holds while it applies
        done: list[int] = []
        command = threading.Thread(target=lambda: done.append(_record(rt, "r-1", "r-2")))
        command.start()
        command.join(timeout=20)  # with one lock for both it would wait out the 30 s busy timeout
        assert done and done[0] == rt.engine.log.head()
        holder.execute("ROLLBACK")
        rt.engine.catch_up()
        assert cost_summary(rt.db)["total"]["inferences"] == 2
    finally:
        holder.close()
        rt.close()


def test_a_store_whose_read_models_were_in_the_events_file_rebuilds_them_in_the_views_file(tmp_path) -> None:
    events = tmp_path / "events.sqlite3"
    url = f"sqlite:///{events}"
    rt = Runtime.open(url)
    try:
        _record(rt, "a", "b", "c")
        with rt.events_db.transaction() as cur:  # the layout of earlier releases: views beside the events
            rt.engine.create_schema(cur)
    finally:
        rt.close()
    for leftover in tmp_path.glob("events.views.sqlite3*"):
        leftover.unlink()
    assert TRACKING_TABLE in _tables(events)

    Runtime.init_schema(url)

    assert TRACKING_TABLE not in _tables(events) and "inference_records" not in _tables(events)
    assert "stored_events" in _tables(events) and "idempotency_requests" in _tables(events)
    rt = Runtime.open(url)
    try:
        rt.engine.catch_up()
        assert cost_summary(rt.db)["total"]["inferences"] == 3
    finally:
        rt.close()
