"""`ft-cli db init`: the store's schema, created once per database."""

from __future__ import annotations

from api.cli.common import Commands, DbOpt, JsonOpt, out, print_json

commands = Commands()


@commands.command("init")
def db_init(as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """Create the event tables, projections and key tables (once per database)."""
    from api.runtime import Runtime

    config, rebuilt = Runtime.init_schema(database_url)
    result = {"store": config.display_url, "rebuilt": [r.name for r in rebuilt]}
    if as_json:
        return print_json(result)
    out.print(f"Schema ready in {config.display_url}.")
