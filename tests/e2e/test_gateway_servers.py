"""The gateway in real `ft-cli serve` processes: killed with kill -9 under load, and two workers sharing one
PostgreSQL store. Bounded in count and time; waits by position or answer, never by sleep."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from api.runtime import Runtime
from tests.e2e.test_faults import kill, until
from tests.support.gateway import APP_TOKEN, FT_MODEL, MESSAGES, UPSTREAM_KEY, upstream_process
from tests.support.server import running_server

AUTH = {"Authorization": f"Bearer {APP_TOKEN}"}


def server_env(upstream: str, journal: Path) -> dict[str, str]:
    return {
        "FT_POLL_JOBS": "false", "FT_API_TOKENS": f"app:{APP_TOKEN}", "FT_GATEWAY_JOURNAL_DIR": str(journal),
        "FT_ENDPOINTS": json.dumps({"remote": {"base_url": upstream, "api_key": UPSTREAM_KEY}}),
        "FT_PROJECTION_INTERVAL": "0.05",
    }  # fmt: skip


def deploy(url: str, model: str = FT_MODEL, *, name: str = "support-bot") -> int:
    """Registers and deploys a version served by the remote upstream; returns the deploy's position."""
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as api:
        body = {"base_model": "gpt-4o-mini-2024-07-18", "job_id": f"ftjob-{model}", "dataset_size": 10,
                "serving": {"upstream": "remote", "model": model}}  # fmt: skip
        number = api.post(f"/v1/models/{name}/versions", json=body).json()["version"]
        r = api.post(f"/v1/models/{name}/deploy", json={"version": number})
        assert r.status_code == 200, r.text
        return r.json()["position"]


def routes_reach(url: str, position: int) -> None:
    until(lambda: httpx.get(f"{url}/healthz").json()["gateway"]["routes_position"] >= position, timeout=30,
          what=f"the gateway's routes at {url} to reach position {position}")  # fmt: skip


def all_calls(url: str) -> list[dict[str, Any]]:
    calls, cursor = [], None
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as api:
        while True:
            page = api.get("/v1/gateway/calls", params={"limit": 1000} | ({"cursor": cursor} if cursor else {})).json()
            calls += page["calls"]
            cursor = page["next_cursor"]
            if cursor is None:
                return calls


@contextmanager
def load(url: str, clients: int = 4) -> Iterator[list[str]]:
    """Callers sending calls until the block ends; yields the call id of every answered call."""
    answered: list[str] = []
    stop = threading.Event()

    def caller() -> None:
        sdk = openai.OpenAI(base_url=f"{url}/gateway/v1", api_key=APP_TOKEN, max_retries=0, timeout=10)
        for _ in range(100_000):  # bounded; the block ends it long before
            if stop.is_set():
                return
            try:
                raw = sdk.chat.completions.with_raw_response.create(model="support-bot", messages=MESSAGES)
            except openai.APIError:  # the server is gone
                return
            answered.append(raw.headers["x-ft-call-id"])

    threads = [threading.Thread(target=caller) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        yield answered
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)


def test_a_server_killed_under_load_loses_at_most_its_last_flush_and_the_next_start_reports_it(
    database_url: str, tmp_path: Path
) -> None:
    Runtime.init_schema(database_url)
    journal = tmp_path / "journal"
    started: list[subprocess.Popen[str]] = []
    printed: list[str] = []
    with upstream_process() as upstream:
        env = server_env(upstream, journal)
        with running_server(database_url, extra_env=env, started=started, log=printed) as url:
            routes_reach(url, deploy(url))
            with load(url) as answered:
                until(lambda: len(answered) >= 600, timeout=120, what="600 answered calls")
                kill(started[0])
        assert [p.name.endswith(f"-{started[0].pid}.counters") for p in journal.iterdir()] == [True]
        again: list[str] = []
        with running_server(database_url, extra_env=env, log=again) as url:
            health = httpx.get(f"{url}/healthz").json()["gateway"]
            recorded = all_calls(url)
    ids = set(answered)
    stored = [c["id"] for c in recorded]
    missing, lost = ids - set(stored), health["lost_at_last_stop"]
    assert len(stored) == len(set(stored))  # no call twice
    assert len(ids - missing) >= 300  # answered calls were recorded all along, before the kill
    # the report counts every answered call it lost, and the calls the 4 callers were waiting for
    assert len(missing) <= lost <= len(missing) + 4
    # and what was lost is the latest calls (the last flush interval's), not older ones
    assert not missing & set(answered[: max(0, len(answered) - len(missing) - 8)])
    assert any(f"stopped without writing {lost} call record(s)" in line for line in again)
    assert not list(journal.glob(f"*-{started[0].pid}.counters"))  # reported once, then forgotten
    assert UPSTREAM_KEY not in "".join(printed + again) and APP_TOKEN not in "".join(printed + again)


@pytest.fixture
def two_servers(postgres_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    Runtime.init_schema(postgres_url)
    with upstream_process() as upstream:
        env = server_env(upstream, tmp_path / "journal")
        with running_server(postgres_url, extra_env=env) as a, running_server(postgres_url, extra_env=env) as b:
            yield a, b


def test_two_workers_on_postgresql_share_the_routes_and_the_records(two_servers: tuple[str, str]) -> None:
    a, b = two_servers
    routes_reach(b, deploy(a, "ft:gpt-4o-mini-2024-07-18:acme::one"))

    def served_by(url: str) -> tuple[str, str]:
        sdk = openai.OpenAI(base_url=f"{url}/gateway/v1", api_key=APP_TOKEN, max_retries=0)
        raw = sdk.chat.completions.with_raw_response.create(model="support-bot", messages=MESSAGES)
        return raw.headers["x-ft-model-version"], raw.headers["x-ft-call-id"]

    assert served_by(b)[0] == served_by(a)[0] == "1"
    routes_reach(b, deploy(a, "ft:gpt-4o-mini-2024-07-18:acme::two"))  # deployed through a, seen by b
    version, on_b = served_by(b)
    _, on_a = served_by(a)
    assert version == "2"

    def recorded() -> set[str]:
        return {c["id"] for c in all_calls(a)}

    until(lambda: {on_a, on_b} <= recorded(), timeout=30, what="both workers' records in the shared view")
