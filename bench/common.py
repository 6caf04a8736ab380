"""Shared pieces of the benchmarks: stores, servers and percentiles."""

from __future__ import annotations

import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from api.runtime import Runtime
from tests.support.postgres_server import ThrowawayPostgres, free_port
from tests.support.server import running_server

__all__ = ["ThrowawayPostgres", "running_server", "fresh_store", "percentile", "p50_ms", "rate", "background"]


@contextmanager
def fresh_store(kind: str, pg: ThrowawayPostgres, tmp: Path, label: str) -> Iterator[str]:
    """An initialised, empty store of the given kind; yields its URL."""
    if kind == "sqlite":
        path = tmp / f"{label}.sqlite3"
        url = f"sqlite:///{path}"
        Runtime.init_schema(url)
        yield url
        return
    name = pg.create_database(f"bench_{label}")
    try:
        url = pg.url(name)
        Runtime.init_schema(url)
        yield url
    finally:
        pg.drop_database(name)


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


@contextmanager
def background(cmd: list[str], *, ready: str, env: dict[str, str] | None = None, timeout: float = 120) -> Iterator[None]:
    """Runs a server process until the block ends; waits for a line saying it is ready."""
    proc = subprocess.Popen(cmd, env=env or dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str | None] = queue.Queue()
    log: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=timeout)
            if line is None:
                raise RuntimeError(f"{cmd[0]} exited before it was ready:\n" + "".join(log[-30:]))
            if ready in line:
                break
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def python_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def port() -> int:
    return free_port()
