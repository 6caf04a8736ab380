"""Runs a sandbox app with uvicorn in a background thread, on 127.0.0.1 only.

Stopping and starting it again on the same port, with the same state, is how
tests drop the network in the middle of a job: the job lives on in the state,
while its clients see connections refused.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Self

import uvicorn

from sandbox.ollama_server import OllamaState, create_ollama_app
from sandbox.openai_finetuning import SandboxState, Timing, create_sandbox_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopbackServer:
    """An ASGI app served by uvicorn in a thread on 127.0.0.1; `make_app` builds it for each start."""

    def __init__(self, make_app: Callable[[], Any], *, port: int | None = None, lifespan: str = "off") -> None:
        self.make_app, self.lifespan = make_app, lifespan
        self.port = port or free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Self:
        config = uvicorn.Config(self.make_app(), host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan=self.lifespan)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="openai-sandbox", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:  # uvicorn offers no event to wait on; this is start-up, not a test wait
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"The local server could not start on 127.0.0.1:{self.port}.")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class SandboxServer(LoopbackServer):
    """The OpenAI fine-tuning sandbox; its state outlives a stop, so a restart resumes where it was."""

    def __init__(self, state: SandboxState | None = None, *, port: int | None = None, timing: Timing | None = None,
                 refuse_training: bool = False) -> None:  # fmt: skip
        self.state = state or SandboxState(timing, refuse_training=refuse_training)
        super().__init__(lambda: create_sandbox_app(self.state), port=port)

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL is set to."""
        return f"http://127.0.0.1:{self.port}/v1"


class OllamaServer(LoopbackServer):
    """The Ollama stand-in; `root_url` is what OLLAMA_HOST is set to."""

    def __init__(self, state: OllamaState | None = None, *, port: int | None = None) -> None:
        self.state = state or OllamaState()
        super().__init__(lambda: create_ollama_app(self.state), port=port)
