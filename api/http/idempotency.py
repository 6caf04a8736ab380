"""`Idempotency-Key` on every POST: the first response is stored and replayed to retries.

A pure ASGI middleware: it needs the raw request body (to tell a retry from a
different request reusing the key) and the complete response (to store it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.idempotency import IdempotencyStore, Reservation, StoredResponse, current_reservation
from api.http.deps import resolve_actor, within
from api.http.errors import PROBLEM_JSON, ApiProblem, is_store_failure, store_unavailable
from domain.errors import InvalidInput

log = logging.getLogger(__name__)

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
#: response headers worth replaying
KEPT_HEADERS = {"content-type", "etag", "location"}
#: how long storing or releasing a key may delay an answer when the store does not answer
BOOKKEEPING_SECONDS = 1.0


async def _send_problem(
    send: Send, status: int, slug: str, title: str, detail: str, *, headers: dict[str, str] | None = None,
    **extra: Any,
) -> None:  # fmt: skip
    problem = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail, **extra}
    body = json.dumps(problem).encode()
    raw = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        raw_key = headers.get(HEADER)
        if raw_key is None:
            return await self.app(scope, receive, send)
        key = raw_key.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            return await _send_problem(
                send, 400, "invalid-idempotency-key", "Invalid Idempotency-Key",
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters; a UUID is a good choice.",
            )  # fmt: skip

        app_state = scope["app"].state
        try:
            actor = resolve_actor(
                app_state.settings,
                headers.get(b"authorization", b"").decode("latin-1") or None,
                headers.get(b"x-actor", b"").decode("latin-1") or None,
            )
        except (ApiProblem, InvalidInput):
            return await self.app(scope, receive, send)  # the route answers 401 or 422 and records nothing

        body = await _read_body(receive)
        store = app_state.runtime.idempotency
        lease = app_state.settings.idempotency_lease_seconds
        fingerprint = request_hash(scope["method"], scope["path"], scope.get("query_string", b""), body)
        try:
            outcome = await run_in_threadpool(store.begin, actor, key, fingerprint, lease=lease)
        except Exception as exc:
            if not is_store_failure(exc):
                raise
            return await store_unavailable(exc)(scope, receive, send)

        if outcome.kind == "replay":
            assert outcome.response is not None
            return await _replay(send, outcome.response)
        if outcome.kind == "mismatch":
            return await _send_problem(
                send, 422, "idempotency-key-reused", "Idempotency-Key reused",
                "This Idempotency-Key was used for a different request: use a new key for a new request.",
            )  # fmt: skip
        if outcome.kind == "in_progress":
            return await _send_problem(
                send, 409, "idempotency-key-in-progress", "Request in progress",
                f"A request with this Idempotency-Key is still being processed; retry in {outcome.retry_after} s "
                "(a request that died is taken over once its lease runs out).",
                headers={"retry-after": str(outcome.retry_after)},
            )  # fmt: skip
        if outcome.kind == "committed":
            return await _send_problem(
                send, 409, "idempotency-key-committed", "Request already recorded",
                f"The request with this Idempotency-Key was recorded (up to log position {outcome.position}), "
                "but its answer was lost when the server stopped; it is not recorded again. Read the result "
                f"with min_position={outcome.position}.",
                position=outcome.position,
            )  # fmt: skip
        reservation = outcome.reservation
        assert reservation is not None

        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

        async def replay_body() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def capture(message: Message) -> None:
            # Buffered, not forwarded: the response is stored before the client sees it,
            # so a retry that follows the answer always finds it.
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")

        # The recorders read the reservation from this context (it reaches the thread pool).
        token = current_reservation.set(reservation)
        renewing = asyncio.create_task(_renew(store, reservation, lease))
        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await _bounded(store.release, reservation)
            raise
        finally:
            renewing.cancel()
            current_reservation.reset(token)
        if captured["status"] >= 500:  # our failure, not an answer: let a retry run the request again
            await _bounded(store.release, reservation)  # kept if it committed; left to its lease if the store is down
        else:
            kept = {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in captured["headers"]
                if k.decode("latin-1").lower() in KEPT_HEADERS
            }
            await _bounded(store.complete, reservation, StoredResponse(captured["status"], kept, captured["body"]))
        await send({"type": "http.response.start", "status": captured["status"], "headers": captured["headers"]})
        await send({"type": "http.response.body", "body": captured["body"]})


async def _renew(store: IdempotencyStore, reservation: Reservation, lease: float) -> None:
    """Keeps a long request's key: renews its lease every third of it while it runs."""
    while True:
        await asyncio.sleep(lease / 3)
        try:
            if not await run_in_threadpool(store.renew, reservation, lease=lease):
                return  # taken over: the recorder refuses this request's commit
        except Exception as exc:  # the store is down: the lease runs out, a retry takes over
            log.warning("could not renew an Idempotency-Key lease: %s", type(exc).__name__)


async def _bounded(fn: Callable[..., Any], *args: Any) -> None:
    """Bookkeeping after the request: never turns its answer into an error, and waits at most
    a moment for a store that does not answer (the lease then frees the key)."""
    try:
        await within(BOOKKEEPING_SECONDS, fn, *args)
    except Exception as exc:
        log.warning("Idempotency-Key bookkeeping (%s) failed: %s", fn.__name__, type(exc).__name__)


def request_hash(method: str, path: str, query: bytes, body: bytes) -> str:
    """What tells a retry (same hash) from another request reusing its key."""
    digest = hashlib.sha256()
    for part in (method, path, query.decode("latin-1")):
        digest.update(part.encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _replay(send: Send, response: StoredResponse) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    headers += [(b"content-length", str(len(response.body)).encode()), (b"idempotent-replayed", b"true")]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
