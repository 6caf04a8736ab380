"""A/B test rules: which verdict the numbers give, how the winner is scored, and the test's settings."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.ab_results import ArmStats, analyze
from domain.ab_testing import TestConfig as ABTestConfig
from domain.ab_testing import assign, is_correct
from domain.errors import InvalidInput
from domain.statistics import Moments

CONFIG = ABTestConfig.validate(test_id="support-v3", model_a="base", model_b="support@3", min_samples=30)


def arm(n, correct, latency_ms=200.0, cost=0.001):
    spread = 0.1 * latency_ms
    return ArmStats(n, correct, Moments(n, latency_ms, spread**2 * (n - 1)), Moments(n, cost, 0.0),
                    Decimal(str(cost)) * n)  # fmt: skip


def test_too_few_samples_in_an_arm_is_inconclusive_however_large_the_difference():
    result = analyze(CONFIG, arm(29, 5), arm(29, 28))
    assert result["winner"] is None
    assert result["verdict"] == "inconclusive: not enough samples (29 and 29; each arm needs 30)"
    assert result["checks"]["min_samples_reached"] is False


def test_a_sample_ratio_mismatch_invalidates_the_test_before_anything_else():
    result = analyze(CONFIG, arm(900, 450), arm(100, 90))
    assert result["checks"]["sample_ratio_mismatch"] is True
    assert result["winner"] is None
    assert result["verdict"].startswith("invalid: sample ratio mismatch (p = ")
    assert "the arms got 900 and 100 samples for a split of 0.5" in result["verdict"]


def test_a_difference_within_chance_names_no_winner_and_gives_the_p_value():
    result = analyze(CONFIG, arm(500, 250), arm(500, 260))
    p = result["comparison"]["p_value"]
    assert 0.5 < p < 0.6
    assert result["winner"] is None
    assert result["verdict"] == f"no significant difference in accuracy (p = {p:.3g}, alpha = 0.05)"


def test_a_significant_difference_crowns_the_arm_with_the_higher_weighted_score():
    result = analyze(CONFIG, arm(500, 250), arm(500, 400))
    assert result["comparison"]["p_value"] < 1e-6
    assert result["winner"] == "b" and result["winner_model"] == "support@3"
    assert result["verdict"].startswith("support@3 (arm b) wins: accuracy differs significantly (p = ")
    # equal latency and cost: both arms score 1 there, so accuracy decides (0.6 x 0.8 + 0.4 against 0.6 x 0.5 + 0.4)
    assert result["scores"]["b"]["score"] == pytest.approx(0.88)
    assert result["scores"]["a"]["score"] == pytest.approx(0.70)


def test_the_more_accurate_arm_can_lose_when_latency_and_cost_weigh_more():
    config = ABTestConfig.validate(test_id="t", model_a="base", model_b="ft", weight_accuracy=0.2, weight_latency=0.4,
                                 weight_cost=0.4)  # fmt: skip
    result = analyze(config, arm(500, 250, latency_ms=100, cost=0.001), arm(500, 400, latency_ms=400, cost=0.004))
    # a: 0.2 x 0.5 + 0.4 x 1 + 0.4 x 1 = 0.9; b: 0.2 x 0.8 + 0.4 x (100/400) + 0.4 x (0.001/0.004) = 0.36
    assert result["scores"]["a"]["score"] == pytest.approx(0.9)
    assert result["scores"]["b"]["score"] == pytest.approx(0.36)
    assert result["winner"] == "a"
    assert result["verdict"].endswith("and it has the higher weighted score (0.9000 against 0.3600)")


def test_a_free_arm_scores_full_marks_on_cost_and_the_other_none():
    scores = analyze(CONFIG, arm(100, 50, cost=0.0), arm(100, 50, cost=0.002))["scores"]
    assert scores["a"]["components"]["cost"] == 1.0
    assert scores["b"]["components"]["cost"] == 0.0


def test_small_counts_are_judged_by_fishers_exact_test():
    comparison = analyze(CONFIG, arm(30, 30), arm(30, 25))["comparison"]
    assert comparison["min_expected_count"] < 5
    assert comparison["p_value"] == comparison["fisher_p"] == pytest.approx(0.0522, abs=1e-4)


def test_an_arm_without_samples_has_no_accuracy_and_no_scores():
    result = analyze(CONFIG, arm(0, 0), arm(10, 9))
    assert result["arms"]["a"]["accuracy"] is None
    assert result["scores"] is None
    assert result["arms"]["b"]["accuracy"] == 0.9


# ----------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"model_b": "base"}, "model_a and model_b must differ: an A/B test compares two models."),
        ({"split": 1.0}, "split must be between 0 and 1 (the share of units sent to model_b), got 1.0."),
        ({"alpha": 0.5}, "alpha must be between 0 and 0.5, got 0.5."),
        ({"min_samples": 0}, "min_samples must be a whole number from 1 to 1,000,000,000"),
        ({"weight_accuracy": 0, "weight_latency": 0, "weight_cost": 0}, "Winner weights must be 0 or more and not"),
        ({"match_mode": "fuzzy"}, "match_mode must be one of exact, substring, got 'fuzzy'."),
        ({"colour": "red"}, "Unknown test settings: colour."),
    ],
)
def test_a_test_setting_out_of_its_rule_is_refused(settings, message):
    with pytest.raises(InvalidInput) as refused:
        ABTestConfig.validate(**{"test_id": "t", "model_a": "base", "model_b": "ft"} | settings)
    assert refused.value.detail.startswith(message)


def test_unset_settings_take_the_seeds_defaults():
    config = ABTestConfig.validate(test_id="t", model_a="base", model_b="ft", split=None)
    assert (config.split, config.alpha, config.min_samples, config.match_mode) == (0.5, 0.05, 30, "exact")
    assert (config.weight_accuracy, config.weight_latency, config.weight_cost) == (0.6, 0.2, 0.2)


def test_a_unit_always_gets_the_same_arm_and_the_split_sets_the_share_of_b():
    assert {assign("t", "user-42", 0.3) for _ in range(5)} == {assign("t", "user-42", 0.3)}
    share_b = sum(assign("t", f"user-{i}", 0.3) == "b" for i in range(10_000)) / 10_000
    assert 0.28 < share_b < 0.32


def test_a_sample_is_correct_by_exact_match_after_trimming_or_by_containment():
    assert is_correct(" Paris ", "Paris", "exact")
    assert not is_correct("paris", "Paris", "exact")
    assert is_correct("Paris", "The capital is Paris.", "substring")
    assert not is_correct("", "The capital is Paris.", "substring")  # an empty answer is in every text
