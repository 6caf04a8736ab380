"""/v1/examples: collect prompt/response examples in bulk, re-rate them, and list them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from api.http.deps import CommandDep, ReaderDep, decode_cursor, encode_cursor, read
from api.http.ingestion import ingest
from api.http.responses import COMMAND, READ, errors, json_body
from api.http.schemas.common import Name
from api.http.schemas.examples import ExampleBatchIn, ExamplePage, ExamplesOut, RatedOut, RatingIn
from domain.values import stored_time
from projections.examples import ExampleFilter, list_examples

router = APIRouter(prefix="/v1/examples", tags=["examples"], responses=READ)


@router.post(
    "",
    response_model=ExamplesOut,
    responses=COMMAND,
    openapi_extra=json_body(ExampleBatchIn),
)
async def collect_examples(request: Request, cmd: CommandDep) -> ExamplesOut:
    """Collects a batch of up to 10,000 examples as one event. Ids already stored come back in
    `duplicates`; a batch with an invalid example is refused whole, listing every bad one."""
    r = await ingest(request, cmd, "examples", lambda batch: cmd.runtime.collect_examples(batch, actor=cmd.actor))
    return ExamplesOut(accepted=r.accepted, duplicates=r.duplicates, position=r.recorded and r.recorded.position)


@router.post("/{example_id}/rating", response_model=RatedOut, responses=COMMAND | errors(404))
async def rate(example_id: Annotated[str, Path()], body: RatingIn, cmd: CommandDep) -> RatedOut:
    """Changes an example's rating (the last rating counts; every change stays in the log)."""
    ingestion = cmd.runtime.ingestion
    r = await cmd.run(lambda: ingestion.rate_example(example_id, body.rating, actor=cmd.actor, reason=body.reason))
    return RatedOut(example_id=r.example_id, rating=r.rating, position=r.recorded.position)


@router.get("", response_model=ExamplePage)
async def get_examples(
    runtime: ReaderDep,
    min_rating: Annotated[int | None, Query(ge=1, le=5)] = None,
    domain: Annotated[Name | None, Query()] = None,
    task_type: Annotated[Name | None, Query()] = None,
    source: Annotated[Name | None, Query()] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ExamplePage:
    f = ExampleFilter(min_rating, domain, task_type, source, stored_time("since", since), stored_time("until", until))
    items = await read(list_examples, runtime.db, f, after=decode_cursor(cursor, str), limit=limit)
    next_cursor = encode_cursor(items[-1]["example_id"]) if len(items) == limit else None
    return ExamplePage(items=items, next_cursor=next_cursor)
