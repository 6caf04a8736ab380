"""/healthz."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HealthOut(BaseModel):
    status: Literal["ok"]
    store: str
    head: int
    quarantined: int = Field(0, description="Events some projection could not apply (GET /v1/projections)")
