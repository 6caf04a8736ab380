"""What a new user hits when trying the seed's own examples with the installed ft-cli, on both stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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

FT_CLI = str(Path(sys.executable).parent / "ft-cli")


def ft(runtime: Runtime, *args: str, ok: bool = True, env: dict[str, str] | None = None,
       cwd: Path | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    """Runs the installed ft-cli on the test's store, without the developer's OpenAI or FT settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FT_", "OPENAI_", "AZURE_OPENAI_"))}
    done = subprocess.run([FT_CLI, *args], env=base | {"FT_DATABASE_URL": runtime.config.url} | (env or {}),
                          capture_output=True, text=True, timeout=120, cwd=cwd)  # fmt: skip
    assert (done.returncode == 0) is ok, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done


def ft_json(runtime: Runtime, *args: str, **kwargs) -> object:  # noqa: ANN003
    return json.loads(ft(runtime, *args, "--json", **kwargs).stdout)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with running_sandbox() as s:
        yield s


def at_sandbox(sandbox: Sandbox) -> dict[str, str]:
    return {"OPENAI_BASE_URL": sandbox.server.base_url, "OPENAI_API_KEY": SECRET_KEY}


AT_OPENAI = {"OPENAI_API_KEY": SECRET_KEY}  # OpenAI's own API: the SDK's default base URL


# ------------------------------------------------------------- model names (defect 10)


