"""A real local training run through the service, twice: the time estimate against the measured time.

The tests' tiny Llama model (random weights, about 100k parameters) trains for 200 steps on
this CPU, as a local job on the embedded store. The first run is estimated from FLOPs and the
hardware table; it records its measured throughput, and the second, identical run is estimated
from it. Both estimates are reported beside the measured wall time (process start to finish).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from adapters.local_jobs import LocalTrainer
from api.runtime import Runtime
from tests.support.tiny_model import build_tiny_llama

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
STEPS = 200


def _examples() -> list[dict[str, Any]]:
    return [{"example_id": f"add-{i:03d}", "prompt": f"What is {i} plus {i}? Answer briefly.",
             "response": f"{i} plus {i} is {2 * i}, since doubling {i} gives {2 * i}.", "system": "You add numbers.",
             "rating": 5, "source": "distillation"} for i in range(100)]  # fmt: skip


def _one_run(rt: Runtime, model: Path) -> dict[str, Any]:
    service = rt.job_service
    plan = service.plan(base_model=str(model), dataset_id="adding", provider="local", model_name="tiny-adder",
                        training_config={"chat_template": "chatml", "max_seq_length": 128, "load_in_4bit": False,
                                         "lora_r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"],
                                         "max_steps": STEPS, "batch_size": 4, "gradient_accumulation": 1})  # fmt: skip
    outcome = service.create(plan, actor="bench")
    os.waitpid(int((outcome.job.provider_job_id or "").removeprefix("pid-")), 0)
    done = service.sync(outcome.job.job_id, actor="bench")
    assert done.job.status == "succeeded", done.job.error
    rt.engine.reach(rt.engine.log.head())
    from projections.jobs import get_job

    job = get_job(rt.db, done.job.job_id)
    assert job is not None and job["timing"] is not None
    estimate = job["estimate"]["time"]
    actual = job["timing"]["wall_seconds"]
    return {"method": estimate["method"], "estimate_s": estimate["seconds"], "actual_s": actual,
            "train_s": job["timing"]["train_seconds"], "backend": job["timing"]["backend"],
            "ratio": max(estimate["seconds"], actual) / max(min(estimate["seconds"], actual), 1e-9)}  # fmt: skip


def run(tmp: Path) -> dict[str, Any]:
    texts = [e["system"] + " " + e["prompt"] + " " + e["response"] for e in _examples()]
    model = build_tiny_llama(tmp / "tiny-llama", texts)
    rt = Runtime.open(f"sqlite:///{tmp}/local.sqlite3", local_trainer=LocalTrainer(tmp / "runs", env=OFFLINE))
    try:
        rt.collect_examples(_examples(), actor="bench")
        rt.builds.build(actor="bench", dataset_id="adding", min_rating=4, train_ratio=0.9, seed=1)
        first = _one_run(rt, model)
        second = _one_run(rt, model)
    finally:
        rt.close()
    return {"steps": STEPS, "first": first, "second": second}


if __name__ == "__main__":
    import json

    with tempfile.TemporaryDirectory(prefix="ft-bench-local-") as tmp:
        print(json.dumps(run(Path(tmp)), indent=2))
