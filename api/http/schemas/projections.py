"""/v1/projections: the read models' positions, quarantines and rebuilds."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.http.schemas.common import Timestamp


class QuarantinedEventOut(BaseModel):
    projection: str
    position: int = Field(description="The event's position in the log")
    topic: str = Field(description="The event's class")
    originator_id: str
    originator_version: int
    error: str = Field(description="Why the projection could not apply it")
    attempts: int = Field(description="How often it was tried")
    quarantined_at: Timestamp


class ProjectionOut(BaseModel):
    name: str
    position: int
    head: int
    lag: int
    updated_at: Timestamp
    quarantined: int = Field(0, description="Events this projection could not apply and skipped")
    quarantine: list[QuarantinedEventOut] = Field(
        default_factory=list, description="The first of them (GET /v1/projections/{name}/quarantine has all)"
    )


class ReapplyIn(BaseModel):
    positions: list[int] | None = Field(None, max_length=10_000, description="Only these (default: every one)")


class ReapplyOut(BaseModel):
    name: str
    applied: list[int] = Field(description="Positions now applied; they left the quarantine")
    still_failing: list[QuarantinedEventOut]


class RebuildOut(BaseModel):
    name: str
    events: int
    position: int
    seconds: float
    events_per_second: float
