"""ft-cli as a user runs it: the acceptance scenario on both stores, and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli.app import app
from api.runtime import Runtime
from tests.support.positions import pos
from tests.support.server import process_until_ready

FT_CLI = str(Path(sys.executable).parent / "ft-cli")


def ft(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FT_")} | {"FT_DATABASE_URL": url}
    done = subprocess.run([FT_CLI, *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def ft_json(url: str, *args: str):
    return json.loads(ft(url, *args, "--json").stdout)


def test_the_registry_scenario_through_the_cli(database_url: str, tmp_path: Path) -> None:
    ft(database_url, "db", "init")
    for n in (1, 2, 3):
        out = ft_json(database_url, "register-model", "support-bot", "gpt-4o-mini-2024-07-18", f"ftjob-{n}", "500",
                      "--accuracy", "0.9", "--cost", "2.50", "--actor", "alice")  # fmt: skip
        assert (out["version"], out["status"]) == (n, "READY")
    first = ft_json(
        database_url, "deploy-model", "support-bot", "--version", "2", "--actor", "bob", "--reason", "eval ok"
    )
    second = ft_json(database_url, "deploy-model", "support-bot", "--version", "3", "--actor", "bob")
    assert (first["previous_version"], second["previous_version"]) == (None, 2)
    back = ft_json(database_url, "rollback-model", "support-bot", "2", "--reason", "v3 regressed", "--actor", "carol")
    assert (back["version"], back["previous_version"]) == (2, 3)

    status = ft_json(database_url, "deployment-status", "support-bot")
    assert (status["deployed_version"], status["deployed_by"], status["reason"]) == (2, "carol", "v3 regressed")
    assert [(v["version"], v["status"]) for v in status["versions"]] == [(1, "READY"), (2, "DEPLOYED"), (3, "ARCHIVED")]

    history = ft_json(database_url, "model-history", "support-bot")
    assert [(h["event_type"], h["actor"], h["reason"]) for h in history] == [
        ("ModelRegistered", "alice", None),
        ("VersionRegistered", "alice", None),
        ("VersionRegistered", "alice", None),
        ("VersionRegistered", "alice", None),
        ("VersionDeployed", "bob", "eval ok"),
        ("VersionDeployed", "bob", None),
        ("RolledBack", "carol", "v3 regressed"),
    ]
    t5, t6 = (datetime.fromisoformat(history[i]["timestamp"]) for i in (4, 5))
    between = (t5 + (t6 - t5) / 2).isoformat()
    past = ft_json(database_url, "deployment-status", "support-bot", "--as-of", between)
    assert (past["deployed_version"], [v["status"] for v in past["versions"]]) == (2, ["READY", "DEPLOYED", "READY"])

    models = ft_json(database_url, "list-models")
    assert [(m["name"], m["version_count"], m["deployed_version"]) for m in models] == [("support-bot", 3, 2)]
    before = (ft(database_url, "deployment-status", "--json").stdout, ft(database_url, "audit", "--json").stdout)
    rebuilt = ft_json(database_url, "projections", "rebuild")
    # 7 registry events and the 3 training costs registered with --cost (one per job id)
    assert [(r["name"], r["position"]) for r in rebuilt] == [
        ("deployments", pos(10)),
        ("registry", pos(10)),
        ("audit", pos(10)),
        ("costs", pos(10)),
        ("ab_stats", pos(10)),
        ("examples", pos(10)),
        ("datasets", pos(10)),
        ("jobs", pos(10)),
        ("evaluations", pos(10)),
        ("gateway_calls", pos(10)),
    ]
    assert (
        ft(database_url, "deployment-status", "--json").stdout,
        ft(database_url, "audit", "--json").stdout,
    ) == before
    assert [p["lag"] for p in ft_json(database_url, "projections", "status")] == [0] * 10

    exported = tmp_path / "registry.json"
    assert ft_json(database_url, "export-registry", str(exported)) == {
        "file": str(exported),
        "models": 1,
        "versions": 3,
    }
    assert [v["status"] for v in json.loads(exported.read_text())["support-bot"]] == ["READY", "DEPLOYED", "ARCHIVED"]

    table = ft(database_url, "list-models").stdout
    assert "support-bot" in table and "Models" in table


def test_the_actor_defaults_to_the_os_user(database_url: str) -> None:
    ft(database_url, "db", "init")
    ft(database_url, "register-model", "bot", "b", "j", "1")
    (entry,) = ft_json(database_url, "audit", "--type", "VersionRegistered")
    assert entry["actor"] and entry["actor"] != "anonymous"


runner = CliRunner()


@pytest.fixture
def cli(runtime: Runtime):
    """Invokes ft-cli in-process against the initialised store; returns (exit code, stdout, stderr)."""
    runtime.registry.register_version("bot", base_model="b", job_id="j", dataset_size=1, actor="t")
    runtime.registry.register_version("bot", base_model="b", job_id="j", dataset_size=1, training=True, actor="t")

    def invoke(*args: str):
        result = runner.invoke(app, [*args, "--database-url", runtime.config.url])
        return result.exit_code, result.stdout, result.stderr

    return invoke


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (("deploy-model", "nobody", "--version", "1"), "Model 'nobody' is not registered"),
        (("deploy-model", "bot", "--version", "7"), "has no version 7"),
        (("deploy-model", "bot", "--version", "2"), "is TRAINING and cannot be deployed"),
        (("rollback-model", "bot", "1"), "nothing to roll back"),
        (("register-model", "bot", "b", "j", "-5"), "dataset_size must be 0 or more"),
        (("register-model", "bot", "b", "j", "5", "--accuracy", "1.5"), "accuracy must be between 0 and 1"),
        (("register-model", "bad name", "b", "j", "5"), "Invalid model name 'bad name'"),
        (("set-model-status", "bot", "LIVE"), "Unknown status 'LIVE'"),
        (("register-model", "bot", "b", "j", "5", "--cost", "lots"), "cost must be a decimal amount"),
        (("audit", "--since", "last tuesday"), "--since 'last tuesday' is not an ISO 8601 time"),
        (("projections", "rebuild", "prompts"), "Unknown projection 'prompts'"),
    ],
)
def test_a_refused_command_prints_one_line_exits_non_zero_and_appends_nothing(
    cli, runtime: Runtime, args: tuple[str, ...], phrase: str
) -> None:
    head = runtime.engine.log.head()
    code, stdout, stderr = cli(*args)
    assert code == 1
    assert stderr.startswith("error: ") and phrase in stderr and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stdout + stderr
    assert runtime.engine.log.head() == head


def test_rollback_to_a_newer_version_is_refused_in_the_cli(cli, runtime: Runtime) -> None:
    runtime.registry.register_version("bot", base_model="b", job_id="j", dataset_size=1, actor="t")
    runtime.registry.deploy("bot", 1, actor="t")
    code, _, stderr = cli("rollback-model", "bot", "3")
    assert code == 1 and "older than the deployed version 1" in stderr


def test_a_usage_mistake_exits_with_2(cli) -> None:
    code, _, stderr = cli("register-model", "bot", "b", "j", "many")
    assert code == 2 and "Invalid value for 'dataset_size'" in stderr


def test_a_store_that_is_not_initialised_is_explained(tmp_path: Path, postgres_url: str) -> None:
    result = runner.invoke(app, ["list-models", "--database-url", postgres_url])
    assert result.exit_code == 1 and "run `ft-cli db init` once" in result.stderr
    result = runner.invoke(app, ["list-models", "--database-url", "mysql://nope/x"])
    assert result.exit_code == 1 and "is not supported" in result.stderr


def test_a_projection_worker_keeps_the_views_current_with_events_other_processes_append(database_url: str) -> None:
    Runtime.init_schema(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FT_")} | {"FT_DATABASE_URL": database_url}
    writer = Runtime.open(database_url)
    try:
        with process_until_ready([FT_CLI, "projections", "run", "--interval", "0.05"], ready="Following", env=env):
            r = writer.registry.register_version("bot", base_model="b", job_id="j", dataset_size=1, actor="t")
            # the writer never applies its own events here: only the worker can bring the views to them
            assert writer.engine.wait_for(r.recorded.position, timeout=30)
        assert {s.name: s.lag for s in writer.engine.status()} == {
            "ab_stats": 0,
            "audit": 0,
            "costs": 0,
            "datasets": 0,
            "deployments": 0,
            "evaluations": 0,
            "examples": 0,
            "gateway_calls": 0,
            "jobs": 0,
            "registry": 0,
        }
    finally:
        writer.close()


def test_serving_on_a_public_address_without_tokens_is_refused_with_the_fix(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["serve", "--host", "0.0.0.0", "--database-url", f"sqlite:///{tmp_path}/e.sqlite3"],
        env={"FT_API_TOKENS": ""},
    )
    assert result.exit_code == 1
    assert "Refusing to serve on 0.0.0.0 without authentication: set FT_API_TOKENS" in result.stderr
