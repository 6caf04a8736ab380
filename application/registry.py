"""Registry use cases: the commands the HTTP API and the CLI both call.

Each command loads one `RegisteredModel`, checks the rules, appends events and
returns where they landed in the log. Queries do not live here: they read the
projections (projections/registry.py, projections/deployments.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError

from application.base import FtApplication, Recorded, check_expected_version, validate_actor
from domain.errors import NotFound
from domain.registry import (
    RegisteredModel,
    VersionSpec,
    VersionStatus,
    model_id,
    parse_status,
    validate_model_name,
)
from domain.serving import ServingTarget

T = TypeVar("T")


@dataclass(frozen=True)
class VersionRegistered:
    model: str
    number: int
    status: VersionStatus
    recorded: Recorded


@dataclass(frozen=True)
class StatusChanged:
    model: str
    number: int
    from_status: VersionStatus
    to_status: VersionStatus
    recorded: Recorded


@dataclass(frozen=True)
class ServingSet:
    model: str
    number: int
    #: the target as recorded (domain/serving.py), or None: the version serves nowhere
    serving: dict[str, str] | None
    recorded: Recorded


@dataclass(frozen=True)
class Deployed:
    model: str
    number: int
    #: the version this command archived (deploy) or left (rollback), if any
    previous: int | None
    recorded: Recorded


class Registry(FtApplication):
    name = "ft"
    # A long-lived model (many deploys) loads from its latest snapshot plus fewer than this many events.
    snapshotting_intervals = {RegisteredModel: 25}

    def load(self, name: str) -> RegisteredModel:
        validate_model_name(name)
        try:
            return self.get_aggregate(model_id(name))
        except AggregateNotFoundError:
            raise NotFound(
                f"Model {name!r} is not registered: register a version first "
                f"(ft-cli register-model {name} BASE_MODEL JOB_ID DATASET_SIZE)."
            ) from None

    def register_version(
        self,
        name: str,
        *,
        base_model: Any,
        job_id: Any,
        dataset_size: Any,
        accuracy: Any = None,
        cost: Decimal | float | str | None = None,
        training: bool = False,
        actor: str,
        reason: str | None = None,
        serving: Any = None,
        with_version: Callable[[int], Any] | None = None,
    ) -> VersionRegistered:
        """`serving` is where the version answers calls (domain/serving.py). `with_version(number)` may give
        another aggregate (the ledger's cost of the job) to save in the same transaction as the version: both
        are recorded, or neither."""
        validate_model_name(name)
        actor = validate_actor(actor)
        spec = VersionSpec.validate(
            base_model=base_model, job_id=job_id, dataset_size=dataset_size, accuracy=accuracy, cost=cost
        )
        target = None if serving is None else ServingTarget.validate(serving)

        def attempt() -> VersionRegistered:
            try:
                model = self.get_aggregate(model_id(name))
            except AggregateNotFoundError:
                model = RegisteredModel.register(name, actor=actor)
            number = model.register_version(spec, training=training, actor=actor, reason=reason)
            if target is not None:
                model.set_serving(number, target, actor=actor, reason=reason)
            also = with_version(number) if with_version is not None else None
            recorded = self.record(model, *([] if also is None else [also]))
            return VersionRegistered(name, number, model.status_of(number), recorded)

        return self.retrying(attempt, what=f"Registering a version of {name!r}")

    def set_status(
        self,
        name: str,
        number: int | None,
        status: str | VersionStatus,
        *,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> StatusChanged | Deployed:
        """Sets a version's status (`number=None`: the latest version). Asking for DEPLOYED
        is a deploy, with its rules and archiving."""
        target = parse_status(status)
        actor = validate_actor(actor)

        def change(model: RegisteredModel) -> StatusChanged | Deployed:
            n = number if number is not None else model.latest_number
            if target is VersionStatus.DEPLOYED:
                return self._deploy(model, n, actor=actor, reason=reason)
            before = model.status_of(n)
            model.set_status(n, target, actor=actor, reason=reason)
            return StatusChanged(name, n, before, target, self.record(model))

        what = f"Changing the status of {name!r} version {number if number is not None else 'latest'}"
        return self._guarded(name, expected_version, change, what=what)

    def deploy(
        self,
        name: str,
        number: int | None = None,
        *,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Deployed:
        """Deploys a version (default: the latest READY one) and archives the one before."""
        actor = validate_actor(actor)

        def change(model: RegisteredModel) -> Deployed:
            chosen = number if number is not None else model.latest_with_status(VersionStatus.READY)
            return self._deploy(model, chosen, actor=actor, reason=reason)

        return self._guarded(name, expected_version, change, what=f"Deploying {name!r}")

    def _deploy(self, model: RegisteredModel, number: int, *, actor: str, reason: str | None) -> Deployed:
        archived = model.deploy(number, actor=actor, reason=reason)
        return Deployed(model.name, number, archived, self.record(model))

    def rollback(
        self,
        name: str,
        target: int,
        *,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Deployed:
        actor = validate_actor(actor)

        def change(model: RegisteredModel) -> Deployed:
            left = model.rollback(target, actor=actor, reason=reason)
            return Deployed(name, target, left, self.record(model))

        return self._guarded(name, expected_version, change, what=f"Rolling back {name!r}")

    def set_serving(self, name: str, number: int | None, serving: Any, *, actor: str, reason: str | None = None,
                    expected_version: int | None = None) -> ServingSet:  # fmt: skip
        """Sets where a version answers calls (`number=None`: the latest version); `serving=None` clears it."""
        actor = validate_actor(actor)
        target = None if serving is None else ServingTarget.validate(serving)

        def change(model: RegisteredModel) -> ServingSet:
            n = number if number is not None else model.latest_number
            model.set_serving(n, target, actor=actor, reason=reason)
            return ServingSet(name, n, None if target is None else target.as_dict(), self.record(model))

        return self._guarded(name, expected_version, change, what=f"Setting where {name!r} is served")

    def attach_evaluation(self, name: str, number: int, *, accuracy: float, evaluation_id: str, actor: str,
                          reason: str | None = None) -> Recorded:  # fmt: skip
        """Updates a version's accuracy from an evaluation, and links the evaluation, in one event."""
        actor = validate_actor(actor)

        def change(model: RegisteredModel) -> Recorded:
            model.record_evaluation(number, accuracy, evaluation_id, actor=actor, reason=reason)
            return self.record(model)

        return self._guarded(name, None, change, what=f"Attaching an evaluation to {name!r} version {number}")

    def _guarded(
        self, name: str, expected_version: int | None, change: Callable[[RegisteredModel], T], *, what: str
    ) -> T:
        """Runs a change on the current model (re-loaded on every retry), after the If-Match check."""

        def attempt() -> T:
            model = self.load(name)
            check_expected_version(model.version, expected_version, what=f"Model {name!r}")
            return change(model)

        return self.retrying(attempt, what=what)
