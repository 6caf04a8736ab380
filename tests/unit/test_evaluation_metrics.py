"""Evaluation metrics against the reference implementations, on fixed cases."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
import sacrebleu
from rouge_score import rouge_scorer
from sklearn.metrics import precision_recall_fscore_support
from statsmodels.stats.contingency_tables import mcnemar

from domain.errors import InvalidInput
from domain.evaluation_metrics import (
    Normalisation,
    accuracy,
    bleu,
    classification_report,
    cost_per_inference,
    exact_matches,
    latency_summary,
    mcnemar_exact,
    prediction_in_reference,
    reference_in_prediction,
    rouge_l,
)

LABELS = ["billing", "billing", "refund", "refund", "refund", "shipping", "other", "billing", "shipping", "refund"]
PREDICTED = ["billing", "refund", "refund", "refund", "billing", "shipping", "billing", "billing", "other", "spam"]


def test_classification_scores_equal_scikit_learns_per_class_macro_and_micro() -> None:
    report = classification_report(LABELS, PREDICTED)
    classes = sorted(report["per_class"])
    p, r, f, s = precision_recall_fscore_support(LABELS, PREDICTED, labels=classes, zero_division=0)
    for i, c in enumerate(classes):
        got = report["per_class"][c]
        assert (got["precision"], got["recall"], got["f1"], got["support"]) == pytest.approx((p[i], r[i], f[i], s[i]),
                                                                                             rel=1e-12)
    for average in ("macro", "micro"):
        p, r, f, _ = precision_recall_fscore_support(LABELS, PREDICTED, average=average, zero_division=0)
        assert (report[average]["precision"], report[average]["recall"], report[average]["f1"]) == pytest.approx(
            (p, r, f), rel=1e-12)


def test_mcnemar_equals_statsmodels_exact_test() -> None:
    rng = random.Random(5)
    for n, p_base, p_candidate in ((30, 0.7, 0.8), (200, 0.85, 0.92), (12, 0.5, 0.5), (5, 1.0, 1.0)):
        base = [rng.random() < p_base for _ in range(n)]
        candidate = [rng.random() < p_candidate for _ in range(n)]
        ours = mcnemar_exact(base, candidate)
        table = [[ours.both_correct, ours.only_base], [ours.only_candidate, ours.both_wrong]]
        assert ours.p_value == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-12, abs=1e-15)
    with pytest.raises(InvalidInput, match="paired test needs"):
        mcnemar_exact([True], [True, False])


def test_bleu_and_rouge_l_are_those_of_sacrebleu_and_rouge_score() -> None:
    predictions = ["the cat sat on the mat", "a refund takes five days", "open settings then billing"]
    references = ["the cat is on the mat", "refunds take five business days", "open settings, then billing"]
    assert bleu(predictions, references) == sacrebleu.corpus_bleu(predictions, [references]).score
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    assert rouge_l(predictions, references) == [scorer.score(r, p)["rougeL"].fmeasure
                                                for p, r in zip(predictions, references, strict=True)]
    assert bleu(["the very same words are here"], ["the very same words are here"]) == pytest.approx(100.0)


def test_matching_modes_normalise_only_what_they_are_told_to() -> None:
    strict, loose = Normalisation(), Normalisation(case=True, whitespace=True, punctuation=True)
    assert exact_matches(["Paris.", "paris"], ["paris", "paris"], strict) == [False, True]
    assert exact_matches(["  Paris. "], ["paris"], loose) == [True]
    assert prediction_in_reference(["Paris"], ["The capital is Paris"], strict) == [True]
    assert reference_in_prediction(["Paris"], ["The capital is Paris"], strict) == [False]
    assert reference_in_prediction(["It is Paris, France"], ["paris"], loose) == [True]
    with pytest.raises(InvalidInput, match="2 predictions but 1 references"):
        exact_matches(["a", "b"], ["a"], strict)


def test_accuracy_latency_and_cost_summaries() -> None:
    acc = accuracy([True] * 92 + [False] * 8)
    assert (acc.correct, acc.n, acc.accuracy) == (92, 100, 0.92) and acc.ci_low < 0.92 < acc.ci_high
    latency = latency_summary([100, 200, 150, 300, 250])
    assert latency == {"mean_ms": 200.0, "p50_ms": 200.0, "p95_ms": pytest.approx(290.0)}
    assert cost_per_inference([Decimal("0.002"), Decimal("0.001")]) == Decimal("0.0015")


def test_a_paired_mean_difference_has_the_paired_t_interval() -> None:
    from scipy import stats

    from domain.evaluations import paired_mean_difference

    base, candidate = [200.0, 210.0, 190.0, 205.0, 195.0], [150.0, 165.0, 140.0, 160.0, 150.0]
    got = paired_mean_difference(base, candidate)
    diffs = [c - b for b, c in zip(base, candidate, strict=True)]
    low, high = stats.t.interval(0.95, len(diffs) - 1, loc=sum(diffs) / len(diffs), scale=stats.sem(diffs))
    assert got["difference"] == pytest.approx(-47.0) and (got["ci_low"], got["ci_high"]) == pytest.approx((low, high))
