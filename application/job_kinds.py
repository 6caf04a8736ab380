"""How a job is planned and costed, per kind of training: hosted (a provider's API, priced per
trained token) and local (a run on this machine's hardware, priced per GPU-hour and timed from
measured throughput).

The job service (application/job_runs.py) picks the kind a job's provider names and never
branches on it. Planning validates a request and its data and estimates its cost; it records
nothing. Costing runs once a job has succeeded.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from application.jobs import Jobs
from application.ledger import CostLedger
from domain.errors import InvalidInput
from domain.job_specs import CostEstimate, JobSpec, TrainingSource
from domain.jobs import FineTuningJob
from domain.local_training import LocalTrainingConfig
from domain.training_files import check_training_file, estimate_cost
from domain.training_provider import TrainingProvider
from domain.training_time import Calibration, estimate_training_time, hardware
from projections.database import Database
from projections.jobs import latest_throughput

#: tokens of local runs are counted with this encoding: the estimate's unit, calibrated by measured runs
LOCAL_COUNTING = "o200k_base"
#: a local base_model that names a folder rather than a model on the hub (as domain/local_training.py tells them)
LOCAL_PATH_PREFIXES = ("/", ".", "~")
#: Exporting a dataset split as the bytes to upload: (dataset id, split) -> (file bytes, dataset record)
Exporter = Callable[[str, str], tuple[bytes, dict[str, Any]]]
#: A path a client gave, for a field, naming a "file" or a "folder" -> the path to open (or InvalidInput)
FileResolver = Callable[[str, str, str], Path]


class TokenCounting(Protocol):
    """Exact chat token counts (adapters/tokens.py)."""

    def encoding_for(self, model: str) -> str: ...

    def counter(self, encoding: str) -> Callable[[Any], int]: ...


@dataclass(frozen=True)
class Plan:
    """A validated job request with its files and estimate, before anything is recorded."""

    spec: JobSpec
    estimate: CostEstimate
    files: dict[str, bytes]
    #: problems the local checks found but were told to let through (skip_checks)
    warnings: list[str] = field(default_factory=list)


def as_given(path: str, field: str, what: str) -> Path:
    """The CLI's resolver: it runs as the user, so any file the user can read is taken."""
    return Path(path).expanduser()


@dataclass(frozen=True)
class JobRequest:
    """A job as a client asked for it, before any check: the data, the training settings, and the spec's
    other fields (job id, model name, suffix, seed, metadata) in `fields`."""

    base_model: str
    training_file: str | None = None
    dataset_id: str | None = None
    split: str | None = None
    validation_file: str | None = None
    validation_dataset: str | None = None
    validation_split: str | None = None
    method: Any = "supervised"
    hyperparameters: dict[str, Any] | None = None
    training_config: dict[str, Any] | None = None
    skip_checks: bool = False
    resolve: FileResolver = as_given
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingData:
    """Reads and checks a job's data, from a dataset split or a file, against OpenAI's file rules."""

    export: Exporter
    tokens: TokenCounting

    def source(self, role: str, *, dataset_id: str | None, split: str | None, path: str | None, base_model: str,
               method: str, skip_checks: bool, warnings: list[str], encoding: str, minimum_applies: bool,
               resolve: FileResolver) -> tuple[TrainingSource, bytes]:  # fmt: skip
        if dataset_id is not None and path is not None:
            raise InvalidInput(f"Give the {role} data as a dataset or as a file, not both.")
        if dataset_id is not None:
            if method == "dpo":
                raise InvalidInput("DPO needs a file in OpenAI's preference format; datasets export supervised chat.")
            split = split or ("train" if role == "training" else "test")
            data, dataset = self.export(dataset_id, split)
            source = dict(kind="dataset", dataset_id=dataset_id, split=split, content_hash=dataset["content_hash"])
        else:
            assert path is not None
            file = resolve(path, f"{role}_file", "file")
            if not file.is_file():
                raise InvalidInput(f"The {role} file {path!r} does not exist (or is not a file): give a JSONL file.")
            data = file.read_bytes()
            source = dict(kind="file", path=str(file.resolve()))
        count = self.tokens.counter(encoding)
        check = check_training_file(data, base_model=base_model, method=method, count=count)
        minimum_applies = minimum_applies and role == "training"  # OpenAI's minimum of 10 examples
        problems = [p for p in check.problems if minimum_applies or not p.startswith("it has")]
        where = f"dataset {dataset_id!r} ({source['split']})" if dataset_id else f"file {path!r}"
        if problems and skip_checks:
            warnings += [f"{role} {where}: {p}" for p in problems]
        elif problems:
            raise InvalidInput(f"The {role} {where} breaks OpenAI's fine-tuning rules: " + "; ".join(problems[:10])
                               + (f"; and {len(problems) - 10} more." if len(problems) > 10 else ".")
                               + " Fix the file, or skip the local checks (skip_checks, --skip-checks) for formats "
                               "they do not know, such as images or tool calls.")  # fmt: skip
        return TrainingSource(**source, sha256=check.sha256, examples=check.examples, tokens=check.tokens,
                              checked=not skip_checks), data  # fmt: skip


