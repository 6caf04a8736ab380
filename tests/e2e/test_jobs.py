"""Fine-tuning jobs over HTTP, driving the real `openai` SDK against the local sandbox on loopback.

Every test runs on SQLite and PostgreSQL. The sandbox runs on a clock the test
moves, so a job's phases are reached by advancing it, never by waiting.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.openai_jobs import OpenAISettings
from api.http.app import create_app
from api.runtime import Runtime
from api.settings import Settings
from tests.support.openai_sandbox import SECRET_KEY, Sandbox, chat_file, running_sandbox

ALICE = {"X-Actor": "alice"}
BASE = "gpt-4o-mini-2024-07-18"
PRICE_PER_1M = Decimal("3.00")  # gpt-4o-mini-2024-07-18's training price in the shipped catalog


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with running_sandbox() as s:
        yield s


@pytest.fixture
def api(runtime: Runtime, sandbox: Sandbox, tmp_path: Path) -> Iterator[TestClient]:
    runtime.openai_settings = sandbox.settings
    app = create_app(Settings(database_url=runtime.config.url, read_wait_seconds=0.3, poll_jobs=False,
                              data_dir=tmp_path), runtime)  # the tests' training files are the data folder's
    with TestClient(app) as c:
        yield c


def dataset(client: TestClient, n: int = 40) -> dict:
    examples = [
        {"example_id": f"ex-{i:03d}", "prompt": f"How do I update the billing address on account {i}?",
         "response": f"Open Account, then Billing, and edit the address of account {i}; it applies at once.",
         "domain": "billing", "task_type": "qa", "rating": 5, "source": "distillation"}
        for i in range(n)
    ]  # fmt: skip
    assert client.post("/v1/examples", json={"examples": examples}).status_code == 200
    r = client.post("/v1/datasets", json={"dataset_id": "billing-v1", "train_ratio": 0.8}, headers=ALICE)
    assert r.status_code == 201, r.text
    return r.json()


def create(client: TestClient, **fields) -> dict:
    body = {"base_model": BASE, "suffix": "billing"} | fields
    r = client.post("/v1/jobs", json=body, headers=ALICE)
    assert r.status_code == 201, r.text
    return r.json()


def sync(client: TestClient, job_id: str) -> dict:
    r = client.post(f"/v1/jobs/{job_id}/sync", headers=ALICE)
    assert r.status_code == 200, r.text
    return r.json()


def version(client: TestClient, name: str, number: int) -> dict:
    r = client.get(f"/v1/models/{name}/versions/{number}")
    assert r.status_code == 200, r.text
    return r.json()


def event_types(client: TestClient, job_id: str) -> list[str]:
    return [e["type"] for e in client.get(f"/v1/jobs/{job_id}/events").json()]


def test_a_job_on_a_dataset_succeeds_and_registers_a_ready_version_with_its_training_cost(
    api: TestClient, sandbox: Sandbox
) -> None:
    ds = dataset(api)
    job = create(api, dataset_id="billing-v1", hyperparameters={"n_epochs": 2})
    assert job["status"] == "validating_files" and job["provider_job_id"].startswith("ftjob-")
    assert job["training"]["dataset_id"] == "billing-v1" and job["training"]["split"] == "train"
    assert job["training"]["content_hash"] == ds["content_hash"]  # the lineage: job -> dataset build
    assert job["training"]["examples"] == ds["train"]
    tokens = job["training"]["tokens"]
    assert Decimal(job["estimate"]["total"]) == Decimal(tokens) * 2 * PRICE_PER_1M / 1_000_000
    assert (job["model_name"], job["registry_version"]) == ("billing", 1)
    assert version(api, "billing", 1)["status"] == "TRAINING"

    sandbox.to_running()
    running = sync(api, job["job_id"])
    assert running["status"] == "running" and running["metrics"]["step"] >= 1

    sandbox.to_finished()
    done = sync(api, job["job_id"])
    assert done["status"] == "succeeded"
    assert done["fine_tuned_model"].startswith(f"ft:{BASE}:org-sandbox:billing:")
    assert done["trained_tokens"] == tokens * 2  # the sandbox counts the uploaded file with tiktoken
    registered = version(api, "billing", 1)
    cost = Decimal(done["trained_tokens"]) * PRICE_PER_1M / 1_000_000
    assert registered["status"] == "READY" and Decimal(registered["cost"]) == cost
    assert registered["job_id"] == job["job_id"] and registered["dataset_size"] == ds["train"]
    ledger = api.get(f"/v1/costs/jobs/{job['job_id']}").json()
    assert Decimal(ledger["total_cost"]) == cost and ledger["training_tokens"] == done["trained_tokens"]

    assert event_types(api, job["job_id"]) == [
        "Created", "VersionLinked", "FileUploaded", "Submitted", "StatusChanged", "StatusChanged", "Succeeded"
    ]  # fmt: skip
    events = api.get(f"/v1/jobs/{job['job_id']}/events").json()
    recorded = [p["id"] for e in events for p in e["details"].get("provider_events", [])]
    assert len(recorded) == len(set(recorded)) == len(sandbox.state.jobs[job["provider_job_id"]].events)
    assert api.get(f"/v1/jobs/{job['provider_job_id']}").json()["job_id"] == job["job_id"]
    assert [j["job_id"] for j in api.get("/v1/jobs", params={"status": "succeeded"}).json()["items"]] == [
        job["job_id"]
    ]


def test_syncing_twice_or_after_a_restart_appends_nothing_new(
    api: TestClient, runtime: Runtime, sandbox: Sandbox
) -> None:
    dataset(api)
    job = create(api, dataset_id="billing-v1")
    sandbox.to_running()
    assert sync(api, job["job_id"])["appended"] > 0
    head = runtime.engine.log.head()
    assert sync(api, job["job_id"])["appended"] == 0 and runtime.engine.log.head() == head

    sandbox.to_finished()
    sync(api, job["job_id"])
    head = runtime.engine.log.head()
    assert sync(api, job["job_id"])["appended"] == 0 and runtime.engine.log.head() == head

    restarted = Runtime.open(runtime.config.url, openai_settings=sandbox.settings)
    try:
        outcome = restarted.job_service.sync(job["job_id"], actor="bob")
        assert outcome.appended == 0 and outcome.job.status == "succeeded"
        assert restarted.engine.log.head() == head  # no second version status change, no second cost
    finally:
        restarted.close()


def test_a_file_that_breaks_openai_rules_is_refused_with_line_numbers_and_nothing_recorded(
    api: TestClient, sandbox: Sandbox, tmp_path: Path
) -> None:
    few = chat_file(tmp_path / "few.jsonl", 5)
    r = api.post("/v1/jobs", json={"base_model": BASE, "training_file": str(few)}, headers=ALICE)
    assert r.status_code == 422 and "it has 5 example(s); OpenAI needs at least 10" in r.json()["detail"]
    broken = chat_file(tmp_path / "broken.jsonl", 12, extra=['{"messages": [', '{"messages": [{"role": "user", '
                                                             '"content": "no answer"}]}'])  # fmt: skip
    r = api.post("/v1/jobs", json={"base_model": BASE, "training_file": str(broken)}, headers=ALICE)
    detail = r.json()["detail"]
    assert r.status_code == 422 and "line 13 is not valid JSON" in detail
    assert "line 14: no assistant message to learn from" in detail
    missing = api.post("/v1/jobs", json={"base_model": BASE, "training_file": str(tmp_path / "nope.jsonl")})
    assert missing.status_code == 422 and "does not exist" in missing.json()["detail"]
    assert api.get("/v1/jobs").json()["items"] == [] and api.get("/v1/models").json()["items"] == []
    assert sandbox.state.requests == []  # nothing was uploaded


@pytest.mark.parametrize(
    ("lines", "code", "message"),
    [(5, "invalid_n_examples", "Training file has 5 example(s)"), (-1, "invalid_training_file", "Line 11")],
)
def test_a_job_that_fails_on_an_invalid_file_records_the_error_and_its_version_becomes_failed(
    api: TestClient, sandbox: Sandbox, tmp_path: Path, lines: int, code: str, message: str
) -> None:
    file = chat_file(tmp_path / "train.jsonl", 5) if lines == 5 else chat_file(
        tmp_path / "train.jsonl", 10, extra=['{"prompt": "old completion format", "completion": "not chat"}'])
    job = create(api, training_file=str(file), skip_checks=True, model_name="bad-file")
    assert job["training"]["checked"] is False and job["notes"]  # what the local checks found is reported
    sandbox.to_running()
    failed = sync(api, job["job_id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == code and message in failed["error"]["message"]
    assert version(api, "bad-file", 1)["status"] == "FAILED"
    assert api.get(f"/v1/costs/jobs/{job['job_id']}").status_code == 404  # nothing trained, nothing billed
    assert event_types(api, job["job_id"])[-1] == "Failed"


def test_a_cancelled_job_records_who_cancelled_it_and_why_and_its_version_fails(
    api: TestClient, sandbox: Sandbox
) -> None:
    dataset(api)
    job = create(api, dataset_id="billing-v1")
    sandbox.to_running()
    sync(api, job["job_id"])
    r = api.post(f"/v1/jobs/{job['job_id']}/cancel", json={"reason": "wrong dataset"}, headers={"X-Actor": "carol"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    cancelled = api.get(f"/v1/jobs/{job['job_id']}/events").json()[-1]
    assert cancelled["type"] == "Cancelled" and cancelled["actor"] == "carol"
    assert cancelled["details"]["reason"] == "wrong dataset"
    assert version(api, "billing", 1)["status"] == "FAILED"
    again = api.post(f"/v1/jobs/{job['job_id']}/cancel", headers=ALICE)
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]


def test_a_rate_limited_request_is_retried_and_the_job_carries_on(api: TestClient, sandbox: Sandbox) -> None:
    dataset(api)
    sandbox.fault(429, method="POST", path="/fine_tuning/jobs")
    job = create(api, dataset_id="billing-v1")
    assert job["status"] == "validating_files"
    assert sandbox.requests_to("POST", "/fine_tuning/jobs") == 2  # the SDK retried the 429

    sandbox.fault(429, times=3, method="GET")  # more than the SDK's two retries
    sandbox.to_finished()
    kept = sync(api, job["job_id"])
    assert kept["status"] == "validating_files" and kept["appended"] == 0 and "429" in kept["pending"]
    assert sync(api, job["job_id"])["status"] == "succeeded"


def test_a_refusal_is_explained_in_plain_words_and_the_job_is_kept_as_refused(
    api: TestClient, sandbox: Sandbox
) -> None:
    dataset(api)
    sandbox.state.refuse_training = True
    r = api.post("/v1/jobs", json={"base_model": BASE, "dataset_id": "billing-v1", "suffix": "billing"}, headers=ALICE)
    problem = r.json()
    assert r.status_code == 409 and problem["type"] == "/problems/training-not-available"
    assert "training_not_available" in problem["detail"] and "6 January 2027" in problem["detail"]
    assert "OPENAI_BASE_URL" in problem["detail"]  # what to do next
    job = api.get(f"/v1/jobs/{problem['job_id']}").json()
    assert job["status"] == "refused" and job["error"]["code"] == "training_not_available"
    assert version(api, "billing", 1)["status"] == "FAILED"
    assert event_types(api, job["job_id"]) == ["Created", "VersionLinked", "FileUploaded", "Refused"]
    assert api.get("/v1/examples").json()["items"] and api.get("/v1/datasets/billing-v1").status_code == 200


def test_a_network_drop_in_the_middle_of_a_job_keeps_it_and_the_next_sync_resumes(
    api: TestClient, sandbox: Sandbox
) -> None:
    dataset(api)
    job = create(api, dataset_id="billing-v1")
    sandbox.to_running()
    assert sync(api, job["job_id"])["status"] == "running"
    sandbox.server.stop()
    kept = sync(api, job["job_id"])
    assert kept["status"] == "running" and kept["appended"] == 0 and "cannot be reached" in kept["pending"]
    sandbox.server.start()  # same port, same provider state
    sandbox.to_finished()
    assert sync(api, job["job_id"])["status"] == "succeeded"
    assert version(api, "billing", 1)["status"] == "READY"


def test_a_job_created_while_the_provider_is_down_is_submitted_by_the_next_sync(
    api: TestClient, sandbox: Sandbox
) -> None:
    dataset(api)
    sandbox.server.stop()
    job = create(api, dataset_id="billing-v1")
    assert job["status"] == "created" and job["provider_job_id"] is None and job["pending"]
    assert version(api, "billing", 1)["status"] == "TRAINING"
    sandbox.server.start()
    submitted = sync(api, job["job_id"])
    assert submitted["status"] == "validating_files" and submitted["provider_job_id"].startswith("ftjob-")
    assert sandbox.requests_to("POST", "/fine_tuning/jobs") == 1


def test_a_create_whose_reply_was_lost_is_found_again_instead_of_created_twice(
    api: TestClient, runtime: Runtime, sandbox: Sandbox
) -> None:
    dataset(api)
    sandbox.fault(500, times=3, method="POST", path="/fine_tuning/jobs")  # every try fails: the job stays created
    job = create(api, dataset_id="billing-v1")
    assert job["status"] == "created"
    # The provider created it after all (the reply was lost): the job carries our id in its metadata.
    provider = runtime.job_service.provider()
    provider.create_job(job_id=job["job_id"], model=BASE, training_file=job["files"]["training"],
                        validation_file=None, suffix="billing", seed=None, metadata={}, method="supervised",
                        hyperparameters={})  # fmt: skip
    submitted = sync(api, job["job_id"])
    assert submitted["provider_job_id"] == next(iter(sandbox.state.jobs))
    assert len(sandbox.state.jobs) == 1  # found, not created a second time


def test_no_api_key_appears_in_events_logs_or_responses(
    api: TestClient, runtime: Runtime, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = []
    dataset(api)
    texts.append(json.dumps(create(api, dataset_id="billing-v1")))
    sandbox.to_finished()
    for path in ("/v1/jobs", "/v1/models", "/v1/audit"):
        texts.append(api.get(path).text)
    jobs = api.get("/v1/jobs").json()["items"]
    for j in jobs:
        texts += [json.dumps(sync(api, j["job_id"])), api.get(f"/v1/jobs/{j['job_id']}/events").text]
    sandbox.server.stop()
    texts.append(json.dumps(sync(api, jobs[0]["job_id"])))
    sandbox.server.start()
    sandbox.state.refuse_training = True
    texts.append(api.post("/v1/jobs", json={"base_model": BASE, "dataset_id": "billing-v1"}, headers=ALICE).text)
    stored = runtime.registry.recorder.select_notifications(start=1, limit=100_000)
    assert stored and all(SECRET_KEY.encode() not in n.state for n in stored)
    assert all(SECRET_KEY not in t for t in texts)
    assert caplog.records and SECRET_KEY not in caplog.text
    assert SECRET_KEY not in repr(runtime.job_service.provider().settings)


def test_deleting_a_fine_tuned_model_deletes_it_at_the_provider_and_records_it_on_its_job(
    api: TestClient, sandbox: Sandbox
) -> None:
    dataset(api)
    job = create(api, dataset_id="billing-v1")
    sandbox.to_finished()
    model = sync(api, job["job_id"])["fine_tuned_model"]
    r = api.delete(f"/v1/fine-tuned-models/{model}", headers={"X-Actor": "dave"})
    assert r.status_code == 200 and r.json() == {"model": model, "deleted": True, "job_id": job["job_id"]}
    assert model not in sandbox.state.models
    last = api.get(f"/v1/jobs/{job['job_id']}/events").json()[-1]
    assert last["type"] == "ModelDeleted" and last["actor"] == "dave"
    again = api.delete(f"/v1/fine-tuned-models/{model}")
    assert again.status_code == 404 and "has no model" in again.json()["detail"]


def test_bad_job_requests_get_clear_errors_and_record_nothing(api: TestClient, runtime: Runtime) -> None:
    dataset(api)
    head = runtime.engine.log.head()
    cases = [
        ({"dataset_id": "nope"}, 404, "Dataset 'nope' does not exist"),
        ({}, 422, "Give the training data"),
        ({"dataset_id": "billing-v1", "training_file": "/tmp/x.jsonl"}, 422, "not both"),
        ({"dataset_id": "billing-v1", "hyperparameters": {"n_epochs": 0}}, 422, "n_epochs must be a whole number"),
        ({"dataset_id": "billing-v1", "suffix": "has spaces"}, 422, "Invalid suffix"),
        ({"dataset_id": "billing-v1", "hyperparameters": {"beta": 0.1}}, 422, "beta applies to DPO only"),
        ({"dataset_id": "billing-v1", "method": "dpo"}, 422, "DPO needs a file"),
        ({"dataset_id": "billing-v1", "model_name": "no spaces allowed"}, 422, "Invalid model name"),
    ]
    for fields, status, message in cases:
        r = api.post("/v1/jobs", json={"base_model": BASE} | fields, headers=ALICE)
        assert r.status_code == status and message in r.json()["detail"], (fields, r.text)
    assert api.post("/v1/jobs/job-nope/sync").status_code == 404
    assert runtime.engine.log.head() == head


def test_a_job_without_a_configured_key_is_refused_before_anything_is_recorded(
    api: TestClient, runtime: Runtime
) -> None:
    dataset(api)
    runtime.job_service.provider().settings = OpenAISettings()  # no key
    head = runtime.engine.log.head()
    r = api.post("/v1/jobs", json={"base_model": BASE, "dataset_id": "billing-v1"}, headers=ALICE)
    assert r.status_code == 409 and "set OPENAI_API_KEY" in r.json()["detail"]
    assert runtime.engine.log.head() == head


def test_a_dry_run_estimates_the_cost_and_records_nothing(api: TestClient, runtime: Runtime) -> None:
    dataset(api)
    head = runtime.engine.log.head()
    r = api.post("/v1/jobs", json={"base_model": BASE, "dataset_id": "billing-v1", "dry_run": True})
    e = r.json()
    assert r.status_code == 200 and e["epochs"] == 3 and e["epochs_source"] == "default rule"
    assert Decimal(e["total"]) == Decimal(e["tokens"]) * 3 * PRICE_PER_1M / 1_000_000
    assert runtime.engine.log.head() == head


def test_rebuilding_the_jobs_and_registry_projections_gives_the_same_jobs_versions_and_costs(
    api: TestClient, sandbox: Sandbox
) -> None:
    dataset(api)
    done = create(api, dataset_id="billing-v1")
    cancelled = create(api, dataset_id="billing-v1", suffix="other")
    api.post(f"/v1/jobs/{cancelled['job_id']}/cancel", headers=ALICE)
    sandbox.to_finished()
    sync(api, done["job_id"])

    def views() -> tuple:
        return api.get("/v1/jobs").json(), api.get("/v1/models/billing/versions").json(), \
            api.get("/v1/models/other/versions").json()  # fmt: skip

    before = views()
    assert before[1]["items"][0]["cost"] is not None
    for name in ("jobs", "registry"):
        assert api.post(f"/v1/projections/{name}/rebuild").status_code == 200
    assert views() == before


def test_a_rejected_key_keeps_the_job_and_no_part_of_the_key_is_shown(api: TestClient, sandbox: Sandbox) -> None:
    dataset(api)
    sandbox.state.valid_keys = {"sk-the-right-key-0123456789"}
    r = api.post("/v1/jobs", json={"base_model": BASE, "dataset_id": "billing-v1"}, headers=ALICE)
    job = r.json()
    assert r.status_code == 201 and job["status"] == "created"
    assert "refused the credentials" in job["pending"] and "Check OPENAI_API_KEY" in job["pending"]
    assert "Incorrect API key provided: [key hidden]" in job["pending"]  # OpenAI quotes part of the key
    assert SECRET_KEY[:6] not in r.text and SECRET_KEY[-4:] not in r.text
    sandbox.state.valid_keys = None  # the key is fixed: the next sync submits the job
    assert sync(api, job["job_id"])["status"] == "validating_files"
