"""A/B tests on the gateway's live traffic, on both stores through the real SDK: a sticky split by unit,
every call a sample of its arm, feedback counted once, and a challenger that fails falling back."""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from api.cli.app import app
from api.runtime import Runtime
from domain.ab_testing import assign
from projections.gateway_calls import list_calls
from sandbox.openai_finetuning import Fault
from tests.support.gateway import (
    FT_MODEL,
    UPSTREAM_KEY,
    GatewayUnderTest,
    calls_for_units,
    gateway_under_test,
    upstream_process,
)

ONE, TWO = "ft:gpt-4o-mini-2024-07-18:acme::one", "ft:gpt-4o-mini-2024-07-18:acme::two"


@pytest.fixture
def gw(runtime: Runtime, tmp_path: Path) -> Iterator[GatewayUnderTest]:
    with upstream_process() as url, gateway_under_test(runtime, tmp_path, endpoints={
            "remote": {"base_url": url, "api_key": UPSTREAM_KEY}}) as g:  # fmt: skip
        yield g


def start_test(gw: GatewayUnderTest, *, b: dict | None = None, **settings: object) -> None:
    gw.register(serving={"upstream": "remote", "model": ONE})
    gw.register(serving=b or {"upstream": "remote", "model": TWO}, deploy=False)
    with gw.api() as api:
        r = api.post("/v1/ab-tests", json={"test_id": "one-vs-two", "model_a": "support-bot@1",
                                           "model_b": "support-bot@2"} | settings)  # fmt: skip
        assert r.status_code == 201 and r.json()["gateway_model"] == "support-bot", r.text
    gw.runtime.engine.catch_up()
    gw.gateway.routes.refresh()  # the routes take the running test now (the server does so every step)
    assert gw.gateway.routes.experiment("support-bot") is not None


def test_twenty_thousand_calls_from_five_thousand_units_split_sticky_and_agree_everywhere(
    gw: GatewayUnderTest,
) -> None:
    start_test(gw)
    units = [f"user-{i}" for i in range(5000)]
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:  # the client's own core
        calls = pool.submit(calls_for_units, f"{gw.root}/gateway/v1", units, per_unit=4).result(timeout=600)
    assert len(calls) == 20_000
    arms: dict[str, set[str]] = {}
    for c in calls:
        arms.setdefault(c["unit"], set()).add(c["arm"])
        assert c["version"] == {"a": "1", "b": "2"}[c["arm"]]
    assert all(len(seen) == 1 for seen in arms.values())  # every unit always got the same arm
    assert all(seen == {assign("one-vs-two", unit, 0.5)} for unit, seen in arms.items())
    gw.flushed()
    with gw.api() as api:
        stats = api.get("/v1/ab-tests/one-vs-two").json()["statistics"]
    assert stats["checks"]["sample_ratio_p"] > 0.001 and stats["checks"]["sample_ratio_mismatch"] is False
    recorded = []
    after = None
    while page := list_calls(gw.runtime.db, ab_test="one-vs-two", after=after, limit=1000):
        recorded += page
        after = (page[-1]["at"], page[-1]["id"])
    per_arm = Counter(c["arm"] for c in recorded)
    assert sorted(c["id"] for c in recorded) == sorted(c["call_id"] for c in calls)
    for arm in ("a", "b"):
        mine = [c for c in recorded if c["arm"] == arm]
        assert stats["arms"][arm]["n"] == per_arm[arm] == sum(1 for c in calls if c["arm"] == arm)
        assert Decimal(stats["arms"][arm]["cost_total"]) == sum((c["cost"] for c in mine), Decimal(0))
        assert stats["arms"][arm]["rated"] == 0 and stats["arms"][arm]["errors"] == 0


def test_feedback_is_each_samples_outcome_counted_once_however_often_it_is_sent(gw: GatewayUnderTest) -> None:
    start_test(gw, min_samples=5)
    calls = calls_for_units(f"{gw.root}/gateway/v1", [f"u{i}" for i in range(40)], per_unit=1)
    gw.flushed()
    told = {}
    with gw.api() as api:
        for i, c in enumerate(calls):
            correct = c["arm"] == "b" or i % 3 == 0  # b is always right, a a third of the time
            first = api.post(f"/v1/gateway/calls/{c['call_id']}/feedback", json={"correct": correct})
            again = api.post(f"/v1/gateway/calls/{c['call_id']}/feedback", json={"correct": not correct})
            assert (first.status_code, first.json()["counted"], again.json()["counted"]) == (200, True, False)
            told[c["call_id"]] = (c["arm"], correct)
        gw.runtime.engine.catch_up()
        stats = api.get("/v1/ab-tests/one-vs-two").json()["statistics"]
        bad = api.post(f"/v1/gateway/calls/{calls[0]['call_id']}/feedback", json={"correct": True, "score": 1})
        unknown = api.post("/v1/gateway/calls/call_nope/feedback", json={"correct": True})
        viewed = api.get(f"/v1/gateway/calls/{calls[0]['call_id']}").json()
        gateway_stats = api.get("/v1/gateway/stats", params={"bucket": "day"}).json()["models"]
    for arm in ("a", "b"):
        mine = [correct for a, correct in told.values() if a == arm]
        assert (stats["arms"][arm]["rated"], stats["arms"][arm]["correct"]) == (len(mine), sum(mine))
    assert bad.status_code == 422 and "exactly one" in bad.text and unknown.status_code == 404
    assert viewed["feedback"]["correct"] == told[calls[0]["call_id"]][1]
    by_version = {s["version"]: s for s in gateway_stats}
    assert by_version[2]["rated_calls"] == sum(1 for a, _ in told.values() if a == "b")
    assert by_version[2]["accuracy"] == 1.0


