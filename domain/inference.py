"""Inference records: the high-volume path of the cost ledger.

A batch of up to 10,000 records becomes one event of a one-event aggregate, so
appending never reads prior state and costs one insert per batch. The batch's id
is derived from its record ids, so the same batch sent twice hits the store's
key instead of counting twice; records already stored by another batch are left
out before appending, and the cost projection counts each record id once.

Each record's cost is computed here, in the command, from the catalog price in
force at the record's time (unless the caller gave one); the event keeps the
cost and the catalog entries it used, so a replay never reprices anything.
Record fields are plain JSON values (decimals as text) to keep 10,000 of them
cheap to encode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

# MAX_BATCH and BatchRejected are unused here: api/cli imports them from here until, at its merge, it
# imports them from domain.batches (then drop them and the noqa)
from domain.batches import RecordError, batch_id
from domain.pricing import MS_PER_HOUR, PER_MILLION, Price
from domain.values import (
    MAX_LATENCY_MS,
    MAX_NAME,
    MAX_TAGS,
    MAX_TOKENS,
    NAME_FORBIDDEN,
    as_value_error,
    decimal_value,
    finite_number,
    name_text,
    utc_time,
    whole_number,
)

FIELDS = frozenset({
    "id", "model", "at", "input_tokens", "cached_input_tokens", "output_tokens", "latency_ms", "cost",
    "is_fine_tuned", "ab_test", "tags",
})  # fmt: skip


def _tokens(record: dict[str, Any], name: str, default: int | None = None) -> int:
    return as_value_error(whole_number, name, record.get(name, default), maximum=MAX_TOKENS)


def _text(record: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = record.get(name)
    if value is None and not required:
        return None
    return as_value_error(name_text, name, value)


@dataclass(slots=True)  # not frozen: a frozen dataclass costs more to build, 10,000 times a batch
class InferenceRecord:
    id: str
    model: str
    at: datetime
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    latency_ms: float
    cost: Decimal | None
    is_fine_tuned: bool
    ab_test: str | None
    tags: tuple[str, ...]

    @classmethod
    def parse(cls, record: Any, now: datetime) -> InferenceRecord:
        """Raises ValueError with the reason; the caller adds where the record is.

        The common, valid record takes a fast path of exact type checks (this runs a
        million times per million records); anything else goes through the checks
        that explain what is wrong."""
        if type(record) is not dict:
            raise ValueError(f"a record must be a JSON object, got {type(record).__name__}")
        if not FIELDS.issuperset(record):
            raise ValueError(f"unknown field(s) {', '.join(sorted(set(record) - FIELDS))}")
        get = record.get
        rid, model, tokens_in, cached, tokens_out = (
            get("id"), get("model"), get("input_tokens"), get("cached_input_tokens", 0), get("output_tokens"),
        )  # fmt: skip
        latency, cost, fine_tuned, ab_test, tags = (
            get("latency_ms", 0), get("cost"), get("is_fine_tuned", False), get("ab_test"), get("tags"),
        )  # fmt: skip
        fast = (
            type(rid) is str and 0 < len(rid) <= MAX_NAME and rid.strip() == rid
            and type(model) is str and 0 < len(model) <= MAX_NAME and model.strip() == model
            and not NAME_FORBIDDEN.search(rid) and not NAME_FORBIDDEN.search(model)
            and type(tokens_in) is int and type(cached) is int and type(tokens_out) is int
            and 0 <= cached <= tokens_in <= MAX_TOKENS and 0 <= tokens_out <= MAX_TOKENS
            and (type(latency) is int or type(latency) is float) and 0 <= latency <= MAX_LATENCY_MS
            and cost is None and type(fine_tuned) is bool and ab_test is None and not tags
        )  # fmt: skip
        if fast:
            return cls(rid, model, utc_time(get("at"), now), tokens_in, cached, tokens_out, float(latency), None,
                       fine_tuned, None, ())  # fmt: skip
        return cls._parse_explaining(record, now)

    @classmethod
    def _parse_explaining(cls, record: dict[str, Any], now: datetime) -> InferenceRecord:
        input_tokens = _tokens(record, "input_tokens")
        cached = _tokens(record, "cached_input_tokens", 0)
        if cached > input_tokens:
            raise ValueError(f"cached_input_tokens ({cached}) cannot exceed input_tokens ({input_tokens})")
        latency = as_value_error(finite_number, "latency_ms", record.get("latency_ms", 0), maximum=MAX_LATENCY_MS)
        cost = record.get("cost")
        if cost is not None:
            cost = as_value_error(decimal_value, "cost", cost)
        fine_tuned = record.get("is_fine_tuned", False)
        if not isinstance(fine_tuned, bool):
            raise ValueError(f"is_fine_tuned must be true or false, got {fine_tuned!r}")
        tags = record.get("tags") or []
        if not isinstance(tags, list) or len(tags) > MAX_TAGS:
            raise ValueError(f"tags must be a list of at most {MAX_TAGS} texts")
        tags = [as_value_error(name_text, f"tags[{i}]", t) for i, t in enumerate(tags)]
        return cls(
            id=_text(record, "id", required=True),  # type: ignore[arg-type]
            model=_text(record, "model", required=True),  # type: ignore[arg-type]
            at=utc_time(record.get("at"), now),
            input_tokens=input_tokens,
            cached_input_tokens=cached,
            output_tokens=_tokens(record, "output_tokens"),
            latency_ms=float(latency),
            cost=cost,
            is_fine_tuned=fine_tuned,
            ab_test=_text(record, "ab_test", required=False),
            tags=tuple(tags),
        )


def price_key(price: Price) -> str:
    return f"{price.pattern}@{price.effective_from.isoformat()}"


def inference_cost(record: InferenceRecord, price: Price) -> Decimal:
    """Tokens at the per-1M rates (cached input at its own rate where there is one),
    or, for local models priced per GPU-hour, the call's latency at that rate."""
    if price.input_per_1m is not None or price.output_per_1m is not None:
        if price.input_per_1m is None or price.output_per_1m is None:
            raise ValueError(f"the price of {price.pattern!r} lacks an input or output rate")
        cached_rate = price.cached_input_per_1m if price.cached_input_per_1m is not None else price.input_per_1m
        uncached = record.input_tokens - record.cached_input_tokens
        return (
            uncached * price.input_per_1m
            + record.cached_input_tokens * cached_rate
            + record.output_tokens * price.output_per_1m
        ) / PER_MILLION
    if price.gpu_hour is not None:
        return Decimal(str(record.latency_ms)) * price.gpu_hour / MS_PER_HOUR
    raise ValueError(f"the price of {price.pattern!r} has no inference rate")


