"""/healthz."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HealthOut(BaseModel):
    status: Literal["ok"]
    store: str
    head: int
    quarantined: int = Field(0, description="Events some projection could not apply (GET /v1/projections)")


class GatewayHealthOut(BaseModel):
    """The gateway's recorder and routes in this process."""

    routes_position: int = Field(description="The registry view's log position the routes reflect")
    queued: int = Field(description="Call records waiting to be written")
    in_flight: int = Field(description="Calls being answered now")
    recorded: int = Field(description="Call records written since start")
    dropped: int = Field(description="Call records dropped because the queue was full (calls were answered)")
    capacity: int
    queue_full: bool
    failed_writes: int
    last_error: str | None
    lost_at_last_stop: int = Field(
        description="Call records a previous process on this store could not write (killed before its flush)"
    )


class HealthWithGatewayOut(HealthOut):
    gateway: GatewayHealthOut | None = None
