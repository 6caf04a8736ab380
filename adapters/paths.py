"""Paths that must stay inside their folder: the data folder, the local runs folder."""

from __future__ import annotations

from pathlib import Path


def inside(root: Path, path: str | Path) -> Path | None:
    """`path` (relative to `root`, or absolute) with every symlink and `..` resolved, if it lies strictly
    inside `root`; None if it escapes, is `root` itself, or is no path at all (a NUL byte)."""
    try:
        base = Path(root).resolve()
        resolved = (base / path).resolve()  # an absolute `path` replaces `base`
    except (OSError, RuntimeError, ValueError):  # a NUL byte, a symlink loop
        return None
    return resolved if base in resolved.parents else None
