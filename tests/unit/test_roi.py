"""ROI and break-even, exact, including the seed's worked examples."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import InvalidInput
from domain.roi import RoiInputs, compute_roi


def roi(**kw):
    values = {"training_cost": 40, "base_cost_per_call": "0.002", "ft_cost_per_call": "0.002",
              "base_accuracy": 0.85, "ft_accuracy": 0.92} | kw  # fmt: skip
    return compute_roi(RoiInputs.validate(**values))


def test_the_seeds_first_example_errors_avoided_on_10000_calls_are_worth_7000_dollars() -> None:
    result = roi(calls=10_000)
    assert result.error_reduction_value == Decimal("7000")
    assert result.total_benefit == Decimal("7000") and result.cost_savings == 0


def test_the_seeds_second_example_six_months_of_5000_calls_nets_20960_dollars_and_52400_percent() -> None:
    result = roi(calls=6 * 5_000)
    assert result.net_benefit == Decimal("20960")
    assert result.roi_percent == Decimal("52400")


def test_calls_can_be_given_per_day_over_a_horizon_and_then_payback_is_in_days() -> None:
    result = roi(calls_per_day=100, days=180)
    assert result.calls == 18_000
    assert result.break_even_calls == 58  # 40 / 0.70 = 57.1, rounded up
    assert result.payback_days == Decimal(40) / Decimal(70)


def test_cheaper_calls_are_savings_and_count_towards_break_even() -> None:
    result = roi(base_cost_per_call="0.0020", ft_cost_per_call="0.0005", ft_accuracy=0.85, calls=1_000_000)
    assert result.cost_savings == Decimal("1500.0000")
    assert result.net_benefit == Decimal("1460.0000")
    assert result.break_even_calls == 26_667  # 40 / 0.0015 = 26,666.7


def test_a_fine_tune_that_brings_nothing_per_call_never_pays_back() -> None:
    result = roi(ft_accuracy=0.80, calls=10_000)
    assert result.break_even_calls is None and result.payback_days is None
    assert result.net_benefit == Decimal("-5040") and result.verdict.startswith("never pays back")


def test_a_free_fine_tune_has_no_roi_percentage_rather_than_a_division_by_zero() -> None:
    result = roi(training_cost=0, calls=100)
    assert result.roi_percent is None and result.break_even_calls == 0


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"calls": -1}, "calls must be 0 or more"),
        ({"calls": 1.5}, "calls must be a whole number"),
        ({"ft_accuracy": 1.2, "calls": 1}, "ft_accuracy must be at most 1"),
        ({"training_cost": "lots", "calls": 1}, "training_cost must be a number"),
        ({}, "Give the expected calls"),
        ({"calls": 5, "days": 3}, "not both"),
    ],
)
def test_invalid_roi_inputs_say_what_is_wrong(kw: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        roi(**kw)
