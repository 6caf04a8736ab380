"""Paths that must stay inside their folder: the data folder, the local runs folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from domain.errors import InvalidInput


def inside(root: Path, path: str | Path) -> Path | None:
    """`path` (relative to `root`, or absolute) with every symlink and `..` resolved, if it lies strictly
    inside `root`; None if it escapes, is `root` itself, or is no path at all (a NUL byte)."""
    try:
        base = Path(root).resolve()
        resolved = (base / path).resolve()  # an absolute `path` replaces `base`
    except (OSError, RuntimeError, ValueError):  # a NUL byte, a symlink loop
        return None
    return resolved if base in resolved.parents else None


def data_file(data_dir: Path, path: str, field: str, *, what: str = "file") -> Path:
    """A path a client gave, resolved inside the data folder; anything else is refused with one message,
    whether or not it exists, so a request tells nothing about the server's other files."""
    found = inside(data_dir, path)
    if found is None:
        example = "train.jsonl" if what == "file" else "models/base"
        raise InvalidInput(f"{field} must name a {what} under the data folder FT_DATA_DIR ({Path(data_dir).resolve()}):"
                           f" give a path relative to it, such as {example}, and put the {what} there.")  # fmt: skip
    return found


def within(data_dir: Path) -> Callable[[str, str, str], Path]:
    """The job planner's file resolver for requests over HTTP: only paths inside the data folder."""
    return lambda path, field, what: data_file(data_dir, path, field, what=what)
