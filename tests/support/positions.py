"""Log positions in tests, counted from where a freshly initialised store begins."""

from __future__ import annotations

from domain.shipped_prices import shipped_prices

#: events `db init` appends before a test's own: the price catalog it ships with
SEEDED = 1 + len(shipped_prices())


def pos(k: int) -> int:
    """The position of a test's k-th event (1-based)."""
    return SEEDED + k
