"""Fine-tuning jobs end to end: check and estimate, create, submit, sync, settle, cancel.

This is the one place where the event store meets the provider. Each step
records what happened as job events (domain/jobs.py) and is safe to repeat:
a job that was not submitted yet (the provider was down, or the reply was lost)
is submitted by the next sync; a reading that brings nothing new appends
nothing; settling a finished job (its registry version and training cost)
checks what is recorded before it records anything.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
import time
import zlib
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import ollama

from adapters import ollama as ollama_adapter
from adapters import tokens, unsloth
from adapters.database import PostgresDatabase
from adapters.local_jobs import LocalTrainer
from adapters.openai_jobs import OpenAIFineTuning, ProviderError
from adapters.paths import inside
from application.jobs import Jobs
from application.ledger import CostLedger
from application.registry import Registry
from domain.costs import training_job_id
from domain.errors import DomainError, InvalidInput, NotFound, RuleViolation
from domain.jobs import TERMINAL, CostEstimate, FineTuningJob, JobSpec, JobStatus, ProviderJob, TrainingSource
from domain.local_training import LocalTrainingConfig
from domain.registry import VersionStatus
from domain.shipped_prices import FINE_TUNABLE_SNAPSHOTS
from domain.training_files import check_training_file, estimate_cost
from domain.training_time import Calibration, estimate_training_time, hardware
from projections.database import Database
from projections.jobs import active_job_ids, get_job, latest_throughput

log = logging.getLogger(__name__)

POLLER = "ft-lifecycle/poller"
#: OpenAI's own API (the SDK's default base URL), where base model names are checked before a job is recorded
OPENAI_URL = "https://api.openai.com/v1"
#: tokens of local runs are counted with this encoding: the estimate's unit, calibrated by measured runs
LOCAL_COUNTING = "o200k_base"
#: Exporting a dataset split as the bytes to upload: (dataset id, split) -> (file bytes, dataset record)
Exporter = Callable[[str, str], tuple[bytes, dict[str, Any]]]


class ProviderRefused(RuleViolation):
    """The provider would not start the job (403 training_not_available). The job is recorded as refused."""

    slug = "training-not-available"
    title = "The provider refused to start fine-tuning"

    def __init__(self, detail: str, job_id: str) -> None:
        super().__init__(detail)
        self.job_id = job_id
        self.extra = {"job_id": job_id}  # the problem body names the job that was kept


@dataclass(frozen=True)
class Plan:
    """A validated job request with its files and estimate, before anything is recorded."""

    spec: JobSpec
    estimate: CostEstimate
    files: dict[str, bytes]
    #: problems the local checks found but were told to let through (skip_checks)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """What a create, sync or cancel did."""

    job: FineTuningJob
    appended: int = 0
    #: a transient provider problem: the job kept its state and will be retried
    pending: str | None = None
    notes: list[str] = field(default_factory=list)


#: a local base_model that names a folder rather than a model on the hub (as domain/local_training.py tells them)
LOCAL_PATH_PREFIXES = ("/", ".", "~")


def data_file(data_dir: Path, path: str, field: str, *, what: str = "file") -> Path:
    """A path a client gave, resolved inside the data folder; anything else is refused with one message,
    whether or not it exists, so a request tells nothing about the server's other files."""
    found = inside(data_dir, path)
    if found is None:
        example = "train.jsonl" if what == "file" else "models/base"
        raise InvalidInput(f"{field} must name a {what} under the data folder FT_DATA_DIR ({Path(data_dir).resolve()}):"
                           f" give a path relative to it, such as {example}, and put the {what} there.")  # fmt: skip
    return found


