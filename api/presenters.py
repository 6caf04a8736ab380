"""What the HTTP answers and the CLI's output tell a person to do next, from the read models."""

from __future__ import annotations

from projections.database import Database
from projections.registry import get_version


def deploy_command(db: Database, model: str | None) -> str | None:
    """A winner named `NAME@VERSION` after a registry version gives the command that deploys it."""
    if model is None or "@" not in model:
        return None
    name, _, version = model.rpartition("@")
    if not version.isdigit() or get_version(db, name, int(version)) is None:
        return None
    return f"ft-cli models deploy {name} --version {version}"
