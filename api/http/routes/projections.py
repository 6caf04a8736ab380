"""/v1/projections: how far each read model has got, what it had to skip, and rebuilds from the log."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path

from api.http.deps import ReaderDep, read
from api.http.responses import COMMAND, READ, errors
from api.http.schemas.projections import ProjectionOut, QuarantinedEventOut, ReapplyIn, ReapplyOut, RebuildOut
from api.runtime import Runtime

router = APIRouter(prefix="/v1/projections", tags=["projections"], responses=READ)
Name = Annotated[str, Path(description="A projection's name, as GET /v1/projections lists them")]
#: quarantined events shown per projection in the listing
SHOWN = 20


def _listing(runtime: Runtime) -> list[ProjectionOut]:
    def shown(name: str) -> list[QuarantinedEventOut]:
        return [QuarantinedEventOut(**asdict(q)) for q in runtime.engine.quarantined(name, limit=SHOWN)]

    return [
        ProjectionOut(name=s.name, position=s.position, head=s.head, lag=s.lag, updated_at=s.updated_at,
                      quarantined=s.quarantined, quarantine=shown(s.name) if s.quarantined else [])
        for s in runtime.engine.status()
    ]  # fmt: skip


@router.get("", response_model=list[ProjectionOut])
async def list_projections(runtime: ReaderDep) -> list[ProjectionOut]:
    """Each projection's position, the log's head and the lag, and the events it quarantined: events it
    could not apply (after retries) and skipped, so that it and the others go on."""
    return await read(_listing, runtime)


@router.get("/{name}/quarantine", response_model=list[QuarantinedEventOut], responses=errors(404))
async def quarantine(runtime: ReaderDep, name: Name) -> list[QuarantinedEventOut]:
    """Every event this projection quarantined, oldest first, with the error."""
    found = await read(runtime.engine.quarantined, name, limit=100_000)
    return [QuarantinedEventOut(**asdict(q)) for q in found]


@router.post("/{name}/quarantine/reapply", response_model=ReapplyOut, responses=COMMAND | errors(404))
async def reapply(runtime: ReaderDep, name: Name, body: ReapplyIn | None = None) -> ReapplyOut:
    """Applies the quarantined events again (after a fix): those that now apply leave the quarantine,
    the others stay with their new error. They are applied after the events that followed them; where
    the order matters to a projection, rebuild it instead."""
    report = await read(runtime.engine.reapply, name, body.positions if body else None)
    return ReapplyOut(name=report.name, applied=report.applied,
                      still_failing=[QuarantinedEventOut(**asdict(q)) for q in report.still_failing])  # fmt: skip


@router.post("/{name}/rebuild", response_model=RebuildOut, responses=COMMAND | errors(404))
async def rebuild(runtime: ReaderDep, name: Name) -> RebuildOut:
    """Replays the projection from position zero into fresh tables, then swaps them in;
    queries keep answering from the old tables meanwhile. Its quarantine is what fails this time."""
    report = await read(runtime.engine.rebuild, runtime.engine.get(name).name)
    return RebuildOut(
        name=report.name,
        events=report.events,
        position=report.position,
        seconds=report.seconds,
        events_per_second=report.events_per_second,
    )
