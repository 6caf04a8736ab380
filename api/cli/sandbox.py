"""`ft-cli sandbox …`: local stand-ins that speak providers' real APIs (FastAPI and uvicorn load only here)."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import Commands, out

commands = Commands()


@commands.command("openai")
def sandbox_openai(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1")] = 8765,
    refuse_training: Annotated[bool, typer.Option(help="Answer 403 training_not_available, as OpenAI does")] = False,
    train_seconds: Annotated[float, typer.Option(min=0.01, help="How long a job trains")] = 20.0,
    reply_delay: Annotated[float, typer.Option(min=0, help="Seconds before a model call's first byte")] = 0.0,
    chunk_interval: Annotated[float, typer.Option(min=0, help="Seconds between a streamed answer's chunks")] = 0.0,
) -> None:
    """Serve a local stand-in for OpenAI's fine-tuning API (files, jobs, events, checkpoints, models)."""
    import uvicorn

    from sandbox.openai_finetuning import SandboxState, Timing, create_sandbox_app

    state = SandboxState(Timing(validate=2.0, queue=2.0, train=train_seconds), refuse_training=refuse_training)
    state.chat.delay, state.chat.chunk_interval = reply_delay, chunk_interval
    out.print(f"OpenAI fine-tuning sandbox on http://127.0.0.1:{port}/v1. In another shell:\n"
              f"  export OPENAI_BASE_URL=http://127.0.0.1:{port}/v1 OPENAI_API_KEY=sandbox-key")  # fmt: skip
    uvicorn.run(create_sandbox_app(state), host="127.0.0.1", port=port, log_level="info")
