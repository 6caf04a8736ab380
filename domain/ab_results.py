"""What an A/B test shows: per-arm figures, comparisons, checks, scores and a verdict.

One pure function from the arms' sufficient statistics, used for the live view
and, once, to freeze the result when a test is concluded.

The weighted score (the seed's, weights 0.6 / 0.2 / 0.2 by default):
    score = w_accuracy * accuracy
          + w_latency  * (lowest mean latency of the two arms / this arm's mean latency)
          + w_cost     * (lowest mean cost of the two arms / this arm's mean cost)
divided by the sum of the weights. Each component is in [0, 1]; the faster and the
cheaper arm score 1 on their component. A mean of 0 scores 1 (nothing beats free).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from domain import sequential
from domain.ab_testing import TestConfig
from domain.statistics import (
    Moments,
    compare_proportions,
    difference_interval,
    minimum_detectable_effect,
    power_reached,
    sample_ratio_mismatch,
    welch_test,
    wilson_interval,
)

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class ArmStats:
    n: int = 0
    correct: int = 0
    latency: Moments = field(default_factory=Moments)
    cost: Moments = field(default_factory=Moments)
    cost_total: Decimal = Decimal(0)
    #: samples whose outcome is known (a gateway call's comes with its feedback); -1: all of them
    rated: int = -1
    #: gateway calls that failed or fell back
    errors: int = 0

    @property
    def outcomes(self) -> int:
        return self.n if self.rated < 0 else self.rated


def _ratio(best: float, mine: float) -> float:
    return 1.0 if mine == 0 else best / mine


def _arm(arm: str, config: TestConfig, s: ArmStats) -> dict[str, Any]:
    rated = s.outcomes
    interval = wilson_interval(s.correct, rated)
    return {
        "arm": arm,
        "model": config.model_of(arm),
        "n": s.n,
        "rated": rated,
        "correct": s.correct,
        "errors": s.errors,
        "error_rate": s.errors / s.n if s.n else None,
        "accuracy": s.correct / rated if rated else None,
        "accuracy_ci95": list(interval) if interval else None,
        "latency_mean_ms": s.latency.mean if s.latency.n else None,
        "latency_std_ms": s.latency.std,
        "cost_mean": s.cost.mean if s.cost.n else None,
        "cost_std": s.cost.std,
        "cost_total": str(s.cost_total),
        "has_min_samples": rated >= config.min_samples,
    }


def _scores(config: TestConfig, a: ArmStats, b: ArmStats) -> dict[str, Any] | None:
    if a.outcomes == 0 or b.outcomes == 0:
        return None
    weights = (config.weight_accuracy, config.weight_latency, config.weight_cost)
    total = sum(weights)
    fastest, cheapest = min(a.latency.mean, b.latency.mean), min(a.cost.mean, b.cost.mean)
    scores = {}
    for arm, s in (("a", a), ("b", b)):
        components = {
            "accuracy": s.correct / s.outcomes,
            "latency": _ratio(fastest, s.latency.mean),
            "cost": _ratio(cheapest, s.cost.mean),
        }
        score = sum(w * c for w, c in zip(weights, components.values(), strict=True)) / total
        scores[arm] = {"components": components, "score": score}
    return scores


def analyze(config: TestConfig, a: ArmStats, b: ArmStats) -> dict[str, Any]:
    """Everything the live view and the conclusion show, as JSON values (None where undefined)."""
    notes: list[str] = []
    ra, rb = a.outcomes, b.outcomes  # accuracy is over the samples whose outcome is known
    diff = difference_interval(a.correct, ra, b.correct, rb)
    table = compare_proportions(a.correct, ra, b.correct, rb)
    if table.note:
        notes.append(f"accuracy tests: {table.note}")
    latency, cost = welch_test(a.latency, b.latency), welch_test(a.cost, b.cost)
    for name, t in (("latency", latency), ("cost", cost)):
        if t.note:
            notes.append(f"{name} t-test: {t.note}")
    srm = sample_ratio_mismatch(a.n, b.n, config.split)
    mde = minimum_detectable_effect(a.correct, ra, rb, config.alpha)
    # Fisher's exact p-value replaces chi-squared when an expected cell count is under 5.
    p_value = table.fisher_p if table.fisher_p is not None else table.chi2_p
    scores = _scores(config, a, b)
    always_valid = {
        "accuracy": sequential.proportions(a.correct, ra, b.correct, rb, config.alpha),
        "latency_ms": sequential.means(a.latency.n, a.latency.mean, a.latency.variance, b.latency.n,
                                       b.latency.mean, b.latency.variance, config.alpha),
        "cost": sequential.means(a.cost.n, a.cost.mean, a.cost.variance, b.cost.n, b.cost.mean, b.cost.variance,
                                 config.alpha),
    }  # fmt: skip
    enough = ra >= config.min_samples and rb >= config.min_samples
    mismatch = srm is not None and srm[1] < SRM_THRESHOLD
    winner = None
    if mismatch:
        verdict = (f"invalid: sample ratio mismatch (p = {srm[1]:.3g} < {SRM_THRESHOLD}): the arms got "
                   f"{a.n} and {b.n} samples for a split of {config.split}; check the assignment")  # fmt: skip
    elif not enough:
        verdict = f"inconclusive: not enough samples ({ra} and {rb}; each arm needs {config.min_samples})"
    elif p_value is None or p_value >= config.alpha:
        shown = "undefined" if p_value is None else f"{p_value:.3g}"
        verdict = f"no significant difference in accuracy (p = {shown}, alpha = {config.alpha})"
    else:
        assert scores is not None
        winner = max(("a", "b"), key=lambda arm: scores[arm]["score"])
        loser = "b" if winner == "a" else "a"
        verdict = (f"{config.model_of(winner)} (arm {winner}) wins: accuracy differs significantly "
                   f"(p = {p_value:.3g} < {config.alpha}) and it has the higher weighted score "
                   f"({scores[winner]['score']:.4f} against {scores[loser]['score']:.4f})")  # fmt: skip
    return {
        "arms": {"a": _arm("a", config, a), "b": _arm("b", config, b)},
        "comparison": {
            "accuracy_difference": diff[0] if diff else None,
            "accuracy_difference_ci95": [diff[1], diff[2]] if diff else None,
            "chi2": table.chi2,
            "chi2_p": table.chi2_p,
            "chi2_yates": table.chi2_yates,
            "chi2_yates_p": table.chi2_yates_p,
            "z": table.z,
            "z_p": table.z_p,
            "min_expected_count": table.min_expected,
            "fisher_p": table.fisher_p,
            "p_value": p_value,
            "latency_welch_t": latency.t,
            "latency_welch_p": latency.p,
            "cost_welch_t": cost.t,
            "cost_welch_p": cost.p,
            # valid however often they are read (mSPRT, domain/sequential.py): b minus a
            "always_valid": {k: None if v is None else v.as_dict() for k, v in always_valid.items()},
        },  # fmt: skip
        "checks": {
            "sample_ratio_chi2": srm[0] if srm else None,
            "sample_ratio_p": srm[1] if srm else None,
            "sample_ratio_mismatch": mismatch,
            "power": power_reached(a.correct, ra, b.correct, rb, config.alpha),
            "minimum_detectable_effect": mde[1] if mde else None,
            "minimum_detectable_h": mde[0] if mde else None,
            "min_samples_reached": enough,
        },
        "scores": scores,
        "winner": winner,
        "winner_model": config.model_of(winner) if winner else None,
        "verdict": verdict,
        "notes": notes,
    }
