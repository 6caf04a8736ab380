"""The A/B assignment endpoint alone: requests/s with 8 keep-alive clients against `ft-cli serve` as
`make run` starts it, through the fast path and, in the same run, through the framework's route (the
same request with `min_position`, which the fast path leaves to the route)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench.common import running_server

CLIENTS = 8
SECONDS = 5.0


async def _rate(base: str, extra: str) -> float:
    done = 0
    stop = time.perf_counter() + SECONDS
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS)) as session:

        async def client(k: int) -> None:
            nonlocal done
            i = 0
            while time.perf_counter() < stop:
                async with session.get(f"{base}/v1/ab-tests/bench/assignment?unit=user-{k}-{i}{extra}") as r:
                    assert r.status == 200, r.status
                    await r.read()
                done += 1
                i += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(CLIENTS)))
        return done / (time.perf_counter() - started)


def run(tmp: Path) -> dict[str, Any]:
    from api.runtime import Runtime

    url = f"sqlite:///{tmp}/assignment.sqlite3"
    Runtime.init_schema(url)
    with running_server(url) as base:
        httpx.post(f"{base}/v1/ab-tests", json={"test_id": "bench", "model_a": "base",
                                                "model_b": "tuned"}).raise_for_status()  # fmt: skip
        httpx.get(f"{base}/v1/ab-tests/bench/assignment", params={"unit": "warm"}).raise_for_status()
        fast = asyncio.run(_rate(base, ""))
        route = asyncio.run(_rate(base, "&min_position=0"))
    return {"clients": CLIENTS, "fast_path_requests_per_s": fast, "route_requests_per_s": route}


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    a = r.get("ab_assignment")
    if not a:
        return []
    measured = (f"{a['fast_path_requests_per_s']:,.0f} requests/s ({a['route_requests_per_s']:,.0f}/s through the "
                f"framework's route, same run)")  # fmt: skip
    if a["fast_path_requests_per_s"] < 5000:
        measured += ("; **misses** 5,000: the 8 clients and the server share 2 CPUs, and each request still "
                     "costs uvicorn's HTTP parsing and a Python hash")  # fmt: skip
    return [(f"A/B assignment alone over HTTP, SQLite, {a['clients']} concurrent keep-alive clients (one aiohttp "
             "client process)", measured, "5,000 requests/s")]  # fmt: skip
