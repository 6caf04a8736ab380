"""What the OpenAPI document says each route can answer, declared once for every router.

Every error is `application/problem+json` (see errors.py), so an error status is declared with that media
type only. Routers take `READ` (any route: auth, parameters, a read that waits for `min_position`, the
store); a POST adds `COMMAND` (its body and its Idempotency-Key); a route adds the statuses of its own
rules with `errors(404, 409, ...)`. Bodies that a route parses itself (orjson, for speed) are declared by
reference with `json_body(Model)`; `add_components` puts those models into the document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.http.errors import PROBLEM_JSON
from api.http.schemas.common import Problem

COMPONENTS = "#/components/schemas/"

WHY = {
    400: "Malformed JSON, or an invalid Idempotency-Key or If-Match header",
    401: "Authentication required (FT_API_TOKENS is set): no or a wrong bearer token",
    404: "Unknown resource",
    409: "Not allowed in the current state, a concurrent change, or a request with this Idempotency-Key still "
    "in progress",
    412: "If-Match does not match the current ETag",
    413: "The request body is over the size limit",
    422: "Invalid input: every bad field (or record, by index) is listed",
    503: "The store is unavailable, or the projections have not reached `min_position` yet: retry after "
    "`Retry-After` seconds",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem+json answers for these statuses, as FastAPI's `responses=` takes them."""
    schema = {"$ref": COMPONENTS + Problem.__name__}
    return {s: {"description": WHY[s], "content": {PROBLEM_JSON: {"schema": schema}}} for s in statuses}


#: every route: bad token, invalid parameter, store unavailable or projections behind
READ = errors(401, 422, 503)
#: every POST besides: malformed JSON, Idempotency-Key invalid (400) or in progress (409), body too large
COMMAND = errors(400, 409, 413)

#: models declared by reference for hand-parsed bodies; `add_components` puts them into the document
_BODY_MODELS: dict[str, type[BaseModel]] = {}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` of a route that parses its JSON body itself: the body is `model`, by reference."""
    _BODY_MODELS[model.__name__] = model
    content = {"application/json": {"schema": {"$ref": COMPONENTS + model.__name__}}}
    return {"requestBody": {"required": True, "content": content}}


def add_components(document: dict[str, Any]) -> dict[str, Any]:
    """Adds to the document the Problem schema and every `json_body` model with the models it nests, so
    every `$ref` resolves inside the document."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, *_BODY_MODELS.values()):
        schema = model.model_json_schema(ref_template=COMPONENTS + "{model}")
        for name, nested in schema.pop("$defs", {}).items():
            schemas.setdefault(name, nested)
        schemas.setdefault(model.__name__, schema)
    return document
