"""Dependencies point inward: each layer imports only the layers inside it (README, Architecture)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("domain", "application", "projections", "adapters", "api", "sandbox")
#: what each package must never import
FORBIDDEN = {
    "domain": {"application", "projections", "adapters", "api", "sandbox"},
    "application": {"api", "adapters", "sandbox"},
    "projections": {"application", "adapters", "api", "sandbox"},
    "adapters": {"api", "sandbox"},
}


def imported_layers(path: Path) -> set[tuple[str, int]]:
    """The top-level packages of ours a module imports, anywhere in it (lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found |= {(n.split(".")[0], node.lineno) for n in names if n.split(".")[0] in LAYERS}
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_only_the_layers_inside_it(package: str) -> None:
    breaches = [f"{path.relative_to(ROOT)}:{line} imports {layer}"
                for path in sorted((ROOT / package).rglob("*.py"))
                for layer, line in sorted(imported_layers(path)) if layer in FORBIDDEN[package]]  # fmt: skip
    assert not breaches, "\n".join(breaches)
