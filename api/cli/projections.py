"""`ft-cli projections …`: status, quarantine, reapply, rebuild, and `run` (a worker that follows the log)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer

from api.cli.common import Commands, DbOpt, JsonOpt, err, opened, out, print_json, table

commands = Commands()


@commands.command("status")
def projections_status(as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """Position, head and lag of each projection."""
    with opened(database_url, fresh=False) as rt:
        rows = [{"name": s.name, "position": s.position, "head": s.head, "lag": s.lag, "updated_at": s.updated_at,
                 "quarantined": s.quarantined} for s in rt.engine.status()]  # fmt: skip
    if as_json:
        return print_json(rows)
    columns = ["name", "position", "head", "lag", "quarantined", "updated_at"]
    table("Projections", [c.removesuffix("_at") for c in columns], [[r[c] for c in columns] for r in rows])
    if any(r["quarantined"] for r in rows):
        err.print("Some events could not be applied and were skipped: `ft-cli projections quarantine` shows them.")


def _quarantine_row(q: Any) -> dict[str, Any]:
    return {"projection": q.projection, "position": q.position, "topic": q.topic, "originator_id": q.originator_id,
            "originator_version": q.originator_version, "error": q.error, "attempts": q.attempts,
            "quarantined_at": q.quarantined_at}  # fmt: skip


@commands.command("quarantine")
def projections_quarantine(
    name: Annotated[str | None, typer.Argument(help="One projection (default: all)")] = None,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Events a projection could not apply (after retries) and skipped, with the error."""
    with opened(database_url, fresh=False) as rt:
        rows = [_quarantine_row(q) for q in rt.engine.quarantined(name, limit=100_000)]
    if as_json:
        return print_json(rows)
    if not rows:
        out.print("No quarantined events.")
        return
    table("Quarantined events", ["projection", "position", "topic", "attempts", "error"],
           [[r["projection"], r["position"], r["topic"].rpartition(":")[2], r["attempts"], r["error"][:120]]
            for r in rows])  # fmt: skip
    err.print("Once the cause is fixed: `ft-cli projections reapply NAME` (or `ft-cli projections rebuild NAME`).")


@commands.command("reapply")
def projections_reapply(
    name: Annotated[str, typer.Argument(help="The projection")],
    position: Annotated[list[int] | None, typer.Option("--position", help="Only this position (repeatable)")] = None,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Apply a projection's quarantined events again, after a fix; those that still fail stay."""
    with opened(database_url, fresh=False) as rt:
        report = rt.engine.reapply(name, position or None)
    result = {"name": report.name, "applied": report.applied,
              "still_failing": [_quarantine_row(q) for q in report.still_failing]}  # fmt: skip
    if as_json:
        return print_json(result)
    out.print(f"{report.name}: {len(report.applied)} applied, {len(report.still_failing)} still failing.")
    if report.still_failing:
        raise typer.Exit(1)


@commands.command("rebuild")
def projections_rebuild(
    name: Annotated[str | None, typer.Argument(help="One projection (default: all)")] = None,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Replay projections from position zero into fresh tables, then swap them in."""
    with opened(database_url, fresh=False) as rt:
        names = [rt.engine.get(name).name] if name else list(rt.engine.projections)
        reports = []
        for n in names:
            with out.status(f"Rebuilding {n} ..."):
                reports.append(rt.engine.rebuild(n))
    rows = [{"name": r.name, "events": r.events, "position": r.position, "seconds": round(r.seconds, 3),
             "events_per_second": round(r.events_per_second)} for r in reports]  # fmt: skip
    if as_json:
        return print_json(rows)
    for r in rows:
        out.print(f"Rebuilt {r['name']}: {r['events']} events in {r['seconds']} s ({r['events_per_second']} events/s).")


@commands.command("run")
def projections_run(
    interval: Annotated[float, typer.Option(min=0.01, help="Seconds between catch-ups")] = 0.2,
    database_url: DbOpt = None,
    parent_pid: Annotated[int | None, typer.Option(hidden=True, help="Stop when this process is gone")] = None,
) -> None:
    """Follow the log and keep every projection current until interrupted (a worker)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if parent_pid is not None:  # started by `ft-cli serve`: end with it
        from api import projection_worker

        projection_worker.stop_when_orphaned(parent_pid, stop)
    with opened(database_url, fresh=False) as rt:
        err.print(f"Following {rt.config.display_url} (Ctrl-C to stop) ...")
        rt.engine.follow(stop, interval=interval)
