"""/v1/ab-tests: tests, their samples, statistics and winner."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.http.schemas.common import Id, LatencyMs, Name, Reason, Request_, Text, Usd
from domain.ab_testing import MAX_DURATION_S, MAX_WEIGHT
from domain.ab_testing import MAX_TEXT as MAX_SAMPLE_TEXT
from domain.batches import MAX_BATCH
from domain.values import MAX_COUNT, MAX_LATENCY_MS


class WinnerWeights(BaseModel):
    accuracy: float = Field(0.6, ge=0, le=MAX_WEIGHT, allow_inf_nan=False)
    latency: float = Field(0.2, ge=0, le=MAX_WEIGHT, allow_inf_nan=False, description="Inverse: the faster arm "
                           "scores 1")  # fmt: skip
    cost: float = Field(0.2, ge=0, le=MAX_WEIGHT, allow_inf_nan=False, description="Inverse: the cheaper arm "
                        "scores 1")  # fmt: skip


class Guardrails(Request_):
    error_rate: float | None = Field(None, gt=0, le=1, allow_inf_nan=False,
                                     description="The challenger stops above this share of failed calls")  # fmt: skip
    p95_ms: float | None = Field(None, gt=0, le=MAX_LATENCY_MS, allow_inf_nan=False,
                                 description="The challenger is stopped above this p95 latency")  # fmt: skip


class ABTestIn(Request_):
    test_id: Id = Field(examples=["support-bot-v3-vs-base"])
    model_a: Name = Field(description="The control")
    model_b: Name = Field(description="The variant (a registry version as NAME@VERSION names the deploy command)")
    split: float | None = Field(None, gt=0, lt=1, allow_inf_nan=False,
                                description="Share of units sent to model_b (default 0.5)")  # fmt: skip
    alpha: float | None = Field(None, gt=0, lt=0.5, allow_inf_nan=False,
                                description="Significance level (default 0.05)")  # fmt: skip
    min_samples: int | None = Field(None, ge=1, le=MAX_COUNT, description="Per arm before any verdict (default 30; "
                                    "100+ advised)")  # fmt: skip
    weights: WinnerWeights | None = None
    match_mode: Literal["exact", "substring"] | None = Field(None, description="How `correct` is computed (exact)")
    gateway_model: Id | None = Field(
        None, description="The registered model whose gateway calls the test splits (found by itself when both "
        "arms are versions of one model, NAME@1 against NAME@2)",
    )  # fmt: skip
    on_win: Literal["none", "conclude", "conclude_and_deploy"] | None = Field(
        None, description="What an always-valid winner does by itself (default none)")
    guardrails: Guardrails | None = None
    max_duration_s: float | None = Field(None, gt=0, le=MAX_DURATION_S, allow_inf_nan=False,
                                         description="After this long the test concludes as inconclusive")  # fmt: skip
    reason: Reason = None


class EndTestIn(Request_):
    reason: Reason = None


class SampleIn(BaseModel):
    """One A/B sample: documented here; the service validates each sample and lists every bad one."""

    sample_id: Name = Field(description="Client-chosen and unique in the test: a retry is not counted twice")
    arm: Literal["a", "b"] | None = Field(None, description="Or give the arm's model")
    model: Name | None = None
    correct: bool | None = Field(None, description="Default: prediction compared with reference (match_mode)")
    prediction: Text | None = Field(None, max_length=MAX_SAMPLE_TEXT)
    reference: Text | None = Field(None, max_length=MAX_SAMPLE_TEXT)
    latency_ms: LatencyMs = 0
    cost: Usd = Decimal(0)
    at: datetime | None = Field(None, description="Default: now")


class SampleBatchIn(BaseModel):
    samples: list[SampleIn] = Field(max_length=MAX_BATCH)


class ABTestOut(BaseModel):
    test_id: str
    model_a: str
    model_b: str
    split: float
    alpha: float
    min_samples: int
    weights: WinnerWeights
    match_mode: str
    gateway_model: str | None = Field(None, description="The registered model whose gateway calls it splits")
    on_win: str = "none"
    guardrails: dict[str, float | None] = Field(default_factory=dict)
    max_duration_s: float | None = None
    challenger_stopped: dict[str, Any] | None = Field(
        None, description="When, by which policy and why the challenger was stopped (a guardrail)")
    status: str = Field(description="running, concluded or abandoned")
    created_at: str | None
    created_by: str | None
    ended_at: str | None
    ended_by: str | None
    end_reason: str | None
    statistics: dict[str, Any] = Field(
        description="Per arm, comparison, checks, scores and verdict: live while running, frozen once concluded"
    )


class ABTestPage(BaseModel):
    items: list[ABTestOut]
    next_cursor: str | None


class AssignmentOut(BaseModel):
    test_id: str
    unit: str
    arm: Literal["a", "b"]
    model: str


class SamplesOut(BaseModel):
    accepted: int
    duplicates: list[str]
    position: int | None


class WinnerOut(BaseModel):
    test_id: str
    status: str
    winner: Literal["a", "b"] | None
    winner_model: str | None
    verdict: str
    deploy_command: str | None = Field(description="When the winner is a registry version: the command to deploy it")
