"""The OpenAI adapter over the real SDK, against the sandbox on loopback: the provider port, no store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.openai_jobs import OpenAIFineTuning, OpenAISettings, ProviderError
from api.settings import ProviderSettings
from tests.support.openai_sandbox import SECRET_KEY, TIMING, Sandbox, chat_file, running_sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with running_sandbox() as s:
        yield s


@pytest.fixture
def provider(sandbox: Sandbox) -> Iterator[OpenAIFineTuning]:
    p = OpenAIFineTuning(sandbox.settings)
    yield p
    p.close()


def start(provider: OpenAIFineTuning, tmp_path: Path, job_id: str = "job-1", **kw) -> str:  # noqa: ANN003
    f = provider.upload("train.jsonl", chat_file(tmp_path / f"{job_id}.jsonl", 12).read_bytes())
    reading = provider.create_job(job_id=job_id, model="gpt-4o-mini-2024-07-18", training_file=f["id"],
                                  validation_file=None, suffix="t", seed=7, metadata={"team": "ml"},
                                  method="supervised", hyperparameters={"n_epochs": 2} | kw)  # fmt: skip
    return reading.provider_job_id


def test_a_job_can_be_paused_and_resumed_and_its_checkpoints_listed(
    provider: OpenAIFineTuning, sandbox: Sandbox, tmp_path: Path
) -> None:
    job = start(provider, tmp_path)
    sandbox.clock.advance(TIMING.validate + TIMING.queue + TIMING.train / 2)
    provider.pause(job)
    sandbox.clock.advance(1000)  # time spent paused does not train
    assert provider.retrieve(job).status == "paused"
    provider.resume(job)
    assert provider.retrieve(job).status == "running"
    sandbox.clock.advance(TIMING.train)
    done = provider.retrieve(job)
    assert done.status == "succeeded" and done.result_files
    checkpoints = provider.checkpoints(job)
    assert [c["step_number"] for c in checkpoints] == [24, 12]  # one per epoch, newest first
    assert checkpoints[0]["fine_tuned_model_checkpoint"].endswith(":ckpt-step-24")


def test_reading_events_returns_only_new_ones_oldest_first(
    provider: OpenAIFineTuning, sandbox: Sandbox, tmp_path: Path
) -> None:
    job = start(provider, tmp_path)
    sandbox.to_running()
    first = provider.retrieve(job).new_events
    assert [e["message"] for e in first[:2]] == ["Validating training file: " + sandbox.state.jobs[job].body[
        "training_file"], "Files validated, moving job to queued state"]  # fmt: skip
    sandbox.to_finished()
    rest = provider.retrieve(job, {e["id"] for e in first}).new_events
    assert rest and not {e["id"] for e in rest} & {e["id"] for e in first}
    assert rest[-1]["message"] == "The job has successfully completed"


def test_jobs_are_listed_with_a_cursor_and_found_by_our_job_id(
    provider: OpenAIFineTuning, tmp_path: Path
) -> None:
    ids = [start(provider, tmp_path, f"job-{i}") for i in range(3)]
    page, more = provider.list_jobs(limit=2)
    rest, last = provider.list_jobs(after=page[-1]["id"], limit=2)
    assert more and not last and {j["id"] for j in page + rest} == set(ids)
    found = provider.find_job("job-1")
    assert found is not None and found.provider_job_id == ids[1]
    assert provider.find_job("job-9") is None


def test_azure_openai_settings_reach_the_same_api_under_its_own_paths(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    azure = OpenAIFineTuning(ProviderSettings(
        azure_openai_endpoint=sandbox.server.root_url, azure_openai_api_key=SECRET_KEY,
        openai_api_version="2025-04-01-preview").openai())  # fmt: skip
    job = start(azure, tmp_path)
    assert azure.retrieve(job).status == "validating_files"
    assert ("POST", "/openai/fine_tuning/jobs") in sandbox.state.requests
    assert "Azure OpenAI" in azure.settings.describe() and SECRET_KEY not in azure.settings.describe()


def test_provider_errors_are_sorted_into_what_callers_do_next(
    provider: OpenAIFineTuning, sandbox: Sandbox, tmp_path: Path
) -> None:
    job = start(provider, tmp_path)
    sandbox.fault(503, times=3, method="GET")
    with pytest.raises(ProviderError) as transient:
        provider.retrieve(job)
    assert transient.value.kind == "transient" and transient.value.status == 503
    with pytest.raises(ProviderError) as missing:
        provider.retrieve("ftjob-nope")
    assert missing.value.kind == "not_found"
    with pytest.raises(ProviderError) as rejected:
        provider.create_job(job_id="j", model="gpt-2", training_file="file-x", validation_file=None, suffix=None,
                            seed=None, metadata={}, method="supervised", hyperparameters={})  # fmt: skip
    assert rejected.value.kind == "rejected" and "model_not_available" == rejected.value.code
    sandbox.state.refuse_training = True
    with pytest.raises(ProviderError) as refused:
        start(provider, tmp_path, "job-2")
    assert refused.value.kind == "refused" and "6 January 2027" in refused.value.message
    with pytest.raises(ProviderError, match="No provider key is configured"):
        OpenAIFineTuning(OpenAISettings()).retrieve(job)
