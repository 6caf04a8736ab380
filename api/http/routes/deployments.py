"""/v1/deployments: what is deployed now, or at any past time (`as_of`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.http.deps import ReaderDep, decode_cursor, encode_cursor, read
from api.http.responses import READ, errors
from api.http.schemas.deployments import DeploymentOut, DeploymentPage
from domain.errors import NotFound
from domain.values import stored_time, validate_model_name
from projections.deployments import current_status, status_as_of

router = APIRouter(prefix="/v1/deployments", tags=["deployments"], responses=READ)

AsOf = Annotated[
    datetime | None,
    Query(
        description="Answer as of this time (ISO 8601; UTC when no offset is given)", examples=["2026-11-26T14:02:00Z"]
    ),
]


def _statuses(runtime, as_of: str | None, **where) -> list[dict]:
    if as_of is None:
        return current_status(runtime.db, **where)
    return status_as_of(runtime.db, as_of, **where)


@router.get("", response_model=DeploymentPage)
async def list_deployments(
    runtime: ReaderDep,
    as_of: AsOf = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeploymentPage:
    """Per model: the deployed version, since when, by whom and why, and every version's status."""
    when = stored_time("as_of", as_of)
    items = await read(_statuses, runtime, when, after=decode_cursor(cursor, str), limit=limit)
    next_cursor = encode_cursor(items[-1]["model"]) if len(items) == limit else None
    return DeploymentPage(as_of=when, items=items, next_cursor=next_cursor)


@router.get("/{name}", response_model=DeploymentOut, responses=errors(404))
async def get_deployment(
    runtime: ReaderDep, name: Annotated[str, Path(description="Model name")], as_of: AsOf = None
) -> DeploymentOut:
    validate_model_name(name)
    when = stored_time("as_of", as_of)
    found = await read(_statuses, runtime, when, model=name)
    if not found:
        at = f" at {when}" if when else ""
        raise NotFound(f"Model {name!r} was not registered{at}.")
    return DeploymentOut(**found[0])
