"""What a fine-tuning job is made of: its id, statuses, spec (the validated request), data
sources, cost estimate, and one reading of it at a provider. The job aggregate (domain/jobs.py)
records them; the training-provider port (domain/training_provider.py) reports readings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from domain.errors import InvalidInput
from domain.ids import stable_id
from domain.values import decimal_value, name_text, optional_name, path_id, validate_model_name

PROVIDERS = ("openai", "local")
METHODS = ("supervised", "dpo")
SUFFIX = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: the provider's metadata key that names our job, so a lost reply to "create" can be found again
JOB_METADATA_KEY = "ft_lifecycle_job"


class JobStatus(StrEnum):
    CREATED = "created"  # recorded here, not yet accepted by the provider
    VALIDATING_FILES = "validating_files"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REFUSED = "refused"  # the provider would not start it (for example training_not_available)


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.REFUSED})
PROVIDER_STATUSES = frozenset(
    {JobStatus.VALIDATING_FILES, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED, JobStatus.SUCCEEDED,
     JobStatus.FAILED, JobStatus.CANCELLED}
)  # fmt: skip


def job_stream_id(job_id: str) -> UUID:
    return stable_id("job", job_id)


def new_job_id() -> str:
    return "job-" + uuid4().hex[:16]


def validate_job_id(job_id: Any) -> str:
    return path_id("job id", job_id)  # a local job's run folder is named after it


# ------------------------------------------------------------------- the request


@dataclass(frozen=True)
class Hyperparameters:
    """None means "auto": the provider chooses (OpenAI's default epochs rule, for one)."""

    n_epochs: int | None = None
    batch_size: int | None = None
    learning_rate_multiplier: Decimal | None = None
    beta: Decimal | None = None  # DPO only

    @classmethod
    def validate(cls, *, method: str, **values: Any) -> Hyperparameters:
        unknown = set(values) - {"n_epochs", "batch_size", "learning_rate_multiplier", "beta"}
        if unknown:
            raise InvalidInput(f"Unknown hyperparameters: {', '.join(sorted(unknown))}.")
        out: dict[str, Any] = {}
        for name, top in (("n_epochs", 50), ("batch_size", 256)):
            value = values.get(name)
            if value is None or value == "auto":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise InvalidInput(f"{name} must be a whole number from 1 to {top} (or auto), got {value!r}.")
            out[name] = value
        for name, top in (("learning_rate_multiplier", Decimal(10)), ("beta", Decimal(2))):
            value = values.get(name)
            if value is None or value == "auto":
                continue
            number = decimal_value(name, value, maximum=top)
            if number <= 0:
                raise InvalidInput(f"{name} must be more than 0 (or auto), got {number}.")
            out[name] = number
        if "beta" in out and method != "dpo":
            raise InvalidInput("beta applies to DPO only: use --method dpo, or leave beta out.")
        return cls(**out)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("n_epochs", "batch_size", "learning_rate_multiplier", "beta")}


@dataclass(frozen=True)
class TrainingSource:
    """Where a training or validation file comes from: a dataset build's split, or a file."""

    kind: str  # "dataset" or "file"
    dataset_id: str | None = None
    split: str | None = None
    content_hash: str | None = None  # the dataset build's hash (its lineage)
    path: str | None = None
    sha256: str = ""  # of the bytes uploaded: a retried upload must send the same file
    examples: int = 0
    tokens: int = 0
    #: False when the user skipped the local checks (formats they do not know: images, tool calls)
    checked: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("kind", "dataset_id", "split", "content_hash", "path", "sha256",
                                              "examples", "tokens", "checked")}  # fmt: skip


