"""FT_DATABASE_URL and the service settings are checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.store import StoreConfigError, parse_database_url
from api.settings import ProviderSettings, Settings, parse_tokens, settings_error_message


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


PROVIDER_VARIABLES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_API_VERSION",
                      "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OLLAMA_HOST", "OLLAMA_API_KEY")  # fmt: skip


@pytest.fixture
def clean_providers(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROVIDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_providers_variables_are_read_under_their_sdks_names_into_one_settings(
    clean_providers: pytest.MonkeyPatch,
) -> None:
    clean_providers.setenv("OPENAI_API_KEY", "sk-test-openai-key-123456")
    clean_providers.setenv("OPENAI_BASE_URL", "https://llm.example.test/v1")
    clean_providers.setenv("OPENAI_ORG_ID", "org-7")
    clean_providers.setenv("OLLAMA_HOST", "gpu-box:11434")
    clean_providers.setenv("FT_LOCAL_RUNS_DIR", "/srv/runs")
    clean_providers.setenv("FT_LOCAL_HARDWARE", "h100")
    settings = Settings()
    openai = settings.openai()
    assert (openai.api_key, openai.base_url, openai.organization) == ("sk-test-openai-key-123456",
                                                                     "https://llm.example.test/v1", "org-7")
    assert settings.ollama_host == "http://gpu-box:11434" and settings.local_runs_dir == Path("/srv/runs")
    assert settings.local_hardware == "H100"  # the hardware table's own name
    assert "sk-test-openai-key-123456" not in repr(settings) + settings.model_dump_json()
    assert ProviderSettings().openai() == openai  # the CLI's part reads the same


def test_azure_is_chosen_when_its_endpoint_is_set_and_takes_its_own_key(clean_providers: pytest.MonkeyPatch) -> None:
    clean_providers.setenv("OPENAI_API_KEY", "sk-test-openai-key-123456")
    clean_providers.setenv("AZURE_OPENAI_ENDPOINT", "https://team.openai.azure.com")
    clean_providers.setenv("AZURE_OPENAI_API_KEY", "azure-key-0123456789")
    clean_providers.setenv("OPENAI_API_VERSION", "2025-04-01-preview")
    openai = ProviderSettings().openai()
    assert openai.api_key == "azure-key-0123456789" and openai.azure_endpoint == "https://team.openai.azure.com"
    assert openai.describe() == "Azure OpenAI at https://team.openai.azure.com (api-version 2025-04-01-preview)"


@pytest.mark.parametrize(("variables", "message"), [
    ({"AZURE_OPENAI_ENDPOINT": "https://team.openai.azure.com"},
     "AZURE_OPENAI_ENDPOINT is set without OPENAI_API_VERSION: set it too (for example 2025-04-01-preview)"),
    ({"OPENAI_BASE_URL": "llm.example.test/v1"}, "OPENAI_BASE_URL 'llm.example.test/v1' is not an http(s) URL"),
    ({"OLLAMA_HOST": "ftp://gpu-box"}, "OLLAMA_HOST 'ftp://gpu-box' is not an http(s) URL"),
    ({"FT_LOCAL_HARDWARE": "TPU"}, "FT_LOCAL_HARDWARE: Unknown hardware 'TPU': use one of"),
])  # fmt: skip
def test_a_malformed_provider_variable_stops_the_start_naming_the_variable_and_the_fix(
    clean_providers: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        clean_providers.setenv(name, value)
    for settings in (Settings, ProviderSettings):  # the server's start and a CLI command's
        with pytest.raises(ValidationError) as refused:
            settings()
        assert message in settings_error_message(refused.value)
