from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.http.app import create_app
from api.runtime import Runtime
from api.settings import Settings


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=runtime.config.url, read_wait_seconds=0.3, poll_jobs=False), runtime)
    with TestClient(app) as c:
        yield c


def register(client: TestClient, name: str = "support-bot", **fields) -> dict:
    body = {"base_model": "gpt-4o-mini-2024-07-18", "job_id": "ftjob-1", "dataset_size": 500} | fields
    response = client.post(f"/v1/models/{name}/versions", json=body, headers={"X-Actor": "alice"})
    assert response.status_code == 201, response.text
    return response.json()
