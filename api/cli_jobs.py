"""ft-cli commands for fine-tuning jobs, the OpenAI sandbox and the demo (registered on api.cli's app)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from adapters.openai_jobs import OpenAISettings
from sandbox.openai_finetuning import Timing
from api.cli import (
    DEFAULT_ACTOR,
    ActorOpt,
    DbOpt,
    JsonOpt,
    ReasonOpt,
    _fail,
    _table,
    app,
    command,
    money,
    opened,
    out,
    print_json,
)
from api.jobs import Outcome, Plan
from api.runtime import Runtime
from domain.errors import DomainError, InvalidInput, NotFound
from domain.jobs import TERMINAL, JobStatus
from projections.jobs import active_job_ids, get_job, job_for_model, list_jobs
from projections.registry import get_version

sandbox_app = typer.Typer(help="Local stand-ins that speak providers' real APIs.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")

YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")]
JobIdArg = Annotated[str, typer.Argument(help="Our job id or the provider's (ftjob-...)")]


def _money(value: Any) -> str:
    return "unknown" if value is None else money(value)


def _estimate_dict(plan: Plan) -> dict[str, Any]:
    return plan.estimate.as_dict() | {"examples": plan.spec.training.examples, "base_model": plan.spec.base_model}


def _print_estimate(plan: Plan) -> None:
    e = plan.estimate
    source = plan.spec.training
    where = f"dataset {source.dataset_id} ({source.split})" if source.kind == "dataset" else source.path
    out.print(f"Training data: {where}: {source.examples:,} examples, {source.tokens:,} tokens per epoch "
              "(checked against OpenAI's rules).")  # fmt: skip
    out.print(f"Estimated cost: {e.tokens:,} tokens x {e.epochs} epochs ({e.epochs_source}) x "
              f"{'$' + str(e.unit_price) + '/1M' if e.unit_price is not None else 'no price'} = {_money(e.total)}"
              + (f" ({e.note})" if e.note else ""))  # fmt: skip


def _job(rt: Runtime, job_id: str) -> dict[str, Any]:
    rt.engine.reach(rt.engine.log.head())
    found = get_job(rt.db, job_id)
    if found is None:
        raise NotFound(f"Job {job_id!r} does not exist: list jobs with `ft-cli list-jobs`.")
    return found


def _print_job(job: dict[str, Any], outcome: Outcome | None = None) -> None:
    metrics = job.get("metrics") or {}
    progress = f"step {metrics['step']}/{metrics.get('total_steps', '?')}" if metrics.get("step") else ""
    loss = f"loss {metrics['train_loss']}" if metrics.get("train_loss") is not None else ""
    _table(f"Job {job['job_id']}", ["status", "provider job", "base model", "registry", "progress", "fine-tuned model"],
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


def _show_outcome(rt: Runtime, outcome: Outcome, as_json: bool) -> None:
    job = _job(rt, outcome.job.job_id)
    if as_json:
        print_json(job | {"pending": outcome.pending, "notes": outcome.notes, "appended": outcome.appended})
    else:
        _print_job(job, outcome)


def _ended(outcome: Outcome) -> bool:
    return outcome.job.job_status in TERMINAL and outcome.job.job_status is not JobStatus.SUCCEEDED


def _fail_if_ended(outcome: Outcome) -> None:
    """A job that ended at creation (the provider rejected it, or it could not start) is an error, not a job
    to follow."""
    job = outcome.job
    if _ended(outcome):
        error = job.error or {}
        why = str(error.get("message") or "no reason given").rstrip(".") + (f" [{error['code']}]" if error.get("code")
                                                                               else "")  # fmt: skip
        raise _fail(f"job {job.job_id} {job.status} at creation: {why}. Its registry version {job.model_name} "
                    f"v{job.registry_version} is FAILED; fix the request and create a new job.")  # fmt: skip


def _hyper(epochs: int | None, batch_size: int | None, lr: float | None, beta: float | None) -> dict[str, Any]:
    values = {"n_epochs": epochs, "batch_size": batch_size, "learning_rate_multiplier": lr, "beta": beta}
    return {k: v for k, v in values.items() if v is not None}


def _plan(rt: Runtime, model: str, training_file: Path | None, dataset: str | None, **fields: Any) -> Plan:
    if training_file is None and dataset is None:
        raise _fail("give the training data: a TRAINING_FILE, or --dataset ID", 2)
    return rt.job_service.plan(base_model=model, training_file=None if training_file is None else str(training_file),
                               dataset_id=dataset, **fields)  # fmt: skip


TrainingFileArg = Annotated[Path | None, typer.Argument(help="JSONL in OpenAI's chat format (or use --dataset)")]
DatasetOpt = Annotated[str | None, typer.Option("--dataset", help="Train on this dataset build (keeps lineage)")]
SplitOpt = Annotated[str | None, typer.Option("--split", help="Dataset split: train (default), test or all")]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", help="n_epochs (default: auto)")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="batch_size (default: auto)")]
LrOpt = Annotated[float | None, typer.Option("--learning-rate-multiplier", help="(default: auto)")]


@command(name="estimate-cost")
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
    _print_estimate(plan)


@command(name="create-openai-job")
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
    skip_checks: Annotated[bool, typer.Option(help="Let through what the local checks refuse (images, tool "
                                              "calls); the provider still validates")] = False,
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
            _print_estimate(plan)
            for warning in plan.warnings:
                out.print(f"warning (not checked): {warning}")
        if not yes:
            if not sys.stdin.isatty():
                raise _fail("no terminal to confirm the estimated cost: pass --yes to create the job from a script")
            if not typer.confirm(f"Create the job at {rt.job_service.provider.settings.describe()}?"):
                raise _fail("cancelled: nothing was recorded")
        outcome = rt.job_service.create(plan, actor=actor, reason=reason)
        if as_json or not _ended(outcome):  # an ended job gets its one-line reason instead
            _show_outcome(rt, outcome, as_json)
    _fail_if_ended(outcome)
    if not as_json:
        out.print(f"Follow it with `ft-cli watch-job {plan.spec.job_id}`.")


@command(name="check-job-status")
def check_job_status(
    job_id: JobIdArg,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Sync a job with its provider (appending only what is new) and show it."""
    with opened(database_url, fresh=False) as rt:
        outcome = rt.job_service.sync(job_id, actor=actor)
        _show_outcome(rt, outcome, as_json)


