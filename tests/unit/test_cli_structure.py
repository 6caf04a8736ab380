"""The CLI package's shape (no import cycle, no private names across modules, one place that places
commands) and how it words messages it shares with the HTTP API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from api.cli.common import cli_message

CLI = Path(__file__).resolve().parents[2] / "api" / "cli"


def _cli_imports() -> dict[str, list[tuple[str, list[str]]]]:
    """module -> [(imported api.cli module, names)] for every import of api.cli.* in api/cli/."""
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for path in CLI.glob("*.py"):
        edges = found.setdefault(path.stem, [])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("api.cli"):
                module = node.module.removeprefix("api.cli").removeprefix(".")
                if module:
                    edges.append((module, [a.name for a in node.names]))
                else:  # `from api.cli import models`: each name is a module
                    edges += [(a.name, []) for a in node.names]
    return found


def test_cli_modules_import_no_private_names_of_each_other() -> None:
    private = [(m, target, n) for m, edges in _cli_imports().items() for target, names in edges for n in names
               if n.startswith("_")]  # fmt: skip
    assert private == []


def test_cli_modules_form_no_import_cycle() -> None:
    graph = {m: {target for target, _ in edges} for m, edges in _cli_imports().items()}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module not in done:
            for target in graph.get(module, ()):
                visit(target, (*path, module))
            done.add(module)

    for module in graph:
        visit(module, ())


def test_only_the_root_app_decides_where_commands_appear() -> None:
    """Command modules collect their commands; none adds commands to another module's app."""
    for path in CLI.glob("*.py"):
        if path.stem not in ("app", "common"):
            text = path.read_text()
            assert "add_typer" not in text and "typer.Typer(" not in text, path.name


@pytest.mark.parametrize(
    ("shared", "said"),
    [
        ("Dataset 'x' does not exist: build one with `ft-cli prepare-dataset` (or POST /v1/datasets).",
         "Dataset 'x' does not exist: build one with `ft-cli prepare-dataset`."),
        ("A/B test 't' does not exist: create it first (`ft-cli setup-ab-test`, or POST /v1/ab-tests).",
         "A/B test 't' does not exist: create it first (`ft-cli setup-ab-test`)."),
        ("Evaluation 'e' does not exist: list them with GET /v1/evaluations.",
         "Evaluation 'e' does not exist: list them with `ft-cli evals list`."),
        ("no price for model 'm' at T and no cost given: set one with `ft-cli prices set m --input X --output Y "
         "--effective-from T` (or POST /v1/prices), or send the record's cost",
         "no price for model 'm' at T and no cost given: set one with `ft-cli prices set m --input X --output Y "
         "--effective-from T`, or send the record's cost"),
        ("Model 'm' is not registered.", "Model 'm' is not registered."),
    ],
)  # fmt: skip
def test_a_message_shared_with_the_http_api_names_the_cli_command_in_the_cli(shared: str, said: str) -> None:
    assert cli_message(shared) == said
