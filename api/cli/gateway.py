"""`ft-cli gateway …`: the calls that went through the gateway, their statistics, and where versions serve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from api.cli.common import Commands, DbOpt, JsonOpt, money, opened, out, parse_time, print_json, table
from api.cli.models import commands as model_commands

commands = Commands()
#: where a version serves is the registry's: the same command as `ft-cli models set-serving`
commands.commands["set-serving"] = model_commands["set-serving"]

ModelOpt = Annotated[str | None, typer.Option("--model", help="Only this registered model")]
VersionOpt = Annotated[int | None, typer.Option("--version", min=1, help="Only this version")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="From this time (ISO 8601)")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Up to this time (ISO 8601)")]


@commands.command("calls")
def calls(
    model: ModelOpt = None,
    version: VersionOpt = None,
    status: Annotated[str | None, typer.Option(help="ok, error, interrupted or cancelled")] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many, newest last")] = 50,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """List the gateway's calls: version, status, tokens, latency, cost and every retry or fallback."""
    from projections.gateway_calls import list_calls

    with opened(database_url) as rt:
        found, after = [], None
        while len(found) < limit:
            page = list_calls(rt.db, model=model, version=version, status=status,
                              since=parse_time(since, "--since"), until=parse_time(until, "--until"), after=after,
                              limit=min(1000, limit - len(found)))  # fmt: skip
            found += page
            if len(page) < 1000:
                break
            after = (page[-1]["at"], page[-1]["id"])
    if as_json:
        return print_json(found)
    rows = [[c["at"][5:19], c["id"], f"{c['model']}@{c['version']}",
             c["status"] + (" stream" if c["stream"] else "") + (" fallback" if c["fallback_from"] else ""),
             f"{c['input_tokens']}/{c['output_tokens']}" + ("~" if c["estimated"] else ""), f"{c['latency_ms']:.0f}",
             money(c["cost"]) if c["cost"] is not None else "unpriced"] for c in found]  # fmt: skip
    table(f"Gateway calls ({len(found)})", ["at (UTC)", "call", "served by", "status", "tokens", "ms", "cost"], rows)
    if any(c["estimated"] for c in found):
        out.print("~ counted with tiktoken: the upstream sent no usage.")


@commands.command("stats")
def stats(
    model: ModelOpt = None,
    version: VersionOpt = None,
    since: Annotated[str | None, typer.Option("--since", help="From this time (default: a day ago)")] = None,
    until: UntilOpt = None,
    by: Annotated[str, typer.Option("--by", help="The series' step: minute or day")] = "day",
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Per model and version: calls, errors, latency p50/p95, tokens and cost, and per minute or day."""
    from projections.gateway_calls import call_stats

    if by not in ("minute", "day"):
        raise typer.BadParameter("--by is minute or day")
    start = parse_time(since, "--since") or (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="microseconds")
    with opened(database_url) as rt:
        found = call_stats(rt.db, bucket=by, model=model, version=version, since=start,
                           until=parse_time(until, "--until"))  # fmt: skip
    if as_json:
        return print_json(found | {"since": start})

    def ms(value: float | None) -> str:
        return "" if value is None else f"{value:.0f}"

    columns = ["calls", "errors", "p50 ms", "p95 ms", "tokens in", "tokens out", "cost"]

    def cells(s: dict) -> list[str]:
        cost = money(s["cost"]) + (f" (+{s['unpriced_calls']} unpriced)" if s["unpriced_calls"] else "")
        return [str(s["calls"]), str(s["errors"]), ms(s["latency_p50_ms"]), ms(s["latency_p95_ms"]),
                str(s["input_tokens"]), str(s["output_tokens"]), cost]  # fmt: skip

    table(f"Gateway calls since {start[:19]}", ["model", "version", *columns],
          [[s["model"], str(s["version"]), *cells(s)] for s in found["models"]])  # fmt: skip
    table(f"Per {by}", [by, "model", "version", *columns],
          [[s["bucket"], s["model"], str(s["version"]), *cells(s)] for s in found["series"]])  # fmt: skip
