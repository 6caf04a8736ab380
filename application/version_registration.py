"""Registering a version with its training cost: both are saved in one transaction."""

from __future__ import annotations

from typing import Any

from application.ledger import CostLedger
from application.registry import Registry, VersionRegistered
from domain.registry import VersionSpec


class VersionRegistration:
    def __init__(self, registry: Registry, ledger: CostLedger) -> None:
        self.registry = registry
        self.ledger = ledger

    def register(self, name: str, *, actor: str, reason: str | None = None, **fields: Any) -> VersionRegistered:
        """Registers a version; a cost given with it becomes that job's training cost in the ledger, once per
        job id (a second registration of the job, or a job whose cost the ledger has, adds no cost)."""
        cost = None
        if fields.get("cost") is not None:  # checked before anything is recorded, the version's rules first
            VersionSpec.validate(**{k: fields.get(k) for k in ("base_model", "job_id", "dataset_size", "accuracy",
                                                               "cost")})  # fmt: skip
            cost = self.ledger.registered_cost(job_id=fields.get("job_id"), model_name=name,
                                               base_model=fields.get("base_model"),
                                               dataset_size=fields.get("dataset_size"), cost=fields["cost"])

        def cost_with(number: int) -> Any:  # saved with the version: a crash never keeps one without the other
            return None if cost is None else self.ledger.given_cost(
                cost, actor=actor, reason=reason or f"cost registered with {name} v{number}")

        return self.registry.register_version(name, actor=actor, reason=reason, with_version=cost_with, **fields)
