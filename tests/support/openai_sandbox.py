"""The OpenAI sandbox for tests: served on 127.0.0.1 over real HTTP, on a clock the test moves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from adapters.openai_jobs import OpenAISettings
from sandbox.openai_finetuning import Fault, SandboxState, Timing
from sandbox.server import SandboxServer

#: an API key that must never show up in events, logs or responses
SECRET_KEY = "sk-test-DO-NOT-LEAK-7c1e9a44f0b2"
TIMING = Timing(validate=10, queue=10, train=60)


@dataclass
class ManualClock:
    now: float = 1_795_000_000.0
    #: seconds every reading moves the clock on (0: it moves only when the test says)
    step: float = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Sandbox:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.state = SandboxState(TIMING, clock=self.clock)
        self.server = SandboxServer(self.state)

    @property
    def settings(self) -> OpenAISettings:
        # max_retries=2 is the SDK's default; a short timeout keeps the "network down" tests quick
        return OpenAISettings(api_key=SECRET_KEY, base_url=self.server.base_url, timeout=5.0)

    def to_running(self) -> None:
        self.clock.advance(TIMING.validate + TIMING.queue + 1)

    def to_finished(self) -> None:
        self.clock.advance(TIMING.validate + TIMING.queue + TIMING.train + 1)

    def fault(self, status: int, *, times: int = 1, method: str | None = None, path: str | None = None,
              retry_after: float | None = None) -> None:  # fmt: skip
        self.state.faults.append(Fault(status, method, path, times, retry_after=retry_after))

    def requests_to(self, method: str, suffix: str) -> int:
        return sum(1 for m, p in self.state.requests if m == method and p.endswith(suffix))


@contextmanager
def running_sandbox() -> Iterator[Sandbox]:
    sandbox = Sandbox()
    sandbox.server.start()
    try:
        yield sandbox
    finally:
        sandbox.server.stop()


def chat_line(i: int, *, answer: str | None = None) -> str:
    return json.dumps({"messages": [
        {"role": "system", "content": "You answer billing questions."},
        {"role": "user", "content": f"How do I update the billing address on account {i}?"},
        {"role": "assistant", "content": answer if answer is not None else
         f"Open Account, then Billing, and edit the address of account {i}; it applies at once."},
    ]})  # fmt: skip


def chat_file(path: Path, n: int, *, extra: list[str] | None = None) -> Path:
    path.write_text("".join(chat_line(i) + "\n" for i in range(n)) + "".join(x + "\n" for x in extra or []))
    return path
