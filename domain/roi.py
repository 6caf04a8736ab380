"""Return on a fine-tune: cost savings, the value of errors avoided, ROI and break-even.

Pure and exact: money and accuracies are Decimals (floats are converted through
their shortest repr, so 0.92 - 0.85 is exactly 0.07), and nothing here reads a
clock or a store. The cost ledger supplies the inputs for a recorded model.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from domain.errors import InvalidInput
from domain.values import MAX_CALLS, decimal_value

DEFAULT_VALUE_PER_ERROR = Decimal("10")
#: the horizon of calls_per_day: a century
MAX_DAYS = Decimal(36_500)
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class RoiInputs:
    training_cost: Decimal
    base_cost_per_call: Decimal
    ft_cost_per_call: Decimal
    base_accuracy: Decimal
    ft_accuracy: Decimal
    calls: int
    value_per_error: Decimal = DEFAULT_VALUE_PER_ERROR
    #: with a daily volume, the payback period can be given in days
    calls_per_day: Decimal | None = None

    @classmethod
    def validate(
        cls,
        *,
        training_cost: Any,
        base_cost_per_call: Any,
        ft_cost_per_call: Any,
        base_accuracy: Any,
        ft_accuracy: Any,
        calls: Any = None,
        calls_per_day: Any = None,
        days: Any = None,
        value_per_error: Any = DEFAULT_VALUE_PER_ERROR,
    ) -> RoiInputs:
        """Expected calls are given as a total, or as calls per day over a horizon of days."""
        # every input is bounded before any arithmetic: an unbounded one would spin the computation
        calls_limit = Decimal(MAX_CALLS)
        per_day = None if calls_per_day is None else decimal_value("calls_per_day", calls_per_day,
                                                                   maximum=calls_limit)  # fmt: skip
        if calls is None:
            if per_day is None or days is None:
                raise InvalidInput("Give the expected calls: either calls, or calls_per_day with days.")
            total = per_day * decimal_value("days", days, maximum=MAX_DAYS)
            if total > calls_limit:
                raise InvalidInput(f"calls_per_day x days must be at most {MAX_CALLS:,} calls, got {total}.")
            if total != total.to_integral_value():
                raise InvalidInput(f"calls_per_day x days must be a whole number of calls, got {total}.")
            calls = int(total)
        elif days is not None:
            raise InvalidInput("Give either calls, or calls_per_day with days, not both.")
        calls_d = decimal_value("calls", calls, maximum=calls_limit)
        if calls_d != calls_d.to_integral_value():
            raise InvalidInput(f"calls must be a whole number, got {calls}.")
        one = Decimal(1)
        return cls(
            training_cost=decimal_value("training_cost", training_cost),
            base_cost_per_call=decimal_value("base_cost_per_call", base_cost_per_call),
            ft_cost_per_call=decimal_value("ft_cost_per_call", ft_cost_per_call),
            base_accuracy=decimal_value("base_accuracy", base_accuracy, maximum=one),
            ft_accuracy=decimal_value("ft_accuracy", ft_accuracy, maximum=one),
            calls=int(calls_d),
            value_per_error=decimal_value("value_per_error", value_per_error),
            calls_per_day=per_day,
        )


@dataclass(frozen=True)
class RoiResult:
    calls: int
    cost_savings: Decimal
    error_reduction_value: Decimal
    total_benefit: Decimal
    net_benefit: Decimal
    #: None when the training cost is zero (any benefit is an infinite return)
    roi_percent: Decimal | None
    benefit_per_call: Decimal
    #: None when a call brings no benefit: the fine-tune never pays for itself
    break_even_calls: int | None
    payback_days: Decimal | None

    @property
    def verdict(self) -> str:
        if self.break_even_calls is None:
            return "never pays back: each call brings no benefit over the base model"
        if self.net_benefit >= 0:
            return f"pays back after {self.break_even_calls:,} calls"
        return f"does not pay back within {self.calls:,} calls (needs {self.break_even_calls:,})"


def compute_roi(i: RoiInputs) -> RoiResult:
    """ROI of a fine-tune over `calls` calls.

    savings per call = base cost per call - fine-tuned cost per call
    value per call   = (fine-tuned accuracy - base accuracy) x value per error avoided
    net benefit      = calls x (savings + value) per call - training cost
    ROI %            = net benefit / training cost x 100
    break-even calls = training cost / benefit per call, rounded up
    payback days     = break-even calls / calls per day
    """
    savings_per_call = i.base_cost_per_call - i.ft_cost_per_call
    value_per_call = (i.ft_accuracy - i.base_accuracy) * i.value_per_error
    benefit_per_call = savings_per_call + value_per_call
    cost_savings = savings_per_call * i.calls
    error_value = value_per_call * i.calls
    total = cost_savings + error_value
    net = total - i.training_cost
    roi = None if i.training_cost == 0 else net / i.training_cost * HUNDRED
    if benefit_per_call > 0:
        break_even = int((i.training_cost / benefit_per_call).to_integral_value(rounding=ROUND_CEILING))
        payback = None if not i.calls_per_day else i.training_cost / (benefit_per_call * i.calls_per_day)
    else:
        break_even, payback = None, None
    return RoiResult(
        calls=i.calls,
        cost_savings=cost_savings,
        error_reduction_value=error_value,
        total_benefit=total,
        net_benefit=net,
        roi_percent=roi,
        benefit_per_call=benefit_per_call,
        break_even_calls=break_even,
        payback_days=payback,
    )
