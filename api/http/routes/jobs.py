"""/v1/jobs: fine-tuning jobs at OpenAI (or Azure, or an OpenAI-compatible provider), event-sourced.

A job is checked against OpenAI's rules and estimated before anything is
uploaded; it pre-registers a TRAINING version in the registry, which becomes
READY (with its training cost) or FAILED with the job. The server's poller
keeps unfinished jobs current; `POST /v1/jobs/{id}/sync` does it at once.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from adapters.paths import within
from api.http.deps import CommandDep, ReaderDep, SettingsDep, decode_cursor, encode_cursor, read
from api.http.responses import COMMAND, READ, errors
from api.http.schemas.common import Name
from api.http.schemas.jobs import CancelIn, EstimateOut, JobEventOut, JobIn, JobOut, JobPage, ModelDeletedOut, PublishIn
from api.runtime import Runtime
from application.job_runs import Outcome, ProviderRefused
from domain.errors import InvalidInput, NotFound
from projections.jobs import get_job, job_for_model, list_jobs

router = APIRouter(tags=["jobs"], responses=READ)
JobId = Annotated[Name, Path(description="Our job id, or the provider's (ftjob-...)")]
ERRORS = errors(404, 409)
COMMAND_ERRORS = COMMAND | ERRORS
#: what the event-sourcing library keeps in every event, and the job id (already in the path)
_LIBRARY_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic", "job_id", "actor"}


def _job_out(runtime: Runtime, job_id: str, outcome: Outcome | None = None) -> JobOut:
    runtime.current()  # read-your-writes: the command's events are projected
    found = get_job(runtime.db, job_id)
    if found is None:
        raise NotFound(f"Job {job_id!r} does not exist: list jobs with GET /v1/jobs.")
    extra: dict[str, Any] = {}
    if outcome is not None:
        extra = {"pending": outcome.pending, "notes": outcome.notes, "appended": outcome.appended}
    return JobOut(**found, **extra)


DRY_RUN = {200: {"model": EstimateOut, "description": "dry_run: the estimate, nothing recorded"}}


@router.post("/v1/jobs", status_code=status.HTTP_201_CREATED, response_model=JobOut | EstimateOut,
             responses=COMMAND_ERRORS | DRY_RUN)  # fmt: skip
async def create_job(body: JobIn, cmd: CommandDep, settings: SettingsDep) -> Any:
    """Checks the training data against OpenAI's rules, estimates its cost (tokens x epochs x the training
    price in force), records the job, pre-registers a TRAINING version, uploads the files and submits the
    job. A provider that is down leaves the job `created` (`pending` says why): the next sync submits it.
    A provider that refuses fine-tuning (403 training_not_available) answers 409 and the job is kept as
    `refused`. `training_file`, `validation_file` and a local `base_model` folder are paths inside the
    server's data folder (FT_DATA_DIR)."""
    runtime = cmd.runtime
    fields = body.model_dump(exclude={"dry_run", "reason", "hyperparameters"}, exclude_none=True)
    fields["hyperparameters"] = body.hyperparameters.model_dump(exclude_none=True)
    plan = await read(runtime.job_service.plan, **fields, resolve=within(settings.data_dir))
    if body.dry_run:
        estimate = EstimateOut(**plan.estimate.as_dict(), examples=plan.spec.training.examples, warnings=plan.warnings)
        return JSONResponse(estimate.model_dump(mode="json"), status_code=200)
    try:
        outcome = await run_in_threadpool(runtime.job_service.create, plan, actor=cmd.actor, reason=body.reason)
    except ProviderRefused:
        await read(runtime.current)  # the refused job is readable at once
        raise
    return await read(_job_out, runtime, plan.spec.job_id, outcome)


