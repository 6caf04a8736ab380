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
    runtime.job_service.provider.settings = OpenAISettings(api_key=SECRET_KEY)
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
    assert "Follow it with `ft-cli watch-job job-" in created.stdout
