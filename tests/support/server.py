"""`ft-cli serve` as a real process on 127.0.0.1, stopped when the test ends."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.postgres_server import free_port

READY_LINE = "Application startup complete"


@contextmanager
def running_server(database_url: str, *, extra_env: dict[str, str] | None = None, timeout: float = 60) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FT_")}
    env |= {"FT_DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"} | (extra_env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
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
        while True:  # the server says when it is ready; no polling, no sleeping
            line = lines.get(timeout=timeout)
            if line is None:
                raise RuntimeError("server exited before it was ready:\n" + "".join(log))
            if READY_LINE in line:
                break
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