@router.get("/v1/jobs", response_model=JobPage)
async def get_jobs(
    runtime: ReaderDep,
    status_: Annotated[Name | None, Query(alias="status", description="Only jobs in this status")] = None,
    model_name: Annotated[Name | None, Query(description="Only jobs registering under this model name")] = None,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobPage:
    """Newest first."""
    items = await read(list_jobs, runtime.db, status=status_, model_name=model_name,
                       after=decode_cursor(cursor, str), limit=limit)  # fmt: skip
    next_cursor = encode_cursor(items[-1]["job_id"]) if len(items) == limit else None
    return JobPage(items=[JobOut(**i) for i in items], next_cursor=next_cursor)


@router.get("/v1/jobs/{job_id}", response_model=JobOut, responses=ERRORS)
async def get_one(job_id: JobId, runtime: ReaderDep) -> JobOut:
    found = await read(get_job, runtime.db, job_id)
    if found is None:
        raise NotFound(f"Job {job_id!r} does not exist: list jobs with GET /v1/jobs.")
    return JobOut(**found)


@router.get("/v1/jobs/{job_id}/events", response_model=list[JobEventOut], responses=ERRORS)
async def get_events(job_id: JobId, runtime: ReaderDep) -> list[JobEventOut]:
    """The job's own event stream, oldest first: the audit trail of its life, with every provider event
    and metric it recorded."""

    def history() -> list[JobEventOut]:
        events = runtime.jobs.history(runtime.job_service.resolve(job_id))
        return [
            JobEventOut(type=type(e).__name__, at=e.timestamp.isoformat(), actor=getattr(e, "actor", None),
                        stream_version=e.originator_version,
                        details={k: v for k, v in vars(e).items() if k not in _LIBRARY_FIELDS})
            for e in events
        ]  # fmt: skip

    return await read(history)


@router.post("/v1/jobs/{job_id}/sync", response_model=JobOut, responses=COMMAND_ERRORS)
async def sync(job_id: JobId, cmd: CommandDep) -> JobOut:
    """Reads the job at its provider and records what is new (nothing, if nothing is); submits a job the
    provider has not accepted yet; settles a finished one (registry version, training cost)."""
    outcome = await run_in_threadpool(cmd.runtime.job_service.sync, job_id, actor=cmd.actor)
    return await read(_job_out, cmd.runtime, outcome.job.job_id, outcome)


@router.post("/v1/jobs/{job_id}/cancel", response_model=JobOut, responses=COMMAND_ERRORS)
async def cancel(job_id: JobId, cmd: CommandDep, body: CancelIn | None = None) -> JobOut:
    reason = body.reason if body else None
    outcome = await run_in_threadpool(cmd.runtime.job_service.cancel, job_id, actor=cmd.actor, reason=reason)
    return await read(_job_out, cmd.runtime, outcome.job.job_id, outcome)


@router.post("/v1/jobs/{job_id}/publish", response_model=JobOut, responses=COMMAND_ERRORS)
async def publish(job_id: JobId, body: PublishIn, cmd: CommandDep, settings: SettingsDep) -> JobOut:
    """Publishes a local run's export to the configured Ollama endpoint `endpoint` through its HTTP API:
    every file as a blob by its digest, then the model with its family's template, stop parameters and
    system prompt. The job records the name, so evaluation can reach the model at Ollama's
    OpenAI-compatible /v1/chat/completions."""
    if body.host is not None:
        raise InvalidInput("host is not taken over HTTP: give endpoint, the name of an Ollama endpoint configured "
                           "on the server (FT_ENDPOINTS; `ollama` is OLLAMA_HOST).")  # fmt: skip
    endpoint = settings.endpoint(body.endpoint, field="endpoint", kind="ollama")
    outcome = await run_in_threadpool(cmd.runtime.job_service.publish, job_id, body.name, actor=cmd.actor,
                                      host=endpoint.base_url, api_key=endpoint.key, system=body.system,
                                      base=body.base)  # fmt: skip
    return await read(_job_out, cmd.runtime, outcome.job.job_id, outcome)


@router.delete("/v1/fine-tuned-models/{model:path}", response_model=ModelDeletedOut, responses=ERRORS)
async def delete_model(
    model: Annotated[Name, Path(description="The fine-tuned model id, e.g. ft:gpt-4o-mini-2024-07-18:org::abc")],
    cmd: CommandDep,
) -> ModelDeletedOut:
    """Deletes the model at the provider; the job that produced it (if it ran here) records the deletion."""

    def delete() -> ModelDeletedOut:
        cmd.runtime.current()
        job = job_for_model(cmd.runtime.db, model)
        job_id = None if job is None else job["job_id"]
        cmd.runtime.job_service.delete_model(model, actor=cmd.actor, job_id=job_id)
        return ModelDeletedOut(model=model, deleted=True, job_id=job_id)

    return await cmd.run(delete)
