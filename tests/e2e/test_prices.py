"""The price catalog over HTTP and the CLI, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.app import app
from api.runtime import Runtime


def test_the_shipped_prices_are_in_force_after_db_init(client: TestClient) -> None:
    prices = {p["model"]: p for p in client.get("/v1/prices").json()}
    assert prices["gpt-4o-mini-2024-07-18"]["training_per_1m"] == "3.00"
    assert prices["ft:gpt-4.1-2025-04-14:*"]["cached_input_per_1m"] == "0.75"
    assert prices["o4-mini-2025-04-16"]["training_per_hour"] == "100"
    assert prices["gpt-4o"]["source"].startswith("https://openai.com/api/pricing/")


def test_a_price_change_applies_from_its_effective_date_and_as_of_shows_the_older_one(client: TestClient) -> None:
    r = client.post(
        "/v1/prices",
        json={"model": "ft:gpt-4o-mini-2024-07-18:acme:*", "effective_from": "2026-12-01T00:00:00Z",
              "input_per_1m": "0.25", "output_per_1m": "1.00", "reason": "negotiated"},
        headers={"X-Actor": "finops"},
    )  # fmt: skip
    assert r.status_code == 201 and r.json()["price"]["input_per_1m"] == "0.25"
    name = "ft:gpt-4o-mini-2024-07-18:acme::abc"
    before = client.get("/v1/prices", params={"model": name, "as_of": "2026-11-30T23:59:59Z"}).json()
    after = client.get("/v1/prices", params={"model": name, "as_of": "2026-12-01T00:00:00Z"}).json()
    assert before[0]["model"] == "ft:gpt-4o-mini-2024-07-18:*" and before[0]["input_per_1m"] == "0.30"
    assert after[0]["model"] == "ft:gpt-4o-mini-2024-07-18:acme:*" and after[0]["input_per_1m"] == "0.25"


def test_an_invalid_price_is_refused_and_appends_nothing(client: TestClient, runtime: Runtime) -> None:
    head = runtime.engine.log.head()
    for body, phrase in [
        ({"model": "m", "effective_from": "2026-01-01T00:00:00Z", "input_per_1m": "-1"}, "input_per_1m"),
        ({"model": "m", "effective_from": "2026-01-01T00:00:00"}, "effective_from must be a time with its offset"),
        ({"model": "m", "effective_from": "2026-01-01T00:00:00Z"}, "at least one rate"),
        ({"model": "*", "effective_from": "2026-01-01T00:00:00Z", "gpu_hour": "0"}, "lone '*'"),
    ]:
        r = client.post("/v1/prices", json=body)
        assert r.status_code == 422 and phrase in r.json()["detail"], r.text
    assert runtime.engine.log.head() == head
    missing = client.get("/v1/prices", params={"model": "llama3"})
    assert missing.status_code == 404 and "set one with POST /v1/prices" in missing.json()["detail"]


def test_prices_set_and_list_through_the_cli(runtime: Runtime) -> None:
    runner = CliRunner()
    url = ["--database-url", runtime.config.url]
    done = runner.invoke(
        app, ["prices", "set", "llama3*", "--gpu-hour", "1.20", "--effective-from", "2026-01-01", *url]
    )
    assert done.exit_code == 0, done.stderr
    listed = runner.invoke(app, ["prices", "list", "--model", "llama3.2:1b", "--json", *url])
    assert listed.exit_code == 0 and '"gpu_hour": "1.20"' in listed.stdout
    assert runtime.ledger.price_for("llama3.2:1b", datetime.now(UTC)).gpu_hour == Decimal("1.20")
    refused = runner.invoke(app, ["prices", "set", "m", "--training", "1", "--training-per-hour", "2",
                                  "--effective-from", "2026-01-01", *url])  # fmt: skip
    assert refused.exit_code == 1 and "not both" in refused.stderr
