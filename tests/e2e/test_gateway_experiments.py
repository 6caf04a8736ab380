"""A/B tests on the gateway's live traffic, on both stores through the real SDK: a sticky split by unit,
every call a sample of its arm, feedback counted once, and a challenger that fails falling back."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from api.runtime import Runtime
from domain.ab_testing import assign
from projections.gateway_calls import list_calls
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
