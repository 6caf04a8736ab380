"""`ft-cli ab …`: A/B tests: create one, record samples, the live statistics, conclude, list."""

from __future__ import annotations

from datetime import UTC, datetime
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
    fail,
    money,
    opened,
    out,
    print_json,
    table,
)
from api.cli.jsonl import import_jsonl
from api.presenters import deploy_command
from domain.batches import MAX_BATCH
from domain.errors import RuleViolation

if TYPE_CHECKING:
    from api.runtime import Runtime

commands = Commands()


@commands.command("create")
def setup_ab_test(
    test_id: str,
    model_a: Annotated[str, typer.Argument(help="The control")],
    model_b: Annotated[str, typer.Argument(help="The variant (NAME@VERSION for a registry version)")],
    split: Annotated[float | None, typer.Option(help="Share of units sent to model_b (0.5)")] = None,
    alpha: Annotated[float | None, typer.Option(help="Significance level (0.05)")] = None,
    min_samples: Annotated[int | None, typer.Option(help="Per arm before any verdict (30; 100+ advised)")] = None,
    match_mode: Annotated[str | None, typer.Option(help="exact or substring")] = None,
    gateway_model: Annotated[str | None, typer.Option(
        help="The registered model whose gateway calls it splits (found by itself for NAME@1 against NAME@2)")] = None,
    on_win: Annotated[str | None, typer.Option(
        help="What an always-valid winner does: none, conclude or conclude_and_deploy")] = None,
    guardrail: Annotated[list[str] | None, typer.Option(
        help="error_rate=0.2 or p95_ms=800: the challenger is stopped past it (repeatable)")] = None,
    max_duration: Annotated[float | None, typer.Option(
        help="Seconds after which the test concludes as inconclusive")] = None,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Create an A/B test of two models (of two versions of one model: it splits that model's gateway calls)."""
    limits = _guardrails(guardrail or [])
    with opened(database_url, fresh=False) as rt:
        rt.command(lambda: rt.ab_results.create(actor=actor, reason=reason, test_id=test_id, model_a=model_a,
                                             model_b=model_b, split=split, alpha=alpha, min_samples=min_samples,
                                             match_mode=match_mode, gateway_model=gateway_model, on_win=on_win,
                                             max_duration_s=max_duration, **limits))  # fmt: skip
        found = rt.ab_results.get(test_id)
    c = found["config"]
    if as_json:
        return print_json({"test_id": test_id, "model_a": c.model_a, "model_b": c.model_b, "split": c.split,
                           "alpha": c.alpha, "min_samples": c.min_samples, "status": found["status"]})  # fmt: skip
    split = f" of {c.gateway_model}'s gateway calls" if c.gateway_model else ""
    out.print(f"A/B test {test_id}: {c.model_a} (a) against {c.model_b} (b), {c.split:.0%} of units{split} to b.")


def _guardrails(given: list[str]) -> dict[str, float]:
    limits = {}
    for item in given:
        name, _, value = item.partition("=")
        if name not in ("error_rate", "p95_ms"):
            raise typer.BadParameter(f"--guardrail {item!r}: use error_rate=0.2 or p95_ms=800")
        try:
            limits[f"guardrail_{name}"] = float(value)
        except ValueError:
            raise typer.BadParameter(f"--guardrail {item!r}: {value!r} is not a number") from None
    return limits


@commands.command("policy")
def ab_policy(
    test_id: str,
    apply: Annotated[bool, typer.Option("--apply", help="Act on the decision now, as the server would")] = False,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Show a test's policy and what it decides now (the server acts on it every few seconds)."""
    from dataclasses import asdict

    from domain.ab_policy import decide
    from projections.gateway_calls import arm_latency_p95

    with opened(database_url) as rt:
        found = rt.ab_results.get(test_id)
        c = found["config"]
        decision = None
        if found["status"] == "running":
            decision = decide(c, found["statistics"], challenger_stopped=found["challenger_stopped"] is not None,
                              challenger_p95_ms=arm_latency_p95(rt.db, test_id, "b"),
                              started_at=datetime.fromisoformat(found["created_at"]),
                              now=datetime.now(UTC))  # fmt: skip
        acted = rt.command(lambda: rt.ab_policies.check(test_id)) if apply and decision is not None else None
    policy = {"on_win": c.on_win, "guardrail_error_rate": c.guardrail_error_rate,
              "guardrail_p95_ms": c.guardrail_p95_ms, "max_duration_s": c.max_duration_s}  # fmt: skip
    result = {"test_id": test_id, "status": found["status"], "policy": policy,
              "challenger_stopped": found["challenger_stopped"],
              "decision": None if decision is None else asdict(decision),
              "applied": acted is not None, "deployed": None if acted is None else acted.deployed}  # fmt: skip
    if as_json:
        return print_json(result)
    out.print(f"A/B test {test_id} ({found['status']}): on_win {c.on_win}, guardrails error_rate "
              f"{c.guardrail_error_rate or '-'} p95_ms {c.guardrail_p95_ms or '-'}, max duration "
              f"{c.max_duration_s or '-'} s.")  # fmt: skip
    if found["challenger_stopped"]:
        out.print(f"Challenger stopped: {found['challenger_stopped']['reason']}.")
    what = "nothing yet" if decision is None else f"{decision.action}: {decision.reason}"
    out.print(f"Decision now: {what}" + (" (applied)." if acted else "."))


@commands.command("record-samples")
def record_samples(
    test_id: str,
    file: Annotated[Path, typer.Argument(help="JSONL: one sample per line", exists=True, dir_okay=False)],
    batch_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="Samples per appended batch")] = MAX_BATCH,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Record A/B samples from a JSONL file, in batches, with a progress bar (re-running is safe)."""
    totals = import_jsonl(file, batch_size, as_json, database_url,
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
    table(f"A/B test {found['config'].test_id} ({found['status']})",
           ["arm", "model", "n", "accuracy", "95% CI", "latency ms", "cost/call", "cost total"], rows)  # fmt: skip
    valid = s["comparison"].get("always_valid") or {}
    for name, label in (("accuracy", "accuracy"), ("latency_ms", "latency ms"), ("cost", "cost")):
        v = valid.get(name)
        if v is not None:
            low, high = v["confidence_sequence"]
            out.print(f"Always valid, {label} (b - a): {v['difference']:+.4g}, p = {v['p_value']:.3g}, "
                      f"{1 - found['config'].alpha:.0%} confidence sequence [{low:+.4g}, {high:+.4g}]")  # fmt: skip
    out.print(f"Verdict: {s['verdict']}" + (f"; deploy it with `{deploy}`." if deploy else "."))


def _show_ab(rt: Runtime, test_id: str, as_json: bool) -> None:
    found = rt.ab_results.get(test_id)
    deploy = deploy_command(rt.db, found["statistics"]["winner_model"])
    if as_json:
        return print_json({"test_id": test_id, "status": found["status"], "statistics": found["statistics"],
                           "deploy_command": deploy})  # fmt: skip
    _print_ab(found, deploy)


@commands.command("status")
def ab_test_status(test_id: str, as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """Per-arm statistics and the verdict (live, or frozen once concluded)."""
    with opened(database_url) as rt:
        _show_ab(rt, test_id, as_json)


@commands.command("conclude")
def conclude_ab_test(
    test_id: str, reason: ReasonOpt = None, actor: ActorOpt = DEFAULT_ACTOR, as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:  # fmt: skip
    """Freeze the result over every sample recorded so far."""
    with opened(database_url, fresh=False) as rt:
        try:
            rt.command(lambda: rt.ab_results.conclude(test_id, actor=actor, reason=reason))
        except RuleViolation as e:
            if rt.ab.load(test_id).status == "running":
                raise
            raise fail(f"{e.detail} See its frozen result with `ft-cli ab status {test_id}`.") from None
        _show_ab(rt, test_id, as_json)


@commands.command("list")
def list_ab_tests(as_json: JsonOpt = False, database_url: DbOpt = None) -> None:
    """Every A/B test with its status."""
    from projections.ab_stats import list_tests

    with opened(database_url) as rt:
        tests = list_tests(rt.db, limit=100_000)
    rows = [{"test_id": t["config"].test_id, "model_a": t["config"].model_a, "model_b": t["config"].model_b,
             "status": t["status"], "created_at": t["created_at"],
             "verdict": (t["result"] or {}).get("verdict")} for t in tests]  # fmt: skip
    if as_json:
        return print_json(rows)
    columns = ["test_id", "model_a", "model_b", "status", "created_at", "verdict"]
    table("A/B tests", columns, [[r[c] for c in columns] for r in rows])


@commands.command("feedback")
def give_feedback(
    call_id: Annotated[str, typer.Argument(help="The call: the X-FT-Call-Id header of its gateway answer")],
    correct: Annotated[bool | None, typer.Option("--correct/--incorrect", help="Whether the answer was right")] = None,
    score: Annotated[float | None, typer.Option(min=0, max=1, help="Or a score from 0 to 1 (0.5+ is correct)")] = None,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Tell a gateway call's outcome: its A/B sample's, and its model's accuracy over time (counted once)."""
    from projections.gateway_calls import get_call

    with opened(database_url) as rt:
        found = get_call(rt.db, call_id)
        if found is None:
            raise fail(f"No call {call_id!r} is recorded (yet: the gateway writes its records every 250 ms).")
        given = rt.command(lambda: rt.ab.give_feedback(found, correct=correct, score=score, actor=actor,
                                                      reason=reason))  # fmt: skip
    if as_json:
        return print_json({"call_id": call_id, "counted": given.counted,
                           "position": None if given.recorded is None else given.recorded.position})  # fmt: skip
    out.print(f"Feedback on {call_id} counted." if given.counted else
              f"Feedback on {call_id} was counted before: nothing recorded.")  # fmt: skip
