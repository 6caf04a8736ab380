"""Collecting 200,000 examples and building a dataset from them; token counting against tiktoken alone.

Collecting goes through the batch API path (the server not projecting, as beside
`projections run` workers), against raw `insert_events` of as many pre-encoded
events. Building reads the projected examples, validates, counts tokens, dedupes,
splits, hashes and records the build; it is compared with raw insert too, and with
tiktoken encoding the same texts and nothing else.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import httpx2

from adapters import tokens
from api.runtime import Runtime
from bench.common import ThrowawayPostgres, fresh_store, running_server
from bench.inference_ingest import BATCH, raw_insert_rate
from domain.datasets import chat_messages

WORDS = (
    "account billing refund password invoice shipping order delivery return warranty subscription plan "
    "upgrade downgrade cancel renew address payment card bank transfer receipt tax discount coupon"
).split()


def examples(n: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)

    def sentence(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + "."

    return [
        {"example_id": f"ex-{i:08d}", "prompt": f"Q{i}: " + sentence(rng.randrange(8, 30)),
         "response": sentence(rng.randrange(20, 80)), "domain": rng.choice(("billing", "support", "sales")),
         "task_type": rng.choice(("qa", "summarise")), "rating": rng.choice((3, 4, 4, 5, 5)),
         "source": "distillation", "model": "gpt-4.1", "at": "2026-11-01T00:00:00Z"}
        for i in range(n)
    ]  # fmt: skip


def _collect(url: str, data: list[dict[str, Any]]) -> float:
    bodies = [json.dumps({"examples": data[k : k + BATCH]}).encode() for k in range(0, len(data), BATCH)]
    with (
        running_server(url, extra_env={"FT_FOLLOW_PROJECTIONS": "false"}) as base,
        httpx2.Client(base_url=base, timeout=600) as client,
    ):
        started = time.perf_counter()
        for body in bodies:
            r = client.post("/v1/examples", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 200 and r.json()["accepted"] == BATCH, r.text[:300]
        return len(data) / (time.perf_counter() - started)


def _build(url: str) -> dict[str, Any]:
    rt = Runtime.open(url)
    try:
        started = time.perf_counter()
        rt.engine.catch_up()
        projected = time.perf_counter() - started
        started = time.perf_counter()
        built = rt.builds.build(actor="bench", dataset_id="bench", min_rating=1)
        seconds = time.perf_counter() - started
    finally:
        rt.close()
    stats = built.build.stats
    return {"examples": stats["examples"] + stats["rejected"], "projected_s": projected, "build_s": seconds,
            "total_tokens": stats["total_tokens"]}  # fmt: skip


def _counting(data: list[dict[str, Any]]) -> dict[str, float]:
    """Our chat count against tiktoken encoding the same message texts and nothing else."""
    encoding = tokens.get_encoding("o200k_base")
    chats = [chat_messages(e) for e in data]
    texts = [[m["content"] for m in c] for c in chats]
    for c in chats[:1000]:  # warm both paths
        tokens.count_chat(c, encoding)
    started = time.perf_counter()
    counted = sum(tokens.count_chat(c, encoding) for c in chats)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    encoded = sum(len(encoding.encode(t)) for ts in texts for t in ts)
    alone_s = time.perf_counter() - started
    return {"ours_examples_per_s": len(data) / ours_s, "ours_tokens_per_s": counted / ours_s,
            "tiktoken_examples_per_s": len(data) / alone_s, "tiktoken_tokens_per_s": encoded / alone_s}  # fmt: skip


def run(pg: ThrowawayPostgres, tmp: Path, n: int) -> dict[str, Any]:
    data = examples(n)
    counting = _counting(data)
    results: dict[str, Any] = {"examples": n, "counting": counting}
    for kind in ("sqlite", "postgresql"):
        with fresh_store(kind, pg, tmp, f"ds_raw_{kind}") as url:
            raw = raw_insert_rate(url, data)
        with fresh_store(kind, pg, tmp, f"ds_{kind}") as url:
            collect = _collect(url, data)
            build = _build(url)
        build_rate = build["examples"] / build["build_s"]
        results[kind] = {
            "raw_insert_events_per_s": raw,
            "collect_examples_per_s": collect,
            "collect_ratio_raw": collect / raw,
            "projected_examples_per_s": n / build["projected_s"],
            "build_examples_per_s": build_rate,
            "build_ratio_raw": build_rate / raw,
            "build_ratio_tiktoken": build_rate / counting["tiktoken_examples_per_s"],
        }
    return results
