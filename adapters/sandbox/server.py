"""Runs a sandbox app with uvicorn in a background thread, on 127.0.0.1 only.

Stopping and starting it again on the same port, with the same state, is how
tests drop the network in the middle of a job: the job lives on in the state,
while its clients see connections refused.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from adapters.sandbox.openai_finetuning import SandboxState, Timing, create_sandbox_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SandboxServer:
    def __init__(self, state: SandboxState | None = None, *, port: int | None = None, timing: Timing | None = None,
                 refuse_training: bool = False) -> None:  # fmt: skip
        self.state = state or SandboxState(timing, refuse_training=refuse_training)
        self.port = port or free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL is set to."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> SandboxServer:
        config = uvicorn.Config(create_sandbox_app(self.state), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="off")  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="openai-sandbox", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:  # uvicorn offers no event to wait on; this is start-up, not a test wait
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"The OpenAI sandbox could not start on 127.0.0.1:{self.port}.")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
