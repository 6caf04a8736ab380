"""ft-cli: the same application services as the HTTP API, on the store FT_DATABASE_URL names.

Every command has --json for scripts; errors are one line on stderr and a
non-zero exit code (1 for a refused request, 2 for a usage mistake).
"""

from __future__ import annotations

import functools
import getpass
import json
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from eventsourcing.persistence import OperationalError, PersistenceError
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress, TextColumn
from rich.table import Table

from adapters.store import StoreConfigError
from api.runtime import Runtime, SchemaMissing
from api.settings import Settings, settings_error_message
from domain.errors import DomainError, InvalidInput, RuleViolation
from domain.inference import MAX_BATCH, BatchRejected
from domain.pricing import Price
from application.registry import Deployed
from projections import deployments, registry
from projections.ab_stats import list_tests
from projections.audit import AuditFilter, audited_event_types, query_audit
from projections.costs import cost_summary
from projections.datasets import list_datasets
from projections.roi_inputs import roi_report
from projections.rows import format_ts

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="ft-cli",
    help="ft-lifecycle: model registry, deployments and audit trail for fine-tuned LLMs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Create the store's schema.", no_args_is_help=True)
prices_app = typer.Typer(help="The price catalog: list and set prices with effective dates.", no_args_is_help=True)
projections_app = typer.Typer(help="Status, rebuild and follow the read models.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(projections_app, name="projections")
app.add_typer(prices_app, name="prices")

out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ActorOpt = Annotated[str, typer.Option("--actor", help="Who acts (default: the OS user).")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why: kept in the audit trail.")]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url", envvar="FT_DATABASE_URL", help="sqlite:///PATH or postgresql://...", show_default=False
    ),
]
# Negative numbers must reach our validation (a clear message), not click's option parser.
NUMBERS_AS_ARGS = {"ignore_unknown_options": True}


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (some containers)
        return "unknown"


DEFAULT_ACTOR = _default_actor()


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handles_errors(fn: F) -> F:
    """Turns every expected failure into one line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DomainError as e:
            raise _fail(e.detail) from None
        except (StoreConfigError, SchemaMissing) as e:
            raise _fail(str(e)) from None
        except ValidationError as e:
            raise _fail(settings_error_message(e)) from None
        except (OperationalError, PersistenceError) as e:
            raise _fail(f"the store is unavailable ({e}); nothing was recorded") from None

    return wrapper  # type: ignore[return-value]


def command(typer_app: typer.Typer = app, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    def register(fn: F) -> F:
        typer_app.command(name, **kwargs)(handles_errors(fn))
        return fn

    return register


@contextmanager
def opened(database_url: str | None, *, fresh: bool = True) -> Iterator[Runtime]:
    """Opens the store; `fresh` brings the projections up to date before reading."""
    runtime = Runtime.open(database_url)
    try:
        if fresh:
            runtime.engine.catch_up()
        yield runtime
    finally:
        runtime.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_ts(value)
    raise TypeError(type(value).__name__)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, default=_json_default, indent=2))


def money(value: Any) -> str:
    """USD for people: -$0.0005, $1,234.57; under a cent, two significant digits ($0.00036). JSON keeps exact values."""
    if value is None:
        return ""
    amount = Decimal(str(value))
    if not amount.is_finite():
        return str(amount)
    sign, size = "-" if amount < 0 else "", abs(amount)
    places = 2 if size >= 1 or size == 0 else max(2, 1 - size.adjusted())  # cents, or 2 significant digits
    rounded = size.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    places = max(2, -rounded.normalize().as_tuple().exponent) if rounded else 2  # no trailing zeros past cents
    return f"{sign}${rounded:,.{places}f}"


def day_count(value: Any) -> str:
    """A number of days for people, to one decimal."""
    return "" if value is None else f"{Decimal(str(value)):,.1f}"


def _table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*["" if v is None else str(v) for v in r])
    out.print(table)


def _parse_datetime(value: str, option: str) -> datetime:
    """ISO 8601; a time without an offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{option} {value!r} is not an ISO 8601 time, e.g. 2026-11-26T14:02:00Z.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_time(value: str | None, option: str) -> str | None:
    return None if value is None else format_ts(_parse_datetime(value, option))


# ------------------------------------------------------------------ registry


