"""All configuration, from FT_* environment variables, validated once at start-up."""

from __future__ import annotations

import ipaddress
from functools import cached_property

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.idempotency import DEFAULT_LEASE_SECONDS
from adapters.store import DEFAULT_DATABASE_URL, DEFAULT_POOL_TIMEOUT, parse_database_url

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

    poll_jobs: bool = Field(
        True, description="keep unfinished fine-tuning jobs current with their provider in this server"
    )
    job_poll_seconds: float = Field(
        5.0, gt=0, le=3600, description="seconds between job polls (each job backs off on provider trouble)"
    )

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
