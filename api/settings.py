"""All configuration, from FT_* environment variables, validated once at start-up."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters import outbound
from adapters.idempotency import DEFAULT_LEASE_SECONDS
from adapters.store import DEFAULT_DATABASE_URL, DEFAULT_POOL_TIMEOUT, parse_database_url
from domain.errors import InvalidInput

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


def implicit_endpoints(env: Mapping[str, str]) -> dict[str, Endpoint]:
    """`openai` from OPENAI_BASE_URL/OPENAI_API_KEY and `ollama` from OLLAMA_HOST/OLLAMA_API_KEY, as the
    SDKs read them."""
    return {
        "openai": Endpoint(base_url=env.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_URL,
                           api_key=env.get("OPENAI_API_KEY") or None),  # fmt: skip
        "ollama": Endpoint(base_url=env.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST, kind="ollama",
                           api_key=env.get("OLLAMA_API_KEY") or None),  # fmt: skip
    }


def _check_names(endpoints: dict[str, Endpoint]) -> dict[str, Endpoint]:
    for name in endpoints:
        if not ENDPOINT_NAME.fullmatch(name):
            raise ValueError(f"FT_ENDPOINTS name {name!r} is not valid: use letters, digits, '.', '_' and '-' "
                             "(at most 64)")  # fmt: skip
    return endpoints


def endpoints_from_env(env: Mapping[str, str] | None = None) -> dict[str, Endpoint]:
    """Every configured endpoint (FT_ENDPOINTS over the implicit ones), for the CLI, which has no Settings."""
    env = os.environ if env is None else env
    return implicit_endpoints(env) | _check_names(_ENDPOINTS.validate_json(env.get("FT_ENDPOINTS") or "{}"))


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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FT_", extra="ignore")

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

    endpoints: dict[str, Endpoint] = Field(
        default_factory=dict,
        description="outbound endpoints by name, as JSON {name: {base_url, api_key, kind: openai|ollama}}; "
        "`openai` (OPENAI_BASE_URL, OPENAI_API_KEY) and `ollama` (OLLAMA_HOST) exist unless given here",
    )
    allow_private_endpoints: bool = Field(
        False, description="let outbound calls reach loopback and private addresses (development and tests)"
    )
    data_dir: Path = Field(
        Path(".ft/files"), description="the folder the server opens files from on a client's behalf"
    )

    @field_validator("endpoints")
    @classmethod
    def _valid_endpoint_names(cls, value: dict[str, Endpoint]) -> dict[str, Endpoint]:
        return _check_names(value)

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
        try:  # the implicit endpoints come from the SDKs' variables: a bad one stops the start too
            implicit_endpoints(os.environ)
        except ValueError as e:
            raise ValueError(f"OPENAI_BASE_URL or OLLAMA_HOST: {settings_error_message(e)}") from None
        return self

    @cached_property
    def tokens(self) -> dict[str, str]:
        return parse_tokens(self.api_tokens)

    @cached_property
    def outbound_endpoints(self) -> dict[str, Endpoint]:
        return implicit_endpoints(os.environ) | self.endpoints

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
            lines.append(f"FT_{where.upper()}: {msg}" if where and not msg.startswith("FT_") else msg)
        return "; ".join(lines)
    return str(exc)
