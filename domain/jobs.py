"""A fine-tuning job's life, as one small aggregate per job.

The provider (OpenAI, Azure OpenAI, an OpenAI-compatible service) runs the job;
this aggregate records what we asked for and what the provider reported, so a
job's event stream is the audit trail of its life. Syncing compares a
`ProviderJob` snapshot (read by an adapter) with what is already recorded and
appends only what is new: polling twice appends nothing.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import RuleViolation
from domain.job_specs import (
    TERMINAL,
    CostEstimate,
    JobSpec,
    JobStatus,
    ProviderJob,
    job_stream_id,
)

#: how far along a job is: a reading that is behind what is recorded (two pollers racing) changes no status
_PROGRESS = {JobStatus.CREATED: 0, JobStatus.VALIDATING_FILES: 1, JobStatus.QUEUED: 2, JobStatus.RUNNING: 3,
             JobStatus.PAUSED: 3} | {s: 4 for s in TERMINAL}  # fmt: skip



def _latest_metrics(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    metrics = [e["data"] for e in events if e.get("type") == "metrics" and isinstance(e.get("data"), dict)]
    return metrics[-1] if metrics else None


class FineTuningJob(Aggregate):
    """What we asked a provider to train, and everything it reported back."""

    class Event(Aggregate.Event):
        job_id: str
        actor: str

    class Created(Event, Aggregate.Created):
        provider: str
        base_model: str
        model_name: str
        method: str
        hyperparameters: dict[str, Any]
        training: dict[str, Any]
        validation: dict[str, Any] | None
        suffix: str | None
        seed: int | None
        metadata: dict[str, str]
        estimate: dict[str, Any]
        reason: str | None

    class VersionLinked(Event):
        """The registry version pre-registered (TRAINING) for this job's result."""

        model_name: str
        number: int

        def apply(self, job: FineTuningJob) -> None:
            job.registry_version = self.number

    class FileUploaded(Event):
        role: str  # training or validation
        file_id: str
        filename: str
        size: int

        def apply(self, job: FineTuningJob) -> None:
            job.files[self.role] = self.file_id

    class Submitted(Event):
        provider_job_id: str
        status: str

        def apply(self, job: FineTuningJob) -> None:
            job.provider_job_id = self.provider_job_id
            job.status = self.status

    class StatusChanged(Event):
        from_status: str
        to_status: str
        provider_events: list[dict[str, Any]]
        metrics: dict[str, Any] | None
        estimated_finish: int | None

        def apply(self, job: FineTuningJob) -> None:
            job.status = self.to_status
            job.seen_events.update(e["id"] for e in self.provider_events)

    class Progressed(Event):
        """New provider events (messages, step metrics) without a change of status."""

        status: str
        provider_events: list[dict[str, Any]]
        metrics: dict[str, Any] | None
        estimated_finish: int | None

        def apply(self, job: FineTuningJob) -> None:
            job.seen_events.update(e["id"] for e in self.provider_events)

    class Succeeded(Event):
        fine_tuned_model: str
        trained_tokens: int | None
        finished_at: int | None
        result_files: list[str]

        def apply(self, job: FineTuningJob) -> None:
            job.status = JobStatus.SUCCEEDED.value
            job.fine_tuned_model = self.fine_tuned_model
            job.trained_tokens = self.trained_tokens

    class Failed(Event):
        code: str | None
        message: str
        param: str | None

        def apply(self, job: FineTuningJob) -> None:
            job.status = JobStatus.FAILED.value
            job.error = {"code": self.code, "message": self.message}

    class Cancelled(Event):
        reason: str | None

        def apply(self, job: FineTuningJob) -> None:
            job.status = JobStatus.CANCELLED.value

    class Refused(Event):
        """The provider would not accept the job; nothing was trained or billed."""

        code: str | None
        message: str
        http_status: int | None

        def apply(self, job: FineTuningJob) -> None:
            job.status = JobStatus.REFUSED.value
            job.error = {"code": self.code, "message": self.message}

    class ThroughputMeasured(Event):
        """A finished local run's speed, for later time estimates of the same model on the same hardware."""

        base_model: str
        hardware: str
        device: str | None
        backend: str | None
        parameters: int | None
        counted_tokens: int  # tokens trained, counted as the estimate counts them (o200k_base)
        train_seconds: float
        wall_seconds: float

        def apply(self, job: FineTuningJob) -> None:
            job.throughput_recorded = True

    class Published(Event):
        """A local run's export was published to Ollama under a name evaluation can reach."""

        ollama_model: str
        host: str
        family: str
        digests: dict[str, str]

        def apply(self, job: FineTuningJob) -> None:
            job.published_as = self.ollama_model

    class ModelDeleted(Event):
        """The fine-tuned model this job produced was deleted at the provider."""

        fine_tuned_model: str
        reason: str | None

        def apply(self, job: FineTuningJob) -> None:
            job.model_deleted = True

    @staticmethod
    def create_id(job_id: str) -> UUID:
        return job_stream_id(job_id)

    @classmethod
    def create(cls, spec: JobSpec, estimate: CostEstimate, *, actor: str, reason: str | None) -> FineTuningJob:
        return cls._create(
            cls.Created,
            job_id=spec.job_id,
            actor=actor,
            reason=reason,
            provider=spec.provider,
            base_model=spec.base_model,
            model_name=spec.model_name,
            method=spec.method,
            hyperparameters=spec.hyperparameters_dict(),
            training=spec.training.as_dict(),
            validation=None if spec.validation is None else spec.validation.as_dict(),
            suffix=spec.suffix,
            seed=spec.seed,
            metadata=spec.metadata,
            estimate=estimate.as_dict(),
        )

    def __init__(self, job_id: str, provider: str, base_model: str, model_name: str, method: str,
                 hyperparameters: dict[str, Any], training: dict[str, Any], validation: dict[str, Any] | None,
                 suffix: str | None, seed: int | None, metadata: dict[str, str], **_: Any) -> None:  # fmt: skip
        self.job_id = job_id
        self.provider = provider
        self.base_model = base_model
        self.model_name = model_name
        self.method = method
        self.hyperparameters = hyperparameters
        self.training = training
        self.validation = validation
        self.suffix = suffix
        self.seed = seed
        self.metadata = metadata
        self.status = JobStatus.CREATED.value
        self.registry_version: int | None = None  # `version` is the library's event count
        self.files: dict[str, str] = {}
        self.provider_job_id: str | None = None
        self.seen_events: set[str] = set()
        self.fine_tuned_model: str | None = None
        self.trained_tokens: int | None = None
        self.error: dict[str, Any] | None = None
        self.model_deleted = False
        self.throughput_recorded = False
        self.published_as: str | None = None

    # ----------------------------------------------------------------- queries

    @property
    def job_status(self) -> JobStatus:
        return JobStatus(self.status)

    @property
    def finished(self) -> bool:
        return self.job_status in TERMINAL

    @property
    def submitted(self) -> bool:
        return self.provider_job_id is not None

    # ---------------------------------------------------------------- commands

    def link_version(self, number: int, *, actor: str) -> None:
        if self.registry_version is None:
            self.trigger_event(self.VersionLinked, job_id=self.job_id, actor=actor, model_name=self.model_name,
                               number=number)  # fmt: skip

    def record_upload(self, role: str, file_id: str, filename: str, size: int, *, actor: str) -> None:
        if self.files.get(role) != file_id:
            self.trigger_event(self.FileUploaded, job_id=self.job_id, actor=actor, role=role, file_id=file_id,
                               filename=filename, size=size)  # fmt: skip

    def record_submission(self, provider_job_id: str, status: str, *, actor: str) -> None:
        if self.provider_job_id is None:
            self.trigger_event(self.Submitted, job_id=self.job_id, actor=actor, provider_job_id=provider_job_id,
                               status=status)  # fmt: skip

    def refuse(self, code: str | None, message: str, http_status: int | None, *, actor: str) -> None:
        if not self.finished:
            self.trigger_event(self.Refused, job_id=self.job_id, actor=actor, code=code, message=message,
                               http_status=http_status)  # fmt: skip

    def fail_locally(self, code: str, message: str, *, actor: str) -> None:
        """A failure found before the provider ran anything (the file is gone, or was rejected on upload)."""
        if not self.finished:
            self.trigger_event(self.Failed, job_id=self.job_id, actor=actor, code=code, message=message, param=None)

    def cancel_unsubmitted(self, *, actor: str, reason: str | None) -> None:
        self.check_cancellable()
        self.trigger_event(self.Cancelled, job_id=self.job_id, actor=actor, reason=reason)

    def record_model_deleted(self, *, actor: str, reason: str | None) -> None:
        if self.fine_tuned_model is None:
            raise RuleViolation(f"Job {self.job_id!r} produced no fine-tuned model to delete.")
        if not self.model_deleted:
            self.trigger_event(self.ModelDeleted, job_id=self.job_id, actor=actor,
                               fine_tuned_model=self.fine_tuned_model, reason=reason)  # fmt: skip

    def record_throughput(self, *, actor: str, **measured: Any) -> None:
        if not self.throughput_recorded:
            self.trigger_event(self.ThroughputMeasured, job_id=self.job_id, actor=actor, base_model=self.base_model,
                               **measured)  # fmt: skip

    def record_published(self, ollama_model: str, host: str, family: str, digests: dict[str, str], *,
                         actor: str) -> None:  # fmt: skip
        self.trigger_event(self.Published, job_id=self.job_id, actor=actor, ollama_model=ollama_model, host=host,
                           family=family, digests=digests)  # fmt: skip

    def check_publishable(self) -> None:
        if self.provider != "local":
            raise RuleViolation(f"Job {self.job_id!r} ran at {self.provider}: only local runs can be published to "
                                "Ollama.")  # fmt: skip
        if self.job_status is not JobStatus.SUCCEEDED or not self.fine_tuned_model:
            raise RuleViolation(f"Job {self.job_id!r} is {self.status}: only a job that succeeded has an export to "
                                "publish.")  # fmt: skip

    def check_cancellable(self) -> None:
        if self.finished:
            raise RuleViolation(f"Job {self.job_id!r} is already {self.status}: only a job that has not finished "
                                "can be cancelled.")  # fmt: skip

    def sync(self, reading: ProviderJob, *, actor: str, reason: str | None = None) -> bool:
        """Records what the provider says that is not recorded yet; returns whether anything was."""
        if reading.provider_job_id != self.provider_job_id:
            raise RuleViolation(
                f"Provider job {reading.provider_job_id!r} is not the job submitted for {self.job_id!r} "
                f"({self.provider_job_id!r})."
            )
        fresh = [e for e in reading.new_events if e["id"] not in self.seen_events]
        metrics = _latest_metrics(fresh)
        try:
            status = JobStatus(reading.status)
        except ValueError:
            raise RuleViolation(f"The provider reported an unknown status {reading.status!r} for {self.job_id!r}.") \
                from None
        before = len(self.pending_events)
        if self.finished:
            return False  # a final state is final: later readings change nothing
        common = {"job_id": self.job_id, "actor": actor, "provider_events": fresh, "metrics": metrics,
                  "estimated_finish": reading.estimated_finish}  # fmt: skip
        if _PROGRESS[status] < _PROGRESS[self.job_status]:
            status = self.job_status  # an older reading: keep its new events, not its status
        if status.value != self.status:
            self.trigger_event(self.StatusChanged, from_status=self.status, to_status=status.value, **common)
        elif fresh:
            self.trigger_event(self.Progressed, status=self.status, **common)
        if status is JobStatus.SUCCEEDED:
            self.trigger_event(
                self.Succeeded, job_id=self.job_id, actor=actor, fine_tuned_model=reading.fine_tuned_model or "",
                trained_tokens=reading.trained_tokens, finished_at=reading.finished_at,
                result_files=list(reading.result_files),
            )  # fmt: skip
        elif status is JobStatus.FAILED:
            error = reading.error or {}
            self.trigger_event(
                self.Failed, job_id=self.job_id, actor=actor, code=error.get("code"),
                message=error.get("message") or "the provider reported the job failed without a message",
                param=error.get("param"),
            )  # fmt: skip
        elif status is JobStatus.CANCELLED:
            self.trigger_event(self.Cancelled, job_id=self.job_id, actor=actor, reason=reason)
        return len(self.pending_events) > before