@dataclass(frozen=True)
class CostEstimate:
    """Tokens x epochs x the training price in force; `total` is None when it cannot be priced."""

    tokens: int
    epochs: int
    epochs_source: str  # "given" or "default rule"
    unit_price: Decimal | None
    price_pattern: str | None
    total: Decimal | None
    note: str | None = None
    #: local runs: how long it should take (domain/training_time.py), priced per GPU-hour
    time: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"tokens": self.tokens, "epochs": self.epochs, "epochs_source": self.epochs_source,
               "billed_tokens": self.tokens * self.epochs, "unit_price_per_1m": self.unit_price,
               "price_pattern": self.price_pattern, "total": self.total, "note": self.note}  # fmt: skip
        return out if self.time is None else out | {"time": self.time}


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    provider: str
    base_model: str
    model_name: str
    method: str
    hyperparameters: Hyperparameters
    training: TrainingSource
    validation: TrainingSource | None
    suffix: str | None
    seed: int | None
    metadata: dict[str, str]
    #: a local job's training configuration (domain/local_training.py), kept as its hyperparameters
    local_config: dict[str, Any] | None = None

    @classmethod
    def validate(
        cls,
        *,
        base_model: Any,
        training: TrainingSource,
        validation: TrainingSource | None = None,
        job_id: Any = None,
        provider: Any = "openai",
        model_name: Any = None,
        method: Any = "supervised",
        hyperparameters: dict[str, Any] | None = None,
        suffix: Any = None,
        seed: Any = None,
        metadata: Any = None,
        local_config: dict[str, Any] | None = None,
    ) -> JobSpec:
        if provider not in PROVIDERS:
            raise InvalidInput(f"Unknown provider {provider!r}: use {', '.join(PROVIDERS)}.")
        if not isinstance(base_model, str) or not base_model.strip():
            raise InvalidInput("base_model is required: the model to fine-tune, e.g. gpt-4o-mini-2024-07-18.")
        name_text("base_model", base_model)
        if method not in METHODS:
            raise InvalidInput(f"Unknown method {method!r}: use supervised or dpo.")
        if suffix is not None and (not isinstance(suffix, str) or not SUFFIX.fullmatch(suffix)):
            raise InvalidInput(f"Invalid suffix {suffix!r}: up to 64 letters, digits, '-' or '_' (OpenAI's rule).")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**31 - 1):
            raise InvalidInput(f"seed must be a whole number from 0 to 2147483647, got {seed!r}.")
        metadata = dict(metadata or {})
        if len(metadata) > 15 or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in metadata.items()
        ):
            raise InvalidInput("metadata takes up to 15 text pairs (keys up to 64 characters, values up to 512).")
        for key, value in metadata.items():
            name_text("metadata key", key, max_length=64)
            optional_name(f"metadata[{key!r}]", value, max_length=512)
        if JOB_METADATA_KEY in metadata:
            raise InvalidInput(f"metadata key {JOB_METADATA_KEY!r} is reserved: it names the job at the provider.")
        default_name = base_model.strip().replace(":", "-").rstrip("/").split("/")[-1]
        name = model_name if model_name is not None else (suffix or default_name)
        return cls(
            job_id=validate_job_id(job_id) if job_id is not None else new_job_id(),
            provider=provider,
            base_model=base_model.strip(),
            model_name=validate_model_name(name),
            method=method,
            hyperparameters=Hyperparameters.validate(method=method, **(hyperparameters or {})),
            training=training,
            validation=validation,
            suffix=suffix,
            seed=seed,
            metadata=metadata,
            local_config=local_config,
        )

    def hyperparameters_dict(self) -> dict[str, Any]:
        return self.local_config if self.local_config is not None else self.hyperparameters.as_dict()


# --------------------------------------------------------------- what a provider says


@dataclass(frozen=True)
class ProviderJob:
    """One reading of a job at the provider, in provider-neutral terms."""

    provider_job_id: str
    status: str
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    finished_at: int | None = None  # Unix seconds, as the provider gives them
    error: dict[str, Any] | None = None
    estimated_finish: int | None = None
    result_files: list[str] = field(default_factory=list)
    #: provider events not yet recorded here, oldest first
    new_events: list[dict[str, Any]] = field(default_factory=list)