def test_a_challenger_that_refuses_connections_falls_back_to_the_champion_and_counts_as_its_error(
    gw: GatewayUnderTest,
) -> None:
    start_test(gw, b={"base_url": "http://127.0.0.1:9/v1", "model": FT_MODEL})
    units = [f"u{i}" for i in range(60)]
    calls = calls_for_units(f"{gw.root}/gateway/v1", units, per_unit=1)
    gw.flushed()
    assert {c["version"] for c in calls} == {"1"}  # every caller got an answer, from the champion
    challenged = [c for c in calls if c["arm"] == "b"]
    assert challenged
    recorded = {c["id"]: c for c in list_calls(gw.runtime.db, ab_test="one-vs-two")}
    for c in challenged:
        r = recorded[c["call_id"]]
        assert (r["arm"], r["fallback_from"], r["version"], r["status"]) == ("b", "support-bot@2", 1, "ok")
        assert [a["outcome"] for a in r["attempts"]] == ["connect_error", "connect_error", "ok"]
    with gw.api() as api:
        stats = api.get("/v1/ab-tests/one-vs-two").json()["statistics"]
    assert stats["arms"]["b"]["errors"] == len(challenged) and stats["arms"]["a"]["errors"] == 0
    assert httpx.get(f"{gw.root}/healthz").json()["gateway"]["dropped"] == 0


def feedback(gw: GatewayUnderTest, calls: list[dict[str, str]], right: dict[str, float]) -> None:
    """Feedback on every call: arm `arm` is right on a share `right[arm]` of its calls (deterministic)."""
    seen: Counter[str] = Counter()
    with gw.api() as api:
        for c in calls:
            seen[c["arm"]] += 1
            correct = (seen[c["arm"]] * right[c["arm"]]) % 1 < right[c["arm"]] if right[c["arm"]] < 1 else True
            assert api.post(f"/v1/gateway/calls/{c['call_id']}/feedback", json={"correct": correct}).status_code == 200
    gw.runtime.engine.catch_up()


def test_a_better_challenger_concludes_and_is_deployed_by_its_policy(gw: GatewayUnderTest) -> None:
    start_test(gw, min_samples=50, on_win="conclude_and_deploy")
    calls = calls_for_units(f"{gw.root}/gateway/v1", [f"u{i}" for i in range(400)], per_unit=1)
    gw.flushed()
    policies = gw.runtime.ab_policies
    assert policies.check_all() == []  # no outcome yet: nothing is decided
    feedback(gw, calls, {"a": 0.5, "b": 1.0})
    [acted] = policies.check_all()
    assert (acted.decision.action, acted.decision.winner, acted.deployed) == ("conclude", "b", 2)
    gw.runtime.engine.catch_up()
    with gw.api() as api:
        test = api.get("/v1/ab-tests/one-vs-two").json()
        deployment = api.get("/v1/deployments/support-bot").json()
    assert test["status"] == "concluded" and test["statistics"]["decided_by"] == "policy:one-vs-two"
    assert test["statistics"]["winner_model"] == "support-bot@2" and "always-valid p" in test["statistics"]["verdict"]
    assert (deployment["deployed_version"], deployment["deployed_by"]) == (2, "policy:one-vs-two")
    assert test["ended_by"] == "policy:one-vs-two" and "always-valid" in test["end_reason"]
    gw.gateway.routes.refresh()
    after = calls_for_units(f"{gw.root}/gateway/v1", ["u0", "u1", "u2", "u3"], per_unit=1)
    assert {c["version"] for c in after} == {"2"}  # the winner serves every call now, outside any test


