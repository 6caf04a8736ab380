"""Live evaluation against the chat-completions stand-in: requests/s at concurrency 1, 8 and 32, and the
overhead per prediction against calling the endpoint directly with the SDK, in the same run.

The stand-in answers each request after 20 ms (a model's latency, far below a real one's), so the
service's own work per prediction (the request through the SDK, pricing, recording in batches, the
projection) shows up in the difference rather than drowning in the model's time.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai

from api.runtime import Runtime
from sandbox.server import SandboxServer

N = 200
MODEL_DELAY = 0.02


def _examples() -> list[dict[str, Any]]:
    return [{"example_id": f"q-{i:04d}", "prompt": f"Which team handles ticket number {i}?",
             "response": f"Ticket {i} goes to the {('billing', 'shipping', 'account')[i % 3]} team.",
             "rating": 5, "source": "distillation"} for i in range(N)]  # fmt: skip


def run(tmp: Path) -> dict[str, Any]:
    rt = Runtime.open(f"sqlite:///{tmp}/live.sqlite3")
    results: dict[str, Any] = {"examples": N, "model_delay_ms": MODEL_DELAY * 1000, "by_concurrency": {}}
    try:
        rt.collect_examples(_examples(), actor="bench")
        rt.builds.build(actor="bench", dataset_id="tickets", train_ratio=0.5, seed=1)
        with SandboxServer() as sandbox:
            sandbox.state.chat.answers = {e["prompt"]: e["response"] for e in _examples()}
            sandbox.state.chat.delay = MODEL_DELAY
            prompts = [[{"role": "user", "content": e["prompt"]}] for e in _examples()]
            client = openai.OpenAI(base_url=sandbox.base_url, api_key="bench", max_retries=2)
            for concurrency in (1, 8, 32):
                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=concurrency) as pool:
                    list(pool.map(lambda m: client.chat.completions.create(model="support-bot", messages=m),
                                  prompts))  # fmt: skip
                direct = time.perf_counter() - started
                started = time.perf_counter()
                rt.live_evaluations.run(model="support-bot", endpoint=sandbox.base_url, dataset_id="tickets",
                                        split="all", concurrency=concurrency, evaluation_id=f"bench-c{concurrency}",
                                        actor="bench")  # fmt: skip
                ours = time.perf_counter() - started
                results["by_concurrency"][str(concurrency)] = {
                    "ours_per_s": N / ours, "direct_per_s": N / direct, "ratio": direct / ours,
                    "overhead_ms_per_prediction": (ours - direct) / N * 1000,
                }
            client.close()
    finally:
        rt.close()
    return results


if __name__ == "__main__":
    import json

    with tempfile.TemporaryDirectory(prefix="ft-bench-live-") as tmp:
        print(json.dumps(run(Path(tmp)), indent=2))
