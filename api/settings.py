"""All configuration, from environment variables, validated once at start-up.

`Settings` is the server's: FT_* variables, and the providers' own (OPENAI_*, AZURE_OPENAI_*,
OLLAMA_*), named as their SDKs name them. `ProviderSettings`, the part the CLI needs too (where
jobs, live evaluations and publishing go, and where local runs run), is its base class, so the
CLI reads the same variables with the same checks without the server's rules."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters import outbound
from adapters.idempotency import DEFAULT_LEASE_SECONDS
from adapters.store import DEFAULT_DATABASE_URL, DEFAULT_POOL_TIMEOUT, parse_database_url
from domain.errors import InvalidInput

if TYPE_CHECKING:
    from adapters.openai_jobs import OpenAISettings

MIN_TOKEN_LENGTH = 16


def parse_tokens(spec: str) -> dict[str, str]:
    """'alice:tok1,ci:tok2' -> {'tok1': 'alice', 'tok2': 'ci'} (token to actor name)."""
    tokens: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, token = item.partition(":")
        name, token = name.strip(), token.strip()
        if not sep or not name or not token:
            raise ValueError(f"FT_API_TOKENS entry {item!r} is not of the form name:token")
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"FT_API_TOKENS token for {name!r} is too short ({len(token)} characters): use at least "
                f"{MIN_TOKEN_LENGTH}, for example from `python -c 'import secrets; print(secrets.token_urlsafe(24))'`"
            )
        if token in tokens:
            raise ValueError(f"FT_API_TOKENS gives the same token to {tokens[token]!r} and {name!r}")
        tokens[token] = name
    return tokens


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


ENDPOINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
ENDPOINT_EXAMPLE = (
    'FT_ENDPOINTS=\'{"NAME": {"base_url": "https://host/v1", "api_key": "...", "kind": "openai"}}\' '
    '(kind "ollama" for an Ollama server)'
)


class Endpoint(BaseModel):
    """An outbound endpoint the server may call on a client's request, with its own key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(description="http(s) base URL: OpenAI-compatible (ending in /v1) or Ollama's root")
    kind: Literal["openai", "ollama"] = "openai"
    #: a secret: SecretStr keeps it out of repr, logs and model dumps
    api_key: SecretStr | None = None

    @field_validator("base_url")
    @classmethod
    def _valid_base_url(cls, value: str) -> str:
        value = value.strip()
        if "://" not in value:  # OLLAMA_HOST may be host:port, as the ollama client allows
            value = "http://" + value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint base_url {value!r} is not an http(s) URL with a host")
        if parts.username or parts.password or parts.query or parts.fragment:
            # the URL is recorded with evaluations and jobs: a secret belongs in api_key
            raise ValueError("an endpoint base_url takes no user:password, query or fragment: put the key in api_key")
        return value.rstrip("/")

    @property
    def chat_url(self) -> str:
        """The OpenAI-compatible base URL chat completions go to (Ollama serves it under /v1)."""
        return self.base_url + "/v1" if self.kind == "ollama" else self.base_url

    @property
    def key(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None


_ENDPOINTS = TypeAdapter(dict[str, Endpoint])




def _check_names(endpoints: dict[str, Endpoint]) -> dict[str, Endpoint]:
    for name in endpoints:
        if not ENDPOINT_NAME.fullmatch(name):
            raise ValueError(f"FT_ENDPOINTS name {name!r} is not valid: use letters, digits, '.', '_' and '-' "
                             "(at most 64)")  # fmt: skip
    return endpoints


def endpoints_from_env() -> dict[str, Endpoint]:
    """Every configured endpoint (FT_ENDPOINTS over the implicit ones), for the CLI, which has no Settings."""
    return ProviderSettings().outbound_endpoints


def pick_endpoint(endpoints: Mapping[str, Endpoint], name: str, *, field: str, kind: str | None = None) -> Endpoint:
    """The configured endpoint a client names; a URL or an unknown name is refused (422) with the fix."""
    found = endpoints.get(name)
    if found is not None and kind in (None, found.kind):
        return found
    usable = sorted(n for n, e in endpoints.items() if kind in (None, e.kind))
    given = "a URL" if "://" in name or "/" in name else f"{name[:100]!r}"
    raise InvalidInput(
        f"{field} must be the name of an endpoint configured on the server, not {given}: configured"
        f"{' ' + kind if kind else ''} endpoints are {', '.join(usable) or '(none)'}. The server sends an "
        f"endpoint's own key only to that endpoint; to add one, set {ENDPOINT_EXAMPLE} where the server runs.",
        slug="unknown-endpoint",
    )  # fmt: skip


def _url(name: str, value: str | None) -> str | None:
    """An http(s) URL with a host, or None for an empty variable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} {value!r} is not an http(s) URL with a host, such as https://host/v1")
    return value


class CaptureSetting(BaseModel):
    """How the gateway turns a model's successful calls into collected examples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_rate: float = Field(ge=0, le=1, description="the share of successful calls kept")
    redact: list[str] | None = Field(
        None, description="regular expressions whose matches become [REDACTED]; omitted: e-mail addresses, keys "
        "and tokens, and long numbers; [] keeps the text as it is",
    )  # fmt: skip

    @field_validator("redact")
    @classmethod
    def _compiles(cls, value: list[str] | None) -> list[str] | None:
        for pattern in value or []:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"redact pattern {pattern!r} is not a regular expression: {e}") from None
        return value


