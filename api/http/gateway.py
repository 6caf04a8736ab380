"""The gateway: OpenAI-compatible endpoints under /gateway/v1 that route by the registry.

`POST /gateway/v1/chat/completions` and `/gateway/v1/completions` take the model's registered name
(`support-bot`, or `support-bot@3` to pin a version), send the call to where that version is served,
and return what the upstream returned, buffered or streamed as server-sent events, with
`X-FT-Call-Id` and `X-FT-Model-Version`. `GET /gateway/v1/models` lists the models that answer.

It is plain ASGI in front of the API app (no framework routing, no middleware in between), because
every microsecond here is added to every call. Each call is recorded once, whatever happens to it
(answered, failed, interrupted, abandoned by its client), through the recorder's queue.

Before the first byte, a connection error, timeout, 429 or 5xx is retried once (after the upstream's
Retry-After, up to a limit), then the call goes to the model's fallback. After the first byte a
failure ends the stream with an error event the SDKs raise, and the call is recorded as interrupted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.upstream import DEFAULT_MAX_RETRY_AFTER, StreamBroken, UpstreamClient, UpstreamFailed, UpstreamResponse
from application.call_recorder import CallRecorder
from application.gateway_capture import Capture, example_of
from application.gateway_routes import NotRoutable, Route, RouteTable, parse_model_ref
from domain.ab_testing import assign
from domain.errors import DomainError
from domain.gateway_calls import CANCELLED, ERROR, INTERRUPTED, OK, Attempt, GatewayCall

log = logging.getLogger(__name__)

PREFIX = "/gateway"
#: a call's body: prompts are large, but not this large
MAX_CALL_BYTES = 16 * 2**20
ENDPOINTS = {"/v1/chat/completions": ("chat.completions", "/chat/completions"),
             "/v1/completions": ("completions", "/completions")}  # fmt: skip
#: a stream's bytes kept to count its tokens when the upstream sent no usage
MAX_KEPT_STREAM = 4 * 2**20
DONE = b"data: [DONE]"


class GatewayProblem(Exception):
    """An answer the gateway gives itself: problem+json, with OpenAI's `error` object for the SDKs."""

    def __init__(self, status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail, self.headers = status, slug, title, detail, headers or {}

    def body(self) -> bytes:
        return json.dumps({
            "type": f"/problems/{self.slug}", "title": self.title, "status": self.status, "detail": self.detail,
            "error": {"message": self.detail, "type": self.slug, "code": self.slug, "param": None},
        }).encode()  # fmt: skip


class Target:
    """Where a route's calls go, resolved against the server's configuration."""

    __slots__ = ("url", "key", "upstream")

    def __init__(self, url: str, key: str | None, upstream: str) -> None:
        self.url, self.key, self.upstream = url, key, upstream


class Gateway:
    def __init__(
        self,
        routes: RouteTable,
        recorder: CallRecorder,
        upstream: UpstreamClient,
        *,
        tokens: dict[str, str],
        resolve_target: Callable[[Route], Target],
        estimate: Callable[[str, dict[str, Any], str], tuple[int, int]],
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        refresh_interval: float = 0.2,
        capture: Capture | None = None,
    ) -> None:
        self.routes, self.recorder, self.upstream = routes, recorder, upstream
        self.capture = capture or Capture()
        self.tokens = tokens
        self.resolve_target = resolve_target
        self.estimate = estimate
        self.max_retry_after = max_retry_after
        self.refresh_interval = refresh_interval
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None
        self.route_errors = 0

    # ------------------------------------------------------------- life

    def start(self) -> None:
        try:
            self.routes.refresh()
        except Exception:  # the store is down at start-up: the follower retries
            log.exception("gateway: the routes could not be read at start-up; retrying in the background")
        self.recorder.start()
        self._follower = threading.Thread(target=self._follow, name="gateway-routes", daemon=True)
        self._follower.start()

    def _follow(self) -> None:
        while not self._stop.wait(self.refresh_interval):
            try:
                self.routes.refresh()
            except Exception as e:  # keep routing by the last table while the store is away
                self.route_errors += 1
                log.warning("gateway: could not refresh the routes: %s", type(e).__name__)

    async def stop(self) -> None:
        self._stop.set()
        if self._follower is not None:
            self._follower.join(5)
        await self.upstream.aclose()
        await asyncio.get_running_loop().run_in_executor(None, self.recorder.stop)

    # ------------------------------------------------------------- ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"][len(PREFIX):]
        try:
            caller = self._authenticate(scope)
            method = scope["method"]
            if path in ENDPOINTS:
                if method != "POST":
                    raise GatewayProblem(405, "method-not-allowed", "Method not allowed", f"{path} takes POST.",
                                         {"Allow": "POST"})  # fmt: skip
                return await self._call(scope, receive, send, caller, *ENDPOINTS[path])
            if path == "/v1/models":
                if method != "GET":
                    raise GatewayProblem(405, "method-not-allowed", "Method not allowed", f"{path} takes GET.",
                                         {"Allow": "GET"})  # fmt: skip
                return await _send(send, 200, json.dumps(self._models()).encode())
            raise GatewayProblem(404, "not-found", "Not found",
                                 "The gateway serves POST /gateway/v1/chat/completions, POST /gateway/v1/completions "
                                 "and GET /gateway/v1/models.")  # fmt: skip
        except GatewayProblem as p:
            await _send(send, p.status, p.body(), p.headers, problem=True)

    def _authenticate(self, scope: Scope) -> str:
        if not self.tokens:
            return "anonymous"  # the server refuses to serve a non-loopback address without tokens
        authorization = _header(scope, b"authorization") or ""
        scheme, _, token = authorization.partition(" ")
        name = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if name is None:
            raise GatewayProblem(401, "invalid-token", "Invalid token",
                                 "Send `Authorization: Bearer <token>` with a token from FT_API_TOKENS (the openai "
                                 "SDK's api_key).", {"WWW-Authenticate": "Bearer"})  # fmt: skip
        return name

    def _models(self) -> dict[str, Any]:
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "ft-lifecycle",
                 "version": route.version} for name, route in self.routes.deployed().items()]  # fmt: skip
        return {"object": "list", "data": data}

    # ------------------------------------------------------------- one call

    async def _call(self, scope: Scope, receive: Receive, send: Send, caller: str, endpoint: str, suffix: str) -> None:
        started = time.perf_counter()
        body = await _read_body(receive)
        request = _parse_call(body)
        requested = request["model"]
        test, arm, champion = None, None, None
        try:
            name, pinned = parse_model_ref(requested)
            running = None if pinned is not None else self.routes.experiment(name)
            test = None if running is None or running[1] else running[0]
            if running is not None and running[1]:  # the challenger breached a guardrail: the champion serves
                route = self.routes.route(*parse_model_ref(running[0].model_a))
            elif test is None:
                route = self.routes.route(name, pinned)
            else:  # an A/B test splits this model's calls: the unit's sticky arm says where this one goes
                arm = assign(test.test_id, _unit(scope, request, caller), test.split)
                route = self.routes.route(*parse_model_ref(test.model_of(arm)))
                if arm == "b":  # a challenger that fails before answering falls back to the champion
                    champion = self.routes.route(*parse_model_ref(test.model_a))
        except NotRoutable as e:
            raise GatewayProblem(404, e.slug, e.title, e.detail) from None
        except DomainError as e:
            raise GatewayProblem(400, e.slug, "Invalid model", e.detail) from None
        stream = request.get("stream") is True
        options = request.get("stream_options")
        wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        call = GatewayCall(id=f"call_{uuid4().hex}", at=datetime.now(UTC), model=route.model, version=route.version,
                           requested=requested, endpoint=endpoint, stream=stream, caller=caller, status=ERROR,
                           arm=arm, ab_test=None if test is None else test.test_id)  # fmt: skip
        self.recorder.begin()
        answered = False

        async def tracked(message: Message) -> None:
            nonlocal answered
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._serve(scope, receive, tracked, call, request, route, champion, suffix, wants_usage, started)
        except Exception:  # a bug of ours: the call is recorded, the caller gets a 500, the server goes on
            log.exception("gateway: call %s failed inside the gateway", call.id)
            call.status, call.error_kind = INTERRUPTED if answered else ERROR, "gateway_error"
            if not answered:
                call.http_status = 500
                detail = f"The gateway failed on call {call.id}; the server log has the cause."
                problem = GatewayProblem(500, "gateway-error", "Gateway error", detail)
                await _send(send, 500, problem.body(), {"x-ft-call-id": call.id}, problem=True)
        finally:
            call.latency_ms = (time.perf_counter() - started) * 1000
            self.recorder.offer(call)

    def _plan(self, route: Route, champion: Route | None) -> list[tuple[Route, bool]]:
        """The tries: the route, once more (a retry), then the A/B champion or the model's fallback."""
        plan = [(route, False), (route, True)]
        fallback = champion if champion is not None and champion != route else self.routes.fallback(route)
        if fallback is not None:
            plan.append((fallback, False))
        return plan

    async def _serve(self, scope: Scope, receive: Receive, send: Send, call: GatewayCall, request: dict[str, Any],
                     route: Route, champion: Route | None, suffix: str, wants_usage: bool,
                     started: float) -> None:  # fmt: skip
        failure: UpstreamFailed | GatewayProblem | None = None
        skip_retry = False
        for served, is_retry in self._plan(route, champion):
            if is_retry and skip_retry:
                continue
            waited = 0.0
            if is_retry and isinstance(failure, UpstreamFailed) and failure.retry_after:
                waited = failure.retry_after
                await asyncio.sleep(waited)
            try:
                target = self.resolve_target(served)
            except GatewayProblem as p:
                call.attempts.append(Attempt(served.model, served.version, served.target.model,  # type: ignore[union-attr]
                                             p.slug, None, waited * 1000))  # fmt: skip
                failure, skip_retry = p, True
                continue
            upstream_model = served.target.model  # type: ignore[union-attr]
            outgoing = dict(request, model=upstream_model)
            if call.stream:  # ask for usage; the caller's other stream options go along as they are
                given = request.get("stream_options")
                outgoing["stream_options"] = (given if isinstance(given, dict) else {}) | {"include_usage": True}
            try:
                response = await self.upstream.open(target.url + suffix, json.dumps(outgoing).encode(),
                                                    key=target.key, call_id=call.id)  # fmt: skip
                first = await self._first_event(response) if call.stream and response.status_code == 200 else None
            except UpstreamFailed as f:
                call.attempts.append(Attempt(served.model, served.version, upstream_model, f.kind, f.status_code,
                                             waited * 1000))  # fmt: skip
                failure = f
                skip_retry = f.retry_after is not None and f.retry_after > self.max_retry_after
                continue
            call.attempts.append(Attempt(served.model, served.version, upstream_model, OK, response.status_code,
                                         waited * 1000))  # fmt: skip
            if served is not route:
                call.fallback_from = route.label
            call.model, call.version = served.model, served.version
            call.upstream, call.upstream_model = target.upstream, upstream_model
            headers = _headers(call, served)
            if first is None:
                return await self._answer_buffered(send, call, request, response, headers, started)
            return await self._answer_streamed(receive, send, call, request, response, first, headers,
                                               wants_usage, started)  # fmt: skip
        await self._answer_failure(send, call, failure, route, started)

    async def _first_event(self, response: UpstreamResponse) -> tuple[bytes, Any]:
        """A stream's first event, read before the client gets a byte: until then a failure can still
        fail over. Returns the event and the iterator of the rest."""
        events = response.events().__aiter__()
        try:
            first = await events.__anext__()
        except (StopAsyncIteration, StreamBroken):
            response.close()
            raise UpstreamFailed("upstream_dropped") from None
        return first, events

    async def _answer_failure(self, send: Send, call: GatewayCall, failure: Any, route: Route, started: float) -> None:
        call.ttfb_ms = (time.perf_counter() - started) * 1000
        if call.attempts:  # priced as the model it tried (no tokens: nothing to pay)
            call.upstream_model = call.attempts[-1].upstream_model
        headers = _headers(call, route)
        if isinstance(failure, GatewayProblem):
            call.error_kind, call.http_status = failure.slug, failure.status
            return await _send(send, failure.status, failure.body(), headers, problem=True)
        assert isinstance(failure, UpstreamFailed)
        call.error_kind = failure.kind
        tries = "; ".join(f"{a.model}@{a.version}: {a.outcome}" for a in call.attempts)
        if failure.status_code is not None:  # the upstream's own answer, so the SDK retries or backs off as usual
            call.http_status = failure.status_code
            if failure.retry_after is not None:
                headers["retry-after"] = str(int(failure.retry_after + 0.999))
            body = failure.body if failure.body.startswith(b"{") else GatewayProblem(
                failure.status_code, failure.kind, "Upstream error", f"The upstream answered {failure.status_code} "
                f"({tries}).").body()  # fmt: skip
            return await _send(send, failure.status_code, body, headers)
        call.http_status = 502
        problem = GatewayProblem(502, "upstream-unreachable", "Upstream unreachable",
                                 f"No upstream answered the call ({tries}). Check where the version is served "
                                 f"(`ft-cli models get {route.model}`) and that it is up; a fallback is configured "
                                 "with FT_GATEWAY_FALLBACKS.")  # fmt: skip
        await _send(send, 502, problem.body(), headers, problem=True)

    async def _answer_buffered(self, send: Send, call: GatewayCall, request: dict[str, Any],
                               response: UpstreamResponse, headers: dict[str, str],
                               started: float) -> None:  # fmt: skip
        try:
            content = await response.read()
        except StreamBroken:
            call.status, call.error_kind, call.http_status = ERROR, "upstream_dropped", 502
            problem = GatewayProblem(502, "upstream-dropped", "Upstream dropped the answer",
                                     "The upstream closed the connection before its answer was complete.")  # fmt: skip
            return await _send(send, 502, problem.body(), headers, problem=True)
        finally:
            response.close()
        call.http_status = response.status_code
        call.ttfb_ms = (time.perf_counter() - started) * 1000
        if response.status_code == 200:
            call.status = OK
            answer = _json(content)
            self._count(call, request, answer, None)
            self._capture(call, request, lambda: _answer_text(answer))
        else:  # a 4xx the upstream gave the caller's request: passed on as it is
            call.error_kind = f"upstream_{response.status_code}"
        headers["content-type"] = response.headers.get("content-type", "application/json")
        await _send(send, response.status_code, content, headers, raw_type=True)

    async def _answer_streamed(self, receive: Receive, send: Send, call: GatewayCall, request: dict[str, Any],
                               response: UpstreamResponse, first: tuple[bytes, Any], headers: dict[str, str],
                               wants_usage: bool, started: float) -> None:  # fmt: skip
        event, rest = first
        kept: list[bytes] = []
        kept_bytes = 0
        usage: dict[str, Any] | None = None
        done = False
        call.http_status = 200
        start = {"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"), *((k.encode(), v.encode()) for k, v in headers.items())]}  # fmt: skip

        async def relay() -> None:
            nonlocal event, kept_bytes, usage, done
            await send(start)
            call.ttfb_ms = (time.perf_counter() - started) * 1000
            while True:
                forward = True
                if event.startswith(DONE):
                    done = True
                elif b'"usage"' in event and b'"usage":null' not in event and b'"usage": null' not in event:
                    chunk = _event_json(event)
                    if isinstance(chunk, dict) and isinstance(chunk.get("usage"), dict):
                        usage = chunk["usage"]
                        forward = wants_usage or bool(chunk.get("choices"))  # the chunk we asked for, stripped
                if b'"error"' in event and _event_error(event):
                    call.status, call.error_kind = INTERRUPTED, "upstream_stream_error"
                if kept_bytes < MAX_KEPT_STREAM:
                    kept.append(event)
                    kept_bytes += len(event)
                if forward:
                    await send({"type": "http.response.body", "body": event, "more_body": True})
                try:
                    event = await rest.__anext__()
                except StopAsyncIteration:
                    break

        finished = False

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not finished:  # a disconnect after the last byte is the end of the exchange, not a cancel
                call.status, call.error_kind = CANCELLED, "client_disconnected"
                group.cancel_scope.cancel()

        async def answer() -> None:
            nonlocal finished
            try:
                await relay()
                if call.status == ERROR:
                    call.status = OK if done else INTERRUPTED
                    call.error_kind = None if done else "upstream_incomplete"
                if not done:  # the SDK raises on this event rather than take a cut answer as whole
                    await send({"type": "http.response.body", "body": _error_event(call), "more_body": True})
                finished = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except StreamBroken:  # the upstream failed after the first byte
                call.status, call.error_kind = INTERRUPTED, "upstream_dropped"
                finished = True
                try:
                    await send({"type": "http.response.body", "body": _error_event(call), "more_body": True})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                except OSError:
                    pass
            except OSError:  # the client is gone (uvicorn raises on a send after the disconnect)
                call.status, call.error_kind = CANCELLED, "client_disconnected"

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(watch)
                await answer()
                group.cancel_scope.cancel()
        finally:
            response.close()
            self._count(call, request, None, usage, kept)
            if call.status == OK:
                self._capture(call, request, lambda: "".join(map(_delta_text, kept)))

    def _capture(self, call: GatewayCall, request: dict[str, Any], answer: Callable[[], str]) -> None:
        """Keeps the call as a collected example when its model's capture rule draws it."""
        rule = self.capture.wants(call)
        if rule is not None:
            call.example = example_of(call, request, answer(), rule)

    def _count(self, call: GatewayCall, request: dict[str, Any], answer: Any, usage: dict[str, Any] | None,
               events: list[bytes] | None = None) -> None:  # fmt: skip
        """The call's tokens: the upstream's usage, or counted from the prompt and the answer (estimated)."""
        if usage is None and isinstance(answer, dict) and isinstance(answer.get("usage"), dict):
            usage = answer["usage"]
        if usage is not None and _whole(usage.get("prompt_tokens")) is not None:
            call.input_tokens = _whole(usage.get("prompt_tokens")) or 0
            call.output_tokens = _whole(usage.get("completion_tokens")) or 0
            details = usage.get("prompt_tokens_details")
            cached = _whole(details.get("cached_tokens")) if isinstance(details, dict) else None
            call.cached_input_tokens = min(cached or 0, call.input_tokens)
            return
        if call.status not in (OK, INTERRUPTED, CANCELLED) or call.upstream_model is None:
            return
        text = _answer_text(answer) if events is None else "".join(map(_delta_text, events))
        try:
            call.input_tokens, call.output_tokens = self.estimate(call.upstream_model, request, text)
            call.estimated = True
        except Exception:  # a prompt the counter cannot read: the call stays at 0 tokens, marked estimated
            call.estimated = True


