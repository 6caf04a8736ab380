"""Fine-tuning jobs through ft-cli, the demo, and the server's background poller, on both stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from api.cli.app import app
from api.runtime import Runtime
from sandbox.openai_finetuning import Timing
from sandbox.server import SandboxServer
from tests.support.openai_sandbox import SECRET_KEY, Sandbox, chat_file, running_sandbox
from tests.support.server import running_server

runner = CliRunner()
FT_CLI = str(Path(sys.executable).parent / "ft-cli")
BASE = "gpt-4o-mini-2024-07-18"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with running_sandbox() as s:
        monkeypatch.setenv("OPENAI_BASE_URL", s.server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
        yield s


def cli(runtime: Runtime, *args: str, ok: bool = True) -> str:
    result = runner.invoke(app, [*args, "--database-url", runtime.config.url])
    assert (result.exit_code == 0) is ok, result.output
    return result.output


def cli_json(runtime: Runtime, *args: str):  # noqa: ANN201
    return json.loads(cli(runtime, *args, "--json"))


def test_creating_a_job_without_a_terminal_needs_yes_and_records_nothing_until_then(
    runtime: Runtime, sandbox: Sandbox, tmp_path: Path
) -> None:
    file = chat_file(tmp_path / "train.jsonl", 20)
    head = runtime.engine.log.head()
    refused = cli(runtime, "create-openai-job", BASE, str(file), ok=False)
    assert "Estimated cost:" in refused and "pass --yes" in refused
    assert runtime.engine.log.head() == head and sandbox.state.requests == []
    job = cli_json(runtime, "create-openai-job", BASE, str(file), "--suffix", "cli", "--epochs", "2", "--yes")
    assert job["status"] == "validating_files" and job["training"]["kind"] == "file"
    assert job["training"]["path"] == str(file.resolve()) and job["hyperparameters"]["n_epochs"] == 2


def test_the_cli_estimates_checks_lists_cancels_and_deletes(
    runtime: Runtime, sandbox: Sandbox, tmp_path: Path
) -> None:
    file = chat_file(tmp_path / "train.jsonl", 20)
    estimate = cli_json(runtime, "estimate-cost", BASE, str(file), "--epochs", "4")
    assert (estimate["examples"], estimate["epochs"]) == (20, 4)
    assert Decimal(estimate["total"]) == Decimal(estimate["tokens"]) * 4 * Decimal("3.00") / 1_000_000
    assert "Estimated cost:" in cli(runtime, "estimate-cost", BASE, str(file))
    bad = cli(runtime, "estimate-cost", BASE, str(chat_file(tmp_path / "few.jsonl", 3)), ok=False)
    assert bad.startswith("error: The training file") and "OpenAI needs at least 10" in bad

    done = cli_json(runtime, "create-openai-job", BASE, str(file), "--suffix", "done", "--yes")
    doomed = cli_json(runtime, "create-openai-job", BASE, str(file), "--suffix", "doomed", "--yes")
    sandbox.to_running()
    cancelled = cli_json(runtime, "cancel-job", doomed["provider_job_id"], "--reason", "not needed")
    assert cancelled["status"] == "cancelled"
    sandbox.to_finished()
    first = cli_json(runtime, "check-job-status", done["job_id"])
    second = cli_json(runtime, "check-job-status", done["job_id"])
    assert first["status"] == "succeeded" and first["appended"] > 0 and second["appended"] == 0
    listed = cli_json(runtime, "list-jobs")
    assert [j["status"] for j in listed] == ["cancelled", "succeeded"]  # newest first
    assert "succeeded" in cli(runtime, "list-jobs")
    models = {m["name"]: m for m in cli_json(runtime, "list-models")}
    assert set(models) == {"done", "doomed"}

    deleted = cli_json(runtime, "delete-fine-tuned-model", first["fine_tuned_model"], "--yes")
    assert deleted == {"model": first["fine_tuned_model"], "deleted": True, "job_id": done["job_id"]}
    assert "pass --yes" in cli(runtime, "delete-fine-tuned-model", first["fine_tuned_model"], ok=False)
    missing = cli(runtime, "check-job-status", "job-nope", ok=False)
    assert missing.startswith("error: Job 'job-nope' does not exist")


def test_watch_job_follows_a_job_live_until_it_finishes(
    runtime: Runtime, sandbox: Sandbox, tmp_path: Path
) -> None:
    job = cli_json(runtime, "create-openai-job", BASE, str(chat_file(tmp_path / "t.jsonl", 12)), "--yes")
    sandbox.clock.step = 5.0  # the provider's clock moves on by itself while the CLI watches
    watched = cli_json(runtime, "watch-job", job["job_id"], "--interval", "0.05")
    assert watched["status"] == "succeeded" and watched["fine_tuned_model"]
    history = [e.__class__.__name__ for e in runtime.jobs.history(job["job_id"])]
    assert history[-1] == "Succeeded" and history.count("StatusChanged") >= 2


def test_the_demo_runs_the_whole_lifecycle_on_the_configured_store(database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FT_", "OPENAI_"))}
    env["FT_DATABASE_URL"] = database_url
    for args in (["db", "init"], ["demo", "--json", "--train-seconds", "0.2"]):  # what `make demo` runs
        done = subprocess.run([FT_CLI, *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["job"]["status"] == "succeeded" and result["version"]["status"] == "READY"
    # version 1 is the baseline; the fine-tune, version 2, was evaluated live and deployed by the A/B policy
    assert Decimal(result["version"]["cost"]) > 0 and result["deployed"] == 2
    assert 0 <= result["version"]["accuracy"] <= 1  # the live evaluation's, attached to the version
    traffic = result["gateway"]  # calls through the gateway, their feedback, the policy's decision, a rollback
    assert (traffic["calls"], traffic["recorded"], traffic["decision"], traffic["after_rollback"]) == (
        2000, 2000, "conclude", 1)
    assert Decimal(traffic["roi_percent"]) > 0
    narrated = subprocess.run([FT_CLI, "demo", "--train-seconds", "0.2"], env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
    assert narrated.returncode == 0, narrated.stderr
    for step in ("1. The OpenAI sandbox serves", "4. Estimated cost:", "6. Succeeded:",
                 "7. A/B test demo-", "and deployed version 3", "9. Costs from the ledger",
                 "10. Rolled back to version 1: the next call was answered by version 1"):
        assert step in narrated.stdout.replace("\n", " "), step


def test_the_server_polls_unfinished_jobs_in_the_background(runtime: Runtime, tmp_path: Path) -> None:
    with SandboxServer(timing=Timing(validate=0.2, queue=0.2, train=0.5)) as sandbox:
        env = {"OPENAI_BASE_URL": sandbox.base_url, "OPENAI_API_KEY": SECRET_KEY, "FT_JOB_POLL_SECONDS": "0.1",
               "FT_DATA_DIR": str(tmp_path)}
        log: list[str] = []
        with running_server(runtime.config.url, extra_env=env, log=log) as base, httpx2.Client(base_url=base) as c:
            r = c.post("/v1/jobs", json={"base_model": BASE, "training_file": str(chat_file(tmp_path / "t.jsonl",
                       12)), "suffix": "polled"}, headers={"X-Actor": "alice"})  # fmt: skip
            assert r.status_code == 201, r.text
            job_id = r.json()["job_id"]
            deadline = time.monotonic() + 60

            def head() -> int:
                return max(p["head"] for p in c.get("/v1/projections").json())

            # The poller runs in the server: wait by position for each event it appends, until its last
            # step, the pre-registered version becoming READY.
            version, seen = "/v1/models/polled/versions/1", head()
            for _ in range(200):
                if c.get(version, params={"min_position": seen}).json()["status"] == "READY":
                    break
                assert time.monotonic() < deadline, "the poller did not finish the job"
                c.get(version, params={"min_position": seen + 1})  # the server waits for the next event
                seen = head()
            else:
                raise AssertionError("the poller did not finish the job in 200 steps")
            assert c.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"
            events = c.get(f"/v1/jobs/{job_id}/events").json()
    assert {e["actor"] for e in events if e["type"] in ("StatusChanged", "Succeeded")} == {"ft-lifecycle/poller"}
    assert log and SECRET_KEY not in "".join(log)


def test_ft_cli_sandbox_openai_serves_the_fine_tuning_api_on_loopback(tmp_path: Path) -> None:
    from adapters.openai_jobs import OpenAIFineTuning, OpenAISettings
    from sandbox.server import free_port
    from tests.support.server import process_until_ready

    port = free_port()
    cmd = [FT_CLI, "sandbox", "openai", "--port", str(port), "--train-seconds", "0.1"]
    with process_until_ready(cmd, ready="Application startup complete", env=dict(os.environ)):
        provider = OpenAIFineTuning(OpenAISettings(api_key="sandbox-key", base_url=f"http://127.0.0.1:{port}/v1"))
        uploaded = provider.upload("t.jsonl", chat_file(tmp_path / "t.jsonl", 3).read_bytes())
        job = provider.create_job(job_id="j", model=BASE, training_file=uploaded["id"], validation_file=None,
                                  suffix=None, seed=None, metadata={}, method="supervised", hyperparameters={})
        assert job.status == "validating_files"
        provider.close()
