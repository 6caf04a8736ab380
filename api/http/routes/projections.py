"""/v1/projections: how far each read model has got, and rebuilds from the log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.http.deps import ReaderDep, read
from api.http.responses import COMMAND, READ, errors
from api.http.schemas import ProjectionOut, RebuildOut

router = APIRouter(prefix="/v1/projections", tags=["projections"], responses=READ)


@router.get("", response_model=list[ProjectionOut])
async def list_projections(runtime: ReaderDep) -> list[ProjectionOut]:
    return [
        ProjectionOut(name=s.name, position=s.position, head=s.head, lag=s.lag, updated_at=s.updated_at)
        for s in await read(runtime.engine.status)
    ]


@router.post("/{name}/rebuild", response_model=RebuildOut, responses=COMMAND | errors(404))
async def rebuild(
    runtime: ReaderDep, name: Annotated[str, Path(description="deployments, registry or audit")]
) -> RebuildOut:
    """Replays the projection from position zero into fresh tables, then swaps them in;
    queries keep answering from the old tables meanwhile."""
    report = await read(runtime.engine.rebuild, runtime.engine.get(name).name)
    return RebuildOut(
        name=report.name,
        events=report.events,
        position=report.position,
        seconds=report.seconds,
        events_per_second=report.events_per_second,
    )
