"""`ft-cli evals …`: offline evaluations from a file (the seed's evaluate-model), live runs against an
endpoint, comparisons with McNemar's test, and attaching an evaluation's accuracy to a version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import (
    DEFAULT_ACTOR,
    ActorOpt,
    Commands,
    DbOpt,
    JsonOpt,
    ReasonOpt,
    money,
    opened,
    out,
    percent,
    print_json,
    table,
)
from domain.errors import InvalidInput

commands = Commands()


def _read_test_file(path: Path) -> tuple[list[Any], list[int]]:
    rows, lines = [], []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"Cannot read {path}: {e}.") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise InvalidInput(f"Line {number} of {path} is not valid JSON ({e.msg}, column {e.colno}): each line "
                               "is one {\"prediction\": ..., \"reference\": ...} object.") from None  # fmt: skip
        lines.append(number)
    return rows, lines


@commands.command("evaluate")
def evaluate_model(
    name: Annotated[str, typer.Argument(help="The model the predictions come from")],
    model_type: Annotated[str, typer.Argument(metavar="TYPE", help="base or fine_tuned")],
    test_file: Annotated[
        Path,
        typer.Argument(
            help="JSONL: prediction, reference, and optional latency_ms, cost, label", exists=True, dir_okay=False
        ),
    ],  # fmt: skip
    cost: Annotated[float | None, typer.Option(help="Cost per inference where a line gives none")] = None,
    mode: Annotated[
        list[str] | None, typer.Option(help="exact, substring, classification, bleu or rouge (repeat for several)")
    ] = None,  # fmt: skip
    ignore_case: Annotated[bool, typer.Option(help="Matching ignores case")] = False,
    ignore_whitespace: Annotated[bool, typer.Option(help="Matching ignores extra whitespace")] = False,
    ignore_punctuation: Annotated[bool, typer.Option(help="Matching ignores punctuation")] = False,
    evaluation_id: Annotated[str | None, typer.Option(help="Default: ev- and 12 hex digits")] = None,
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Score predictions from a file (the seed's offline evaluation) and record them with their metrics."""
    from domain.batches import BatchRejected

    rows, lines = _read_test_file(test_file)
    norm = {"case": ignore_case, "whitespace": ignore_whitespace, "punctuation": ignore_punctuation}
    with opened(database_url, fresh=False) as rt:
        try:
            done = rt.evaluation_results.evaluate_offline(
                actor=actor, reason=reason, evaluation_id=evaluation_id, model=name, model_type=model_type,
                predictions=rows, modes=mode or ["exact"], normalisation=norm, cost=cost,
                source={"kind": "file", "path": str(test_file.resolve())},
            )  # fmt: skip
        except BatchRejected as e:
            first = e.errors[0]
            raise InvalidInput(f"Line {lines[first.index]} of {test_file}: {first.message}"
                               + (f" (and {len(e.errors) - 1} more)" if len(e.errors) > 1 else "")
                               + "; nothing was recorded.") from None  # fmt: skip
    metrics = done.metrics
    if as_json:
        return print_json({"evaluation_id": done.spec.evaluation_id, "metrics": metrics})
    headline = next((metrics[k] for k in ("exact", "substring", "classification") if k in metrics), None)
    parts = [f"{done.spec.evaluation_id}: {metrics['n']} predictions"]
    if headline:
        parts.append(f"accuracy {percent(headline['accuracy'])} (95% CI {percent(headline['ci_low'])} to "
                     f"{percent(headline['ci_high'])})")  # fmt: skip
    for key, label in (("bleu", "BLEU"), ("rouge_l", "ROUGE-L")):
        if key in metrics:
            parts.append(f"{label} {metrics[key]:.3f}" if key == "rouge_l" else f"{label} {metrics[key]:.1f}")
    if "latency" in metrics:
        parts.append(f"latency p50 {metrics['latency']['p50_ms']:.0f} ms")
    if "cost_per_inference" in metrics:
        parts.append(f"{money(metrics['cost_per_inference'])} per inference")
    out.print("; ".join(parts) + ".")


