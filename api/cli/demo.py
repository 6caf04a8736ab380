"""`ft-cli demo`: the whole lifecycle against a local OpenAI sandbox, narrated step by step."""

from __future__ import annotations

import time
from decimal import Decimal
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


#: the demo's simulated feedback: how often each arm's answers are right
RIGHT = {"a": 0.6, "b": 0.9}
CALLS, USERS = 2000, 1000


def _evaluate(rt: Any, sandbox: Any, job: dict[str, Any], dataset_id: str, version: int, actor: str,
              run: str) -> float:  # fmt: skip
    """A live evaluation of the fine-tune on the test split, its accuracy attached to the version. The sandbox
    knows each answer with a chance of 0.9 (a hash of model and prompt decides), so a small split scores
    what its draw gives."""
    examples = _demo_examples(run)
    sandbox.state.chat.answers = {e["prompt"]: e["response"] for e in examples}
    sandbox.state.chat.accuracy = {job["fine_tuned_model"]: 0.9}
    evaluation_id = f"demo-{run}"
    live = rt.live_evaluations.run(model=job["fine_tuned_model"], endpoint=sandbox.base_url, api_key="sandbox-key",
                                   dataset_id=dataset_id, split="test", concurrency=4, evaluation_id=evaluation_id,
                                   modes=["exact"], actor=actor)  # fmt: skip
    rt.command(lambda: rt.evaluation_results.attach(evaluation_id, "support-demo", version, actor=actor,
                                                    reason="demo: the test split, live"))  # fmt: skip
    return float((live.metrics or {}).get("exact", {}).get("accuracy") or 0.0)


def _per_call(stats: dict[str, Any]) -> Decimal:
    return (stats["cost"] / stats["calls"]).quantize(Decimal("1e-12"))


