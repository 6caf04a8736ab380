"""/v1/training-costs and /v1/costs: what jobs and models cost, and why."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from api.http.deps import CommandDep, ReaderDep, decode_cursor, encode_cursor, read
from api.http.ingestion import ingest
from api.http.responses import COMMAND, READ, errors, json_body
from api.http.schemas.common import Name
from api.http.schemas.costs import (
    CostSummaryOut,
    InferenceBatchIn,
    InferenceCostsOut,
    InferencesOut,
    ModelCostsOut,
    RoiIn,
    RoiOut,
    TrainingCostIn,
    TrainingCostOut,
)
from domain.errors import NotFound
from domain.values import stored_time
from projections.costs import cost_summary, inference_costs, job_cost, model_costs
from projections.roi_inputs import roi_report
from projections.rows import format_ts

router = APIRouter(tags=["costs"], responses=READ)


@router.post(
    "/v1/training-costs",
    status_code=status.HTTP_201_CREATED,
    response_model=TrainingCostOut,
    responses=COMMAND | errors(409),
)
async def record_training_cost(body: TrainingCostIn, cmd: CommandDep) -> TrainingCostOut:
    """Records a job's training cost. Without `total_cost` it is priced from the catalog at the job's
    time (`at`), and the unit price used is kept with it."""
    fields = body.model_dump(exclude={"reason", "at"})
    r = await cmd.run(lambda: cmd.runtime.ledger.record_training_cost(actor=cmd.actor, reason=body.reason, at=body.at,
                                                                      **fields))  # fmt: skip
    job, cost = r.job, r.cost
    return TrainingCostOut(
        job_id=job.job_id, model_name=job.model_name, base_model=job.base_model, dataset_size=job.dataset_size,
        training_tokens=job.training_tokens, epochs=job.epochs, training_hours=job.training_hours,
        at=format_ts(job.at), total_cost=cost.total, cost_source=cost.source, unit_price=cost.unit_price,
        unit=cost.unit, price_pattern=cost.price_pattern, recorded_by=cmd.actor, position=r.recorded.position,
        price_effective_from=None if cost.price_effective_from is None else format_ts(cost.price_effective_from),
    )  # fmt: skip


@router.get("/v1/costs/jobs/{job_id}", response_model=TrainingCostOut, responses=errors(404))
async def get_job_cost(runtime: ReaderDep, job_id: Annotated[Name, Path()]) -> TrainingCostOut:
    found = await read(job_cost, runtime.db, job_id)
    if found is None:
        raise NotFound(f"No training cost is recorded for job {job_id!r}: POST /v1/training-costs records one.")
    return TrainingCostOut(**found)


@router.get("/v1/costs/models/{name}", response_model=ModelCostsOut, responses=errors(404))
async def get_model_costs(runtime: ReaderDep, name: Annotated[Name, Path()]) -> ModelCostsOut:
    """A model's training cost and jobs, and its inference totals."""
    found = await read(model_costs, runtime.db, name)
    if found is None:
        raise NotFound(f"No costs are recorded for model {name!r}.")
    return ModelCostsOut(**found)


@router.post(
    "/v1/inferences",
    response_model=InferencesOut,
    responses=COMMAND,
    openapi_extra=json_body(InferenceBatchIn),
)
async def record_inferences(request: Request, cmd: CommandDep) -> InferencesOut:
    """Records a batch of up to 10,000 inferences as one event. A record whose id is already
    stored is reported in `duplicates` and not counted again, so retries are safe. A batch with an
    invalid record is rejected whole, with every bad record listed. The cost projections follow in
    the background: read with `min_position` to wait for them."""
    r = await ingest(request, cmd, "records", lambda batch: cmd.runtime.record_inferences(batch, actor=cmd.actor))
    return InferencesOut(
        accepted=r.accepted,
        duplicates=r.duplicates,
        position=None if r.recorded is None else r.recorded.position,
    )


@router.get("/v1/costs/summary", response_model=CostSummaryOut)
async def get_cost_summary(
    runtime: ReaderDep,
    since: Annotated[date | None, Query(description="First day of the per-day rows (UTC)")] = None,
    until: Annotated[date | None, Query(description="Last day of the per-day rows (UTC)")] = None,
) -> CostSummaryOut:
    """Per model and overall: training cost and jobs, inferences, tokens, inference cost and cost per
    call; and the same per day."""
    summary = await read(cost_summary, runtime.db, since=since and since.isoformat(), until=until and until.isoformat())
    return CostSummaryOut(**summary)


@router.post("/v1/costs/roi", response_model=RoiOut, responses=COMMAND | errors(409))
async def roi(body: RoiIn, runtime: ReaderDep) -> RoiOut:
    """ROI and break-even of a fine-tune. With `model` (and `base_model`) the training cost and the costs
    per call come from the ledger, unless given; the answer says which inputs came from where."""
    return RoiOut(**await read(roi_report, runtime.db, body.model_dump()))


@router.get("/v1/costs/inferences", response_model=InferenceCostsOut)
async def get_inference_costs(
    runtime: ReaderDep,
    model: Annotated[Name | None, Query(description="Only this model")] = None,
    since: Annotated[datetime | None, Query(description="From this time, inclusive (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Up to this time, inclusive (ISO 8601)")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> InferenceCostsOut:
    """Inference records by model and time range, with exact totals over everything the filter matches."""
    after = decode_cursor(cursor, (str, str))  # [at, id] of the last record
    found = await read(
        inference_costs, runtime.db, model=model, since=stored_time("since", since), until=stored_time("until", until),
        after=tuple(after) if after else None, limit=limit,
    )  # fmt: skip
    records = found["records"]
    next_cursor = encode_cursor([records[-1]["at"], records[-1]["id"]]) if len(records) == limit else None
    return InferenceCostsOut(records=records, totals=found["totals"], next_cursor=next_cursor)
