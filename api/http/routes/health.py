"""/healthz: the service is up and its store answers."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.http.deps import read
from api.http.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def healthz(request: Request) -> HealthOut:
    runtime = request.app.state.runtime
    quarantined = sum(s.quarantined for s in await read(runtime.engine.status))
    return HealthOut(status="ok", store=runtime.config.dialect, head=await read(runtime.engine.log.head),
                     quarantined=quarantined)
