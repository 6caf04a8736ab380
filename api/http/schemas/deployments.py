"""/v1/deployments: what is deployed, now or at a past time."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.http.schemas.common import Timestamp


class VersionStatusOut(BaseModel):
    version: int
    status: str
    since: Timestamp


class DeploymentOut(BaseModel):
    model: str
    deployed_version: int | None
    deployed_since: Timestamp
    deployed_by: str | None
    reason: str | None
    event_type: str | None = Field(description="VersionDeployed or RolledBack")
    versions: list[VersionStatusOut]


class DeploymentPage(BaseModel):
    as_of: Timestamp
    items: list[DeploymentOut]
    next_cursor: str | None
