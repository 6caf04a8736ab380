"""ROI over HTTP and the CLI: the seed's examples, and figures taken from the cost ledger."""

from __future__ import annotations

import json
from decimal import Decimal

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.app import app
from api.runtime import Runtime

SEED = {"training_cost": "40", "base_cost_per_call": "0.002", "ft_cost_per_call": "0.002",
        "base_accuracy": "0.85", "ft_accuracy": "0.92"}  # fmt: skip


def test_the_seed_examples_over_http(client: TestClient) -> None:
    six_months = client.post("/v1/costs/roi", json=SEED | {"calls": 30_000}).json()
    assert (Decimal(six_months["net_benefit"]), Decimal(six_months["roi_percent"])) == (Decimal(20960), Decimal(52400))
    ten_thousand = client.post("/v1/costs/roi", json=SEED | {"calls": 10_000}).json()
    assert Decimal(ten_thousand["error_reduction_value"]) == Decimal(7000)


def test_roi_of_a_model_takes_its_training_cost_and_costs_per_call_from_the_ledger(
    client: TestClient, runtime: Runtime
) -> None:
    job = {"job_id": "ftjob-1", "model_name": "support-bot", "base_model": "gpt-4o-mini", "dataset_size": 500,
           "training_tokens": 1, "total_cost": "40"}  # fmt: skip
    client.post("/v1/training-costs", json=job)
    records = [{"id": f"ft-{i}", "model": "support-bot", "input_tokens": 1, "output_tokens": 1, "cost": "0.001"}
               for i in range(4)] + [{"id": f"base-{i}", "model": "gpt-4o-mini", "input_tokens": 1, "output_tokens": 1,
                                      "cost": "0.003"} for i in range(2)]  # fmt: skip
    position = client.post("/v1/inferences", json={"records": records}).json()["position"]
    runtime.engine.wait_for(position, timeout=30)
    r = client.post("/v1/costs/roi", json={"model": "support-bot", "base_model": "gpt-4o-mini", "base_accuracy": "0.85",
                                           "ft_accuracy": "0.92", "calls": 10_000})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sources"] == {"training_cost": "ledger:support-bot", "ft_cost_per_call": "ledger:support-bot",
                               "base_cost_per_call": "ledger:gpt-4o-mini"}  # fmt: skip
    assert Decimal(body["cost_savings"]) == Decimal("0.002") * 10_000
    assert Decimal(body["net_benefit"]) == Decimal(20) + Decimal(7000) - Decimal(40)


def test_roi_refusals_say_what_is_missing(client: TestClient) -> None:
    missing = client.post("/v1/costs/roi", json={"base_accuracy": "0.8", "ft_accuracy": "0.9", "calls": 5})
    assert missing.status_code == 422 and "training_cost is required" in missing.json()["detail"]
    unknown = client.post(
        "/v1/costs/roi", json={"model": "nobody", "base_accuracy": "0.8", "ft_accuracy": "0.9", "calls": 5}
    )
    assert unknown.status_code == 409 and "No costs are recorded for model 'nobody'" in unknown.json()["detail"]
    no_calls = client.post("/v1/costs/roi", json=SEED)
    assert no_calls.status_code == 422 and "Give the expected calls" in no_calls.json()["detail"]


def test_roi_through_the_cli_with_calls_per_day(runtime: Runtime) -> None:
    args = ["roi", "--training-cost", "40", "--base-cost-per-call", "0.002", "--ft-cost-per-call", "0.002",
            "--base-accuracy", "0.85", "--ft-accuracy", "0.92", "--calls-per-day", "100", "--days", "300", "--json",
            "--database-url", runtime.config.url]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["calls"], report["break_even_calls"]) == (30_000, 58)
    assert Decimal(report["roi_percent"]) == Decimal(52400)
