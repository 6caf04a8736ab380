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


BASE_MODEL = "gpt-4o-mini-2024-07-18"


def _baseline(rt: Any, actor: str, run: str) -> int | None:
    """Registers and deploys the base model as support-demo's first version when nothing is deployed yet,
    so the demo has a version to roll back to."""
    from projections.deployments import current_status

    status = current_status(rt.db, model="support-demo")
    if status and status[0]["deployed_version"] is not None:
        return None
    registered = rt.command(lambda: rt.registry.register_version(
        "support-demo", base_model=BASE_MODEL, job_id=f"baseline-{run}", dataset_size=0, actor=actor,
        reason="demo baseline: the base model untuned", serving={"upstream": "openai", "model": BASE_MODEL},
    ))  # fmt: skip
    rt.command(lambda: rt.registry.deploy("support-demo", registered.number, actor=actor, reason="demo baseline"))
    return registered.number


def _traffic(rt: Any, sandbox: Any, deployed: int, previous: int | None, actor: str, say: Any) -> dict[str, Any]:
    """Calls through the gateway with the openai SDK, their cost in the ledger, then a rollback that moves
    the next call to the version deployed before."""
    import openai

    from api.http.app import create_app
    from api.settings import Settings
    from projections.gateway_calls import call_stats
    from sandbox.server import LoopbackServer

    sandbox.state.chat.answers = {prompt: response for _, prompt, response in DEMO_TOPICS}
    settings = Settings(database_url=rt.config.url, openai_base_url=sandbox.base_url, openai_api_key="sandbox-key",
                        poll_jobs=False, projection_interval=0.05)  # fmt: skip
    app = create_app(settings, rt)
    with LoopbackServer(lambda: app, lifespan="on") as server:
        gateway = app.state.gateway
        base_url = f"{server.root_url}/gateway/v1"
        sdk = openai.OpenAI(base_url=base_url, api_key="demo", max_retries=0)
        ids, served = [], set()
        for i, (_, prompt, _) in enumerate(DEMO_TOPICS):
            messages = [{"role": "user", "content": prompt}]
            if i % 2:
                with sdk.chat.completions.with_streaming_response.create(model="support-demo", messages=messages,
                                                                         stream=True) as streamed:  # fmt: skip
                    list(streamed.parse())
                    headers = streamed.headers
            else:
                headers = sdk.chat.completions.with_raw_response.create(model="support-demo", messages=messages).headers
            ids.append(headers["x-ft-call-id"])
            served.add(headers["x-ft-model-version"])
        gateway.recorder.wait_idle()
        gateway.recorder.flush()
        rt.engine.catch_up()
        stats = call_stats(rt.db, model="support-demo", version=deployed)["models"]
        calls = stats[0] if stats else {"calls": 0, "cost": 0, "input_tokens": 0, "output_tokens": 0}
        streams = len(DEMO_TOPICS) // 2
        say(f"8. The gateway at {base_url} answered {len(ids)} calls through the openai SDK ({streams} streamed) with "
            f"support-demo version {', '.join(sorted(served))}; the ledger has them: {calls['calls']} calls, "
            f"{calls['input_tokens']} + {calls['output_tokens']} tokens, {cost_text(calls['cost'])}.")  # fmt: skip
        after = None
        if previous is not None:
            rolled = rt.command(lambda: rt.registry.rollback("support-demo", previous, actor=actor,
                                                            reason="demo: back to the version before"))  # fmt: skip
            gateway.routes.wait_for(rolled.recorded.position, timeout=10)
            raw = sdk.chat.completions.with_raw_response.create(
                model="support-demo", messages=[{"role": "user", "content": DEMO_TOPICS[0][1]}])
            after = int(raw.headers["x-ft-model-version"])
            say(f"9. Rolled back to version {previous}: the next call was answered by version {after} "
                f"({raw.parse().model}).")  # fmt: skip
    return {"calls": len(ids), "recorded": calls["calls"], "cost": calls["cost"], "served_by": sorted(served),
            "after_rollback": after}  # fmt: skip


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
            baseline = _baseline(rt, actor, run)
            if baseline is not None:
                say(f"   Version {baseline} of support-demo, the base model untuned, is deployed as the baseline.")
            plan = rt.job_service.plan(base_model=BASE_MODEL, dataset_id=built.build.dataset_id,
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
            traffic = _traffic(rt, sandbox, deployed.number, deployed.previous, actor, say)
            say(f"   See its life: ft-cli models history support-demo; ft-cli check-job-status {job_id}; "
                "ft-cli gateway calls --model support-demo")  # fmt: skip
            result = {"job": job, "version": version, "deployed": deployed.number, "dataset": built.build.dataset_id,
                      "gateway": traffic}  # fmt: skip
        finally:
            rt.close()
    if as_json:
        print_json(result)
