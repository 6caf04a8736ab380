"""Bad input gets a clear problem+json and appends nothing; Idempotency-Key, If-Match and tokens work."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.http.app import create_app
from api.runtime import Runtime
from api.settings import Settings
from tests.e2e.conftest import register
from tests.support.positions import SEEDED, pos

VALID = {"base_model": "gpt-4o-mini", "job_id": "ftjob-1", "dataset_size": 10}


@pytest.fixture
def one_ready_one_training_one_failed(client: TestClient) -> TestClient:
    register(client)
    register(client, status="TRAINING")
    register(client, status="TRAINING")
    assert client.post("/v1/models/support-bot/versions/3/status", json={"status": "FAILED"}).status_code == 200
    return client


BAD_REQUESTS = [
    # (method, path, json body or raw text, status, phrase in detail)
    ("POST", "/v1/models/nobody/deploy", {"version": 1}, 404, "Model 'nobody' is not registered"),
    ("POST", "/v1/models/support-bot/deploy", {"version": 9}, 404, "has no version 9"),
    ("GET", "/v1/models/nobody", None, 404, "Model 'nobody' is not registered"),
    ("GET", "/v1/models/support-bot/versions/9", None, 404, "has no version 9"),
    ("POST", "/v1/models/support-bot/deploy", {"version": 2}, 409, "is TRAINING and cannot be deployed"),
    ("POST", "/v1/models/support-bot/deploy", {"version": 3}, 409, "is FAILED and cannot be deployed"),
    ("POST", "/v1/models/support-bot/rollback", {"target_version": 1}, 409, "nothing to roll back"),
    ("POST", "/v1/models/support-bot/versions", '{"base_model": "x",', 400, "not valid JSON"),
    ("POST", "/v1/models/support-bot/versions", VALID | {"dataset_size": -1}, 422, "dataset_size"),
    ("POST", "/v1/models/support-bot/versions", VALID | {"accuracy": 1.5}, 422, "accuracy"),
    ("POST", "/v1/models/support-bot/versions", VALID | {"accuracy": -0.01}, 422, "accuracy"),
    ("POST", "/v1/models/bad name/versions", VALID, 422, "Invalid model name 'bad name'"),
    ("POST", "/v1/models/support-bot/versions/1/status", {"status": "LIVE"}, 422, "Unknown status 'LIVE'"),
    ("POST", "/v1/models/support-bot/versions/3/status", {"status": "READY"}, 409, "FAILED is final"),
    ("POST", "/v1/models/support-bot/versions", VALID | {"colour": "red"}, 422, "colour"),
    ("POST", "/v1/models/support-bot/versions/x/status", {"status": "READY"}, 422, "version must be a number"),
    ("GET", "/v1/audit?type=Nope", None, 422, "Unknown event type 'Nope'"),
    ("GET", "/v1/audit?cursor=%%%", None, 422, "cursor is not valid"),
    ("GET", "/v1/deployments?as_of=yesterday", None, 422, "as_of"),
    ("POST", "/v1/projections/prompts/rebuild", None, 404, "Unknown projection 'prompts'"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "phrase"), BAD_REQUESTS)
def test_bad_input_gets_a_clear_problem_and_appends_nothing(
    one_ready_one_training_one_failed: TestClient, runtime: Runtime, method, path, body, status, phrase
) -> None:
    client = one_ready_one_training_one_failed
    head = runtime.engine.log.head()
    if isinstance(body, str):
        r = client.request(method, path, content=body, headers={"content-type": "application/json"})
    else:
        r = client.request(method, path, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == status and problem["title"] and problem["type"].startswith("/problems/")
    assert phrase in problem["detail"]
    assert runtime.engine.log.head() == head


def test_rollback_to_a_newer_version_is_refused(client: TestClient, runtime: Runtime) -> None:
    register(client)
    register(client)
    client.post("/v1/models/support-bot/deploy", json={"version": 1})
    head = runtime.engine.log.head()
    r = client.post("/v1/models/support-bot/rollback", json={"target_version": 2})
    assert r.status_code == 409 and "rollback goes to a version older than the deployed version 1" in r.json()["detail"]
    assert runtime.engine.log.head() == head


def test_the_same_post_twice_with_one_idempotency_key_appends_once_and_answers_the_same(
    client: TestClient, runtime: Runtime
) -> None:
    headers = {"Idempotency-Key": "4b1d0c8e-retry", "X-Actor": "alice"}
    first = client.post("/v1/models/support-bot/versions", json=VALID, headers=headers)
    head = runtime.engine.log.head()
    second = client.post("/v1/models/support-bot/versions", json=VALID, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    assert second.headers["idempotent-replayed"] == "true"
    assert runtime.engine.log.head() == head == pos(2)
    assert [v["version"] for v in client.get("/v1/models/support-bot/versions").json()["items"]] == [1]


def test_an_idempotency_key_reused_for_another_request_is_refused(client: TestClient, runtime: Runtime) -> None:
    headers = {"Idempotency-Key": "k-1"}
    client.post("/v1/models/support-bot/versions", json=VALID, headers=headers)
    r = client.post("/v1/models/support-bot/versions", json=VALID | {"dataset_size": 11}, headers=headers)
    assert r.status_code == 422 and "used for a different request" in r.json()["detail"]
    assert runtime.engine.log.head() == pos(2)


def test_a_refused_request_is_replayed_as_refused(client: TestClient, runtime: Runtime) -> None:
    headers = {"Idempotency-Key": "k-2"}
    first = client.post("/v1/models/nobody/deploy", json={"version": 1}, headers=headers)
    second = client.post("/v1/models/nobody/deploy", json={"version": 1}, headers=headers)
    assert first.status_code == second.status_code == 404 and first.content == second.content


def test_deploy_with_a_stale_if_match_is_refused_and_with_the_current_etag_succeeds(
    client: TestClient, runtime: Runtime
) -> None:
    register(client)
    register(client)
    etag = client.get("/v1/models/support-bot").headers["etag"]
    assert (
        client.post("/v1/models/support-bot/deploy", json={"version": 1}, headers={"If-Match": etag}).status_code == 200
    )
    head = runtime.engine.log.head()
    stale = client.post("/v1/models/support-bot/deploy", json={"version": 2}, headers={"If-Match": etag})
    assert stale.status_code == 412 and "expected 3" in stale.json()["detail"]
    assert runtime.engine.log.head() == head
    current = client.get("/v1/models/support-bot").headers["etag"]
    r = client.post("/v1/models/support-bot/rollback", json={"target_version": 1}, headers={"If-Match": current})
    assert r.status_code == 409  # the ETag matched; the rule (1 is already deployed) did not
    ok = client.post("/v1/models/support-bot/deploy", json={"version": 2}, headers={"If-Match": current})
    assert ok.status_code == 200 and ok.headers["etag"] == '"5"'
    bad = client.post("/v1/models/support-bot/deploy", json={"version": 1}, headers={"If-Match": "yesterday"})
    assert bad.status_code == 400 and "is not an ETag" in bad.json()["detail"]


TOKEN = "s3cret-token-for-ops-0001"


@pytest.fixture
def authed(runtime: Runtime):
    settings = Settings(database_url=runtime.config.url, api_tokens=f"ops:{TOKEN}")
    with TestClient(create_app(settings, runtime)) as c:
        yield c


def test_with_tokens_on_the_actor_is_the_token_name_and_x_actor_is_ignored(authed: TestClient) -> None:
    r = authed.post(
        "/v1/models/support-bot/versions", json=VALID,
        headers={"Authorization": f"Bearer {TOKEN}", "X-Actor": "mallory"},
    )  # fmt: skip
    assert r.status_code == 201
    audit = authed.get("/v1/audit", headers={"Authorization": f"Bearer {TOKEN}"}).json()["items"]
    assert {e["actor"] for e in audit} == {"ops"}


def test_with_tokens_on_a_missing_or_wrong_token_is_401_and_appends_nothing(
    authed: TestClient, runtime: Runtime
) -> None:
    missing = authed.post("/v1/models/support-bot/versions", json=VALID)
    wrong = authed.post(
        "/v1/models/support-bot/versions", json=VALID,
        headers={"Authorization": "Bearer nope", "Idempotency-Key": "k"},
    )  # fmt: skip
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    assert authed.get("/healthz").status_code == 200  # health needs no token
    assert runtime.engine.log.head() == SEEDED


def test_the_openapi_document_describes_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/v1/models/{name}/versions", "/v1/models", "/v1/models/{name}", "/v1/models/{name}/versions/{v}",
        "/v1/models/{name}/versions/{v}/status", "/v1/models/{name}/deploy", "/v1/models/{name}/rollback",
        "/v1/deployments", "/v1/audit", "/v1/registry/export", "/v1/projections",
        "/v1/projections/{name}/rebuild", "/healthz",
    } <= paths  # fmt: skip
    deploy = spec["paths"]["/v1/models/{name}/deploy"]["post"]
    assert {"404", "409", "412", "422"} <= set(deploy["responses"])
    assert client.get("/docs").status_code == 200
