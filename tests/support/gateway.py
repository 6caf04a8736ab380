"""A served ft-lifecycle app with its gateway in front of a sandbox upstream, for the gateway's tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
from pydantic import SecretStr

from api.http.app import create_app
from api.runtime import Runtime
from api.settings import Settings
from sandbox.server import LoopbackServer, SandboxServer
from tests.support.postgres_server import free_port
from tests.support.server import UVICORN_READY, process_until_ready

#: the upstream's key, held by the server: it must reach the upstream and nowhere else
UPSTREAM_KEY = "sk-upstream-DO-NOT-LEAK-5b7d1c"
#: the application's token for the gateway (FT_API_TOKENS): it must never reach the upstream
APP_TOKEN = "tok-app-3f9e2a-0c41d87b"
FT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::abc123"
PROMPT = "How do I update the billing address?"
ANSWER = "Open Account, then Billing, and edit the address; it applies at once."
MESSAGES = [{"role": "user", "content": PROMPT}]


@dataclass
class GatewayUnderTest:
    runtime: Runtime
    upstream: SandboxServer
    server: LoopbackServer
    app: Any

    @property
    def root(self) -> str:
        return self.server.root_url

    def sdk(self, *, retries: int = 0, token: str = APP_TOKEN, timeout: float = 10.0) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.root}/gateway/v1", api_key=token, max_retries=retries, timeout=timeout)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.root, headers={"Authorization": f"Bearer {APP_TOKEN}"}, timeout=30)

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway

    def register(self, name: str = "support-bot", *, serving: dict[str, str] | None = None, deploy: bool = True,
                 job: str | None = None) -> int:  # fmt: skip
        """Registers (and deploys) a version served by the sandbox; waits until the gateway routes by it."""
        serving = serving or {"upstream": "sandbox", "model": FT_MODEL}
        with self.api() as api:
            body = {"base_model": "gpt-4o-mini-2024-07-18", "job_id": job or f"ftjob-{name}-{id(serving)}",
                    "dataset_size": 500, "serving": serving}  # fmt: skip
            r = api.post(f"/v1/models/{name}/versions", json=body)
            assert r.status_code == 201, r.text
            number, position = r.json()["version"], r.json()["position"]
            if deploy:
                position = self.deploy(name, number)
        assert self.gateway.routes.wait_for(position, timeout=30)
        return number

    def deploy(self, name: str, number: int) -> int:
        return self._move(f"/v1/models/{name}/deploy", {"version": number, "reason": "test"})

    def rollback(self, name: str, to: int) -> int:
        return self._move(f"/v1/models/{name}/rollback", {"target_version": to, "reason": "test"})

    def _move(self, path: str, body: dict[str, Any]) -> int:
        """A deploy or rollback; returns its position once the gateway routes by it."""
        with self.api() as api:
            r = api.post(path, json=body)
            assert r.status_code == 200, r.text
        position = r.json()["position"]
        assert self.gateway.routes.wait_for(position, timeout=30)
        return position

    def flushed(self) -> None:
        """Every call answered so far is written, and the views have it."""
        assert self.gateway.recorder.wait_idle(30)
        self.gateway.recorder.flush()
        self.runtime.engine.catch_up()


@contextmanager
def upstream_process(**chat: Any) -> Iterator[str]:
    """The sandbox in a process of its own (the tests' other core); yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "api.cli", "sandbox", "openai", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FT_")} | {"PYTHONUNBUFFERED": "1"}
    with process_until_ready(cmd, ready=UVICORN_READY, env=env):
        base = f"http://127.0.0.1:{port}"
        httpx.post(f"{base}/_sandbox/chat", json={"answers": {PROMPT: ANSWER}} | chat).raise_for_status()
        yield f"{base}/v1"


@contextmanager
def gateway_under_test(runtime: Runtime, tmp_path: Path, *, endpoints: dict[str, Any] | None = None,
                       azure: bool = False, **settings: Any) -> Iterator[GatewayUnderTest]:  # fmt: skip
    """The app in a thread, the sandbox `sandbox` upstream in another; `endpoints` adds upstreams, `azure`
    makes the sandbox Azure OpenAI's endpoint too."""
    with SandboxServer() as upstream:
        upstream.state.chat.answers = {PROMPT: ANSWER}
        upstream.state.valid_keys = {UPSTREAM_KEY}
        config = Settings(
            database_url=runtime.config.url, api_tokens=f"app:{APP_TOKEN}", poll_jobs=False, run_ab_policies=False,
            projection_interval=0.05, allow_private_endpoints=True, gateway_journal_dir=tmp_path / "journal",
            endpoints={"sandbox": {"base_url": upstream.base_url, "api_key": UPSTREAM_KEY}} | (endpoints or {}),
        ).model_copy(update=settings)  # fmt: skip
        if azure:
            config = config.model_copy(update={"azure_openai_endpoint": upstream.root_url, "openai_api_version": "v1",
                                               "azure_openai_api_key": SecretStr(UPSTREAM_KEY)})  # fmt: skip
        app = create_app(config, runtime)
        with LoopbackServer(lambda: app, lifespan="on") as server:
            yield GatewayUnderTest(runtime, upstream, server, app)


def calls_for_units(base_url: str, units: list[str], *, per_unit: int, concurrency: int = 8) -> list[dict[str, str]]:
    """Calls through the gateway with the async SDK, `per_unit` for each unit (X-FT-Unit), in a process
    of its own when run by a process pool; returns each call's unit, arm, version and call id."""
    import asyncio

    async def run() -> list[dict[str, str]]:
        sdk = openai.AsyncOpenAI(base_url=base_url, api_key=APP_TOKEN, max_retries=0,
                                 http_client=httpx.AsyncClient(limits=httpx.Limits(max_connections=64)))  # fmt: skip
        work = iter([unit for _ in range(per_unit) for unit in units])
        done: list[dict[str, str]] = []

        async def worker() -> None:
            for unit in work:
                raw = await sdk.chat.completions.with_raw_response.create(
                    model="support-bot", messages=MESSAGES, extra_headers={"X-FT-Unit": unit})  # type: ignore[arg-type]
                headers = raw.headers
                done.append({"unit": unit, "arm": headers.get("x-ft-arm", ""), "call_id": headers["x-ft-call-id"],
                             "version": headers["x-ft-model-version"]})

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await sdk.close()
        return done

    return asyncio.run(run())
