"""`ft-cli models …`: the registry (register, list, deploy, rollback, set-status), what is deployed,
each model's history, the audit trail and the registry's export."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.common import (
    DEFAULT_ACTOR,
    NUMBERS_AS_ARGS,
    ActorOpt,
    Commands,
    DbOpt,
    JsonOpt,
    ReasonOpt,
    fail,
    opened,
    out,
    parse_time,
    print_json,
    table,
    to_json,
)
from projections import deployments, registry
from projections.audit import AuditFilter, audited_event_types, query_audit

if TYPE_CHECKING:
    from api.runtime import Runtime
    from application.registry import Deployed

commands = Commands()


@commands.command("register", context_settings=NUMBERS_AS_ARGS)
def register_model(
    name: Annotated[str, typer.Argument(help="Model name: 1-64 of A-Za-z0-9._-")],
    base_model: Annotated[str, typer.Argument(help="Base model, e.g. gpt-4o-mini-2024-07-18")],
    job_id: Annotated[str, typer.Argument(help="Fine-tuning job id")],
    dataset_size: Annotated[int, typer.Argument(help="Number of training examples (0 or more)")],
    accuracy: Annotated[float | None, typer.Option(help="Accuracy 0..1")] = None,
    cost: Annotated[str | None, typer.Option(help="Training cost in USD")] = None,
    training: Annotated[bool, typer.Option("--training", help="Register as TRAINING (its job still runs)")] = False,
    serve_upstream: ServeUpstreamOpt = None,
    serve_url: ServeUrlOpt = None,
    serve_model: ServeModelOpt = None,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Register a new version of a model (the model is created with its first version)."""
    serving = _serving(serve_upstream, serve_url, serve_model, required=False)
    with opened(database_url, fresh=False) as rt:
        r = rt.command(lambda: rt.versions.register(  # a given cost also goes to the cost ledger
            name, base_model=base_model, job_id=job_id, dataset_size=dataset_size, accuracy=accuracy,
            cost=cost, training=training, serving=serving, actor=actor, reason=reason,
        ))  # fmt: skip
    result = {"model": name, "version": r.number, "status": r.status.value, "position": r.recorded.position}
    if as_json:
        return print_json(result)
    out.print(f"Registered {name} version {r.number} ({r.status.value}).")


ServeUpstreamOpt = Annotated[str | None, typer.Option(
    "--serve-upstream", help="Serve it through an upstream configured on the server (FT_ENDPOINTS, or openai)")]
ServeUrlOpt = Annotated[str | None, typer.Option("--serve-url", help="Serve it at this OpenAI-compatible base URL")]
ServeModelOpt = Annotated[str | None, typer.Option("--serve-model", help="The upstream's name of the model")]


def _serving(upstream: str | None, url: str | None, model: str | None, *, required: bool) -> dict[str, str] | None:
    """The serving target the options give (checked by the registry's rules), or None for none."""
    if upstream is None and url is None and model is None and not required:
        return None
    if (upstream is None) == (url is None) or model is None:
        raise fail("give --serve-model with one of --serve-upstream or --serve-url (or --clear to serve nowhere)")
    return {"upstream": upstream, "model": model} if upstream is not None else {"base_url": url, "model": model}


