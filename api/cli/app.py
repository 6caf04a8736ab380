"""The root `ft-cli` app: where every command module's commands appear, decided here and nowhere else.

Groups mirror the HTTP resources (`ft-cli models …`, `jobs …`); the seed's commands keep their
top-level names with their arguments, beside `serve` and `demo`; the flat names of earlier releases
still run, hidden, for one release.

A run builds only what it needs: `ft-cli list-models` imports api/cli/models.py and builds that one
command, not the 90-odd others (typer inspects every signature it builds, and each module imports
what its commands share). So the tables below name modules, imported by name when used; `app` is
the whole tree, for the tests and for anything that wants every command.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from api.cli.common import Command

#: name -> (help, the modules of api/cli whose `commands` it holds)
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "models": ("The registry: versions, deployments, rollbacks, history and the audit trail.", ("models",)),
    "costs": ("Training and inference costs, the cost summary and ROI.", ("costs",)),
    "prices": ("The price catalog: list and set prices with effective dates.", ("prices",)),
    "datasets": ("Collected examples and the datasets built from them.", ("datasets",)),
    "ab": ("A/B tests of two models: samples, live statistics, verdicts.", ("ab",)),
    "jobs": ("Fine-tuning jobs, at OpenAI or on this machine.", ("jobs", "local")),
    "evals": ("Evaluations: offline from a file, live against an endpoint, comparisons.", ("evals",)),
    "ollama": ("Unsloth scripts with their Modelfiles, and the models Ollama has.", ("ollama",)),
    "gateway": ("The gateway's calls and their statistics, and where versions serve.", ("gateway",)),
    "projections": ("Status, rebuild and follow the read models.", ("projections",)),
    "db": ("Create the store's schema.", ("db",)),
    "sandbox": ("Local stand-ins that speak providers' real APIs.", ("sandbox",)),
}

#: the seed's commands at the top level with their arguments, beside serve and demo: (module, name there)
TOP_LEVEL = {
    "prepare-dataset": ("datasets", "prepare"),
    "create-openai-job": ("jobs", "create"),
    "check-job-status": ("jobs", "status"),
    "create-ollama-script": ("ollama", "script"),
    "evaluate-model": ("evals", "evaluate"),
    "setup-ab-test": ("ab", "create"),
    "register-model": ("models", "register"),
    "list-models": ("models", "list"),
    "rollback-model": ("models", "rollback"),
    "cost-summary": ("costs", "summary"),
    "serve": ("serve", "serve"),
    "demo": ("demo", "demo"),
}

#: the flat names of earlier releases: hidden from --help, kept for one release
OLD_NAMES = {
    "deploy-model": ("models", "deploy"),
    "set-model-status": ("models", "set-status"),
    "deployment-status": ("models", "status"),
    "model-history": ("models", "history"),
    "audit": ("models", "audit"),
    "export-registry": ("models", "export"),
    "record-training-cost": ("costs", "record-training"),
    "import-inferences": ("costs", "import-inferences"),
    "roi": ("costs", "roi"),
    "collect-examples": ("datasets", "collect"),
    "export-dataset": ("datasets", "export"),
    "list-datasets": ("datasets", "list"),
    "dataset-stats": ("datasets", "stats"),
    "record-samples": ("ab", "record-samples"),
    "ab-test-status": ("ab", "status"),
    "conclude-ab-test": ("ab", "conclude"),
    "list-ab-tests": ("ab", "list"),
    "estimate-cost": ("jobs", "estimate-cost"),
    "watch-job": ("jobs", "watch"),
    "cancel-job": ("jobs", "cancel"),
    "list-jobs": ("jobs", "list"),
    "delete-fine-tuned-model": ("jobs", "delete-model"),
    "create-local-job": ("local", "create-local"),
    "estimate-training-time": ("local", "estimate-time"),
    "publish-to-ollama": ("local", "publish"),
    "list-ollama-models": ("ollama", "list"),
    "delete-ollama-model": ("ollama", "delete"),
    "compare-models": ("evals", "compare"),
    "list-evaluations": ("evals", "list"),
    "attach-evaluation": ("evals", "attach"),
    "run-evaluation": ("evals", "run"),
}


def _command(module: str, name: str) -> Command:
    commands: Any = importlib.import_module(f"api.cli.{module}").commands
    return commands[name]


def help_command(ctx: typer.Context) -> None:
    """Show the commands."""
    typer.echo(ctx.parent.get_help() if ctx.parent else ctx.get_help())


def build(only: str | None = None, *, listing: bool = False) -> typer.Typer:
    """The app with every command; with `only`, just that command or group (what one run needs);
    with `listing`, what --help lists: the top-level commands and the groups' names and help."""
    app = typer.Typer(
        name="ft-cli",
        help="ft-lifecycle: model registry, deployments and audit trail for fine-tuned LLMs.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(lambda: None)  # a group even when it holds one command: `ft-cli NAME ...` as always

    def add(name: str, where: tuple[str, str], *, hidden: bool = False) -> None:
        if only in (None, name):
            command = _command(*where)
            app.command(name, hidden=hidden, **command.settings)(command.callback)

    for name, where in TOP_LEVEL.items():
        add(name, where)
    if only in (None, "help"):
        app.command("help")(help_command)
    for group, (text, modules) in GROUPS.items():
        if only in (None, group):
            sub = typer.Typer(help=text, no_args_is_help=True)
            for module in () if listing else modules:
                importlib.import_module(f"api.cli.{module}").commands.add_to(sub)
            app.add_typer(sub, name=group)
    if not listing:
        for name, where in OLD_NAMES.items():
            add(name, where, hidden=True)
    return app


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else None
    if name in TOP_LEVEL or name in GROUPS or name in OLD_NAMES:
        build(name)()
    elif name in (None, "--help", "help"):
        build(listing=True)()
    else:  # a mistyped name: the whole app answers, with click's usual message
        build()()


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole tree, built once on first use
        app = globals()["app"] = build()
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
