"""Request and response bodies of the HTTP API (kept apart: what comes in is not what goes out)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Reason = Annotated[str | None, Field(max_length=2000, description="Why: kept in the audit trail")]
Position = Annotated[int, Field(description="Log position of the last event appended; pass as min_position to read it")]
Timestamp = Annotated[str | None, Field(description="UTC, ISO 8601", examples=["2026-11-26T14:02:00.000000+00:00"])]


class Request_(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ requests


class RegisterVersionRequest(Request_):
    base_model: str = Field(min_length=1, max_length=256, examples=["gpt-4o-mini-2024-07-18"])
    job_id: str = Field(min_length=1, max_length=256, examples=["ftjob-abc123"])
    dataset_size: int = Field(ge=0, description="Number of training examples")
    accuracy: float | None = Field(None, ge=0, le=1, description="0..1, optional")
    cost: Decimal | None = Field(None, ge=0, description="Training cost in USD, optional")
    status: Literal["READY", "TRAINING"] = Field(
        "READY", description="TRAINING while its job still runs; it moves on to READY or FAILED"
    )
    reason: Reason = None


class StatusChangeRequest(Request_):
    status: str = Field(description="TRAINING, READY, DEPLOYED, ARCHIVED or FAILED", examples=["ARCHIVED"])
    reason: Reason = None


class DeployRequest(Request_):
    version: int | None = Field(None, ge=1, description="Default: the latest READY version")
    reason: Reason = None


class RollbackRequest(Request_):
    target_version: int = Field(ge=1, description="An older version than the deployed one")
    reason: Reason = None


Rate = Annotated[Decimal | None, Field(ge=0, description="USD")]


class PriceIn(Request_):
    model: str = Field(description="A model name, or a prefix ending in '*'", examples=["ft:gpt-4o-mini-2024-07-18:*"])
    effective_from: datetime = Field(description="In force from this time on (ISO 8601 with offset)")
    input_per_1m: Rate = None
    cached_input_per_1m: Rate = None
    output_per_1m: Rate = None
    training_per_1m: Rate = None
    training_per_hour: Rate = None
    gpu_hour: Rate = Field(None, ge=0, description="Local models: USD per GPU-hour (0: free)")
    source: str | None = Field(None, max_length=500, description="Where the price comes from")
    read_on: str | None = Field(None, max_length=40, description="When the source was read")
    reason: Reason = None


class TrainingCostIn(Request_):
    job_id: str = Field(min_length=1, max_length=256, examples=["ftjob-abc123"])
    model_name: str = Field(min_length=1, max_length=256, description="The model the job trained")
    base_model: str = Field(min_length=1, max_length=256, examples=["gpt-4o-mini-2024-07-18"])
    dataset_size: int = Field(ge=0)
    training_tokens: int = Field(ge=0, description="Billed (trained) tokens, all epochs included")
    epochs: int | None = Field(None, ge=0)
    training_hours: Decimal | None = Field(None, ge=0, description="For models priced per hour or GPU-hour")
    total_cost: Decimal | None = Field(None, ge=0, description="USD; omitted: priced from the catalog")
    at: datetime | None = Field(None, description="When the job ran (default: now); picks the price in force")
    reason: Reason = None


class InferenceRecordIn(BaseModel):
    """One inference: documented here; the service validates each record and lists every bad one."""

    id: str = Field(description="Client-chosen and unique: a retry with the same id is not counted twice")
    model: str = Field(examples=["ft:gpt-4o-mini-2024-07-18:acme::abc123"])
    at: datetime | None = Field(None, description="Default: now. Picks the price in force")
    input_tokens: int = Field(ge=0, description="All input tokens, cached ones included")
    cached_input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(ge=0)
    latency_ms: float = Field(0, ge=0)
    cost: Decimal | None = Field(None, ge=0, description="USD; omitted: computed from the price catalog")
    is_fine_tuned: bool = False
    ab_test: str | None = None
    tags: list[str] = []


class InferenceBatchIn(BaseModel):
    records: list[InferenceRecordIn] = Field(max_length=10_000)


class RoiIn(Request_):
    model: str | None = Field(None, description="Take training cost and fine-tuned cost per call from the ledger")
    base_model: str | None = Field(None, description="Take the base cost per call from the ledger")
    training_cost: Decimal | None = Field(None, ge=0)
    base_cost_per_call: Decimal | None = Field(None, ge=0)
    ft_cost_per_call: Decimal | None = Field(None, ge=0)
    base_accuracy: Decimal = Field(ge=0, le=1)
    ft_accuracy: Decimal = Field(ge=0, le=1)
    calls: int | None = Field(None, ge=0, description="Expected calls in total; or give calls_per_day and days")
    calls_per_day: Decimal | None = Field(None, ge=0)
    days: Decimal | None = Field(None, ge=0)
    value_per_error: Decimal = Field(Decimal(10), ge=0, description="USD per error avoided")


class WinnerWeights(BaseModel):
    accuracy: float = Field(0.6, ge=0)
    latency: float = Field(0.2, ge=0, description="Inverse: the faster arm scores 1")
    cost: float = Field(0.2, ge=0, description="Inverse: the cheaper arm scores 1")


class ABTestIn(Request_):
    test_id: str = Field(examples=["support-bot-v3-vs-base"], description="1-64 of A-Za-z0-9._-")
    model_a: str = Field(description="The control")
    model_b: str = Field(description="The variant (a registry version as NAME@VERSION names the deploy command)")
    split: float | None = Field(None, gt=0, lt=1, description="Share of units sent to model_b (default 0.5)")
    alpha: float | None = Field(None, gt=0, lt=0.5, description="Significance level (default 0.05)")
    min_samples: int | None = Field(None, ge=1, description="Per arm before any verdict (default 30; 100+ advised)")
    weights: WinnerWeights | None = None
    match_mode: Literal["exact", "substring"] | None = Field(None, description="How `correct` is computed (exact)")
    reason: Reason = None


class EndTestIn(Request_):
    reason: Reason = None


class SampleIn(BaseModel):
    """One A/B sample: documented here; the service validates each sample and lists every bad one."""

    sample_id: str = Field(description="Client-chosen and unique in the test: a retry is not counted twice")
    arm: Literal["a", "b"] | None = Field(None, description="Or give the arm's model")
    model: str | None = None
    correct: bool | None = Field(None, description="Default: prediction compared with reference (match_mode)")
    prediction: str | None = None
    reference: str | None = None
    latency_ms: float = Field(0, ge=0)
    cost: Decimal = Field(Decimal(0), ge=0, description="USD")
    at: datetime | None = Field(None, description="Default: now")


class SampleBatchIn(BaseModel):
    samples: list[SampleIn] = Field(max_length=10_000)


class ChatMessageIn(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str
    name: str | None = None


class ExampleIn(BaseModel):
    """One collected example: documented here; the service validates each and lists every bad one."""

    example_id: str = Field(description="Client-chosen and unique: a retry is not stored twice")
    prompt: str | None = Field(None, description="Required unless messages are given")
    response: str | None = Field(None, description="Required unless messages are given")
    system: str | None = None
    messages: list[ChatMessageIn] | None = Field(None, description="A multi-turn example, OpenAI chat format")
    domain: str | None = None
    task_type: str | None = None
    rating: int | None = Field(None, ge=1, le=5)
    source: Literal["distillation", "task_history", "feedback", "import"] = "import"
    model: str | None = Field(None, description="The model that produced the response")
    at: datetime | None = None
    tags: list[str] = []


class ExampleBatchIn(BaseModel):
    examples: list[ExampleIn] = Field(max_length=10_000)


class RatingIn(Request_):
    rating: int = Field(description="1 to 5")
    reason: Reason = None


class DatasetIn(Request_):
    dataset_id: str | None = Field(None, description="Default: ds- and the start of the content hash")
    min_rating: int | None = Field(4, ge=1, le=5)
    domain: str | None = None
    task_type: str | None = None
    source: Literal["distillation", "task_history", "feedback", "import"] | None = None
    since: datetime | None = None
    until: datetime | None = None
    target_model: str = Field("gpt-4o-mini-2024-07-18", description="Picks the tokenizer and the token limit")
    train_ratio: float = Field(0.8, gt=0, lt=1)
    seed: int = 42
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
    n_epochs: int | Literal["auto"] | None = Field(None, description="Default: auto (OpenAI's rule from the size)")
    batch_size: int | Literal["auto"] | None = None
    learning_rate_multiplier: Decimal | Literal["auto"] | None = None
    beta: Decimal | Literal["auto"] | None = Field(None, description="DPO only")


class JobIn(Request_):
    base_model: str = Field(min_length=1, max_length=256, examples=["gpt-4o-mini-2024-07-18"],
                            description="OpenAI: the model to fine-tune. Local: an Unsloth or Hugging Face name "
                            "(unsloth/Llama-3.2-1B-Instruct-bnb-4bit) or a local folder")  # fmt: skip
    provider: Literal["openai", "local"] = "openai"
    training_config: dict[str, Any] | None = Field(
        None, description="Local jobs: chat_template, max_seq_length, load_in_4bit, lora_r, lora_alpha, lora_dropout, "
        "target_modules, epochs or max_steps, learning_rate, batch_size, gradient_accumulation, seed, "
        "train_on_responses_only, export (lora, merged_16bit, gguf) and quantization",
    )  # fmt: skip
    model_name: str | None = Field(None, description="Registry name of the result (default: the suffix, else the "
                                   "base model); a TRAINING version is pre-registered under it")  # fmt: skip
    dataset_id: str | None = Field(None, description="Train on a dataset build (with its lineage)...")
    split: Literal["train", "test", "all"] | None = Field(None, description="...this split of it (default train)")
    training_file: str | None = Field(None, description="...or on a JSONL file the server can read")
    validation_dataset: str | None = None
    validation_split: Literal["train", "test", "all"] | None = None
    validation_file: str | None = None
    method: Literal["supervised", "dpo"] = "supervised"
    hyperparameters: JobHyperparameters = Field(default_factory=JobHyperparameters)
    suffix: str | None = Field(None, max_length=64)
    seed: int | None = None
    metadata: dict[str, str] | None = None
    job_id: str | None = Field(None, description="Default: job- and 16 hex digits")
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
    name: str = Field(min_length=1, max_length=200, examples=["support-bot:v3"], description="The Ollama model name")
    endpoint: str = Field("ollama", max_length=200, description="The name of an Ollama endpoint configured on "
                          "the server (FT_ENDPOINTS; `ollama` is OLLAMA_HOST, else http://127.0.0.1:11434)")
    host: str | None = Field(None, description="Not taken over HTTP (a client never picks the address the server "
                             "calls): give endpoint")  # fmt: skip
    system: str | None = Field(None, max_length=20_000, description="The SYSTEM prompt of the Modelfile")
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
    example_id: str | None = Field(None, max_length=256, description="Default: row-<n> by position")
    prediction: str
    reference: str
    label: str | None = Field(None, description="classification: the true class (default: the reference)")
    latency_ms: float | None = Field(None, ge=0)
    cost: Decimal | None = Field(None, ge=0, description="USD for this inference")


class EvaluationIn(Request_):
    evaluation_id: str | None = Field(None, description="Default: ev- and 12 hex digits")
    model: str = Field(min_length=1, max_length=256)
    model_type: Literal["base", "fine_tuned"]
    modes: list[str] = Field(default_factory=lambda: ["exact"],
                             description="exact, substring, classification, bleu, rouge")  # fmt: skip
    normalisation: dict[str, bool] | None = Field(None, description="{case, whitespace, punctuation}: what "
                                                  "matching ignores")  # fmt: skip
    cost: Decimal | None = Field(None, ge=0, description="Cost per inference where a prediction gives none")
    predictions: list[dict[str, Any]] | None = Field(None, description="Offline evaluation: {example_id?, "
                                                     "prediction, reference, label?, latency_ms?, cost?} each")
    endpoint: str | None = Field(None, max_length=200, examples=["openai"], description="Live run: the name of an "
                                 "endpoint configured on the server (FT_ENDPOINTS; `openai` and `ollama` always), "
                                 "which gets its own key; give dataset_id instead of predictions")  # fmt: skip
    dataset_id: str | None = Field(None, description="Live run: the dataset build whose split is sent")
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
    base: str = Field(description="The base model's evaluation id")
    candidate: str = Field(description="The fine-tuned model's evaluation id, on the same test set")
    training_cost: Decimal | None = Field(None, ge=0, description="For the ROI: what the fine-tune cost")
    calls: int | None = Field(None, ge=1, description="For the ROI: calls over the period")
    value_per_error: Decimal | None = Field(None, ge=0)


class AttachIn(Request_):
    model: str = Field(description="The registry model")
    version: int = Field(ge=1, description="Its version the evaluation measured")
    reason: Reason = None
