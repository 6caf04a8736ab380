"""A/B samples: ingestion through the batch API path against raw `insert_events`, the live
statistics endpoint at 1,000,000 samples, and the assignment endpoint under concurrent load."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2

from api.runtime import Runtime
from bench.common import ThrowawayPostgres, fresh_store, p50_ms, running_server, timed
from bench.inference_ingest import BATCH, raw_insert_rate

ASSIGNMENT_CLIENTS = 8
ASSIGNMENT_REQUESTS = 4_000  # per client


def samples(n: int, seed: int = 9) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {"sample_id": f"s-{i:08d}", "arm": "a" if i % 2 else "b", "correct": rng.random() < (0.70 if i % 2 else 0.72),
         "latency_ms": rng.randrange(80, 900), "cost": "0.0012" if i % 2 else "0.0009"}
        for i in range(n)
    ]  # fmt: skip


def _api(url: str, data: list[dict[str, Any]]) -> dict[str, float]:
    bodies = [json.dumps({"samples": data[k : k + BATCH]}).encode() for k in range(0, len(data), BATCH)]
    headers = {"content-type": "application/json"}
    # The server does not project while ingesting (as beside `projections run` workers); it catches
    # up afterwards, when the statistics are read.
    env = {"FT_FOLLOW_PROJECTIONS": "false", "FT_READ_WAIT_SECONDS": "60"}
    with running_server(url, extra_env=env) as base, httpx2.Client(base_url=base, timeout=600) as client:
        created = client.post("/v1/ab-tests", json={"test_id": "bench", "model_a": "base", "model_b": "tuned"})
        assert created.status_code == 201, created.text
        started = time.perf_counter()
        position = None
        for body in bodies:
            r = client.post("/v1/ab-tests/bench/samples", content=body, headers=headers)
            assert r.status_code == 200 and r.json()["accepted"] == BATCH, r.text[:300]
            position = r.json()["position"]
        ingested = time.perf_counter() - started
        rt = Runtime.open(url)
        try:
            started = time.perf_counter()
            rt.engine.catch_up()
            projected = time.perf_counter() - started
            in_process = timed(lambda: rt.ab_results.get("bench"), 300)
        finally:
            rt.close()
        live = client.get("/v1/ab-tests/bench", params={"min_position": position}).json()
        assert live["statistics"]["arms"]["a"]["n"] + live["statistics"]["arms"]["b"]["n"] == len(data)
        http = timed(lambda: client.get("/v1/ab-tests/bench"), 300)
        assignment_rate = _assignment_rate(base)
    return {
        "samples_per_s": len(data) / ingested,
        "projected_per_s": len(data) / projected,
        "live_http_p50_ms": p50_ms(http),
        "live_in_process_p50_ms": p50_ms(in_process),
        "assignment_requests_per_s": assignment_rate,
    }


def _assignment_rate(base: str) -> float:
    def client_run(k: int) -> int:
        with httpx2.Client(base_url=base, timeout=30) as c:
            for i in range(ASSIGNMENT_REQUESTS):
                r = c.get("/v1/ab-tests/bench/assignment", params={"unit": f"user-{k}-{i}"})
                assert r.status_code == 200
        return ASSIGNMENT_REQUESTS

    with httpx2.Client(base_url=base) as warm:
        warm.get("/v1/ab-tests/bench/assignment", params={"unit": "warm"})
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=ASSIGNMENT_CLIENTS) as pool:
        total = sum(pool.map(client_run, range(ASSIGNMENT_CLIENTS)))
    return total / (time.perf_counter() - started)


def run(pg: ThrowawayPostgres, tmp: Path, n: int) -> dict[str, Any]:
    data = samples(n)
    results: dict[str, Any] = {"samples": n, "assignment_clients": ASSIGNMENT_CLIENTS}
    for kind in ("sqlite", "postgresql"):
        with fresh_store(kind, pg, tmp, f"ab_raw_{kind}") as url:
            raw = raw_insert_rate(url, data)
        with fresh_store(kind, pg, tmp, f"ab_api_{kind}") as url:
            api = _api(url, data)
        results[kind] = {"raw_insert_events_per_s": raw, "api": api, "api_ratio": api["samples_per_s"] / raw}
    return results
