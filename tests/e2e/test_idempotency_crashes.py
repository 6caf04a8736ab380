"""Idempotency-Key survives requests that die: leases, take-overs, and the commit mark written
with the events; database failures answer 503; a committed command answers its success. Both stores."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator

import psycopg
import pytest
from eventsourcing import persistence
from fastapi.testclient import TestClient
from psycopg_pool import PoolTimeout

from adapters.idempotency import ReservationLost, current_reservation
from api.http.app import create_app
from api.http.errors import is_store_failure
from api.http.idempotency import request_hash
from api.runtime import Runtime
from api.settings import Settings
from tests.e2e.test_inferences import random_records

PATH = "/v1/inferences"


def batch(seed: int) -> bytes:
    return json.dumps({"records": random_records(3, seed=seed)}).encode()


def post(client: TestClient, body: bytes, key: str):
    headers = {"Idempotency-Key": key, "X-Actor": "alice", "Content-Type": "application/json"}
    return client.post(PATH, content=body, headers=headers)


def fingerprint(body: bytes) -> str:
    return request_hash("POST", PATH, b"", body)


def test_a_key_held_by_a_running_request_answers_409_with_the_lease_left_as_retry_after(
    client: TestClient, runtime: Runtime
) -> None:
    body = batch(20)
    runtime.idempotency.begin("alice", "k-running", fingerprint(body), lease=60)
    head = runtime.engine.log.head()
    r = post(client, body, "k-running")
    assert r.status_code == 409 and r.json()["type"] == "/problems/idempotency-key-in-progress"
    assert 55 <= int(r.headers["retry-after"]) <= 60
    assert runtime.engine.log.head() == head


def test_a_key_left_by_a_request_that_died_is_taken_over_after_its_lease_and_recorded_once(
    client: TestClient, runtime: Runtime
) -> None:
    body = batch(21)
    # a request that reserved its key and died: its lease (0 s here) has run out
    runtime.idempotency.begin("alice", "k-dead", fingerprint(body), lease=0)
    head = runtime.engine.log.head()
    first = post(client, body, "k-dead")
    assert (first.status_code, first.json()["accepted"]) == (200, 3)
    again = post(client, body, "k-dead")
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert runtime.engine.log.head() == head + 1


def test_a_retry_after_a_commit_whose_answer_was_lost_is_told_where_it_was_recorded_and_appends_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    body = batch(22)
    outcome = runtime.idempotency.begin("alice", "k-lost", fingerprint(body), lease=0)
    token = current_reservation.set(outcome.reservation)
    try:  # the request's command commits, with its mark; the server dies before storing the answer
        recorded = runtime.record_inferences(json.loads(body)["records"], actor="alice")
    finally:
        current_reservation.reset(token)
    head = runtime.engine.log.head()
    # the lease ran out, but a committed key is never taken over
    r = post(client, body, "k-lost")
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/idempotency-key-committed"
    assert r.json()["position"] == recorded.recorded.position == head
    assert f"min_position={head}" in r.json()["detail"]
    assert runtime.engine.log.head() == head


def test_a_request_whose_key_was_taken_over_cannot_commit_and_records_nothing(runtime: Runtime) -> None:
    body = batch(23)
    stale = runtime.idempotency.begin("alice", "k-taken", fingerprint(body), lease=0)
    fresh = runtime.idempotency.begin("alice", "k-taken", fingerprint(body), lease=60)
    assert (stale.kind, fresh.kind) == ("reserved", "reserved")
    assert stale.reservation.owner != fresh.reservation.owner
    head = runtime.engine.log.head()
    token = current_reservation.set(stale.reservation)
    try:
        with pytest.raises(ReservationLost):
            runtime.record_inferences(json.loads(body)["records"], actor="alice")
    finally:
        current_reservation.reset(token)
    assert runtime.engine.log.head() == head
    # the new owner's commit goes through
    token = current_reservation.set(fresh.reservation)
    try:
        assert runtime.record_inferences(json.loads(body)["records"], actor="alice").accepted == 3
    finally:
        current_reservation.reset(token)


def test_two_retries_racing_for_an_expired_key_are_given_it_once(runtime: Runtime) -> None:
    runtime.idempotency.begin("alice", "k-race", "h", lease=0)
    first = runtime.idempotency.begin("alice", "k-race", "h", lease=60)
    second = runtime.idempotency.begin("alice", "k-race", "h", lease=60)
    assert (first.kind, second.kind) == ("reserved", "in_progress")


def test_a_failed_request_frees_its_key_at_once_but_a_committed_one_keeps_it(runtime: Runtime) -> None:
    failed = runtime.idempotency.begin("alice", "k-failed", "h", lease=60).reservation
    runtime.idempotency.release(failed)
    assert runtime.idempotency.begin("alice", "k-failed", "h", lease=60).kind == "reserved"
    body = batch(24)
    committed = runtime.idempotency.begin("alice", "k-kept", fingerprint(body), lease=60).reservation
    token = current_reservation.set(committed)
    try:
        runtime.record_inferences(json.loads(body)["records"], actor="alice")
    finally:
        current_reservation.reset(token)
    runtime.idempotency.release(committed)
    assert runtime.idempotency.begin("alice", "k-kept", fingerprint(body)).kind == "committed"


def test_a_command_that_committed_answers_its_success_when_the_projections_fail_afterwards(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def projections_down(*_: object, **__: object) -> bool:
        raise persistence.OperationalError("consuming input failed")

    monkeypatch.setattr(runtime.engine, "reach", projections_down)
    body = {"base_model": "gpt-4o-mini", "job_id": "ftjob-1", "dataset_size": 10}
    r = client.post("/v1/models/support-bot/versions", json=body, headers={"X-Actor": "alice"})
    assert r.status_code == 201 and r.json()["version"] == 1
    monkeypatch.undo()
    page = client.get("/v1/models/support-bot/versions", params={"min_position": r.json()["position"]})
    assert [v["version"] for v in page.json()["items"]] == [1]


STORE_FAILURES = [
    psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
    PoolTimeout("couldn't get a connection after 5.00 sec"),
    psycopg.InterfaceError("the connection is closed"),
    persistence.OperationalError("connection refused"),
    persistence.InterfaceError("connection lost"),
    persistence.DatabaseError("unknown database error"),
    sqlite3.OperationalError("database is locked"),
]


@pytest.mark.parametrize("error", STORE_FAILURES, ids=lambda e: type(e).__name__)
def test_a_database_failure_answers_503_problem_json_with_retry_after(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def store_down(*_: object, **__: object) -> None:
        raise error

    monkeypatch.setattr("api.http.routes.costs.cost_summary", store_down)
    r = client.get("/v1/costs/summary")
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/store-unavailable" and int(r.headers["retry-after"]) >= 1


def test_what_the_library_wraps_is_classified_by_its_cause_and_a_programming_error_is_not_an_outage() -> None:
    try:
        try:
            raise psycopg.errors.AdminShutdown("terminating connection")
        except psycopg.Error as e:
            raise persistence.PersistenceError(str(e)) from e
    except persistence.PersistenceError as wrapped:
        assert is_store_failure(wrapped)
    assert not is_store_failure(persistence.IntegrityError("duplicate key"))
    assert not is_store_failure(persistence.ProgrammingError("syntax error"))
    assert not is_store_failure(sqlite3.OperationalError('near "SELEC": syntax error'))
    assert not is_store_failure(ValueError("bad input"))


@pytest.fixture
def hanging_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Runtime], threading.Event]]:
    release = threading.Event()

    def hang(runtime: Runtime) -> threading.Event:
        def head(*_: object) -> int:
            release.wait(10)  # bounded: a check that never returns while the test runs
            return 0

        monkeypatch.setattr(runtime.engine.log, "head", head)
        return release

    try:
        yield hang
    finally:
        release.set()


def test_healthz_answers_503_store_unavailable_while_the_store_check_hangs_and_ok_once_it_answers(
    runtime: Runtime, hanging_store: Callable[[Runtime], threading.Event]
) -> None:
    app = create_app(Settings(database_url=runtime.config.url, poll_jobs=False, follow_projections=False), runtime)
    with TestClient(app) as c:
        release = hanging_store(runtime)
        for _ in range(2):  # a second call answers too, while the first check still hangs
            r = c.get("/healthz")
            assert r.status_code == 503 and r.json()["type"] == "/problems/store-unavailable"
            assert r.json()["store"] == runtime.config.dialect and "did not answer" in r.json()["detail"]
        assert not release.is_set()  # answered while the check was still hanging
        release.set()
        ok = c.get("/healthz")
        assert ok.status_code == 200 and ok.json()["status"] == "ok"
