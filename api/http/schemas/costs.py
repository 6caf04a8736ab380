"""/v1/training-costs, /v1/inferences and /v1/costs: what jobs and models cost, and the ROI."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from api.http.schemas.common import Count, LatencyMs, Name, Reason, Request_, Tags, Tokens, Usd
from domain.batches import MAX_BATCH
from domain.roi import MAX_DAYS
from domain.values import MAX_CALLS, MAX_EPOCHS, MAX_HOURS, MAX_PLACES, MAX_TRAINING_TOKENS


class TrainingCostIn(Request_):
    job_id: Name = Field(examples=["ftjob-abc123"])
    model_name: Name = Field(description="The model the job trained")
    base_model: Name = Field(examples=["gpt-4o-mini-2024-07-18"])
    dataset_size: Count
    training_tokens: int = Field(ge=0, le=MAX_TRAINING_TOKENS, description="Billed (trained) tokens, all epochs "
                                 "included")  # fmt: skip
    epochs: int | None = Field(None, ge=0, le=MAX_EPOCHS)
    training_hours: Decimal | None = Field(None, ge=0, le=MAX_HOURS, decimal_places=MAX_PLACES,
                                           description="For models priced per hour or GPU-hour")  # fmt: skip
    total_cost: Usd | None = Field(None, description="USD; omitted: priced from the catalog")
    at: datetime | None = Field(None, description="When the job ran (default: now); picks the price in force")
    reason: Reason = None


class InferenceRecordIn(BaseModel):
    """One inference: documented here; the service validates each record and lists every bad one."""

    id: Name = Field(description="Client-chosen and unique: a retry with the same id is not counted twice")
    model: Name = Field(examples=["ft:gpt-4o-mini-2024-07-18:acme::abc123"])
    at: datetime | None = Field(None, description="Default: now. Picks the price in force")
    input_tokens: Tokens = Field(description="All input tokens, cached ones included")
    cached_input_tokens: Tokens = 0
    output_tokens: Tokens
    latency_ms: LatencyMs = 0
    cost: Usd | None = Field(None, description="USD; omitted: computed from the price catalog")
    is_fine_tuned: bool = False
    ab_test: Name | None = None
    tags: Tags = []


class InferenceBatchIn(BaseModel):
    records: list[InferenceRecordIn] = Field(max_length=MAX_BATCH)


class RoiIn(Request_):
    model: Name | None = Field(None, description="Take training cost and fine-tuned cost per call from the ledger")
    base_model: Name | None = Field(None, description="Take the base cost per call from the ledger")
    training_cost: Usd | None = None
    base_cost_per_call: Usd | None = None
    ft_cost_per_call: Usd | None = None
    base_accuracy: Decimal = Field(ge=0, le=1, decimal_places=MAX_PLACES)
    ft_accuracy: Decimal = Field(ge=0, le=1, decimal_places=MAX_PLACES)
    calls: int | None = Field(None, ge=0, le=MAX_CALLS, description="Expected calls in total; or give "
                              "calls_per_day and days")  # fmt: skip
    calls_per_day: Decimal | None = Field(None, ge=0, le=MAX_CALLS, decimal_places=MAX_PLACES)
    days: Decimal | None = Field(None, ge=0, le=MAX_DAYS, decimal_places=MAX_PLACES)
    value_per_error: Usd = Field(Decimal(10), description="USD per error avoided")


class RoiOut(BaseModel):
    inputs: dict[str, Any]
    sources: dict[str, str] = Field(description="Inputs taken from the ledger, and from which model")
    calls: int
    cost_savings: Decimal
    error_reduction_value: Decimal
    total_benefit: Decimal
    net_benefit: Decimal
    roi_percent: Decimal | None = Field(description="null when the training cost is 0")
    benefit_per_call: Decimal
    break_even_calls: int | None = Field(description="null when a call brings no benefit")
    payback_days: Decimal | None
    verdict: str


class InferencesOut(BaseModel):
    accepted: int = Field(description="Records appended and counted")
    duplicates: list[str] = Field(description="Ids already stored: left out, not counted again")
    position: int | None = Field(description="Log position of the batch; null when nothing was appended")


class InferenceTotalsOut(BaseModel):
    inferences: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    inference_cost: Decimal
    cost_per_call: Decimal | None


class CostTotalsOut(InferenceTotalsOut):
    training_cost: Decimal
    jobs: int


class ModelCostTotalsOut(CostTotalsOut):
    model: str


class ModelCostsOut(ModelCostTotalsOut):
    job_list: list[TrainingCostOut]


class DayCostTotalsOut(ModelCostTotalsOut):
    day: str


class InferenceRecordOut(BaseModel):
    id: str
    model: str
    at: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    latency_ms: float | None
    cost: Decimal | None = Field(description="null for a gateway call no catalog entry prices (cost_source unpriced)")
    cost_source: str = Field(description="given, catalog, or unpriced")
    price: str | None = Field(description="The catalog entry the cost was computed with")
    version: int | None = Field(None, description="The registry version that served a gateway call")
    is_fine_tuned: bool
    ab_test: str | None
    tags: list[str]
    position: int


class InferenceCostsOut(BaseModel):
    records: list[InferenceRecordOut]
    totals: InferenceTotalsOut = Field(description="Over every record the filter matches, not only this page")
    next_cursor: str | None


class CostSummaryOut(BaseModel):
    models: list[ModelCostTotalsOut]
    total: CostTotalsOut
    days: list[DayCostTotalsOut]


class TrainingCostOut(BaseModel):
    job_id: str
    model_name: str
    base_model: str | None
    dataset_size: int | None
    training_tokens: int | None
    epochs: int | None
    training_hours: Decimal | None
    at: str
    total_cost: Decimal
    cost_source: str = Field(description="given, or catalog")
    unit_price: Decimal | None = Field(description="The catalog rate used (USD per unit)")
    unit: str | None = Field(description="per_1m_tokens, per_hour or per_gpu_hour")
    price_pattern: str | None
    price_effective_from: str | None
    recorded_by: str | None = None
    position: int
