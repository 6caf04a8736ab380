"""`Idempotency-Key` on every POST: the first response is stored and replayed to retries.

A pure ASGI middleware: it needs the raw request body (to tell a retry from a
different request reusing the key) and the complete response (to store it).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.idempotency import StoredResponse
from api.http.deps import resolve_actor
from api.http.errors import PROBLEM_JSON, ApiProblem
from domain.errors import InvalidInput

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
#: response headers worth replaying
KEPT_HEADERS = {"content-type", "etag", "location"}


async def _send_problem(send: Send, status: int, slug: str, title: str, detail: str) -> None:
    body = json.dumps({"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())],
        }
    )
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
        digest = hashlib.sha256()
        for part in (scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1")):
            digest.update(part.encode() + b"\0")
        digest.update(body)
        store = app_state.runtime.idempotency
        outcome = await run_in_threadpool(store.begin, actor, key, digest.hexdigest())

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
                "A request with this Idempotency-Key is still being processed; retry in a moment.",
            )  # fmt: skip

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

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await run_in_threadpool(store.release, actor, key)
            raise
        if captured["status"] >= 500:  # our failure, not an answer: let a retry run the request again
            await run_in_threadpool(store.release, actor, key)
        else:
            kept = {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in captured["headers"]
                if k.decode("latin-1").lower() in KEPT_HEADERS
            }
            await run_in_threadpool(
                store.complete, actor, key, StoredResponse(captured["status"], kept, captured["body"])
            )
        await send({"type": "http.response.start", "status": captured["status"], "headers": captured["headers"]})
        await send({"type": "http.response.body", "body": captured["body"]})


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
