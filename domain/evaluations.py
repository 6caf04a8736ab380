"""Evaluations as events: a model's predictions on a test set, scored, and two runs compared pairwise.

An evaluation is a small aggregate (created, then completed with its metrics frozen, or failed);
its predictions are the high-volume part, appended in batches as one-event aggregates whose ids
derive from the evaluation and the batch, so a retried batch hits the store's key. Metrics are
computed in the command from all predictions and stored in the completion event.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain import evaluation_metrics as m
from domain.batches import batch_id
from domain.errors import InvalidInput
from domain.ids import stable_id
from domain.statistics import clipped, stats
from domain.values import (
    MAX_LATENCY_MS,
    as_value_error,
    decimal_value,
    finite_number,
    free_text,
    name_text,
    path_id,
)

MODEL_TYPES = ("base", "fine_tuned")
MAX_TEXT = 200_000


def evaluation_stream_id(evaluation_id: str) -> UUID:
    return stable_id("evaluation", evaluation_id)


def validate_evaluation_id(value: Any) -> str:
    return path_id("evaluation id", value)


def validate_modes(modes: Sequence[str]) -> list[str]:
    modes = list(modes) or ["exact"]
    unknown = [x for x in modes if x not in m.MODES]
    if unknown:
        raise InvalidInput(f"Unknown mode {unknown[0]!r}: use exact, substring, classification, bleu or rouge.")
    return sorted(set(modes), key=m.MODES.index)


def numbered(raw: Sequence[Any]) -> list[Any]:
    """Predictions without an example_id take their row's (row-000001 for the first), as they are stored."""
    return [{**item, "example_id": f"row-{i + 1:06d}"} if isinstance(item, dict) and not item.get("example_id")
            else item for i, item in enumerate(raw)]  # fmt: skip


def parse_prediction(item: Any, default_cost: Decimal | None = None) -> dict[str, Any]:
    """One row of {example_id, prediction, reference, latency_ms?, cost?, label?} (see `numbered`) as
    stored; raises ValueError with the reason."""
    if not isinstance(item, dict):
        raise ValueError("must be an object with prediction and reference")
    for key in ("prediction", "reference"):
        if not isinstance(item.get(key), str):
            raise ValueError(f"{key} is required (text)")
        as_value_error(free_text, key, item[key], max_length=MAX_TEXT)
    example_id = str(item["example_id"])
    as_value_error(name_text, "example_id", example_id)  # checked, kept as given
    latency = item.get("latency_ms")
    if latency is not None:
        latency = as_value_error(finite_number, "latency_ms", latency, maximum=MAX_LATENCY_MS)
    cost = item.get("cost", default_cost)
    cost = None if cost is None else as_value_error(decimal_value, "cost", cost)
    label = item.get("label")
    if label is not None and not isinstance(label, str):
        raise ValueError("label must be text")
    if label is not None:
        as_value_error(free_text, "label", label, max_length=MAX_TEXT)
    return {
        "example_id": example_id,
        "prediction": item["prediction"],
        "reference": item["reference"],
        "latency_ms": None if latency is None else float(latency),
        "cost": cost,
        "label": label,
    }


def correctness(rows: Sequence[dict[str, Any]], mode: str, norm: m.Normalisation) -> list[bool] | None:
    """Per-example correctness under the first mode that has one (BLEU and ROUGE-L score, they do not judge)."""
    predictions = [r["prediction"] for r in rows]
    if mode == "exact":
        return m.exact_matches(predictions, [r["reference"] for r in rows], norm)
    if mode == "substring":
        return m.prediction_in_reference(predictions, [r["reference"] for r in rows], norm)
    if mode == "classification":
        return [norm.apply(r["prediction"]) == norm.apply(r["label"] or r["reference"]) for r in rows]
    return None


def compute_metrics(rows: Sequence[dict[str, Any]], modes: Sequence[str], norm: m.Normalisation) -> dict[str, Any]:
    predictions, references = [r["prediction"] for r in rows], [r["reference"] for r in rows]
    m.check_pairs(predictions, references)
    out: dict[str, Any] = {"n": len(rows), "modes": list(modes)}
    for mode in modes:
        if mode in ("exact", "substring", "classification"):
            correct = correctness(rows, mode, norm)
            assert correct is not None
            out[mode] = vars(m.accuracy(correct))
        if mode == "substring":
            out["substring"]["name"] = "prediction_in_reference"
            out["reference_in_prediction"] = vars(m.accuracy(m.reference_in_prediction(predictions, references,
                                                                                         norm)))  # fmt: skip
        if mode == "classification":
            labels = [norm.apply(r["label"] or r["reference"]) for r in rows]
            out["classification"] |= m.classification_report(labels, [norm.apply(p) for p in predictions])
        if mode == "bleu":
            out["bleu"] = m.bleu(predictions, references)
        if mode == "rouge":
            scores = m.rouge_l(predictions, references)
            out["rouge_l"] = sum(scores) / len(scores)
    latencies = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
    if latencies:
        out["latency"] = m.latency_summary(latencies)
    costs = [r["cost"] for r in rows if r["cost"] is not None]
    if costs:
        out["cost_per_inference"] = m.cost_per_inference(costs)
        out["total_cost"] = sum(costs, Decimal(0))
    return out


