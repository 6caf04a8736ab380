"""Gateway calls: one record per call that went through the gateway, priced when it is recorded.

A call's record says which registered model and version served it (and the A/B arm, once the next
issue routes by experiments), the upstream model, its tokens (the upstream's `usage`, or counted and
marked `estimated` when none came back), its latency and time to first byte, how it ended, and every
retry or fallback it took. Records travel the inference path of the cost ledger: a batch is one
`InferenceBatch.Recorded` event whose records carry `source: gateway` and these fields, so the
ledger's totals and the calls view read the same events, and a call id counts once.

The cost is computed here, at recording time, from the catalog in force at the call's time: the
price set for the registered model if there is one (a team's own price for its fine-tune), else the
price of the upstream model. The event keeps the cost and the catalog entry it used, so a replay
never reprices. A call nobody priced is recorded with no cost (`cost_source: unpriced`), never $0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.inference import InferenceRecord, PricedBatch, inference_cost, price_key
from domain.pricing import Price

SOURCE = "gateway"

#: how a call ended
OK, ERROR, INTERRUPTED, CANCELLED = "ok", "error", "interrupted", "cancelled"
STATUSES = (OK, ERROR, INTERRUPTED, CANCELLED)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at an upstream: which version, and how it went (`ok`, or the error kind)."""

    model: str
    version: int
    upstream_model: str
    outcome: str
    status_code: int | None = None
    waited_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "upstream_model": self.upstream_model,
                "outcome": self.outcome, "status_code": self.status_code,
                "waited_ms": round(self.waited_ms, 3)}  # fmt: skip


@dataclass(slots=True)
class GatewayCall:
    """What the gateway measured about one call (built by the gateway, not sent by a client)."""

    id: str
    at: datetime
    model: str  # the registered model that answered (the fallback's, after a fallback)
    version: int | None
    requested: str  # the `model` the caller sent (`support-bot`, `support-bot@3`)
    endpoint: str  # chat.completions | completions
    stream: bool
    caller: str
    status: str
    upstream: str | None = None
    upstream_model: str | None = None
    http_status: int | None = None
    error_kind: str | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False
    latency_ms: float = 0.0
    ttfb_ms: float | None = None
    arm: str | None = None
    #: the A/B test the call was a sample of (its arm in `arm`)
    ab_test: str | None = None
    fallback_from: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    #: the collected example this call was captured as (application/gateway_capture.py), written with it
    example: dict[str, Any] | None = None


def _price(call: GatewayCall, price_for: Callable[[str, datetime], Price | None]) -> Price | None:
    found = price_for(call.model, call.at)
    if found is None and call.upstream_model:
        found = price_for(call.upstream_model, call.at)
    return found


def price_calls(calls: Sequence[GatewayCall], price_for: Callable[[str, datetime], Price | None]) -> PricedBatch:
    """Each call as a record of the inference path, with its cost from the catalog at the call's time."""
    batch = PricedBatch()
    for c in calls:
        price, cost, source, key = _price(c, price_for), None, "unpriced", None
        if price is not None:
            try:
                cost = inference_cost(_as_inference(c), price)
            except ValueError:  # an entry without an inference rate prices nothing
                price = None
        if price is not None:
            source, key = "catalog", price_key(price)
            batch.prices.setdefault(key, {"pattern": price.pattern, "effective_from": price.effective_from.isoformat()}
                                    | {f: None if v is None else str(v) for f, v in price.rates().items()})  # fmt: skip
        batch.records.append({
            "id": c.id, "model": c.model, "at": c.at.isoformat(timespec="microseconds"),
            "input_tokens": c.input_tokens, "cached_input_tokens": c.cached_input_tokens,
            "output_tokens": c.output_tokens, "latency_ms": round(c.latency_ms, 3),
            "cost": None if cost is None else str(cost), "cost_source": source, "price": key,
            "is_fine_tuned": True, "ab_test": c.ab_test, "tags": [],
            "source": SOURCE, "version": c.version,
            "call": {
                "requested": c.requested, "endpoint": c.endpoint, "stream": c.stream, "caller": c.caller,
                "status": c.status, "upstream": c.upstream, "upstream_model": c.upstream_model,
                "http_status": c.http_status, "error_kind": c.error_kind, "estimated": c.estimated,
                "ttfb_ms": None if c.ttfb_ms is None else round(c.ttfb_ms, 3), "arm": c.arm,
                "fallback_from": c.fallback_from, "attempts": [a.as_dict() for a in c.attempts],
            },
        })  # fmt: skip
    return batch


def _as_inference(c: GatewayCall) -> InferenceRecord:
    return InferenceRecord(c.id, c.model, c.at, c.input_tokens, c.cached_input_tokens, c.output_tokens, c.latency_ms,
                           None, True, None, ())  # fmt: skip
