"""Always-valid inference for A/B tests: the mixture sequential probability ratio test (mSPRT).

A fixed-horizon p-value is valid once, at the sample size planned in advance. Looked at after every
batch, it crosses alpha by chance far more often than alpha says. The mSPRT of Johari, Pekelis and
Walsh ("Always valid inference: continuous monitoring of A/B tests", 2017, also GrowthBook's and
Optimizely's sequential engine) gives a p-value and a confidence sequence that stay valid however
often they are read: under no difference, the chance that the p-value ever falls below alpha is at
most alpha (Ville's inequality on a nonnegative martingale).

For a difference theta between the arms (of proportions, or of means) with a Gaussian estimate
theta_hat of variance V, and a normal mixture N(0, tau^2) over the alternatives:

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 * theta_hat^2 / (2 V (V + tau^2)))

and p = min(1, 1 / Lambda). The confidence sequence is the set of differences the same test would
not reject: theta_hat +- sqrt(2 V (V + tau^2) / tau^2 * (log(1 / alpha) + log((V + tau^2) / V) / 2)).

The p-value here is computed from the current sufficient statistics only, so it is 1 / Lambda at
this moment rather than its running minimum: the same guarantee, a little less power, and no history
to keep. tau is the scale of differences worth finding: 0.05 on the probability scale for accuracy
(five points), and a fifth of the pooled standard deviation for latency and cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: the mixture's standard deviation for a difference in proportions
TAU_PROPORTIONS = 0.05
#: for a difference in means, as a share of the pooled standard deviation (a "small" effect size)
TAU_MEANS_SD = 0.2


@dataclass(frozen=True)
class AlwaysValid:
    estimate: float  # b minus a
    p_value: float
    ci_low: float
    ci_high: float
    tau: float

    def as_dict(self) -> dict[str, float]:
        return {"difference": self.estimate, "p_value": self.p_value, "confidence_sequence": [self.ci_low,
                self.ci_high], "tau": self.tau}  # fmt: skip


def msprt(estimate: float, variance: float, tau: float, alpha: float) -> AlwaysValid | None:
    """The always-valid p-value and (1 - alpha) confidence sequence of an estimate with this variance;
    None where the variance is not positive (no spread yet)."""
    if not (variance > 0 and tau > 0 and math.isfinite(estimate) and math.isfinite(variance)):
        return None
    tau2 = tau * tau
    total = variance + tau2
    log_lambda = 0.5 * math.log(variance / total) + tau2 * estimate * estimate / (2 * variance * total)
    p_value = 1.0 if log_lambda <= 0 else math.exp(-log_lambda)
    half = math.sqrt(2 * variance * total / tau2 * (math.log(1 / alpha) + 0.5 * math.log(total / variance)))
    return AlwaysValid(estimate, min(1.0, p_value), estimate - half, estimate + half, tau)


def proportions(success_a: float, n_a: int, success_b: float, n_b: int, alpha: float,
                tau: float = TAU_PROPORTIONS) -> AlwaysValid | None:  # fmt: skip
    """p_b - p_a, with the pooled variance under no difference."""
    if n_a == 0 or n_b == 0:
        return None
    pooled = (success_a + success_b) / (n_a + n_b)
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    return msprt(success_b / n_b - success_a / n_a, variance, tau, alpha)


def means(n_a: int, mean_a: float, var_a: float | None, n_b: int, mean_b: float, var_b: float | None,
          alpha: float, tau_sd: float = TAU_MEANS_SD) -> AlwaysValid | None:  # fmt: skip
    """mean_b - mean_a, with each arm's own variance (as Welch's test)."""
    if n_a < 2 or n_b < 2 or var_a is None or var_b is None:
        return None
    pooled_sd = math.sqrt(((n_a - 1) * var_a + (n_b - 1) * var_b) / (n_a + n_b - 2))
    return msprt(mean_b - mean_a, var_a / n_a + var_b / n_b, tau_sd * pooled_sd, alpha)
