"""/v1/projections: how far each read model has got, and rebuilds from the log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.http.deps import RuntimeDep
from api.http.schemas import Problem, ProjectionOut, RebuildOut

router = APIRouter(prefix="/v1/projections", tags=["projections"])


@router.get("", response_model=list[ProjectionOut])
def list_projections(runtime: RuntimeDep) -> list[ProjectionOut]:
    return [
        ProjectionOut(name=s.name, position=s.position, head=s.head, lag=s.lag, updated_at=s.updated_at)
        for s in runtime.engine.status()
    ]


@router.post("/{name}/rebuild", response_model=RebuildOut, responses={404: {"model": Problem}})
def rebuild(runtime: RuntimeDep, name: Annotated[str, Path(description="deployments, registry or audit")]) -> RebuildOut:
    """Replays the projection from position zero into fresh tables, then swaps them in;
    queries keep answering from the old tables meanwhile."""
    report = runtime.engine.rebuild(runtime.engine.get(name).name)
    return RebuildOut(
        name=report.name,
        events=report.events,
        position=report.position,
        seconds=report.seconds,
        events_per_second=report.events_per_second,
    )