class JobService:
    def __init__(self, *, jobs: Jobs, registry: Registry, ledger: CostLedger, db: Database, export: Exporter,
                 provider: Callable[[], OpenAIFineTuning], local: LocalTrainer | None = None,
                 local_hardware: str = "CPU") -> None:  # fmt: skip
        self.jobs, self.registry, self.ledger, self.db = jobs, registry, ledger, db
        self.export = export
        self._provider_factory = provider
        self._provider: OpenAIFineTuning | None = None
        self.local = local or LocalTrainer()
        self.local_hardware = hardware(local_hardware).name

    @property
    def provider(self) -> OpenAIFineTuning:
        if self._provider is None:
            self._provider = self._provider_factory()
        return self._provider

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()

    # ------------------------------------------------------------------ plan

    def _source(self, role: str, *, dataset_id: str | None, split: str | None, path: str | None, base_model: str,
                method: str, skip_checks: bool, warnings: list[str], local: bool = False,
                data_dir: Path | None = None) -> tuple[TrainingSource, bytes]:  # fmt: skip
        if dataset_id is not None and path is not None:
            raise InvalidInput(f"Give the {role} data as a dataset or as a file, not both.")
        if dataset_id is not None:
            if method == "dpo":
                raise InvalidInput("DPO needs a file in OpenAI's preference format; datasets export supervised chat.")
            data, dataset = self.export(dataset_id, split or ("train" if role == "training" else "test"))
            source = dict(kind="dataset", dataset_id=dataset_id, split=split or ("train" if role == "training" else
                          "test"), content_hash=dataset["content_hash"])  # fmt: skip
        else:
            assert path is not None
            file = Path(path).expanduser() if data_dir is None else data_file(data_dir, path, f"{role}_file")
            if not file.is_file():
                raise InvalidInput(f"The {role} file {path!r} does not exist (or is not a file): give a JSONL file.")
            data = file.read_bytes()
            source = dict(kind="file", path=str(file.resolve()))
        encoding = tokens.get_encoding(LOCAL_COUNTING if local else tokens.encoding_name_for(base_model))
        check = check_training_file(data, base_model=base_model, method=method,
                                    count=lambda m: tokens.count_chat(m, encoding))  # fmt: skip
        minimum_applies = role == "training" and not local  # OpenAI's minimum of 10 examples
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

    def plan(self, *, base_model: Any, training_file: str | None = None, dataset_id: str | None = None,
             split: str | None = None, validation_file: str | None = None, validation_dataset: str | None = None,
             validation_split: str | None = None, method: Any = "supervised", hyperparameters: dict[str, Any] | None
             = None, skip_checks: bool = False, provider: str = "openai", training_config: dict[str, Any] | None
             = None, data_dir: Path | None = None, **fields: Any) -> Plan:  # fmt: skip
        """Validates a job request and its files against OpenAI's rules and estimates its cost; records nothing.
        With `data_dir` (a request over HTTP), the files and a local base_model folder must lie inside it;
        without (the CLI, which runs as the user), any file the user can read is taken."""
        if not isinstance(base_model, str) or not base_model.strip():
            raise InvalidInput("base_model is required: the model to fine-tune, e.g. gpt-4o-mini-2024-07-18.")
        if training_file is None and dataset_id is None:
            raise InvalidInput("Give the training data: a dataset id (--dataset) or a JSONL file (TRAINING_FILE).")
        if provider == "local":
            return self._plan_local(base_model, training_file=training_file, dataset_id=dataset_id, split=split,
                                    training_config=training_config or {}, skip_checks=skip_checks, method=method,
                                    data_dir=data_dir, **fields)  # fmt: skip
        self._check_fine_tunable(base_model)
        # validate the cheap fields first, on a placeholder source
        JobSpec.validate(base_model=base_model, training=TrainingSource("file"), method=method,
                         hyperparameters=hyperparameters, **fields)  # fmt: skip
        warnings: list[str] = []
        training, train_bytes = self._source("training", dataset_id=dataset_id, split=split, path=training_file,
                                             base_model=base_model, method=method, skip_checks=skip_checks,
                                             warnings=warnings, data_dir=data_dir)  # fmt: skip
        files = {"training": train_bytes}
        validation = None
        if validation_file is not None or validation_dataset is not None:
            validation, files["validation"] = self._source(
                "validation", dataset_id=validation_dataset, split=validation_split, path=validation_file,
                base_model=base_model, method=method, skip_checks=skip_checks, warnings=warnings, data_dir=data_dir,
            )  # fmt: skip
        spec = JobSpec.validate(base_model=base_model, training=training, validation=validation, method=method,
                                hyperparameters=hyperparameters, **fields)  # fmt: skip
        price = self.ledger.price_for(spec.base_model, datetime.now(UTC))
        estimate = estimate_cost(training.tokens, training.examples, spec.hyperparameters.n_epochs, price)
        return Plan(spec, estimate, files, warnings)

    def _check_fine_tunable(self, base_model: str) -> None:
        """OpenAI itself takes only its dated snapshots (and `ft:` models, to train further): refuse other
        names before anything is recorded. Azure and compatible providers at another base URL have their own
        names, so they decide there."""
        settings = self.provider.settings
        if settings.azure_endpoint or (settings.base_url or OPENAI_URL).rstrip("/") != OPENAI_URL:
            return
        if base_model.startswith("ft:") or base_model in FINE_TUNABLE_SNAPSHOTS:
            return
        dated = re.compile(re.escape(base_model) + r"-\d{4}(-\d\d-\d\d)?")  # gpt-4o-mini -> gpt-4o-mini-2024-07-18
        dated = [s for s in FINE_TUNABLE_SNAPSHOTS if re.fullmatch(dated, s)]
        use = f"use {dated[0]}" if dated else "use one of " + ", ".join(FINE_TUNABLE_SNAPSHOTS)
        raise InvalidInput(f"{base_model} is not a fine-tunable snapshot at OpenAI: {use} (or an ft: model to "
                           "train it further).")

    def _plan_local(
        self, base_model: str, *, training_file: str | None, dataset_id: str | None, split: str | None,
        training_config: dict[str, Any], skip_checks: bool, method: Any, data_dir: Path | None = None,
        **fields: Any,
    ) -> Plan:  # fmt: skip
        if method != "supervised":
            raise InvalidInput("Local jobs train supervised (SFT) only.")
        if data_dir is not None and base_model.startswith(LOCAL_PATH_PREFIXES):
            # a folder the training script would load: inside the data folder, given to the script resolved
            base_model = str(data_file(data_dir, base_model, "base_model", what="folder"))
        config = LocalTrainingConfig.validate(base_model=base_model, **training_config)
        warnings: list[str] = []
        training, data = self._source("training", dataset_id=dataset_id, split=split, path=training_file,
                                      base_model=base_model, method="supervised", skip_checks=skip_checks,
                                      warnings=warnings, local=True, data_dir=data_dir)  # fmt: skip
        spec = JobSpec.validate(base_model=base_model, training=training, provider="local",
                                local_config=config.as_dict(), **fields)  # fmt: skip
        self.local.files(spec.job_id)  # a job id that is no folder inside the runs folder: refused before recording
        self.local.check_packages()
        return Plan(spec, self.estimate_local(config, training.tokens, training.examples), {"training": data},
                    warnings)  # fmt: skip

    def estimate_local(self, config: LocalTrainingConfig, tokens_per_epoch: int, examples: int) -> CostEstimate:
        """Time from FLOPs or from the last run of this model on this hardware; cost per GPU-hour, or 0."""
        epochs = config.epochs or self._epochs_for_steps(config, examples)
        parameters = unsloth.parameter_count(config.base_model)
        measured = latest_throughput(self.db, config.base_model, self.local_hardware)
        calibration = None if measured is None else Calibration(measured["counted_tokens"],
                                                                measured["train_seconds"], measured["wall_seconds"])
        time = None
        if parameters is not None or calibration is not None:
            time = estimate_training_time(parameters=parameters or 1, tokens=tokens_per_epoch, epochs=epochs,
                                          hardware_name=self.local_hardware, cores=os.cpu_count() or 1,
                                          calibration=calibration).as_dict() | {"parameters": parameters}  # fmt: skip
        price = self.ledger.price_for(config.base_model, datetime.now(UTC))
        hourly = price.gpu_hour if price is not None else None
        hours = None if time is None else Decimal(str(time["seconds"])) / 3600
        total = Decimal(0) if hourly is None else (None if hours is None else hours * hourly)
        note = ("no GPU-hour price for this model: local training counts as free (set one with `ft-cli prices set "
                "MODEL --gpu-hour X`)" if hourly is None else None)  # fmt: skip
        return CostEstimate(tokens_per_epoch, max(1, math.ceil(epochs)), "given", hourly,
                            None if price is None else price.pattern, total, note, time)  # fmt: skip

    @staticmethod
    def _epochs_for_steps(config: LocalTrainingConfig, examples: int) -> float:
        per_step = config.batch_size * config.gradient_accumulation
        return (config.max_steps or 0) * per_step / max(1, examples)

    # ---------------------------------------------------------------- create

    def create(self, plan: Plan, *, actor: str, reason: str | None = None) -> Outcome:
        if plan.spec.provider == "openai" and not self.provider.settings.configured:  # refuse before recording
            raise RuleViolation(self.provider.settings.missing_key_message())
        created = self.jobs.create(plan.spec, plan.estimate, actor=actor, reason=reason)
        outcome = Outcome(created.job, 1, notes=[f"not checked: {w}" for w in plan.warnings])
        self._settle(plan.spec.job_id, actor, outcome)  # pre-registers the TRAINING version
        self._submit(plan.spec.job_id, actor, outcome, plan.files)
        self._settle(plan.spec.job_id, actor, outcome)
        if outcome.job.job_status is JobStatus.REFUSED:
            raise ProviderRefused(outcome.job.error["message"] if outcome.job.error else "refused", plan.spec.job_id)
        return outcome

    def _files_for(self, job: FineTuningJob, role: str) -> bytes:
        """The bytes of a source again, for a retried upload: they must be the bytes that were checked."""
        source = job.training if role == "training" else job.validation
        assert source is not None
        if source["kind"] == "dataset":
            data, _ = self.export(source["dataset_id"], source["split"])
        else:
            path = Path(source["path"])
            if not path.is_file():
                raise RuleViolation(f"The {role} file {source['path']} is gone; it is needed to submit job "
                                    f"{job.job_id!r}. Put it back, or cancel the job.")  # fmt: skip
            data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != source["sha256"]:
            raise RuleViolation(f"The {role} data of job {job.job_id!r} changed since it was checked; cancel the job "
                                "and create a new one.")  # fmt: skip
        return data

    def _submit(self, job_id: str, actor: str, outcome: Outcome, files: dict[str, bytes] | None = None) -> None:
        """Uploads what is missing and creates the job at the provider, once."""
        lock = (self.db.advisory_lock(zlib.crc32(("job:" + job_id).encode()))
                if isinstance(self.db, PostgresDatabase) else nullcontext())  # fmt: skip
        with lock:
            job = outcome.job = self.jobs.load(job_id)
            if job.submitted or job.finished:
                return
            if job.provider == "local":
                return self._start_local(job, actor, outcome, files)
            try:
                for role, source in (("training", job.training), ("validation", job.validation)):
                    if source is None or role in job.files:
                        continue
                    data = (files or {}).get(role) or self._files_for(job, role)
                    name = f"{job_id}-{role}.jsonl"
                    uploaded = self.provider.upload(name, data) | {"role": role, "name": name, "size": len(data)}
                    self._change(job_id, outcome, lambda j, u=uploaded: j.record_upload(
                        u["role"], u["id"], u["name"], u["size"], actor=actor), what="Recording an upload")  # fmt: skip
                job = outcome.job
                # A create whose reply was lost left a job at the provider: find it before creating another.
                reading = self.provider.find_job(job_id) or self.provider.create_job(
                    job_id=job_id, model=job.base_model, training_file=job.files["training"],
                    validation_file=job.files.get("validation"), suffix=job.suffix, seed=job.seed,
                    metadata=job.metadata, method=job.method, hyperparameters=job.hyperparameters,
                )  # fmt: skip
                self._change(job_id, outcome, lambda j: j.record_submission(reading.provider_job_id, reading.status,
                             actor=actor), what="Recording the submission")  # fmt: skip
            except ProviderError as e:
                self._provider_failed(job_id, actor, outcome, e)
            except RuleViolation as gone:  # the file is gone or changed: the job cannot go on
                detail = gone.detail
                self._change(job_id, outcome, lambda j: j.fail_locally("training_file_unavailable", detail,
                             actor=actor), what="Recording the failure")  # fmt: skip

    def _start_local(self, job: FineTuningJob, actor: str, outcome: Outcome, files: dict[str, bytes] | None) -> None:
        try:
            data = (files or {}).get("training") or self._files_for(job, "training")
            reading = self.local.start(job.job_id, LocalTrainingConfig.validate(**job.hyperparameters), data)
        except (DomainError, OSError) as e:
            detail = e.detail if isinstance(e, DomainError) else f"the training process could not start: {e}"
            self._change(job.job_id, outcome, lambda j: j.fail_locally("start_failed", detail, actor=actor),
                         what="Recording the failure")  # fmt: skip
            return
        self._change(job.job_id, outcome, lambda j: j.record_submission(reading.provider_job_id, reading.status,
                     actor=actor), what="Recording the start")  # fmt: skip

    def _read(self, job: FineTuningJob) -> ProviderJob:
        if job.provider == "local":
            return self.local.read(job.job_id, job.provider_job_id or "", job.seen_events)
        return self.provider.read(job.provider_job_id or "", job.seen_events)

    def _provider_failed(self, job_id: str, actor: str, outcome: Outcome, e: ProviderError) -> None:
        if e.kind in ("transient", "auth"):
            outcome.pending = e.message  # the job keeps its state; the next sync retries
        elif e.kind == "refused":
            self._change(job_id, outcome, lambda j: j.refuse(e.code, e.message, e.status, actor=actor),
                         what="Recording the refusal")  # fmt: skip
        else:
            self._change(job_id, outcome, lambda j: j.fail_locally(e.code or "rejected", e.message, actor=actor),
                         what="Recording the failure")  # fmt: skip

    def _change(self, job_id: str, outcome: Outcome, command: Callable[[FineTuningJob], Any], *, what: str) -> None:
        _, changed = self.jobs.change(job_id, command, what=what)
        outcome.job = changed.job
        outcome.appended += changed.appended

    # ------------------------------------------------------------------ sync

    def sync(self, job_id: str, *, actor: str) -> Outcome:
        """Brings a job up to date with its provider; appends only what is new."""
        job = self.jobs.load(self.resolve(job_id))
        outcome = Outcome(job)
        if not job.finished:
            if not job.submitted:
                self._submit(job.job_id, actor, outcome)
            else:
                try:
                    reading = self._read(job)
                except ProviderError as e:
                    self._provider_failed(job.job_id, actor, outcome, e)
                else:
                    self._change(job.job_id, outcome, lambda j: j.sync(reading, actor=actor),
                                 what=f"Syncing job {job.job_id!r}")  # fmt: skip
        self._settle(job.job_id, actor, outcome)
        return outcome

    def cancel(self, job_id: str, *, actor: str, reason: str | None = None) -> Outcome:
        job = self.jobs.load(self.resolve(job_id))
        job.check_cancellable()
        outcome = Outcome(job)
        if not job.submitted:
            self._change(job.job_id, outcome, lambda j: j.cancel_unsubmitted(actor=actor, reason=reason),
                         what=f"Cancelling job {job.job_id!r}")  # fmt: skip
        elif job.provider == "local":
            self.local.cancel(job.provider_job_id or "")  # ends the run's whole process group
            # The log only: whether the process is still alive does not matter any more (and checking would
            # reap its exit status, which is the parent's to read).
            fresh = self.local.new_events(job.job_id, job.seen_events)
            stopped = ProviderJob(job.provider_job_id or "", JobStatus.CANCELLED.value, new_events=fresh)
            self._change(job.job_id, outcome, lambda j: j.sync(stopped, actor=actor, reason=reason),
                         what=f"Cancelling job {job.job_id!r}")  # fmt: skip
        else:
            try:
                self.provider.cancel(job.provider_job_id or "")
            except ProviderError as e:
                if e.kind != "rejected":  # rejected: it finished meanwhile, and the reading below says how
                    raise RuleViolation(f"Job {job.job_id!r} could not be cancelled: {e.message}") from None
            reading = self._read_or_raise(job)
            self._change(job.job_id, outcome, lambda j: j.sync(reading, actor=actor, reason=reason),
                         what=f"Cancelling job {job.job_id!r}")  # fmt: skip
        self._settle(job.job_id, actor, outcome)
        return outcome

    def _read_or_raise(self, job: FineTuningJob) -> Any:
        try:
            return self._read(job)
        except ProviderError as e:
            raise RuleViolation(f"Job {job.job_id!r}: {e.message}") from None

    def delete_model(self, fine_tuned_model: str, *, actor: str, reason: str | None = None,
                     job_id: str | None = None) -> Outcome | None:  # fmt: skip
        """Deletes a fine-tuned model at the provider; the job that made it records the deletion."""
        if not isinstance(fine_tuned_model, str) or not fine_tuned_model.startswith("ft:"):
            raise InvalidInput(f"{fine_tuned_model!r} is not a fine-tuned model id (they start with 'ft:').")
        try:
            self.provider.delete_model(fine_tuned_model)
        except ProviderError as e:
            if e.kind == "not_found":
                raise NotFound(f"The provider has no model {fine_tuned_model!r}: {e.message}") from None
            raise RuleViolation(f"Deleting {fine_tuned_model!r} failed: {e.message}") from None
        if job_id is None:
            return None
        outcome = Outcome(self.jobs.load(job_id))
        self._change(job_id, outcome, lambda j: j.record_model_deleted(actor=actor, reason=reason),
                     what="Recording the deletion")  # fmt: skip
        return outcome

    def publish_to_ollama(self, job_id: str, name: str, *, actor: str, host: str | None = None,
                          api_key: str | None = None, system: str | None = None,
                          base: str | None = None) -> Outcome:  # fmt: skip
        """Uploads a local run's export to Ollama (blobs by digest, then create) and records where it is.
        `host` is the caller's choice: over HTTP a configured endpoint's URL, whose own key `api_key` is."""
        job = self.jobs.load(self.resolve(job_id))
        job.check_publishable()
        config = LocalTrainingConfig.validate(**job.hyperparameters)
        export = ollama_adapter.Export.find(job.fine_tuned_model or "", config.export)
        if host is None:  # no endpoint chosen: the `ollama` package's own defaults
            host, api_key = os.environ.get("OLLAMA_HOST") or "http://127.0.0.1:11434", os.environ.get("OLLAMA_API_KEY")
        client = ollama_adapter.client(host, api_key)
        try:
            published = ollama_adapter.publish(client, name, export, config.chat_template, system=system, base=base)
        except ollama.ResponseError as e:
            raise RuleViolation(f"Ollama at {host} refused to create {name!r}: {e.error}.") from None
        except (ConnectionError, OSError, httpx.HTTPError) as e:
            raise RuleViolation(f"Ollama is not reachable at {host} ({type(e).__name__}): start it (`ollama serve`) "
                                "or give its address with --host / OLLAMA_HOST.") from None  # fmt: skip
        outcome = Outcome(job)
        family = ollama_adapter.family_of(config.chat_template)
        self._change(job.job_id, outcome, lambda j: j.record_published(name, host, family, published.digests,
                     actor=actor), what="Recording the publication")  # fmt: skip
        return outcome

    def resolve(self, job_id: str) -> str:
        """Our job id for our id or the provider's (ftjob-...)."""
        if job_id.startswith("ftjob-"):
            found = get_job(self.db, job_id)
            if found is None:
                raise NotFound(f"No job here was submitted as {job_id!r}: list jobs with `ft-cli list-jobs`.")
            return str(found["job_id"])
        return job_id

    # ---------------------------------------------------------------- settle

    def _settle(self, job_id: str, actor: str, outcome: Outcome) -> None:
        """The registry version and the training cost follow the job's state (each done once)."""
        job = self.jobs.load(job_id)
        if job.registry_version is None:
            registered = self.registry.register_version(
                job.model_name, base_model=job.base_model, job_id=job.job_id, dataset_size=job.training["examples"],
                training=True, actor=actor, reason=f"pre-registered for fine-tuning job {job.job_id}",
            )  # fmt: skip
            self._change(job_id, outcome, lambda j: j.link_version(registered.number, actor=actor),
                         what="Linking the registry version")  # fmt: skip
            job = outcome.job
        assert job.registry_version is not None
        status = self.registry.load(job.model_name).status_of(job.registry_version)
        if job.job_status is JobStatus.SUCCEEDED:
            if status is VersionStatus.TRAINING:
                self.registry.set_status(job.model_name, job.registry_version, VersionStatus.READY, actor=actor,
                                         reason=f"fine-tuning job {job.job_id} succeeded: {job.fine_tuned_model}")
            self._record_cost(job, actor, outcome)
        elif job.job_status in TERMINAL and status is VersionStatus.TRAINING:
            why = job.error["message"] if job.error else "cancelled"
            self.registry.set_status(job.model_name, job.registry_version, VersionStatus.FAILED, actor=actor,
                                     reason=f"fine-tuning job {job.job_id} {job.status}: {why}"[:2000])
        outcome.job = job

    def _record_cost(self, job: FineTuningJob, actor: str, outcome: Outcome) -> None:
        if job.provider == "local":
            self._record_throughput(job, actor, outcome)
        if training_job_id(job.job_id) in self.ledger.repository:
            return
        finished = self._finished_at(job)
        common = {"at": finished, "job_id": job.job_id, "model_name": job.model_name, "base_model": job.base_model,
                  "dataset_size": job.training["examples"], "training_tokens": job.trained_tokens or 0}  # fmt: skip
        try:
            if job.provider == "local":
                # a millisecond is 2.8e-7 hours: 9 places keep it, within the ledger's decimal limit
                hours = (Decimal(str(round(self._wall_seconds(job), 3))) / 3600).quantize(Decimal("1e-9"))
                price = self.ledger.price_for(job.base_model, finished)
                free = price is None or price.gpu_hour is None  # no price for local hardware: it counts as free
                self.ledger.record_training_cost(
                    actor=actor, reason=f"local job {job.job_id}: {hours:.6f} GPU-hours", training_hours=hours,
                    total_cost=Decimal(0) if free else None, **common,
                )  # fmt: skip
                return
            self.ledger.record_training_cost(
                actor=actor, reason=f"fine-tuning job {job.job_id}: {job.trained_tokens} trained tokens",
                epochs=job.hyperparameters.get("n_epochs"), **common,
            )  # fmt: skip
        except DomainError as e:
            if "already recorded" not in e.detail:
                outcome.notes.append(f"The training cost is not recorded yet: {e.detail}")

    def _wall_seconds(self, job: FineTuningJob) -> float:
        """From the process's start (the Submitted event) to the run's `finished` line."""
        started = next(e for e in self.jobs.history(job.job_id) if isinstance(e, FineTuningJob.Submitted))
        finished = self.local.run_facts(job.job_id).get("finished_at") or time.time()
        return max(0.0, float(finished) - started.timestamp.timestamp())

    def _record_throughput(self, job: FineTuningJob, actor: str, outcome: Outcome) -> None:
        if job.throughput_recorded:
            return
        facts = self.local.run_facts(job.job_id)
        if facts.get("train_runtime") is None:
            return
        epochs_done = float(facts.get("epoch") or 0) or self._last_epoch(job)
        device = str(facts.get("device") or "CPU")
        measured = {"hardware": self._hardware_of(device), "device": device, "backend": facts.get("backend"),
                    "parameters": facts.get("parameters"),
                    "counted_tokens": int(job.training["tokens"] * epochs_done),
                    "train_seconds": float(facts["train_runtime"]), "wall_seconds": self._wall_seconds(job)}
        self._change(job.job_id, outcome, lambda j: j.record_throughput(actor=actor, **measured),
                     what="Recording the measured throughput")  # fmt: skip

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
        return self.local_hardware if device == "CPU" else device

    def _finished_at(self, job: FineTuningJob) -> datetime:
        for event in reversed(self.jobs.history(job.job_id)):
            if isinstance(event, FineTuningJob.Succeeded) and event.finished_at:
                return datetime.fromtimestamp(event.finished_at, UTC)
        return datetime.now(UTC)


class JobPoller:
    """Keeps unfinished jobs current in the background, backing off per job on provider trouble."""

    def __init__(self, service: JobService, db: Database, *, interval: float = 5.0, max_backoff: float = 300.0):
        self.service, self.db = service, db
        self.interval, self.max_backoff = interval, max_backoff
        self._due: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="job-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=30)
            self._thread = None

    def poll_once(self) -> None:
        now = time.monotonic()
        for job_id in active_job_ids(self.db):
            if self._stop.is_set():
                return
            if self._due.get(job_id, 0) > now:
                continue
            try:
                outcome = self.service.sync(job_id, actor=POLLER)
            except DomainError as e:
                log.warning("job %s: %s", job_id, e.detail)
                outcome = None
            except Exception:  # a bug must not stop the poller for every other job
                log.exception("job %s: sync failed", job_id)
                outcome = None
            if outcome is None or outcome.pending:
                self._backoff[job_id] = min(self.max_backoff, self._backoff.get(job_id, self.interval / 2) * 2)
            else:
                self._backoff.pop(job_id, None)
            self._due[job_id] = now + self._backoff.get(job_id, self.interval)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll_once()
