"""Two evaluations compared pairwise on the same test set: accuracy with McNemar, the deltas, the ROI."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain import evaluation_metrics as m
from domain.batches import parse_batch
from domain.errors import InvalidInput
from domain.evaluations import compare_runs, compute_metrics, numbered, paired_difference, parse_prediction

N = 10


def rows(right, latency_ms, cost, answer=lambda i: f"answer {i}"):
    """N predictions of which the first `right` match their reference."""
    return [{"example_id": f"q{i}", "prediction": answer(i) if i < right else "no idea", "reference": f"answer {i}",
             "latency_ms": latency_ms, "cost": Decimal(cost), "label": None} for i in range(N)]  # fmt: skip


def run(evaluation_id, model, predictions, modes=("exact",), **normalisation):
    norm = {"case": False, "whitespace": False, "punctuation": False} | normalisation
    metrics = compute_metrics(predictions, list(modes), m.Normalisation(**norm))
    return {"evaluation_id": evaluation_id, "model": model, "modes": list(modes), "normalisation": norm,
            "metrics": metrics}  # fmt: skip


BASE_ROWS = rows(6, 100.0, "0.002")
CANDIDATE_ROWS = rows(9, 80.0, "0.001")
BASE = run("ev-base", "gpt-4o-mini", BASE_ROWS)
CANDIDATE = run("ev-ft", "support@3", CANDIDATE_ROWS)


def test_the_candidate_is_compared_with_the_base_on_the_same_examples_with_mcnemars_exact_test():
    result = compare_runs(BASE, BASE_ROWS, CANDIDATE, CANDIDATE_ROWS)
    accuracy = result["accuracy"]
    assert (result["n"], accuracy["mode"], accuracy["base"], accuracy["candidate"]) == (10, "exact", 0.6, 0.9)
    assert accuracy["difference"] == pytest.approx(0.3)
    assert accuracy["ci_low"] < 0.3 < accuracy["ci_high"] <= 1.0
    # 3 discordant pairs, all won by the candidate: p = 2 x P(X <= 0 | n = 3, 1/2) = 0.25
    assert result["mcnemar"] == {"both_correct": 6, "only_base": 0, "only_candidate": 3, "both_wrong": 1,
                                 "p_value": pytest.approx(0.25), "significant_at_0.05": False}  # fmt: skip


def test_latency_and_cost_deltas_are_candidate_minus_base():
    result = compare_runs(BASE, BASE_ROWS, CANDIDATE, CANDIDATE_ROWS)
    assert result["latency"]["mean_ms"] == {"base": 100.0, "candidate": 80.0, "delta": -20.0, "difference": -20.0,
                                            "ci_low": -20.0, "ci_high": -20.0}  # fmt: skip
    assert result["cost_per_inference"] == {"base": Decimal("0.002"), "candidate": Decimal("0.001"),
                                            "delta": Decimal("-0.001")}  # fmt: skip


def test_with_a_training_cost_and_a_call_volume_the_comparison_gives_the_roi():
    roi = compare_runs(
        BASE,
        BASE_ROWS,
        CANDIDATE,
        CANDIDATE_ROWS,
        roi={"training_cost": Decimal(100), "calls": 1_000, "value_per_error": Decimal(1)},
    )["roi"]
    # per call: 0.001 saved + 0.3 fewer errors x $1 = 0.301; 1,000 calls bring 301 against 100 spent
    assert roi["benefit_per_call"] == Decimal("0.301")
    assert roi["net_benefit"] == Decimal("201")
    assert roi["break_even_calls"] == 333  # fmt: skip


def test_each_run_is_judged_under_its_own_normalisation():
    shouting = rows(9, 80.0, "0.001", answer=lambda i: f"ANSWER {i}")
    strict = compare_runs(BASE, BASE_ROWS, run("ev-ft", "ft", shouting), shouting)
    lenient = compare_runs(BASE, BASE_ROWS, run("ev-ft", "ft", shouting, case=True), shouting)
    assert strict["accuracy"]["candidate"] == 0.0
    assert lenient["accuracy"]["candidate"] == 0.9


def test_runs_without_a_mode_that_judges_correctness_get_no_mcnemar_test_but_a_bleu_delta():
    def sentences(right):  # BLEU counts up to 4-grams: answers of a few words
        return [r | {"reference": f"the order ships within {i} working days", "prediction":
                     f"the order ships within {i} working days" if i < right else "it ships soon"}
                for i, r in enumerate(BASE_ROWS)]  # fmt: skip

    base_rows, candidate_rows = sentences(6), sentences(9)
    base, candidate = run("b", "m1", base_rows, modes=("bleu",)), run("c", "m2", candidate_rows, modes=("bleu",))
    result = compare_runs(base, base_rows, candidate, candidate_rows)
    assert result["accuracy"] is None and "mcnemar" not in result
    assert result["note"].startswith("no shared mode judges correctness")
    assert result["deltas"]["bleu"] == pytest.approx(candidate["metrics"]["bleu"] - base["metrics"]["bleu"])
    assert result["deltas"]["bleu"] > 0


def test_runs_on_different_test_sets_cannot_be_compared():
    with pytest.raises(InvalidInput, match=r"did not answer the same test set \(10 and 9 examples; only in the "
                                           r"base: \['q9'\], only in the candidate: \[\]\)"):  # fmt: skip
        compare_runs(BASE, BASE_ROWS, CANDIDATE, CANDIDATE_ROWS[:9])


def test_a_paired_interval_never_leaves_the_range_a_difference_of_proportions_can_take():
    interval = paired_difference([False] * 5, [True] * 5)
    assert interval == {"difference": 1.0, "ci_low": 1.0, "ci_high": 1.0}
    interval = paired_difference([False, False, False, True], [True, True, True, True])
    assert interval["ci_high"] == 1.0 and 0 < interval["ci_low"] < 0.75


def test_predictions_without_an_id_are_named_by_their_row_and_repeats_are_refused():
    raw = [{"prediction": "a", "reference": "a"}, {"example_id": "q1", "prediction": "b", "reference": "b"},
           {"example_id": "q1", "prediction": "c", "reference": "c"}, {"prediction": "d"}]  # fmt: skip
    parsed, errors = parse_batch(numbered(raw), parse_prediction, "example_id", what="prediction", limit=None)
    assert [(i, p["example_id"]) for i, p in parsed] == [(0, "row-000001"), (1, "q1")]
    assert [(e.index, e.id, e.message) for e in errors] == [
        (2, "q1", "example_id 'q1' appears twice in the batch (also at 1)"),
        (3, "row-000004", "reference is required (text)"),
    ]


def test_a_prediction_takes_the_evaluations_cost_when_it_gives_none():
    assert parse_prediction({"example_id": "q1", "prediction": "a", "reference": "a"}, Decimal("0.01"))["cost"] == (
        Decimal("0.01")
    )
    given = parse_prediction({"example_id": "q1", "prediction": "a", "reference": "a", "cost": "0.5"}, Decimal(1))
    assert given["cost"] == Decimal("0.5")
