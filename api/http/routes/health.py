"""/healthz: the service is up and its store answers."""

from __future__ import annotations

from fastapi import APIRouter

from api.http.deps import RuntimeDep
from api.http.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
def healthz(runtime: RuntimeDep) -> HealthOut:
    return HealthOut(status="ok", store=runtime.config.dialect, head=runtime.engine.log.head())
