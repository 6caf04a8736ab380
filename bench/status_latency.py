"""Deployment-status latency must not grow with history: p50 at 1,000 events against 100,000.

The same 10 models in both stores; only the length of their history differs.
Measured over HTTP on loopback with a keep-alive client, and in-process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2

from api.runtime import Runtime
from bench.common import ThrowawayPostgres, fresh_store, p50_ms, percentile, running_server, timed
from projections.deployments import current_status
from tests.support.history import save_history

MODELS = 10
SAMPLES = 2000
WARMUP = 200
MODEL = "model-00003"


def _measure(url: str, events: int) -> dict[str, float]:
    rt = Runtime.open(url)
    try:
        save_history(rt.registry, models=MODELS, events_per_model=events // MODELS, chunk=1)
        rt.engine.catch_up()
        head = rt.engine.log.head()
        timed(lambda: current_status(rt.db, model=MODEL), WARMUP)
        in_process = timed(lambda: current_status(rt.db, model=MODEL), SAMPLES)
    finally:
        rt.close()
    with running_server(url) as base, httpx2.Client(base_url=base) as client:
        assert client.get(f"/v1/deployments/{MODEL}", params={"min_position": head}).status_code == 200
        timed(lambda: client.get(f"/v1/deployments/{MODEL}"), WARMUP)
        over_http = timed(lambda: client.get(f"/v1/deployments/{MODEL}"), SAMPLES)
    return {
        "events": head,
        "http_p50_ms": p50_ms(over_http),
        "http_p95_ms": percentile(over_http, 0.95) * 1000,
        "in_process_p50_ms": p50_ms(in_process),
    }


def run(pg: ThrowawayPostgres, tmp: Path, small: int = 1_000, large: int = 100_000) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for kind in ("sqlite", "postgresql"):
        per_size = {}
        for size in (small, large):
            with fresh_store(kind, pg, tmp, f"status_{kind}_{size}") as url:
                per_size[size] = _measure(url, size)
        results[kind] = {
            "small": per_size[small],
            "large": per_size[large],
            "http_ratio_large_to_small": per_size[large]["http_p50_ms"] / per_size[small]["http_p50_ms"],
            "in_process_ratio_large_to_small": per_size[large]["in_process_p50_ms"]
            / per_size[small]["in_process_p50_ms"],
        }
    return results
