"""`ft-cli serve`: the HTTP API, with its projection worker process. FastAPI and uvicorn load only here."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import Commands, DbOpt

commands = Commands()


@commands.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default FT_HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default FT_PORT or 8000)")] = None,
    database_url: DbOpt = None,
) -> None:
    """Serve the HTTP API (docs at /docs)."""
    import uvicorn

    from api.http.app import create_app
    from api.runtime import Runtime
    from api.settings import Settings

    overrides = {k: v for k, v in {"host": host, "port": port, "database_url": database_url}.items() if v is not None}
    settings = Settings(**overrides)
    Runtime.open(settings.database_url).close()  # fail here, with a clear message, not inside the server
    worker = None
    if settings.follow_projections and settings.projection_worker == "process":
        from api import projection_worker

        # A worker process follows the log; the server still projects its own commands' events.
        worker = projection_worker.start(settings.database_url, settings.projection_interval)
        settings = settings.model_copy(update={"follow_projections": False})
    try:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    finally:
        if worker is not None:
            projection_worker.stop(worker)
