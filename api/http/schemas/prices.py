"""/v1/prices: the price catalog."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field

from api.http.schemas.common import NO_CONTROLS, Position, Reason, Request_
from domain.pricing import MAX_PATTERN, MAX_RATE, MAX_READ_ON, MAX_SOURCE
from domain.values import MAX_PLACES

Rate = Annotated[Decimal | None, Field(ge=0, le=MAX_RATE, decimal_places=MAX_PLACES, description="USD")]


class PriceIn(Request_):
    model: Annotated[str, *NO_CONTROLS] = Field(min_length=1, max_length=MAX_PATTERN,
                                                description="A model name, or a prefix ending in '*'",
                                                examples=["ft:gpt-4o-mini-2024-07-18:*"])  # fmt: skip
    effective_from: datetime = Field(description="In force from this time on (ISO 8601 with offset)")
    input_per_1m: Rate = None
    cached_input_per_1m: Rate = None
    output_per_1m: Rate = None
    training_per_1m: Rate = None
    training_per_hour: Rate = None
    gpu_hour: Rate = Field(None, description="Local models: USD per GPU-hour (0: free)")
    source: Annotated[str, Field(max_length=MAX_SOURCE), *NO_CONTROLS] | None = Field(
        None, description="Where the price comes from"
    )
    read_on: Annotated[str, Field(max_length=MAX_READ_ON), *NO_CONTROLS] | None = Field(
        None, description="When the source was read"
    )
    reason: Reason = None


class PriceOut(BaseModel):
    model: str
    effective_from: datetime
    input_per_1m: Decimal | None
    cached_input_per_1m: Decimal | None
    output_per_1m: Decimal | None
    training_per_1m: Decimal | None
    training_per_hour: Decimal | None
    gpu_hour: Decimal | None
    source: str | None
    read_on: str | None


class PriceSetOut(BaseModel):
    price: PriceOut
    position: Position