def _right(call_id: str, arm: str) -> bool:
    """A deterministic coin for the simulated feedback on a call."""
    import hashlib

    return int(hashlib.sha256(call_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < RIGHT[arm]


def _experiment(rt: Any, sandbox: Any, champion: int, challenger: dict[str, Any], actor: str, run: str,
                say: Any) -> dict[str, Any]:  # fmt: skip
    """The loop through the gateway: an A/B test of the fine-tune against the deployed version with a
    policy, calls through the openai SDK with simulated feedback, the policy's conclusion and deploy,
    the costs and the ROI, then a rollback that moves the next call back."""
    import openai

    from api.http.app import create_app
    from api.settings import Settings
    from domain.roi import RoiInputs, compute_roi
    from projections.gateway_calls import call_stats, get_call
    from sandbox.server import LoopbackServer

    new = challenger["version"]
    sandbox.state.chat.answers = {prompt: response for _, prompt, response in DEMO_TOPICS}
    settings = Settings(database_url=rt.config.url, openai_base_url=sandbox.base_url, openai_api_key="sandbox-key",
                        poll_jobs=False, projection_interval=0.05, run_ab_policies=False)  # fmt: skip
    app = create_app(settings, rt)
    test_id = f"demo-{run}"
    with LoopbackServer(lambda: app, lifespan="on") as server:
        gateway = app.state.gateway
        rt.command(lambda: rt.ab_results.create(
            actor=actor, reason="demo: the fine-tune against the deployed version", test_id=test_id,
            model_a=f"support-demo@{champion}", model_b=f"support-demo@{new}", min_samples=200,
            on_win="conclude_and_deploy", guardrail_error_rate=0.2))  # fmt: skip
        gateway.routes.refresh()
        say(f"7. A/B test {test_id}: version {champion} (deployed) against version {new}, half the users each; "
            "policy: deploy an always-valid winner, stop the challenger past 20% errors.")  # fmt: skip
        base_url = f"{server.root_url}/gateway/v1"
        sdk = openai.OpenAI(base_url=base_url, api_key="demo", max_retries=0)
        calls = []
        for i in range(CALLS):
            prompt = DEMO_TOPICS[i % len(DEMO_TOPICS)][1]
            raw = sdk.chat.completions.with_raw_response.create(
                model="support-demo", messages=[{"role": "user", "content": prompt}], user=f"user-{i % USERS}")
            calls.append((raw.headers["x-ft-call-id"], raw.headers["x-ft-arm"]))
        if not gateway.recorder.wait_idle(60):
            raise fail("the gateway's calls did not finish within 60 s")
        gateway.recorder.flush()
        rt.engine.catch_up()
        for call_id, arm in calls:  # the application tells each call's outcome (POST .../feedback does this)
            rt.ab.give_feedback(get_call(rt.db, call_id), correct=_right(call_id, arm), actor=actor)
        rt.engine.catch_up()
        acted = rt.ab_policies.check_all()
        rt.engine.catch_up()
        decision = acted[0].decision if acted else None
        deployed = acted[0].deployed if acted else None
        say(f"8. {len(calls):,} calls through the gateway with the openai SDK, each a sample of its arm, with "
            f"feedback; the policy {'concluded: ' + decision.reason if decision else 'decided nothing yet'}"
            + (f", and deployed version {deployed}." if deployed else "."))  # fmt: skip
        stats = {s["version"]: s for s in call_stats(rt.db, model="support-demo")["models"]}
        before, after = stats.get(champion), stats.get(new)
        roi = None
        if before and after and before["accuracy"] is not None and after["accuracy"] is not None:
            report = compute_roi(RoiInputs.validate(
                training_cost=challenger["cost"] or 0, base_cost_per_call=_per_call(before),
                ft_cost_per_call=_per_call(after), base_accuracy=round(before["accuracy"], 6),
                ft_accuracy=round(after["accuracy"], 6), calls=100_000))  # fmt: skip
            roi = report.roi_percent
            say(f"9. Costs from the ledger: version {champion} {before['calls']} calls {cost_text(before['cost'])}, "
                f"accuracy {before['accuracy']:.1%}; version {new} {after['calls']} calls {cost_text(after['cost'])}, "
                f"accuracy {after['accuracy']:.1%}, training {cost_text(challenger['cost'])}. Over 100,000 calls "
                f"(errors at $10): ROI {report.roi_percent or 0:,.0f}%, {report.verdict}.")  # fmt: skip
        rolled = rt.command(lambda: rt.registry.rollback("support-demo", champion, actor=actor,
                                                         reason="demo: back to the version before"))  # fmt: skip
        if not gateway.routes.wait_for(rolled.recorded.position, timeout=60):
            raise fail("the gateway's routes did not take the rollback within 60 s")
        raw = sdk.chat.completions.with_raw_response.create(
            model="support-demo", messages=[{"role": "user", "content": DEMO_TOPICS[0][1]}])
        back = int(raw.headers["x-ft-model-version"])
        say(f"10. Rolled back to version {champion}: the next call was answered by version {back} "
            f"({raw.parse().model}).")  # fmt: skip
    return {"test_id": test_id, "calls": len(calls), "recorded": sum(s["calls"] for s in stats.values()),
            "decision": None if decision is None else decision.action, "winner_deployed": deployed,
            "roi_percent": roi, "after_rollback": back}  # fmt: skip


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
    from projections.deployments import current_status
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
            accuracy = _evaluate(rt, sandbox, job, built.build.dataset_id, version["version"], actor, run)
            say(f"   Evaluated on the dataset's test split through the sandbox: accuracy {accuracy:.1%}, attached to "
                f"version {version['version']}.")  # fmt: skip
            version = get_version(rt.db, "support-demo", version["version"]) or version  # with its accuracy
            champion = current_status(rt.db, model="support-demo")[0]["deployed_version"]
            traffic = _experiment(rt, sandbox, champion, version, actor, run, say)
            say(f"   See its life: ft-cli models history support-demo; ft-cli check-job-status {job_id}; "
                "ft-cli gateway calls --model support-demo")  # fmt: skip
            result = {"job": job, "version": version, "deployed": traffic["winner_deployed"],
                      "dataset": built.build.dataset_id, "gateway": traffic}  # fmt: skip
        finally:
            rt.close()
    if as_json:
        print_json(result)
