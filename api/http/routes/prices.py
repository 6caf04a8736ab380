"""/v1/prices: the price catalog, as it is now or was at any time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.http.deps import CommandDep, ReaderDep, read
from api.http.responses import COMMAND, READ, errors
from api.http.schemas.common import Name
from api.http.schemas.prices import PriceIn, PriceOut, PriceSetOut
from domain.errors import NotFound
from domain.pricing import Price
from domain.values import given_time

router = APIRouter(prefix="/v1/prices", tags=["prices"], responses=READ)


def price_out(p: Price) -> PriceOut:
    return PriceOut(model=p.pattern, effective_from=p.effective_from, source=p.source, read_on=p.read_on, **p.rates())


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PriceSetOut, responses=COMMAND)
async def set_price(body: PriceIn, cmd: CommandDep, response: Response) -> PriceSetOut:
    """Adds a price, or overrides one, from `effective_from` on. Costs recorded before keep their prices."""
    fields = body.model_dump(exclude={"model", "reason"})
    result = await cmd.run(
        lambda: cmd.runtime.ledger.set_price(actor=cmd.actor, reason=body.reason, pattern=body.model, **fields)
    )
    return PriceSetOut(price=price_out(result.price), position=result.recorded.position)


@router.get("", response_model=list[PriceOut], responses=errors(404))
async def list_prices(
    runtime: ReaderDep,
    as_of: Annotated[datetime | None, Query(description="In force at this time (default: now)")] = None,
    model: Annotated[Name | None, Query(description="Only the price that applies to this model name")] = None,
) -> list[PriceOut]:
    at = datetime.now(UTC) if as_of is None else given_time("as_of", as_of)
    if model is not None:
        price = await read(runtime.ledger.price_for, model, at)
        if price is None:
            raise NotFound(f"No price applies to {model!r} at {at.isoformat()}: set one with POST /v1/prices.")
        return [price_out(price)]
    return [price_out(p) for p in await read(runtime.ledger.prices_at, at)]
