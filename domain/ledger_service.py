"""Cost-ledger use cases: the price catalog (and, next, training and inference costs).

The catalog is one small aggregate; its history is the answer to "what was in
force at time T", so `prices_at` replays it (a time-travel question, the one
kind of query allowed to) instead of keeping a projection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from domain.application import FtApplication, Recorded, validate_actor
from domain.pricing import CATALOG_ID, Price, PriceCatalog
from domain.shipped_prices import shipped_prices

SHIPPED_BY = "ft-lifecycle"


@dataclass(frozen=True)
class PriceRecorded:
    price: Price
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
        actor = validate_actor(actor)

        def attempt() -> PriceRecorded:
            catalog = self.catalog() or PriceCatalog.open(actor=actor)
            catalog.set_price(price, actor=actor, reason=reason)
            return PriceRecorded(price, self.record(catalog))

        return self.retrying(attempt, what=f"Setting the price of {price.pattern!r}")

    def prices_at(self, at: datetime) -> list[Price]:
        catalog = self.catalog()
        return [] if catalog is None else catalog.in_force(at)

    def price_for(self, model: str, at: datetime) -> Price | None:
        catalog = self.catalog()
        return None if catalog is None else catalog.price_at(model, at)
