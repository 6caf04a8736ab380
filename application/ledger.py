"""Cost-ledger use cases: the price catalog, training costs and inference records.

The catalog is one small aggregate; its history is the answer to "what was in
force at time T", so `prices_at` replays it (a time-travel question, the one
kind of query allowed to) instead of keeping a projection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.base import FtApplication, Recorded, validate_actor
from domain.batches import BatchRejected, RecordError, parse_batch
from domain.costs import PricedCost, TrainingCost, TrainingJob, price_training, training_job_id
from domain.errors import RuleViolation
from domain.gateway_calls import GatewayCall, price_calls
from domain.inference import InferenceBatch, InferenceRecord, PricedBatch, price_records
from domain.pricing import CATALOG_ID, Price, PriceCatalog
from domain.shipped_prices import shipped_prices
from domain.values import validate_reason

SHIPPED_BY = "ft-lifecycle"


@dataclass(frozen=True)
class PriceRecorded:
    price: Price
    recorded: Recorded


@dataclass(frozen=True)
class InferencesRecorded:
    accepted: int
    #: ids already stored (by an earlier batch), left out and not counted again
    duplicates: list[str]
    #: None when every record was a duplicate: nothing was appended
    recorded: Recorded | None


@dataclass(frozen=True)
class TrainingCostRecorded:
    job: TrainingJob
    cost: PricedCost
    recorded: Recorded


class CostLedger(FtApplication):
    name = "ft"

    def catalog(self) -> PriceCatalog | None:
        try:
            return self.get_aggregate(CATALOG_ID)
        except AggregateNotFoundError:
            return None

    def seed_catalog(self) -> Recorded | None:
        """Records the shipped prices once, in an empty catalog (run by `db init`)."""

        def attempt() -> Recorded | None:
            if self.catalog() is not None:
                return None
            catalog = PriceCatalog.open(actor=SHIPPED_BY)
            for entry in shipped_prices():
                catalog.set_price(Price.validate(**entry), actor=SHIPPED_BY, reason="shipped price")
            return self.record(catalog)

        return self.retrying(attempt, what="Seeding the price catalog")

    def set_price(self, *, actor: str, reason: str | None = None, **fields: Any) -> PriceRecorded:
        price = Price.validate(**fields)
        actor, reason = validate_actor(actor), validate_reason(reason)

        def attempt() -> PriceRecorded:
            catalog = self.catalog() or PriceCatalog.open(actor=actor)
            catalog.set_price(price, actor=actor, reason=reason)
            return PriceRecorded(price, self.record(catalog))

        return self.retrying(attempt, what=f"Setting the price of {price.pattern!r}")

    def prices_at(self, at: datetime) -> list[Price]:
        catalog = self.catalog()
        return [] if catalog is None else catalog.in_force(at)

    def record_training_cost(
        self, *, actor: str, reason: str | None = None, at: datetime | None = None, **fields: Any
    ) -> TrainingCostRecorded:
        """Records a job's training cost once. Without `total_cost` it is priced from the
        catalog at the job's time, and the event keeps the unit price it used."""
        actor = validate_actor(actor)
        job = TrainingJob.validate(at=at or datetime.now(UTC), **fields)
        if training_job_id(job.job_id) in self.repository:
            raise RuleViolation(f"The training cost of job {job.job_id!r} is already recorded.")
        cost = price_training(job, None if job.total_cost is not None else self.price_for(job.base_model, job.at))
        aggregate = TrainingCost.record(job, cost, actor=actor, reason=validate_reason(reason))
        try:
            recorded = self.record(aggregate)
        except IntegrityError:  # recorded by a concurrent request in the meantime
            raise RuleViolation(f"The training cost of job {job.job_id!r} is already recorded.") from None
        return TrainingCostRecorded(job, cost, recorded)

    def registered_cost(self, *, job_id: Any, model_name: Any, base_model: Any, dataset_size: Any,
                        cost: Any) -> TrainingJob | None:  # fmt: skip
        """The training cost a registry version states, checked; None when the ledger has this job's cost
        already (a job counts once, whichever way its cost arrived)."""
        job = TrainingJob.validate(job_id=job_id, model_name=model_name, base_model=base_model,
                                   dataset_size=dataset_size, training_tokens=0, total_cost=cost,
                                   at=datetime.now(UTC))  # fmt: skip
        return None if training_job_id(job.job_id) in self.repository else job

    def given_cost(self, job: TrainingJob, *, actor: str, reason: str | None) -> TrainingCost | None:
        """The ledger's record of a cost `registered_cost` returned, not yet saved (the registry saves it
        with the version, in one transaction); None when the ledger holds this job's cost by now."""
        if training_job_id(job.job_id) in self.repository:
            return None
        return TrainingCost.record(job, price_training(job, None), actor=validate_actor(actor),
                                   reason=validate_reason(reason))  # fmt: skip

    def record_inferences(
        self,
        raw: Sequence[Any],
        *,
        actor: str,
        stored: Callable[[list[str]], set[str]],
        now: datetime | None = None,
    ) -> InferencesRecorded:
        """Appends a batch of inference records as one event, without reading prior state.

        `stored` says which ids an earlier batch already holds (the cost projection's
        index); they are reported and left out. Invalid batches are rejected whole."""
        actor = validate_actor(actor)
        now, parse = now or datetime.now(UTC), InferenceRecord.parse
        records, errors = parse_batch(raw, lambda record: parse(record, now), "id")
        already = stored([r.id for _, r in records])
        fresh = [(i, r) for i, r in records if r.id not in already]
        catalog = self.catalog()
        price_for = catalog.lookup() if catalog is not None else (lambda model, at: None)
        batch, unpriced = price_records([r for _, r in fresh], price_for)
        errors += [RecordError(fresh[e.index][0], e.message, e.id) for e in unpriced]  # positions as sent
        if errors:
            raise BatchRejected(sorted(errors, key=lambda e: e.index))
        duplicates = sorted(already)
        if not batch.records:
            return InferencesRecorded(0, duplicates, None)
        try:
            recorded = self.record(InferenceBatch.record(batch, actor=actor))
        except IntegrityError:  # this very batch was appended already (a retry)
            return InferencesRecorded(0, sorted(duplicates + [r["id"] for r in batch.records]), None)
        return InferencesRecorded(len(batch.records), duplicates, recorded)

    def price_calls(self, calls: Sequence[GatewayCall]) -> PricedBatch:
        """The gateway's calls as records of the inference path, each priced from the catalog at its time."""
        catalog = self.catalog()
        return price_calls(calls, catalog.lookup() if catalog is not None else (lambda model, at: None))

    def record_calls(self, batch: PricedBatch, *, actor: str) -> Recorded | None:
        """Appends priced gateway calls as one batch of the inference path. The same batch appended twice
        (a flush retried after a lost answer) counts once: the batch id derives from the call ids."""
        if not batch.records:
            return None
        try:
            return self.record(InferenceBatch.record(batch, actor=actor))
        except IntegrityError:  # this very batch was appended already
            return None

    def price_for(self, model: str, at: datetime) -> Price | None:
        catalog = self.catalog()
        return None if catalog is None else catalog.price_at(model, at)
