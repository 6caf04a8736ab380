"""/v1/jobs: fine-tuning jobs, their estimates, events, publishing and cancelling."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from api.http.schemas.common import NO_CONTROLS, Id, ModelNameDoc, Name, Reason, Request_, Text
from domain.datasets import MAX_SEED


def _range_doc(low: Any, high: Any) -> Any:
    """A range stated in OpenAPI and checked by the domain, whose message is the clearer one."""
    return Field(json_schema_extra={"minimum": low, "maximum": high})


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
        None,
        description="Registry name of the result (default: the suffix, else the base model); a TRAINING "
        "version is pre-registered under it",
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
    training: dict[str, Any] | None = Field(
        description="Where the training data came from: dataset, split and "
        "content hash (the lineage), or a file; its sha-256, examples, tokens"
    )
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
    endpoint: Name = Field(
        "ollama",
        max_length=200,
        description="The name of an Ollama endpoint configured on "
        "the server (FT_ENDPOINTS; `ollama` is OLLAMA_HOST, else http://127.0.0.1:11434)",
    )
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
