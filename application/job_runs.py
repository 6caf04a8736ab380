"""Fine-tuning jobs end to end: plan, create, submit, sync, settle, cancel, publish.

This process manager is where the event store meets the training providers (the port in
domain/training_provider.py). Each step records what happened as job events
(domain/jobs.py) and is safe to repeat: a job that was not submitted yet (the provider
was down, or the reply was lost) is submitted by the next sync; a reading that brings
nothing new appends nothing; settling a finished job (its registry version and training
cost) checks what is recorded before it records anything. How a job is planned and
costed depends on its kind of training (application/job_kinds.py), picked by the
provider the job names.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from application.job_kinds import FileResolver, JobKind, JobRequest, Plan, as_given
from application.jobs import Jobs
from application.ledger import CostLedger
from application.registry import Registry
from domain.costs import training_job_id
from domain.errors import DomainError, InvalidInput, NotFound, RuleViolation
from domain.job_specs import PROVIDERS, TERMINAL, JobStatus
from domain.jobs import FineTuningJob
from domain.local_training import LocalTrainingConfig
from domain.registry import VersionStatus
from domain.training_provider import ProviderError, TrainingProvider
from projections.database import Database
from projections.jobs import active_job_ids, get_job

log = logging.getLogger(__name__)

POLLER = "ft-lifecycle/poller"


class ProviderRefused(RuleViolation):
    """The provider would not start the job (403 training_not_available). The job is recorded as refused."""

    slug = "training-not-available"
    title = "The provider refused to start fine-tuning"

    def __init__(self, detail: str, job_id: str) -> None:
        super().__init__(detail)
        self.job_id = job_id
        self.extra = {"job_id": job_id}  # the problem body names the job that was kept


class ModelPublisher(Protocol):
    """Makes a local run's export servable (adapters/ollama.py's OllamaPublisher)."""

    def publish(self, artifacts: str, config: LocalTrainingConfig, name: str, *, host: str, api_key: str | None,
                system: str | None, base: str | None) -> tuple[str, dict[str, str]]:  # fmt: skip
        """Returns the model's chat family and its files' digests; raises RuleViolation."""
        ...


@dataclass
class Outcome:
    """What a create, sync or cancel did."""

    job: FineTuningJob
    appended: int = 0
    #: a transient provider problem: the job kept its state and will be retried
    pending: str | None = None
    notes: list[str] = field(default_factory=list)


def no_lock(job_id: str) -> AbstractContextManager[None]:
    return nullcontext()


class JobService:
    def __init__(self, *, jobs: Jobs, registry: Registry, ledger: CostLedger, db: Database,
                 kinds: Mapping[str, JobKind], export: Callable[[str, str], tuple[bytes, dict[str, Any]]],
                 publisher: ModelPublisher | None = None,
                 job_lock: Callable[[str], AbstractContextManager[None]] = no_lock) -> None:  # fmt: skip
        """`kinds` by provider name; `job_lock` serialises submitting one job across processes."""
        self.jobs, self.registry, self.ledger, self.db = jobs, registry, ledger, db
        self.kinds, self.export, self.publisher, self.job_lock = dict(kinds), export, publisher, job_lock

    def provider(self, name: str = "openai") -> TrainingProvider:
        return self.kinds[name].provider

    def close(self) -> None:
        for kind in self.kinds.values():
            kind.provider.close()

    def _kind(self, name: str) -> JobKind:
        found = self.kinds.get(name)
        if found is None:
            raise InvalidInput(f"Unknown provider {name!r}: use {', '.join(p for p in PROVIDERS if p in self.kinds)}.")
        return found

    # ------------------------------------------------------------------ plan

    def plan(self, *, base_model: Any, training_file: str | None = None, dataset_id: str | None = None,
             split: str | None = None, validation_file: str | None = None, validation_dataset: str | None = None,
             validation_split: str | None = None, method: Any = "supervised", hyperparameters: dict[str, Any] | None
             = None, skip_checks: bool = False, provider: str = "openai", training_config: dict[str, Any] | None
             = None, resolve: FileResolver = as_given, **fields: Any) -> Plan:  # fmt: skip
        """Validates a job request and its files against the provider's rules and estimates its cost; records
        nothing. `resolve` turns a path a client gave into the path to open: over HTTP only inside the data
        folder; the CLI, which runs as the user, takes any file the user can read."""
        if not isinstance(base_model, str) or not base_model.strip():
            raise InvalidInput("base_model is required: the model to fine-tune, e.g. gpt-4o-mini-2024-07-18.")
        if training_file is None and dataset_id is None:
            raise InvalidInput("Give the training data: a dataset id (--dataset) or a JSONL file (TRAINING_FILE).")
        return self._kind(provider).plan(JobRequest(
            base_model, training_file=training_file, dataset_id=dataset_id, split=split,
            validation_file=validation_file, validation_dataset=validation_dataset, validation_split=validation_split,
            method=method, hyperparameters=hyperparameters, training_config=training_config, skip_checks=skip_checks,
            resolve=resolve, fields=fields,
        ))  # fmt: skip

    # ---------------------------------------------------------------- create

    def create(self, plan: Plan, *, actor: str, reason: str | None = None) -> Outcome:
        self._kind(plan.spec.provider).provider.check_ready()  # refused before anything is recorded
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
        """Starts the job at its provider, once."""
        with self.job_lock(job_id):
            job = outcome.job = self.jobs.load(job_id)
            if job.submitted or job.finished:
                return

            def data(role: str) -> bytes:
                return (files or {}).get(role) or self._files_for(job, role)

            def record_upload(u: dict[str, Any]) -> None:
                self._change(job_id, outcome, lambda j: j.record_upload(u["role"], u["id"], u["name"], u["size"],
                             actor=actor), what="Recording an upload")  # fmt: skip

            try:
                reading = self._kind(job.provider).provider.submit(job, data, record_upload)
                self._change(job_id, outcome, lambda j: j.record_submission(reading.provider_job_id, reading.status,
                             actor=actor), what="Recording the submission")  # fmt: skip
            except ProviderError as e:
                self._provider_failed(job_id, actor, outcome, e)
            except RuleViolation as gone:  # the file is gone or changed: the job cannot go on
                detail = gone.detail
                self._change(job_id, outcome, lambda j: j.fail_locally("training_file_unavailable", detail,
                             actor=actor), what="Recording the failure")  # fmt: skip

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

    # ------------------------------------------------------------ sync, cancel

    def sync(self, job_id: str, *, actor: str) -> Outcome:
        """Brings a job up to date with its provider; appends only what is new."""
        job = self.jobs.load(self.resolve(job_id))
        outcome = Outcome(job)
        if not job.finished:
            if not job.submitted:
                self._submit(job.job_id, actor, outcome)
            else:
                try:
                    reading = self._kind(job.provider).provider.read(job)
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
        else:
            try:
                stopped = self._kind(job.provider).provider.cancel(job)
            except ProviderError as e:
                raise RuleViolation(f"Job {job.job_id!r} could not be cancelled: {e.message}") from None
            self._change(job.job_id, outcome, lambda j: j.sync(stopped, actor=actor, reason=reason),
                         what=f"Cancelling job {job.job_id!r}")  # fmt: skip
        self._settle(job.job_id, actor, outcome)
        return outcome

    def delete_model(self, fine_tuned_model: str, *, actor: str, reason: str | None = None,
                     job_id: str | None = None, provider: str = "openai") -> Outcome | None:  # fmt: skip
        """Deletes a fine-tuned model at the provider; the job that made it records the deletion."""
        if not isinstance(fine_tuned_model, str) or not fine_tuned_model.startswith("ft:"):
            raise InvalidInput(f"{fine_tuned_model!r} is not a fine-tuned model id (they start with 'ft:').")
        job = None if job_id is None else self.jobs.load(job_id)
        try:
            self._kind(provider if job is None else job.provider).provider.delete_model(fine_tuned_model)
        except ProviderError as e:
            if e.kind == "not_found":
                raise NotFound(f"The provider has no model {fine_tuned_model!r}: {e.message}") from None
            raise RuleViolation(f"Deleting {fine_tuned_model!r} failed: {e.message}") from None
        if job is None:
            return None
        outcome = Outcome(job)
        self._change(job.job_id, outcome, lambda j: j.record_model_deleted(actor=actor, reason=reason),
                     what="Recording the deletion")  # fmt: skip
        return outcome

    def publish(self, job_id: str, name: str, *, actor: str, host: str, api_key: str | None = None,
                system: str | None = None, base: str | None = None) -> Outcome:  # fmt: skip
        """Makes a local run's export servable at `host` (Ollama: blobs by digest, then create) and records
        where it is. `host` is the caller's choice: over HTTP a configured endpoint's URL, whose own key
        `api_key` is."""
        job = self.jobs.load(self.resolve(job_id))
        job.check_publishable()
        if self.publisher is None:
            raise RuleViolation("This service has no model publisher configured.")
        config = LocalTrainingConfig.validate(**job.hyperparameters)
        family, digests = self.publisher.publish(job.fine_tuned_model or "", config, name, host=host,
                                                 api_key=api_key, system=system, base=base)  # fmt: skip
        outcome = Outcome(job)
        self._change(job.job_id, outcome, lambda j: j.record_published(name, host, family, digests, actor=actor),
                     what="Recording the publication")  # fmt: skip
        if job.registry_version is not None:  # Ollama serves the OpenAI API under /v1
            self.registry.set_serving(job.model_name, job.registry_version,
                                      {"base_url": host.rstrip("/") + "/v1", "model": name}, actor=actor,
                                      reason=f"published to Ollama at {host}")  # fmt: skip
        return outcome

    def resolve(self, job_id: str) -> str:
        """Our job id for our id or the provider's (ftjob-...)."""
        if job_id.startswith("ftjob-"):
            found = get_job(self.db, job_id)
            if found is None:
                raise NotFound(f"No job here was submitted as {job_id!r}: list jobs with `ft-cli jobs list`.")
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
                # where it is served first: a crash between the two sets it again, never leaves it unset
                target = self._kind(job.provider).provider.serving_target(job)
                if target is not None:
                    self.registry.set_serving(job.model_name, job.registry_version, target, actor=actor,
                                              reason=f"served by the provider of job {job.job_id}")  # fmt: skip
                self.registry.set_status(job.model_name, job.registry_version, VersionStatus.READY, actor=actor,
                                         reason=f"fine-tuning job {job.job_id} succeeded: {job.fine_tuned_model}")
            self._record_cost(job, actor, outcome)
        elif job.job_status in TERMINAL and status is VersionStatus.TRAINING:
            why = job.error["message"] if job.error else "cancelled"
            self.registry.set_status(job.model_name, job.registry_version, VersionStatus.FAILED, actor=actor,
                                     reason=f"fine-tuning job {job.job_id} {job.status}: {why}"[:2000])
        outcome.job = job

    def _record_cost(self, job: FineTuningJob, actor: str, outcome: Outcome) -> None:
        kind = self._kind(job.provider)
        if not job.throughput_recorded and (measured := kind.throughput(job)) is not None:
            self._change(job.job_id, outcome, lambda j: j.record_throughput(actor=actor, **measured),
                         what="Recording the measured throughput")  # fmt: skip
        if training_job_id(job.job_id) in self.ledger.repository:
            return
        finished = self._finished_at(job)
        try:
            self.ledger.record_training_cost(
                actor=actor, at=finished, job_id=job.job_id, model_name=job.model_name, base_model=job.base_model,
                dataset_size=job.training["examples"], training_tokens=job.trained_tokens or 0,
                **kind.training_cost(job, finished),
            )  # fmt: skip
        except DomainError as e:
            if "already recorded" not in e.detail:
                outcome.notes.append(f"The training cost is not recorded yet: {e.detail}")

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
