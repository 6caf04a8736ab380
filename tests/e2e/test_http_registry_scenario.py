"""The acceptance scenario over HTTP, on both stores:
register v1, v2, v3; deploy v2; deploy v3; roll back to v2."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from api.http.app import create_app
from api.runtime import Runtime
from api.settings import Settings
from tests.e2e.conftest import register
from tests.support.positions import pos

ALICE, BOB, CAROL = ({"X-Actor": n} for n in ("alice", "bob", "carol"))
#: where the scenario's k-th registry event lands (k = 1..7): each registration's cost follows it in the log,
#: recorded in the cost ledger
STEP = {k: pos(p) for k, p in enumerate((1, 2, 4, 6, 8, 9, 10), start=1)}


def midpoint(a: str, b: str) -> str:
    ta, tb = datetime.fromisoformat(a), datetime.fromisoformat(b)
    return (ta + (tb - ta) / 2).isoformat()


@pytest.fixture
def scenario(client: TestClient) -> TestClient:
    for n in (1, 2, 3):
        assert register(client, job_id=f"ftjob-{n}", accuracy=0.8 + n / 100, cost=f"{n}.50")["version"] == n
    r = client.post("/v1/models/support-bot/deploy", json={"version": 2, "reason": "passed eval"}, headers=BOB)
    assert (r.status_code, r.json()["previous_version"]) == (200, None)
    r = client.post("/v1/models/support-bot/deploy", json={"version": 3, "reason": "more data"}, headers=BOB)
    assert (r.status_code, r.json()["previous_version"]) == (200, 2)
    r = client.post(
        "/v1/models/support-bot/rollback", json={"target_version": 2, "reason": "v3 hallucinates"}, headers=CAROL
    )
    assert (r.status_code, r.json()) == (
        200,
        {"model": "support-bot", "version": 2, "previous_version": 3, "status": "DEPLOYED",
         "position": STEP[7], "etag": 7},
    )  # fmt: skip
    return client


def everything(client: TestClient) -> dict:
    """Every read the API offers, for comparing before and after a rebuild or restart."""
    audit = client.get("/v1/audit").json()
    times = [e["timestamp"] for e in audit["items"]]
    return {
        "deployments": client.get("/v1/deployments").json(),
        "as_of": [client.get("/v1/deployments", params={"as_of": t}).json() for t in times],
        "models": client.get("/v1/models").json(),
        "model": client.get("/v1/models/support-bot").json(),
        "versions": client.get("/v1/models/support-bot/versions").json(),
        "audit": audit,
        "export": client.get("/v1/registry/export").json(),
    }


def test_rollback_leaves_the_older_version_deployed_and_archives_the_newer(scenario: TestClient) -> None:
    status = scenario.get("/v1/deployments/support-bot").json()
    assert status["deployed_version"] == 2
    assert (status["deployed_by"], status["reason"], status["event_type"]) == ("carol", "v3 hallucinates", "RolledBack")
    assert [(v["version"], v["status"]) for v in status["versions"]] == [(1, "READY"), (2, "DEPLOYED"), (3, "ARCHIVED")]
    model = scenario.get("/v1/models/support-bot")
    assert model.headers["etag"] == '"7"'
    assert (model.json()["deployed_version"], model.json()["latest_version"]) == (2, 3)


def test_the_audit_trail_lists_every_step_in_order_with_actor_and_reason(scenario: TestClient) -> None:
    items = scenario.get("/v1/audit", params={"model": "support-bot"}).json()["items"]
    assert [(e["position"], e["event_type"], e["version"], e["actor"], e["reason"]) for e in items] == [
        (STEP[1], "ModelRegistered", None, "alice", None),
        (STEP[2], "VersionRegistered", 1, "alice", None),
        (STEP[3], "VersionRegistered", 2, "alice", None),
        (STEP[4], "VersionRegistered", 3, "alice", None),
        (STEP[5], "VersionDeployed", 2, "bob", "passed eval"),
        (STEP[6], "VersionDeployed", 3, "bob", "more data"),
        (STEP[7], "RolledBack", 2, "carol", "v3 hallucinates"),
    ]
    assert items[6]["payload"] == {"from_version": 3, "to_version": 2}
    assert items[5]["payload"] == {"number": 3, "from_status": "READY", "archived": 2}
    assert items[1]["payload"]["cost"] == "1.50"
    times = [e["timestamp"] for e in items]
    assert times == sorted(times)


def test_audit_filters_by_type_actor_and_time_and_pages_with_a_cursor(scenario: TestClient) -> None:
    by_type = scenario.get("/v1/audit", params={"type": "VersionDeployed"}).json()["items"]
    assert [e["position"] for e in by_type] == [STEP[5], STEP[6]]
    assert [e["position"] for e in scenario.get("/v1/audit", params={"actor": "carol"}).json()["items"]] == [STEP[7]]
    all_items = scenario.get("/v1/audit").json()["items"]
    window = {"since": all_items[4]["timestamp"], "until": all_items[5]["timestamp"]}
    assert [e["position"] for e in scenario.get("/v1/audit", params=window).json()["items"]] == [STEP[5], STEP[6]]
    seen, cursor = [], None
    while True:
        page = scenario.get("/v1/audit", params={"limit": 3} | ({"cursor": cursor} if cursor else {})).json()
        seen += [e["position"] for e in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [STEP[k] for k in range(1, 8)]


def test_as_of_a_time_between_two_steps_gives_the_status_at_that_time(scenario: TestClient) -> None:
    t = [e["timestamp"] for e in scenario.get("/v1/audit").json()["items"]]

    def at(when: str) -> tuple:
        s = scenario.get("/v1/deployments/support-bot", params={"as_of": when}).json()
        return s["deployed_version"], s["deployed_by"], [v["status"] for v in s["versions"]]

    assert at(midpoint(t[3], t[4])) == (None, None, ["READY", "READY", "READY"])
    assert at(midpoint(t[4], t[5])) == (2, "bob", ["READY", "DEPLOYED", "READY"])
    assert at(midpoint(t[5], t[6])) == (3, "bob", ["READY", "ARCHIVED", "DEPLOYED"])
    assert at(t[6]) == (2, "carol", ["READY", "DEPLOYED", "ARCHIVED"])
    before = scenario.get("/v1/deployments/support-bot", params={"as_of": "2000-01-01T00:00:00Z"})
    assert before.status_code == 404 and "was not registered at" in before.json()["detail"]


def test_rebuilding_every_projection_from_zero_gives_identical_output(scenario: TestClient) -> None:
    before = everything(scenario)
    for name in ("deployments", "registry", "audit"):
        r = scenario.post(f"/v1/projections/{name}/rebuild")
        assert (r.status_code, r.json()["position"]) == (200, STEP[7])
    assert everything(scenario) == before
    assert [p["lag"] for p in scenario.get("/v1/projections").json()] == [0] * 10


def test_restarting_the_service_loses_nothing(scenario: TestClient, runtime: Runtime) -> None:
    before = everything(scenario)
    url = runtime.config.url
    reopened = Runtime.open(url)
    try:
        with TestClient(create_app(Settings(database_url=url), reopened)) as again:
            assert everything(again) == before
            health = again.get("/healthz").json() | {"gateway": None}
            assert health == {"gateway": None, "status": "ok", "store": runtime.config.dialect, "head": STEP[7],
                                                  "quarantined": 0}
    finally:
        reopened.close()


def test_the_export_has_the_seed_shape(scenario: TestClient) -> None:
    exported = scenario.get("/v1/registry/export").json()
    assert list(exported) == ["support-bot"]
    v1 = exported["support-bot"][0]
    assert set(v1) == {"version", "model_name", "base_model", "job_id", "dataset_size", "accuracy", "cost",
                       "status", "registered_at", "deployed_at"}  # fmt: skip
    assert (v1["version"], v1["model_name"], v1["cost"], v1["accuracy"], v1["status"]) == (
        1,
        "support-bot",
        "1.50",
        0.81,
        "READY",
    )
    assert exported["support-bot"][1]["deployed_at"] is not None


def test_versions_can_be_read_by_number_or_as_latest(scenario: TestClient) -> None:
    assert scenario.get("/v1/models/support-bot/versions/latest").json()["version"] == 3
    assert scenario.get("/v1/models/support-bot/versions/2").json()["status"] == "DEPLOYED"
    archived = scenario.get("/v1/models/support-bot/versions", params={"status": "archived"}).json()["items"]
    assert [v["version"] for v in archived] == [3]


def test_a_training_version_becomes_ready_then_deployable(client: TestClient) -> None:
    register(client, status="TRAINING")
    refused = client.post("/v1/models/support-bot/deploy", json={"version": 1})
    assert refused.status_code == 409 and "TRAINING and cannot be deployed" in refused.json()["detail"]
    r = client.post("/v1/models/support-bot/versions/1/status", json={"status": "READY", "reason": "job done"})
    assert (r.status_code, r.json()["previous_status"], r.json()["status"]) == (200, "TRAINING", "READY")
    r = client.post("/v1/models/support-bot/versions/1/status", json={"status": "DEPLOYED"})
    assert (r.status_code, r.json()["status"]) == (200, "DEPLOYED")


def test_deploy_without_a_version_deploys_the_latest_ready_one(client: TestClient) -> None:
    register(client)
    register(client)
    register(client, status="TRAINING")
    r = client.post("/v1/models/support-bot/deploy", json={})
    assert r.json()["version"] == 2


def test_a_command_returns_a_position_that_a_read_can_wait_for(client: TestClient) -> None:
    position = register(client)["position"]
    r = client.get("/v1/models", params={"min_position": position})
    assert r.status_code == 200 and [m["name"] for m in r.json()["items"]] == ["support-bot"]
    future = client.get("/v1/models", params={"min_position": position + 1000})
    assert future.status_code == 503 and future.headers["retry-after"] == "1"


def test_a_status_change_on_latest_acts_on_the_newest_version(client: TestClient) -> None:
    register(client)
    register(client, status="TRAINING")
    r = client.post("/v1/models/support-bot/versions/latest/status", json={"status": "FAILED", "reason": "OOM"})
    assert (r.status_code, r.json()["version"], r.json()["status"]) == (200, 2, "FAILED")