def test_a_challenger_that_fails_half_its_calls_is_cut_off_by_its_guardrail_and_the_champion_serves(
    gw: GatewayUnderTest,
) -> None:
    # the challenger is served by the in-process upstream, which answers 500 to its first 25 calls (and their
    # retries): one call at a time, exactly half of its 50 calls fail and fall back to the champion
    start_test(gw, b={"upstream": "sandbox", "model": TWO}, min_samples=20, guardrails={"error_rate": 0.2})
    units = [f"u{i}" for i in range(400)]
    challenged = [u for u in units if assign("one-vs-two", u, 0.5) == "b"][:50]
    gw.upstream.state.faults.append(Fault(500, "POST", "/v1/chat/completions", times=2 * 25))
    calls = calls_for_units(f"{gw.root}/gateway/v1", challenged, per_unit=1, concurrency=1)
    assert {c["version"] for c in calls} == {"1", "2"}  # the failed half got the champion's answer
    gw.flushed()
    with gw.api() as api:
        arms = api.get("/v1/ab-tests/one-vs-two").json()["statistics"]["arms"]
    assert (arms["b"]["n"], arms["b"]["errors"], arms["b"]["error_rate"]) == (50, 25, 0.5)
    shown = CliRunner().invoke(app, ["ab", "policy", "one-vs-two", "--json", "--database-url", gw.runtime.config.url])
    assert shown.exit_code == 0, shown.output
    shown_json = json.loads(shown.output)
    assert shown_json["decision"]["action"] == "stop_challenger" and shown_json["applied"] is False
    [acted] = gw.runtime.ab_policies.check_all()
    assert acted.decision.action == "stop_challenger" and "error rate" in acted.decision.reason
    gw.runtime.engine.catch_up()
    with gw.api() as api:
        test = api.get("/v1/ab-tests/one-vs-two").json()
    assert test["status"] == "running" and test["challenger_stopped"]["by"] == "policy:one-vs-two"
    assert test["challenger_stopped"]["breach"]["guardrail"] == "error_rate"
    gw.gateway.routes.refresh()
    raw = gw.sdk().chat.completions.with_raw_response.create(model="support-bot", messages=[
        {"role": "user", "content": "hi"}], extra_headers={"X-FT-Unit": next(
            u for u in units if assign("one-vs-two", u, 0.5) == "b")})  # fmt: skip
    assert raw.headers["x-ft-model-version"] == "1" and "x-ft-arm" not in raw.headers
    assert gw.runtime.ab_policies.check_all() == []  # stopped once


def test_a_test_with_no_difference_concludes_inconclusive_at_its_maximum_duration(gw: GatewayUnderTest) -> None:
    start_test(gw, min_samples=50, on_win="conclude_and_deploy", max_duration_s=3600)
    calls = calls_for_units(f"{gw.root}/gateway/v1", [f"u{i}" for i in range(300)], per_unit=1)
    gw.flushed()
    feedback(gw, calls, {"a": 0.5, "b": 0.5})
    policies = gw.runtime.ab_policies
    started = datetime.fromisoformat(gw.api().get("/v1/ab-tests/one-vs-two").json()["created_at"])
    for minutes in (1, 30, 59):  # read before the deadline: nothing is declared
        policies.clock = lambda minutes=minutes: started + timedelta(minutes=minutes)
        assert policies.check_all() == []
    policies.clock = lambda: started + timedelta(seconds=3601)
    [acted] = policies.check_all()
    assert acted.decision.action == "inconclusive" and acted.deployed is None
    gw.runtime.engine.catch_up()
    with gw.api() as api:
        test = api.get("/v1/ab-tests/one-vs-two").json()
        deployment = api.get("/v1/deployments/support-bot").json()
    assert test["status"] == "concluded" and test["statistics"]["winner"] is None
    assert test["statistics"]["verdict"].startswith("inconclusive: the maximum duration")
    assert deployment["deployed_version"] == 1


def test_a_test_of_two_different_models_splits_the_model_it_names(gw: GatewayUnderTest) -> None:
    gw.register("support-bot-base", serving={"upstream": "remote", "model": "gpt-4o-mini-2024-07-18"})
    gw.register(serving={"upstream": "remote", "model": ONE})
    with gw.api() as api:
        r = api.post("/v1/ab-tests", json={"test_id": "base-vs-tuned", "model_a": "support-bot-base@1",
                                           "model_b": "support-bot@1", "gateway_model": "support-bot"})  # fmt: skip
        assert r.status_code == 201 and r.json()["gateway_model"] == "support-bot", r.text
    gw.runtime.engine.catch_up()
    gw.gateway.routes.refresh()
    calls = calls_for_units(f"{gw.root}/gateway/v1", [f"u{i}" for i in range(200)], per_unit=1)
    gw.flushed()
    served = {c["id"]: c for c in list_calls(gw.runtime.db, ab_test="base-vs-tuned", limit=1000)}
    assert len(served) == 200
    for c in calls:
        model = served[c["call_id"]]["model"]
        assert model == {"a": "support-bot-base", "b": "support-bot"}[c["arm"]]
    assert {c["arm"] for c in calls} == {"a", "b"}