@command(name="register-model", context_settings=NUMBERS_AS_ARGS)
def register_model(
    name: Annotated[str, typer.Argument(help="Model name: 1-64 of A-Za-z0-9._-")],
    base_model: Annotated[str, typer.Argument(help="Base model, e.g. gpt-4o-mini-2024-07-18")],
    job_id: Annotated[str, typer.Argument(help="Fine-tuning job id")],
    dataset_size: Annotated[int, typer.Argument(help="Number of training examples (0 or more)")],
    accuracy: Annotated[float | None, typer.Option(help="Accuracy 0..1")] = None,
    cost: Annotated[str | None, typer.Option(help="Training cost in USD")] = None,
    training: Annotated[bool, typer.Option("--training", help="Register as TRAINING (its job still runs)")] = False,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Register a new version of a model (the model is created with its first version)."""
    with opened(database_url, fresh=False) as rt:
        r = rt.register_version(  # a given cost also goes to the cost ledger
            name, base_model=base_model, job_id=job_id, dataset_size=dataset_size, accuracy=accuracy,
            cost=cost, training=training, actor=actor, reason=reason,
        )  # fmt: skip
        rt.engine.reach(r.recorded.position)
    result = {"model": name, "version": r.number, "status": r.status.value, "position": r.recorded.position}
    if as_json:
        return print_json(result)
    out.print(f"Registered {name} version {r.number} ({r.status.value}).")


@command(name="list-models")
def list_models(as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """List registered models with their latest and deployed versions."""
    with opened(database_url) as rt:
        models, after = [], None
        while page := registry.list_models(rt.db, after=after, limit=1000):
            models += page
            after = page[-1]["name"]
    if as_json:
        return print_json(models)
    if not models:
        return out.print("No models registered yet: ft-cli register-model NAME BASE_MODEL JOB_ID DATASET_SIZE")
    _table(
        "Models",
        ["name", "versions", "latest", "deployed", "updated", "by"],
        [[m["name"], m["version_count"], m["latest_version"], m["deployed_version"], m["updated_at"], m["created_by"]]
         for m in models],
    )  # fmt: skip


def _deployed_result(d: Deployed, rt: Runtime, as_json: bool, verb: str) -> None:
    rt.engine.reach(d.recorded.position)
    result = {"model": d.model, "version": d.number, "previous_version": d.previous, "status": "DEPLOYED",
              "position": d.recorded.position}  # fmt: skip
    if as_json:
        return print_json(result)
    before = f"; version {d.previous} is ARCHIVED" if d.previous is not None else ""
    out.print(f"{verb} {d.model}: version {d.number} is DEPLOYED{before}.")


@command(name="deploy-model", context_settings=NUMBERS_AS_ARGS)
def deploy_model(
    name: str,
    version: Annotated[int | None, typer.Option(help="Version to deploy (default: the latest READY)")] = None,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Deploy a version; the version deployed before is archived."""
    with opened(database_url, fresh=False) as rt:
        _deployed_result(rt.registry.deploy(name, version, actor=actor, reason=reason), rt, as_json, "Deployed")


@command(name="rollback-model", context_settings=NUMBERS_AS_ARGS)
def rollback_model(
    name: str,
    version: Annotated[int, typer.Argument(help="The older version to roll back to")],
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Roll back to an older version: the deployed one is archived, the target deployed."""
    with opened(database_url, fresh=False) as rt:
        _deployed_result(rt.registry.rollback(name, version, actor=actor, reason=reason), rt, as_json, "Rolled back")


@command(name="set-model-status", context_settings=NUMBERS_AS_ARGS)
def set_model_status(
    name: str,
    status: Annotated[str, typer.Argument(help="TRAINING, READY, DEPLOYED, ARCHIVED or FAILED")],
    version: Annotated[int | None, typer.Option(help="Version (default: the latest)")] = None,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Move a version to another status (DEPLOYED deploys it)."""
    with opened(database_url, fresh=False) as rt:
        r = rt.registry.set_status(name, version, status, actor=actor, reason=reason)
        if isinstance(r, Deployed):
            return _deployed_result(r, rt, as_json, "Deployed")
        rt.engine.reach(r.recorded.position)
    result = {"model": name, "version": r.number, "status": r.to_status.value,
              "previous_status": r.from_status.value, "position": r.recorded.position}  # fmt: skip
    if as_json:
        return print_json(result)
    out.print(f"{name} version {r.number}: {r.from_status.value} -> {r.to_status.value}.")


@command(name="deployment-status")
def deployment_status(
    name: Annotated[str | None, typer.Argument(help="One model (default: all)")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="As it was at this time (ISO 8601)")] = None,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """What is deployed now, or at a past time: version, since, by whom, why."""
    when = _parse_time(as_of, "--as-of")
    with opened(database_url) as rt:
        where: dict[str, Any] = {"model": name} if name else {"limit": 100_000}
        rows = (deployments.current_status(rt.db, **where) if when is None
                else deployments.status_as_of(rt.db, when, **where))  # fmt: skip
    if name and not rows:
        raise _fail(f"Model {name!r} was not registered{' at ' + when if when else ''}.")
    if as_json:
        return print_json(rows[0] if name else rows)
    _table(
        f"Deployments{' as of ' + when if when else ''}",
        ["model", "deployed", "since", "by", "reason", "versions"],
        [[r["model"], r["deployed_version"], r["deployed_since"], r["deployed_by"], r["reason"],
          ", ".join(f"v{v['version']} {v['status']}" for v in r["versions"])] for r in rows],
    )  # fmt: skip


def _audit_rows(rt: Runtime, f: AuditFilter, *, all_pages: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = query_audit(rt.db, f)
        rows += page
        if not all_pages or len(page) < f.limit:
            return rows
        f = AuditFilter(**{**f.__dict__, "after": page[-1]["position"]})


def _print_audit(rows: list[dict[str, Any]], title: str) -> None:
    _table(
        title,
        ["pos", "time", "model", "version", "event", "actor", "reason"],
        [[r["position"], r["timestamp"], r["model"], r["version"], r["event_type"], r["actor"], r["reason"]]
         for r in rows],
    )  # fmt: skip


@command(name="model-history")
def model_history(name: str, as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """Every change to one model, in order: who, when, what and why."""
    with opened(database_url) as rt:
        rt.registry.load(name)  # a clear error for an unknown model
        rows = _audit_rows(rt, AuditFilter(model=name, limit=1000), all_pages=True)
    if as_json:
        return print_json(rows)
    _print_audit(rows, f"History of {name}")


@command(name="audit")
def audit(
    model: Annotated[str | None, typer.Option(help="Only this model")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type, e.g. RolledBack")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only events by this actor")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this time (ISO 8601)")] = None,
    after: Annotated[int, typer.Option("--after", min=0, max=2**63 - 1,  # it reaches SQL as a BIGINT
                                       help="Start after this log position")] = 0,  # fmt: skip
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Query the audit trail in global order."""
    if event_type is not None and event_type not in audited_event_types():
        raise _fail(f"Unknown event type {event_type!r}: use one of {', '.join(audited_event_types())}.")
    f = AuditFilter(
        model=model, event_type=event_type, actor=actor, since=_parse_time(since, "--since"),
        until=_parse_time(until, "--until"), after=after, limit=limit,
    )  # fmt: skip
    with opened(database_url) as rt:
        rows = query_audit(rt.db, f)
    if as_json:
        return print_json(rows)
    _print_audit(rows, "Audit trail")


@command(name="export-registry")
def export_registry(
    file: Annotated[Path, typer.Argument(help="Where to write the JSON")],
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Write the registry as JSON: a model name mapped to its versions."""
    with opened(database_url) as rt:
        data = registry.export_registry(rt.db)
    try:
        file.write_text(json.dumps(data, default=_json_default, indent=2))
    except OSError as e:
        raise _fail(f"cannot write {file}: {e.strerror}") from None
    summary = {"file": str(file), "models": len(data), "versions": sum(len(v) for v in data.values())}
    if as_json:
        return print_json(summary)
    out.print(f"Wrote {summary['versions']} versions of {summary['models']} models to {file}.")


# -------------------------------------------------------------- projections


@command(projections_app, name="status")
def projections_status(as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """Position, head and lag of each projection."""
    with opened(database_url, fresh=False) as rt:
        rows = [{"name": s.name, "position": s.position, "head": s.head, "lag": s.lag, "updated_at": s.updated_at,
                 "quarantined": s.quarantined} for s in rt.engine.status()]  # fmt: skip
    if as_json:
        return print_json(rows)
    columns = ["name", "position", "head", "lag", "quarantined", "updated_at"]
    _table("Projections", [c.removesuffix("_at") for c in columns], [[r[c] for c in columns] for r in rows])
    if any(r["quarantined"] for r in rows):
        err.print("Some events could not be applied and were skipped: `ft-cli projections quarantine` shows them.")


def _quarantine_row(q: Any) -> dict[str, Any]:
    return {"projection": q.projection, "position": q.position, "topic": q.topic, "originator_id": q.originator_id,
            "originator_version": q.originator_version, "error": q.error, "attempts": q.attempts,
            "quarantined_at": q.quarantined_at}  # fmt: skip


@command(projections_app, name="quarantine")
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
    _table("Quarantined events", ["projection", "position", "topic", "attempts", "error"],
           [[r["projection"], r["position"], r["topic"].rpartition(":")[2], r["attempts"], r["error"][:120]]
            for r in rows])  # fmt: skip
    err.print("Once the cause is fixed: `ft-cli projections reapply NAME` (or `ft-cli projections rebuild NAME`).")


@command(projections_app, name="reapply")
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


@command(projections_app, name="rebuild")
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


@command(projections_app, name="run")
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


# -------------------------------------------------------------------- prices


def _price_row(p: Price) -> dict[str, Any]:
    return {
        "model": p.pattern,
        "effective_from": p.effective_from,
        **p.rates(),
        "source": p.source,
        "read_on": p.read_on,
    }


@command(prices_app, name="list")
def prices_list(
    as_of: Annotated[str | None, typer.Option("--as-of", help="In force at this time (default: now)")] = None,
    model: Annotated[str | None, typer.Option(help="Only the price that applies to this model")] = None,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """The prices in force now, or at a past time."""
    at = _parse_datetime(as_of, "--as-of") if as_of else datetime.now(UTC)
    with opened(database_url, fresh=False) as rt:
        if model is not None:
            price = rt.ledger.price_for(model, at)
            if price is None:
                raise _fail(f"No price applies to {model!r} at {format_ts(at)}: set one with `ft-cli prices set`.")
            prices = [price]
        else:
            prices = rt.ledger.prices_at(at)
    rows = [_price_row(p) for p in prices]
    if as_json:
        return print_json(rows)
    _table(
        f"Prices in force at {format_ts(at)} (USD)",
        ["model", "from", "input/1M", "cached/1M", "output/1M", "training/1M", "training/h", "GPU-h"],
        [[r["model"], r["effective_from"].date(), r["input_per_1m"], r["cached_input_per_1m"], r["output_per_1m"],
          r["training_per_1m"], r["training_per_hour"], r["gpu_hour"]] for r in rows],
    )  # fmt: skip


@command(prices_app, name="set")
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
    starts = _parse_datetime(effective_from, "--effective-from")
    with opened(database_url, fresh=False) as rt:
        result = rt.ledger.set_price(
            actor=actor, reason=reason, pattern=model, effective_from=starts,
            input_per_1m=input_per_1m, output_per_1m=output_per_1m, cached_input_per_1m=cached_input_per_1m,
            training_per_1m=training_per_1m, training_per_hour=training_per_hour, gpu_hour=gpu_hour, source=source,
        )  # fmt: skip
    if as_json:
        return print_json(_price_row(result.price) | {"position": result.recorded.position})
    out.print(f"Price of {result.price.pattern} set from {format_ts(result.price.effective_from)}.")


# --------------------------------------------------------------------- costs


@command(name="record-training-cost", context_settings=NUMBERS_AS_ARGS)
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
    when = _parse_datetime(at, "--at") if at else None
    with opened(database_url, fresh=False) as rt:
        r = rt.ledger.record_training_cost(
            actor=actor, reason=reason, at=when, job_id=job_id, model_name=model_name, base_model=base_model,
            dataset_size=dataset_size, training_tokens=training_tokens, epochs=epochs, training_hours=hours,
            total_cost=total_cost,
        )  # fmt: skip
        rt.engine.reach(r.recorded.position)
    result = {"job_id": job_id, "model_name": model_name, "total_cost": r.cost.total, "cost_source": r.cost.source,
              "unit_price": r.cost.unit_price, "unit": r.cost.unit, "price_pattern": r.cost.price_pattern,
              "position": r.recorded.position}  # fmt: skip
    if as_json:
        return print_json(result)
    how = f" ({r.cost.unit_price} USD {r.cost.unit} from {r.cost.price_pattern})" if r.cost.unit else ""
    out.print(f"Recorded training cost of {job_id}: {r.cost.total} USD{how}.")


@command(name="import-inferences")
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
    totals = _import_jsonl(file, batch_size, as_json, database_url,
                           lambda rt, batch: rt.record_inferences(batch, actor=actor), what="record")  # fmt: skip
    if as_json:
        return print_json(totals)
    skipped = f"; {totals['duplicates']:,} already stored" if totals["duplicates"] else ""
    out.print(f"Imported {totals['accepted']:,} records from {file} in {totals['batches']} batches{skipped}.")


def _import_jsonl(
    file: Path, batch_size: int, quiet: bool, database_url: str | None,
    append: Callable[[Runtime, list[Any]], Any], *, what: str,
) -> dict[str, Any]:  # fmt: skip
    """Streams a JSONL file in batches through `append`, with a progress bar. A batch with a bad line
    is rejected whole and the import stops there, listing every bad line of that batch; the batches
    before it stay recorded, and a re-run skips them as duplicates."""
    totals = {"file": str(file), "lines": 0, "accepted": 0, "duplicates": 0, "batches": 0, "position": None}
    with opened(database_url, fresh=False) as rt, file.open("rb") as handle:
        progress = Progress(*Progress.get_default_columns(), TextColumn("{task.fields[done]} " + what + "s"),
                            console=err, disable=quiet, transient=True)  # fmt: skip
        with progress:
            task = progress.add_task(f"Importing {file.name}", total=file.stat().st_size, done=0)
            for lines, items in _jsonl_batches(handle, batch_size):
                try:
                    r = append(rt, items)
                except BatchRejected as e:
                    bad = "; ".join(f"line {lines[x.index]}: {x.message}" for x in e.errors[:20])
                    more = f" (and {len(e.errors) - 20} more)" if len(e.errors) > 20 else ""
                    raise _fail(
                        f"{file}: {len(e.errors)} invalid {what}(s) in the batch of lines {lines[0]}-{lines[-1]}, "
                        f"which was not recorded ({totals['accepted']} {what}s before it were): {bad}{more}"
                    ) from None
                totals["lines"] = lines[-1]
                totals["batches"] += 1
                totals["accepted"] += r.accepted
                totals["duplicates"] += len(r.duplicates)
                if r.recorded is not None:
                    totals["position"] = r.recorded.position
                progress.update(task, completed=handle.tell(), done=totals["accepted"])
    return totals


def _jsonl_batches(handle: Any, size: int) -> Iterator[tuple[list[int], list[Any]]]:
    """(line numbers, parsed records) per batch; a malformed line stops with its number."""
    lines: list[int] = []
    records: list[Any] = []
    for number, raw in enumerate(handle, start=1):
        if not raw.strip():
            continue
        try:
            records.append(orjson.loads(raw))
        except orjson.JSONDecodeError as e:
            raise _fail(f"line {number} is not valid JSON ({e.msg}); nothing from its batch was imported") from None
        lines.append(number)
        if len(records) == size:
            yield lines, records
            lines, records = [], []
    if records:
        yield lines, records


@command(name="cost-summary")
def cost_summary_command(
    since: Annotated[str | None, typer.Option(help="First day of the per-day rows (YYYY-MM-DD)")] = None,
    until: Annotated[str | None, typer.Option(help="Last day of the per-day rows (YYYY-MM-DD)")] = None,
    days: Annotated[bool, typer.Option("--days", help="Also show the per-day rows")] = False,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Training and inference costs per model, overall and per day."""
    with opened(database_url) as rt:
        summary = cost_summary(rt.db, since=since, until=until)
    if as_json:
        return print_json(summary)
    columns = ["model", "training", "jobs", "calls", "tokens in", "tokens out", "inference", "per call"]

    def row(name: str, t: dict[str, Any]) -> list[Any]:
        return [name, money(t["training_cost"]), t["jobs"], f"{t['inferences']:,}", f"{t['input_tokens']:,}",
                f"{t['output_tokens']:,}", money(t["inference_cost"]), money(t["cost_per_call"])]  # fmt: skip

    _table("Costs", columns, [row(m["model"], m) for m in summary["models"]] + [row("TOTAL", summary["total"])])
    if days:
        _table("Per day", ["day", *columns], [[d["day"], *row(d["model"], d)] for d in summary["days"]])


@command(name="roi")
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
    _table(
        f"ROI over {report['calls']:,} calls",
        ["cost savings", "error-reduction value", "net benefit", "ROI", "break-even calls", "payback days"],
        [[money(report["cost_savings"]), money(report["error_reduction_value"]), money(report["net_benefit"]),
          roi_text, break_even, day_count(report["payback_days"])]],
    )  # fmt: skip
    out.print(f"Verdict: {report['verdict']}.")


# ------------------------------------------------------------------ examples


@command(name="collect-examples")
def collect_examples(
    file: Annotated[Path, typer.Argument(help="JSONL: one example per line", exists=True, dir_okay=False)],
    batch_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="Examples per appended batch")] = MAX_BATCH,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Import collected examples (e.g. a distillation history) from a JSONL file, with a progress bar."""
    totals = _import_jsonl(file, batch_size, as_json, database_url,
                           lambda rt, batch: rt.collect_examples(batch, actor=actor), what="example")  # fmt: skip
    if as_json:
        return print_json(totals)
    skipped = f"; {totals['duplicates']:,} already collected" if totals["duplicates"] else ""
    out.print(f"Collected {totals['accepted']:,} examples from {file} in {totals['batches']} batches{skipped}.")


@command(name="prepare-dataset")
def prepare_dataset(
    fmt: Annotated[str, typer.Option("--format", help="openai, alpaca or jsonl")] = "openai",
    min_rating: Annotated[int, typer.Option(help="Keep examples rated at least this")] = 4,
    domain: Annotated[str | None, typer.Option(help="Only this domain")] = None,
    task_type: Annotated[str | None, typer.Option(help="Only this task type")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source")] = None,
    since: Annotated[str | None, typer.Option(help="Collected from (ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option(help="Collected up to (ISO 8601)")] = None,
    target_model: Annotated[str, typer.Option(help="Tokenizer and token limit")] = "gpt-4o-mini-2024-07-18",
    train_ratio: Annotated[float, typer.Option(help="Share of examples for training")] = 0.8,
    seed: Annotated[int, typer.Option(help="Seed of the split")] = 42,
    name: Annotated[str | None, typer.Option("--name", help="Dataset id (default: from the content hash)")] = None,
    output: Annotated[Path, typer.Option(help="Where to write the train and test files")] = Path("."),
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Build a dataset from the collected examples and write its train and test files."""
    _check_format(fmt)
    with opened(database_url, fresh=False) as rt:
        # Running the same command again returns the build it made and writes its files again.
        built = rt.build_dataset(
            actor=actor, reason=reason, dataset_id=name, min_rating=min_rating, domain=domain, task_type=task_type,
            source=source, since=_parse_time(since, "--since"), until=_parse_time(until, "--until"),
            target_model=target_model, train_ratio=train_ratio, seed=seed, reuse_identical=True,
        )  # fmt: skip
        rt.engine.reach(built.recorded.position)
        dataset_id = built.build.dataset_id
        files = _write_splits(rt, dataset_id, fmt, ("train", "test"), output)
    stats = built.build.stats
    result = {"dataset_id": dataset_id, "content_hash": built.build.content_hash, "files": files,
              "existing": built.existing}  # fmt: skip
    result |= {k: stats[k] for k in ("train", "test", "rejected", "warnings")}
    if as_json:
        return print_json(result)
    again = " (built before with these settings; nothing new recorded)" if built.existing else ""
    out.print(f"Dataset {dataset_id}{again}: {stats['train']} train, {stats['test']} test, {stats['rejected']} "
              f"rejected; {stats['total_tokens']:,} tokens. Files: {files['train']}, {files['test']}.")  # fmt: skip
    for warning in stats["warnings"]:
        out.print(f"warning: {warning}")


def _check_format(fmt: str) -> None:
    if fmt not in ("openai", "alpaca", "jsonl"):
        raise _fail(f"Unknown format {fmt!r}: use openai, alpaca or jsonl.")


def _write_splits(rt: Runtime, dataset_id: str, fmt: str, splits: tuple[str, ...], output: Path) -> dict[str, str]:
    """Writes each split as `<id>-<split>.<jsonl|json>` under `output`; the paths by split."""
    suffix = "json" if fmt == "alpaca" else "jsonl"
    files = {}
    try:
        output.mkdir(parents=True, exist_ok=True)
        for split in splits:
            path = output / f"{dataset_id}-{split}.{suffix}"
            path.write_bytes(rt.export_dataset(dataset_id, fmt, split))
            files[split] = str(path)
    except OSError as e:
        raise _fail(f"cannot write to {output}: {e.strerror}") from None
    return files


@command(name="export-dataset")
def export_dataset(
    dataset_id: str,
    fmt: Annotated[str, typer.Option("--format", help="openai, alpaca or jsonl")] = "openai",
    split: Annotated[str | None, typer.Option(help="One file: train, test or all (default: train and test)")] = None,
    output: Annotated[Path, typer.Option(help="Folder to write the file(s) to")] = Path("."),
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Write a dataset build's files in a format, as prepare-dataset does: train and test, or one split."""
    _check_format(fmt)
    if split not in (None, "train", "test", "all"):
        raise _fail(f"Unknown split {split!r}: use train, test or all.")
    with opened(database_url) as rt:
        rt.dataset(dataset_id)  # a clear error for an unknown dataset, before any folder is made
        files = _write_splits(rt, dataset_id, fmt, ("train", "test") if split is None else (split,), output)
    if as_json:
        return print_json({"dataset_id": dataset_id, "format": fmt, "files": files})
    out.print(f"Wrote {', '.join(files.values())}.")


@command(name="list-datasets")
def list_datasets_command(as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """Every dataset build."""
    with opened(database_url) as rt:
        rows = list_datasets(rt.db, limit=100_000)
    items = [{k: r[k] for k in ("dataset_id", "train", "test", "rejected", "content_hash", "created_at", "created_by")}
             for r in rows]  # fmt: skip
    if as_json:
        return print_json(items)
    columns = ["dataset_id", "train", "test", "rejected", "created_at", "created_by"]
    _table("Datasets", columns, [[r[c] for c in columns] for r in items])


@command(name="dataset-stats")
def dataset_stats(dataset_id: str, as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """Counts, lengths in characters and tokens, estimated training costs and warnings of a dataset."""
    with opened(database_url) as rt:
        stats = rt.dataset(dataset_id)["stats"]
    if as_json:
        return print_json(stats)
    _table(f"Dataset {dataset_id}", ["examples", "train", "test", "rejected", "total tokens", "mean tokens", "p90"],
           [[stats["examples"], stats["train"], stats["test"], stats["rejected"], f"{stats['total_tokens']:,}",
             f"{stats['tokens']['mean']:.1f}", stats["tokens"]["p90"]]])  # fmt: skip
    _table(
        "Estimated training cost",
        ["model", "cost"],
        [[m, money(c)] for m, c in stats["estimated_training_cost"].items()],
    )
    for warning in stats["warnings"]:
        out.print(f"warning: {warning}")


# ----------------------------------------------------------------- A/B tests


@command(name="setup-ab-test")
def setup_ab_test(
    test_id: str,
    model_a: Annotated[str, typer.Argument(help="The control")],
    model_b: Annotated[str, typer.Argument(help="The variant (NAME@VERSION for a registry version)")],
    split: Annotated[float | None, typer.Option(help="Share of units sent to model_b (0.5)")] = None,
    alpha: Annotated[float | None, typer.Option(help="Significance level (0.05)")] = None,
    min_samples: Annotated[int | None, typer.Option(help="Per arm before any verdict (30; 100+ advised)")] = None,
    match_mode: Annotated[str | None, typer.Option(help="exact or substring")] = None,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Create an A/B test of two models."""
    with opened(database_url, fresh=False) as rt:
        r = rt.create_ab_test(actor=actor, reason=reason, test_id=test_id, model_a=model_a, model_b=model_b,
                              split=split, alpha=alpha, min_samples=min_samples, match_mode=match_mode)  # fmt: skip
        rt.engine.reach(r.recorded.position)
        found = rt.ab_test(test_id)
    c = found["config"]
    if as_json:
        return print_json({"test_id": test_id, "model_a": c.model_a, "model_b": c.model_b, "split": c.split,
                           "alpha": c.alpha, "min_samples": c.min_samples, "status": found["status"]})  # fmt: skip
    out.print(f"A/B test {test_id}: {c.model_a} (a) against {c.model_b} (b), {c.split:.0%} of units to b.")


@command(name="record-samples")
def record_samples(
    test_id: str,
    file: Annotated[Path, typer.Argument(help="JSONL: one sample per line", exists=True, dir_okay=False)],
    batch_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="Samples per appended batch")] = MAX_BATCH,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Record A/B samples from a JSONL file, in batches, with a progress bar (re-running is safe)."""
    totals = _import_jsonl(file, batch_size, as_json, database_url,
                           lambda rt, batch: rt.record_samples(test_id, batch, actor=actor), what="sample")  # fmt: skip
    if as_json:
        return print_json(totals)
    skipped = f"; {totals['duplicates']:,} already recorded" if totals["duplicates"] else ""
    out.print(f"Recorded {totals['accepted']:,} samples for {test_id} in {totals['batches']} batches{skipped}.")


def _print_ab(found: dict[str, Any], deploy: str | None = None) -> None:
    s = found["statistics"]
    rows = []
    for arm in ("a", "b"):
        a = s["arms"][arm]
        ci = a["accuracy_ci95"]
        rows.append([
            arm, a["model"], f"{a['n']:,}", "" if a["accuracy"] is None else f"{a['accuracy']:.4f}",
            "" if ci is None else f"[{ci[0]:.4f}, {ci[1]:.4f}]",
            "" if a["latency_mean_ms"] is None else f"{a['latency_mean_ms']:.1f}",
            money(a["cost_mean"]), money(a["cost_total"]),
        ])  # fmt: skip
    _table(f"A/B test {found['config'].test_id} ({found['status']})",
           ["arm", "model", "n", "accuracy", "95% CI", "latency ms", "cost/call", "cost total"], rows)  # fmt: skip
    out.print(f"Verdict: {s['verdict']}" + (f"; deploy it with `{deploy}`." if deploy else "."))


def _show_ab(rt: Runtime, test_id: str, as_json: bool) -> None:
    found = rt.ab_test(test_id)
    deploy = rt.deploy_command(found["statistics"]["winner_model"])
    if as_json:
        return print_json({"test_id": test_id, "status": found["status"], "statistics": found["statistics"],
                           "deploy_command": deploy})  # fmt: skip
    _print_ab(found, deploy)


@command(name="ab-test-status")
def ab_test_status(test_id: str, as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """Per-arm statistics and the verdict (live, or frozen once concluded)."""
    with opened(database_url) as rt:
        _show_ab(rt, test_id, as_json)


@command(name="conclude-ab-test")
def conclude_ab_test(
    test_id: str, reason: ReasonOpt = None, actor: ActorOpt = DEFAULT_ACTOR, as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:  # fmt: skip
    """Freeze the result over every sample recorded so far."""
    with opened(database_url, fresh=False) as rt:
        try:
            r = rt.conclude_ab_test(test_id, actor=actor, reason=reason)
        except RuleViolation as e:
            if rt.ab.load(test_id).status == "running":
                raise
            raise _fail(f"{e.detail} See its frozen result with `ft-cli ab-test-status {test_id}`.") from None
        rt.engine.reach(r.recorded.position)
        _show_ab(rt, test_id, as_json)


@command(name="list-ab-tests")
def list_ab_tests(as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """Every A/B test with its status."""
    with opened(database_url) as rt:
        tests = list_tests(rt.db, limit=100_000)
    rows = [{"test_id": t["config"].test_id, "model_a": t["config"].model_a, "model_b": t["config"].model_b,
             "status": t["status"], "created_at": t["created_at"],
             "verdict": (t["result"] or {}).get("verdict")} for t in tests]  # fmt: skip
    if as_json:
        return print_json(rows)
    columns = ["test_id", "model_a", "model_b", "status", "created_at", "verdict"]
    _table("A/B tests", columns, [[r[c] for c in columns] for r in rows])


# ------------------------------------------------------------------- service


@command(db_app, name="init")
def db_init(as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """Create the event tables, projections and key tables (once per database)."""
    config, rebuilt = Runtime.init_schema(database_url)
    result = {"store": config.display_url, "rebuilt": [r.name for r in rebuilt]}
    if as_json:
        return print_json(result)
    out.print(f"Schema ready in {config.display_url}.")


@command(name="serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default FT_HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default FT_PORT or 8000)")] = None,
    database_url: DbOpt = None,
) -> None:
    """Serve the HTTP API (docs at /docs)."""
    import uvicorn

    from api.http.app import create_app

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


@command(name="help")
def help_command(ctx: typer.Context) -> None:
    """Show the commands."""
    typer.echo(ctx.parent.get_help() if ctx.parent else ctx.get_help())


import api.cli_evaluations  # noqa: E402,F401  (registers the evaluation commands on `app`)
import api.cli_jobs  # noqa: E402,F401  (registers the job, sandbox and demo commands on `app`)


def main() -> None:
    app()


if __name__ == "__main__":
    # `python -m api.cli` runs this file as __main__; the job commands registered
    # themselves on the app of the importable `api.cli`, so run that one.
    from api.cli import main as importable_main

    importable_main()
