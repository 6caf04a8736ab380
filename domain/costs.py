"""Costs of training jobs, computed from the catalog price in force at the job's time.

The cost is computed in the command and stored in the event together with the
unit price and the catalog entry it came from, so a replay never recomputes it
with a newer price, and every cost can be explained.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import InvalidInput, RuleViolation
from domain.ids import stable_id
from domain.pricing import PER_MILLION, Price
from domain.values import (
    MAX_COUNT,
    MAX_EPOCHS,
    MAX_HOURS,
    MAX_TRAINING_TOKENS,
    aware_time,
    decimal_value,
    name_text,
    whole_number,
)


def training_job_id(job_id: str) -> UUID:
    return stable_id("training-cost", job_id)


def _count(field: str, value: Any, *, maximum: int, required: bool = True) -> int | None:
    if value is None and not required:
        return None
    return whole_number(field, value, maximum=maximum)


@dataclass(frozen=True)
class TrainingJob:
    """A training job's facts, validated; `total_cost` is None when the catalog should price it."""

    job_id: str
    model_name: str
    base_model: str
    dataset_size: int
    training_tokens: int
    epochs: int | None
    training_hours: Decimal | None
    at: datetime
    total_cost: Decimal | None

    @classmethod
    def validate(
        cls,
        *,
        job_id: Any,
        model_name: Any,
        base_model: Any,
        dataset_size: Any,
        training_tokens: Any,
        at: datetime,
        epochs: Any = None,
        training_hours: Any = None,
        total_cost: Any = None,
    ) -> TrainingJob:
        at = aware_time("at", at)
        return cls(
            job_id=name_text("job_id", job_id),
            model_name=name_text("model_name", model_name),
            base_model=name_text("base_model", base_model),
            dataset_size=_count("dataset_size", dataset_size, maximum=MAX_COUNT),  # type: ignore[arg-type]
            training_tokens=_count("training_tokens", training_tokens,  # type: ignore[arg-type]
                                   maximum=MAX_TRAINING_TOKENS),
            epochs=_count("epochs", epochs, maximum=MAX_EPOCHS, required=False),
            training_hours=None if training_hours is None else decimal_value("training_hours", training_hours,
                                                                               maximum=MAX_HOURS),
            at=at,
            total_cost=None if total_cost is None else decimal_value("total_cost", total_cost),
        )


@dataclass(frozen=True)
class PricedCost:
    total: Decimal
    #: "given" (the caller's figure) or "catalog"
    source: str
    unit_price: Decimal | None = None
    #: "per_1m_tokens", "per_hour" or "per_gpu_hour"
    unit: str | None = None
    price_pattern: str | None = None
    price_effective_from: datetime | None = None


def price_training(job: TrainingJob, price: Price | None) -> PricedCost:
    """The job's cost: the given total, else tokens or hours times the price in force."""
    if job.total_cost is not None:
        return PricedCost(job.total_cost, "given")
    hint = (
        f"set a training price with `ft-cli prices set {job.base_model} --training X --effective-from T` "
        "(or --training-per-hour / --gpu-hour), or give total_cost"
    )
    if price is None:
        raise RuleViolation(f"No price for {job.base_model!r} at {job.at.isoformat()}: {hint}.")
    common = {"price_pattern": price.pattern, "price_effective_from": price.effective_from}
    if price.training_per_1m is not None:
        total = Decimal(job.training_tokens) * price.training_per_1m / PER_MILLION
        return PricedCost(total, "catalog", price.training_per_1m, "per_1m_tokens", **common)
    hourly = (
        (price.training_per_hour, "per_hour")
        if price.training_per_hour is not None
        else (price.gpu_hour, "per_gpu_hour")
    )
    if hourly[0] is not None:
        if job.training_hours is None:
            raise InvalidInput(
                f"{job.base_model!r} is priced per hour: give training_hours (CLI: --hours) or total_cost "
                f"for job {job.job_id!r}."
            )
        return PricedCost(job.training_hours * hourly[0], "catalog", hourly[0], hourly[1], **common)
    raise RuleViolation(
        f"The price of {job.base_model!r} in force at {job.at.isoformat()} has no training rate: {hint}."
    )


class TrainingCost(Aggregate):
    """The cost of one training job: one event, named by the job id."""

    class Recorded(Aggregate.Created):
        job_id: str
        model_name: str
        base_model: str
        dataset_size: int
        training_tokens: int
        epochs: int | None
        training_hours: Decimal | None
        at: datetime
        total_cost: Decimal
        cost_source: str
        unit_price: Decimal | None
        unit: str | None
        price_pattern: str | None
        price_effective_from: datetime | None
        actor: str
        reason: str | None

    @staticmethod
    def create_id(job_id: str) -> UUID:
        return training_job_id(job_id)

    @classmethod
    def record(cls, job: TrainingJob, cost: PricedCost, *, actor: str, reason: str | None) -> TrainingCost:
        return cls._create(
            cls.Recorded,
            job_id=job.job_id,
            model_name=job.model_name,
            base_model=job.base_model,
            dataset_size=job.dataset_size,
            training_tokens=job.training_tokens,
            epochs=job.epochs,
            training_hours=job.training_hours,
            at=job.at,
            total_cost=cost.total,
            cost_source=cost.source,
            unit_price=cost.unit_price,
            unit=cost.unit,
            price_pattern=cost.price_pattern,
            price_effective_from=cost.price_effective_from,
            actor=actor,
            reason=reason,
        )

    def __init__(self, job_id: str, total_cost: Decimal, **_: Any) -> None:
        self.job_id = job_id
        self.total_cost = total_cost
