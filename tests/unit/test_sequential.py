"""The always-valid statistics (mSPRT): formulas, and simulated tests read after every 100 samples."""

from __future__ import annotations

import math

import pytest

from domain.sequential import means, msprt, proportions
from tests.support.sequential_simulation import peeking

#: the Monte Carlo margin of 2,000 runs: three standard errors of a rate of 0.05
MARGIN = 3 * math.sqrt(0.05 * 0.95 / 2000)


def test_under_no_difference_peeking_every_100_samples_keeps_false_positives_at_alpha() -> None:
    sim = peeking(p_a=0.3, p_b=0.3)
    assert sim["always_valid_rate"] <= 0.05 + MARGIN
    # the fixed-horizon test read as often declares a difference several times too often, and only its
    # single planned look is valid
    assert sim["fixed_horizon_peeking_rate"] >= 3 * 0.05
    assert abs(sim["fixed_horizon_once_rate"] - 0.05) <= MARGIN


def test_a_four_point_difference_is_found_within_ten_thousand_samples() -> None:
    sim = peeking(p_a=0.30, p_b=0.34)
    assert sim["always_valid_rate"] >= 0.8
    assert sim["median_samples_to_decision"] < 10_000


def test_the_p_value_falls_with_evidence_and_the_sequence_holds_the_estimate() -> None:
    weak, strong = proportions(30, 100, 36, 100, 0.05), proportions(3000, 10_000, 3600, 10_000, 0.05)
    assert weak is not None and strong is not None
    assert weak.p_value == 1.0 > 0.05 > strong.p_value
    assert strong.estimate == pytest.approx(0.06) and strong.ci_low < strong.estimate < strong.ci_high
    assert 0 < strong.ci_low  # the whole sequence lies above no difference: significant
    assert weak.ci_low < 0 < weak.ci_high


def test_the_sequence_is_wider_than_the_fixed_horizon_interval() -> None:
    found = proportions(3000, 10_000, 3100, 10_000, 0.05)
    assert found is not None
    fixed_half = 1.96 * math.sqrt(0.305 * 0.695 * 2 / 10_000)
    assert (found.ci_high - found.ci_low) / 2 > fixed_half


def test_means_use_each_arms_variance_and_nothing_is_claimed_without_spread() -> None:
    slower = means(500, 100.0, 400.0, 500, 110.0, 400.0, 0.05)
    assert slower is not None and slower.estimate == 10.0 and slower.p_value < 0.05
    assert means(1, 1.0, None, 5, 2.0, 1.0, 0.05) is None
    assert msprt(0.1, 0.0, 0.05, 0.05) is None and proportions(0, 0, 1, 2, 0.05) is None
