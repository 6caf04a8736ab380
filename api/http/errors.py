"""Every error as application/problem+json (RFC 9457), mapped from its cause in one place."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import psycopg
from eventsourcing import persistence
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.database import is_store_failure
from adapters.idempotency import ReservationLost
from domain.batches import BatchRejected
from domain.errors import (
    ConcurrentChange,
    DomainError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    RuleViolation,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_BY_ERROR: list[tuple[type[DomainError], int]] = [
    (NotFound, 404),
    (InvalidInput, 422),
    (RuleViolation, 409),
    (ConcurrentChange, 409),
    (PreconditionFailed, 412),
]


#: how long a client should wait before retrying after a store failure
STORE_RETRY_AFTER = "2"


STORE_UNAVAILABLE = (
    "store-unavailable",
    "Store unavailable",
    "The database did not answer in time. A command without an Idempotency-Key may or may not have been "
    "recorded; retry with the same Idempotency-Key to get its answer without recording it twice.",
)


class ApiProblem(Exception):
    """An HTTP-level problem that is not a domain rule (auth, headers, lagging reads)."""

    def __init__(self, status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail, self.headers = status, slug, title, detail, headers


class BodyTooLarge(StarletteHTTPException):
    """A request body over the size limit (raised while the body is read; see app.BodySizeLimit)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is over {limit // 2**20} MiB: send it in smaller batches.")


def problem(
    status: int, slug: str, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def allowed_methods(request: Request) -> str:
    """Every method the routes of this path take: the `Allow` of a 405 (Starlette names only the first
    route's, and a path served by two routes, e.g. GET and POST, takes both)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):  # the routes of included routers too
        if route.path_regex.match(request.url.path):
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


def http_problem(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Routing and protocol errors (unknown path, method not allowed, body too large) as problem+json."""
    titles = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}
    detail = "No such endpoint: see /docs for the API." if exc.status_code == 404 else str(exc.detail)
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        allow = allowed_methods(request)
        headers, detail = {"Allow": allow}, f"This endpoint takes {allow}."
    return problem(
        exc.status_code, f"http-{exc.status_code}", titles.get(exc.status_code, "HTTP error"), detail, headers=headers
    )


def status_for(error: DomainError) -> int:
    return next((code for cls, code in STATUS_BY_ERROR if isinstance(error, cls)), 400)


def _describe(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    items = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        items.append({"field": ".".join(loc) or "body", "message": e.get("msg", "invalid")})
    detail = "; ".join(f"{i['field']}: {i['message']}" for i in items)
    return detail, items


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        if isinstance(exc, BatchRejected):  # every bad record, by its index in the batch
            items = [{"index": e.index, "id": e.id, "message": e.message} for e in exc.errors]
            return problem(status_for(exc), exc.slug, exc.title, exc.detail, errors=items)
        return problem(status_for(exc), exc.slug, exc.title, exc.detail, **getattr(exc, "extra", {}))

    @app.exception_handler(ApiProblem)
    async def api_problem(_: Request, exc: ApiProblem) -> JSONResponse:
        return problem(exc.status, exc.slug, exc.title, exc.detail, headers=exc.headers)

    @app.exception_handler(ReservationLost)
    async def reservation_lost(_: Request, exc: ReservationLost) -> JSONResponse:
        return problem(
            409, "idempotency-key-taken-over", "Request taken over",
            "This request ran past its Idempotency-Key lease and a retry with the same key took it over; "
            "this one recorded nothing. The retry's answer is the one that counts.",
        )  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem(
                400, "malformed-json", "Malformed JSON",
                "The request body is not valid JSON: check quotes, commas and brackets.",
            )  # fmt: skip
        detail, items = _describe(errors)
        return problem(422, "invalid-input", "Invalid input", detail, errors=items)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_problem(request, exc)

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        if is_store_failure(exc):
            return store_unavailable(exc)
        log.exception("unexpected error")
        return problem(500, "internal-error", "Internal error", "An unexpected error occurred; see the server log.")

    # Database errors get their own handlers (answered without a traceback in the log);
    # anything else still reaches the catch-all, which checks what it wraps.
    for cls in (persistence.PersistenceError, psycopg.Error, sqlite3.Error, Exception):
        app.add_exception_handler(cls, unexpected)


def store_unavailable(exc: BaseException) -> JSONResponse:
    """503 with Retry-After: the database is down, restarting, unreachable or locked."""
    log.warning("store unavailable: %s: %s", type(exc).__name__, exc)
    return problem(503, *STORE_UNAVAILABLE, headers={"Retry-After": STORE_RETRY_AFTER})
