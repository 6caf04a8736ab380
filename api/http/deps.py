"""Request dependencies, as Annotated aliases the routes declare by type."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from api.http.errors import ApiProblem
from api.runtime import Runtime
from api.settings import Settings
from projections.rows import format_ts

ANONYMOUS = "anonymous"


# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in
# the thread pool, and a hop there costs more than these functions do.


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def resolve_actor(settings: Settings, authorization: str | None, x_actor: str | None) -> str:
    """The actor is the token's name when auth is on, else X-Actor, else anonymous."""
    tokens = settings.tokens
    if tokens:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiProblem(
                401, "unauthenticated", "Authentication required",
                "Send `Authorization: Bearer <token>` with a token from FT_API_TOKENS.",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        name = tokens.get(token.strip())
        if name is None:
            raise ApiProblem(
                401, "invalid-token", "Invalid token", "The bearer token is not one of FT_API_TOKENS.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )  # fmt: skip
        return name
    actor = (x_actor or "").strip()
    return actor[:256] if actor else ANONYMOUS


async def get_actor(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer token, when FT_API_TOKENS is set")] = None,
    x_actor: Annotated[str | None, Header(description="Who acts, when auth is off")] = None,
) -> str:
    return resolve_actor(get_settings(request), authorization, x_actor)


async def get_expected_version(
    if_match: Annotated[
        str | None, Header(description='The model\'s ETag from GET /v1/models/{name}, e.g. "7"')
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise ApiProblem(
            400, "invalid-if-match", "Invalid If-Match",
            f"If-Match {if_match!r} is not an ETag of this API: send the ETag header of GET /v1/models/{{name}}, "
            'for example If-Match: "7".',
        )  # fmt: skip
    return int(raw)


async def wait_for_position(
    request: Request,
    min_position: Annotated[
        int | None,
        Query(ge=0, description="Read-your-writes: wait until the projections include this log position "
              "(the `position` a command returned)."),
    ] = None,
) -> None:  # fmt: skip
    if min_position is None:
        return
    runtime, settings = request.app.state.runtime, get_settings(request)
    reached = await run_in_threadpool(runtime.engine.wait_for, min_position, timeout=settings.read_wait_seconds)
    if not reached:
        raise ApiProblem(
            503, "projection-lagging", "Projections are behind",
            f"The projections have not reached position {min_position} yet; retry shortly.",
            headers={"Retry-After": "1"},
        )  # fmt: skip


def to_stored_time(value: datetime | None) -> str | None:
    """Query timestamps: ISO 8601; without an offset they are taken as UTC."""
    if value is None:
        return None
    return format_ts(value if value.tzinfo else value.replace(tzinfo=UTC))


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: type) -> Any:
    if cursor is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(value, kind) and not isinstance(value, bool):
            return value
    except (ValueError, UnicodeDecodeError):
        pass
    raise ApiProblem(
        422, "invalid-cursor", "Invalid cursor", "cursor is not valid here: pass the next_cursor of the previous page."
    )


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ActorDep = Annotated[str, Depends(get_actor)]
ExpectedVersionDep = Annotated[int | None, Depends(get_expected_version)]
Fresh = Depends(wait_for_position)