# --------------------------------------------------------------------- helpers

#: the longest unit an A/B split takes (X-FT-Unit, or the request's `user`)
MAX_UNIT = 256


def _unit(scope: Scope, request: dict[str, Any], caller: str) -> str:
    """Who a call is for, for a sticky A/B arm: X-FT-Unit, else the request's `user`, else the caller."""
    unit = _header(scope, b"x-ft-unit")
    if unit is None and isinstance(request.get("user"), str):
        unit = request["user"]
    if unit is None or not unit.strip():
        return caller
    if len(unit) > MAX_UNIT:
        raise GatewayProblem(400, "invalid-unit", "Invalid unit",
                             f"X-FT-Unit (or the request's user) is at most {MAX_UNIT} characters.")  # fmt: skip
    return unit


def _headers(call: GatewayCall, route: Route) -> dict[str, str]:
    headers = {"x-ft-call-id": call.id, "x-ft-model": route.model, "x-ft-model-version": str(route.version)}
    if call.arm is not None:
        headers["x-ft-arm"] = call.arm
        headers["x-ft-ab-test"] = call.ab_test or ""
    return headers


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise GatewayProblem(400, "client-disconnected", "Client disconnected", "The request body did not arrive.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_CALL_BYTES:
            raise GatewayProblem(413, "body-too-large", "Body too large",
                                 f"A call's body is at most {MAX_CALL_BYTES // 2**20} MiB.")  # fmt: skip
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _parse_call(body: bytes) -> dict[str, Any]:
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        raise GatewayProblem(400, "invalid-json", "Invalid JSON",
                             "The body is not JSON: send an OpenAI request such as "
                             '{"model": "support-bot", "messages": [{"role": "user", "content": "Hi"}]}.',
                             ) from None  # fmt: skip
    if not isinstance(request, dict) or not isinstance(request.get("model"), str):
        raise GatewayProblem(400, "invalid-request", "Invalid request",
                             'The body is a JSON object with `model`, the registered model\'s name, such as '
                             '{"model": "support-bot", "messages": [...]}.')  # fmt: skip
    return request


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def _event_json(event: bytes) -> Any:
    data = b"".join(line[5:].lstrip() for line in event.splitlines() if line.startswith(b"data:"))
    return _json(data) if data and data != b"[DONE]" else None


def _event_error(event: bytes) -> bool:
    chunk = _event_json(event)
    return isinstance(chunk, dict) and "error" in chunk


def _choices_text(answer: Any, part: str) -> str:
    """The text of an answer's choices: each one's `part` (`message`, or a stream chunk's `delta`) content,
    or the legacy completions' `text`."""
    if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
        return ""
    texts = []
    for choice in answer["choices"]:
        if isinstance(choice, dict):
            inner = choice.get(part)
            text = inner.get("content") if isinstance(inner, dict) else choice.get("text")
            if isinstance(text, str):
                texts.append(text)
    return "".join(texts)


def _delta_text(event: bytes) -> str:
    return _choices_text(_event_json(event), "delta")


def _answer_text(answer: Any) -> str:
    return _choices_text(answer, "message")


def _whole(value: Any) -> int | None:
    return value if type(value) is int and 0 <= value < 2**53 else None


def _error_event(call: GatewayCall) -> bytes:
    error = {"error": {"message": f"The upstream stopped in the middle of the answer (call {call.id}); the answer is "
                                  "incomplete.", "type": "upstream_error", "code": "upstream_interrupted"}}  # fmt: skip
    return b"data: " + json.dumps(error).encode() + b"\n\n"


async def _send(send: Send, status: int, body: bytes, headers: dict[str, str] | None = None, *,
                problem: bool = False, raw_type: bool = False) -> None:  # fmt: skip
    fields = [(b"content-length", str(len(body)).encode())]
    if not raw_type:
        fields.append((b"content-type", b"application/problem+json" if problem else b"application/json"))
    fields += [(k.lower().encode(), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": body})


class GatewayMount:
    """In front of the API app: /gateway/... goes to the gateway (once the app has started it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX + "/"):
            gateway = getattr(scope["app"].state, "gateway", None) if "app" in scope else None
            if gateway is not None:
                return await gateway(scope, receive, send)
        await self.app(scope, receive, send)
