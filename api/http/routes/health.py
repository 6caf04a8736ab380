"""/healthz: the service is up and its store answers."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.http.deps import read
from api.http.responses import errors
from api.http.schemas import HealthOut

router = APIRouter(tags=["health"], responses=errors(503))


@router.get("/healthz", response_model=HealthOut)
async def healthz(request: Request) -> HealthOut:
    runtime = request.app.state.runtime
    return HealthOut(status="ok", store=runtime.config.dialect, head=await read(runtime.engine.log.head))
