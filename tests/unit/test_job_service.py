"""The job service against fake training providers that satisfy the port: no provider server, no
training process. It dispatches by the provider a job names and settles registry and ledger once."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.tokens import ChatTokens
from api.runtime import Runtime
from application.job_kinds import HostedTraining, TrainingData
from application.job_runs import JobService, ProviderRefused
from domain.errors import RuleViolation
from domain.job_specs import JobSpec, ProviderJob
from domain.jobs import FineTuningJob
from domain.registry import VersionStatus
from domain.training_provider import JobData, ProviderError, TrainingProvider, UploadRecorder
from projections.costs import job_cost
from projections.registry import get_version
from tests.support.openai_sandbox import chat_file

BASE = "gpt-4o-mini-2024-07-18"


class FakeProvider:
    """A provider that trains nothing: it answers from a script of readings and records what it was asked."""

    minimum_examples_apply = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.submitted: list[str] = []
        self.cancelled: list[str] = []
        self.status = "running"
        self.fail_next: ProviderError | None = None

    def describe(self) -> str:
        return f"the fake {self.name} provider"

    def check_base_model(self, base_model: str) -> None:
        pass

    def check_runnable(self, spec: JobSpec) -> None:
        pass

    def check_ready(self) -> None:
        pass

    def _failing(self) -> None:
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            raise failure

    def submit(self, job: FineTuningJob, data: JobData, record_upload: UploadRecorder) -> ProviderJob:
        self._failing()
        record_upload({"role": "training", "id": f"file-{job.job_id}", "name": "t.jsonl",
                       "size": len(data("training"))})  # fmt: skip
        self.submitted.append(job.job_id)
        return ProviderJob(provider_job_id=f"ftjob-{job.job_id}", status="running")

    def read(self, job: FineTuningJob) -> ProviderJob:
        self._failing()
        if self.status == "succeeded":
            return ProviderJob(job.provider_job_id or "", "succeeded", fine_tuned_model=f"ft:{BASE}:x::{job.job_id}",
                               trained_tokens=1_000_000, finished_at=1_800_000_000)  # fmt: skip
        return ProviderJob(job.provider_job_id or "", self.status)

    def cancel(self, job: FineTuningJob) -> ProviderJob:
        self.cancelled.append(job.job_id)
        return ProviderJob(job.provider_job_id or "", "cancelled")

    def delete_model(self, model: str) -> None:
        raise ProviderError("not_found", "no such model")

    def run_facts(self, job: FineTuningJob) -> dict[str, Any]:
        return {}

    def serving_target(self, job: FineTuningJob) -> dict[str, str] | None:
        return {"upstream": "openai", "model": job.fine_tuned_model or ""}

    def parameter_count(self, base_model: str) -> int | None:
        return None

    def close(self) -> None:
        pass


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    rt = Runtime.open(database_url, create_schema=True)
    try:
        yield rt
    finally:
        rt.close()


def service(rt: Runtime, *providers: FakeProvider) -> JobService:
    data = TrainingData(lambda dataset_id, split: (b"", {}), ChatTokens())
    kinds = {p.name: HostedTraining(p, data, rt.ledger) for p in providers}
    return JobService(jobs=rt.jobs, registry=rt.registry, ledger=rt.ledger, db=rt.db, kinds=kinds,
                      export=lambda dataset_id, split: (b"", {}))  # fmt: skip


def plan(jobs: JobService, tmp_path: Path, job_id: str, provider: str = "openai") -> Any:
    return jobs.plan(base_model=BASE, training_file=str(chat_file(tmp_path / f"{job_id}.jsonl", 12)), job_id=job_id,
                     model_name="support-bot", provider=provider)  # fmt: skip


def test_the_fake_providers_satisfy_the_port() -> None:
    provider: TrainingProvider = FakeProvider("openai")  # the Protocol's attributes and methods, checked by mypy
    assert provider.describe() == "the fake openai provider"


def test_a_created_job_is_submitted_once_and_its_version_waits_in_training(runtime: Runtime, tmp_path: Path) -> None:
    fake = FakeProvider("openai")
    jobs = service(runtime, fake)
    outcome = jobs.create(plan(jobs, tmp_path, "job-1"), actor="alice")
    assert fake.submitted == ["job-1"]
    assert outcome.job.status == "running" and outcome.job.files == {"training": "file-job-1"}
    assert runtime.registry.load("support-bot").status_of(1) is VersionStatus.TRAINING
    again = jobs.sync("job-1", actor="poller")
    assert fake.submitted == ["job-1"] and again.appended == 0  # a reading with nothing new records nothing


def test_a_succeeded_job_makes_its_version_ready_and_records_its_training_cost_once(
    runtime: Runtime, tmp_path: Path
) -> None:
    fake = FakeProvider("openai")
    jobs = service(runtime, fake)
    jobs.create(plan(jobs, tmp_path, "job-1"), actor="alice")
    fake.status = "succeeded"
    done = jobs.sync("job-1", actor="poller")
    assert done.job.status == "succeeded" and done.job.fine_tuned_model == f"ft:{BASE}:x::job-1"
    assert runtime.registry.load("support-bot").status_of(1) is VersionStatus.READY
    runtime.engine.reach(runtime.engine.log.head())
    assert get_version(runtime.db, "support-bot", 1)["serving"] == {"upstream": "openai",  # type: ignore[index]
                                                                    "model": f"ft:{BASE}:x::job-1"}
    cost = job_cost(runtime.db, "job-1")
    assert cost is not None and cost["training_tokens"] == 1_000_000
    assert Decimal(cost["total_cost"]) == Decimal("3.00")  # the shipped catalog's $3.00 per 1M trained tokens
    assert jobs.sync("job-1", actor="poller").appended == 0


def test_a_transient_provider_error_keeps_the_job_and_the_next_sync_submits_it(
    runtime: Runtime, tmp_path: Path
) -> None:
    fake = FakeProvider("openai")
    fake.fail_next = ProviderError("transient", "the provider cannot be reached; it will be retried.")
    jobs = service(runtime, fake)
    outcome = jobs.create(plan(jobs, tmp_path, "job-1"), actor="alice")
    assert outcome.job.status == "created" and outcome.pending and fake.submitted == []
    assert jobs.sync("job-1", actor="poller").job.status == "running" and fake.submitted == ["job-1"]


def test_a_refusal_keeps_the_job_as_refused_and_fails_its_version(runtime: Runtime, tmp_path: Path) -> None:
    fake = FakeProvider("openai")
    fake.fail_next = ProviderError("refused", "no self-serve fine-tuning", status=403, code="training_not_available")
    jobs = service(runtime, fake)
    with pytest.raises(ProviderRefused) as refused:
        jobs.create(plan(jobs, tmp_path, "job-1"), actor="alice")
    assert refused.value.job_id == "job-1"
    assert runtime.jobs.load("job-1").status == "refused"
    assert runtime.registry.load("support-bot").status_of(1) is VersionStatus.FAILED


def test_each_job_goes_to_the_provider_it_names(runtime: Runtime, tmp_path: Path) -> None:
    hosted, local = FakeProvider("openai"), FakeProvider("local")
    jobs = service(runtime, hosted, local)
    jobs.create(plan(jobs, tmp_path, "job-h"), actor="alice")
    jobs.create(plan(jobs, tmp_path, "job-l", provider="local"), actor="alice")
    assert (hosted.submitted, local.submitted) == (["job-h"], ["job-l"])
    jobs.cancel("job-l", actor="alice", reason="wrong data")
    assert (hosted.cancelled, local.cancelled) == ([], ["job-l"])
    assert runtime.jobs.load("job-l").status == "cancelled" and runtime.jobs.load("job-h").status == "running"


def test_a_provider_that_is_not_wired_is_refused_with_the_ones_that_are(runtime: Runtime, tmp_path: Path) -> None:
    jobs = service(runtime, FakeProvider("openai"))
    with pytest.raises(Exception, match="Unknown provider 'local': use openai"):
        plan(jobs, tmp_path, "job-1", provider="local")


def test_a_cancel_the_provider_refuses_says_so_and_records_nothing(runtime: Runtime, tmp_path: Path) -> None:
    fake = FakeProvider("openai")
    jobs = service(runtime, fake)
    jobs.create(plan(jobs, tmp_path, "job-1"), actor="alice")
    before = len(runtime.jobs.history("job-1"))
    fake.cancel = lambda job: (_ for _ in ()).throw(ProviderError("transient", "down"))  # type: ignore[method-assign]
    with pytest.raises(RuleViolation, match="could not be cancelled: down"):
        jobs.cancel("job-1", actor="alice")
    assert len(runtime.jobs.history("job-1")) == before
