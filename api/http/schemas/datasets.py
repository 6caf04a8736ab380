"""/v1/datasets: dataset builds."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.http.schemas.common import Id, Name, Reason, Request_
from domain.datasets import MAX_SEED


class DatasetIn(Request_):
    dataset_id: Id | None = Field(None, description="Default: ds- and the start of the content hash")
    min_rating: int | None = Field(4, ge=1, le=5)
    domain: Name | None = None
    task_type: Name | None = None
    source: Literal["distillation", "task_history", "feedback", "import", "gateway"] | None = None
    since: datetime | None = None
    until: datetime | None = None
    target_model: Name = Field("gpt-4o-mini-2024-07-18", description="Picks the tokenizer and the token limit")
    train_ratio: float = Field(0.8, gt=0, lt=1, allow_inf_nan=False)
    seed: int = Field(42, ge=0, le=MAX_SEED)
    reason: Reason = None


class DatasetOut(BaseModel):
    dataset_id: str
    spec: dict[str, Any] = Field(description="The filters, target model, train ratio and seed")
    content_hash: str = Field(description="sha-256 of the train and test examples as exported (raw JSONL)")
    train: int
    test: int
    rejected: int
    created_at: str
    created_by: str | None
    position: int


class DatasetDetailOut(DatasetOut):
    rejected_list: list[dict[str, str]] = Field(description="Every rejected example with its reason")
    stats: dict[str, Any]


class DatasetPage(BaseModel):
    items: list[DatasetOut]
    next_cursor: str | None
