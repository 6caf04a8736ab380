"""20 concurrent deploys and rollbacks on one model, against real server processes.

Every request gets a 2xx or a 409, never a 5xx, and replaying the model's history
event by event shows at most one DEPLOYED version at every point.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from api.runtime import Runtime
from domain.registry import VersionStatus, model_id
from tests.support.server import running_server

VERSIONS = 6
REQUESTS = 20


def prepare(url: str) -> None:
    Runtime.init_schema(url)
    rt = Runtime.open(url)
    try:
        for n in range(VERSIONS):
            rt.registry.register_version("hot-model", base_model="b", job_id=f"j{n}", dataset_size=n, actor="setup")
        rt.registry.deploy("hot-model", VERSIONS, actor="setup")
    finally:
        rt.close()


def storm(base_urls: list[str]) -> list[int]:
    rng = random.Random(42)
    requests = []
    for i in range(REQUESTS):
        base = base_urls[i % len(base_urls)]
        if i % 2:
            requests.append((base, "rollback", {"target_version": rng.randint(1, VERSIONS - 1), "reason": f"r{i}"}))
        else:
            requests.append((base, "deploy", {"version": rng.randint(1, VERSIONS), "reason": f"d{i}"}))

    def send(req: tuple[str, str, dict]) -> int:
        base, action, body = req
        with httpx2.Client(base_url=base, timeout=60) as c:
            return c.post(f"/v1/models/hot-model/{action}", json=body, headers={"X-Actor": f"t-{action}"}).status_code

    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        return list(pool.map(send, requests))


def assert_history_never_had_two_deployed(url: str) -> int:
    rt = Runtime.open(url)
    try:
        events = list(rt.registry.events.get(model_id("hot-model")))
        deployed_counts = []
        for k in range(1, len(events) + 1):
            model = rt.registry.repository.get(model_id("hot-model"), version=k)
            deployed_counts.append(model.statuses.count(VersionStatus.DEPLOYED.value))
        assert max(deployed_counts) == 1
        # the projection agrees with the replayed aggregate
        rt.engine.catch_up()
        with rt.db.read() as cur:
            row = cur.execute("SELECT deployed_version FROM dep_models WHERE model = 'hot-model'").fetchone()
        assert row["deployed_version"] == model.deployed_number
        return len(events)
    finally:
        rt.close()


def test_concurrent_deploys_and_rollbacks_from_many_threads_get_2xx_or_409(database_url: str) -> None:
    prepare(database_url)
    with running_server(database_url) as base:
        codes = storm([base])
    assert set(codes) <= {200, 409} and 200 in codes, codes
    events = assert_history_never_had_two_deployed(database_url)
    assert events == 1 + VERSIONS + 1 + codes.count(200)  # every 2xx appended exactly one event


@pytest.mark.slow
def test_two_server_processes_sharing_postgresql_keep_one_deployed_version(postgres_url: str) -> None:
    prepare(postgres_url)
    with running_server(postgres_url) as first, running_server(postgres_url) as second:
        codes = storm([first, second])
        head = Runtime.open(postgres_url)
        position = head.engine.log.head()
        head.close()
        # read-your-writes across processes: both serve the same status once they reach the head
        statuses = [
            httpx2.get(f"{b}/v1/deployments/hot-model", params={"min_position": position}, timeout=30).json()
            for b in (first, second)
        ]
    assert set(codes) <= {200, 409} and 200 in codes, codes
    events = assert_history_never_had_two_deployed(postgres_url)
    assert events == 1 + VERSIONS + 1 + codes.count(200)
    assert statuses[0] == statuses[1] and statuses[0]["deployed_version"] is not None
