"""`ft-cli prices …`: the price catalog, listed and set with effective dates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.common import (
    DEFAULT_ACTOR,
    ActorOpt,
    Commands,
    DbOpt,
    JsonOpt,
    ReasonOpt,
    fail,
    format_ts,
    opened,
    out,
    parse_datetime,
    print_json,
    table,
)

if TYPE_CHECKING:
    from domain.pricing import Price

commands = Commands()


def _price_row(p: Price) -> dict[str, Any]:
    return {
        "model": p.pattern,
        "effective_from": p.effective_from,
        **p.rates(),
        "source": p.source,
        "read_on": p.read_on,
    }


@commands.command("list")
def prices_list(
    as_of: Annotated[str | None, typer.Option("--as-of", help="In force at this time (default: now)")] = None,
    model: Annotated[str | None, typer.Option(help="Only the price that applies to this model")] = None,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """The prices in force now, or at a past time."""
    at = parse_datetime(as_of, "--as-of") if as_of else datetime.now(UTC)
    with opened(database_url, fresh=False) as rt:
        if model is not None:
            price = rt.ledger.price_for(model, at)
            if price is None:
                raise fail(f"No price applies to {model!r} at {format_ts(at)}: set one with `ft-cli prices set`.")
            prices = [price]
        else:
            prices = rt.ledger.prices_at(at)
    rows = [_price_row(p) for p in prices]
    if as_json:
        return print_json(rows)
    table(
        f"Prices in force at {format_ts(at)} (USD)",
        ["model", "from", "input/1M", "cached/1M", "output/1M", "training/1M", "training/h", "GPU-h"],
        [[r["model"], r["effective_from"].date(), r["input_per_1m"], r["cached_input_per_1m"], r["output_per_1m"],
          r["training_per_1m"], r["training_per_hour"], r["gpu_hour"]] for r in rows],
    )  # fmt: skip


@commands.command("set")
def prices_set(
    model: Annotated[str, typer.Argument(help="Model name, or a prefix ending in '*'")],
    effective_from: Annotated[str, typer.Option("--effective-from", help="In force from (ISO 8601)")],
    input_per_1m: Annotated[str | None, typer.Option("--input", help="USD per 1M input tokens")] = None,
    output_per_1m: Annotated[str | None, typer.Option("--output", help="USD per 1M output tokens")] = None,
    cached_input_per_1m: Annotated[str | None, typer.Option("--cached-input", help="USD per 1M cached tokens")] = None,
    training_per_1m: Annotated[str | None, typer.Option("--training", help="USD per 1M training tokens")] = None,
    training_per_hour: Annotated[str | None, typer.Option("--training-per-hour", help="USD per training hour")] = None,
    gpu_hour: Annotated[str | None, typer.Option("--gpu-hour", help="Local models: USD per GPU-hour")] = None,
    source: Annotated[str | None, typer.Option(help="Where the price comes from")] = None,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Add or override a price from a date on; costs recorded before keep their prices."""
    starts = parse_datetime(effective_from, "--effective-from")
    with opened(database_url, fresh=False) as rt:
        result = rt.ledger.set_price(
            actor=actor, reason=reason, pattern=model, effective_from=starts,
            input_per_1m=input_per_1m, output_per_1m=output_per_1m, cached_input_per_1m=cached_input_per_1m,
            training_per_1m=training_per_1m, training_per_hour=training_per_hour, gpu_hour=gpu_hour, source=source,
        )  # fmt: skip
    if as_json:
        return print_json(_price_row(result.price) | {"position": result.recorded.position})
    out.print(f"Price of {result.price.pattern} set from {format_ts(result.price.effective_from)}.")
