"""Fine-tuning job use cases on the event store. Talking to the provider is the
orchestrator's part (api/jobs.py); every method here only records facts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.base import FtApplication, Recorded, validate_actor
from domain.errors import NotFound, RuleViolation
from domain.job_specs import CostEstimate, JobSpec, job_stream_id, validate_job_id
from domain.jobs import FineTuningJob
from domain.values import validate_reason

T = TypeVar("T")


@dataclass(frozen=True)
class JobChanged:
    job: FineTuningJob
    #: None when nothing new was recorded (an idempotent sync)
    recorded: Recorded | None
    appended: int = 0


class Jobs(FtApplication):
    name = "ft"

    def create(self, spec: JobSpec, estimate: CostEstimate, *, actor: str, reason: str | None = None) -> JobChanged:
        actor = validate_actor(actor)
        job = FineTuningJob.create(spec, estimate, actor=actor, reason=validate_reason(reason))
        try:
            return JobChanged(job, self.record(job), 1)
        except IntegrityError:
            raise RuleViolation(f"Job {spec.job_id!r} already exists: give another job id.") from None

    def load(self, job_id: str) -> FineTuningJob:
        validate_job_id(job_id)
        try:
            return self.get_aggregate(job_stream_id(job_id))
        except AggregateNotFoundError:
            raise NotFound(f"Job {job_id!r} does not exist: list jobs with `ft-cli jobs list`.") from None

    def history(self, job_id: str) -> list[FineTuningJob.Event]:
        """Every event of one job, oldest first: the audit trail of its life."""
        self.load(job_id)
        return list(self.repository.event_store.get(job_stream_id(job_id)))

    def change(self, job_id: str, command: Callable[[FineTuningJob], T], *, what: str) -> tuple[T, JobChanged]:
        """Runs a command on the current job (reloaded on every retry) and records what it appended."""

        def attempt() -> tuple[T, JobChanged]:
            job = self.load(job_id)
            result = command(job)
            appended = len(job.pending_events)
            recorded = self.record(job) if appended else None
            return result, JobChanged(job, recorded, appended)

        return self.retrying(attempt, what=what)
