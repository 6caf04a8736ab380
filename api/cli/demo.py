"""`ft-cli demo`: the whole lifecycle against a local OpenAI sandbox, narrated step by step."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from api.cli.common import ActorOpt, Commands, DbOpt, JsonOpt, fail, out, print_json
from api.cli.jobs import cost_text, job_row
from domain.job_specs import JobStatus

commands = Commands()

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


@commands.command("demo")
def demo(
    train_seconds: Annotated[float, typer.Option(min=0.05, help="How long the sandbox job trains")] = 3.0,
    actor: ActorOpt = "demo",
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Run the whole lifecycle against a local OpenAI sandbox on a free loopback port, narrating each step."""
    from adapters.openai_jobs import OpenAISettings
    from api.runtime import Runtime
    from projections.registry import get_version
    from sandbox.openai_finetuning import Timing
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
            built = rt.builds.build(actor=actor, reason="demo", dataset_id=f"demo-{run}", min_rating=4,
                                     task_type="support", train_ratio=0.8, seed=42)  # fmt: skip
            stats = built.build.stats
            say(
                f"3. Built dataset {built.build.dataset_id}: {stats['train']} train / {stats['test']} test, "
                f"{stats['rejected']} rejected, {stats['total_tokens']:,} tokens, "
                f"hash {built.build.content_hash[:12]}."
            )
            plan = rt.job_service.plan(base_model="gpt-4o-mini-2024-07-18", dataset_id=built.build.dataset_id,
                                       suffix="support-demo", model_name="support-demo")  # fmt: skip
            say(
                f"4. Estimated cost: {plan.estimate.tokens:,} tokens x {plan.estimate.epochs} epochs x "
                f"${plan.estimate.unit_price}/1M = {cost_text(plan.estimate.total)}."
            )
            outcome = rt.job_service.create(plan, actor=actor, reason="demo")
            job_id = outcome.job.job_id
            say(
                f"5. Created job {job_id} ({outcome.job.provider_job_id}); version "
                f"{outcome.job.registry_version} of support-demo is pre-registered as TRAINING."
            )
            last = outcome.job.status
            while not outcome.job.finished:
                time.sleep(0.25)
                outcome = rt.job_service.sync(job_id, actor=actor)
                if outcome.job.status != last:
                    last = outcome.job.status
                    say(f"   ... {last}")
            job = job_row(rt, job_id)
            if job["status"] != JobStatus.SUCCEEDED.value:
                raise fail(f"the demo job ended {job['status']}: {job['error']}")
            version = get_version(rt.db, "support-demo", job["registry_version"])
            assert version is not None
            say(
                f"6. Succeeded: {job['fine_tuned_model']}, {job['trained_tokens']:,} trained tokens. Version "
                f"{version['version']} is {version['status']}, training cost {cost_text(version['cost'])}."
            )
            deployed = rt.registry.deploy("support-demo", version["version"], actor=actor, reason="demo")
            say(
                f"7. Deployed support-demo version {deployed.number}"
                + (f" (archived version {deployed.previous})." if deployed.previous else ".")
            )
            say(f"   See its life: ft-cli models history support-demo; ft-cli check-job-status {job_id}")
            result = {"job": job, "version": version, "deployed": deployed.number, "dataset": built.build.dataset_id}
        finally:
            rt.close()
    if as_json:
        print_json(result)
