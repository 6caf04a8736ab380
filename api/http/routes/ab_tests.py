"""/v1/ab-tests: create, assign traffic, record samples, watch the statistics, conclude."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status

from api.http.deps import CommandDep, ReaderDep, decode_cursor, encode_cursor, read
from api.http.ingestion import ingest
from api.http.responses import COMMAND, READ, errors, json_body
from api.http.schemas.ab_tests import (
    ABTestIn,
    ABTestOut,
    ABTestPage,
    AssignmentOut,
    EndTestIn,
    SampleBatchIn,
    SamplesOut,
    WinnerOut,
)
from api.presenters import deploy_command
from domain.ab_testing import TestConfig, assign, validate_test_id
from domain.errors import NotFound
from projections.ab_stats import get_test, list_tests

router = APIRouter(prefix="/v1/ab-tests", tags=["ab-tests"], responses=READ)
TestId = Annotated[str, Path(description="The test's id")]
ERRORS = errors(404, 409)
COMMAND_ERRORS = COMMAND | ERRORS


def test_out(found: dict[str, Any], statistics: dict[str, Any]) -> ABTestOut:
    c: TestConfig = found["config"]
    return ABTestOut(
        test_id=c.test_id, model_a=c.model_a, model_b=c.model_b, split=c.split, alpha=c.alpha,
        min_samples=c.min_samples, match_mode=c.match_mode, gateway_model=c.gateway_model, on_win=c.on_win,
        guardrails={"error_rate": c.guardrail_error_rate, "p95_ms": c.guardrail_p95_ms},
        max_duration_s=c.max_duration_s, challenger_stopped=found.get("challenger_stopped"),
        weights={"accuracy": c.weight_accuracy, "latency": c.weight_latency, "cost": c.weight_cost},
        status=found["status"], created_at=found["created_at"], created_by=found["created_by"],
        ended_at=found["ended_at"], ended_by=found["ended_by"], end_reason=found["end_reason"], statistics=statistics,
    )  # fmt: skip


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ABTestOut, responses=COMMAND_ERRORS)
async def create_test(body: ABTestIn, cmd: CommandDep) -> ABTestOut:
    """Creates a test of model_a (control) against model_b (variant)."""
    weights = body.weights.model_dump() if body.weights else {}
    settings = {"test_id": body.test_id, "model_a": body.model_a, "model_b": body.model_b, "split": body.split,
                "alpha": body.alpha, "min_samples": body.min_samples, "match_mode": body.match_mode,
                "weight_accuracy": weights.get("accuracy"), "weight_latency": weights.get("latency"),
                "weight_cost": weights.get("cost"), "gateway_model": body.gateway_model, "on_win": body.on_win,
                "guardrail_error_rate": body.guardrails.error_rate if body.guardrails else None,
                "guardrail_p95_ms": body.guardrails.p95_ms if body.guardrails else None,
                "max_duration_s": body.max_duration_s}  # fmt: skip
    await cmd.run(lambda: cmd.runtime.ab_results.create(actor=cmd.actor, reason=body.reason, **settings))
    found = await read(cmd.runtime.ab_results.get, body.test_id)
    return test_out(found, found["statistics"])


@router.get("", response_model=ABTestPage)
async def list_ab_tests(
    runtime: ReaderDep,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ABTestPage:
    tests = await read(list_tests, runtime.db, after=decode_cursor(cursor, str), limit=limit)
    items = [test_out(t, t["result"] or {}) for t in tests]
    next_cursor = encode_cursor(items[-1].test_id) if len(items) == limit else None
    return ABTestPage(items=items, next_cursor=next_cursor)


@router.get("/{test_id}", response_model=ABTestOut, responses=ERRORS)
async def get_ab_test(test_id: TestId, runtime: ReaderDep) -> ABTestOut:
    """Settings, status and statistics: live while running (from per-arm sufficient statistics),
    the frozen result once concluded."""
    found = await read(runtime.ab_results.get, validate_test_id(test_id))
    return test_out(found, found["statistics"])


#: settings never change after creation, so assignment can skip the database after the first call
_configs: dict[tuple[int, str], TestConfig] = {}


def assigned_config(runtime: Any, test_id: str) -> TestConfig | None:
    """The cached settings of a test this route has answered for (api/http/assignment_fast_path.py)."""
    return _configs.get((id(runtime), test_id))


@router.get("/{test_id}/assignment", response_model=AssignmentOut, responses=ERRORS)
async def assignment(
    test_id: TestId, runtime: ReaderDep, unit: Annotated[str, Query(min_length=1, max_length=256)]
) -> AssignmentOut:
    """The arm for a unit (user, session): a hash of test id and unit: deterministic, sticky, no write."""
    key = (id(runtime), test_id)
    config = _configs.get(key)
    if config is None:
        found = await read(get_test, runtime.db, validate_test_id(test_id))
        if found is None:
            raise NotFound(f"A/B test {test_id!r} does not exist.")
        config = _configs[key] = found["config"]
    arm = assign(test_id, unit, config.split)
    return AssignmentOut(test_id=test_id, unit=unit, arm=arm, model=config.model_of(arm))


@router.post(
    "/{test_id}/samples", response_model=SamplesOut, responses=COMMAND_ERRORS, openapi_extra=json_body(SampleBatchIn)
)
async def record_samples(test_id: TestId, request: Request, cmd: CommandDep) -> SamplesOut:
    """Records a batch of up to 10,000 samples as one event; sample ids already counted come back in
    `duplicates`. An invalid batch is refused whole, listing every bad sample. Statistics follow in
    the background: read with `min_position`."""
    r = await ingest(request, cmd, "samples", lambda batch: cmd.runtime.record_samples(test_id, batch, actor=cmd.actor))
    return SamplesOut(accepted=r.accepted, duplicates=r.duplicates, position=r.recorded and r.recorded.position)


@router.post("/{test_id}/conclude", response_model=ABTestOut, responses=COMMAND_ERRORS)
async def conclude(test_id: TestId, body: EndTestIn, cmd: CommandDep) -> ABTestOut:
    """Computes the result over every sample recorded so far and freezes it in the event."""
    await cmd.run(lambda: cmd.runtime.ab_results.conclude(test_id, actor=cmd.actor, reason=body.reason))
    found = await read(cmd.runtime.ab_results.get, test_id)
    return test_out(found, found["statistics"])


@router.post("/{test_id}/abandon", response_model=ABTestOut, responses=COMMAND_ERRORS)
async def abandon(test_id: TestId, body: EndTestIn, cmd: CommandDep) -> ABTestOut:
    await cmd.run(lambda: cmd.runtime.ab.abandon(test_id, actor=cmd.actor, reason=body.reason))
    found = await read(cmd.runtime.ab_results.get, test_id)
    return test_out(found, found["statistics"])


@router.get("/{test_id}/winner", response_model=WinnerOut, responses=ERRORS)
async def winner(test_id: TestId, runtime: ReaderDep) -> WinnerOut:
    """The recommendation: a winner only with a significant accuracy difference, enough samples in
    both arms and no sample ratio mismatch; otherwise the reason, with the numbers."""
    found = await read(runtime.ab_results.get, validate_test_id(test_id))
    s = found["statistics"]
    command = await read(deploy_command, runtime.db, s["winner_model"])
    verdict = s["verdict"] + (f"; deploy it with `{command}`" if command else "")
    return WinnerOut(
        test_id=test_id, status=found["status"], winner=s["winner"], winner_model=s["winner_model"],
        verdict=verdict, deploy_command=command,
    )  # fmt: skip
