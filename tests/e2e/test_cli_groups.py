"""ft-cli's command tree: the seed's names and the groups in --help, the old flat names as hidden
aliases, errors that name CLI commands, and a start-up that loads only what a command uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli.app import GROUPS, OLD_NAMES, TOP_LEVEL, app, build
from api.runtime import Runtime

SEED = {"prepare-dataset", "create-openai-job", "check-job-status", "create-ollama-script", "evaluate-model",
        "setup-ab-test", "register-model", "list-models", "rollback-model", "cost-summary", "help"}  # fmt: skip
runner = CliRunner()


def _tree(typer_app: typer.Typer) -> typer.core.TyperGroup:
    return typer.main.get_command(typer_app)  # type: ignore[return-value]


def test_help_lists_the_seed_commands_serve_demo_and_the_groups_only() -> None:
    root = _tree(app)
    ctx = typer.Context(root)
    visible = {n for n in root.list_commands(ctx) if not root.get_command(ctx, n).hidden}
    assert visible == SEED | {"serve", "demo"} | set(GROUPS)
    assert {"models", "costs", "datasets", "ab", "jobs", "evals", "prices", "projections", "db", "sandbox"} <= visible


def test_the_help_a_run_prints_is_the_whole_apps_help() -> None:
    whole = runner.invoke(app, ["--help"], prog_name="ft-cli")
    listed = runner.invoke(build(listing=True), ["--help"], prog_name="ft-cli")
    assert whole.exit_code == listed.exit_code == 0 and whole.stdout == listed.stdout


@pytest.mark.parametrize("old", sorted(OLD_NAMES))
def test_every_old_flat_name_still_runs_as_a_hidden_alias_of_its_group_command(old: str) -> None:
    module, name = OLD_NAMES[old]
    root = _tree(app)
    ctx = typer.Context(root)
    alias = root.get_command(ctx, old)
    group = next(g for g, (_, modules) in GROUPS.items() if module in modules)
    grouped = root.get_command(ctx, group).get_command(ctx, name)
    assert alias.hidden and not grouped.hidden
    assert alias.callback.__wrapped__ is grouped.callback.__wrapped__  # typer's wrapper around the same command
    assert [p.name for p in alias.params] == [p.name for p in grouped.params]
    assert runner.invoke(build(old), [old, "--help"]).exit_code == 0


def test_a_seed_command_is_also_in_its_group(runtime: Runtime) -> None:
    url = runtime.config.url
    runtime.registry.register_version("bot", base_model="b", job_id="j", dataset_size=1, actor="t")
    flat = runner.invoke(app, ["list-models", "--json", "--database-url", url])
    grouped = runner.invoke(app, ["models", "list", "--json", "--database-url", url])
    old = runner.invoke(app, ["deployment-status", "--json", "--database-url", url])
    new = runner.invoke(app, ["models", "status", "--json", "--database-url", url])
    assert flat.exit_code == grouped.exit_code == old.exit_code == new.exit_code == 0
    assert json.loads(flat.stdout) == json.loads(grouped.stdout)
    assert [m["name"] for m in json.loads(flat.stdout)] == ["bot"]
    assert json.loads(old.stdout) == json.loads(new.stdout)
    assert set(TOP_LEVEL) == SEED - {"help"} | {"serve", "demo"}


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (("datasets", "export", "nope"), "`ft-cli prepare-dataset`"),
        (("export-dataset", "nope"), "`ft-cli prepare-dataset`"),
        (("conclude-ab-test", "nope"), "`ft-cli setup-ab-test`"),
        (("evals", "compare", "ev-a", "ev-b"), "`ft-cli evals list`"),
    ],
)
def test_cli_errors_name_the_cli_command_to_run_not_an_http_route(
    runtime: Runtime, args: tuple[str, ...], command: str
) -> None:
    result = runner.invoke(app, [*args, "--database-url", runtime.config.url])
    assert result.exit_code == 1 and command in result.stderr and "/v1/" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_an_unpriced_inference_import_names_the_cli_command_not_the_route(runtime: Runtime, tmp_path: Path) -> None:
    file = tmp_path / "calls.jsonl"
    file.write_text(json.dumps({"id": "r1", "model": "mystery-model", "input_tokens": 1, "output_tokens": 1}) + "\n")
    result = runner.invoke(app, ["costs", "import-inferences", str(file), "--database-url", runtime.config.url])
    assert result.exit_code == 1 and "`ft-cli prices set mystery-model" in result.stderr
    assert "/v1/" not in result.stderr


def test_the_http_answer_still_names_its_route(client: TestClient) -> None:
    missing = client.get("/v1/datasets/nope")
    assert missing.status_code == 404 and "POST /v1/datasets" in missing.json()["detail"]


# ------------------------------------------------------------------ start-up

HEAVY = ("scipy", "openai", "fastapi", "uvicorn", "ollama", "tiktoken", "torch")
#: runs ft-cli as its console script does and prints, at exit, every module it loaded
LOADED = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: print('MODULES', json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
    "sys.argv = ['ft-cli', *sys.argv[1:]]\n"
    "from api.cli.app import main\n"
    "main()\n"
)


def _loaded(args: list[str], url: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FT_")} | {"FT_DATABASE_URL": url}
    done = subprocess.run([sys.executable, "-c", LOADED, *args], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES "))
    return {name.partition(".")[0] for name in json.loads(line.removeprefix("MODULES "))}


@pytest.mark.parametrize("args", [["--help"], ["list-models", "--json"], ["deployment-status", "--json"]])
def test_list_models_starts_without_loading_scipy_openai_or_fastapi(tmp_path: Path, args: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'events.sqlite3'}"
    rt = Runtime.open(url)
    try:
        rt.registry.register_version("bot", base_model="b", job_id="j", dataset_size=1, actor="t")
        rt.registry.deploy("bot", 1, actor="t")
    finally:
        rt.close()
    loaded = _loaded(args, url)
    assert "api" in loaded and [m for m in HEAVY if m in loaded] == []
