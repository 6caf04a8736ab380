"""The model registry: a registered model, its numbered versions and their life.

A `RegisteredModel` is one small aggregate per model name. Command methods
validate and compute; each event's `apply` only assigns state, because it runs
again on every replay. Every event carries the model name, who acted (`actor`)
and why (`reason`); the library stamps `timestamp` (UTC) when it is triggered.

The registry's version number is called `number` here: an aggregate's own
`version` belongs to the event-sourcing library and counts its events.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import InvalidInput, NotFound, RuleViolation
from domain.ids import stable_id
from domain.serving import ServingTarget
from domain.values import (
    MAX_COUNT,
    decimal_value,
    finite_number,
    name_text,
    validate_model_name,
    validate_reason,
    whole_number,
)


class VersionStatus(StrEnum):
    TRAINING = "TRAINING"
    READY = "READY"
    DEPLOYED = "DEPLOYED"
    ARCHIVED = "ARCHIVED"
    FAILED = "FAILED"


#: Status changes made by `set_status`. Deployment has commands of its own
#: (`deploy`, `rollback`), because it also archives the version deployed before.
STATUS_CHANGES: dict[VersionStatus, frozenset[VersionStatus]] = {
    VersionStatus.TRAINING: frozenset({VersionStatus.READY, VersionStatus.FAILED}),
    VersionStatus.READY: frozenset({VersionStatus.ARCHIVED}),
    VersionStatus.DEPLOYED: frozenset({VersionStatus.ARCHIVED}),
    VersionStatus.ARCHIVED: frozenset({VersionStatus.READY}),
    VersionStatus.FAILED: frozenset(),
}
DEPLOYABLE = frozenset({VersionStatus.READY, VersionStatus.ARCHIVED})


def model_id(name: str) -> UUID:
    """The aggregate id of a model name: a name finds its stream without an index."""
    return stable_id("model", name)


def parse_status(text: str) -> VersionStatus:
    try:
        return VersionStatus(str(text).strip().upper())
    except ValueError:
        allowed = ", ".join(s.value for s in VersionStatus)
        raise InvalidInput(f"Unknown status {text!r}: use one of {allowed}.") from None


@dataclass(frozen=True)
class VersionSpec:
    """The validated facts of a version about to be registered."""

    base_model: str
    job_id: str
    dataset_size: int
    accuracy: float | None
    cost: Decimal | None

    @classmethod
    def validate(
        cls,
        *,
        base_model: Any,
        job_id: Any,
        dataset_size: Any,
        accuracy: Any = None,
        cost: Any = None,
    ) -> VersionSpec:
        dataset_size = whole_number("dataset_size", dataset_size, maximum=MAX_COUNT)
        if accuracy is not None:
            accuracy = finite_number("accuracy", accuracy, maximum=1.0)
        if cost is not None:
            cost = decimal_value("cost", cost, usd=True)
        return cls(
            base_model=name_text("base_model", base_model),
            job_id=name_text("job_id", job_id),
            dataset_size=dataset_size,
            accuracy=accuracy,
            cost=cost,
        )


class RegisteredModel(Aggregate):
    """One model name and all its versions."""

    class Event(Aggregate.Event):
        model: str
        actor: str
        reason: str | None

    class ModelRegistered(Event, Aggregate.Created):
        def apply(self, aggregate: Any) -> None:  # the constructor assigns state
            pass

    class VersionRegistered(Event):
        number: int
        base_model: str
        job_id: str
        dataset_size: int
        accuracy: float | None
        cost: Decimal | None
        status: str

        def apply(self, model: RegisteredModel) -> None:
            model.statuses.append(self.status)

    class VersionStatusChanged(Event):
        number: int
        from_status: str
        to_status: str

        def apply(self, model: RegisteredModel) -> None:
            model.statuses[self.number - 1] = self.to_status

    class VersionDeployed(Event):
        number: int
        from_status: str
        #: the version that was deployed before and is now ARCHIVED, if any
        archived: int | None

        def apply(self, model: RegisteredModel) -> None:
            if self.archived is not None:
                model.statuses[self.archived - 1] = VersionStatus.ARCHIVED.value
            model.statuses[self.number - 1] = VersionStatus.DEPLOYED.value

    class RolledBack(Event):
        from_version: int
        to_version: int

        def apply(self, model: RegisteredModel) -> None:
            model.statuses[self.from_version - 1] = VersionStatus.ARCHIVED.value
            model.statuses[self.to_version - 1] = VersionStatus.DEPLOYED.value

    class ServingChanged(Event):
        """Where a version answers calls (domain/serving.py), or None: it serves nowhere."""

        number: int
        serving: dict[str, str] | None

        def apply(self, model: RegisteredModel) -> None:
            pass  # a fact for the projections and the gateway; the rules do not use it

    class VersionEvaluated(Event):
        """An evaluation's accuracy attached to a version, with the evaluation it came from."""

        number: int
        accuracy: float
        evaluation_id: str

        def apply(self, model: RegisteredModel) -> None:
            pass  # the accuracy is a fact for the projections; the rules do not use it

    @staticmethod
    def create_id(model: str) -> UUID:
        return model_id(model)

    @classmethod
    def register(cls, name: str, *, actor: str, reason: str | None = None) -> RegisteredModel:
        validate_model_name(name)
        return cls._create(cls.ModelRegistered, model=name, actor=actor, reason=validate_reason(reason))

    def __init__(self, model: str, actor: str, reason: str | None) -> None:
        self.name = model
        # Only what the rules need: version n's status is statuses[n - 1]. The
        # registered facts (base model, cost, ...) live in the events and the
        # projections. Plain strings keep snapshots JSON-native.
        self.statuses: list[str] = []

    # ----------------------------------------------------------------- queries

    @property
    def latest_number(self) -> int:
        return len(self.statuses)

    def status_of(self, number: int) -> VersionStatus:
        if not 1 <= number <= len(self.statuses):
            known = f"it has versions 1 to {self.latest_number}" if self.statuses else "it has no versions yet"
            raise NotFound(f"Model {self.name!r} has no version {number}: {known}.")
        return VersionStatus(self.statuses[number - 1])

    @property
    def deployed_number(self) -> int | None:
        deployed = VersionStatus.DEPLOYED.value
        return next((n for n, s in enumerate(self.statuses, start=1) if s == deployed), None)

    def latest_with_status(self, status: VersionStatus) -> int:
        for number in range(len(self.statuses), 0, -1):
            if self.statuses[number - 1] == status.value:
                return number
        raise RuleViolation(
            f"Model {self.name!r} has no {status.value} version: give the version to act on explicitly."
        )

    # ---------------------------------------------------------------- commands

    def register_version(self, spec: VersionSpec, *, training: bool, actor: str, reason: str | None = None) -> int:
        number = self.latest_number + 1
        status = VersionStatus.TRAINING if training else VersionStatus.READY
        self.trigger_event(
            self.VersionRegistered,
            model=self.name,
            actor=actor,
            reason=validate_reason(reason),
            number=number,
            base_model=spec.base_model,
            job_id=spec.job_id,
            dataset_size=spec.dataset_size,
            accuracy=spec.accuracy,
            cost=spec.cost,
            status=status.value,
        )
        return number

    def set_serving(self, number: int, target: ServingTarget | None, *, actor: str, reason: str | None = None) -> None:
        if self.status_of(number) is VersionStatus.FAILED:
            raise RuleViolation(f"Version {number} of {self.name!r} is FAILED: it serves nothing; register a new one.")
        self.trigger_event(self.ServingChanged, model=self.name, actor=actor, reason=validate_reason(reason),
                           number=number, serving=None if target is None else target.as_dict())  # fmt: skip

    def record_evaluation(self, number: int, accuracy: float, evaluation_id: str, *, actor: str,
                          reason: str | None = None) -> None:  # fmt: skip
        self.status_of(number)  # the version must exist
        accuracy = finite_number("accuracy", accuracy, maximum=1.0)
        self.trigger_event(self.VersionEvaluated, model=self.name, actor=actor, reason=validate_reason(reason),
                           number=number, accuracy=float(accuracy), evaluation_id=evaluation_id)  # fmt: skip

    def set_status(self, number: int, status: VersionStatus, *, actor: str, reason: str | None = None) -> None:
        current = self.status_of(number)
        if status is VersionStatus.DEPLOYED:
            raise RuleViolation("Use deploy to make a version DEPLOYED: it also archives the version deployed before.")
        if current is status:
            raise RuleViolation(f"Version {number} of {self.name!r} is already {status.value}.")
        allowed = STATUS_CHANGES[current]
        if status not in allowed:
            if current is VersionStatus.FAILED:
                hint = "FAILED is final: register a new version instead."
            else:
                hint = "allowed: " + (", ".join(sorted(s.value for s in allowed)) or "none") + "."
            raise RuleViolation(
                f"Version {number} of {self.name!r} cannot go from {current.value} to {status.value}; {hint}"
            )
        self.trigger_event(
            self.VersionStatusChanged,
            model=self.name,
            actor=actor,
            reason=validate_reason(reason),
            number=number,
            from_status=current.value,
            to_status=status.value,
        )

    def deploy(self, number: int, *, actor: str, reason: str | None = None) -> int | None:
        """Deploys a version and archives the one deployed before; returns that one's number."""
        current = self.status_of(number)
        if current is VersionStatus.DEPLOYED:
            raise RuleViolation(f"Version {number} of {self.name!r} is already deployed.")
        if current not in DEPLOYABLE:
            raise RuleViolation(
                f"Version {number} of {self.name!r} is {current.value} and cannot be deployed: "
                "only READY or ARCHIVED versions can."
            )
        archived = self.deployed_number
        self.trigger_event(
            self.VersionDeployed,
            model=self.name,
            actor=actor,
            reason=validate_reason(reason),
            number=number,
            from_status=current.value,
            archived=archived,
        )
        return archived

    def rollback(self, target: int, *, actor: str, reason: str | None = None) -> int:
        """Rolls back from the deployed version to an older one; returns the version it left."""
        deployed = self.deployed_number
        if deployed is None:
            raise RuleViolation(
                f"Model {self.name!r} has no deployed version, so there is nothing to roll back: "
                "deploy a version instead."
            )
        status = self.status_of(target)
        if target >= deployed:
            raise RuleViolation(
                f"Cannot roll back {self.name!r} to version {target}: rollback goes to a version "
                f"older than the deployed version {deployed}; use deploy to move forward."
            )
        if status not in DEPLOYABLE:
            raise RuleViolation(
                f"Cannot roll back {self.name!r} to version {target}: it is {status.value}, "
                "and only READY or ARCHIVED versions can be deployed."
            )
        self.trigger_event(
            self.RolledBack,
            model=self.name,
            actor=actor,
            reason=validate_reason(reason),
            from_version=deployed,
            to_version=target,
        )
        return deployed
