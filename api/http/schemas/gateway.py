"""/v1/gateway/calls and /v1/gateway/stats: the calls that went through the gateway."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from api.http.schemas.common import Reason, Request_


class AttemptOut(BaseModel):
    model: str
    version: int
    upstream_model: str
    outcome: str = Field(description="ok, or why the try failed (connect_error, timeout, rate_limited, ...)")
    status_code: int | None
    waited_ms: float = Field(description="How long the gateway waited before this try (the upstream's Retry-After)")


class FeedbackOut(BaseModel):
    correct: bool
    score: float | None
    at: str


class FeedbackIn(Request_):
    correct: bool | None = Field(None, description="Whether the answer was right (or give score)")
    score: float | None = Field(None, ge=0, le=1, description="0 to 1; at least 0.5 counts as correct")
    reason: Reason = None


class FeedbackGivenOut(BaseModel):
    call_id: str
    counted: bool = Field(description="false: this call's feedback was counted before; nothing was recorded now")
    position: int | None


class CallOut(BaseModel):
    id: str = Field(description="The call id: the X-FT-Call-Id header of its answer")
    at: str
    model: str = Field(description="The registered model that answered (the fallback's, after a fallback)")
    version: int | None
    requested: str = Field(description="The `model` the caller sent")
    endpoint: str = Field(description="chat.completions or completions")
    stream: bool
    caller: str = Field(description="The name of the caller's token (anonymous without tokens)")
    status: str = Field(description="ok, error (no answer), interrupted (the upstream stopped mid-stream) or "
                        "cancelled (the client left)")
    upstream: str | None = Field(description="The configured upstream's name, or the base URL called")
    upstream_model: str | None
    http_status: int | None = Field(description="The status the caller got")
    error_kind: str | None
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    estimated: bool = Field(description="true: no usage came back, the tokens were counted with tiktoken")
    latency_ms: float
    ttfb_ms: float | None = Field(description="Time to the first byte the caller got")
    cost: Decimal | None = Field(description="USD, priced from the catalog in force at the call's time; null: "
                                 "no price covers the model (cost_source unpriced)")
    cost_source: str
    price: str | None = Field(description="The catalog entry the cost was computed with")
    arm: str | None = Field(description="The A/B arm (a or b) when the call ran through a test")
    ab_test: str | None = Field(description="The A/B test the call was a sample of")
    feedback: FeedbackOut | None = Field(description="The caller's feedback on the call, once given")
    fallback_from: str | None = Field(description="model@version the call was meant for, when a fallback answered")
    attempts: list[AttemptOut]
    position: int


class CallsOut(BaseModel):
    calls: list[CallOut]
    next_cursor: str | None


class CallStatsOut(BaseModel):
    model: str
    version: int | None
    calls: int
    errors: int = Field(description="Calls whose status is not ok")
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    ttfb_p50_ms: float | None
    input_tokens: int
    output_tokens: int
    estimated_calls: int
    cost: Decimal
    unpriced_calls: int
    fallbacks: int
    rated_calls: int = Field(description="Calls with feedback")
    accuracy: float | None = Field(description="The share of rated calls whose feedback says correct")


class BucketStatsOut(CallStatsOut):
    bucket: str = Field(description="The minute (2026-12-02T14:05) or day (2026-12-02) of the calls, UTC")


class GatewayStatsOut(BaseModel):
    models: list[CallStatsOut] = Field(description="Per model and version over the whole range")
    series: list[BucketStatsOut] = Field(description="Per minute or day, model and version")
    since: str
    until: str | None
