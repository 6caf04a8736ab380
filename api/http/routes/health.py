"""/healthz: the service is up and its store answers, within a second whatever the database does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from api.http.errors import STORE_RETRY_AFTER, STORE_UNAVAILABLE, problem
from api.http.responses import errors
from api.http.schemas.health import GatewayHealthOut, HealthWithGatewayOut

router = APIRouter(tags=["health"], responses=errors(503))

#: the store check's budget, so /healthz answers well within a second on a busy machine
STORE_CHECK_SECONDS = 0.5
#: checks that may hang at once on a dead database (each ends within the pool timeout)
MAX_PENDING_CHECKS = 4
_checker = ThreadPoolExecutor(max_workers=MAX_PENDING_CHECKS, thread_name_prefix="healthz")


def _store_check(state: Any, probe: Callable[[], tuple[int, int]]) -> asyncio.Future[tuple[int, int]]:
    """The store check to wait for: a recent one still running is shared, so calls do not pile
    up on a dead database; an older one does not hold a recovered store's answer back."""
    now = time.monotonic()
    pending = [(t, f) for t, f in getattr(state, "health_checks", []) if not f.done()]
    if pending and (now - pending[-1][0] < STORE_CHECK_SECONDS or len(pending) >= MAX_PENDING_CHECKS):
        return pending[-1][1]
    check = asyncio.get_running_loop().run_in_executor(_checker, probe)
    check.add_done_callback(lambda f: f.cancelled() or f.exception())  # an abandoned check's error is seen
    state.health_checks = [*pending, (now, check)]
    return check


def _probe(runtime: Any) -> tuple[int, int]:
    """The log's head and how many events the projections quarantined."""
    statuses = runtime.engine.status()
    head = statuses[0].head if statuses else runtime.engine.log.head()
    return head, sum(s.quarantined for s in statuses)


@router.get("/healthz", response_model=HealthWithGatewayOut)
async def healthz(request: Request) -> HealthWithGatewayOut | JSONResponse:
    runtime = request.app.state.runtime
    check = _store_check(request.app.state, lambda: _probe(runtime))
    try:
        head, quarantined = await asyncio.wait_for(asyncio.shield(check), timeout=STORE_CHECK_SECONDS)
    except Exception as exc:  # timeout or a store failure: either way the store does not answer
        detail = (
            f"the store did not answer within {STORE_CHECK_SECONDS} s" if isinstance(exc, TimeoutError)
            else f"the store failed: {type(exc).__name__}"
        )  # fmt: skip
        # the service is up but degraded: the same problem+json as every other 503
        slug, title, _ = STORE_UNAVAILABLE
        return problem(503, slug, title, detail, headers={"Retry-After": STORE_RETRY_AFTER},
                       store=runtime.config.dialect)  # fmt: skip
    gateway = getattr(request.app.state, "gateway", None)
    return HealthWithGatewayOut(status="ok", store=runtime.config.dialect, head=head, quarantined=quarantined,
                                gateway=None if gateway is None else gateway_health(gateway))  # fmt: skip


def gateway_health(gateway: Any) -> GatewayHealthOut:
    s = gateway.recorder.stats()
    return GatewayHealthOut(routes_position=gateway.routes.position, queued=s.queued, in_flight=s.in_flight,
                            recorded=s.recorded, dropped=s.dropped, capacity=s.capacity,
                            queue_full=s.queued >= s.capacity, failed_writes=s.failed_writes,
                            last_error=s.last_error, lost_at_last_stop=s.lost_at_last_stop)  # fmt: skip


#: (name, help, type, the recorder stat it reads)
GATEWAY_METRICS = (
    ("ft_gateway_calls_in_flight", "Calls being answered now", "gauge", "in_flight"),
    ("ft_gateway_records_queued", "Call records waiting to be written", "gauge", "queued"),
    ("ft_gateway_records_queue_capacity", "Call records the queue holds at most", "gauge", "capacity"),
    ("ft_gateway_records_written_total", "Call records written since start", "counter", "recorded"),
    ("ft_gateway_records_dropped_total", "Call records dropped because the queue was full", "counter", "dropped"),
    ("ft_gateway_record_write_failures_total", "Failed writes of a batch of call records (retried)", "counter",
     "failed_writes"),
    ("ft_gateway_records_lost_at_last_stop", "Records a killed process on this store did not write", "gauge",
     "lost_at_last_stop"),
)  # fmt: skip


@router.get("/metrics", response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request) -> PlainTextResponse:
    """The gateway's recorder in Prometheus' text format (empty when the gateway is off)."""
    gateway = getattr(request.app.state, "gateway", None)
    lines: list[str] = []
    if gateway is not None:
        stats = gateway.recorder.stats()
        for name, text, kind, field in GATEWAY_METRICS:
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {getattr(stats, field)}"]
        lines += ["# HELP ft_gateway_queue_full 1 while the record queue is full",
                  "# TYPE ft_gateway_queue_full gauge",
                  f"ft_gateway_queue_full {int(stats.queued >= stats.capacity)}",
                  "# HELP ft_gateway_routes_position The registry view's log position the routes reflect",
                  "# TYPE ft_gateway_routes_position gauge",
                  f"ft_gateway_routes_position {gateway.routes.position}"]  # fmt: skip
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
