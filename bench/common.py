"""Shared pieces of the benchmarks: stores, servers and percentiles."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from api.runtime import Runtime
from tests.support.postgres_server import ThrowawayPostgres, free_port
from tests.support.server import UVICORN_READY, process_until_ready, running_server

__all__ = [
    "UVICORN_READY",
    "ThrowawayPostgres",
    "fresh_store",
    "p50_ms",
    "percentile",
    "process_until_ready",
    "rate",
    "running_server",
]


@contextmanager
def fresh_store(kind: str, pg: ThrowawayPostgres, tmp: Path, label: str) -> Iterator[str]:
    """An initialised, empty store of the given kind; yields its URL."""
    if kind == "sqlite":
        path = tmp / f"{label}.sqlite3"
        url = f"sqlite:///{path}"
        Runtime.init_schema(url)
        yield url
        return
    with pg.database(f"bench_{label}") as url:
        Runtime.init_schema(url)
        yield url


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fn: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


def rate(fn: Callable[[int], object], n: int) -> float:
    """Operations per second of n sequential calls fn(0) ... fn(n-1)."""
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t)


def python_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def port() -> int:
    return free_port()
