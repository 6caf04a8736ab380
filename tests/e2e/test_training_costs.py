"""Training costs over HTTP and the CLI, on both stores: priced at the job's time, explained, exact."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.app import app
from api.runtime import Runtime
from tests.support.views import dump_views

JOB = {"model_name": "support-bot", "base_model": "gpt-4o-mini-2024-07-18", "dataset_size": 500}


def record(client: TestClient, job_id: str, **fields):
    return client.post("/v1/training-costs", json=JOB | {"job_id": job_id} | fields, headers={"X-Actor": "ci"})


def test_a_job_is_priced_with_the_training_price_in_force_at_its_time(client: TestClient) -> None:
    client.post("/v1/prices", json={"model": "gpt-4o-mini-2024-07-18", "effective_from": "2026-12-01T00:00:00Z",
                                    "training_per_1m": "2.50"})  # fmt: skip
    before = record(client, "ftjob-a", training_tokens=1_500_000, epochs=3, at="2026-11-30T12:00:00Z")
    after = record(client, "ftjob-b", training_tokens=1_500_000, epochs=3, at="2026-12-02T12:00:00Z")
    assert before.status_code == after.status_code == 201
    assert (before.json()["total_cost"], before.json()["unit_price"], before.json()["unit"]) == (
        "4.50",
        "3.00",
        "per_1m_tokens",
    )
    assert (after.json()["total_cost"], after.json()["unit_price"]) == ("3.75", "2.50")
    assert after.json()["price_effective_from"] == "2026-12-01T00:00:00.000000+00:00"
    # a later price change does not touch recorded costs
    client.post("/v1/prices", json={"model": "gpt-4o-mini-2024-07-18", "effective_from": "2026-11-01T00:00:00Z",
                                    "training_per_1m": "9.99"})  # fmt: skip
    assert client.get("/v1/costs/jobs/ftjob-a").json()["total_cost"] == "4.50"


def test_a_given_total_cost_is_kept_as_given(client: TestClient) -> None:
    r = record(client, "ftjob-c", training_tokens=10, total_cost="12.345")
    assert (r.json()["total_cost"], r.json()["cost_source"], r.json()["unit_price"]) == ("12.345", "given", None)


def test_the_model_cost_adds_up_its_jobs_exactly_and_survives_a_rebuild(client: TestClient, runtime: Runtime) -> None:
    for i, tokens in enumerate((1_000_001, 333_333, 7)):
        assert record(client, f"ftjob-{i}", training_tokens=tokens).status_code == 201
    costs = client.get("/v1/costs/models/support-bot").json()
    expected = sum(Decimal(t) * Decimal("3.00") / Decimal(1_000_000) for t in (1_000_001, 333_333, 7))
    assert Decimal(costs["training_cost"]) == expected and costs["jobs"] == 3
    assert [j["job_id"] for j in costs["job_list"]] == ["ftjob-0", "ftjob-1", "ftjob-2"]
    before = dump_views(runtime)
    runtime.engine.rebuild("costs")
    assert dump_views(runtime) == before


def test_refused_training_costs_say_why_and_append_nothing(client: TestClient, runtime: Runtime) -> None:
    assert record(client, "ftjob-1", training_tokens=100).status_code == 201
    head = runtime.engine.log.head()
    again = record(client, "ftjob-1", training_tokens=100)
    assert again.status_code == 409 and "already recorded" in again.json()["detail"]
    unpriced = record(client, "ftjob-2", training_tokens=100, base_model="llama3")
    assert unpriced.status_code == 409
    assert (
        "No price for 'llama3'" in unpriced.json()["detail"] and "ft-cli prices set llama3" in unpriced.json()["detail"]
    )
    negative = record(client, "ftjob-3", training_tokens=-5)
    assert negative.status_code == 422 and "training_tokens" in negative.json()["detail"]
    hourly = record(client, "ftjob-4", training_tokens=5, base_model="o4-mini-2025-04-16")
    assert hourly.status_code == 422 and "priced per hour" in hourly.json()["detail"]
    assert runtime.engine.log.head() == head
    assert client.get("/v1/costs/jobs/ftjob-9").status_code == 404


def test_hourly_and_gpu_hour_prices_use_the_training_hours(client: TestClient) -> None:
    client.post("/v1/prices", json={"model": "unsloth/*", "effective_from": "2026-01-01T00:00:00Z", "gpu_hour": "1.20"})
    o4 = record(client, "ftjob-o4", training_tokens=5, base_model="o4-mini-2025-04-16", training_hours="1.5")
    local = record(client, "local-1", training_tokens=5, base_model="unsloth/Llama-3.2-1B-Instruct-bnb-4bit",
                   training_hours="0.25")  # fmt: skip
    assert (o4.json()["total_cost"], o4.json()["unit"]) == ("150.0", "per_hour")
    assert (local.json()["total_cost"], local.json()["unit"]) == ("0.3000", "per_gpu_hour")


def test_record_training_cost_through_the_cli(runtime: Runtime) -> None:
    done = CliRunner().invoke(app, ["record-training-cost", "ftjob-x", "bot", "gpt-4.1-2025-04-14", "100", "2000000",
                                    "--epochs", "2", "--json", "--database-url", runtime.config.url])  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert '"total_cost": "50.00"' in done.stdout and '"price_pattern": "gpt-4.1-2025-04-14"' in done.stdout
