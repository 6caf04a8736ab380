"""Fault injection on real `ft-cli serve` processes: kill -9 during ingestion and during an
Idempotency-Key request, and PostgreSQL stopped and started under load. Bounded in count and
time; waits by condition, never by sleep; every server on 127.0.0.1, stopped by the test."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from typing import Any

import httpx
import psycopg
import pytest

from api.runtime import Runtime
from projections.costs import cost_summary, stored_inference_ids
from tests.e2e.test_inferences import random_records
from tests.support.postgres_server import ThrowawayPostgres
from tests.support.server import running_server

QUIET = {"FT_POLL_JOBS": "false"}
#: FT_DB_POOL_TIMEOUT for the outage test, and the bound every answer must arrive within
POOL_TIMEOUT = 2
ANSWER_BOUND = 3 * POOL_TIMEOUT + 2


def until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Polls `condition` (bounded in time) on an Event, not a sleep loop."""
    tick, deadline = threading.Event(), time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        tick.wait(0.02)


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def batches(prefix: str, count: int, size: int) -> list[list[dict[str, Any]]]:
    out = []
    for b in range(count):
        records = random_records(size, seed=b)
        for i, r in enumerate(records):
            r["id"] = f"{prefix}-{b}-{i}"
        out.append(records)
    return out


def stored_once(database_url: str, ids: list[str]) -> tuple[set[str], int]:
    """Which of `ids` the cost projection holds, and how many inferences it counts in all."""
    runtime = Runtime.open(database_url)
    try:
        runtime.engine.catch_up()
        return stored_inference_ids(runtime.db, ids), cost_summary(runtime.db)["total"]["inferences"]
    finally:
        runtime.close()


def test_a_server_killed_during_ingestion_keeps_every_acknowledged_record_exactly_once(database_url: str) -> None:
    Runtime.init_schema(database_url)
    work = batches("kill", 3 * 8, 40)  # 3 clients, up to 8 batches each
    acknowledged: set[str] = set()
    refused: list[str] = []
    guard, enough = threading.Lock(), threading.Event()
    started: list[subprocess.Popen[str]] = []

    def client(url: str, mine: list[list[dict[str, Any]]]) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            for records in mine:
                try:
                    r = http.post("/v1/inferences", json={"records": records})
                except httpx.TransportError:
                    return  # the server died under this request: it was not acknowledged
                if r.status_code != 200:
                    refused.append(r.text)
                    return
                with guard:
                    acknowledged.update(x["id"] for x in records)
                    if len(acknowledged) >= 4 * 40:
                        enough.set()

    with running_server(database_url, extra_env=QUIET, started=started) as url:
        clients = [threading.Thread(target=client, args=(url, work[c::3])) for c in range(3)]
        for t in clients:
            t.start()
        assert enough.wait(60), "the clients did not get 4 batches acknowledged"
        kill(started[0])
        for t in clients:
            t.join(30)
    assert refused == []
    assert 4 * 40 <= len(acknowledged) < len(work) * 40  # killed mid-way

    with running_server(database_url, extra_env=QUIET) as url, httpx.Client(base_url=url, timeout=30) as http:
        for records in work:  # every client retries everything it sent: duplicates are reported, not counted
            assert http.post("/v1/inferences", json={"records": records}).status_code == 200
    every_id = [r["id"] for records in work for r in records]
    stored, counted = stored_once(database_url, every_id)
    assert acknowledged <= stored
    assert stored == set(every_id) and counted == len(every_id)  # none twice


def _ingest_with_key(url: str, body: bytes, key: str, answers: list[Any]) -> None:
    headers = {"Idempotency-Key": key, "X-Actor": "alice", "Content-Type": "application/json"}
    try:
        answers.append(httpx.post(f"{url}/v1/inferences", content=body, headers=headers, timeout=60))
    except httpx.TransportError as e:
        answers.append(e)


def _retry_until_answered(url: str, body: bytes, key: str) -> httpx.Response:
    """A client's retry loop: it honours Retry-After while the dead request's lease runs out."""
    headers = {"Idempotency-Key": key, "X-Actor": "alice", "Content-Type": "application/json"}
    wait = threading.Event()
    for _ in range(10):
        r = httpx.post(f"{url}/v1/inferences", content=body, headers=headers, timeout=30)
        if r.status_code != 409 or r.json()["type"] != "/problems/idempotency-key-in-progress":
            return r
        wait.wait(float(r.headers["retry-after"]))
    raise AssertionError("the key stayed in progress after 10 retries")


@contextmanager
def events_table_locked(database_url: str):
    """Holds PostgreSQL's event table so a command waits inside its request, after its key is reserved."""
    table = "ft_events"  # eventsourcing 9.5 names PostgreSQL's table after the application ("ft")
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        conn.execute("SET lock_timeout = '30s'")  # a stuck writer fails the test instead of hanging it
        conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        yield
        conn.rollback()


def _reservation(database_url: str, key: str) -> dict[str, Any] | None:
    sql = "SELECT owner, committed_position, status_code FROM idempotency_requests WHERE key = ?"
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            row = conn.execute(sql, (key,)).fetchone()
        finally:
            conn.close()
        return dict(row) if row else None
    with psycopg.connect(database_url, autocommit=True, row_factory=psycopg.rows.dict_row, connect_timeout=10) as conn:
        return conn.execute(sql.replace("?", "%s"), (key,)).fetchone()


