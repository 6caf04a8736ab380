"""Offline evaluations and pairwise comparison over HTTP and the CLI, on both stores."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from statsmodels.stats.contingency_tables import mcnemar
from typer.testing import CliRunner

from api.cli.app import app
from api.runtime import Runtime

runner = CliRunner()
ALICE = {"X-Actor": "alice"}


def runs(n: int = 200, seed: int = 3) -> tuple[list[dict], list[dict]]:
    """The seed's example: the base is right 85% of the time at 200 ms and $0.002; the fine-tune 92%, 150 ms,
    $0.0015. Both answer the same examples."""
    rng = random.Random(seed)
    base, tuned = [], []
    for i in range(n):
        reference = rng.choice(["billing", "refund", "shipping", "account"])
        wrong = "other"
        base.append({"example_id": f"t-{i:04d}", "reference": reference, "latency_ms": 200.0, "cost": "0.002",
                     "prediction": reference if i % 100 < 85 else wrong})  # fmt: skip
        tuned.append({"example_id": f"t-{i:04d}", "reference": reference, "latency_ms": 150.0, "cost": "0.0015",
                      "prediction": reference if (i % 100 < 92) else wrong})  # fmt: skip
    return base, tuned


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def cli(runtime: Runtime, *args: str, ok: bool = True) -> str:
    result = runner.invoke(app, [*args, "--database-url", runtime.config.url])
    assert (result.exit_code == 0) is ok, result.output
    return result.output


def test_an_offline_evaluation_records_every_prediction_and_its_frozen_metrics(client: TestClient) -> None:
    base, _ = runs()
    r = client.post("/v1/evaluations", headers=ALICE, json={
        "evaluation_id": "base-v1", "model": "gpt-4o-mini", "model_type": "base",
        "modes": ["exact", "classification", "bleu", "rouge"], "predictions": base})  # fmt: skip
    assert r.status_code == 201, r.text
    metrics = r.json()["metrics"]
    assert metrics["n"] == 200 and metrics["exact"]["accuracy"] == 0.85
    assert metrics["classification"]["micro"]["f1"] == pytest.approx(0.85)
    assert metrics["latency"] == {"mean_ms": 200.0, "p50_ms": 200.0, "p95_ms": 200.0}
    assert Decimal(metrics["cost_per_inference"]) == Decimal("0.002")
    assert metrics["rouge_l"] == pytest.approx(0.85) and metrics["bleu"] == 0.0  # one-word answers: no 4-grams
    first = client.get("/v1/evaluations/base-v1/predictions", params={"limit": 150}).json()
    rest = client.get("/v1/evaluations/base-v1/predictions", params={"cursor": first["next_cursor"]}).json()
    assert len(first["items"]) + len(rest["items"]) == 200 and rest["next_cursor"] is None
    assert [e["evaluation_id"] for e in client.get("/v1/evaluations").json()["items"]] == ["base-v1"]
    again = client.post("/v1/evaluations", json={"evaluation_id": "base-v1", "model": "m", "model_type": "base",
                                                 "predictions": base})  # fmt: skip
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    assert client.post("/v1/projections/evaluations/rebuild").status_code == 200
    assert client.get("/v1/evaluations/base-v1").json()["metrics"] == r.json()["metrics"]


def test_bad_evaluations_get_clear_errors_and_record_nothing(client: TestClient, runtime: Runtime) -> None:
    head = runtime.engine.log.head()
    cases = [
        ({"modes": ["fuzzy"], "predictions": [{"prediction": "a", "reference": "a"}]}, "Unknown mode 'fuzzy'"),
        ({"predictions": []}, "No predictions to evaluate"),
        ({"predictions": [{"prediction": "a"}, {"prediction": "b", "reference": "b", "latency_ms": -1}]},
         "prediction 0: reference is required"),
    ]
    for fields, message in cases:
        r = client.post("/v1/evaluations", json={"model": "m", "model_type": "base"} | fields)
        assert r.status_code == 422 and message in r.json()["detail"], (fields, r.text)
    assert runtime.engine.log.head() == head


def test_comparing_a_fine_tune_with_its_base_gives_the_seeds_side_by_side_and_mcnemar(
    runtime: Runtime, tmp_path: Path
) -> None:
    base, tuned = runs()
    cli(runtime, "evaluate-model", "gpt-4o-mini", "base", str(write(tmp_path / "base.jsonl", base)),
        "--evaluation-id", "base-v1")  # fmt: skip
    done = json.loads(cli(runtime, "evaluate-model", "support-bot", "fine_tuned", str(write(tmp_path / "ft.jsonl",
                          tuned)), "--evaluation-id", "ft-v1", "--json"))  # fmt: skip
    assert done["metrics"]["exact"]["accuracy"] == 0.92
    result = json.loads(cli(runtime, "compare-models", "base-v1", "ft-v1", "--training-cost", "7.00", "--calls",
                            "100000", "--json"))  # fmt: skip
    accuracy = result["accuracy"]
    assert (accuracy["base"], accuracy["candidate"]) == (0.85, 0.92)
    assert accuracy["difference"] == pytest.approx(0.07) and accuracy["ci_low"] < 0.07 < accuracy["ci_high"]
    m = result["mcnemar"]
    expected = mcnemar([[m["both_correct"], m["only_base"]], [m["only_candidate"], m["both_wrong"]]], exact=True)
    assert m["p_value"] == pytest.approx(expected.pvalue) and m["only_candidate"] == 14 and m["only_base"] == 0
    assert result["latency"]["mean_ms"] == {"base": 200.0, "candidate": 150.0, "delta": -50.0, "difference": -50.0,
                                            "ci_low": -50.0, "ci_high": -50.0}  # every pair 50 ms faster
    assert Decimal(result["cost_per_inference"]["delta"]) == Decimal("-0.0005")
    assert Decimal(result["roi"]["cost_savings"]) == Decimal("50.0000")  # 100,000 calls x $0.0005
    table = cli(runtime, "compare-models", "base-v1", "ft-v1")
    for text in ("85.0%", "92.0%", "200 ms", "150 ms", "$0.002", "$0.0015", "-$0.0005", "McNemar exact test"):
        assert text in table, text


def test_evaluation_files_and_comparisons_that_cannot_be_used_are_refused_with_the_reason(
    runtime: Runtime, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prediction": "a", "reference": "a"}\n\n{"prediction": "b", "reference": \n')
    out = cli(runtime, "evaluate-model", "m", "base", str(broken), ok=False)
    assert "Line 3 of" in out and "is not valid JSON" in out
    missing = write(tmp_path / "missing.jsonl", [{"prediction": "a", "reference": "a"}, {"prediction": "b"}])
    out = cli(runtime, "evaluate-model", "m", "base", str(missing), ok=False)
    assert "Line 2 of" in out and "reference is required" in out and "nothing was recorded" in out
    assert "Unknown mode 'fuzzy'" in cli(runtime, "evaluate-model", "m", "base", str(missing), "--mode", "fuzzy",
                                         ok=False)  # fmt: skip
    base, tuned = runs(20)
    cli(runtime, "evaluate-model", "a", "base", str(write(tmp_path / "a.jsonl", base)), "--evaluation-id", "a")
    cli(runtime, "evaluate-model", "b", "fine_tuned", str(write(tmp_path / "b.jsonl", tuned[:15])),
        "--evaluation-id", "b")  # fmt: skip
    out = cli(runtime, "compare-models", "a", "b", ok=False)
    assert "did not answer the same test set (20 and 15 examples" in out
    assert cli(runtime, "list-evaluations", "--json").count('"evaluation_id"') == 2


def test_an_evaluations_accuracy_is_attached_to_its_registry_version_with_a_link(
    client: TestClient, runtime: Runtime
) -> None:
    _, tuned = runs(100)
    client.post("/v1/models/support-bot/versions", headers=ALICE,
                json={"base_model": "gpt-4o-mini-2024-07-18", "job_id": "ftjob-1", "dataset_size": 500})  # fmt: skip
    client.post("/v1/evaluations", json={"evaluation_id": "ft-v1", "model": "support-bot", "model_type": "fine_tuned",
                                         "predictions": tuned})  # fmt: skip
    r = client.post("/v1/evaluations/ft-v1/attach", headers=ALICE, json={"model": "support-bot", "version": 1})
    assert r.status_code == 200 and r.json()["accuracy"] == 0.92, r.text
    assert client.get("/v1/models/support-bot/versions/1").json()["accuracy"] == 0.92
    trail = client.get("/v1/audit", params={"model": "support-bot", "type": "VersionEvaluated"}).json()["items"]
    assert trail[0]["payload"]["evaluation_id"] == "ft-v1" and trail[0]["actor"] == "alice"
    missing = client.post("/v1/evaluations/ft-v1/attach", json={"model": "support-bot", "version": 9})
    assert missing.status_code == 404 and "has no version 9" in missing.json()["detail"]
    bleu_only = client.post("/v1/evaluations", json={"evaluation_id": "b", "model": "m", "model_type": "base",
                                                     "modes": ["bleu"], "predictions": tuned})  # fmt: skip
    assert bleu_only.status_code == 201
    none = client.post("/v1/evaluations/b/attach", json={"model": "support-bot", "version": 1})
    assert none.status_code == 409 and "has no accuracy" in none.json()["detail"]


def test_generation_metrics_are_compared_pairwise_with_an_interval_where_one_exists(client: TestClient) -> None:
    refs = [f"Refunds for order {i} take five business days to reach your card." for i in range(30)]
    base = [{"example_id": f"g-{i}", "reference": r, "prediction": "Refunds take a while."} for i, r in enumerate(refs)]
    tuned = [{"example_id": f"g-{i}", "reference": r, "prediction": r.replace("five", "5")} for i, r in enumerate(refs)]
    for eid, rows in (("gen-base", base), ("gen-ft", tuned)):
        r = client.post("/v1/evaluations", json={"evaluation_id": eid, "model": eid, "model_type": "base",
                                                 "modes": ["bleu", "rouge"], "predictions": rows})  # fmt: skip
        assert r.status_code == 201, r.text
    result = client.post("/v1/evaluations/compare", json={"base": "gen-base", "candidate": "gen-ft"}).json()
    assert result["accuracy"] is None and "no McNemar test" in result["note"]
    assert result["deltas"]["bleu"] > 50  # a corpus score: a plain difference
    rouge = result["deltas"]["rouge_l"]
    assert rouge["ci_low"] <= rouge["difference"] <= rouge["ci_high"] and rouge["difference"] > 0.5
