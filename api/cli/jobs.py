"""`ft-cli jobs …`: fine-tuning jobs at OpenAI (or Azure): estimate, create, sync, watch, cancel, list,
and delete a fine-tuned model; the job views that local jobs and the demo share."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.common import (
    DEFAULT_ACTOR,
    ActorOpt,
    Commands,
    DbOpt,
    JsonOpt,
    ReasonOpt,
    YesOpt,
    fail,
    money,
    opened,
    out,
    print_json,
    table,
)
from domain.errors import DomainError, NotFound
from domain.job_specs import TERMINAL, JobStatus

if TYPE_CHECKING:
    from rich.table import Table

    from api.runtime import Runtime
    from application.job_kinds import Plan
    from application.job_runs import Outcome

commands = Commands()

JobIdArg = Annotated[str, typer.Argument(help="Our job id or the provider's (ftjob-...)")]


def cost_text(value: Any) -> str:
    return "unknown" if value is None else money(value)


def _estimate_dict(plan: Plan) -> dict[str, Any]:
    return plan.estimate.as_dict() | {"examples": plan.spec.training.examples, "base_model": plan.spec.base_model}


def print_estimate(plan: Plan) -> None:
    e = plan.estimate
    source = plan.spec.training
    where = f"dataset {source.dataset_id} ({source.split})" if source.kind == "dataset" else source.path
    out.print(f"Training data: {where}: {source.examples:,} examples, {source.tokens:,} tokens per epoch "
              "(checked against OpenAI's rules).")  # fmt: skip
    out.print(f"Estimated cost: {e.tokens:,} tokens x {e.epochs} epochs ({e.epochs_source}) x "
              f"{'$' + str(e.unit_price) + '/1M' if e.unit_price is not None else 'no price'} = {cost_text(e.total)}"
              + (f" ({e.note})" if e.note else ""))  # fmt: skip


def job_row(rt: Runtime, job_id: str) -> dict[str, Any]:
    from projections.jobs import get_job

    rt.current()
    found = get_job(rt.db, job_id)
    if found is None:
        raise NotFound(f"Job {job_id!r} does not exist: list jobs with `ft-cli jobs list`.")
    return found


def print_job(job: dict[str, Any], outcome: Outcome | None = None) -> None:
    metrics = job.get("metrics") or {}
    progress = f"step {metrics['step']}/{metrics.get('total_steps', '?')}" if metrics.get("step") else ""
    loss = f"loss {metrics['train_loss']}" if metrics.get("train_loss") is not None else ""
    table(f"Job {job['job_id']}", ["status", "provider job", "base model", "registry", "progress", "fine-tuned model"],
           [[job["status"], job["provider_job_id"], job["base_model"],
             f"{job['model_name']} v{job['registry_version']}" if job["registry_version"] else job["model_name"],
             " ".join(p for p in (progress, loss) if p), job["fine_tuned_model"]]])  # fmt: skip
    if job.get("error"):
        out.print(f"Error ({job['error'].get('code')}): {job['error'].get('message')}")
    if outcome is not None:
        if outcome.pending:
            out.print(f"Pending: {outcome.pending}")
        for note in outcome.notes:
            out.print(f"Note: {note}")


def show_outcome(rt: Runtime, outcome: Outcome, as_json: bool) -> None:
    job = job_row(rt, outcome.job.job_id)
    if as_json:
        print_json(job | {"pending": outcome.pending, "notes": outcome.notes, "appended": outcome.appended})
    else:
        print_job(job, outcome)


def ended(outcome: Outcome) -> bool:
    return outcome.job.job_status in TERMINAL and outcome.job.job_status is not JobStatus.SUCCEEDED


def fail_if_ended(outcome: Outcome) -> None:
    """A job that ended at creation (the provider rejected it, or it could not start) is an error, not a job
    to follow."""
    job = outcome.job
    if ended(outcome):
        error = job.error or {}
        why = str(error.get("message") or "no reason given").rstrip(".") + (f" [{error['code']}]" if error.get("code")
                                                                               else "")  # fmt: skip
        raise fail(f"job {job.job_id} {job.status} at creation: {why}. Its registry version {job.model_name} "
                    f"v{job.registry_version} is FAILED; fix the request and create a new job.")  # fmt: skip


def _hyper(epochs: int | None, batch_size: int | None, lr: float | None, beta: float | None) -> dict[str, Any]:
    values = {"n_epochs": epochs, "batch_size": batch_size, "learning_rate_multiplier": lr, "beta": beta}
    return {k: v for k, v in values.items() if v is not None}


def _plan(rt: Runtime, model: str, training_file: Path | None, dataset: str | None, **fields: Any) -> Plan:
    if training_file is None and dataset is None:
        raise fail("give the training data: a TRAINING_FILE, or --dataset ID", 2)
    return rt.job_service.plan(base_model=model, training_file=None if training_file is None else str(training_file),
                               dataset_id=dataset, **fields)  # fmt: skip


TrainingFileArg = Annotated[Path | None, typer.Argument(help="JSONL in OpenAI's chat format (or use --dataset)")]
DatasetOpt = Annotated[str | None, typer.Option("--dataset", help="Train on this dataset build (keeps lineage)")]
SplitOpt = Annotated[str | None, typer.Option("--split", help="Dataset split: train (default), test or all")]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", help="n_epochs (default: auto)")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="batch_size (default: auto)")]
LrOpt = Annotated[float | None, typer.Option("--learning-rate-multiplier", help="(default: auto)")]


@commands.command("estimate-cost")
def estimate_cost(
    model: Annotated[str, typer.Argument(help="Base model, e.g. gpt-4o-mini-2024-07-18")],
    training_file: TrainingFileArg = None,
    dataset: DatasetOpt = None,
    split: SplitOpt = None,
    epochs: EpochsOpt = None,
    method: Annotated[str, typer.Option(help="supervised or dpo")] = "supervised",
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Check training data against OpenAI's rules and estimate the cost: tokens x epochs x price."""
    with opened(database_url, fresh=False) as rt:
        plan = _plan(rt, model, training_file, dataset, split=split, method=method,
                     hyperparameters=_hyper(epochs, None, None, None))  # fmt: skip
    if as_json:
        return print_json(_estimate_dict(plan))
    print_estimate(plan)


