"""Inference ingestion: the batch API path and the CLI import, against eventsourcing's raw insert.

The baseline is `recorder.insert_events` of the same number of events, already
encoded (one record each, 10,000 per call): what the store itself can take.
Ours does everything a real request does: parse, validate, price each record
from the catalog, check ids already counted, encode and append. On the API path
the server does not project while it ingests (FT_FOLLOW_PROJECTIONS=false, as
beside `ft-cli projections run` workers); a worker then projects the records,
and that rate is reported on its own.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2
from eventsourcing.persistence import StoredEvent

from api.runtime import Runtime
from bench.common import (
    ThrowawayPostgres,
    fresh_store,
    p50_ms,
    process_until_ready,
    python_bin,
    running_server,
    timed,
)
from projections.costs import cost_summary

BATCH = 10_000
MODELS = ["gpt-4o-mini", "ft:gpt-4o-mini-2024-07-18:acme::support", "gpt-4.1-nano"]
#: the baseline's events are never read by a projection: any topic will do
RAW_TOPIC = "bench.inference_ingest:RawRecord"


def records(n: int, seed: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "id": f"req-{i:08d}",
            "model": MODELS[i % 3],
            "at": f"2026-11-{1 + i % 28:02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
            "input_tokens": rng.randrange(4000),
            "output_tokens": rng.randrange(1000),
            "latency_ms": rng.randrange(50, 3000),
            "is_fine_tuned": i % 3 == 1,
        }
        for i in range(n)
    ]


def raw_insert_rate(url: str, data: list[dict[str, Any]]) -> float:
    """eventsourcing's own insert of one pre-encoded event per item, in calls of up to 10,000 events
    and 2 MB (a 5 MB call stalled in psycopg's pipeline against PostgreSQL here)."""
    encoded = [StoredEvent(uuid.uuid4(), 1, RAW_TOPIC, json.dumps(r).encode()) for r in data]
    calls, call, size = [], [], 0
    for event in encoded:
        if call and (len(call) == BATCH or size + len(event.state) > 2_000_000):
            calls.append(call)
            call, size = [], 0
        call.append(event)
        size += len(event.state)
    calls.append(call)
    rt = Runtime.open(url)
    try:
        started = time.perf_counter()
        for call in calls:
            rt.registry.recorder.insert_events(call)
        return len(encoded) / (time.perf_counter() - started)
    finally:
        rt.close()


def _post_batches(client: httpx2.Client, bodies: list[bytes]) -> int:
    """Posts every batch in order; returns the last one's log position."""
    position = 0
    for body in bodies:
        r = client.post("/v1/inferences", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 200 and r.json()["accepted"] == BATCH, r.text[:300]
        position = r.json()["position"]
    return position


def _summary_at(client: httpx2.Client, position: int) -> httpx2.Response:
    """The cost summary once the projections include `position`."""
    summary = client.get("/v1/costs/summary", params={"min_position": position})
    while summary.status_code == 503:  # each read waits up to FT_READ_WAIT_SECONDS on the server
        summary = client.get("/v1/costs/summary", params={"min_position": position})
    return summary


def _api(url: str, data: list[dict[str, Any]]) -> dict[str, float]:
    """Ingestion alone (the server does not project: FT_FOLLOW_PROJECTIONS=false), then a
    `projections run` worker catches up: two rates, not one contended for two CPUs."""
    bodies = [json.dumps({"records": data[k : k + BATCH]}).encode() for k in range(0, len(data), BATCH)]
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith("FT_")} | {"FT_DATABASE_URL": url}
    worker = [python_bin("ft-cli"), "projections", "run", "--interval", "0.05"]
    with (
        running_server(url, extra_env={"FT_FOLLOW_PROJECTIONS": "false", "FT_READ_WAIT_SECONDS": "60"}) as base,
        httpx2.Client(base_url=base, timeout=600) as client,
    ):
        started = time.perf_counter()
        position = _post_batches(client, bodies)
        ingested = time.perf_counter() - started
        with process_until_ready(worker, ready="Following", env=worker_env):
            started = time.perf_counter()
            summary = _summary_at(client, position)
            projected = time.perf_counter() - started
        assert summary.json()["total"]["inferences"] == len(data), summary.text[:300]
        http = timed(lambda: client.get("/v1/costs/summary"), 500)
    rt = Runtime.open(url)
    try:
        in_process = timed(lambda: cost_summary(rt.db), 500)
    finally:
        rt.close()
    return {
        "records_per_s": len(data) / ingested,
        "projected_per_s": len(data) / projected,
        "summary_http_p50_ms": p50_ms(http),
        "summary_in_process_p50_ms": p50_ms(in_process),
    }


def _default_serve(url: str, data: list[dict[str, Any]]) -> dict[str, float]:
    """What `make run` starts: `ft-cli serve` as configured by default, whose projection worker
    process follows the log while the server ingests. Two rates: records acknowledged per second,
    and records per second until the cost projection holds all of them (end to end)."""
    bodies = [json.dumps({"records": data[k : k + BATCH]}).encode() for k in range(0, len(data), BATCH)]
    with (
        running_server(url, extra_env={"FT_READ_WAIT_SECONDS": "60"}) as base,
        httpx2.Client(base_url=base, timeout=600) as client,
    ):
        started = time.perf_counter()
        position = _post_batches(client, bodies)
        ingested = time.perf_counter() - started
        summary = _summary_at(client, position)
        caught_up = time.perf_counter() - started
        assert summary.json()["total"]["inferences"] == len(data), summary.text[:300]
    return {"records_per_s": len(data) / ingested, "end_to_end_per_s": len(data) / caught_up}


def run_default_serve(pg: ThrowawayPostgres, tmp: Path, n: int) -> dict[str, Any]:
    """Ingestion through `ft-cli serve` in its default configuration, against raw `insert_events`."""
    data = records(n)
    results: dict[str, Any] = {"records": n}
    for kind in ("sqlite", "postgresql"):
        with fresh_store(kind, pg, tmp, f"serve_raw_{kind}") as url:
            raw = raw_insert_rate(url, data)
        with fresh_store(kind, pg, tmp, f"serve_api_{kind}") as url:
            api = _default_serve(url, data)
        results[kind] = {"raw_insert_events_per_s": raw, **api, "ratio": api["records_per_s"] / raw,
                         "end_to_end_ratio": api["end_to_end_per_s"] / raw}  # fmt: skip
    return results


def _cli(url: str, file: Path, n: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [python_bin("ft-cli"), "import-inferences", str(file), "--json", "--database-url", url],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-500:]
    assert json.loads(done.stdout)["accepted"] == n
    return n / elapsed


def run(pg: ThrowawayPostgres, tmp: Path, n: int) -> dict[str, Any]:
    data = records(n)
    file = tmp / "inferences.jsonl"
    with file.open("w") as f:
        for r in data:
            f.write(json.dumps(r) + "\n")
    results: dict[str, Any] = {"records": n}
    for kind in ("sqlite", "postgresql"):
        with fresh_store(kind, pg, tmp, f"ingest_raw_{kind}") as url:
            raw = raw_insert_rate(url, data)
        with fresh_store(kind, pg, tmp, f"ingest_api_{kind}") as url:
            api = _api(url, data)
        with fresh_store(kind, pg, tmp, f"ingest_cli_{kind}") as url:
            cli = _cli(url, file, n)
        results[kind] = {
            "raw_insert_events_per_s": raw,
            "api": api,
            "cli_records_per_s": cli,
            "api_ratio": api["records_per_s"] / raw,
            "cli_ratio": cli / raw,
        }
    file.unlink()
    return results