def paired_difference(base: Sequence[bool], candidate: Sequence[bool]) -> dict[str, float]:
    """Candidate minus base accuracy on the same examples, with a 95% Wald interval for paired proportions."""
    n = len(base)
    b = sum(1 for x, y in zip(base, candidate, strict=True) if x and not y)
    c = sum(1 for x, y in zip(base, candidate, strict=True) if y and not x)
    diff = (c - b) / n
    se = math.sqrt(max(0.0, (b + c) - (c - b) ** 2 / n)) / n
    z = float(stats.norm.ppf(0.975))
    low, high = clipped(diff - z * se, diff + z * se, -1.0, 1.0)  # a difference of proportions (Wald overshoots)
    return {"difference": diff, "ci_low": low, "ci_high": high}


def paired_mean_difference(base: Sequence[float], candidate: Sequence[float],
                           bounds: tuple[float, float] | None = None) -> dict[str, float | None]:  # fmt: skip
    """Mean of candidate minus base over the same examples, with a 95% paired-t interval, cut to `bounds`
    (the differences the metric can take) when it has some."""
    diffs = [c - b for b, c in zip(base, candidate, strict=True)]
    n = len(diffs)
    mean = sum(diffs) / n
    if n < 2:
        return {"difference": mean, "ci_low": None, "ci_high": None}
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    low, high = (mean - half, mean + half) if bounds is None else clipped(mean - half, mean + half, *bounds)
    return {"difference": mean, "ci_low": low, "ci_high": high}


@dataclass(frozen=True)
class EvaluationSpec:
    evaluation_id: str
    model: str
    model_type: str
    modes: list[str]
    normalisation: dict[str, bool]
    source: dict[str, Any]

    @classmethod
    def validate(cls, *, evaluation_id: Any, model: Any, model_type: Any, modes: Sequence[str],
                 normalisation: dict[str, bool] | None = None, source: dict[str, Any] | None = None,
                 ) -> EvaluationSpec:  # fmt: skip
        if not isinstance(model, str) or not model.strip():
            raise InvalidInput("model is required: the name of the model these predictions come from.")
        name_text("model", model)
        if model_type not in MODEL_TYPES:
            raise InvalidInput(f"Unknown model type {model_type!r}: use base or fine_tuned.")
        norm = {k: bool((normalisation or {}).get(k, False)) for k in ("case", "whitespace", "punctuation")}
        return cls(validate_evaluation_id(evaluation_id), model.strip(), model_type, validate_modes(modes), norm,
                   source or {"kind": "predictions"})  # fmt: skip


class Evaluation(Aggregate):
    class Event(Aggregate.Event):
        evaluation_id: str
        actor: str

    class Created(Event, Aggregate.Created):
        model: str
        model_type: str
        modes: list[str]
        normalisation: dict[str, bool]
        source: dict[str, Any]
        reason: str | None

    class Completed(Event):
        metrics: dict[str, Any]

        def apply(self, evaluation: Evaluation) -> None:
            evaluation.status = "completed"

    class Failed(Event):
        error: str

        def apply(self, evaluation: Evaluation) -> None:
            evaluation.status = "failed"

    @staticmethod
    def create_id(evaluation_id: str) -> UUID:
        return evaluation_stream_id(evaluation_id)

    @classmethod
    def create(cls, spec: EvaluationSpec, *, actor: str, reason: str | None) -> Evaluation:
        return cls._create(cls.Created, evaluation_id=spec.evaluation_id, actor=actor, model=spec.model,
                           model_type=spec.model_type, modes=spec.modes, normalisation=spec.normalisation,
                           source=spec.source, reason=reason)  # fmt: skip

    def __init__(self, evaluation_id: str, model: str, modes: list[str], **_: Any) -> None:
        self.evaluation_id = evaluation_id
        self.model = model
        self.modes = modes
        self.status = "running"

    def complete(self, metrics: dict[str, Any], *, actor: str) -> None:
        self.trigger_event(self.Completed, evaluation_id=self.evaluation_id, actor=actor, metrics=metrics)


class PredictionBatch(Aggregate):
    """Up to 10,000 predictions of one evaluation: one event."""

    class Recorded(Aggregate.Created):
        evaluation_id: str
        predictions: list[dict[str, Any]]
        actor: str

    @staticmethod
    def create_id(evaluation_id: str, predictions: list[dict[str, Any]]) -> UUID:
        return batch_id("evaluation-batch", (p["example_id"] for p in predictions), scope=evaluation_id)

    @classmethod
    def record(cls, evaluation_id: str, predictions: list[dict[str, Any]], *, actor: str) -> PredictionBatch:
        return cls._create(cls.Recorded, evaluation_id=evaluation_id, predictions=predictions, actor=actor)

    def __init__(self, evaluation_id: str, predictions: list[dict[str, Any]], actor: str) -> None:
        self.evaluation_id = evaluation_id



