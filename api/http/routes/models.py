"""/v1/models: register versions, change status, deploy and roll back; read the registry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from api.http.deps import CommandDep, GuardedCommandDep, ReaderDep, decode_cursor, encode_cursor, read
from api.http.errors import ApiProblem
from api.http.responses import COMMAND, READ, errors
from api.http.schemas.models import (
    DeployedOut,
    DeployRequest,
    ModelDetailOut,
    ModelPage,
    RegisteredOut,
    RegisterVersionRequest,
    RollbackRequest,
    ServingOut,
    ServingRequest,
    StatusChangedOut,
    StatusChangeRequest,
    VersionOut,
    VersionPage,
)
from api.runtime import Runtime
from application.base import Recorded
from application.registry import Deployed
from domain.errors import NotFound
from domain.registry import parse_status, validate_model_name
from domain.values import MAX_COUNT
from projections import registry as listing

router = APIRouter(prefix="/v1/models", tags=["models"], responses=READ)

ModelName = Annotated[str, Path(description="1 to 64 characters of A-Za-z0-9._-")]
#: reads of one model or version; commands; and commands that take If-Match (deploy, rollback, status)
ERRORS = errors(404)
COMMAND_ERRORS = COMMAND | errors(404, 409)
GUARDED_ERRORS = COMMAND_ERRORS | errors(412)


def _etag(recorded: Recorded, response: Response) -> None:
    response.headers["ETag"] = f'"{recorded.aggregate_version}"'


def _parse_version(v: str) -> int | None:
    if v == "latest":
        return None
    # ASCII digits only ('²' is a digit to isdigit, not to int), and within what the store holds
    if not (v.isascii() and v.isdigit() and len(v) <= 10) or not 1 <= int(v) <= MAX_COUNT:
        raise ApiProblem(
            422, "invalid-input", "Invalid input",
            f"version must be a number from 1 to {MAX_COUNT:,}, or 'latest'; got {v[:40]!r}.",
        )  # fmt: skip
    return int(v)


def _deployed(result: Deployed, response: Response) -> DeployedOut:
    _etag(result.recorded, response)
    return DeployedOut(
        model=result.model,
        version=result.number,
        previous_version=result.previous,
        position=result.recorded.position,
        etag=result.recorded.aggregate_version,
    )


@router.post(
    "/{name}/versions", status_code=status.HTTP_201_CREATED, responses=COMMAND_ERRORS, response_model=RegisteredOut
)
async def register_version(
    name: ModelName, body: RegisterVersionRequest, cmd: CommandDep, response: Response
) -> RegisteredOut:
    """Registers a new version (numbered 1, 2, 3, ...); the model is created with its first version."""
    result = await cmd.run(
        lambda: cmd.runtime.versions.register(  # a given cost also goes to the cost ledger
            name,
            base_model=body.base_model,
            job_id=body.job_id,
            dataset_size=body.dataset_size,
            accuracy=body.accuracy,
            cost=body.cost,
            training=body.status == "TRAINING",
            serving=body.serving,
            actor=cmd.actor,
            reason=body.reason,
        )
    )
    _etag(result.recorded, response)
    response.headers["Location"] = f"/v1/models/{name}/versions/{result.number}"
    return RegisteredOut(
        model=name,
        version=result.number,
        status=result.status.value,
        position=result.recorded.position,
        etag=result.recorded.aggregate_version,
    )


@router.get("", response_model=ModelPage)
async def list_models(
    runtime: ReaderDep,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ModelPage:
    items = await read(listing.list_models, runtime.db, after=decode_cursor(cursor, str), limit=limit)
    next_cursor = encode_cursor(items[-1]["name"]) if len(items) == limit else None
    return ModelPage(items=items, next_cursor=next_cursor)


def _require_model(runtime: Runtime, name: str) -> dict:
    validate_model_name(name)
    model = listing.get_model(runtime.db, name)
    if model is None:
        raise NotFound(f"Model {name!r} is not registered.")
    return model


@router.get("/{name}", response_model=ModelDetailOut, responses=ERRORS)
async def get_model(name: ModelName, runtime: ReaderDep, response: Response) -> ModelDetailOut:
    """The model with all its versions. Its ETag is what If-Match expects on deploy and rollback."""
    model = await read(_require_model, runtime, name)
    response.headers["ETag"] = f'"{model["etag"]}"'
    return ModelDetailOut(**model, versions=await read(listing.list_versions, runtime.db, name))


@router.get("/{name}/versions", response_model=VersionPage, responses=ERRORS)
async def list_versions(
    name: ModelName,
    runtime: ReaderDep,
    status_filter: Annotated[str | None, Query(alias="status", description="Only versions in this status")] = None,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> VersionPage:
    wanted = parse_status(status_filter).value if status_filter else None
    await read(_require_model, runtime, name)
    items = await read(
        listing.list_versions, runtime.db, name, status=wanted, after=decode_cursor(cursor, int) or 0, limit=limit
    )
    next_cursor = encode_cursor(items[-1]["version"]) if len(items) == limit else None
    return VersionPage(items=items, next_cursor=next_cursor)


@router.get("/{name}/versions/{v}", response_model=VersionOut, responses=ERRORS)
async def get_version(
    name: ModelName,
    runtime: ReaderDep,
    v: Annotated[str, Path(description="A version number, or `latest`")],
) -> VersionOut:
    number = _parse_version(v)
    await read(_require_model, runtime, name)
    found = await read(listing.get_version, runtime.db, name, number)
    if found is None:
        raise NotFound(f"Model {name!r} has no version {v}.")
    return VersionOut(**found)


@router.post("/{name}/versions/{v}/status", responses=GUARDED_ERRORS, response_model=StatusChangedOut | DeployedOut)
async def set_status(
    name: ModelName,
    body: StatusChangeRequest,
    cmd: GuardedCommandDep,
    response: Response,
    v: Annotated[str, Path(description="A version number, or `latest`")],
) -> StatusChangedOut | DeployedOut:
    """Moves a version to another status. DEPLOYED is a deploy: the version deployed before is archived."""
    number = _parse_version(v)
    result = await cmd.run(
        lambda: cmd.runtime.registry.set_status(
            name, number, body.status, actor=cmd.actor, reason=body.reason, expected_version=cmd.expected_version
        )
    )
    if isinstance(result, Deployed):
        return _deployed(result, response)
    _etag(result.recorded, response)
    return StatusChangedOut(
        model=name,
        version=result.number,
        status=result.to_status.value,
        previous_status=result.from_status.value,
        position=result.recorded.position,
        etag=result.recorded.aggregate_version,
    )


@router.put("/{name}/versions/{v}/serving", responses=GUARDED_ERRORS, response_model=ServingOut)
async def set_serving(
    name: ModelName,
    body: ServingRequest,
    cmd: GuardedCommandDep,
    response: Response,
    v: Annotated[str, Path(description="A version number, or `latest`")],
) -> ServingOut:
    """Sets where a version answers calls (its serving target), as an event in the audit trail."""
    number = _parse_version(v)
    result = await cmd.run(
        lambda: cmd.runtime.registry.set_serving(
            name, number, body.serving, actor=cmd.actor, reason=body.reason, expected_version=cmd.expected_version
        )
    )
    _etag(result.recorded, response)
    return ServingOut(model=name, version=result.number, serving=result.serving, position=result.recorded.position,
                      etag=result.recorded.aggregate_version)  # fmt: skip


@router.post("/{name}/deploy", responses=GUARDED_ERRORS, response_model=DeployedOut)
async def deploy(name: ModelName, body: DeployRequest, cmd: GuardedCommandDep, response: Response) -> DeployedOut:
    """Deploys a READY or ARCHIVED version and archives the one deployed before."""
    result = await cmd.run(
        lambda: cmd.runtime.registry.deploy(
            name, body.version, actor=cmd.actor, reason=body.reason, expected_version=cmd.expected_version
        )
    )
    return _deployed(result, response)


@router.post("/{name}/rollback", responses=GUARDED_ERRORS, response_model=DeployedOut)
async def rollback(name: ModelName, body: RollbackRequest, cmd: GuardedCommandDep, response: Response) -> DeployedOut:
    """Rolls back to an older version: the deployed one is ARCHIVED, the target DEPLOYED, in one event."""
    result = await cmd.run(
        lambda: cmd.runtime.registry.rollback(
            name, body.target_version, actor=cmd.actor, reason=body.reason, expected_version=cmd.expected_version
        )
    )
    return _deployed(result, response)
