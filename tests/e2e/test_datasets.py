"""Dataset builds over HTTP and the CLI: reproducible splits, bytes and hashes, on both stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from adapters import tokens
from api.cli.app import app
from api.http.app import create_app
from api.runtime import Runtime
from api.settings import Settings

runner = CliRunner()
AT = "2026-11-01T09:00:00Z"


def corpus() -> list[dict]:
    examples = [
        {"example_id": f"ex-{i:03d}", "prompt": f"Customer {i} asks: how do I change my billing address?",
         "response": f"Go to Account, then Billing, and edit the address ({i}). Changes apply at once.",
         "domain": "billing" if i % 4 else "support", "task_type": "qa", "rating": 4 + i % 2,
         "source": "distillation", "model": "gpt-4.1", "at": AT}
        for i in range(60)
    ]  # fmt: skip
    examples += [
        {"example_id": "chat-1", "rating": 5, "domain": "support", "at": AT, "messages": [
            {"role": "system", "content": "Réponds en français."}, {"role": "user", "content": "Où est ma facture ?"},
            {"role": "assistant", "content": "Dans Compte › Factures, la plus récente en haut."}]},
        {"example_id": "x-short", "prompt": "Hi there", "response": "Hello! How can I help you today?", "rating": 5,
         "at": AT},
        {"example_id": "x-terse", "prompt": "Summarise the refund policy please.", "response": "No.", "rating": 5,
         "at": AT},
        {"example_id": "x-dup", "prompt": "customer 7 asks:  how do I change my BILLING address?",
         "response": "Go to Account, then Billing, and edit the address (7). Changes apply at once.", "rating": 5,
         "at": AT},
        {"example_id": "x-noanswer", "rating": 5, "at": AT, "messages": [{"role": "user", "content": "Anyone?"}]},
        {"example_id": "x-low", "prompt": "A question rated badly, but long enough", "rating": 2, "at": AT,
         "response": "An answer that is long enough to pass the seed's rule."},
    ]  # fmt: skip
    return examples


@pytest.fixture
def collected(client: TestClient) -> TestClient:
    r = client.post("/v1/examples", json={"examples": corpus()})
    assert r.status_code == 200 and r.json()["accepted"] == 66, r.text
    client.get("/v1/examples", params={"min_position": r.json()["position"]})
    return client


def build(client: TestClient, **fields):
    return client.post("/v1/datasets", json={"dataset_id": "billing-v1"} | fields, headers={"X-Actor": "ml"})


def test_a_build_validates_deduplicates_splits_and_records_its_lineage(collected: TestClient, runtime: Runtime) -> None:
    r = build(collected)
    assert r.status_code == 201, r.text
    d = r.json()
    rejected = {x["example_id"]: x["reason"] for x in d["rejected_list"]}
    assert rejected == {
        "x-short": "prompt shorter than 10 characters",
        "x-terse": "response shorter than 20 characters",
        "x-dup": "duplicate of ex-007 (same normalised prompt and response)",
        "x-noanswer": "no assistant message to learn from",
    }
    assert d["train"] + d["test"] == 61 and d["spec"]["min_rating"] == 4 and d["spec"]["seed"] == 42
    exported = collected.get("/v1/datasets/billing-v1/export", params={"format": "jsonl", "split": "all"}).text
    ids = [json.loads(line)["example_id"] for line in exported.splitlines()]
    assert "x-low" not in ids and "chat-1" in ids and len(ids) == 61


def test_the_same_examples_always_give_the_same_split_bytes_and_hash(collected: TestClient, runtime: Runtime) -> None:
    first = build(collected).json()
    second = build(collected, dataset_id="billing-v1-again").json()
    assert first["content_hash"] == second["content_hash"] and first["train"] == second["train"]
    files = {fmt: collected.get("/v1/datasets/billing-v1/export", params={"format": fmt}).content
             for fmt in ("openai", "alpaca", "jsonl")}  # fmt: skip
    for name in ("examples", "datasets"):
        runtime.engine.rebuild(name)
    for fmt, data in files.items():
        assert collected.get("/v1/datasets/billing-v1/export", params={"format": fmt}).content == data
    other_seed = build(collected, dataset_id="billing-v1-seed7", seed=7).json()
    assert other_seed["content_hash"] != first["content_hash"]


def test_a_build_is_byte_identical_on_the_other_store(postgres_url: str, tmp_path: Path) -> None:
    results = []
    for url in (f"sqlite:///{tmp_path}/events.sqlite3", postgres_url):
        Runtime.init_schema(url)
        rt = Runtime.open(url)
        try:
            with TestClient(create_app(Settings(database_url=url), rt)) as client:
                position = client.post("/v1/examples", json={"examples": corpus()}).json()["position"]
                client.get("/v1/examples", params={"min_position": position})
                built = build(client).json()
                data = client.get("/v1/datasets/billing-v1/export", params={"format": "openai", "split": "all"})
                results.append((built["content_hash"], built["train"], data.content))
        finally:
            rt.close()
    assert results[0] == results[1]


def test_formats_hold_what_each_tool_expects(collected: TestClient) -> None:
    build(collected)
    openai = [json.loads(line) for line in collected.get(
        "/v1/datasets/billing-v1/export", params={"format": "openai", "split": "all"}).text.splitlines()]  # fmt: skip
    pair = next(o for o in openai if len(o["messages"]) == 2)
    assert [m["role"] for m in pair["messages"]] == ["user", "assistant"]
    french = next(o for o in openai if o["messages"][0]["role"] == "system")
    assert french["messages"][0]["content"] == "Réponds en français."
    alpaca = collected.get("/v1/datasets/billing-v1/export", params={"format": "alpaca", "split": "all"}).json()
    assert set(alpaca[0]) == {"instruction", "input", "output"}
    assert next(a for a in alpaca if a["input"]) == {
        "instruction": "Où est ma facture ?", "input": "Réponds en français.",
        "output": "Dans Compte › Factures, la plus récente en haut.",
    }  # fmt: skip
    bad = collected.get("/v1/datasets/billing-v1/export", params={"format": "xml"})
    assert bad.status_code == 422


def test_statistics_count_exact_tokens_and_estimate_training_costs(collected: TestClient) -> None:
    d = build(collected, target_model="gpt-4o-mini-2024-07-18").json()
    stats = d["stats"]
    assert stats["by_domain"] == {"billing": 45, "support": 16} and stats["by_source"]["distillation"] == 60
    exported = collected.get("/v1/datasets/billing-v1/export", params={"format": "openai", "split": "all"}).text
    encoding = tokens.get_encoding("o200k_base")
    expected = sum(tokens.count_chat(json.loads(line)["messages"], encoding) for line in exported.splitlines())
    assert stats["total_tokens"] == expected
    assert set(stats["estimated_training_cost"]) >= {"gpt-4o-mini-2024-07-18", "gpt-4.1-2025-04-14"}
    assert any("500+ are recommended" in w for w in stats["warnings"])
    assert collected.get("/v1/datasets/billing-v1/stats").json() == stats


def test_examples_over_the_token_limit_are_rejected(client: TestClient) -> None:
    huge = {"example_id": "huge", "prompt": "Summarise this: " + "lorem ipsum dolor " * 7000,
            "response": "A long text about nothing in particular.", "rating": 5, "at": AT}  # fmt: skip
    position = client.post("/v1/examples", json={"examples": [*corpus()[:12], huge]}).json()["position"]
    client.get("/v1/examples", params={"min_position": position})
    d = build(client, target_model="gpt-3.5-turbo").json()
    reason = next(x["reason"] for x in d["rejected_list"] if x["example_id"] == "huge")
    assert reason.endswith("over the 16,385-token limit of an example")


def test_a_dataset_emptied_by_its_filters_is_refused_naming_the_filter(collected: TestClient, runtime: Runtime) -> None:
    head = runtime.engine.log.head()
    r = build(collected, domain="legal")
    assert r.status_code == 422 and "domain='legal' emptied it" in r.json()["detail"]
    r = build(collected, since="2027-01-01T00:00:00Z")
    assert r.status_code == 422 and "since=" in r.json()["detail"]
    assert build(collected, train_ratio=1.5).status_code == 422
    assert runtime.engine.log.head() == head
    build(collected)
    again = build(collected)
    assert again.status_code == 409 and "already exists" in again.json()["detail"]


@pytest.fixture
def cli_store(runtime: Runtime, tmp_path: Path) -> Iterator[list[str]]:
    file = tmp_path / "history.jsonl"
    file.write_text("".join(json.dumps(e) + "\n" for e in corpus()))
    url = ["--database-url", runtime.config.url]
    assert runner.invoke(app, ["collect-examples", str(file), *url]).exit_code == 0
    yield url


def test_prepare_dataset_writes_the_files_and_lists_and_describes_them(cli_store: list[str], tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    done = runner.invoke(app, ["prepare-dataset", "--format", "alpaca", "--name", "cli-ds", "--output", str(out_dir),
                               "--json", *cli_store])  # fmt: skip
    assert done.exit_code == 0, done.stderr
    result = json.loads(done.stdout)
    train = json.loads(Path(result["files"]["train"]).read_text())
    assert len(train) == result["train"] and set(train[0]) == {"instruction", "input", "output"}
    listed = json.loads(runner.invoke(app, ["list-datasets", "--json", *cli_store]).stdout)
    assert [d["dataset_id"] for d in listed] == ["cli-ds"]
    stats = json.loads(runner.invoke(app, ["dataset-stats", "cli-ds", "--json", *cli_store]).stdout)
    assert stats["examples"] == result["train"] + result["test"]
    empty = runner.invoke(app, ["prepare-dataset", "--task-type", "poetry", *cli_store])
    assert empty.exit_code == 1 and "task_type='poetry' emptied it" in empty.stderr
    unknown = runner.invoke(app, ["prepare-dataset", "--format", "csv", *cli_store])
    assert unknown.exit_code == 1 and "Unknown format 'csv'" in unknown.stderr
