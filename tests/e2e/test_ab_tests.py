"""A/B tests over HTTP and the CLI, on both stores."""

from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.app import app
from api.runtime import Runtime
from tests.e2e.conftest import register
from tests.support.views import dump_views

runner = CliRunner()


def create(client: TestClient, test_id: str = "bot-test", **settings):
    body = {"test_id": test_id, "model_a": "gpt-4o-mini", "model_b": "support-bot@2"} | settings
    return client.post("/v1/ab-tests", json=body, headers={"X-Actor": "pm"})


def samples(n: int, *, seed: int = 1, acc_a: float = 0.70, acc_b: float = 0.80, prefix: str = "s") -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        arm = "a" if i % 2 else "b"
        out.append({
            "sample_id": f"{prefix}{i}", "arm": arm, "correct": rng.random() < (acc_a if arm == "a" else acc_b),
            "latency_ms": round(rng.uniform(100, 400 if arm == "a" else 300), 3),
            "cost": "0.0020" if arm == "a" else "0.0012",
        })  # fmt: skip
    return out


def post_samples(client: TestClient, batch: list[dict], test_id: str = "bot-test"):
    return client.post(f"/v1/ab-tests/{test_id}/samples", json={"samples": batch})


def settled(client: TestClient, position: int, test_id: str = "bot-test") -> dict:
    return client.get(f"/v1/ab-tests/{test_id}", params={"min_position": position}).json()


def test_a_new_test_has_the_defaults_and_says_it_has_no_samples_yet(client: TestClient) -> None:
    r = create(client)
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["split"], t["alpha"], t["min_samples"], t["status"]) == (0.5, 0.05, 30, "running")
    assert t["weights"] == {"accuracy": 0.6, "latency": 0.2, "cost": 0.2}
    s = t["statistics"]
    assert s["arms"]["a"]["accuracy"] is None and s["comparison"]["chi2"] is None
    assert s["verdict"].startswith("inconclusive: not enough samples") and s["winner"] is None
    assert "accuracy tests: an arm has no samples yet" in s["notes"]
    assert "NaN" not in json.dumps(t)


def test_assignment_is_deterministic_sticky_honours_the_split_and_writes_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    create(client, split=0.3)
    head = runtime.engine.log.head()
    arms = [client.get("/v1/ab-tests/bot-test/assignment", params={"unit": f"user-{i}"}).json() for i in range(2000)]
    again = client.get("/v1/ab-tests/bot-test/assignment", params={"unit": "user-7"}).json()
    assert again == arms[7]
    share_b = sum(a["arm"] == "b" for a in arms) / len(arms)
    assert abs(share_b - 0.3) < 0.035  # 3.5 standard errors at n = 2,000
    assert {a["model"] for a in arms if a["arm"] == "b"} == {"support-bot@2"}
    assert runtime.engine.log.head() == head