@dataclass
class PricedBatch:
    records: list[dict[str, Any]] = field(default_factory=list)
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)


def price_records(
    records: Sequence[InferenceRecord], price_for: Callable[[str, datetime], Price | None]
) -> tuple[PricedBatch, list[RecordError]]:
    """Each record with its cost: the given one, or the catalog's at the record's time."""
    batch, errors = PricedBatch(), []
    keys: dict[int, str] = {}  # price entry -> its key, formatted once per batch
    for index, r in enumerate(records):
        source, key = "given", None
        cost = r.cost
        if cost is None:
            price = price_for(r.model, r.at)
            if price is None:
                errors.append(RecordError(index, (
                    f"no price for model {r.model!r} at {r.at.isoformat()} and no cost given: set one with "
                    f"`ft-cli prices set {r.model} --input X --output Y --effective-from T` (or POST /v1/prices), "
                    "or send the record's cost"), r.id))  # fmt: skip
                continue
            try:
                cost = inference_cost(r, price)
            except ValueError as e:
                errors.append(RecordError(index, f"{e}: set a complete price or send the record's cost", r.id))
                continue
            source, key = "catalog", keys.get(id(price))
            if key is None:
                key = keys[id(price)] = price_key(price)
                batch.prices[key] = {"pattern": price.pattern, "effective_from": price.effective_from.isoformat()} | {
                    f: None if v is None else str(v) for f, v in price.rates().items()
                }
        batch.records.append({
            "id": r.id, "model": r.model, "at": r.at.isoformat(timespec="microseconds"),
            "input_tokens": r.input_tokens, "cached_input_tokens": r.cached_input_tokens,
            "output_tokens": r.output_tokens, "latency_ms": r.latency_ms, "cost": str(cost),
            "cost_source": source, "price": key, "is_fine_tuned": r.is_fine_tuned, "ab_test": r.ab_test,
            "tags": list(r.tags),
        })  # fmt: skip
    return batch, errors


class InferenceBatch(Aggregate):
    """One appended batch of inference records (one event)."""

    class Recorded(Aggregate.Created):
        #: each: id, model, at, input_tokens, cached_input_tokens, output_tokens, latency_ms,
        #: cost (decimal text), cost_source (given|catalog), price (key into prices), is_fine_tuned, ab_test, tags
        records: list[dict[str, Any]]
        #: the catalog entries the costs were computed with, by key
        prices: dict[str, dict[str, Any]]
        actor: str

    @staticmethod
    def create_id(records: list[dict[str, Any]]) -> UUID:
        return batch_id("inference-batch", (r["id"] for r in records))

    @classmethod
    def record(cls, batch: PricedBatch, *, actor: str) -> InferenceBatch:
        return cls._create(cls.Recorded, records=batch.records, prices=batch.prices, actor=actor)

    def __init__(self, records: list[dict[str, Any]], prices: dict[str, dict[str, Any]], actor: str) -> None:
        self.count = len(records)
