"""/v1/training-costs and /v1/costs: what jobs and models cost, and why."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.http.deps import CommandDep, ReaderDep, read
from api.http.schemas import ModelCostsOut, Problem, TrainingCostIn, TrainingCostOut
from domain.errors import NotFound
from projections.costs import job_cost, model_costs
from projections.rows import format_ts

router = APIRouter(tags=["costs"])


@router.post(
    "/v1/training-costs",
    status_code=status.HTTP_201_CREATED,
    response_model=TrainingCostOut,
    responses={409: {"model": Problem}, 422: {"model": Problem}},
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


@router.get("/v1/costs/jobs/{job_id}", response_model=TrainingCostOut, responses={404: {"model": Problem}})
async def get_job_cost(runtime: ReaderDep, job_id: Annotated[str, Path()]) -> TrainingCostOut:
    found = await read(job_cost, runtime.db, job_id)
    if found is None:
        raise NotFound(f"No training cost is recorded for job {job_id!r}: POST /v1/training-costs records one.")
    return TrainingCostOut(**found)


@router.get("/v1/costs/models/{name}", response_model=ModelCostsOut, responses={404: {"model": Problem}})
async def get_model_costs(runtime: ReaderDep, name: Annotated[str, Path()]) -> ModelCostsOut:
    """A model's training cost and jobs, and its inference totals."""
    found = await read(model_costs, runtime.db, name)
    if found is None:
        raise NotFound(f"No costs are recorded for model {name!r}.")
    return ModelCostsOut(**found)
