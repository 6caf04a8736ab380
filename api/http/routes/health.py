"""/healthz: the service is up and its store answers, within a second whatever the database does."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.http.schemas import HealthOut

router = APIRouter(tags=["health"])

#: the store check's budget, so /healthz answers within a second
STORE_CHECK_SECONDS = 0.8
_checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="healthz")


class HealthDegradedOut(BaseModel):
    status: Literal["degraded"]
    store: str
    detail: str


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthDegradedOut, "description": "The service is up but its store does not answer"}},
)
async def healthz(request: Request) -> HealthOut | JSONResponse:
    runtime = request.app.state.runtime
    state = request.app.state
    # One check at a time, on its own thread: while a check hangs on a dead database,
    # later calls wait for that same check (at most the budget) instead of piling up.
    check = getattr(state, "health_check", None)
    if check is None or check.done():
        check = asyncio.get_running_loop().run_in_executor(_checker, runtime.engine.log.head)
        state.health_check = check
    try:
        head = await asyncio.wait_for(asyncio.shield(check), timeout=STORE_CHECK_SECONDS)
    except Exception as exc:  # timeout or a store failure: either way the store does not answer
        detail = (
            f"the store did not answer within {STORE_CHECK_SECONDS} s" if isinstance(exc, TimeoutError)
            else f"the store failed: {type(exc).__name__}"
        )  # fmt: skip
        return JSONResponse(
            {"status": "degraded", "store": runtime.config.dialect, "detail": detail},
            status_code=503, headers={"Retry-After": "2"},
        )  # fmt: skip
    return HealthOut(status="ok", store=runtime.config.dialect, head=head)
