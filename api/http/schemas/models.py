"""/v1/models: registering versions, changing their status, deploying and rolling back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.http.schemas.common import Count, Name, Position, Reason, Request_, Share, Timestamp, Usd, VersionNumber

SERVING = ("Where the version answers calls: {upstream, model} (an upstream configured on the server, whose "
           "credential stays there) or {base_url, model} (an OpenAI-compatible base URL), and the upstream's model")
SERVING_EXAMPLE = {"upstream": "openai", "model": "ft:gpt-4o-mini-2024-07-18:acme::abc123"}


class RegisterVersionRequest(Request_):
    base_model: Name = Field(examples=["gpt-4o-mini-2024-07-18"])
    job_id: Name = Field(examples=["ftjob-abc123"])
    dataset_size: Count = Field(description="Number of training examples")
    accuracy: Share | None = Field(None, description="0..1, optional")
    cost: Usd | None = Field(None, description="Training cost in USD, optional")
    status: Literal["READY", "TRAINING"] = Field(
        "READY", description="TRAINING while its job still runs; it moves on to READY or FAILED"
    )
    serving: dict[str, Any] | None = Field(None, description=SERVING, examples=[SERVING_EXAMPLE])
    reason: Reason = None


class ServingRequest(Request_):
    serving: dict[str, Any] | None = Field(description=SERVING + "; null: it serves nowhere",
                                           examples=[SERVING_EXAMPLE])  # fmt: skip
    reason: Reason = None


class ServingOut(BaseModel):
    model: str
    version: int
    serving: dict[str, str] | None
    position: Position
    etag: int


class StatusChangeRequest(Request_):
    status: str = Field(max_length=20, description="TRAINING, READY, DEPLOYED, ARCHIVED or FAILED",
                        examples=["ARCHIVED"])  # fmt: skip
    reason: Reason = None


class DeployRequest(Request_):
    version: VersionNumber | None = Field(None, description="Default: the latest READY version")
    reason: Reason = None


class RollbackRequest(Request_):
    target_version: VersionNumber = Field(description="An older version than the deployed one")
    reason: Reason = None


class VersionOut(BaseModel):
    version: int
    model_name: str
    base_model: str | None
    job_id: str | None
    dataset_size: int | None
    accuracy: float | None
    cost: Decimal | None = Field(description="USD, as a decimal string")
    status: str
    registered_at: Timestamp
    registered_by: str | None
    status_changed_at: Timestamp
    deployed_at: Timestamp
    serving: dict[str, Any] | None = Field(None, description=SERVING)


class ModelOut(BaseModel):
    name: str
    created_at: Timestamp
    created_by: str | None
    version_count: int
    latest_version: int | None
    deployed_version: int | None
    updated_at: Timestamp
    etag: int = Field(description="The model's event count; send it as If-Match to deploy or roll back safely")


class ModelDetailOut(ModelOut):
    versions: list[VersionOut]


class ModelPage(BaseModel):
    items: list[ModelOut]
    next_cursor: str | None


class VersionPage(BaseModel):
    items: list[VersionOut]
    next_cursor: str | None


class RegisteredOut(BaseModel):
    model: str
    version: int
    status: str
    position: Position
    etag: int


class StatusChangedOut(BaseModel):
    model: str
    version: int
    status: str
    previous_status: str
    position: Position
    etag: int


class DeployedOut(BaseModel):
    model: str
    version: int = Field(description="The version now DEPLOYED")
    previous_version: int | None = Field(description="The version that was deployed before, now ARCHIVED")
    status: Literal["DEPLOYED"] = "DEPLOYED"
    position: Position
    etag: int
