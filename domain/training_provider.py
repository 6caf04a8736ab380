"""The training-provider port: what the job service asks of whoever trains, and what it reports.

OpenAI's fine-tuning API (adapters/openai_jobs.py, also serving Azure and compatible providers)
and the local trainer (adapters/local_jobs.py) implement it; the job service
(application/job_runs.py) dispatches to the provider a job names and never branches on
that name. Readings come back as `ProviderJob` (domain/jobs.py), the job aggregate's terms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from domain.job_specs import JobSpec, ProviderJob
from domain.jobs import FineTuningJob

#: the bytes of one of a job's data files again, by role ("training", "validation")
JobData = Callable[[str], bytes]
#: records one uploaded file: {"role", "id", "name", "size"}
UploadRecorder = Callable[[dict[str, Any]], None]


class ProviderError(Exception):
    """A provider's answer, in a kind the job service acts on:
    `transient` (network, 429, 5xx: keep the job and retry later), `auth` (no or a wrong key: retried
    too, once it is fixed), `refused` (the provider will not train: the job is kept as refused),
    `rejected` (this job cannot go on: it fails here), `not_found`."""

    def __init__(self, kind: str, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.code = code

    @property
    def transient(self) -> bool:
        return self.kind == "transient"


class TrainingProvider(Protocol):
    """One place jobs train. Every method but `submit` is safe to repeat."""

    #: the job spec's `provider` this one serves ("openai", "local")
    name: str
    #: whether the provider counts OpenAI's minimum of 10 training examples
    minimum_examples_apply: bool

    def describe(self) -> str:
        """Where jobs go, for people (no key)."""
        ...

    def check_base_model(self, base_model: str) -> None:
        """Refuses (InvalidInput) a base model this provider cannot fine-tune, before anything is recorded."""
        ...

    def check_runnable(self, spec: JobSpec) -> None:
        """Refuses (a DomainError) a job this provider could not run here, checked when it is planned."""
        ...

    def check_ready(self) -> None:
        """Refuses (RuleViolation) to create a job now, for example without a key; nothing is recorded yet."""
        ...

    def submit(self, job: FineTuningJob, data: JobData, record_upload: UploadRecorder) -> ProviderJob:
        """Starts the job at the provider once: uploads what `job.files` lacks (recording each upload), finds
        a job created before whose reply was lost, or creates it. Raises ProviderError."""
        ...

    def read(self, job: FineTuningJob) -> ProviderJob:
        """The job now, with the provider's events not in `job.seen_events`. Raises ProviderError."""
        ...

    def cancel(self, job: FineTuningJob) -> ProviderJob:
        """Stops the job and returns the reading that records it. Raises ProviderError."""
        ...

    def delete_model(self, model: str) -> None:
        """Deletes a model the provider made. Raises ProviderError (`not_found` when there is none)."""
        ...

    def run_facts(self, job: FineTuningJob) -> dict[str, Any]:
        """What the run itself measured (device, backend, runtimes, parameters, `finished_at`), where the
        provider knows it; empty otherwise."""
        ...

    def serving_target(self, job: FineTuningJob) -> dict[str, str] | None:
        """Where the model a succeeded job made answers calls (domain/serving.py), where the provider serves it;
        None when it does not (a local run is served once it is published)."""
        ...

    def parameter_count(self, base_model: str) -> int | None:
        """The base model's parameter count, where the provider can tell (for time estimates)."""
        ...

    def close(self) -> None: ...
