"""ft-cli: the same application services as the HTTP API, on the store FT_DATABASE_URL names.

A module per resource (models, costs, prices, datasets, ab, jobs, local, ollama, evals, projections,
db, sandbox, serve, demo); api/cli/app.py places their commands (`from api.cli.app import app`).
Every command has --json for scripts; errors are one line on stderr and a non-zero exit code (1 for
a refused request, 2 for a usage mistake). A command imports only what it uses.
"""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    # `from api.cli import main`: the console script of installs made before the package, for one release.
    if name == "main":
        return importlib.import_module("api.cli.app").main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
