"""The gateway's cost: added latency, throughput against calling the upstream directly, and chunk timing.

One run, one machine: the stand-in upstream (`ft-cli sandbox openai`, its own process) answers after a
fixed delay; `ft-cli serve` runs as `make run` starts it (SQLite, its projection worker process, call
recording on) with the upstream configured as an endpoint. Every figure compares a direct call and a
call through the gateway made in the same seconds:

* overhead, open loop: a direct and a gateway call start together at each tick, 50 and 200 ticks a
  second, buffered and streamed; the added p50/p99 latency (and time to the first chunk for streams)
  is the gateway's. At 50/s the calls go through the openai SDK; at 200/s through a raw aiohttp client,
  because the SDK alone would take the cores the measurement needs (its cost is the same on both paths).
* throughput: 32 keep-alive clients in a closed loop, direct then through the gateway; every gateway
  call's record is counted in the calls view afterwards.
* chunk timing: an upstream that sends a chunk every 20 ms, streamed through the gateway (100 answers);
  the spacing the client sees, beside the spacing of the same streams called directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import openai

from bench.common import percentile, running_server
from tests.support.gateway import ANSWER, MESSAGES, PROMPT, UPSTREAM_KEY
from tests.support.postgres_server import free_port
from tests.support.server import UVICORN_READY, process_until_ready

REPLY_DELAY = 0.02
CHUNK_INTERVAL = 0.02
TOKEN = "bench-token-0123456789abcdef"
MODEL = "support-bot"
SECONDS = 10.0
RATES = (50, 200)
CLIENTS = 32
THROUGHPUT_SECONDS = 8.0
STREAMS = 100


@contextmanager
def upstream() -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "api.cli", "sandbox", "openai", "--port", str(port), "--reply-delay", str(REPLY_DELAY)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FT_")} | {"PYTHONUNBUFFERED": "1"}
    with process_until_ready(cmd, ready=UVICORN_READY, env=env):
        root = f"http://127.0.0.1:{port}"
        httpx.post(f"{root}/_sandbox/chat", json={"answers": {PROMPT: ANSWER}}).raise_for_status()
        yield root


def chat(root: str, **settings: Any) -> None:
    httpx.post(f"{root}/_sandbox/chat", json=settings).raise_for_status()


def deploy(gateway: str, base: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = {"base_model": "gpt-4o-mini-2024-07-18", "job_id": "bench", "dataset_size": 1,
            "serving": {"upstream": "bench", "model": "ft:gpt-4o-mini-2024-07-18:bench::1"}}  # fmt: skip
    with httpx.Client(base_url=gateway, headers=auth, timeout=30) as api:
        api.post(f"/v1/models/{MODEL}/versions", json=body).raise_for_status()
        position = api.post(f"/v1/models/{MODEL}/deploy", json={"version": 1}).json()["position"]
        for _ in range(600):  # bounded: the routes follow the registry view within a projection step
            if api.get("/healthz").json()["gateway"]["routes_position"] >= position:
                return
            time.sleep(0.05)
    raise RuntimeError("the gateway's routes did not reach the deploy")


Call = Callable[[], Awaitable[tuple[float, float | None]]]


class Raw:
    """A light client: one aiohttp session; returns (latency, time to first chunk) of one call."""

    def __init__(self, base: str, key: str, model: str, session: aiohttp.ClientSession) -> None:
        self.url, self.model, self.session = base + "/chat/completions", model, session
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def call(self, stream: bool) -> tuple[float, float | None]:
        body = json.dumps({"model": self.model, "messages": MESSAGES, "stream": stream}).encode()
        started = time.perf_counter()
        async with self.session.post(self.url, data=body, headers=self.headers) as r:
            first = None
            if stream:
                async for _line in r.content:
                    if first is None:
                        first = time.perf_counter() - started
            else:
                await r.read()
            assert r.status == 200, r.status
        return time.perf_counter() - started, first


class Sdk:
    def __init__(self, base: str, key: str, model: str, *, units: bool = False) -> None:
        self.client = openai.AsyncOpenAI(base_url=base, api_key=key, max_retries=0)
        self.model, self.units, self.sent = model, units, 0

    async def call(self, stream: bool) -> tuple[float, float | None]:
        started = time.perf_counter()
        if not stream:
            self.sent += 1
            headers = {"X-FT-Unit": f"user-{self.sent}"} if self.units else None  # a new unit, a fresh arm draw
            await self.client.chat.completions.create(model=self.model, messages=MESSAGES,  # type: ignore[arg-type]
                                                      extra_headers=headers)  # fmt: skip
            return time.perf_counter() - started, None
        first = None
        async for _chunk in await self.client.chat.completions.create(model=self.model, messages=MESSAGES,  # type: ignore[arg-type]
                                                                     stream=True):  # fmt: skip
            if first is None:
                first = time.perf_counter() - started
        return time.perf_counter() - started, first


def _added(direct: list[tuple[float, float | None]], through: list[tuple[float, float | None]]) -> dict[str, Any]:
    d, g = [x[0] for x in direct], [x[0] for x in through]
    out = {"direct_p50_ms": percentile(d, 0.5) * 1000, "gateway_p50_ms": percentile(g, 0.5) * 1000,
           "direct_p99_ms": percentile(d, 0.99) * 1000, "gateway_p99_ms": percentile(g, 0.99) * 1000,
           "calls": len(g)}  # fmt: skip
    out["added_p50_ms"] = out["gateway_p50_ms"] - out["direct_p50_ms"]
    out["added_p99_ms"] = out["gateway_p99_ms"] - out["direct_p99_ms"]
    if direct and direct[0][1] is not None:
        df, gf = [x[1] for x in direct if x[1] is not None], [x[1] for x in through if x[1] is not None]
        out["added_ttfb_p50_ms"] = (percentile(gf, 0.5) - percentile(df, 0.5)) * 1000
        out["added_ttfb_p99_ms"] = (percentile(gf, 0.99) - percentile(df, 0.99)) * 1000
    return out


async def open_loop(direct: Any, through: Any, rate: int, stream: bool) -> dict[str, Any]:
    """At each tick a direct and a gateway call start together, whatever the earlier ones do."""
    results: dict[str, list[tuple[float, float | None]]] = {"direct": [], "gateway": []}
    tasks = []

    async def one(client: Any, into: str) -> None:
        results[into].append(await client.call(stream))

    start = time.perf_counter()
    for i in range(int(SECONDS * rate)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks += [asyncio.create_task(one(direct, "direct")), asyncio.create_task(one(through, "gateway"))]
    await asyncio.gather(*tasks)
    return _added(results["direct"], results["gateway"]) | {"rate": rate, "client": type(direct).__name__.lower()}


async def closed_loop(client: Raw) -> float:
    done = 0
    stop = time.perf_counter() + THROUGHPUT_SECONDS

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await client.call(False)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return done / (time.perf_counter() - started)


async def chunk_spacing(client: Raw) -> list[float]:
    gaps = []
    for _ in range(STREAMS):
        body = json.dumps({"model": client.model, "messages": MESSAGES, "stream": True}).encode()
        async with client.session.post(client.url, data=body, headers=client.headers) as r:
            last = None
            async for line in r.content:
                if not line.startswith(b"data: {"):
                    continue
                now = time.perf_counter()
                if last is not None:
                    gaps.append(now - last)
                last = now
    return gaps[1:]


def start_ab_test(gateway: str) -> None:
    """A second version and a test of version 1 against it: the gateway splits the model's calls."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = {"base_model": "gpt-4o-mini-2024-07-18", "job_id": "bench-2", "dataset_size": 1,
            "serving": {"upstream": "bench", "model": "ft:gpt-4o-mini-2024-07-18:bench::2"}}  # fmt: skip
    with httpx.Client(base_url=gateway, headers=auth, timeout=30) as api:
        api.post(f"/v1/models/{MODEL}/versions", json=body).raise_for_status()
        api.post("/v1/ab-tests", json={"test_id": "bench-ab", "model_a": f"{MODEL}@1",
                                       "model_b": f"{MODEL}@2"}).raise_for_status()  # fmt: skip
        for _ in range(600):  # bounded: the routes take the running test within a projection step
            r = api.post("/gateway/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES})
            if "x-ft-arm" in r.headers:
                return
            time.sleep(0.05)
    raise RuntimeError("the gateway did not take the A/B test")


def calls_per_arm(gateway: str, at_least: int) -> dict[str, int]:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(600):  # bounded: the worker projects the last samples
        arms = httpx.get(f"{gateway}/v1/ab-tests/bench-ab", headers=auth).json()["statistics"]["arms"]
        counts = {arm: arms[arm]["n"] for arm in ("a", "b")}
        if sum(counts.values()) >= at_least:
            return counts
        time.sleep(0.1)
    raise RuntimeError("the A/B samples were not written")


def recorded_calls(gateway: str) -> int:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    total, cursor = 0, None
    with httpx.Client(base_url=gateway, headers=auth, timeout=60) as api:
        while True:
            page = api.get("/v1/gateway/calls", params={"limit": 1000} | ({"cursor": cursor} if cursor else {}))
            total += len(page.json()["calls"])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return total


def run(tmp: Path, pg: Any = None) -> dict[str, Any]:
    from api.runtime import Runtime

    url = f"sqlite:///{tmp}/gateway.sqlite3"
    Runtime.init_schema(url)
    results: dict[str, Any] = {"reply_delay_ms": REPLY_DELAY * 1000, "overhead": []}
    with upstream() as root:
        base = root + "/v1"
        env = {"FT_API_TOKENS": f"bench:{TOKEN}", "FT_GATEWAY_JOURNAL_DIR": str(tmp / "journal"),
               "FT_ENDPOINTS": json.dumps({"bench": {"base_url": base, "api_key": UPSTREAM_KEY}})}  # fmt: skip
        with running_server(url, extra_env=env) as gateway:
            deploy(gateway, base)
            through_base = gateway + "/gateway/v1"

            async def measure() -> None:
                connector = aiohttp.TCPConnector(limit=0)
                async with aiohttp.ClientSession(connector=connector) as session:
                    raw_direct, raw_through = Raw(base, UPSTREAM_KEY, "m", session), Raw(through_base, TOKEN, MODEL,
                                                                                          session)  # fmt: skip
                    sdk_direct, sdk_through = Sdk(base, UPSTREAM_KEY, "m"), Sdk(through_base, TOKEN, MODEL)
                    for _ in range(50):  # warm both paths' connections
                        await raw_direct.call(False), await raw_through.call(False)
                    for rate in RATES:
                        direct, through = (sdk_direct, sdk_through) if rate == RATES[0] else (raw_direct, raw_through)
                        for stream in (False, True):
                            print(f"  overhead at {rate}/s, {'streamed' if stream else 'buffered'} ...", flush=True)
                            results["overhead"].append(await open_loop(direct, through, rate, stream)
                                                       | {"stream": stream})  # fmt: skip
                    print("  throughput ...", flush=True)
                    recorded_before = recorded_calls(gateway)
                    results["direct_calls_per_s"] = await closed_loop(raw_direct)
                    started = time.perf_counter()
                    gateway_rate = await closed_loop(raw_through)
                    results["gateway_calls_per_s"] = gateway_rate
                    results["gateway_calls"] = int(gateway_rate * (time.perf_counter() - started))
                    chat(root, chunk_interval=CHUNK_INTERVAL, delay=0)
                    print("  chunk timing ...", flush=True)
                    gaps = await chunk_spacing(raw_through)
                    direct_gaps = await chunk_spacing(raw_direct)
                    results["chunks"] = {
                        "interval_ms": CHUNK_INTERVAL * 1000, "gaps": len(gaps),
                        "p50_ms": percentile(gaps, 0.5) * 1000, "p99_ms": percentile(gaps, 0.99) * 1000,
                        "direct_p99_ms": percentile(direct_gaps, 0.99) * 1000,
                        "p99_off_ms": abs(percentile(gaps, 0.99) - CHUNK_INTERVAL) * 1000,
                    }  # fmt: skip
                    results["recorded_before_throughput"] = recorded_before
                    print("  overhead through an A/B test ...", flush=True)
                    chat(root, chunk_interval=0, delay=REPLY_DELAY)
                    start_ab_test(gateway)
                    split = Sdk(through_base, TOKEN, MODEL, units=True)
                    results["ab_overhead"] = await open_loop(sdk_direct, split, RATES[0], False) | {"stream": False}
                    results["ab_calls_per_arm"] = calls_per_arm(gateway, results["ab_overhead"]["calls"])
                    await split.client.close()
                    await sdk_direct.client.close()
                    await sdk_through.client.close()

            asyncio.run(measure())
            results["throughput_ratio"] = results["gateway_calls_per_s"] / results["direct_calls_per_s"]
            health = httpx.get(f"{gateway}/healthz").json()["gateway"]
            for _ in range(600):  # bounded: the worker projects the last batches
                if health["queued"] == 0 and recorded_calls(gateway) >= health["recorded"]:
                    break
                time.sleep(0.1)
                health = httpx.get(f"{gateway}/healthz").json()["gateway"]
            results["recorded"] = recorded_calls(gateway)
            results["dropped"] = health["dropped"]
    return results


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    g = r.get("gateway")
    if not g:
        return []
    out = []
    for o in g["overhead"]:
        kind = "streamed" if o["stream"] else "buffered"
        ttfb = (f"; first chunk +{o['added_ttfb_p50_ms']:.2f} / +{o['added_ttfb_p99_ms']:.2f} ms"
                if "added_ttfb_p50_ms" in o else "")  # fmt: skip
        target = "≤ 2 ms p50, ≤ 10 ms p99" if o["rate"] == 50 else "as it is"
        out.append((
            f"Gateway overhead, {kind}, {o['rate']} calls/s open loop ({o['client']} client, upstream replies after "
            f"{g['reply_delay_ms']:.0f} ms)",
            f"added p50 **{o['added_p50_ms']:+.2f} ms**, p99 **{o['added_p99_ms']:+.2f} ms** (direct "
            f"{o['direct_p50_ms']:.1f} / {o['direct_p99_ms']:.1f} ms; {o['calls']} calls){ttfb}",
            target,
        ))  # fmt: skip
    misses = ""
    if g["gateway_calls_per_s"] < 1000:
        misses = (f"; **misses** 1,000 calls/s: the stand-in upstream itself answers {g['direct_calls_per_s']:,.0f}/s "
                  "here, sharing the 2 cores with the gateway, its worker and the client")  # fmt: skip
    out.append((
        f"Gateway throughput, {CLIENTS} keep-alive clients, recording on",
        f"{g['gateway_calls_per_s']:,.0f} calls/s vs {g['direct_calls_per_s']:,.0f} direct "
        f"(**{g['throughput_ratio']:.2f}x**); all {g['recorded']:,} calls of the run recorded, {g['dropped']} "
        f"dropped{misses}",
        "≥ 0.6x direct, ≥ 1,000 calls/s",
    ))  # fmt: skip
    ab = g.get("ab_overhead")
    if ab:
        out.append((
            f"Gateway overhead through a running A/B test (sticky assignment, a sample per call), buffered, "
            f"{ab['rate']} calls/s open loop (sdk client)",
            f"added p50 **{ab['added_p50_ms']:+.2f} ms**, p99 **{ab['added_p99_ms']:+.2f} ms** (direct "
            f"{ab['direct_p50_ms']:.1f} / {ab['direct_p99_ms']:.1f} ms; {ab['calls']} calls, arms a/b "
            f"{g['ab_calls_per_arm']['a']}/{g['ab_calls_per_arm']['b']} samples)",
            "≤ 2 ms p50, ≤ 10 ms p99",
        ))  # fmt: skip
    c = g["chunks"]
    out.append((
        f"Stream chunk spacing through the gateway (upstream sends one every {c['interval_ms']:.0f} ms)",
        f"p50 {c['p50_ms']:.2f} ms, p99 {c['p99_ms']:.2f} ms (**{c['p99_off_ms']:.2f} ms** over the interval; "
        f"direct p99 {c['direct_p99_ms']:.2f} ms; {c['gaps']} gaps)"
        + ("; **misses** by the direct path's own jitter" if c["p99_off_ms"] > 2 else ""),
        "within 2 ms",
    ))  # fmt: skip
    return out


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ft-bench-") as folder:
        print(json.dumps(run(Path(folder)), indent=2))
