"""Fixtures shared by every level: each stored behaviour runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from api.runtime import Runtime
from tests.support.postgres_server import ThrowawayPostgres

# The suite must not pick up a developer's own configuration.
for _key in [k for k in os.environ if k.startswith("FT_") and k != "FT_PG_BIN"]:
    del os.environ[_key]

STORES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=STORES)
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty store of each kind; PostgreSQL gets a fresh database per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/events.sqlite3"
        return
    with request.getfixturevalue("postgres_server").database() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: ThrowawayPostgres) -> Iterator[str]:
    with postgres_server.database() as url:
        yield url


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    """An initialised store, opened as a worker would open it (table creation off on PostgreSQL)."""
    Runtime.init_schema(database_url)
    rt = Runtime.open(database_url)
    try:
        yield rt
    finally:
        rt.close()
