"""The price catalog: what a model's tokens, training and GPU-hours cost, and since when.

Prices are events with an effective date, so a price change never rewrites old
costs: a cost is computed with the price in force at the record's time, and the
event that records the cost also records the unit prices it used.

A price applies to one model name, or to every name with a prefix when its
pattern ends in `*` (`ft:gpt-4o-mini-2024-07-18:*` covers that base model's
fine-tunes). An exact name wins over a prefix, and a longer prefix over a shorter.
Amounts are USD per 1M tokens, per training hour, or per GPU-hour (local models).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from eventsourcing.domain import Aggregate

from domain.errors import InvalidInput
from domain.ids import stable_id
from domain.values import aware_time, decimal_value, name_text, optional_name

CATALOG_ID = stable_id("price-catalog")
PER_MILLION = Decimal(1_000_000)
MS_PER_HOUR = Decimal(3_600_000)
MAX_PATTERN = 200
MAX_SOURCE, MAX_READ_ON = 500, 40
#: USD per 1M tokens, per hour or per GPU-hour: a billion tokens at this rate stay within MAX_AMOUNT per record
MAX_RATE = Decimal(10**6)

RATE_FIELDS = (
    "input_per_1m",
    "cached_input_per_1m",
    "output_per_1m",
    "training_per_1m",
    "training_per_hour",
    "gpu_hour",
)


def _rate(field: str, value: Any) -> Decimal | None:
    return None if value is None else decimal_value(field, value, maximum=MAX_RATE, usd=True)


def validate_pattern(pattern: Any) -> str:
    if not isinstance(pattern, str) or not pattern.strip():
        raise InvalidInput("model is required: a model name, or a prefix ending in '*' such as 'ft:gpt-4o-mini*'.")
    pattern = name_text("model", pattern, max_length=MAX_PATTERN)
    if "*" in pattern[:-1] or pattern == "*":
        raise InvalidInput(
            f"Invalid model pattern {pattern!r}: give a model name, or a prefix with one '*' at the end "
            "(a lone '*' would price every model)."
        )
    return pattern


@dataclass(frozen=True)
class Price:
    """One price entry: the rates for a pattern from `effective_from` on."""

    pattern: str
    effective_from: datetime
    input_per_1m: Decimal | None = None
    cached_input_per_1m: Decimal | None = None
    output_per_1m: Decimal | None = None
    training_per_1m: Decimal | None = None
    training_per_hour: Decimal | None = None
    gpu_hour: Decimal | None = None
    source: str | None = None
    read_on: str | None = None

    @classmethod
    def validate(
        cls, *, pattern: Any, effective_from: Any, source: Any = None, read_on: Any = None, **rates: Any
    ) -> Price:
        unknown = set(rates) - set(RATE_FIELDS)
        if unknown:
            raise InvalidInput(f"Unknown price fields: {', '.join(sorted(unknown))}.")
        effective_from = aware_time("effective_from", effective_from)
        values = {f: _rate(f, rates.get(f)) for f in RATE_FIELDS}
        if all(v is None for v in values.values()):
            raise InvalidInput(
                "A price needs at least one rate: input/output per 1M tokens, training per 1M tokens or per hour, "
                "or gpu_hour for local models (0 makes a model free)."
            )
        if values["training_per_1m"] is not None and values["training_per_hour"] is not None:
            raise InvalidInput("Give training per 1M tokens or per hour, not both.")
        return cls(
            pattern=validate_pattern(pattern),
            effective_from=effective_from,
            source=optional_name("source", source, max_length=MAX_SOURCE),
            read_on=optional_name("read_on", read_on, max_length=MAX_READ_ON),
            **values,
        )

    def matches(self, model: str) -> bool:
        if self.pattern.endswith("*"):
            return model.startswith(self.pattern[:-1])
        return model == self.pattern

    @property
    def specificity(self) -> tuple[int, int]:
        """Exact names first, then longer prefixes."""
        return (0, len(self.pattern)) if self.pattern.endswith("*") else (1, len(self.pattern))

    def rates(self) -> dict[str, Decimal | None]:
        return {f: getattr(self, f) for f in RATE_FIELDS}


class PriceCatalog(Aggregate):
    """Every price ever set, in one small stream (a catalog has hundreds of entries, not millions)."""

    class Event(Aggregate.Event):
        actor: str
        reason: str | None

    class Opened(Event, Aggregate.Created):
        def apply(self, aggregate: Any) -> None:
            pass

    class PriceSet(Event):
        pattern: str
        effective_from: datetime
        input_per_1m: Decimal | None
        cached_input_per_1m: Decimal | None
        output_per_1m: Decimal | None
        training_per_1m: Decimal | None
        training_per_hour: Decimal | None
        gpu_hour: Decimal | None
        source: str | None
        read_on: str | None

        def apply(self, catalog: PriceCatalog) -> None:
            catalog.entries.append(
                Price(
                    self.pattern,
                    self.effective_from,
                    self.input_per_1m,
                    self.cached_input_per_1m,
                    self.output_per_1m,
                    self.training_per_1m,
                    self.training_per_hour,
                    self.gpu_hour,
                    self.source,
                    self.read_on,
                )  # fmt: skip
            )

    @staticmethod
    def create_id() -> Any:
        return CATALOG_ID

    @classmethod
    def open(cls, *, actor: str) -> PriceCatalog:
        return cls._create(cls.Opened, id=CATALOG_ID, actor=actor, reason=None)

    def __init__(self, actor: str, reason: str | None) -> None:
        #: in the order they were set; a later entry for the same pattern and date overrides
        self.entries: list[Price] = []

    def set_price(self, price: Price, *, actor: str, reason: str | None = None) -> None:
        self.trigger_event(
            self.PriceSet,
            actor=actor,
            reason=reason,
            pattern=price.pattern,
            effective_from=price.effective_from,
            source=price.source,
            read_on=price.read_on,
            **price.rates(),
        )

    def price_at(self, model: str, at: datetime) -> Price | None:
        """The price in force for `model` at `at`: the most specific pattern that has an entry
        in force, and within it the latest effective date (ties: the one set last)."""
        best: tuple[tuple[int, int], datetime, int] | None = None
        found: Price | None = None
        for index, price in enumerate(self.entries):
            if price.effective_from > at or not price.matches(model):
                continue
            key = (price.specificity, price.effective_from, index)
            if best is None or key > best:
                best, found = key, price
        return found

    def lookup(self) -> Callable[[str, datetime], Price | None]:
        """`price_at` for many records: each model's matching entries are found once, in the
        order `price_at` prefers them, so a record only scans its model's few entries."""
        by_model: dict[str, list[Price]] = {}
        ranked = sorted(
            enumerate(self.entries), key=lambda e: (e[1].specificity, e[1].effective_from, e[0]), reverse=True
        )

        def price_at(model: str, at: datetime) -> Price | None:
            candidates = by_model.get(model)
            if candidates is None:
                candidates = by_model[model] = [p for _, p in ranked if p.matches(model)]
            return next((p for p in candidates if p.effective_from <= at), None)

        return price_at

    def in_force(self, at: datetime) -> list[Price]:
        """For each pattern, the entry in force at `at`."""
        current: dict[str, tuple[datetime, int, Price]] = {}
        for index, price in enumerate(self.entries):
            if price.effective_from <= at:
                key = (price.effective_from, index, price)
                if price.pattern not in current or key[:2] > current[price.pattern][:2]:
                    current[price.pattern] = key
        return [current[p][2] for p in sorted(current)]