@commands.command("create")
def create_openai_job(
    model: Annotated[str, typer.Argument(help="Base model, e.g. gpt-4o-mini-2024-07-18")],
    training_file: TrainingFileArg = None,
    dataset: DatasetOpt = None,
    split: SplitOpt = None,
    suffix: Annotated[str | None, typer.Option(help="Up to 64 characters in the fine-tuned model's name")] = None,
    validation_file: Annotated[Path | None, typer.Option(help="JSONL validation file")] = None,
    model_name: Annotated[str | None, typer.Option(help="Registry name (default: the suffix, else the base)")] = None,
    epochs: EpochsOpt = None,
    learning_rate_multiplier: LrOpt = None,
    batch_size: BatchOpt = None,
    method: Annotated[str, typer.Option(help="supervised or dpo")] = "supervised",
    beta: Annotated[float | None, typer.Option(help="DPO beta")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the training run")] = None,
    skip_checks: Annotated[
        bool,
        typer.Option(
            help="Let through what the local checks refuse (images, tool calls); the provider still validates"
        ),
    ] = False,
    yes: YesOpt = False,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Check the data, show the estimated cost, confirm, upload and create a fine-tuning job."""
    with opened(database_url, fresh=False) as rt:
        plan = _plan(rt, model, training_file, dataset, split=split, suffix=suffix, model_name=model_name,
                     validation_file=None if validation_file is None else str(validation_file), method=method,
                     seed=seed, skip_checks=skip_checks,
                     hyperparameters=_hyper(epochs, batch_size, learning_rate_multiplier, beta))  # fmt: skip
        if not as_json:
            print_estimate(plan)
            for warning in plan.warnings:
                out.print(f"warning (not checked): {warning}")
        if not yes:
            if not sys.stdin.isatty():
                raise fail("no terminal to confirm the estimated cost: pass --yes to create the job from a script")
            if not typer.confirm(f"Create the job at {rt.job_service.provider(plan.spec.provider).describe()}?"):
                raise fail("cancelled: nothing was recorded")
        outcome = rt.job_service.create(plan, actor=actor, reason=reason)
        if as_json or not ended(outcome):  # an ended job gets its one-line reason instead
            show_outcome(rt, outcome, as_json)
    fail_if_ended(outcome)
    if not as_json:
        out.print(f"Follow it with `ft-cli jobs watch {plan.spec.job_id}`.")


@commands.command("status")
def check_job_status(
    job_id: JobIdArg,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Sync a job with its provider (appending only what is new) and show it."""
    with opened(database_url, fresh=False) as rt:
        outcome = rt.job_service.sync(job_id, actor=actor)
        show_outcome(rt, outcome, as_json)


def _watch_table(job: dict[str, Any], note: str | None) -> Table:
    metrics = job.get("metrics") or {}
    from rich.table import Table

    t = Table(title=f"Job {job['job_id']} ({job['provider_job_id'] or 'not submitted'})")
    for column in ("status", "step", "train loss", "token accuracy", "fine-tuned model"):
        t.add_column(column)
    step = f"{metrics['step']}/{metrics.get('total_steps', '?')}" if metrics.get("step") else ""
    t.add_row(job["status"], step, str(metrics.get("train_loss", "")),
                  str(metrics.get("train_mean_token_accuracy", "")), job["fine_tuned_model"] or "")  # fmt: skip
    if note:
        t.caption = note
    return t


@commands.command("watch")
def watch_job(
    job_id: JobIdArg,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between syncs")] = 5.0,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Follow a job live until it finishes (Ctrl-C stops watching, not the job)."""
    from rich.live import Live

    with opened(database_url, fresh=False) as rt:
        outcome = rt.job_service.sync(job_id, actor=actor)
        job = job_row(rt, outcome.job.job_id)
        with Live(
            _watch_table(job, outcome.pending), console=out.rich, refresh_per_second=4, transient=as_json
        ) as live:
            while JobStatus(job["status"]) not in TERMINAL:
                time.sleep(interval)
                outcome = rt.job_service.sync(job["job_id"], actor=actor)
                job = job_row(rt, job["job_id"])
                live.update(_watch_table(job, outcome.pending))
    if as_json:
        return print_json(job)
    print_job(job, outcome)


@commands.command("cancel")
def cancel_job(
    job_id: JobIdArg,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Cancel a job at its provider; its pre-registered version becomes FAILED."""
    with opened(database_url, fresh=False) as rt:
        outcome = rt.job_service.cancel(job_id, actor=actor, reason=reason)
        show_outcome(rt, outcome, as_json)


@commands.command("list")
def list_jobs_command(
    status: Annotated[str | None, typer.Option(help="Only jobs in this status")] = None,
    sync: Annotated[bool, typer.Option("--sync", help="Sync unfinished jobs with their providers first")] = False,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Fine-tuning jobs, newest first: as last recorded, or synced first with --sync."""
    from projections.jobs import active_job_ids, list_jobs

    notes = []
    with opened(database_url) as rt:
        if sync:
            for job_id in active_job_ids(rt.db):
                try:
                    pending = rt.job_service.sync(job_id, actor=actor).pending
                except DomainError as e:
                    pending = e.detail
                if pending:
                    notes.append(f"{job_id} not synced: {pending}")
            rt.current()
        rows = list_jobs(rt.db, status=status, limit=100_000)
    if as_json:
        return print_json(rows)
    unfinished = [r for r in rows if JobStatus(r["status"]) not in TERMINAL]
    table("Fine-tuning jobs", ["job", "status", "as of", "registry version", "fine-tuned model"],
           [[r["job_id"], r["status"], r["updated_at"], f"{r['model_name']} v{r['registry_version']}",
             r["fine_tuned_model"]] for r in rows])  # fmt: skip
    for note in notes:
        out.print(f"Note: {note}")
    if unfinished and not sync:
        # the server's poller keeps them current while it runs; the CLI shows what was last recorded
        out.print(f"{len(unfinished)} unfinished job(s) show their state as last recorded (\"as of\"): refresh them "
                  "with `ft-cli jobs list --sync`, or one with `ft-cli check-job-status JOB`.")  # fmt: skip


@commands.command("delete-model")
def delete_fine_tuned_model(
    model: Annotated[str, typer.Argument(help="The fine-tuned model id (ft:...)")],
    yes: YesOpt = False,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Delete a fine-tuned model at the provider (the job that made it records the deletion)."""
    if not yes:
        if not sys.stdin.isatty():
            raise fail("deleting a model cannot be undone: pass --yes to delete it from a script")
        if not typer.confirm(f"Delete {model} at the provider? This cannot be undone"):
            raise fail("cancelled: nothing was deleted")
    from projections.jobs import job_for_model

    with opened(database_url) as rt:
        job = job_for_model(rt.db, model)
        rt.job_service.delete_model(model, actor=actor, reason=reason, job_id=None if job is None else job["job_id"])
    result = {"model": model, "deleted": True, "job_id": None if job is None else job["job_id"]}
    if as_json:
        return print_json(result)
    out.print(f"Deleted {model}" + (f" (made by job {job['job_id']})." if job else "."))
