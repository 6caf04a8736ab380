"""FT_DATABASE_URL and the service settings are checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.store import StoreConfigError, parse_database_url
from api.settings import Settings, parse_tokens


def test_the_default_store_is_an_embedded_sqlite_file() -> None:
    config = parse_database_url(None)
    assert config.dialect == "sqlite"
    assert config.sqlite_path == Path(".ft/events.sqlite3")
    assert config.eventsourcing_env(create_table=False) == {
        # the recorder that marks an Idempotency-Key committed in the events' own transaction
        "APPLICATION_RECORDER_TOPIC": "adapters.sqlite_recorder:MarkingSQLiteRecorder",
        "CREATE_TABLE": "n",
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": ".ft/events.sqlite3",
        "SQLITE_LOCK_TIMEOUT": "30",
    }


def test_an_absolute_sqlite_path_uses_four_slashes() -> None:
    assert parse_database_url("sqlite:////var/lib/ft/e.db").sqlite_path == Path("/var/lib/ft/e.db")


def test_a_postgresql_url_maps_onto_eventsourcing_settings() -> None:
    config = parse_database_url("postgresql://ft:s%40cret@db.internal:6543/ftprod")
    env = config.eventsourcing_env(create_table=True)
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == ("db.internal", "6543", "ftprod")
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["CREATE_TABLE"]) == ("ft", "s@cret", "y")
    assert "POSTGRES_ENABLE_DB_FUNCTIONS" not in env
    assert config.display_url == "postgresql://ft:***@db.internal:6543/ftprod"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x/y", "is not supported"),
        ("sqlite:///:memory:", "must name a SQLite file"),
        ("sqlite://relative", "is not a SQLite file URL"),
        ("postgresql://host:5432/", "names no database"),
    ],
)
def test_an_unusable_database_url_is_refused_with_the_fix(url: str, message: str) -> None:
    with pytest.raises(StoreConfigError, match=message):
        parse_database_url(url)


def test_api_tokens_map_each_token_to_its_actor_name() -> None:
    assert parse_tokens("alice:aaaaaaaaaaaaaaaa1, ci:bbbbbbbbbbbbbbbb2") == {
        "aaaaaaaaaaaaaaaa1": "alice",
        "bbbbbbbbbbbbbbbb2": "ci",
    }


@pytest.mark.parametrize(("spec", "message"), [("alice", "name:token"), ("alice:short", "too short")])
def test_malformed_api_tokens_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tokens(spec)


def test_serving_beyond_loopback_without_tokens_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="Refusing to serve on 0.0.0.0 without authentication"):
        Settings(host="0.0.0.0")
    assert Settings(host="0.0.0.0", api_tokens="ops:" + "t" * 20).host == "0.0.0.0"
    assert Settings(host="127.0.0.1").host == "127.0.0.1"