def test_a_key_whose_server_was_killed_mid_request_is_answered_after_a_restart_and_recorded_once(
    database_url: str,
) -> None:
    Runtime.init_schema(database_url)
    records = batches("held", 1, 500)[0]
    body, key = json.dumps({"records": records}).encode(), "k-killed-mid-request"
    lease = {"FT_IDEMPOTENCY_LEASE_SECONDS": "1"} | QUIET
    started: list[subprocess.Popen[str]] = []
    answers: list[Any] = []
    postgres = database_url.startswith("postgresql")
    with running_server(database_url, extra_env=lease, started=started) as url:
        # On PostgreSQL the command is held after its key is reserved; on SQLite it is killed
        # as soon as the key is reserved, wherever the command has got to.
        with events_table_locked(database_url) if postgres else _nothing():
            sender = threading.Thread(target=_ingest_with_key, args=(url, body, key, answers))
            sender.start()
            until(lambda: _reservation(database_url, key) is not None, timeout=30, what="the key's reservation")
            kill(started[0])
            sender.join(30)
    assert isinstance(answers[0], httpx.TransportError)  # the client never got an answer
    if postgres:
        assert _reservation(database_url, key)["committed_position"] is None  # died before committing

    with running_server(database_url, extra_env=lease) as url:
        retry = _retry_until_answered(url, body, key)
        again = _retry_until_answered(url, body, key)
    if retry.status_code == 200:  # the dead request had not committed: the retry took its key over
        assert retry.json()["accepted"] == 500 and again.content == retry.content
        assert again.headers["idempotent-replayed"] == "true"
    else:  # killed between its commit and its answer (possible on SQLite only): recorded, not again
        assert not postgres
        assert retry.status_code == 409 and retry.json()["type"] == "/problems/idempotency-key-committed"
    stored, counted = stored_once(database_url, [r["id"] for r in records])
    assert len(stored) == counted == 500


@contextmanager
def _nothing():
    yield


class RestartablePostgres(ThrowawayPostgres):
    """A second throwaway server that a test may stop and start again on the same data."""

    OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"

    def pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), *args)

    def stop_server(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "stop")

    def start_server(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 {self.OPTIONS}"
        self.pg_ctl("-o", options, "-l", str(self.data / "server.log"), "-w", "start")


@pytest.fixture
def restartable_postgres():
    server = RestartablePostgres().start()
    try:
        yield server
    finally:
        with suppress(subprocess.CalledProcessError):  # already stopped by a failed test
            server.stop()


def test_postgresql_stopped_and_started_under_load_answers_2xx_or_503_in_bounded_time_and_loses_nothing(
    restartable_postgres: RestartablePostgres,
) -> None:
    url_db = restartable_postgres.url(restartable_postgres.create_database())
    Runtime.init_schema(url_db)
    env = QUIET | {"FT_DB_POOL_TIMEOUT": str(POOL_TIMEOUT)}
    work = iter(batches("outage", 2000, 20))
    guard, stop = threading.Lock(), threading.Event()
    outcomes: list[tuple[str, Any, float]] = []  # (kind, status or error, seconds)
    acknowledged: set[str] = set()
    health: list[tuple[int, float]] = []

    def client(url: str) -> None:
        with httpx.Client(base_url=url, timeout=ANSWER_BOUND + 20) as http:
            while not stop.is_set():
                with guard:
                    records = next(work)
                t0 = time.monotonic()
                try:
                    r = http.post("/v1/inferences", json={"records": records})
                except httpx.TransportError as e:
                    outcomes.append(("no answer", type(e).__name__, time.monotonic() - t0))
                    continue
                outcomes.append(("answer", r, time.monotonic() - t0))
                if r.status_code == 200:
                    with guard:
                        acknowledged.update(x["id"] for x in records)

    def succeeded_since(n: int) -> bool:
        return any(kind == "answer" and r.status_code == 200 for kind, r, _ in outcomes[n:])

    def probe(http: httpx.Client) -> int:
        t0 = time.monotonic()
        health.append((http.get("/healthz", timeout=1.0).status_code, time.monotonic() - t0))  # raises past 1 s
        return health[-1][0]

    with running_server(url_db, extra_env=env) as url, httpx.Client(base_url=url) as http:
        clients = [threading.Thread(target=client, args=(url,)) for _ in range(3)]
        for t in clients:
            t.start()
        try:
            until(lambda: succeeded_since(0), timeout=30, what="ingestion to start")
            restartable_postgres.stop_server()
            during = len(outcomes)
            until(lambda: sum(1 for k, r, _ in outcomes[during:] if k == "answer" and r.status_code == 503) >= 3,
                  timeout=30, what="503 answers during the outage")  # fmt: skip
            for _ in range(3):
                probe(http)
            assert {status for status, _ in health} == {503}
            restartable_postgres.start_server()
            after = len(outcomes)
            until(lambda: succeeded_since(after), timeout=60, what="the service to recover without a restart")
            # each application has its own pool, reconnecting with its own backoff: poll, bounded
            until(lambda: probe(http) == 200, timeout=30, what="/healthz to say ok again")
        finally:
            stop.set()
            for t in clients:
                t.join(ANSWER_BOUND + 30)

    assert [o for o in outcomes if o[0] != "answer"] == []  # every request got an answer
    for _, r, seconds in outcomes:
        assert r.status_code in (200, 503), r.text
        assert seconds <= ANSWER_BOUND, f"an answer took {seconds:.1f} s"
        if r.status_code == 503:
            assert r.headers["content-type"] == "application/problem+json" and int(r.headers["retry-after"]) >= 1
            assert r.json()["type"] == "/problems/store-unavailable"
    assert all(seconds <= 1.0 for _, seconds in health)
    stored, counted = stored_once(url_db, sorted(acknowledged))
    assert stored == acknowledged and counted >= len(acknowledged)  # nothing acknowledged was lost
