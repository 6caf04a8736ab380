"""Live evaluation against a stand-in that speaks /v1/chat/completions, through the real `openai` SDK.

The stand-in answers deterministically (a hash of model and prompt decides whether the model "knows"
an answer), so an interrupted run that resumes must end with exactly the metrics of one that ran
through. The run is stopped halfway without sleeping: the stand-in holds request 101 until the test
has killed the command.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.http.app import create_app
from api.runtime import Runtime
from api.settings import Settings
from domain.errors import RuleViolation
from tests.support.openai_sandbox import SECRET_KEY, Sandbox, running_sandbox

FT_CLI = str(Path(sys.executable).parent / "ft-cli")
N = 200


def examples() -> list[dict]:
    return [{"example_id": f"q-{i:04d}", "prompt": f"Which team handles ticket number {i}?",
             "response": f"Ticket {i} goes to the {('billing', 'shipping', 'account')[i % 3]} team.",
             "rating": 5, "source": "distillation"} for i in range(N)]  # fmt: skip


@pytest.fixture
def stand_in(runtime: Runtime) -> Iterator[Sandbox]:
    with running_sandbox() as sandbox:
        sandbox.state.chat.answers = {e["prompt"]: e["response"] for e in examples()}
        sandbox.state.chat.accuracy = {"support-bot": 0.9}
        runtime.collect_examples(examples(), actor="alice")
        runtime.builds.build(actor="alice", dataset_id="tickets", train_ratio=0.5, seed=1)
        yield sandbox


def quality(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "latency"}  # latency is measured, so it differs run to run


def test_a_live_run_records_every_prediction_with_latency_tokens_and_cost(runtime: Runtime, stand_in: Sandbox) -> None:
    run = runtime.live_evaluations.run(model="support-bot", endpoint=stand_in.server.base_url, dataset_id="tickets",
                   split="all", concurrency=8, evaluation_id="full", actor="alice")  # fmt: skip
    assert (run.total, run.predicted_before, run.predicted_now) == (N, 0, N)
    accuracy = run.metrics["exact"]["accuracy"]
    assert 0.8 < accuracy < 1.0 and run.metrics["latency"]["p95_ms"] > 0
    assert stand_in.state.chat.requests == N
    evaluation = runtime.evaluation_results.get("full")
    assert evaluation["status"] == "completed" and evaluation["source"]["endpoint"] == stand_in.server.base_url


def test_a_run_killed_halfway_resumes_to_exactly_the_predictions_and_metrics_of_an_uninterrupted_one(
    runtime: Runtime, stand_in: Sandbox
) -> None:
    full = runtime.live_evaluations.run(model="support-bot", endpoint=stand_in.server.base_url, dataset_id="tickets",
                    split="all", concurrency=8, evaluation_id="full", actor="alice")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("FT_")} | {"FT_DATABASE_URL": runtime.config.url}
    command = [FT_CLI, "run-evaluation", "support-bot", "--endpoint", stand_in.server.base_url, "--dataset",
               "tickets", "--split", "all", "--concurrency", "8", "--evaluation-id", "halfway", "--json"]  # fmt: skip
    stand_in.state.chat.requests = 0
    stand_in.state.chat.pause_after = N // 2
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert stand_in.state.chat.paused.wait(timeout=120), "the run never reached the halfway point"
        first.send_signal(signal.SIGKILL)  # killed halfway, in the middle of requests
        first.wait(timeout=30)
    finally:
        stand_in.state.chat.pause_after = None
        stand_in.state.chat.release.set()
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    resumed = json.loads(again.stdout)
    assert 0 < resumed["predicted_before"] <= N // 2 and resumed["predicted_before"] + resumed["predicted_now"] == N
    runtime.engine.reach(runtime.engine.log.head())
    from projections.evaluations import predictions

    assert len(predictions(runtime.db, "halfway")) == N  # exactly: none lost, none twice
    evaluation = runtime.evaluation_results.get
    assert quality(evaluation("halfway")["metrics"]) == quality(evaluation("full")["metrics"])
    assert quality(resumed["metrics"]) == quality(json.loads(json.dumps(full.metrics, default=str)))


def test_an_endpoint_that_is_down_gets_a_clear_message_and_the_run_resumes(
    runtime: Runtime, stand_in: Sandbox
) -> None:
    endpoint = stand_in.server.base_url
    stand_in.server.stop()
    with pytest.raises(RuleViolation, match="0 of 200 predictions are recorded. Run the same command again"):
        runtime.live_evaluations.run(model="support-bot", endpoint=endpoint, dataset_id="tickets", split="all",
                                     concurrency=8, evaluation_id="down", actor="alice")  # fmt: skip
    stand_in.server.start()
    run = runtime.live_evaluations.run(model="support-bot", endpoint=endpoint, dataset_id="tickets", split="all",
                                       concurrency=8, evaluation_id="down", actor="alice")  # fmt: skip
    assert run.predicted_now == N and runtime.evaluation_results.get("down")["status"] == "completed"


def test_a_live_run_over_http_and_its_refusals(runtime: Runtime, stand_in: Sandbox) -> None:
    settings = Settings(database_url=runtime.config.url, read_wait_seconds=0.3, poll_jobs=False,
                        endpoints={"stand-in": {"base_url": stand_in.server.base_url, "api_key": SECRET_KEY}})
    client = TestClient(create_app(settings, runtime))
    body = {"evaluation_id": "http-run", "model": "support-bot", "model_type": "fine_tuned", "modes": ["exact"],
            "endpoint": "stand-in", "dataset_id": "tickets", "split": "all", "concurrency": 8}
    r = client.post("/v1/evaluations", json=body, headers={"X-Actor": "alice"})
    assert r.status_code == 201 and r.json()["metrics"]["n"] == N, r.text
    both = client.post("/v1/evaluations", json=body | {"evaluation_id": "x", "predictions": []})
    assert both.status_code == 422 and "no predictions" in both.json()["detail"]
    neither = client.post("/v1/evaluations", json={"model": "m", "model_type": "base"})
    assert neither.status_code == 422 and "Give predictions" in neither.json()["detail"]
    again = client.post("/v1/evaluations", json=body)
    assert again.status_code == 409 and "already completed" in again.json()["detail"]


def test_an_example_predicted_twice_counts_once(runtime: Runtime) -> None:
    from domain.evaluations import EvaluationSpec
    from projections.evaluations import predictions

    runtime.evaluations.start(EvaluationSpec.validate(evaluation_id="twice", model="m", model_type="base",
                                                      modes=["exact"]), actor="alice")  # fmt: skip
    row = {"prediction": "a", "reference": "a", "label": None, "latency_ms": 1.0, "cost": None}
    runtime.evaluations.record_predictions("twice", [row | {"example_id": "e1"}, row | {"example_id": "e2"}],
                                           actor="run-1")  # fmt: skip
    runtime.evaluations.record_predictions("twice", [row | {"example_id": "e2"}, row | {"example_id": "e3"}],
                                           actor="run-2")  # two runs resuming at once overlapped on e2
    runtime.engine.reach(runtime.engine.log.head())
    assert [p["example_id"] for p in predictions(runtime.db, "twice")] == ["e1", "e2", "e3"]
