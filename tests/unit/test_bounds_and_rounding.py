"""Intervals stay inside what their quantity can take; people read rounded money and days."""

from __future__ import annotations

from decimal import Decimal

import pytest

from api.cli.common import day_count, money
from domain.evaluations import paired_difference, paired_mean_difference
from domain.statistics import difference_interval, wilson_interval


def test_a_paired_accuracy_interval_at_n_3_stays_within_minus_1_and_1() -> None:
    # unclipped, the Wald interval of this pair reaches 1.2001
    d = paired_difference([False, False, True], [True, True, True])
    assert d["difference"] == pytest.approx(2 / 3)
    assert (d["ci_low"], d["ci_high"]) == (pytest.approx(0.1332, abs=1e-4), 1.0)


def test_a_difference_of_two_proportions_stays_within_minus_1_and_1() -> None:
    diff, low, high = difference_interval(0, 2, 2, 2)
    assert (diff, low, high) == (1.0, 1.0, 1.0)
    diff, low, high = difference_interval(1, 2, 3, 3)
    assert -1.0 <= low <= diff <= high == 1.0


def test_a_proportion_interval_stays_within_0_and_1() -> None:
    for successes, n in ((0, 1), (1, 1), (0, 1000), (1000, 1000), (3, 7)):
        low, high = wilson_interval(successes, n)
        assert 0.0 <= low <= high <= 1.0 and low - 1e-12 <= successes / n <= high + 1e-12


def test_a_bounded_paired_mean_difference_is_clipped_and_an_unbounded_one_is_not() -> None:
    rouge = paired_mean_difference([0.0, 0.0, 0.9], [1.0, 1.0, 0.1], bounds=(-1.0, 1.0))
    assert rouge["ci_high"] == 1.0 and rouge["ci_low"] >= -1.0
    latency = paired_mean_difference([100.0, 100.0, 900.0], [1000.0, 1000.0, 100.0])
    assert latency["ci_high"] > 1000


@pytest.mark.parametrize(("value", "shown"), [
    (Decimal("-0.0005"), "-$0.0005"), ("1234.567", "$1,234.57"), ("12.345", "$12.35"), ("0.00036", "$0.00036"),
    ("0.0123", "$0.012"), ("0", "$0.00"), ("-1234.5", "-$1,234.50"), ("0.5", "$0.50"), (None, ""),
])  # fmt: skip
def test_money_reads_as_people_write_it(value: object, shown: str) -> None:
    assert money(value) == shown


def test_days_are_shown_to_one_decimal() -> None:
    assert day_count(Decimal("12.34567890123456789012345678")) == "12.3" and day_count(None) == ""
