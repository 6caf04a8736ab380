"""Request dependencies, as Annotated aliases the routes declare by type."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from api.http.errors import ApiProblem
from api.runtime import Runtime
from api.settings import Settings
from domain.values import MAX_NAME, NAME_FORBIDDEN, name_text

ANONYMOUS = "anonymous"
T = TypeVar("T")


# Routes and dependencies are `async def` on purpose: FastAPI runs a plain `def`
# (and a sync route's response validation) in the thread pool, and each hop there
# costs more than the work. Blocking work goes to the pool once, explicitly.


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
    if x_actor is None or not x_actor.strip():
        return ANONYMOUS
    return name_text("X-Actor", x_actor, max_length=MAX_NAME)  # an actor's rule: a 422 names the header


ActorHeaders = tuple[str | None, str | None]


@dataclass(frozen=True)
class CommandContext:
    """Who acts, on which store, and the client's If-Match: all a command route needs."""

    runtime: Runtime
    actor: str
    expected_version: int | None = None

    async def run(self, command: Callable[[], T], *, settle: bool = True) -> T:
        """Runs a blocking command in the thread pool and, in the same hop, settles read-your-writes
        (Runtime.command): the next request sees its events."""
        return await run_in_threadpool(self.runtime.command, command, settle=settle)


def parse_if_match(if_match: str | None) -> int | None:
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


AuthorizationHeader = Annotated[str | None, Header(description="`Bearer <token>`, when FT_API_TOKENS is set")]
ActorHeader = Annotated[str | None, Header(description="Who acts, when auth is off (default: anonymous)")]
IfMatchHeader = Annotated[
    str | None, Header(description='The model\'s ETag from GET /v1/models/{name}, e.g. "7": refused with 412 if stale')
]


async def get_command(
    request: Request, authorization: AuthorizationHeader = None, x_actor: ActorHeader = None
) -> CommandContext:
    actor = resolve_actor(get_settings(request), authorization, x_actor)
    return CommandContext(request.app.state.runtime, actor)


async def get_guarded_command(
    request: Request,
    authorization: AuthorizationHeader = None,
    x_actor: ActorHeader = None,
    if_match: IfMatchHeader = None,
) -> CommandContext:
    actor = resolve_actor(get_settings(request), authorization, x_actor)
    return CommandContext(request.app.state.runtime, actor, parse_if_match(if_match))


async def get_reader(
    request: Request,
    authorization: AuthorizationHeader = None,
    min_position: Annotated[
        int | None,
        Query(ge=0, description="Read-your-writes: wait until the projections include this log position "
              "(the `position` a command returned)."),
    ] = None,
) -> Runtime:  # fmt: skip
    """The store to read from, once the projections include `min_position` (bounded wait)."""
    settings = get_settings(request)
    resolve_actor(settings, authorization, None)  # reads need a token too when auth is on
    runtime: Runtime = request.app.state.runtime
    if min_position is not None:
        reached = await run_in_threadpool(runtime.engine.wait_for, min_position, timeout=settings.read_wait_seconds)
        if not reached:
            raise ApiProblem(
                503, "projection-lagging", "Projections are behind",
                f"The projections have not reached position {min_position} yet; retry shortly.",
                headers={"Retry-After": "1"},
            )  # fmt: skip
    return runtime


async def within(seconds: float, fn: Callable[..., T], *args: Any) -> T:
    """Runs blocking `fn` in a thread and waits at most `seconds` (TimeoutError after). The
    thread is left to finish on its own: the thread pool's calls cannot be abandoned."""
    future = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    return await asyncio.wait_for(asyncio.shield(future), timeout=seconds)


async def read(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs a query in the thread pool: a PostgreSQL round trip must not block the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


#: Cursors are short: a longer one is not ours (and deep JSON nesting would exhaust the stack)
MAX_CURSOR = 2_000
#: A decoded int goes to SQL as a BIGINT
MAX_CURSOR_INT = 2**63 - 1
CursorKind = type | tuple[type, ...]


def decode_cursor(cursor: str | None, kind: CursorKind) -> Any:
    """The value a next_cursor encoded: an int (a position, a version), a str (a name), or a list
    shaped like the tuple `kind` (such as (str, str)). Anything else, crafted or corrupted, is a 422:
    a decoded cursor goes to SQL, where a wrong type, an out-of-range int or a NUL would be a 500."""
    if cursor is None:
        return None
    try:
        if len(cursor) <= MAX_CURSOR:
            value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if _cursor_fits(value, kind):
                return value
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass
    raise ApiProblem(
        422, "invalid-cursor", "Invalid cursor", "cursor is not valid here: pass the next_cursor of the previous page."
    )


def _cursor_fits(value: Any, kind: CursorKind) -> bool:
    if isinstance(kind, tuple):
        return isinstance(value, list) and len(value) == len(kind) and all(map(_cursor_fits, value, kind))
    if kind is int:
        return type(value) is int and 0 <= value <= MAX_CURSOR_INT
    if kind is str:
        return type(value) is str and len(value) <= MAX_CURSOR and not NAME_FORBIDDEN.search(value)
    return False


CommandDep = Annotated[CommandContext, Depends(get_command)]
GuardedCommandDep = Annotated[CommandContext, Depends(get_guarded_command)]
ReaderDep = Annotated[Runtime, Depends(get_reader)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
