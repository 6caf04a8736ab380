"""The HTTP app: `create_app()` wires settings, the store, the routers and error handling."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.assignment_fast_path import AssignmentFastPath
from api.http.errors import BodyTooLarge, http_problem, install_error_handlers
from api.http.gateway import GatewayMount
from api.http.idempotency import IdempotencyMiddleware
from api.http.responses import add_components
from api.http.routes import (
    ab_tests,
    audit,
    costs,
    datasets,
    deployments,
    evaluations,
    examples,
    gateway,
    health,
    jobs,
    models,
    prices,
    projections,
    registry,
)
from api.runtime import Runtime
from api.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """
Event-sourced lifecycle of fine-tuned LLMs: a versioned model registry with deploy and rollback,
an audit trail of every change, and deployment status at any past time.

* Errors are `application/problem+json` (RFC 9457).
* Every POST accepts `Idempotency-Key`: a retry returns the first response and records nothing.
* Deploy and rollback accept `If-Match` with the model's ETag.
* Commands return `position`; pass it as `min_position` to any read to read your own write.
"""


#: a batch of 10,000 inference records is a few MB; anything far larger is refused before parsing
MAX_BODY_BYTES = 64 * 1024 * 1024


class BodySizeLimit:
    """Refuses a body over `limit` bytes with a problem+json 413, whether its Content-Length says so up
    front or its chunks add up to it, and whoever reads it (a route, or the Idempotency-Key middleware).
    Instead of FastAPI's `max_body_size`, whose limiter answers in plain text outside the error handlers."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            return await http_problem(Request(scope), BodyTooLarge(self.limit))(scope, receive, send)
        received, started = 0, False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge(self.limit)  # inside a route, the error handlers answer it
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge as exc:  # raised outside the error handlers (the Idempotency-Key middleware)
            if started:
                raise
            await http_problem(Request(scope), exc)(scope, receive, send)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = runtime or Runtime.open(settings.database_url, pool_timeout=settings.db_pool_timeout,
                                         providers=settings)  # fmt: skip
        app.state.runtime = opened
        try:
            opened.engine.catch_up()
        except Exception:  # the store is down or busy: start anyway, the follower and reads catch up later
            log.exception("projections could not catch up at start-up; serving, and retrying in the background")
        if settings.follow_projections:
            opened.start_following(settings.projection_interval)
        if settings.poll_jobs:
            opened.start_polling_jobs(settings.job_poll_seconds)
        if settings.run_ab_policies:
            opened.ab_policies.start(settings.ab_policy_seconds)
        live_gateway = None
        if settings.gateway:
            from api.gateway_wiring import open_gateway  # the gateway's client loads only where it serves

            live_gateway = app.state.gateway = open_gateway(settings, opened)
            live_gateway.start()
        try:
            yield
        finally:
            if live_gateway is not None:
                app.state.gateway = None
                await live_gateway.stop()  # writes the queued call records
            opened.ab_policies.stop()
            opened.stop_polling_jobs()
            opened.stop_following()
            if runtime is None:
                opened.close()

    app = FastAPI(
        title="ft-lifecycle",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    if runtime is not None:
        app.state.runtime = runtime
    install_error_handlers(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES)  # it also limits what idempotency reads
    app.add_middleware(AssignmentFastPath)  # the common assignment request, before the framework's machinery
    app.add_middleware(GatewayMount)  # outermost: a gateway call meets no API middleware
    modules = (models, deployments, audit, registry, prices, costs, ab_tests, examples, datasets, jobs,
               evaluations, gateway, projections, health)
    for module in modules:
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # generated once, then completed with the shared components
            add_components(FastAPI.openapi(app))
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
    return app
