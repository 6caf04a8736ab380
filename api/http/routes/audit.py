"""/v1/audit: every change in global order: who, when, what and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.http.deps import ReaderDep, decode_cursor, encode_cursor, read
from api.http.responses import READ
from api.http.schemas.audit import AuditPage
from api.http.schemas.common import Name
from domain.errors import InvalidInput
from domain.values import stored_time
from projections.audit import AuditFilter, audited_event_types, query_audit

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=READ)


@router.get("", response_model=AuditPage)
async def audit_trail(
    runtime: ReaderDep,
    model: Annotated[Name | None, Query(description="Only events of this model")] = None,
    type: Annotated[Name | None, Query(description="Only this event type, e.g. RolledBack")] = None,  # noqa: A002
    actor: Annotated[Name | None, Query(description="Only events by this actor")] = None,
    since: Annotated[datetime | None, Query(description="From this time, inclusive (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Up to this time, inclusive (ISO 8601)")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    if type is not None and type not in audited_event_types():
        raise InvalidInput(f"Unknown event type {type!r}: use one of {', '.join(audited_event_types())}.")
    f = AuditFilter(
        model=model,
        event_type=type,
        actor=actor,
        since=stored_time("since", since),
        until=stored_time("until", until),
        after=decode_cursor(cursor, int) or 0,
        limit=limit,
    )
    items = await read(query_audit, runtime.db, f)
    next_cursor = encode_cursor(items[-1]["position"]) if len(items) == limit else None
    return AuditPage(items=items, next_cursor=next_cursor)