def test_the_assignment_fast_path_answers_as_the_route_and_leaves_the_rest_to_it(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.http import assignment_fast_path
    from domain.ab_testing import assign

    answered: list[str] = []
    monkeypatch.setattr(assignment_fast_path, "assign", lambda t, u, s: answered.append(u) or assign(t, u, s))
    create(client)
    first = client.get("/v1/ab-tests/bot-test/assignment", params={"unit": "üser 1"})  # the route: caches the test
    fast = client.get("/v1/ab-tests/bot-test/assignment", params={"unit": "üser 1"})  # the fast path
    assert fast.status_code == first.status_code == 200 and fast.content == first.content
    assert fast.json()["arm"] == assign("bot-test", "üser 1", 0.5) and answered == ["üser 1"]  # the second one
    for params, status in (({"unit": ""}, 422), ({"unit": "x" * 257}, 422), ({}, 422),
                           ({"unit": "u", "min_position": "0"}, 200)):  # fmt: skip
        assert client.get("/v1/ab-tests/bot-test/assignment", params=params).status_code == status, params
    assert client.get("/v1/ab-tests/nope/assignment", params={"unit": "u"}).status_code == 404


def test_live_statistics_come_from_merged_batches_and_match_the_raw_samples(client: TestClient) -> None:
    create(client, min_samples=50)
    batch = samples(600, acc_a=0.55)
    positions = [post_samples(client, batch[k : k + 100]).json()["position"] for k in range(0, 600, 100)]
    s = settled(client, positions[-1])["statistics"]
    for arm in ("a", "b"):
        mine = [x for x in batch if x["arm"] == arm]
        latencies = [x["latency_ms"] for x in mine]
        got = s["arms"][arm]
        assert got["n"] == len(mine) and got["correct"] == sum(x["correct"] for x in mine)
        assert math.isclose(got["latency_mean_ms"], statistics.fmean(latencies), rel_tol=1e-12)
        assert math.isclose(got["latency_std_ms"], statistics.stdev(latencies), rel_tol=1e-9)
    assert s["checks"]["sample_ratio_mismatch"] is False and s["checks"]["min_samples_reached"] is True
    assert s["comparison"]["p_value"] < 0.05 and s["winner"] == "b"
    assert s["scores"]["b"]["components"]["cost"] == 1.0  # the cheaper arm scores 1 on cost
    # beside the fixed-horizon test, the always-valid one (mSPRT): more cautious at the same samples
    valid = s["comparison"]["always_valid"]["accuracy"]
    accuracy = [s["arms"][arm]["accuracy"] for arm in ("a", "b")]
    assert valid["difference"] == pytest.approx(accuracy[1] - accuracy[0])
    assert valid["p_value"] >= s["comparison"]["z_p"]
    low, high = valid["confidence_sequence"]
    assert low < valid["difference"] < high
    assert set(s["comparison"]["always_valid"]) == {"accuracy", "latency_ms", "cost"}


def test_a_sample_recorded_twice_counts_once_and_a_rebuild_gives_identical_statistics(
    client: TestClient, runtime: Runtime
) -> None:
    create(client)
    batch = samples(80)
    first = post_samples(client, batch).json()
    retry = post_samples(client, batch).json()
    assert (first["accepted"], retry["accepted"], len(retry["duplicates"])) == (80, 0, 80)
    settled(client, first["position"])
    overlap = post_samples(client, batch[:10] + samples(4, prefix="new")).json()
    assert (overlap["accepted"], len(overlap["duplicates"])) == (4, 10)
    after = settled(client, overlap["position"])
    assert after["statistics"]["arms"]["a"]["n"] + after["statistics"]["arms"]["b"]["n"] == 84
    before = dump_views(runtime)
    runtime.engine.rebuild("ab_stats")
    assert dump_views(runtime) == before


def test_a_concluded_result_is_frozen_and_names_the_deploy_command(client: TestClient, runtime: Runtime) -> None:
    register(client, name="support-bot")
    register(client, name="support-bot")
    create(client, min_samples=50)
    position = post_samples(client, samples(400, acc_a=0.55)).json()["position"]
    settled(client, position)
    concluded = client.post("/v1/ab-tests/bot-test/conclude", json={"reason": "enough data"})
    assert concluded.status_code == 200 and concluded.json()["status"] == "concluded"
    frozen = concluded.json()["statistics"]
    assert frozen["winner"] == "b"
    winner = client.get("/v1/ab-tests/bot-test/winner").json()
    assert winner["deploy_command"] == "ft-cli models deploy support-bot --version 2"
    assert winner["verdict"].endswith("deploy it with `ft-cli models deploy support-bot --version 2`")
    again = client.post("/v1/ab-tests/bot-test/conclude", json={})
    assert again.status_code == 409 and "is concluded" in again.json()["detail"]
    late = post_samples(client, samples(50, prefix="late"))
    assert late.status_code == 409 and "its result is final" in late.json()["detail"]
    runtime.engine.rebuild("ab_stats")
    assert client.get("/v1/ab-tests/bot-test").json()["statistics"] == frozen


def test_substring_mode_counts_a_prediction_contained_in_the_reference(client: TestClient) -> None:
    create(client, match_mode="substring")
    batch = [
        {"sample_id": "1", "model": "gpt-4o-mini", "prediction": "Paris", "reference": "The answer is Paris."},
        {"sample_id": "2", "model": "support-bot@2", "prediction": "Lyon", "reference": "The answer is Paris."},
    ]
    position = post_samples(client, batch).json()["position"]
    arms = settled(client, position)["statistics"]["arms"]
    assert (arms["a"]["correct"], arms["b"]["correct"]) == (1, 0)


def test_bad_input_is_refused_listing_every_bad_sample_and_records_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    assert create(client, split=1.2).status_code == 422
    assert create(client, split=0).status_code == 422
    create(client)
    assert create(client).status_code == 409
    head = runtime.engine.log.head()
    r = post_samples(client, [
        {"sample_id": "ok", "arm": "a", "correct": True, "latency_ms": 5},
        {"sample_id": "x1", "model": "gpt-5", "correct": True},
        {"sample_id": "x2", "arm": "b", "prediction": "yes"},
        {"sample_id": "x3", "arm": "a", "correct": False, "latency_ms": -3},
        {"sample_id": "x4", "arm": "c", "correct": False},
    ])  # fmt: skip
    assert r.status_code == 422
    errors = {e["index"]: e["message"] for e in r.json()["errors"]}
    assert set(errors) == {1, 2, 3, 4}
    assert "model 'gpt-5' is not in this test" in errors[1]
    assert "give correct, or a prediction and a reference" in errors[2]
    assert "latency_ms must be 0 or more" in errors[3]
    assert "arm must be 'a' or 'b'" in errors[4]
    unknown = post_samples(client, [{"sample_id": "1", "arm": "a", "correct": True}], test_id="nope")
    assert unknown.status_code == 404 and "does not exist" in unknown.json()["detail"]
    assert runtime.engine.log.head() == head


def test_an_abandoned_test_refuses_samples(client: TestClient) -> None:
    create(client)
    assert client.post("/v1/ab-tests/bot-test/abandon", json={"reason": "wrong models"}).json()["status"] == "abandoned"
    assert post_samples(client, samples(2)).status_code == 409


def test_the_cli_runs_a_test_from_setup_to_conclusion(runtime: Runtime, tmp_path: Path) -> None:
    url = ["--database-url", runtime.config.url]
    assert (
        runner.invoke(app, ["setup-ab-test", "cli-test", "base", "tuned", "--min-samples", "50", *url]).exit_code == 0
    )
    file = tmp_path / "samples.jsonl"
    file.write_text("".join(json.dumps(s) + "\n" for s in samples(300)))
    done = runner.invoke(app, ["record-samples", "cli-test", str(file), "--json", *url])
    assert done.exit_code == 0 and json.loads(done.stdout)["accepted"] == 300, done.stderr
    status = runner.invoke(app, ["ab-test-status", "cli-test", *url])
    assert status.exit_code == 0 and "Verdict:" in status.stdout and "cli-test" in status.stdout
    assert "Always valid, accuracy (b - a):" in status.stdout and "95% confidence sequence" in status.stdout
    concluded = runner.invoke(app, ["conclude-ab-test", "cli-test", "--json", *url])
    assert concluded.exit_code == 0 and json.loads(concluded.stdout)["status"] == "concluded"
    listed = json.loads(runner.invoke(app, ["list-ab-tests", "--json", *url]).stdout)
    assert [(t["test_id"], t["status"]) for t in listed] == [("cli-test", "concluded")]
    again = runner.invoke(app, ["conclude-ab-test", "cli-test", *url])
    assert again.exit_code == 1 and "is concluded" in again.stderr


@pytest.mark.parametrize("bad", ['{"sample_id": "1", "arm": "a", "correct": true}\nnot json\n'])
def test_a_malformed_sample_line_is_reported_by_number(runtime: Runtime, tmp_path: Path, bad: str) -> None:
    url = ["--database-url", runtime.config.url]
    runner.invoke(app, ["setup-ab-test", "t", "base", "tuned", *url])
    file = tmp_path / "bad.jsonl"
    file.write_text(bad)
    done = runner.invoke(app, ["record-samples", "t", str(file), *url])
    assert done.exit_code == 1 and "line 2 is not valid JSON" in done.stderr
