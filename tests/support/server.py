"""Server processes for tests and benchmarks, on 127.0.0.1, stopped when the block ends."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.postgres_server import free_port

UVICORN_READY = "Application startup complete"


@contextmanager
def process_until_ready(
    cmd: list[str], *, ready: str | tuple[str, ...], env: dict[str, str], timeout: float = 120,
    started: list[subprocess.Popen[str]] | None = None,
) -> Iterator[list[str]]:  # fmt: skip
    """Starts `cmd` and returns once it has printed `ready` on stderr (every one of them, in any order, when
    `ready` is a tuple: a server and its worker process share stderr): no polling, no sleeping.
    Yields the lines it has printed on stderr so far (the list grows as it prints).
    `started` receives the process (for tests that kill it)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if started is not None:
        started.append(proc)
    lines: queue.Queue[str | None] = queue.Queue()
    log: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    waiting = [ready] if isinstance(ready, str) else list(ready)
    deadline = time.monotonic() + timeout  # bounds the whole start, not each line: a chatty process ends too
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"{cmd[0]} was not ready after {timeout:.0f} s:\n" + "".join(log[-40:])) from None
            if line is None:
                raise RuntimeError(f"{cmd[0]} exited before it was ready:\n" + "".join(log[-40:]))
            waiting = [r for r in waiting if r not in line]
            if not waiting:
                break
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_server(
    database_url: str, *, extra_env: dict[str, str] | None = None, log: list[str] | None = None,
    started: list[subprocess.Popen[str]] | None = None,
) -> Iterator[str]:  # fmt: skip
    """`ft-cli serve` on a free port; yields its base URL. `log` receives what it prints on stderr."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FT_")}
    env |= {"FT_DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"} | (extra_env or {})
    cmd = [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with process_until_ready(cmd, ready=UVICORN_READY, env=env, started=started) as printed:
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            if log is not None:
                log.extend(printed)