@pytest.mark.parametrize(("model", "dated"), [("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
                                              ("gpt-3.5-turbo", "gpt-3.5-turbo-0125"),
                                              ("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14")])  # fmt: skip
def test_an_undated_model_name_is_refused_at_openai_with_the_dated_snapshot_and_nothing_recorded(
    runtime: Runtime, tmp_path: Path, model: str, dated: str
) -> None:
    file = chat_file(tmp_path / "train.jsonl", 12)
    head = runtime.engine.log.head()
    refused = ft(runtime, "create-openai-job", model, str(file), "--yes", ok=False, env=AT_OPENAI)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert f"{model} is not a fine-tunable snapshot at OpenAI: use {dated}" in refused.stderr
    assert runtime.engine.log.head() == head  # no job, no FAILED registry version


def test_a_model_unknown_to_openai_is_refused_with_the_snapshots_it_offers(runtime: Runtime, tmp_path: Path) -> None:
    file = chat_file(tmp_path / "train.jsonl", 12)
    refused = ft(runtime, "estimate-cost", "gpt-5", str(file), ok=False, env=AT_OPENAI)
    assert "gpt-5 is not a fine-tunable snapshot" in refused.stderr and "gpt-4o-mini-2024-07-18" in refused.stderr


def test_fine_tuned_models_and_other_providers_names_are_not_refused(
    runtime: Runtime, sandbox: Sandbox, tmp_path: Path
) -> None:
    file = chat_file(tmp_path / "train.jsonl", 12)
    further = ft_json(runtime, "estimate-cost", "ft:gpt-4o-mini-2024-07-18:acme::abc", str(file), env=AT_OPENAI)
    assert further["base_model"] == "ft:gpt-4o-mini-2024-07-18:acme::abc"
    elsewhere = ft_json(runtime, "estimate-cost", "gpt-4o-mini", str(file), env=at_sandbox(sandbox))
    assert elsewhere["base_model"] == "gpt-4o-mini"  # another provider at OPENAI_BASE_URL decides its names


def test_gpt_3_5_turbo_0125_is_priced_at_its_shipped_training_price(runtime: Runtime, tmp_path: Path) -> None:
    file = chat_file(tmp_path / "train.jsonl", 12)
    estimate = ft_json(runtime, "estimate-cost", "gpt-3.5-turbo-0125", str(file), "--epochs", "2", env=AT_OPENAI)
    assert (estimate["price_pattern"], Decimal(estimate["unit_price_per_1m"])) == ("gpt-3.5-turbo-0125", Decimal(8))
    assert Decimal(estimate["total"]) == Decimal(estimate["tokens"]) * 2 * Decimal("8.00") / 1_000_000
    (price,) = ft_json(runtime, "prices", "list", "--model", "gpt-3.5-turbo-0125")
    assert (price["model"], Decimal(price["input_per_1m"]), Decimal(price["output_per_1m"])) == (
        "gpt-3.5-turbo-0125", Decimal("0.50"), Decimal("1.50"))
    assert price["source"].startswith("https://openai.com/api/pricing/")


def test_the_http_api_refuses_an_undated_model_name_at_openai_too(runtime: Runtime, tmp_path: Path) -> None:
    file = chat_file(tmp_path / "train.jsonl", 12)
    app = create_app(Settings(database_url=runtime.config.url, read_wait_seconds=0.3, poll_jobs=False), runtime)
    runtime.job_service.provider().settings = OpenAISettings(api_key=SECRET_KEY)
    head = runtime.engine.log.head()
    with TestClient(app) as client:
        r = client.post("/v1/jobs", json={"base_model": "gpt-4o-mini", "training_file": str(file)})
    assert r.status_code == 422 and "use gpt-4o-mini-2024-07-18" in r.json()["detail"]
    assert runtime.engine.log.head() == head


# ------------------------------------------------------------- a rejected job (defect 9)


def test_a_job_the_provider_rejects_exits_non_zero_with_its_reason_and_no_follow_hint(
    runtime: Runtime, sandbox: Sandbox, tmp_path: Path
) -> None:
    file = chat_file(tmp_path / "train.jsonl", 12)
    # a compatible provider is not second-guessed: the sandbox itself rejects the undated name
    rejected = ft(runtime, "create-openai-job", "gpt-4o-mini", str(file), "--yes", "--model-name", "bot", ok=False,
                  env=at_sandbox(sandbox))  # fmt: skip
    assert rejected.returncode == 1 and rejected.stderr.count("\n") == 1
    assert "failed at creation: Creating the fine-tuning job: the provider rejected" in rejected.stderr
    assert "Model gpt-4o-mini is not available for fine-tuning" in rejected.stderr
    assert "bot v1 is FAILED" in rejected.stderr and "watch-job" not in rejected.stdout + rejected.stderr
    (job,) = ft_json(runtime, "list-jobs")
    assert job["status"] == "failed"
    as_json = ft(runtime, "create-openai-job", "gpt-4o-mini", str(file), "--yes", "--json", ok=False,
                 env=at_sandbox(sandbox))  # fmt: skip
    assert json.loads(as_json.stdout)["status"] == "failed" and as_json.stderr.startswith("error: job ")


def test_a_job_the_provider_accepts_still_says_how_to_follow_it(
    runtime: Runtime, sandbox: Sandbox, tmp_path: Path
) -> None:
    file = chat_file(tmp_path / "train.jsonl", 12)
    created = ft(runtime, "create-openai-job", "gpt-4o-mini-2024-07-18", str(file), "--yes", env=at_sandbox(sandbox))
    assert "Follow it with `ft-cli jobs watch job-" in created.stdout


# --------------------------------------------------- a registered cost in the ledger (defect 11)


def test_a_cost_given_at_registration_is_that_jobs_training_cost_counted_once(runtime: Runtime) -> None:
    ft(runtime, "register-model", "support-bot", "gpt-4o-mini-2024-07-18", "ftjob-abc123", "500", "--cost", "50")
    ft(runtime, "register-model", "support-bot", "gpt-4o-mini-2024-07-18", "ftjob-abc123", "500", "--cost", "50")
    ft(runtime, "record-training-cost", "ftjob-9", "support-bot", "gpt-4o-mini-2024-07-18", "10", "0",
       "--total-cost", "7")  # fmt: skip
    ft(runtime, "register-model", "support-bot", "gpt-4o-mini-2024-07-18", "ftjob-9", "10", "--cost", "70")
    (model,) = ft_json(runtime, "cost-summary")["models"]
    assert (model["model"], Decimal(model["training_cost"]), model["jobs"]) == ("support-bot", Decimal(57), 2)
    roi = ft_json(runtime, "roi", "--model", "support-bot", "--base-accuracy", "0.8", "--ft-accuracy", "0.9",
                  "--base-cost-per-call", "0.01", "--ft-cost-per-call", "0.002", "--calls", "1000")  # fmt: skip
    assert Decimal(roi["inputs"]["training_cost"]) == 57 and roi["sources"]["training_cost"] == "ledger:support-bot"


def test_a_cost_registered_over_http_reaches_the_ledger_too(runtime: Runtime) -> None:
    app = create_app(Settings(database_url=runtime.config.url, read_wait_seconds=0.3, poll_jobs=False), runtime)
    body = {"base_model": "gpt-4o-mini-2024-07-18", "job_id": "ftjob-1", "dataset_size": 500, "cost": "4.20"}
    with TestClient(app) as client:
        for _ in range(2):
            assert client.post("/v1/models/support-bot/versions", json=body).status_code == 201
        job = client.get("/v1/costs/jobs/ftjob-1").json()
        head = runtime.engine.log.head()
        bad = client.post("/v1/models/support-bot/versions", json=body | {"job_id": "ftjob-2", "cost": "-1"})
        assert bad.status_code == 422 and client.get("/v1/costs/jobs/ftjob-2").status_code == 404
    assert (job["model_name"], Decimal(job["total_cost"])) == ("support-bot", Decimal("4.20"))
    assert runtime.engine.log.head() == head


# ------------------------------------------------ re-running prepare-dataset, exporting (defect 12)


@pytest.fixture
def collected(runtime: Runtime, tmp_path: Path) -> Runtime:
    examples = [{"example_id": f"ex-{i:03d}", "prompt": f"Customer {i} asks: how do I change my billing address?",
                 "response": f"Go to Account, then Billing, and edit the address ({i}). Changes apply at once.",
                 "task_type": "qa", "rating": 5} for i in range(30)]  # fmt: skip
    file = tmp_path / "history.jsonl"
    file.write_text("".join(json.dumps(e) + "\n" for e in examples))
    ft(runtime, "collect-examples", str(file))
    return runtime


def test_an_identical_prepare_dataset_returns_the_build_and_writes_its_files_again(
    collected: Runtime, tmp_path: Path
) -> None:
    for name in (["--name", "support-v1"], []):  # a given id, and the id from the content hash
        first = ft_json(collected, "prepare-dataset", *name, "--output", str(tmp_path / "a"))
        train = Path(first["files"]["train"])
        train.unlink()
        head = collected.engine.log.head()
        again = ft_json(collected, "prepare-dataset", *name, "--output", str(tmp_path / "a"))
        assert (again["dataset_id"], again["content_hash"], again["existing"]) == (
            first["dataset_id"], first["content_hash"], True)
        assert (again["train"], again["test"]) == (first["train"], first["test"]) and train.is_file()
        assert collected.engine.log.head() == head and not first["existing"]
    human = ft(collected, "prepare-dataset", "--name", "support-v1", "--output", str(tmp_path / "a")).stdout
    assert "built before with these settings; nothing new recorded" in human


def test_a_different_spec_under_the_same_dataset_id_is_refused_saying_what_differs(
    collected: Runtime, tmp_path: Path
) -> None:
    ft(collected, "prepare-dataset", "--name", "support-v1", "--output", str(tmp_path))
    head = collected.engine.log.head()
    refused = ft(collected, "prepare-dataset", "--name", "support-v1", "--seed", "7", "--train-ratio", "0.5",
                 "--output", str(tmp_path), ok=False)  # fmt: skip
    assert refused.stderr.count("\n") == 1
    assert "Dataset 'support-v1' already exists with other settings (train_ratio 0.8 there, 0.5 here; " \
           "seed 42 there, 7 here)" in refused.stderr
    assert collected.engine.log.head() == head


def test_export_dataset_writes_a_build_in_another_format(collected: Runtime, tmp_path: Path) -> None:
    built = ft_json(collected, "prepare-dataset", "--name", "support-v1", "--output", str(tmp_path))
    both = ft_json(collected, "export-dataset", "support-v1", "--format", "alpaca", "--output", str(tmp_path / "al"))
    train = json.loads(Path(both["files"]["train"]).read_text())
    assert both["files"]["train"].endswith("al/support-v1-train.json") and len(train) == built["train"]
    assert set(train[0]) == {"instruction", "input", "output"}
    everything = ft_json(collected, "export-dataset", "support-v1", "--format", "jsonl", "--split", "all",
                         "--output", str(tmp_path / "all"))  # fmt: skip
    lines = Path(everything["files"]["all"]).read_text().splitlines()
    assert list(everything["files"]) == ["all"] and len(lines) == built["train"] + built["test"]
    missing = ft(collected, "export-dataset", "nope", ok=False)
    assert "Dataset 'nope' does not exist: build one with `ft-cli prepare-dataset`" in missing.stderr
    assert "Unknown split 'dev'" in ft(collected, "export-dataset", "support-v1", "--split", "dev", ok=False).stderr


# ------------------------------------------------------------ A/B tests and rounding (defect 13)


def test_setting_up_a_test_of_a_version_that_does_not_exist_is_refused_with_the_versions_that_do(
    runtime: Runtime,
) -> None:
    for job in ("ftjob-1", "ftjob-2"):
        ft(runtime, "register-model", "support-bot", "gpt-4o-mini-2024-07-18", job, "500")
    head = runtime.engine.log.head()
    refused = ft(runtime, "setup-ab-test", "t1", "gpt-4o-mini", "support-bot@9", ok=False)
    assert refused.stderr == ("error: model_b 'support-bot@9' names a version that does not exist: Model "
                              "'support-bot' has no version 9: it has versions 1 to 2.\n")  # fmt: skip
    assert runtime.engine.log.head() == head
    created = ft_json(runtime, "setup-ab-test", "t1", "gpt-4o-mini", "support-bot@2")
    assert created["model_b"] == "support-bot@2"


def test_concluding_a_concluded_test_says_when_and_by_whom_and_the_status_shows_the_frozen_result(
    runtime: Runtime, tmp_path: Path
) -> None:
    ft(runtime, "setup-ab-test", "t1", "base", "tuned", "--min-samples", "5")
    file = tmp_path / "samples.jsonl"
    file.write_text("".join(json.dumps({"sample_id": f"s{i}", "arm": "ab"[i % 2], "correct": i % 3 != 0,
                                        "latency_ms": 100 + i, "cost": "0.0005"}) + "\n" for i in range(40)))
    ft(runtime, "record-samples", "t1", str(file))
    concluded = ft_json(runtime, "conclude-ab-test", "t1", "--actor", "alice")
    head = runtime.engine.log.head()
    again = ft(runtime, "conclude-ab-test", "t1", "--actor", "bob", ok=False)
    assert again.stderr.startswith("error: A/B test 't1' is concluded already on ") and again.stderr.count("\n") == 1
    assert "UTC by alice: cannot conclude it again (its result is final). See its frozen result with " \
           "`ft-cli ab status t1`." in again.stderr
    assert runtime.engine.log.head() == head
    status = ft_json(runtime, "ab-test-status", "t1")
    assert status["status"] == "concluded" and status["statistics"] == concluded["statistics"]
    table = ft(runtime, "ab-test-status", "t1").stdout
    assert "$0.0005" in table and "$0.01" in table  # cost per call and cost total (20 x $0.0005), rounded


def test_human_output_rounds_money_and_days_while_json_keeps_exact_values(runtime: Runtime) -> None:
    args = ["roi", "--base-accuracy", "0.80", "--ft-accuracy", "0.80", "--training-cost", "1000",
            "--base-cost-per-call", "0.0100", "--ft-cost-per-call", "0.0105", "--calls-per-day", "3",
            "--days", "7", "--value-per-error", "0"]  # fmt: skip
    exact = ft_json(runtime, *args)
    assert (exact["cost_savings"], exact["net_benefit"]) == ("-0.0105", "-1000.0105")  # exact, as computed
    table = ft(runtime, *args).stdout
    assert "-$0.011" in table and "-$1,000.01" in table and "$-" not in table
    payback = ft_json(runtime, "roi", "--base-accuracy", "0.8", "--ft-accuracy", "0.9", "--training-cost", "7",
                      "--base-cost-per-call", "0.01", "--ft-cost-per-call", "0.01", "--calls-per-day", "3",
                      "--days", "100")  # fmt: skip
    shown = ft(runtime, "roi", "--base-accuracy", "0.8", "--ft-accuracy", "0.9", "--training-cost", "7",
               "--base-cost-per-call", "0.01", "--ft-cost-per-call", "0.01", "--calls-per-day", "3",
               "--days", "100").stdout  # fmt: skip
    assert len(payback["payback_days"]) > 10 and f"{Decimal(payback['payback_days']):.1f}" in shown


# ------------------------------------------------ local scripts, local jobs, stale statuses (defect 14)


def test_create_ollama_script_refuses_an_alpaca_file_naming_the_format_it_reads(
    collected: Runtime, tmp_path: Path
) -> None:
    alpaca = ft_json(collected, "prepare-dataset", "--name", "support-v1", "--format", "alpaca",
                     "--output", str(tmp_path))["files"]["train"]  # fmt: skip
    refused = ft(collected, "create-ollama-script", "unsloth/Llama-3.2-1B-Instruct-bnb-4bit", alpaca, "support-bot",
                 "--output", str(tmp_path / "script"), ok=False)  # fmt: skip
    assert refused.stderr.count("\n") == 1 and "is a JSON array (Alpaca's format?), not chat rows" in refused.stderr
    assert "`ft-cli datasets export ID --format openai`" in refused.stderr and not (tmp_path / "script").exists()
    chat = ft_json(collected, "export-dataset", "support-v1", "--split", "train", "--output", str(tmp_path))
    written = ft_json(collected, "create-ollama-script", "unsloth/Llama-3.2-1B-Instruct-bnb-4bit",
                      chat["files"]["train"], "support-bot", "--output", str(tmp_path / "script"))  # fmt: skip
    assert Path(written["script"]).is_file()


def test_create_local_job_without_the_training_packages_says_what_to_install_and_records_nothing(
    collected: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from api.cli.app import app

    ft(collected, "prepare-dataset", "--name", "support-v1", "--output", str(tmp_path))
    head = collected.engine.log.head()
    for package in ("trl", "peft"):
        monkeypatch.setitem(sys.modules, package, None)  # as if not installed: find_spec finds nothing
    result = CliRunner().invoke(app, ["create-local-job", "unsloth/Llama-3.2-1B-Instruct-bnb-4bit", "--dataset",
                                      "support-v1", "--database-url", collected.config.url])  # fmt: skip
    assert result.exit_code == 1 and result.stderr.startswith("error: Local training needs peft, trl, not installed")
    assert "pip install 'ft-lifecycle[local]'" in result.stderr and result.stderr.count("\n") == 1
    assert collected.engine.log.head() == head


def test_list_jobs_says_unfinished_statuses_are_as_last_recorded_and_sync_refreshes_them(
    runtime: Runtime, sandbox: Sandbox, tmp_path: Path
) -> None:
    file = chat_file(tmp_path / "train.jsonl", 12)
    job = ft_json(runtime, "create-openai-job", "gpt-4o-mini-2024-07-18", str(file), "--yes", env=at_sandbox(sandbox))
    sandbox.to_finished()
    wide = at_sandbox(sandbox) | {"COLUMNS": "200"}  # the whole table on one screen
    stale = ft(runtime, "list-jobs", env=wide).stdout
    assert "validating_files" in stale and "as of" in stale
    assert "1 unfinished job(s) show their state as last recorded" in stale and "ft-cli jobs list --sync" in stale
    (synced,) = ft_json(runtime, "list-jobs", "--sync", env=at_sandbox(sandbox))
    assert (synced["job_id"], synced["status"]) == (job["job_id"], "succeeded")
    assert "unfinished" not in ft(runtime, "list-jobs", env=wide).stdout
