"""Request and response bodies of the HTTP API (kept apart: what comes in is not what goes out)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from domain.ab_testing import MAX_TEXT as MAX_SAMPLE_TEXT
from domain.ab_testing import MAX_WEIGHT
from domain.datasets import MAX_SEED
from domain.evaluations import MAX_TEXT as MAX_PREDICTION_TEXT
from domain.examples import MAX_CONTENT
from domain.inference import MAX_BATCH, MAX_TAGS
from domain.pricing import MAX_PATTERN, MAX_RATE, MAX_READ_ON, MAX_SOURCE
from domain.roi import MAX_DAYS
from domain.values import (
    ID_PATTERN,
    ID_RULE,
    MAX_AMOUNT,
    MAX_CALLS,
    MAX_COUNT,
    MAX_EPOCHS,
    MAX_HOURS,
    MAX_LATENCY_MS,
    MAX_NAME,
    MAX_PLACES,
    MAX_REASON,
    MAX_TOKENS,
    MAX_TRAINING_TOKENS,
    NAME_FORBIDDEN,
    NAME_PATTERN,
    TEXT_FORBIDDEN,
    TEXT_PATTERN,
)

# The limits of domain/values.py (README, "Limits"), declared again here so OpenAPI documents them
# and a bad field is named before the domain sees it. The domain checks them all the same.


def _refusing(bad: Callable[[str], Any], pattern: str, rule: str) -> tuple[Any, Any]:
    """The pattern in OpenAPI, and a message in words rather than a regular expression."""

    def check(value: str) -> str:
        if bad(value):
            raise PydanticCustomError("string_pattern_mismatch", rule)
        return value

    return Field(json_schema_extra={"pattern": pattern}), AfterValidator(check)


NO_CONTROLS = _refusing(NAME_FORBIDDEN.search, NAME_PATTERN, "must not contain control characters (such as NUL, "
                        "tab or newline)")  # fmt: skip
TEXT_CONTROLS = _refusing(TEXT_FORBIDDEN.search, TEXT_PATTERN, "must not contain NUL or control characters other "
                          "than tab, newline and carriage return")  # fmt: skip
_ID = re.compile(ID_PATTERN)
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME), *NO_CONTROLS]
Id = Annotated[str, Field(description=ID_RULE),
               *_refusing(lambda v: not _ID.fullmatch(v), ID_PATTERN, f"use {ID_RULE}")]  # fmt: skip
Text = Annotated[str, *TEXT_CONTROLS]
#: Documented only: the domain checks it, with a message that names the thing ("Invalid model name ...")
ModelNameDoc = Annotated[str, Field(description=ID_RULE, json_schema_extra={"pattern": ID_PATTERN})]


def _range_doc(low: Any, high: Any) -> Any:
    """A range stated in OpenAPI and checked by the domain, whose message is the clearer one."""
    return Field(json_schema_extra={"minimum": low, "maximum": high})
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
VersionNumber = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Tokens = Annotated[int, Field(ge=0, le=MAX_TOKENS)]
Usd = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT, decimal_places=MAX_PLACES, description="USD")]
LatencyMs = Annotated[float, Field(ge=0, le=MAX_LATENCY_MS, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Tags = Annotated[list[Name], Field(max_length=MAX_TAGS)]

Reason = Annotated[Annotated[str, Field(max_length=MAX_REASON), *NO_CONTROLS] | None,
                   Field(description="Why: kept in the audit trail")]  # fmt: skip
Position = Annotated[int, Field(description="Log position of the last event appended; pass as min_position to read it")]
Timestamp = Annotated[str | None, Field(description="UTC, ISO 8601", examples=["2026-11-26T14:02:00.000000+00:00"])]


class Request_(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ requests


class RegisterVersionRequest(Request_):
    base_model: Name = Field(examples=["gpt-4o-mini-2024-07-18"])
    job_id: Name = Field(examples=["ftjob-abc123"])
    dataset_size: Count = Field(description="Number of training examples")
    accuracy: Share | None = Field(None, description="0..1, optional")
    cost: Usd | None = Field(None, description="Training cost in USD, optional")
    status: Literal["READY", "TRAINING"] = Field(
        "READY", description="TRAINING while its job still runs; it moves on to READY or FAILED"
    )
    reason: Reason = None


class StatusChangeRequest(Request_):
    status: str = Field(max_length=20, description="TRAINING, READY, DEPLOYED, ARCHIVED or FAILED",
                        examples=["ARCHIVED"])  # fmt: skip
    reason: Reason = None


class DeployRequest(Request_):
    version: VersionNumber | None = Field(None, description="Default: the latest READY version")
    reason: Reason = None


class RollbackRequest(Request_):
    target_version: VersionNumber = Field(description="An older version than the deployed one")
    reason: Reason = None


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


class WinnerWeights(BaseModel):
    accuracy: float = Field(0.6, ge=0, le=MAX_WEIGHT, allow_inf_nan=False)
    latency: float = Field(0.2, ge=0, le=MAX_WEIGHT, allow_inf_nan=False, description="Inverse: the faster arm "
                           "scores 1")  # fmt: skip
    cost: float = Field(0.2, ge=0, le=MAX_WEIGHT, allow_inf_nan=False, description="Inverse: the cheaper arm "
                        "scores 1")  # fmt: skip


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
    samples: list[SampleIn] = Field(max_length=10_000)


class ChatMessageIn(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Text = Field(max_length=MAX_CONTENT)
    name: Name | None = None


class ExampleIn(BaseModel):
    """One collected example: documented here; the service validates each and lists every bad one."""

    example_id: Name = Field(description="Client-chosen and unique: a retry is not stored twice")
    prompt: Text | None = Field(None, max_length=MAX_CONTENT, description="Required unless messages are given")
    response: Text | None = Field(None, max_length=MAX_CONTENT, description="Required unless messages are given")
    system: Text | None = Field(None, max_length=MAX_CONTENT)
    messages: list[ChatMessageIn] | None = Field(None, description="A multi-turn example, OpenAI chat format")
    domain: Name | None = None
    task_type: Name | None = None
    rating: int | None = Field(None, ge=1, le=5)
    source: Literal["distillation", "task_history", "feedback", "import"] = "import"
    model: Name | None = Field(None, description="The model that produced the response")
    at: datetime | None = None
    tags: Tags = []


class ExampleBatchIn(BaseModel):
    examples: list[ExampleIn] = Field(max_length=MAX_BATCH)


class RatingIn(Request_):
    # documented here, checked by the domain (its message says the range)
    rating: int = Field(description="1 to 5", json_schema_extra={"minimum": 1, "maximum": 5})
    reason: Reason = None


class DatasetIn(Request_):
    dataset_id: Id | None = Field(None, description="Default: ds- and the start of the content hash")
    min_rating: int | None = Field(4, ge=1, le=5)
    domain: Name | None = None
    task_type: Name | None = None
    source: Literal["distillation", "task_history", "feedback", "import"] | None = None
    since: datetime | None = None
    until: datetime | None = None
    target_model: Name = Field("gpt-4o-mini-2024-07-18", description="Picks the tokenizer and the token limit")
    train_ratio: float = Field(0.8, gt=0, lt=1, allow_inf_nan=False)
    seed: int = Field(42, ge=0, le=MAX_SEED)
    reason: Reason = None


# ----------------------------------------------------------------- responses


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


class ExamplesOut(BaseModel):
    accepted: int
    duplicates: list[str]
    position: int | None


class RatedOut(BaseModel):
    example_id: str
    rating: int
    position: int


class ExampleOut(BaseModel):
    example_id: str
    prompt: str | None
    response: str | None
    system: str | None
    messages: list[dict[str, Any]] | None
    domain: str | None
    task_type: str | None
    rating: int | None
    source: str
    model: str | None
    at: str
    tags: list[str]
    position: int


class ExamplePage(BaseModel):
    items: list[ExampleOut]
    next_cursor: str | None


class ABTestOut(BaseModel):
    test_id: str
    model_a: str
    model_b: str
    split: float
    alpha: float
    min_samples: int
    weights: WinnerWeights
    match_mode: str
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
    cost: Decimal
    cost_source: str
    price: str | None = Field(description="The catalog entry the cost was computed with")
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


class VersionOut(BaseModel):
    version: int
    model_name: str
    base_model: str | None
    job_id: str | None
    dataset_size: int | None
    accuracy: float | None
    cost: Decimal | None = Field(description="USD, as a decimal string")
    status: str
    registered_at: Timestamp
    registered_by: str | None
    status_changed_at: Timestamp
    deployed_at: Timestamp
    serving: dict[str, Any] | None = Field(None, description="Where evaluation reaches it: the Ollama model its "
                                           "local job was published as, and the OpenAI-compatible URL")  # fmt: skip


class ModelOut(BaseModel):
    name: str
    created_at: Timestamp
    created_by: str | None
    version_count: int
    latest_version: int | None
    deployed_version: int | None
    updated_at: Timestamp
    etag: int = Field(description="The model's event count; send it as If-Match to deploy or roll back safely")


class ModelDetailOut(ModelOut):
    versions: list[VersionOut]


class ModelPage(BaseModel):
    items: list[ModelOut]
    next_cursor: str | None


class VersionPage(BaseModel):
    items: list[VersionOut]
    next_cursor: str | None


class RegisteredOut(BaseModel):
    model: str
    version: int
    status: str
    position: Position
    etag: int


class StatusChangedOut(BaseModel):
    model: str
    version: int
    status: str
    previous_status: str
    position: Position
    etag: int


class DeployedOut(BaseModel):
    model: str
    version: int = Field(description="The version now DEPLOYED")
    previous_version: int | None = Field(description="The version that was deployed before, now ARCHIVED")
    status: Literal["DEPLOYED"] = "DEPLOYED"
    position: Position
    etag: int


class VersionStatusOut(BaseModel):
    version: int
    status: str
    since: Timestamp


class DeploymentOut(BaseModel):
    model: str
    deployed_version: int | None
    deployed_since: Timestamp
    deployed_by: str | None
    reason: str | None
    event_type: str | None = Field(description="VersionDeployed or RolledBack")
    versions: list[VersionStatusOut]


class DeploymentPage(BaseModel):
    as_of: Timestamp
    items: list[DeploymentOut]
    next_cursor: str | None


class AuditEntryOut(BaseModel):
    position: int
    timestamp: str
    model: str | None
    version: int | None
    event_type: str
    actor: str | None
    reason: str | None
    payload: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None


class QuarantinedEventOut(BaseModel):
    projection: str
    position: int = Field(description="The event's position in the log")
    topic: str = Field(description="The event's class")
    originator_id: str
    originator_version: int
    error: str = Field(description="Why the projection could not apply it")
    attempts: int = Field(description="How often it was tried")
    quarantined_at: Timestamp


class ProjectionOut(BaseModel):
    name: str
    position: int
    head: int
    lag: int
    updated_at: Timestamp
    quarantined: int = Field(0, description="Events this projection could not apply and skipped")
    quarantine: list[QuarantinedEventOut] = Field(
        default_factory=list, description="The first of them (GET /v1/projections/{name}/quarantine has all)"
    )


class ReapplyIn(BaseModel):
    positions: list[int] | None = Field(None, max_length=10_000, description="Only these (default: every one)")


class ReapplyOut(BaseModel):
    name: str
    applied: list[int] = Field(description="Positions now applied; they left the quarantine")
    still_failing: list[QuarantinedEventOut]


class RebuildOut(BaseModel):
    name: str
    events: int
    position: int
    seconds: float
    events_per_second: float


class HealthOut(BaseModel):
    status: Literal["ok"]
    store: str
    head: int
    quarantined: int = Field(0, description="Events some projection could not apply (GET /v1/projections)")


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


# ------------------------------------------------------------ fine-tuning jobs


class JobHyperparameters(Request_):
    n_epochs: Annotated[int, _range_doc(1, 50)] | Literal["auto"] | None = Field(
        None, description="Default: auto (OpenAI's rule from the size)"
    )
    batch_size: Annotated[int, _range_doc(1, 256)] | Literal["auto"] | None = None
    learning_rate_multiplier: Annotated[Decimal, _range_doc(0, 10)] | Literal["auto"] | None = None
    beta: Annotated[Decimal, _range_doc(0, 2)] | Literal["auto"] | None = Field(None, description="DPO only")


class JobIn(Request_):
    base_model: Name = Field(examples=["gpt-4o-mini-2024-07-18"],
                            description="OpenAI: the model to fine-tune. Local: an Unsloth or Hugging Face name "
                            "(unsloth/Llama-3.2-1B-Instruct-bnb-4bit) or a local folder")  # fmt: skip
    provider: Literal["openai", "local"] = "openai"
    training_config: dict[str, Any] | None = Field(
        None, description="Local jobs: chat_template, max_seq_length, load_in_4bit, lora_r, lora_alpha, lora_dropout, "
        "target_modules, epochs or max_steps, learning_rate, batch_size, gradient_accumulation, seed, "
        "train_on_responses_only, export (lora, merged_16bit, gguf) and quantization",
    )  # fmt: skip
    model_name: ModelNameDoc | None = Field(
        None, description="Registry name of the result (default: the suffix, else the base model); a TRAINING "
        "version is pre-registered under it"
    )
    dataset_id: Id | None = Field(None, description="Train on a dataset build (with its lineage)...")
    split: Literal["train", "test", "all"] | None = Field(None, description="...this split of it (default train)")
    training_file: str | None = Field(None, description="...or on a JSONL file the server can read")
    validation_dataset: Id | None = None
    validation_split: Literal["train", "test", "all"] | None = None
    validation_file: str | None = None
    method: Literal["supervised", "dpo"] = "supervised"
    hyperparameters: JobHyperparameters = Field(default_factory=JobHyperparameters)
    suffix: str | None = Field(None, max_length=64)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    metadata: dict[Annotated[str, Field(max_length=64), *NO_CONTROLS],
                   Annotated[str, Field(max_length=512), *NO_CONTROLS]] | None = None  # fmt: skip
    job_id: Id | None = Field(None, description="Default: job- and 16 hex digits")
    dry_run: bool = Field(False, description="Check the files and estimate the cost; record nothing")
    skip_checks: bool = Field(False, description="Let through what the local checks refuse (formats they do not "
                              "know, such as images or tool calls); the provider still validates")  # fmt: skip
    reason: Reason = None


class EstimateOut(BaseModel):
    tokens: int = Field(description="Tokens of one pass over the training file")
    epochs: int
    epochs_source: str = Field(description="given, or OpenAI's default rule")
    billed_tokens: int
    unit_price_per_1m: Decimal | None
    price_pattern: str | None
    total: Decimal | None = Field(description="Estimated USD; null when the catalog cannot price it")
    note: str | None
    examples: int | None = None
    warnings: list[str] = Field(default_factory=list, description="What the skipped local checks found")


class JobOut(BaseModel):
    job_id: str
    provider: str
    provider_job_id: str | None
    status: str = Field(description="created, validating_files, queued, running, paused, succeeded, failed, "
                        "cancelled or refused")  # fmt: skip
    base_model: str
    model_name: str
    registry_version: int | None
    method: str | None
    hyperparameters: dict[str, Any] | None
    training: dict[str, Any] | None = Field(description="Where the training data came from: dataset, split and "
                                            "content hash (the lineage), or a file; its sha-256, examples, tokens")
    validation: dict[str, Any] | None
    estimate: dict[str, Any] | None
    files: dict[str, Any] | None
    fine_tuned_model: str | None
    trained_tokens: int | None
    error: dict[str, Any] | None
    metrics: dict[str, Any] | None = Field(description="The latest step metrics the provider reported")
    estimated_finish: int | None
    created_at: str
    created_by: str | None
    updated_at: str
    finished_at: str | None
    published: dict[str, Any] | None = Field(None, description="Local runs published to Ollama: the model name, "
                                             "host, and the OpenAI-compatible URL evaluation calls")  # fmt: skip
    timing: dict[str, Any] | None = Field(None, description="Local runs: the measured wall and training seconds, "
                                          "beside estimate.time")  # fmt: skip
    position: int
    pending: str | None = Field(None, description="A transient provider problem: the job kept its state and the "
                                "next sync retries")  # fmt: skip
    notes: list[str] = Field(default_factory=list)
    appended: int | None = Field(None, description="Job events this request appended (0: nothing was new)")


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class JobEventOut(BaseModel):
    type: str
    at: str
    actor: str | None
    stream_version: int
    details: dict[str, Any]


class PublishIn(Request_):
    name: Annotated[str, *NO_CONTROLS] = Field(min_length=1, max_length=200, examples=["support-bot:v3"],
                                               description="The Ollama model name")  # fmt: skip
    endpoint: Name = Field("ollama", max_length=200, description="The name of an Ollama endpoint configured on "
                           "the server (FT_ENDPOINTS; `ollama` is OLLAMA_HOST, else http://127.0.0.1:11434)")
    host: str | None = Field(None, description="Not taken over HTTP (a client never picks the address the server "
                             "calls): give endpoint")  # fmt: skip
    system: Text | None = Field(None, max_length=20_000, description="The SYSTEM prompt of the Modelfile")
    base: str | None = Field(None, description="LoRA exports: the base model Ollama has, e.g. llama3.2:1b")


class CancelIn(Request_):
    reason: Reason = None


class ModelDeletedOut(BaseModel):
    model: str
    deleted: bool
    job_id: str | None = Field(description="The job that produced it, which records the deletion")


# --------------------------------------------------------------- evaluations


class PredictionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    example_id: Name | None = Field(None, description="Default: row-<n> by position")
    prediction: Text = Field(max_length=MAX_PREDICTION_TEXT)
    reference: Text = Field(max_length=MAX_PREDICTION_TEXT)
    label: Text | None = Field(None, max_length=MAX_PREDICTION_TEXT,
                               description="classification: the true class (default: the reference)")  # fmt: skip
    latency_ms: LatencyMs | None = None
    cost: Usd | None = Field(None, description="USD for this inference")


class EvaluationIn(Request_):
    evaluation_id: Id | None = Field(None, description="Default: ev- and 12 hex digits")
    model: Name
    model_type: Literal["base", "fine_tuned"]
    modes: list[str] = Field(default_factory=lambda: ["exact"],
                             description="exact, substring, classification, bleu, rouge")  # fmt: skip
    normalisation: dict[str, bool] | None = Field(None, description="{case, whitespace, punctuation}: what "
                                                  "matching ignores")  # fmt: skip
    cost: Usd | None = Field(None, description="Cost per inference where a prediction gives none")
    predictions: list[dict[str, Any]] | None = Field(None, description="Offline evaluation: {example_id?, "
                                                     "prediction, reference, label?, latency_ms?, cost?} each")
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