def compare_runs(
    base: dict[str, Any], base_rows: Sequence[dict[str, Any]], candidate: dict[str, Any],
    candidate_rows: Sequence[dict[str, Any]], *, roi: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Candidate against base on the same examples: accuracy with a paired interval and McNemar's exact test,
    the other metrics' deltas, latency and cost deltas, and (given a training cost and a call volume) the ROI."""
    from domain.roi import RoiInputs, compute_roi

    by_base = {r["example_id"]: r for r in base_rows}
    by_candidate = {r["example_id"]: r for r in candidate_rows}
    if set(by_base) != set(by_candidate):
        only_base = sorted(set(by_base) - set(by_candidate))
        only_candidate = sorted(set(by_candidate) - set(by_base))
        raise InvalidInput(
            f"The two evaluations did not answer the same test set ({len(by_base)} and {len(by_candidate)} examples; "
            f"only in the base: {only_base[:3]}, only in the candidate: {only_candidate[:3]}): a paired comparison "
            "needs both models' answers to the same examples."
        )
    ids = sorted(by_base)
    b_rows, c_rows = [by_base[i] for i in ids], [by_candidate[i] for i in ids]
    shared = [x for x in ("exact", "substring", "classification") if x in base["modes"] and x in candidate["modes"]]
    out: dict[str, Any] = {"base": base["evaluation_id"], "candidate": candidate["evaluation_id"], "n": len(ids),
                           "base_model": base["model"], "candidate_model": candidate["model"]}  # fmt: skip
    if shared:
        mode = shared[0]
        b_ok = correctness(b_rows, mode, m.Normalisation(**base["normalisation"])) or []
        c_ok = correctness(c_rows, mode, m.Normalisation(**candidate["normalisation"])) or []
        test = m.mcnemar_exact(b_ok, c_ok)
        out["accuracy"] = {"mode": mode, "base": sum(b_ok) / len(ids), "candidate": sum(c_ok) / len(ids),
                           **paired_difference(b_ok, c_ok)}  # fmt: skip
        out["mcnemar"] = vars(test) | {"significant_at_0.05": test.p_value < 0.05}
    else:
        out["accuracy"] = None
        out["note"] = "no shared mode judges correctness (exact, substring or classification): no McNemar test"
    bm, cm = base["metrics"], candidate["metrics"]
    # BLEU is a corpus score: its delta has no per-example interval; ROUGE-L and latency are paired per example
    out["deltas"] = {"bleu": cm["bleu"] - bm["bleu"]} if "bleu" in bm and "bleu" in cm else {}
    if "rouge_l" in bm and "rouge_l" in cm:
        out["deltas"]["rouge_l"] = paired_mean_difference(
            m.rouge_l([r["prediction"] for r in b_rows], [r["reference"] for r in b_rows]),
            m.rouge_l([r["prediction"] for r in c_rows], [r["reference"] for r in c_rows]),
            bounds=(-1.0, 1.0),  # ROUGE-L lies in [0, 1]
        )
    if "latency" in bm and "latency" in cm:
        out["latency"] = {k: {"base": bm["latency"][k], "candidate": cm["latency"][k],
                              "delta": cm["latency"][k] - bm["latency"][k]} for k in ("mean_ms", "p50_ms", "p95_ms")}
        timed = [(b["latency_ms"], c["latency_ms"]) for b, c in zip(b_rows, c_rows, strict=True)
                 if b["latency_ms"] is not None and c["latency_ms"] is not None]  # fmt: skip
        if timed:
            out["latency"]["mean_ms"] |= paired_mean_difference([b for b, _ in timed], [c for _, c in timed])
    if "cost_per_inference" in bm and "cost_per_inference" in cm:
        b_cost, c_cost = Decimal(str(bm["cost_per_inference"])), Decimal(str(cm["cost_per_inference"]))
        out["cost_per_inference"] = {"base": b_cost, "candidate": c_cost, "delta": c_cost - b_cost}
    if roi is not None and out.get("accuracy") and "cost_per_inference" in out:
        inputs = RoiInputs.validate(
            base_cost_per_call=out["cost_per_inference"]["base"],
            ft_cost_per_call=out["cost_per_inference"]["candidate"],
            base_accuracy=Decimal(str(round(out["accuracy"]["base"], 12))),
            ft_accuracy=Decimal(str(round(out["accuracy"]["candidate"], 12))), **roi,
        )  # fmt: skip
        out["roi"] = vars(compute_roi(inputs))
    return out