class JobKind(Protocol):
    """Planning and costing for one kind of training."""

    provider: TrainingProvider

    def plan(self, r: JobRequest) -> Plan: ...

    def training_cost(self, job: FineTuningJob, finished: datetime) -> dict[str, Any]:
        """The ledger fields of a succeeded job's training cost, beyond what every job gives."""
        ...

    def throughput(self, job: FineTuningJob) -> dict[str, Any] | None:
        """What a run measured of its speed, to calibrate the next estimate; None when there is nothing."""
        ...


@dataclass
class HostedTraining:
    """A provider's fine-tuning API: OpenAI's rules for files and hyperparameters, priced per trained token."""

    provider: TrainingProvider
    data: TrainingData
    ledger: CostLedger

    def plan(self, r: JobRequest) -> Plan:
        self.provider.check_base_model(r.base_model)
        # validate the cheap fields first, on a placeholder source
        JobSpec.validate(base_model=r.base_model, training=TrainingSource("file"), method=r.method,
                         hyperparameters=r.hyperparameters, provider=self.provider.name, **r.fields)  # fmt: skip
        warnings: list[str] = []
        common = dict(base_model=r.base_model, method=r.method, skip_checks=r.skip_checks, warnings=warnings,
                      encoding=self.data.tokens.encoding_for(r.base_model), resolve=r.resolve,
                      minimum_applies=self.provider.minimum_examples_apply)  # fmt: skip
        training, train_bytes = self.data.source("training", dataset_id=r.dataset_id, split=r.split,
                                                 path=r.training_file, **common)  # fmt: skip
        files = {"training": train_bytes}
        validation = None
        if r.validation_file is not None or r.validation_dataset is not None:
            validation, files["validation"] = self.data.source(
                "validation", dataset_id=r.validation_dataset, split=r.validation_split, path=r.validation_file,
                **common,
            )  # fmt: skip
        spec = JobSpec.validate(base_model=r.base_model, training=training, validation=validation, method=r.method,
                                hyperparameters=r.hyperparameters, provider=self.provider.name, **r.fields)  # fmt: skip
        self.provider.check_runnable(spec)
        price = self.ledger.price_for(spec.base_model, datetime.now(UTC))
        estimate = estimate_cost(training.tokens, training.examples, spec.hyperparameters.n_epochs, price)
        return Plan(spec, estimate, files, warnings)

    def training_cost(self, job: FineTuningJob, finished: datetime) -> dict[str, Any]:
        # priced from the catalog at the job's time, by the tokens the provider trained
        return {"reason": f"fine-tuning job {job.job_id}: {job.trained_tokens} trained tokens",
                "epochs": job.hyperparameters.get("n_epochs")}  # fmt: skip

    def throughput(self, job: FineTuningJob) -> dict[str, Any] | None:
        return None  # the provider's hardware is not ours to calibrate


