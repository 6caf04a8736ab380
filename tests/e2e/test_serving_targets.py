"""Where a version answers calls: set with its registration or on its own, audited, shown with the version,
over HTTP and the CLI, on both stores."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.app import app
from api.runtime import Runtime
from tests.e2e.conftest import register

ALICE = {"X-Actor": "alice"}
FT = {"upstream": "openai", "model": "ft:gpt-4o-mini-2024-07-18:acme::abc123"}
runner = CliRunner()


def version(client: TestClient, number: int = 1) -> dict:
    return client.get(f"/v1/models/support-bot/versions/{number}").json()


def test_a_version_registered_with_its_serving_target_shows_it(client: TestClient) -> None:
    register(client, serving=FT)
    assert version(client)["serving"] == FT


def test_setting_the_target_is_an_audited_event_and_null_serves_nowhere(client: TestClient) -> None:
    register(client)
    assert version(client)["serving"] is None
    there = {"base_url": "http://127.0.0.1:11434/v1", "model": "support-bot:v1"}
    r = client.put("/v1/models/support-bot/versions/1/serving", json={"serving": there, "reason": "on the GPU box"},
                   headers={"X-Actor": "bob"})  # fmt: skip
    assert r.status_code == 200 and r.json()["serving"] == there and r.headers["ETag"] == f'"{r.json()["etag"]}"'
    assert version(client)["serving"] == there
    cleared = client.put("/v1/models/support-bot/versions/latest/serving", json={"serving": None}, headers=ALICE)
    assert cleared.status_code == 200 and version(client)["serving"] is None
    audit = client.get("/v1/audit", params={"type": "ServingChanged"}).json()["items"]
    assert [(e["actor"], e["reason"], e["version"]) for e in audit] == [("bob", "on the GPU box", 1),
                                                                        ("alice", None, 1)]


def test_a_bad_target_is_refused_saying_why_and_records_nothing(client: TestClient, runtime: Runtime) -> None:
    register(client)
    head = runtime.engine.log.head()
    cases = [
        ({"serving": {"model": "m"}}, "exactly one"),
        ({"serving": {"base_url": "https://u:sk-secret@host/v1", "model": "m"}}, "takes no user:password"),
        ({"serving": {"upstream": "openai", "model": "m", "api_key": "sk-secret"}}, "unknown fields 'api_key'"),
        ({"serving": "https://host/v1"}, "Input should be a valid dictionary"),
        ({}, "serving"),
    ]
    for body, message in cases:
        r = client.put("/v1/models/support-bot/versions/1/serving", json=body, headers=ALICE)
        assert r.status_code == 422 and message in r.text and "sk-secret" not in r.text, (body, r.text)
    bad = client.post("/v1/models/support-bot/versions", json={"base_model": "b", "job_id": "j", "dataset_size": 1,
                      "serving": {"upstream": "not valid!", "model": "m"}}, headers=ALICE)  # fmt: skip
    assert bad.status_code == 422 and "serving.upstream must be an upstream's name" in bad.text
    assert client.put("/v1/models/support-bot/versions/9/serving", json={"serving": FT}).status_code == 404
    assert runtime.engine.log.head() == head


def test_a_stale_if_match_is_refused_with_412(client: TestClient) -> None:
    registered = register(client)
    client.put("/v1/models/support-bot/versions/1/serving", json={"serving": FT}, headers=ALICE)
    stale = client.put("/v1/models/support-bot/versions/1/serving", json={"serving": None},
                       headers=ALICE | {"If-Match": f'"{registered["etag"]}"'})  # fmt: skip
    assert stale.status_code == 412 and version(client)["serving"] == FT


def test_the_cli_registers_with_a_target_and_sets_it_later(runtime: Runtime, client: TestClient) -> None:
    def cli(*args: str) -> str:
        result = runner.invoke(app, [*args, "--database-url", runtime.config.url])
        assert result.exit_code == 0, result.output
        return result.output

    cli("register-model", "support-bot", "gpt-4o-mini-2024-07-18", "ftjob-1", "500", "--serve-upstream", "openai",
        "--serve-model", FT["model"])  # fmt: skip
    assert version(client)["serving"] == FT
    out = cli("models", "set-serving", "support-bot", "--version", "1", "--serve-url", "http://10.0.0.5:8000/v1",
              "--serve-model", "support-bot", "--reason", "vLLM", "--json")  # fmt: skip
    assert json.loads(out)["serving"] == {"base_url": "http://10.0.0.5:8000/v1", "model": "support-bot"}
    assert "serves nowhere" in cli("models", "set-serving", "support-bot", "--clear")
    refused = runner.invoke(app, ["models", "set-serving", "support-bot", "--serve-model", "m", "--database-url",
                                  runtime.config.url])  # fmt: skip
    assert refused.exit_code == 1 and "give --serve-model with one of --serve-upstream or --serve-url" in refused.output