@commands.command("set-serving", context_settings=NUMBERS_AS_ARGS)
def set_serving(
    name: str,
    version: Annotated[int | None, typer.Option(help="Version (default: the latest)")] = None,
    serve_upstream: ServeUpstreamOpt = None,
    serve_url: ServeUrlOpt = None,
    serve_model: ServeModelOpt = None,
    clear: Annotated[bool, typer.Option("--clear", help="The version serves nowhere")] = False,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Set where a version answers calls (its serving target), as an audited event."""
    serving = None if clear else _serving(serve_upstream, serve_url, serve_model, required=True)
    with opened(database_url, fresh=False) as rt:
        r = rt.command(lambda: rt.registry.set_serving(name, version, serving, actor=actor, reason=reason))
    if as_json:
        return print_json({"model": name, "version": r.number, "serving": r.serving, "position": r.recorded.position})
    where = "nowhere" if r.serving is None else " ".join(f"{k}={v}" for k, v in r.serving.items())
    out.print(f"{name} version {r.number} serves {where}.")


@commands.command("list")
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
    table(
        "Models",
        ["name", "versions", "latest", "deployed", "updated", "by"],
        [[m["name"], m["version_count"], m["latest_version"], m["deployed_version"], m["updated_at"], m["created_by"]]
         for m in models],
    )  # fmt: skip


def _deployed_result(d: Deployed, as_json: bool, verb: str) -> None:
    result = {"model": d.model, "version": d.number, "previous_version": d.previous, "status": "DEPLOYED",
              "position": d.recorded.position}  # fmt: skip
    if as_json:
        return print_json(result)
    before = f"; version {d.previous} is ARCHIVED" if d.previous is not None else ""
    out.print(f"{verb} {d.model}: version {d.number} is DEPLOYED{before}.")


@commands.command("deploy", context_settings=NUMBERS_AS_ARGS)
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
        d = rt.command(lambda: rt.registry.deploy(name, version, actor=actor, reason=reason))
    _deployed_result(d, as_json, "Deployed")


@commands.command("rollback", context_settings=NUMBERS_AS_ARGS)
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
        d = rt.command(lambda: rt.registry.rollback(name, version, actor=actor, reason=reason))
    _deployed_result(d, as_json, "Rolled back")


@commands.command("set-status", context_settings=NUMBERS_AS_ARGS)
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
    from application.registry import Deployed

    with opened(database_url, fresh=False) as rt:
        r = rt.command(lambda: rt.registry.set_status(name, version, status, actor=actor, reason=reason))
    if isinstance(r, Deployed):
        return _deployed_result(r, as_json, "Deployed")
    result = {"model": name, "version": r.number, "status": r.to_status.value,
              "previous_status": r.from_status.value, "position": r.recorded.position}  # fmt: skip
    if as_json:
        return print_json(result)
    out.print(f"{name} version {r.number}: {r.from_status.value} -> {r.to_status.value}.")


@commands.command("status")
def deployment_status(
    name: Annotated[str | None, typer.Argument(help="One model (default: all)")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="As it was at this time (ISO 8601)")] = None,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """What is deployed now, or at a past time: version, since, by whom, why."""
    when = parse_time(as_of, "--as-of")
    with opened(database_url) as rt:
        where: dict[str, Any] = {"model": name} if name else {"limit": 100_000}
        rows = (deployments.current_status(rt.db, **where) if when is None
                else deployments.status_as_of(rt.db, when, **where))  # fmt: skip
    if name and not rows:
        raise fail(f"Model {name!r} was not registered{' at ' + when if when else ''}.")
    if as_json:
        return print_json(rows[0] if name else rows)
    table(
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
    table(
        title,
        ["pos", "time", "model", "version", "event", "actor", "reason"],
        [[r["position"], r["timestamp"], r["model"], r["version"], r["event_type"], r["actor"], r["reason"]]
         for r in rows],
    )  # fmt: skip


@commands.command("history")
def model_history(name: str, as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """Every change to one model, in order: who, when, what and why."""
    with opened(database_url) as rt:
        rt.registry.load(name)  # a clear error for an unknown model
        rows = _audit_rows(rt, AuditFilter(model=name, limit=1000), all_pages=True)
    if as_json:
        return print_json(rows)
    _print_audit(rows, f"History of {name}")


@commands.command("audit")
def audit(
    model: Annotated[str | None, typer.Option(help="Only this model")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type, e.g. RolledBack")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only events by this actor")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this time (ISO 8601)")] = None,
    after: Annotated[
        int,
        typer.Option(
            "--after",
            min=0,
            max=2**63 - 1,  # it reaches SQL as a BIGINT
            help="Start after this log position",
        ),
    ] = 0,  # fmt: skip
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Query the audit trail in global order."""
    if event_type is not None and event_type not in audited_event_types():
        raise fail(f"Unknown event type {event_type!r}: use one of {', '.join(audited_event_types())}.")
    f = AuditFilter(
        model=model, event_type=event_type, actor=actor, since=parse_time(since, "--since"),
        until=parse_time(until, "--until"), after=after, limit=limit,
    )  # fmt: skip
    with opened(database_url) as rt:
        rows = query_audit(rt.db, f)
    if as_json:
        return print_json(rows)
    _print_audit(rows, "Audit trail")


@commands.command("export")
def export_registry(
    file: Annotated[Path, typer.Argument(help="Where to write the JSON")],
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Write the registry as JSON: a model name mapped to its versions."""
    with opened(database_url) as rt:
        data = registry.export_registry(rt.db)
    try:
        file.write_text(to_json(data))
    except OSError as e:
        raise fail(f"cannot write {file}: {e.strerror}") from None
    summary = {"file": str(file), "models": len(data), "versions": sum(len(v) for v in data.values())}
    if as_json:
        return print_json(summary)
    out.print(f"Wrote {summary['versions']} versions of {summary['models']} models to {file}.")