class ProviderSettings(BaseSettings):
    """Where fine-tuning jobs, live evaluations and publishing go, and where local runs run."""

    model_config = SettingsConfigDict(env_prefix="FT_", extra="ignore", populate_by_name=True)

    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    openai_org_id: str | None = Field(None, validation_alias="OPENAI_ORG_ID")
    openai_api_version: str | None = Field(None, validation_alias="OPENAI_API_VERSION")
    azure_openai_endpoint: str | None = Field(None, validation_alias="AZURE_OPENAI_ENDPOINT")
    azure_openai_api_key: SecretStr | None = Field(None, validation_alias="AZURE_OPENAI_API_KEY")
    ollama_host: str = Field(DEFAULT_OLLAMA_HOST, validation_alias="OLLAMA_HOST")
    ollama_api_key: SecretStr | None = Field(None, validation_alias="OLLAMA_API_KEY")
    local_runs_dir: Path = Field(Path(".ft/runs"), description="where local runs keep script, data, log, export")
    local_hardware: str = Field("CPU", description="the hardware local runs' time is estimated for")
    endpoints: dict[str, Endpoint] = Field(
        default_factory=dict,
        description="outbound endpoints by name, as JSON {name: {base_url, api_key, kind: openai|ollama}}; "
        "`openai` (OPENAI_BASE_URL, OPENAI_API_KEY) and `ollama` (OLLAMA_HOST) exist unless given here",
    )

    @field_validator("openai_base_url", "azure_openai_endpoint", mode="before")
    @classmethod
    def _valid_urls(cls, value: str | None, info: Any) -> str | None:
        return _url(info.field_name.upper(), value)

    @field_validator("ollama_host", mode="before")
    @classmethod
    def _valid_ollama_host(cls, value: str | None) -> str:
        if value is None or not str(value).strip():
            return DEFAULT_OLLAMA_HOST
        value = str(value).strip()  # host:port, as the ollama client allows
        return _url("OLLAMA_HOST", value if "://" in value else "http://" + value) or DEFAULT_OLLAMA_HOST

    @field_validator("openai_org_id", "openai_api_version", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if isinstance(value, str) else value

    @field_validator("openai_api_key", "azure_openai_api_key", "ollama_api_key", mode="before")
    @classmethod
    def _empty_key_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("local_hardware")
    @classmethod
    def _known_hardware(cls, value: str) -> str:
        from domain.errors import DomainError
        from domain.training_time import hardware

        try:
            return hardware(value).name
        except DomainError as e:
            raise ValueError(f"FT_LOCAL_HARDWARE: {e.detail}") from None

    @field_validator("endpoints")
    @classmethod
    def _valid_endpoint_names(cls, value: dict[str, Endpoint]) -> dict[str, Endpoint]:
        return _check_names(value)

    @model_validator(mode="after")
    def _azure_needs_a_version(self) -> ProviderSettings:
        if self.azure_openai_endpoint and not self.openai_api_version:
            raise ValueError("AZURE_OPENAI_ENDPOINT is set without OPENAI_API_VERSION: set it too (for example "
                             "2025-04-01-preview), or unset AZURE_OPENAI_ENDPOINT to use OpenAI.")  # fmt: skip
        return self

    def openai(self) -> OpenAISettings:
        """Where fine-tuning jobs go: Azure OpenAI when its endpoint is set, else OpenAI or the provider at
        OPENAI_BASE_URL."""
        from adapters.openai_jobs import OpenAISettings  # the SDK loads only for jobs

        key = (self.azure_openai_api_key if self.azure_openai_endpoint else None) or self.openai_api_key
        return OpenAISettings(api_key=key.get_secret_value() if key else None, base_url=self.openai_base_url,
                              organization=self.openai_org_id, azure_endpoint=self.azure_openai_endpoint,
                              api_version=self.openai_api_version)  # fmt: skip

    @property
    def implicit_endpoints(self) -> dict[str, Endpoint]:
        """`openai` from OPENAI_BASE_URL/OPENAI_API_KEY and `ollama` from OLLAMA_HOST/OLLAMA_API_KEY, as the
        SDKs read them; `azure` from AZURE_OPENAI_ENDPOINT/AZURE_OPENAI_API_KEY when that is set."""
        implicit = {
            "openai": Endpoint(base_url=self.openai_base_url or DEFAULT_OPENAI_URL, api_key=self.openai_api_key),
            "ollama": Endpoint(base_url=self.ollama_host, kind="ollama", api_key=self.ollama_api_key),
        }
        if self.azure_openai_endpoint:  # Azure's v1 API speaks OpenAI's, at /openai/v1, with the resource's key
            implicit["azure"] = Endpoint(base_url=self.azure_openai_endpoint.rstrip("/") + "/openai/v1",
                                         api_key=self.azure_openai_api_key)  # fmt: skip
        return implicit

    @cached_property
    def outbound_endpoints(self) -> dict[str, Endpoint]:
        return self.implicit_endpoints | self.endpoints


class Settings(ProviderSettings):
    """The server's settings: FT_* variables, and the providers' (ProviderSettings)."""

    model_config = SettingsConfigDict(env_prefix="FT_", extra="ignore", populate_by_name=True)

    database_url: str = Field(DEFAULT_DATABASE_URL, description="sqlite:///PATH or postgresql://user:pass@host:port/db")
    api_tokens: str = Field("", description="name:token pairs, comma-separated; when set, every /v1 call needs one")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    allow_anonymous_remote: bool = Field(
        False, description="serve without tokens on a non-loopback address (unsafe; for trusted networks only)"
    )
    projection_interval: float = Field(0.2, gt=0, le=60, description="seconds between background catch-ups")
    read_wait_seconds: float = Field(5.0, ge=0, le=60, description="how long a read waits for min_position")
    db_pool_timeout: float = Field(
        DEFAULT_POOL_TIMEOUT, gt=0, le=60,
        description="seconds a request waits for a PostgreSQL connection (and to connect) before answering 503",
    )  # fmt: skip
    idempotency_lease_seconds: float = Field(
        DEFAULT_LEASE_SECONDS, ge=1, le=300,
        description="how long a running request holds its Idempotency-Key before a retry may take it over "
        "(renewed while the request runs)",
    )  # fmt: skip
    follow_projections: bool = Field(
        True,
        description="keep projections current in this server; false when `ft-cli projections run` workers do "
        "(the server then only applies its own commands' events, and ingestion gets the whole process)",
    )

    projection_worker: Literal["process", "thread"] = Field(
        "process",
        description="how `ft-cli serve` follows the log when follow_projections is on: in a worker process of "
        "its own (the default: ingestion keeps the server's CPU) or in a thread of the server",
    )

    poll_jobs: bool = Field(
        True, description="keep unfinished fine-tuning jobs current with their provider in this server"
    )
    job_poll_seconds: float = Field(
        5.0, gt=0, le=3600, description="seconds between job polls (each job backs off on provider trouble)"
    )

    allow_private_endpoints: bool = Field(
        False, description="let outbound calls reach loopback and private addresses (development and tests)"
    )
    data_dir: Path = Field(
        Path(".ft/files"), description="the folder the server opens files from on a client's behalf"
    )

    gateway: bool = Field(True, description="serve the OpenAI-compatible gateway under /gateway/v1")
    ab_policy_seconds: float = Field(
        5.0, gt=0, le=3600, description="seconds between two checks of the running A/B tests' policies"
    )
    run_ab_policies: bool = Field(True, description="carry out A/B tests' policies in this server")
    gateway_fallbacks: dict[str, str] = Field(
        default_factory=dict,
        description='each model\'s fallback, as JSON {"support-bot": "previous" | "other-model" | "other-model@2"}: '
        "where a call goes when the deployed version's upstream fails before answering",
    )
    gateway_capture: dict[str, CaptureSetting] = Field(
        default_factory=dict,
        description='models whose successful calls become collected examples, as JSON {"support-bot": '
        '{"sample_rate": 0.1, "redact": ["regex", ...]}} (off for every model not named)',
    )
    gateway_connect_timeout: float = Field(5.0, gt=0, le=120, description="seconds to connect to an upstream")
    gateway_read_timeout: float = Field(
        600.0, gt=0, le=3600, description="seconds an upstream may take between two bytes of an answer"
    )
    gateway_max_retry_after: float = Field(
        2.0, ge=0, le=60, description="the longest Retry-After the gateway waits before a retry (longer: fail over)"
    )
    gateway_queue: int = Field(100_000, ge=1, le=10_000_000, description="call records held for writing at most")
    gateway_flush_interval: float = Field(0.25, gt=0, le=60, description="seconds between writes of call records")
    gateway_flush_batch: int = Field(1_000, ge=1, le=10_000, description="call records that trigger a write at once")
    gateway_journal_dir: Path = Field(
        Path(".ft/gateway"), description="where each server notes its unwritten call records (reported after a crash)"
    )

    @field_validator("gateway_fallbacks")
    @classmethod
    def _valid_fallbacks(cls, value: dict[str, str]) -> dict[str, str]:
        from application.gateway_routes import PREVIOUS, parse_model_ref
        from domain.errors import DomainError

        for model, fallback in value.items():
            try:
                parse_model_ref(model)
                if fallback != PREVIOUS:
                    parse_model_ref(fallback)
            except DomainError as e:
                raise ValueError(
                    f"FT_GATEWAY_FALLBACKS: {e.detail} (a fallback is a model, model@N or previous)"
                ) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parse_database_url(value)  # raises a StoreConfigError (a ValueError) with the fix in its message
        return value

    @field_validator("api_tokens")
    @classmethod
    def _valid_tokens(cls, value: str) -> str:
        parse_tokens(value)
        return value

    @model_validator(mode="after")
    def _refuse_open_remote(self) -> Settings:
        if not self.api_tokens and not is_loopback(self.host) and not self.allow_anonymous_remote:
            raise ValueError(
                f"Refusing to serve on {self.host} without authentication: set FT_API_TOKENS=name:token,... "
                "(or FT_ALLOW_ANONYMOUS_REMOTE=true on a trusted network), or bind to 127.0.0.1."
            )
        return self

    @cached_property
    def tokens(self) -> dict[str, str]:
        return parse_tokens(self.api_tokens)

    def endpoint(self, name: str, *, field: str, kind: str | None = None) -> Endpoint:
        """A configured endpoint by name, its URL checked by the one outbound rule."""
        found = pick_endpoint(self.outbound_endpoints, name, field=field, kind=kind)
        self.check_outbound(found.base_url)
        return found

    def check_outbound(self, url: str) -> str:
        """The outbound rule for any URL the server calls on a client's request (adapters/outbound.py)."""
        configured = [e.base_url for e in self.outbound_endpoints.values()]
        return outbound.check_url(url, configured=configured, allow_private=self.allow_private_endpoints)


def settings_error_message(exc: Exception) -> str:
    """One readable line per problem from a pydantic ValidationError."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        lines = []
        for e in errors():
            where = ".".join(str(p) for p in e.get("loc", ()))
            msg = str(e.get("msg", "")).removeprefix("Value error, ")
            named = where.isupper() or msg.startswith(("FT_", where.upper()))  # a provider's own name, or said
            lines.append(f"FT_{where.upper()}: {msg}" if where and not named else msg)
        return "; ".join(lines)
    return str(exc)
