"""An A/B test's policy: what it decides by itself while it runs, from its live statistics.

In order: a challenger (arm b) that breaches a guardrail (its error rate, or its p95 latency, once it
has its minimum samples) is stopped; an always-valid (mSPRT) difference in accuracy, with both arms at
their minimum samples and no sample ratio mismatch, concludes the test for the more accurate arm (and
deploys it, if the policy says so); a test past its maximum duration concludes as inconclusive.
Nothing is decided on a fixed-horizon p-value while a test runs: read every few seconds, it would
declare false winners far more often than alpha.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.ab_testing import TestConfig

STOP_CHALLENGER, CONCLUDE, INCONCLUSIVE = "stop_challenger", "conclude", "inconclusive"


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str
    winner: str | None = None
    breach: dict[str, Any] | None = None


def decide(config: TestConfig, stats: dict[str, Any], *, challenger_stopped: bool, challenger_p95_ms: float | None,
           started_at: datetime, now: datetime) -> Decision | None:  # fmt: skip
    """What the policy does now, given the live statistics (domain/ab_results.analyze); None: nothing yet."""
    b = stats["arms"]["b"]
    if not challenger_stopped and b["n"] >= config.min_samples:
        limit = config.guardrail_error_rate
        if limit is not None and b["error_rate"] is not None and b["error_rate"] > limit:
            return Decision(STOP_CHALLENGER, f"the challenger's error rate {b['error_rate']:.3f} is over the "
                            f"guardrail {limit:g} ({b['errors']} of {b['n']} calls)",
                            breach={"guardrail": "error_rate", "limit": limit, "value": b["error_rate"]})  # fmt: skip
        limit = config.guardrail_p95_ms
        if limit is not None and challenger_p95_ms is not None and challenger_p95_ms > limit:
            return Decision(STOP_CHALLENGER, f"the challenger's p95 latency {challenger_p95_ms:.1f} ms is over the "
                            f"guardrail {limit:g} ms",
                            breach={"guardrail": "p95_ms", "limit": limit, "value": challenger_p95_ms})  # fmt: skip
    valid = stats["comparison"].get("always_valid", {}).get("accuracy")
    checks = stats["checks"]
    if (config.on_win != "none" and valid is not None and valid["p_value"] < config.alpha
            and checks["min_samples_reached"] and not checks["sample_ratio_mismatch"]):  # fmt: skip
        winner = "b" if valid["difference"] > 0 else "a"
        low, high = valid["confidence_sequence"]
        reason = (f"{config.model_of(winner)} (arm {winner}) is more accurate by {abs(valid['difference']):.4f} "
                  f"(always-valid p = {valid['p_value']:.3g} < {config.alpha}; {1 - config.alpha:.0%} confidence "
                  f"sequence [{low:+.4f}, {high:+.4f}])")  # fmt: skip
        return Decision(CONCLUDE, reason, winner=winner)
    if config.max_duration_s is not None and (now - started_at).total_seconds() >= config.max_duration_s:
        return Decision(INCONCLUSIVE, f"inconclusive: the maximum duration of {config.max_duration_s:g} s passed "
                        "without an always-valid difference")  # fmt: skip
    return None