@commands.command("compare")
def compare_models(
    base: Annotated[str, typer.Argument(help="The base model's evaluation id")],
    candidate: Annotated[str, typer.Argument(help="The fine-tuned model's evaluation id")],
    training_cost: Annotated[float | None, typer.Option(help="For the ROI: what the fine-tune cost")] = None,
    calls: Annotated[int | None, typer.Option(help="For the ROI: calls over the period")] = None,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Compare two evaluations on the same test set: accuracy, McNemar's exact test, latency, cost and ROI."""
    roi = None if training_cost is None or calls is None else {"training_cost": training_cost, "calls": calls}
    with opened(database_url) as rt:
        result = rt.evaluation_results.compare(base, candidate, roi=roi)
    if as_json:
        return print_json(result)
    rows = []
    if result.get("accuracy"):
        a = result["accuracy"]
        rows.append(["accuracy", percent(a["base"]), percent(a["candidate"]),
                     f"{a['difference']:+.1%} (95% CI {a['ci_low']:+.1%} to {a['ci_high']:+.1%})"])  # fmt: skip
    if "latency" in result:
        lat = result["latency"]["mean_ms"]
        rows.append(
            ["latency (mean)", f"{lat['base']:.0f} ms", f"{lat['candidate']:.0f} ms", f"{lat['delta']:+.0f} ms"]
        )
    if "cost_per_inference" in result:
        c = result["cost_per_inference"]
        delta = money(c["delta"])
        rows.append(["cost per inference", money(c["base"]), money(c["candidate"]),
                     delta if delta.startswith("-") else "+" + delta])  # fmt: skip
    table(f"{result['base_model']} vs {result['candidate_model']} ({result['n']} examples)",
           ["metric", "base", "fine-tuned", "change"], rows)  # fmt: skip
    if result.get("mcnemar"):
        mc = result["mcnemar"]
        verdict = "significant" if mc["significant_at_0.05"] else "not significant"
        out.print(f"McNemar exact test: p = {mc['p_value']:.4g} ({verdict} at 0.05; {mc['only_candidate']} examples "
                  f"only the fine-tune got right, {mc['only_base']} only the base).")  # fmt: skip
    if "roi" in result:
        r = result["roi"]
        out.print(
            f"ROI over {r['calls']:,} calls: net benefit {money(r['net_benefit'])}"
            + (f", {r['roi_percent']:,.0f}%" if r["roi_percent"] is not None else "")
            + "."
        )


@commands.command("list")
def list_evaluations_command(model: Annotated[str | None, typer.Option()] = None, as_json: JsonOpt = False,
                             database_url: DbOpt = None) -> None:  # fmt: skip
    """Every evaluation with its headline metrics."""
    from projections.evaluations import list_evaluations

    with opened(database_url) as rt:
        items = list_evaluations(rt.db, model=model, limit=100_000)
    if as_json:
        return print_json(items)
    rows = []
    for e in items:
        metrics = e["metrics"] or {}
        headline = next((metrics[k] for k in ("exact", "substring", "classification") if k in metrics), None)
        rows.append([e["evaluation_id"], e["model"], e["model_type"], ",".join(e["modes"] or []), metrics.get("n"),
                     percent(headline["accuracy"]) if headline else ""])  # fmt: skip
    table("Evaluations", ["evaluation", "model", "type", "modes", "n", "accuracy"], rows)


@commands.command("attach")
def attach_evaluation(
    evaluation_id: Annotated[str, typer.Argument(help="The evaluation whose accuracy to attach")],
    model: Annotated[str, typer.Argument(help="The registry model")],
    version: Annotated[int, typer.Argument(help="The version the evaluation measured")],
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Set a registry version's accuracy from an evaluation, linking the evaluation (one audited event)."""
    with opened(database_url) as rt:
        done = rt.command(lambda: rt.evaluation_results.attach(evaluation_id, model, version, actor=actor,
                                                               reason=reason))  # fmt: skip
    accuracy = done.accuracy
    result = {"model": model, "version": version, "accuracy": accuracy, "evaluation_id": evaluation_id,
              "position": done.recorded.position}  # fmt: skip
    if as_json:
        return print_json(result)
    out.print(f"{model} version {version}: accuracy {percent(accuracy)} from evaluation {evaluation_id}.")


@commands.command("run")
def run_evaluation(
    model: Annotated[str, typer.Argument(help="The model name the endpoint serves")],
    endpoint: Annotated[
        str,
        typer.Option(
            help="An OpenAI-compatible base URL, e.g. http://127.0.0.1:11434/v1, or "
            "the name of a configured endpoint (FT_ENDPOINTS, openai, ollama)"
        ),
    ],
    dataset: Annotated[str, typer.Option("--dataset", help="The dataset build whose split to send")],
    split: Annotated[str, typer.Option(help="train, test or all")] = "test",
    concurrency: Annotated[int, typer.Option(help="Requests at a time")] = 4,
    evaluation_id: Annotated[
        str | None, typer.Option(help="Default: live- and the model and dataset; rerun with the same id to resume")
    ] = None,  # fmt: skip
    model_type: Annotated[str, typer.Option(help="base or fine_tuned")] = "fine_tuned",
    mode: Annotated[list[str] | None, typer.Option(help="exact, substring, classification, bleu or rouge")] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            help="The environment variable that holds a URL endpoint's key, "
            "e.g. OPENAI_API_KEY (default: none is sent; a named endpoint "
            "has its own)"
        ),
    ] = None,  # fmt: skip
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Send a dataset's test split to a model behind an OpenAI-compatible endpoint and record every prediction
    with its latency, tokens and cost; rerun to resume a run that stopped."""
    import os
    import re

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from api.settings import endpoints_from_env, pick_endpoint

    # The CLI runs as the user, with the user's own keys: a URL is taken as it is, with --api-key-env's key
    # only when asked for (a key is never sent to a URL by default).
    url, key, name = endpoint, os.environ.get(api_key_env) if api_key_env else None, None
    if "://" not in endpoint:
        found = pick_endpoint(endpoints_from_env(), endpoint, field="--endpoint")
        url, key, name = found.chat_url, found.key, endpoint
    evaluation_id = evaluation_id or "live-" + re.sub(r"[^A-Za-z0-9._-]", "-", f"{model}-{dataset}-{split}")[:58]
    with opened(database_url, fresh=False) as rt, Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), disable=as_json, console=out.rich,
    ) as bar:  # fmt: skip
        task = bar.add_task(f"Evaluating {model}", total=None)
        result = rt.live_evaluations.run(model=model, endpoint=url, dataset_id=dataset, split=split, api_key=key,
                          concurrency=concurrency, evaluation_id=evaluation_id, model_type=model_type, modes=mode,
                          actor=actor, progress=lambda n, total: bar.update(task, completed=n, total=total),
                          endpoint_name=name)  # fmt: skip
    if as_json:
        return print_json(vars(result))
    headline = next((result.metrics[k] for k in ("exact", "substring", "classification")
                     if result.metrics and k in result.metrics), None)  # fmt: skip
    out.print(
        f"{evaluation_id}: {result.total} predictions ({result.predicted_before} from an earlier run)"
        + (f"; accuracy {percent(headline['accuracy'])}" if headline else "")
        + "."
    )
