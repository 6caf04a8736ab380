"""/v1/gateway/calls and /v1/gateway/stats: what went through the gateway, call by call and in sum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.http.deps import CommandDep, ReaderDep, decode_cursor, encode_cursor, read
from api.http.responses import COMMAND, READ, errors
from api.http.schemas.common import Name
from api.http.schemas.gateway import CallOut, CallsOut, FeedbackGivenOut, FeedbackIn, GatewayStatsOut
from domain.errors import NotFound
from domain.values import stored_time
from projections.gateway_calls import call_stats, get_call, list_calls

router = APIRouter(tags=["gateway"], responses=READ)

Status = Literal["ok", "error", "interrupted", "cancelled"]
#: the statistics' default range: the last day
DEFAULT_RANGE = timedelta(days=1)


@router.get("/v1/gateway/calls", response_model=CallsOut)
async def get_calls(
    runtime: ReaderDep,
    model: Annotated[Name | None, Query(description="Only calls this registered model answered")] = None,
    version: Annotated[int | None, Query(ge=1, lt=2**31, description="Only calls this version answered")] = None,
    arm: Annotated[Name | None, Query(description="Only calls of this A/B arm")] = None,
    ab_test: Annotated[Name | None, Query(description="Only calls of this A/B test")] = None,
    status: Annotated[Status | None, Query(description="Only calls that ended so")] = None,
    since: Annotated[datetime | None, Query(description="From this time, inclusive (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Up to this time, inclusive (ISO 8601)")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CallsOut:
    """The gateway's calls, oldest first, with their version, tokens, cost, status and tries."""
    after = decode_cursor(cursor, (str, str))  # [at, id] of the last call
    calls = await read(list_calls, runtime.db, model=model, version=version, arm=arm, ab_test=ab_test, status=status,
                       since=stored_time("since", since), until=stored_time("until", until),
                       after=tuple(after) if after else None, limit=limit)  # fmt: skip
    next_cursor = encode_cursor([calls[-1]["at"], calls[-1]["id"]]) if len(calls) == limit else None
    return CallsOut(calls=calls, next_cursor=next_cursor)


@router.get("/v1/gateway/calls/{call_id}", response_model=CallOut, responses=errors(404))
async def get_one_call(runtime: ReaderDep, call_id: Annotated[Name, Path()]) -> CallOut:
    found = await read(get_call, runtime.db, call_id)
    if found is None:
        raise NotFound(f"No call {call_id!r} is recorded (yet: records are written every 250 ms); the X-FT-Call-Id "
                       "header of a gateway answer names its call.")  # fmt: skip
    return CallOut(**found)


@router.post("/v1/gateway/calls/{call_id}/feedback", response_model=FeedbackGivenOut,
             responses=COMMAND | errors(404))  # fmt: skip
async def give_feedback(call_id: Annotated[Name, Path()], body: FeedbackIn, cmd: CommandDep) -> FeedbackGivenOut:
    """The call's outcome (`correct`, or `score` from 0 to 1), told after the answer: it becomes the outcome of
    the call's A/B sample and the model's accuracy over time. Counted once, however often it is sent."""
    found = await read(get_call, cmd.runtime.db, call_id)
    if found is None:
        raise NotFound(f"No call {call_id!r} is recorded (yet: records are written every 250 ms; retry shortly). "
                       "The X-FT-Call-Id header of a gateway answer names its call.")  # fmt: skip
    given = await cmd.run(lambda: cmd.runtime.ab.give_feedback(found, correct=body.correct, score=body.score,
                                                              actor=cmd.actor, reason=body.reason))  # fmt: skip
    return FeedbackGivenOut(call_id=call_id, counted=given.counted,
                            position=None if given.recorded is None else given.recorded.position)


@router.get("/v1/gateway/stats", response_model=GatewayStatsOut)
async def get_stats(
    runtime: ReaderDep,
    model: Annotated[Name | None, Query(description="Only this registered model")] = None,
    version: Annotated[int | None, Query(ge=1, lt=2**31)] = None,
    arm: Annotated[Name | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="From this time (default: a day ago)")] = None,
    until: Annotated[datetime | None, Query(description="Up to this time (default: now)")] = None,
    bucket: Annotated[Literal["minute", "day"], Query(description="The series' step")] = "minute",
) -> GatewayStatsOut:
    """Per model and version: calls, errors, latency p50/p95, tokens and cost, over the range and per minute
    or day. Percentiles are exact, computed from the range's calls."""
    start = stored_time("since", since or datetime.now(UTC) - DEFAULT_RANGE)
    end = stored_time("until", until)
    stats = await read(call_stats, runtime.db, bucket=bucket, model=model, version=version, arm=arm, since=start,
                       until=end)  # fmt: skip
    return GatewayStatsOut(**stats, since=start, until=end)
