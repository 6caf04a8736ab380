"""`ft-cli costs …`: training costs, inference records, the cost summary and the ROI of a fine-tune."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import (
    DEFAULT_ACTOR,
    NUMBERS_AS_ARGS,
    ActorOpt,
    Commands,
    DbOpt,
    JsonOpt,
    ReasonOpt,
    day_count,
    money,
    opened,
    out,
    parse_datetime,
    print_json,
    table,
)
from api.cli.jsonl import import_jsonl
from domain.batches import MAX_BATCH

commands = Commands()


@commands.command("record-training", context_settings=NUMBERS_AS_ARGS)
def record_training_cost(
    job_id: str,
    model_name: Annotated[str, typer.Argument(help="The model the job trained")],
    base_model: Annotated[str, typer.Argument(help="Base model, e.g. gpt-4o-mini-2024-07-18")],
    dataset_size: Annotated[int, typer.Argument(help="Training examples")],
    training_tokens: Annotated[int, typer.Argument(help="Billed tokens, all epochs included")],
    epochs: Annotated[int | None, typer.Option(help="Epochs")] = None,
    hours: Annotated[str | None, typer.Option("--hours", help="Training hours (hourly or GPU-hour prices)")] = None,
    total_cost: Annotated[str | None, typer.Option(help="USD; omitted: priced from the catalog")] = None,
    at: Annotated[str | None, typer.Option("--at", help="When the job ran (default: now)")] = None,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Record a job's training cost (priced from the catalog unless --total-cost is given)."""
    when = parse_datetime(at, "--at") if at else None
    with opened(database_url, fresh=False) as rt:
        r = rt.command(lambda: rt.ledger.record_training_cost(
            actor=actor, reason=reason, at=when, job_id=job_id, model_name=model_name, base_model=base_model,
            dataset_size=dataset_size, training_tokens=training_tokens, epochs=epochs, training_hours=hours,
            total_cost=total_cost,
        ))  # fmt: skip
    result = {"job_id": job_id, "model_name": model_name, "total_cost": r.cost.total, "cost_source": r.cost.source,
              "unit_price": r.cost.unit_price, "unit": r.cost.unit, "price_pattern": r.cost.price_pattern,
              "position": r.recorded.position}  # fmt: skip
    if as_json:
        return print_json(result)
    how = f" ({r.cost.unit_price} USD {r.cost.unit} from {r.cost.price_pattern})" if r.cost.unit else ""
    out.print(f"Recorded training cost of {job_id}: {r.cost.total} USD{how}.")


@commands.command("import-inferences")
def import_inferences(
    file: Annotated[Path, typer.Argument(help="JSONL: one inference record per line", exists=True, dir_okay=False)],
    batch_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="Records per appended batch")] = MAX_BATCH,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Import inference records from a JSONL file of any size, in batches, with a progress bar.

    Records already stored are skipped, so an interrupted import can simply be run again. A batch with
    a bad line is rejected whole and the import stops there, listing every bad line of that batch.
    The cost projections follow when a reader (cost-summary, the server, a worker) catches up."""
    totals = import_jsonl(file, batch_size, as_json, database_url,
                           lambda rt, batch: rt.record_inferences(batch, actor=actor), what="record")  # fmt: skip
    if as_json:
        return print_json(totals)
    skipped = f"; {totals['duplicates']:,} already stored" if totals["duplicates"] else ""
    out.print(f"Imported {totals['accepted']:,} records from {file} in {totals['batches']} batches{skipped}.")


@commands.command("summary")
def cost_summary_command(
    since: Annotated[str | None, typer.Option(help="First day of the per-day rows (YYYY-MM-DD)")] = None,
    until: Annotated[str | None, typer.Option(help="Last day of the per-day rows (YYYY-MM-DD)")] = None,
    days: Annotated[bool, typer.Option("--days", help="Also show the per-day rows")] = False,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Training and inference costs per model, overall and per day."""
    from projections.costs import cost_summary

    with opened(database_url) as rt:
        summary = cost_summary(rt.db, since=since, until=until)
    if as_json:
        return print_json(summary)
    columns = ["model", "training", "jobs", "calls", "tokens in", "tokens out", "inference", "per call"]

    def row(name: str, t: dict[str, Any]) -> list[Any]:
        return [name, money(t["training_cost"]), t["jobs"], f"{t['inferences']:,}", f"{t['input_tokens']:,}",
                f"{t['output_tokens']:,}", money(t["inference_cost"]), money(t["cost_per_call"])]  # fmt: skip

    table("Costs", columns, [row(m["model"], m) for m in summary["models"]] + [row("TOTAL", summary["total"])])
    if days:
        table("Per day", ["day", *columns], [[d["day"], *row(d["model"], d)] for d in summary["days"]])


@commands.command("roi")
def roi_command(
    base_accuracy: Annotated[str, typer.Option("--base-accuracy", help="Base model accuracy, 0..1")],
    ft_accuracy: Annotated[str, typer.Option("--ft-accuracy", help="Fine-tuned model accuracy, 0..1")],
    model: Annotated[str | None, typer.Option(help="Take training cost and cost per call from the ledger")] = None,
    base_model: Annotated[str | None, typer.Option(help="Take the base cost per call from the ledger")] = None,
    training_cost: Annotated[str | None, typer.Option(help="USD")] = None,
    base_cost_per_call: Annotated[str | None, typer.Option(help="USD")] = None,
    ft_cost_per_call: Annotated[str | None, typer.Option(help="USD")] = None,
    calls: Annotated[int | None, typer.Option(help="Expected calls in total")] = None,
    calls_per_day: Annotated[str | None, typer.Option(help="Expected calls per day (with --days)")] = None,
    days: Annotated[str | None, typer.Option(help="Horizon in days (with --calls-per-day)")] = None,
    value_per_error: Annotated[str, typer.Option(help="USD per error avoided")] = "10",
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """ROI and break-even of a fine-tune (figures given, or taken from the ledger with --model)."""
    from projections.roi_inputs import roi_report

    request = {
        "model": model, "base_model": base_model, "training_cost": training_cost,
        "base_cost_per_call": base_cost_per_call, "ft_cost_per_call": ft_cost_per_call,
        "base_accuracy": base_accuracy, "ft_accuracy": ft_accuracy, "calls": calls, "calls_per_day": calls_per_day,
        "days": days, "value_per_error": value_per_error,
    }  # fmt: skip
    with opened(database_url, fresh=model is not None or base_model is not None) as rt:
        report = roi_report(rt.db, request)
    if as_json:
        return print_json(report)
    roi_text = "n/a (free training)" if report["roi_percent"] is None else f"{report['roi_percent']:,.1f}%"
    break_even = "" if report["break_even_calls"] is None else f"{report['break_even_calls']:,}"
    table(
        f"ROI over {report['calls']:,} calls",
        ["cost savings", "error-reduction value", "net benefit", "ROI", "break-even calls", "payback days"],
        [[money(report["cost_savings"]), money(report["error_reduction_value"]), money(report["net_benefit"]),
          roi_text, break_even, day_count(report["payback_days"])]],
    )  # fmt: skip
    out.print(f"Verdict: {report['verdict']}.")
