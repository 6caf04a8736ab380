"""`ft-cli serve` as `make run` starts it: a projection worker process of its own follows the log,
and it ends with the server, even when the server is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx2
import psutil

from tests.support.postgres_server import free_port
from tests.support.server import UVICORN_READY, process_until_ready


def test_serve_projects_in_a_worker_process_that_dies_with_the_server(database_url: str) -> None:
    subprocess.run([sys.executable, "-m", "api.cli", "db", "init", "--database-url", database_url], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FT_")}
    env |= {"FT_DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1", "FT_READ_WAIT_SECONDS": "60"}
    cmd = [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    # the worker shares the server's stderr: its first line says it follows the store; the server's, that it serves
    with process_until_ready(cmd, ready=("Following", UVICORN_READY), env=env):
        [server] = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == cmd]
        [worker] = server.children()
        assert "projections" in worker.cmdline() and str(server.pid) in worker.cmdline()

        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=90) as client:
            records = [{"id": f"r{k}", "model": "gpt-4o-mini", "input_tokens": 100, "output_tokens": 10,
                        "latency_ms": 5, "is_fine_tuned": False} for k in range(50)]  # fmt: skip
            ingested = client.post("/v1/inferences", json={"records": records}).json()
            # the server does not follow the log itself: the worker brings the costs up to this position
            summary = client.get("/v1/costs/summary", params={"min_position": ingested["position"]})
            assert summary.status_code == 200 and summary.json()["total"]["inferences"] == 50

        os.kill(server.pid, signal.SIGKILL)
        worker.wait(timeout=30)  # the kernel's parent-death signal ends it
        assert not worker.is_running()
