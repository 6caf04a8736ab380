"""/v1/evaluations: offline and live evaluations, and pairwise comparisons."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.http.schemas.common import Id, ModelNameDoc, Name, Reason, Request_, Usd, VersionNumber
from domain.values import MAX_CALLS


class EvaluationIn(Request_):
    evaluation_id: Id | None = Field(None, description="Default: ev- and 12 hex digits")
    model: Name
    model_type: Literal["base", "fine_tuned"]
    modes: list[str] = Field(default_factory=lambda: ["exact"],
                             description="exact, substring, classification, bleu, rouge")  # fmt: skip
    normalisation: dict[str, bool] | None = Field(None, description="{case, whitespace, punctuation}: what "
                                                  "matching ignores")  # fmt: skip
    cost: Usd | None = Field(None, description="Cost per inference where a prediction gives none")
    predictions: list[dict[str, Any]] | None = Field(
        None, description="Offline evaluation: {example_id?, prediction, reference, label?, latency_ms?, cost?} each"
    )
    endpoint: Name | None = Field(None, max_length=200, examples=["openai"], description="Live run: the name of an "
                                  "endpoint configured on the server (FT_ENDPOINTS; `openai` and `ollama` always), "
                                  "which gets its own key; give dataset_id instead of predictions")  # fmt: skip
    dataset_id: Id | None = Field(None, description="Live run: the dataset build whose split is sent")
    split: Literal["train", "test", "all"] = "test"
    concurrency: int = Field(4, ge=1, le=256, description="Live run: requests at a time")
    reason: Reason = None


class EvaluationOut(BaseModel):
    evaluation_id: str
    model: str | None
    model_type: str | None
    modes: list[str] | None
    normalisation: dict[str, bool] | None
    source: dict[str, Any] | None
    status: str | None
    metrics: dict[str, Any] | None
    created_at: str | None
    created_by: str | None
    position: int | None


class EvaluationPage(BaseModel):
    items: list[EvaluationOut]
    next_cursor: str | None


class PredictionPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


class CompareIn(Request_):
    base: Id = Field(description="The base model's evaluation id")
    candidate: Id = Field(description="The fine-tuned model's evaluation id, on the same test set")
    training_cost: Usd | None = Field(None, description="For the ROI: what the fine-tune cost")
    calls: int | None = Field(None, ge=1, le=MAX_CALLS, description="For the ROI: calls over the period")
    value_per_error: Usd | None = None


class AttachIn(Request_):
    model: ModelNameDoc = Field(description="The registry model")
    version: VersionNumber = Field(description="Its version the evaluation measured")
    reason: Reason = None