def _watch_table(job: dict[str, Any], note: str | None) -> Table:
    metrics = job.get("metrics") or {}
    table = Table(title=f"Job {job['job_id']} ({job['provider_job_id'] or 'not submitted'})")
    for column in ("status", "step", "train loss", "token accuracy", "fine-tuned model"):
        table.add_column(column)
    step = f"{metrics['step']}/{metrics.get('total_steps', '?')}" if metrics.get("step") else ""
    table.add_row(job["status"], step, str(metrics.get("train_loss", "")),
                  str(metrics.get("train_mean_token_accuracy", "")), job["fine_tuned_model"] or "")  # fmt: skip
    if note:
        table.caption = note
    return table


@command(name="watch-job")
def watch_job(
    job_id: JobIdArg,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between syncs")] = 5.0,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Follow a job live until it finishes (Ctrl-C stops watching, not the job)."""
    with opened(database_url, fresh=False) as rt:
        outcome = rt.job_service.sync(job_id, actor=actor)
        job = _job(rt, outcome.job.job_id)
        with Live(_watch_table(job, outcome.pending), console=out, refresh_per_second=4, transient=as_json) as live:
            while JobStatus(job["status"]) not in TERMINAL:
                time.sleep(interval)
                outcome = rt.job_service.sync(job["job_id"], actor=actor)
                job = _job(rt, job["job_id"])
                live.update(_watch_table(job, outcome.pending))
    if as_json:
        return print_json(job)
    _print_job(job, outcome)


@command(name="cancel-job")
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
        _show_outcome(rt, outcome, as_json)


@command(name="list-jobs")
def list_jobs_command(
    status: Annotated[str | None, typer.Option(help="Only jobs in this status")] = None,
    sync: Annotated[bool, typer.Option("--sync", help="Sync unfinished jobs with their providers first")] = False,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Fine-tuning jobs, newest first: as last recorded, or synced first with --sync."""
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
            rt.engine.reach(rt.engine.log.head())
        rows = list_jobs(rt.db, status=status, limit=100_000)
    if as_json:
        return print_json(rows)
    unfinished = [r for r in rows if JobStatus(r["status"]) not in TERMINAL]
    _table("Fine-tuning jobs", ["job", "status", "as of", "registry version", "fine-tuned model"],
           [[r["job_id"], r["status"], r["updated_at"], f"{r['model_name']} v{r['registry_version']}",
             r["fine_tuned_model"]] for r in rows])  # fmt: skip
    for note in notes:
        out.print(f"Note: {note}")
    if unfinished and not sync:
        # the server's poller keeps them current while it runs; the CLI shows what was last recorded
        out.print(f"{len(unfinished)} unfinished job(s) show their state as last recorded (\"as of\"): refresh them "
                  "with `ft-cli list-jobs --sync`, or one with `ft-cli check-job-status JOB`.")  # fmt: skip


@command(name="delete-fine-tuned-model")
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
            raise _fail("deleting a model cannot be undone: pass --yes to delete it from a script")
        if not typer.confirm(f"Delete {model} at the provider? This cannot be undone"):
            raise _fail("cancelled: nothing was deleted")
    with opened(database_url) as rt:
        job = job_for_model(rt.db, model)
        rt.job_service.delete_model(model, actor=actor, reason=reason, job_id=None if job is None else job["job_id"])
    result = {"model": model, "deleted": True, "job_id": None if job is None else job["job_id"]}
    if as_json:
        return print_json(result)
    out.print(f"Deleted {model}" + (f" (made by job {job['job_id']})." if job else "."))


# ------------------------------------------------------------------ sandbox


@command(sandbox_app, name="openai")
def sandbox_openai(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1")] = 8765,
    refuse_training: Annotated[bool, typer.Option(help="Answer 403 training_not_available, as OpenAI does")] = False,
    train_seconds: Annotated[float, typer.Option(min=0.01, help="How long a job trains")] = 20.0,
) -> None:
    """Serve a local stand-in for OpenAI's fine-tuning API (files, jobs, events, checkpoints, models)."""
    import uvicorn

    from sandbox.openai_finetuning import SandboxState, create_sandbox_app

    state = SandboxState(Timing(validate=2.0, queue=2.0, train=train_seconds), refuse_training=refuse_training)
    out.print(f"OpenAI fine-tuning sandbox on http://127.0.0.1:{port}/v1. In another shell:\n"
              f"  export OPENAI_BASE_URL=http://127.0.0.1:{port}/v1 OPENAI_API_KEY=sandbox-key")  # fmt: skip
    uvicorn.run(create_sandbox_app(state), host="127.0.0.1", port=port, log_level="info")


# --------------------------------------------------------------------- demo

DEMO_TOPICS = (
    ("billing", "How do I change the card my subscription is billed to?",
     "Open Settings, then Billing, choose Payment methods and add the new card; mark it as default and "
     "remove the old one. The next invoice is charged to the new card."),
    ("billing", "Why was I charged twice this month?",
     "A second charge is usually a pending authorisation that drops off within 3 business days. If both "
     "charges settle, reply with the invoice numbers and we refund the duplicate."),
    ("account", "How can I reset my password if I lost access to my email?",
     "Use 'Forgot password', then 'I no longer have access to this email'. We verify you with your last "
     "invoice number and send a reset link to a new address."),
    ("account", "Can I rename my workspace without losing data?",
     "Yes. Settings, General, Workspace name: renaming changes the display name and URL slug only; all "
     "projects, members and history stay as they are."),
    ("shipping", "Where is my order and when will it arrive?",
     "Open Orders and choose the order to see its tracking link. Standard delivery takes 3 to 5 business "
     "days after dispatch; you get an email at each step."),
)  # fmt: skip


def _demo_examples(run: str) -> list[dict[str, Any]]:
    examples = []
    for i in range(60):
        domain, prompt, response = DEMO_TOPICS[i % len(DEMO_TOPICS)]
        examples.append({
            "example_id": f"demo-{run}-{i:03d}", "prompt": f"{prompt} (ticket {run}-{i})",
            "response": f"{response} Reference: ticket {run}-{i}.", "system": "You are a concise support agent.",
            "domain": domain, "task_type": "support", "rating": 5 if i % 7 else 3, "source": "distillation",
            "model": "gpt-4o-2024-08-06", "tags": ["demo"],
        })  # fmt: skip
    return examples


@command(name="demo")
def demo(
    train_seconds: Annotated[float, typer.Option(min=0.05, help="How long the sandbox job trains")] = 3.0,
    actor: ActorOpt = "demo",
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Run the whole lifecycle against a local OpenAI sandbox on a free loopback port, narrating each step."""
    from sandbox.server import SandboxServer

    say = (lambda *_: None) if as_json else out.print
    run = time.strftime("%Y%m%d%H%M%S")
    with SandboxServer(timing=Timing(validate=0.5, queue=0.5, train=train_seconds)) as sandbox:
        settings = OpenAISettings(api_key="sandbox-key", base_url=sandbox.base_url)
        rt = Runtime.open(database_url, openai_settings=settings)
        try:
            say(f"1. The OpenAI sandbox serves {sandbox.base_url}; the store is {rt.config.display_url}.")
            collected = rt.collect_examples(_demo_examples(run), actor=actor)
            say(f"2. Collected {collected.accepted} support examples (distilled from gpt-4o), rated 3 to 5.")
            built = rt.build_dataset(actor=actor, reason="demo", dataset_id=f"demo-{run}", min_rating=4,
                                     task_type="support", train_ratio=0.8, seed=42)  # fmt: skip
            stats = built.build.stats
            say(f"3. Built dataset {built.build.dataset_id}: {stats['train']} train / {stats['test']} test, "
                f"{stats['rejected']} rejected, {stats['total_tokens']:,} tokens, "
                f"hash {built.build.content_hash[:12]}.")
            plan = rt.job_service.plan(base_model="gpt-4o-mini-2024-07-18", dataset_id=built.build.dataset_id,
                                       suffix="support-demo", model_name="support-demo")  # fmt: skip
            say(f"4. Estimated cost: {plan.estimate.tokens:,} tokens x {plan.estimate.epochs} epochs x "
                f"${plan.estimate.unit_price}/1M = {_money(plan.estimate.total)}.")
            outcome = rt.job_service.create(plan, actor=actor, reason="demo")
            job_id = outcome.job.job_id
            say(f"5. Created job {job_id} ({outcome.job.provider_job_id}); version "
                f"{outcome.job.registry_version} of support-demo is pre-registered as TRAINING.")
            last = outcome.job.status
            while not outcome.job.finished:
                time.sleep(0.25)
                outcome = rt.job_service.sync(job_id, actor=actor)
                if outcome.job.status != last:
                    last = outcome.job.status
                    say(f"   ... {last}")
            job = _job(rt, job_id)
            if job["status"] != JobStatus.SUCCEEDED.value:
                raise _fail(f"the demo job ended {job['status']}: {job['error']}")
            version = get_version(rt.db, "support-demo", job["registry_version"])
            assert version is not None
            say(f"6. Succeeded: {job['fine_tuned_model']}, {job['trained_tokens']:,} trained tokens. Version "
                f"{version['version']} is {version['status']}, training cost {_money(version['cost'])}.")
            deployed = rt.registry.deploy("support-demo", version["version"], actor=actor, reason="demo")
            say(f"7. Deployed support-demo version {deployed.number}"
                + (f" (archived version {deployed.previous})." if deployed.previous else "."))
            say(f"   See its life: ft-cli model-history support-demo; ft-cli check-job-status {job_id}")
            result = {"job": job, "version": version, "deployed": deployed.number, "dataset": built.build.dataset_id}
        finally:
            rt.close()
    if as_json:
        print_json(result)



# --------------------------------------------------------------- local training

TemplateOpt = Annotated[str, typer.Option("--chat-template", help="llama-3.1, llama-3, mistral, chatml or qwen-2.5")]
MaxStepsOpt = Annotated[int | None, typer.Option("--max-steps", help="Train this many steps instead of epochs")]
FourBitOpt = Annotated[bool, typer.Option("--load-in-4bit/--no-load-in-4bit")]
LocalEpochsOpt = Annotated[int | None, typer.Option(help="Epochs (default 1)")]
ExportOpt = Annotated[str, typer.Option(help="lora, merged_16bit or gguf")]
QuantizationOpt = Annotated[str | None, typer.Option(help="gguf: q4_k_m, q5_k_m, q8_0 or f16")]


def _local_config(chat_template: str, max_seq_length: int, load_in_4bit: bool, lora_r: int, lora_alpha: int,
                  epochs: int | None, max_steps: int | None, learning_rate: float, batch_size: int,
                  gradient_accumulation: int, export: str, quantization: str | None) -> dict[str, Any]:  # fmt: skip
    return {"chat_template": chat_template, "max_seq_length": max_seq_length, "load_in_4bit": load_in_4bit,
            "lora_r": lora_r, "lora_alpha": lora_alpha, "epochs": None if max_steps else (epochs or 1),
            "max_steps": max_steps, "learning_rate": learning_rate, "batch_size": batch_size,
            "gradient_accumulation": gradient_accumulation, "export": export,
            "quantization": quantization}  # fmt: skip


def _print_time(estimate: dict[str, Any]) -> None:
    time_ = estimate.get("time")
    if time_:
        out.print(f"Estimated training time on {time_['hardware']}: {time_['seconds']:,.1f} s ({time_['method']}: "
                  f"{time_['detail']}).")  # fmt: skip
    else:
        out.print("No time estimate: the model's parameter count is unknown (name it like ...-1B, or use a folder).")


@command(name="create-local-job")
def create_local_job(
    base_model: Annotated[str, typer.Argument(help="unsloth/Llama-3.2-1B-Instruct-bnb-4bit, or a local folder")],
    dataset: Annotated[str, typer.Option("--dataset", help="The dataset build to train on (keeps lineage)")],
    model_name: Annotated[str | None, typer.Option(help="Registry name of the result")] = None,
    chat_template: TemplateOpt = "llama-3.1",
    max_seq_length: Annotated[int, typer.Option()] = 2048,
    load_in_4bit: FourBitOpt = True,
    lora_r: Annotated[int, typer.Option()] = 16,
    lora_alpha: Annotated[int, typer.Option()] = 16,
    epochs: LocalEpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    learning_rate: Annotated[float, typer.Option()] = 2e-4,
    batch_size: Annotated[int, typer.Option()] = 2,
    gradient_accumulation: Annotated[int, typer.Option()] = 4,
    export: ExportOpt = "merged_16bit",
    quantization: QuantizationOpt = None,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Train locally (Unsloth, on a GPU or its CPU backend) as a job: progress, cancel, registry, cost."""
    settings = _local_config(chat_template, max_seq_length, load_in_4bit, lora_r, lora_alpha, epochs, max_steps,
                             learning_rate, batch_size, gradient_accumulation, export, quantization)  # fmt: skip
    with opened(database_url, fresh=False) as rt:
        plan = rt.job_service.plan(base_model=base_model, dataset_id=dataset, provider="local", model_name=model_name,
                                   training_config=settings)  # fmt: skip
        if not as_json:
            _print_time(plan.estimate.as_dict())
        outcome = rt.job_service.create(plan, actor=actor, reason=reason)
        if as_json or not _ended(outcome):
            _show_outcome(rt, outcome, as_json)
    _fail_if_ended(outcome)
    if not as_json:
        out.print(f"Its log: {rt.job_service.local.files(plan.spec.job_id).log}. Follow it with "
                  f"`ft-cli watch-job {plan.spec.job_id}`.")  # fmt: skip


@command(name="estimate-training-time")
def estimate_training_time_command(
    base_model: Annotated[str, typer.Argument(help="A model name with its size (…-1B) or a local folder")],
    dataset: Annotated[str, typer.Option("--dataset", help="Count the tokens of this dataset build")],
    hardware: Annotated[str, typer.Option(help="T4, A10, V100, A100, H100, RTX 4090, Apple M-series or CPU")] = "CPU",
    epochs: LocalEpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: Annotated[int, typer.Option()] = 2,
    gradient_accumulation: Annotated[int, typer.Option()] = 4,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Estimate a local run's time from FLOPs and the GPU table, or from an earlier run of the same model."""
    from domain.local_training import LocalTrainingConfig
    from domain.training_time import hardware as hardware_named

    with opened(database_url) as rt:
        service = rt.job_service
        service.local_hardware = hardware_named(hardware).name
        config = LocalTrainingConfig.validate(base_model=base_model, epochs=None if max_steps else (epochs or 1),
                                              max_steps=max_steps, batch_size=batch_size,
                                              gradient_accumulation=gradient_accumulation)  # fmt: skip
        plan = service.plan(base_model=base_model, dataset_id=dataset, provider="local",
                            training_config={k: v for k, v in config.as_dict().items() if k != "base_model"})
    estimate = plan.estimate.as_dict()
    if as_json:
        return print_json(estimate.get("time") or {"seconds": None, "detail": "parameter count unknown"})
    _print_time(estimate)


def _check_chat_rows(path: Path) -> None:
    """The script reads JSONL rows of chat `messages`: refuse another format (an Alpaca JSON array) up front."""
    import json as json_

    expected = ('the script reads JSONL, one {"messages": [{"role": ..., "content": ...}, ...]} per line: export a '
                "dataset that way with `ft-cli export-dataset ID --format openai`")  # fmt: skip
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                if number == 1 and line.lstrip().startswith("["):
                    raise InvalidInput(f"{path} is a JSON array (Alpaca's format?), not chat rows: {expected}.")
                try:
                    row = json_.loads(line)
                except json_.JSONDecodeError as e:
                    raise InvalidInput(f"{path}, line {number} is not JSON ({e.msg}): {expected}.") from None
                if not isinstance(row, dict) or not isinstance(row.get("messages"), list) or not row["messages"]:
                    raise InvalidInput(f"{path}, line {number} has no chat `messages` list: {expected}.")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"Cannot read {path}: {e}.") from None


@command(name="create-ollama-script")
def create_ollama_script(
    base_model: Annotated[str, typer.Argument(help="unsloth/Llama-3.2-1B-Instruct-bnb-4bit, or a local folder")],
    dataset_file: Annotated[Path, typer.Argument(help="JSONL of chat `messages` rows", exists=True, dir_okay=False)],
    output_model_name: Annotated[str, typer.Argument(help="The Ollama model name to create, e.g. support-bot")],
    chat_template: TemplateOpt = "llama-3.1",
    max_seq_length: Annotated[int, typer.Option()] = 2048,
    load_in_4bit: FourBitOpt = True,
    lora_r: Annotated[int, typer.Option()] = 16,
    lora_alpha: Annotated[int, typer.Option()] = 16,
    epochs: LocalEpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    learning_rate: Annotated[float, typer.Option()] = 2e-4,
    batch_size: Annotated[int, typer.Option()] = 2,
    gradient_accumulation: Annotated[int, typer.Option()] = 4,
    export: ExportOpt = "merged_16bit",
    quantization: QuantizationOpt = None,
    system: Annotated[str | None, typer.Option(help="SYSTEM prompt of the Modelfile")] = None,
    output: Annotated[Path, typer.Option(help="Folder for train.py, config.json and the Modelfile")] = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Write a runnable Unsloth training script, its config and an Ollama Modelfile for the result."""
    import json as json_

    from adapters import ollama as ollama_adapter
    from adapters.unsloth import SCRIPT_NAME, render_script
    from domain.local_training import LocalTrainingConfig

    settings = _local_config(chat_template, max_seq_length, load_in_4bit, lora_r, lora_alpha, epochs, max_steps,
                             learning_rate, batch_size, gradient_accumulation, export, quantization)  # fmt: skip
    config = LocalTrainingConfig.validate(base_model=base_model, **settings)
    _check_chat_rows(dataset_file)
    folder = output / output_model_name.replace(":", "-").replace("/", "-")
    # where the script saves (gguf: the file Unsloth names after the model and quantization)
    target = folder / "output" / ("gguf/MODEL.gguf" if config.export == "gguf" else config.export)
    exported = ollama_adapter.Export(config.export, target)
    base = None if config.export != "lora" else "BASE_MODEL_IN_OLLAMA"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SCRIPT_NAME).write_text(render_script(config, dataset_path=str(dataset_file.resolve()),
                                                        output_dir=str((folder / "output").resolve())))  # fmt: skip
        (folder / "config.json").write_text(json_.dumps(config.as_dict(), indent=2) + "\n")
        modelfile = ollama_adapter.modelfile(exported, config.chat_template, system=system, base=base)
        (folder / "output" / "Modelfile").parent.mkdir(exist_ok=True)
        (folder / "output" / "Modelfile").write_text(modelfile)
    except OSError as e:
        raise _fail(f"cannot write to {folder}: {e.strerror}") from None
    files = {"script": str(folder / SCRIPT_NAME), "config": str(folder / "config.json"),
             "modelfile": str(folder / "output" / "Modelfile")}  # fmt: skip
    if as_json:
        return print_json(files)
    out.print(f"Wrote {files['script']}, {files['config']} and {files['modelfile']}.")
    out.print(f"Train: python {files['script']}; then: cd {folder / 'output'} && ollama create {output_model_name} "
              "-f Modelfile")  # fmt: skip
    if config.export == "gguf":
        out.print("Note: a gguf export needs llama.cpp, which Unsloth downloads from GitHub and builds; a "
                  "merged_16bit export avoids it (Ollama converts safetensors itself for Llama, Mistral and Gemma). "
                  "Point FROM at the .gguf file Unsloth writes.")
    if base:
        out.print("Note: a LoRA Modelfile needs the base model Ollama has: replace BASE_MODEL_IN_OLLAMA in FROM.")


@command(name="publish-to-ollama")
def publish_to_ollama(
    job_id: JobIdArg,
    name: Annotated[str, typer.Argument(help="The Ollama model name, e.g. support-bot:v3")],
    host: Annotated[str | None, typer.Option(help="Ollama's URL, or the name of a configured Ollama endpoint "
                                             "(default: ollama, from OLLAMA_HOST or 127.0.0.1:11434)")] = None,
    system: Annotated[str | None, typer.Option(help="SYSTEM prompt")] = None,
    base: Annotated[str | None, typer.Option(help="LoRA exports: the base model Ollama has")] = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Publish a local job's export to Ollama (blobs by digest, then create); the job records the name."""
    from api.settings import endpoints_from_env, pick_endpoint

    # The CLI runs as the user: a configured name is looked up, anything else is Ollama's address as the
    # `ollama` client takes it (with the user's own OLLAMA_API_KEY).
    endpoints = endpoints_from_env()
    url, key = host, os.environ.get("OLLAMA_API_KEY")
    if host is None or host in endpoints:
        found = pick_endpoint(endpoints, host or "ollama", field="--host", kind="ollama")
        url, key = found.base_url, found.key
    with opened(database_url, fresh=False) as rt:
        outcome = rt.job_service.publish_to_ollama(job_id, name, actor=actor, host=url, api_key=key, system=system,
                                                   base=base)  # fmt: skip
        job = _job(rt, outcome.job.job_id)
    if as_json:
        return print_json(job)
    out.print(f"Published {name} at {job['published']['host']}; evaluation reaches it at "
              f"{job['published']['chat_url']}.")  # fmt: skip


def _ollama_client(host: str | None) -> Any:
    import ollama

    return ollama.Client(host=host or os.environ.get("OLLAMA_HOST") or "http://127.0.0.1:11434")


OllamaHostOpt = Annotated[str | None, typer.Option("--host", help="Ollama's URL (default OLLAMA_HOST)")]


@command(name="list-ollama-models")
def list_ollama_models(host: OllamaHostOpt = None, as_json: JsonOpt = False) -> None:
    """The models Ollama has."""
    from adapters import ollama as ollama_adapter

    models = _ollama_call(lambda: ollama_adapter.list_models(_ollama_client(host)), host)
    if as_json:
        return print_json(models)
    _table("Ollama models", ["name", "family", "size", "modified"],
           [[m["name"], m["family"], m["size"], m["modified_at"]] for m in models])  # fmt: skip


@command(name="delete-ollama-model")
def delete_ollama_model(name: str, host: OllamaHostOpt = None, as_json: JsonOpt = False) -> None:
    """Delete a model from Ollama."""
    from adapters import ollama as ollama_adapter

    _ollama_call(lambda: ollama_adapter.delete_model(_ollama_client(host), name), host)
    if as_json:
        return print_json({"model": name, "deleted": True})
    out.print(f"Deleted {name} from Ollama.")


def _ollama_call(call: Any, host: str | None) -> Any:
    import httpx

    try:
        return call()
    except (httpx.HTTPError, ConnectionError, OSError):
        where = host or os.environ.get("OLLAMA_HOST") or "http://127.0.0.1:11434"
        raise _fail(f"Ollama is not reachable at {where}: start it (`ollama serve`) or give --host.") from None
