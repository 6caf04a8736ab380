"""Registry events read as version status changes, for every projection that shows statuses.

Deploy and rollback each change two versions (the one archived and the one
deployed); reading them here once keeps the projections from repeating the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.registry import RegisteredModel, VersionStatus

REGISTRY_EVENTS: tuple[type, ...] = (
    RegisteredModel.ModelRegistered,
    RegisteredModel.VersionRegistered,
    RegisteredModel.VersionStatusChanged,
    RegisteredModel.VersionDeployed,
    RegisteredModel.RolledBack,
    RegisteredModel.VersionEvaluated,
    RegisteredModel.ServingChanged,
)


@dataclass(frozen=True)
class StatusChange:
    model: str
    number: int
    status: str
    at: datetime
    actor: str
    reason: str | None
    event_type: str
    #: the version was DEPLOYED before this change and is not any more
    left_deployment: bool = False

    @property
    def deploys(self) -> bool:
        return self.status == VersionStatus.DEPLOYED


def status_changes(event: Any) -> list[StatusChange]:
    """The version statuses one event sets, in the order they happen."""

    def change(number: int, status: str, *, left: bool = False) -> StatusChange:
        return StatusChange(
            event.model, number, status, event.timestamp, event.actor, event.reason, type(event).__name__, left
        )

    deployed = VersionStatus.DEPLOYED.value
    archived = VersionStatus.ARCHIVED.value
    if isinstance(event, RegisteredModel.VersionRegistered):
        return [change(event.number, event.status)]
    if isinstance(event, RegisteredModel.VersionStatusChanged):
        return [change(event.number, event.to_status, left=event.from_status == deployed)]
    if isinstance(event, RegisteredModel.VersionDeployed):
        before = [change(event.archived, archived, left=True)] if event.archived is not None else []
        return [*before, change(event.number, deployed)]
    if isinstance(event, RegisteredModel.RolledBack):
        return [change(event.from_version, archived, left=True), change(event.to_version, deployed)]
    return []