@dataclass
class LocalTraining:
    """A run on this machine: supervised only, timed from FLOPs or from the last measured run of the same
    model on the same hardware, priced per GPU-hour (free without a price)."""

    provider: TrainingProvider
    data: TrainingData
    ledger: CostLedger
    jobs: Jobs
    db: Database
    #: the hardware estimates assume (FT_LOCAL_HARDWARE), by its name in domain/training_time.py
    hardware_name: str = "CPU"

    def __post_init__(self) -> None:
        self.hardware_name = hardware(self.hardware_name).name

    def plan(self, r: JobRequest) -> Plan:
        if r.method != "supervised":
            raise InvalidInput("Local jobs train supervised (SFT) only.")
        base_model = r.base_model
        if base_model.startswith(LOCAL_PATH_PREFIXES):
            # a folder the training script would load: over HTTP inside the data folder, given to the script resolved
            base_model = str(r.resolve(base_model, "base_model", "folder"))
        config = LocalTrainingConfig.validate(base_model=base_model, **(r.training_config or {}))
        warnings: list[str] = []
        training, data = self.data.source("training", dataset_id=r.dataset_id, split=r.split, path=r.training_file,
                                          base_model=base_model, method="supervised", skip_checks=r.skip_checks,
                                          warnings=warnings, encoding=LOCAL_COUNTING, resolve=r.resolve,
                                          minimum_applies=self.provider.minimum_examples_apply)  # fmt: skip
        spec = JobSpec.validate(base_model=base_model, training=training, provider=self.provider.name,
                                local_config=config.as_dict(), **r.fields)  # fmt: skip
        self.provider.check_runnable(spec)
        return Plan(spec, self.estimate(config, training.tokens, training.examples), {"training": data}, warnings)

    def estimate(self, config: LocalTrainingConfig, tokens_per_epoch: int, examples: int) -> CostEstimate:
        """Time from FLOPs or from the last run of this model on this hardware; cost per GPU-hour, or 0."""
        epochs = config.epochs or self._epochs_for_steps(config, examples)
        parameters = self.provider.parameter_count(config.base_model)
        measured = latest_throughput(self.db, config.base_model, self.hardware_name)
        calibration = None if measured is None else Calibration(measured["counted_tokens"],
                                                                measured["train_seconds"], measured["wall_seconds"])
        timing = None
        if parameters is not None or calibration is not None:
            timing = estimate_training_time(parameters=parameters or 1, tokens=tokens_per_epoch, epochs=epochs,
                                            hardware_name=self.hardware_name, cores=os.cpu_count() or 1,
                                            calibration=calibration).as_dict() | {"parameters": parameters}  # fmt: skip
        price = self.ledger.price_for(config.base_model, datetime.now(UTC))
        hourly = price.gpu_hour if price is not None else None
        hours = None if timing is None else Decimal(str(timing["seconds"])) / 3600
        total = Decimal(0) if hourly is None else (None if hours is None else hours * hourly)
        note = ("no GPU-hour price for this model: local training counts as free (set one with `ft-cli prices set "
                "MODEL --gpu-hour X`)" if hourly is None else None)  # fmt: skip
        return CostEstimate(tokens_per_epoch, max(1, math.ceil(epochs)), "given", hourly,
                            None if price is None else price.pattern, total, note, timing)  # fmt: skip

    @staticmethod
    def _epochs_for_steps(config: LocalTrainingConfig, examples: int) -> float:
        per_step = config.batch_size * config.gradient_accumulation
        return (config.max_steps or 0) * per_step / max(1, examples)

    def training_cost(self, job: FineTuningJob, finished: datetime) -> dict[str, Any]:
        # a millisecond is 2.8e-7 hours: 9 places keep it, within the ledger's decimal limit
        wall = self._wall_seconds(job, self.provider.run_facts(job))
        hours = (Decimal(str(round(wall, 3))) / 3600).quantize(Decimal("1e-9"))
        price = self.ledger.price_for(job.base_model, finished)
        free = price is None or price.gpu_hour is None  # no price for local hardware: it counts as free
        return {"reason": f"local job {job.job_id}: {hours:.6f} GPU-hours", "training_hours": hours,
                "total_cost": Decimal(0) if free else None}  # fmt: skip

    def throughput(self, job: FineTuningJob) -> dict[str, Any] | None:
        facts = self.provider.run_facts(job)
        if facts.get("train_runtime") is None:
            return None
        epochs_done = float(facts.get("epoch") or 0) or self._last_epoch(job)
        device = str(facts.get("device") or "CPU")
        return {"hardware": self._hardware_of(device), "device": device, "backend": facts.get("backend"),
                "parameters": facts.get("parameters"), "counted_tokens": int(job.training["tokens"] * epochs_done),
                "train_seconds": float(facts["train_runtime"]),
                "wall_seconds": self._wall_seconds(job, facts)}  # fmt: skip

    def _wall_seconds(self, job: FineTuningJob, facts: dict[str, Any]) -> float:
        """From the process's start (the Submitted event) to the run's `finished` line (in its `facts`)."""
        started = next(e for e in self.jobs.history(job.job_id) if isinstance(e, FineTuningJob.Submitted))
        finished = facts.get("finished_at") or time.time()
        return max(0.0, float(finished) - started.timestamp.timestamp())

    def _last_epoch(self, job: FineTuningJob) -> float:
        for event in reversed(self.jobs.history(job.job_id)):
            metrics = getattr(event, "metrics", None)
            if metrics and metrics.get("epoch") is not None:
                return float(metrics["epoch"])
        return float(job.hyperparameters.get("epochs") or 1)

    def _hardware_of(self, device: str) -> str:
        for name in ("H100", "A100", "A10", "V100", "T4", "RTX 4090"):
            if name in device:
                return name
        return self.hardware_name if device == "CPU" else device
