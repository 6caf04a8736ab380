"""Collected examples over HTTP and the CLI, on both stores."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.app import app
from api.runtime import Runtime
from tests.support.views import dump_views

runner = CliRunner()


def example(i: int, **fields) -> dict:
    return {"example_id": f"ex-{i}", "prompt": f"How do I reset my password, case {i}?",
            "response": "Open Settings, choose Security, then Reset password.", "domain": "support",
            "task_type": "qa", "rating": 4, "source": "distillation", "model": "gpt-4.1"} | fields  # fmt: skip


def collect(client: TestClient, batch: list[dict]):
    return client.post("/v1/examples", json={"examples": batch}, headers={"X-Actor": "data-team"})


def test_examples_are_collected_once_rated_again_and_listed_by_filter(client: TestClient, runtime: Runtime) -> None:
    chat = {"example_id": "chat-1", "source": "feedback", "domain": "billing", "rating": 5, "messages": [
        {"role": "system", "content": "You are terse."}, {"role": "user", "content": "Refund status?"},
        {"role": "assistant", "content": "Your refund was sent on Monday."}]}  # fmt: skip
    first = collect(client, [example(i) for i in range(5)] + [chat]).json()
    client.get("/v1/examples", params={"min_position": first["position"]})  # duplicates are found once projected
    again = collect(client, [example(i) for i in range(5)]).json()
    assert (first["accepted"], again["accepted"], len(again["duplicates"])) == (6, 0, 5)
    rated = client.post("/v1/examples/ex-2/rating", json={"rating": 2, "reason": "outdated answer"})
    assert rated.status_code == 200 and rated.json()["rating"] == 2
    good = client.get("/v1/examples", params={"min_rating": 4}).json()["items"]
    assert [e["example_id"] for e in good] == ["chat-1", "ex-0", "ex-1", "ex-3", "ex-4"]
    billing = client.get("/v1/examples", params={"domain": "billing"}).json()["items"]
    assert billing[0]["messages"][2] == {"role": "assistant", "content": "Your refund was sent on Monday."}
    before = dump_views(runtime)
    runtime.engine.rebuild("examples")
    assert dump_views(runtime) == before


def test_bad_examples_are_refused_listing_each_and_nothing_is_recorded(client: TestClient, runtime: Runtime) -> None:
    head = runtime.engine.log.head()
    r = collect(client, [
        example(1),
        example(2, rating=7),
        {"example_id": "ex-3", "prompt": "only a prompt"},
        example(4, source="scraped"),
        {"example_id": "ex-5", "messages": [{"role": "robot", "content": "beep"}]},
    ])  # fmt: skip
    assert r.status_code == 422
    errors = {e["index"]: e["message"] for e in r.json()["errors"]}
    assert "rating must be a whole number from 1 to 5, got 7" in errors[1]
    assert "response is required" in errors[2]
    assert "source must be one of distillation, task_history, feedback, import, gateway" in errors[3]
    assert "unknown role 'robot'" in errors[4]
    assert set(errors) == {1, 2, 3, 4} and runtime.engine.log.head() == head
    assert client.post("/v1/examples/nope/rating", json={"rating": 3}).status_code == 404
    position = collect(client, [example(9)]).json()["position"]
    client.get("/v1/examples", params={"min_position": position})
    bad_rating = client.post("/v1/examples/ex-9/rating", json={"rating": 0})
    assert bad_rating.status_code == 422 and "from 1 to 5" in bad_rating.json()["detail"]


def test_collect_examples_from_a_file_reports_a_malformed_line_by_number(runtime: Runtime, tmp_path: Path) -> None:
    url = ["--database-url", runtime.config.url]
    good = tmp_path / "history.jsonl"
    good.write_text("".join(json.dumps(example(i)) + "\n" for i in range(25)))
    done = runner.invoke(app, ["collect-examples", str(good), "--batch-size", "10", "--json", *url])
    assert done.exit_code == 0 and json.loads(done.stdout)["accepted"] == 25, done.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(example(99)) + "\n{broken\n")
    failed = runner.invoke(app, ["collect-examples", str(bad), *url])
    assert failed.exit_code == 1 and "line 2 is not valid JSON" in failed.stderr
