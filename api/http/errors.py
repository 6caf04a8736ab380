"""Every error as application/problem+json (RFC 9457), mapped from its cause in one place."""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import (
    ConcurrentChange,
    DomainError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    RuleViolation,
)
from domain.inference import BatchRejected

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_BY_ERROR: list[tuple[type[DomainError], int]] = [
    (NotFound, 404),
    (InvalidInput, 422),
    (RuleViolation, 409),
    (ConcurrentChange, 409),
    (PreconditionFailed, 412),
]


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

    @app.exception_handler(OperationalError)
    async def store_busy(_: Request, exc: OperationalError) -> JSONResponse:
        log.warning("store unavailable: %s", exc)
        return problem(
            503, "store-unavailable", "Store unavailable",
            "The event store is busy or unreachable; nothing was recorded. Retry shortly.",
            headers={"Retry-After": "1"},
        )  # fmt: skip

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return problem(500, "internal-error", "Internal error", "An unexpected error occurred; see the server log.")
