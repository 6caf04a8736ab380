"""Statistics for A/B tests, from sufficient statistics only (counts, means, sums of squares).

Every test runs from a few numbers per arm, so live results cost the same at a
thousand samples as at a million. The tests themselves come from scipy; where a
statistic is undefined (an arm with no samples, no variance, both arms at 100%)
the functions return None and say why, never NaN.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any


class _OnFirstUse:
    """A module imported when one of its names is first read: scipy.stats takes over a second to
    import, and reading a projection or starting ft-cli never needs it."""

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        value = getattr(importlib.import_module(self._module), name)
        setattr(self, name, value)  # later reads skip __getattr__
        return value


stats: Any = _OnFirstUse("scipy.stats")


def __getattr__(name: str) -> Any:
    if name == "Z95":  # computed on first use, as scipy gives it
        return float(stats.norm.ppf(0.975))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------ moments


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations (M2) of a series: mergeable and numerically stable."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, values: list[float]) -> Moments:
        n = len(values)
        if n == 0:
            return cls()
        mean = math.fsum(values) / n
        return cls(n, mean, math.fsum((v - mean) ** 2 for v in values))

    def merge(self, other: Moments) -> Moments:
        """Chan, Golub and LeVeque's parallel update: exact in exact arithmetic, stable in floating point."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        m2 = self.m2 + other.m2 + delta * delta * self.n * other.n / n
        return Moments(n, mean, m2)

    @property
    def variance(self) -> float | None:
        """Sample variance (n - 1); None below two values."""
        return self.m2 / (self.n - 1) if self.n > 1 else None

    @property
    def std(self) -> float | None:
        v = self.variance
        return None if v is None else math.sqrt(max(v, 0.0))


# ---------------------------------------------------------------- proportions


def clipped(low: float, high: float, lowest: float, highest: float) -> tuple[float, float]:
    """An interval cut to the values its quantity can take (a normal approximation overshoots near the ends)."""
    return (min(max(low, lowest), highest), max(min(high, highest), lowest))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion; None without observations."""
    if n == 0:
        return None
    z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return clipped(centre - half, centre + half, 0.0, 1.0)  # a proportion: float error aside, inside [0, 1]


def difference_interval(
    success_a: int, n_a: int, success_b: int, n_b: int, confidence: float = 0.95
) -> tuple[float, float, float] | None:
    """B minus A, with a Wald interval: (difference, low, high). None when an arm is empty."""
    if n_a == 0 or n_b == 0:
        return None
    pa, pb = success_a / n_a, success_b / n_b
    z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    se = math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    diff = pb - pa
    return (diff, *clipped(diff - z * se, diff + z * se, -1.0, 1.0))  # a difference of proportions


@dataclass(frozen=True)
class TwoByTwo:
    chi2: float | None
    chi2_p: float | None
    chi2_yates: float | None
    chi2_yates_p: float | None
    z: float | None
    z_p: float | None
    min_expected: float | None
    fisher_p: float | None
    #: why a statistic is missing, in words
    note: str | None


def compare_proportions(success_a: int, n_a: int, success_b: int, n_b: int) -> TwoByTwo:
    """Pearson chi-squared of the 2x2 table (without and with Yates' correction), the pooled z test,
    and Fisher's exact test when an expected count is under 5."""
    if n_a == 0 or n_b == 0:
        return TwoByTwo(None, None, None, None, None, None, None, None, "an arm has no samples yet")
    table = [[success_a, n_a - success_a], [success_b, n_b - success_b]]
    total_success = success_a + success_b
    total_failure = n_a + n_b - total_success
    if total_success == 0 or total_failure == 0:
        both = "100%" if total_failure == 0 else "0%"
        return TwoByTwo(None, None, None, None, None, None, None, 1.0,
                        f"both arms are at {both}: there is no difference to test")  # fmt: skip
    plain = stats.chi2_contingency(table, correction=False)
    yates = stats.chi2_contingency(table, correction=True)
    min_expected = float(plain.expected_freq.min())
    pooled = total_success / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = (success_b / n_b - success_a / n_a) / se
    z_p = float(2 * stats.norm.sf(abs(z)))
    fisher = float(stats.fisher_exact(table).pvalue) if min_expected < 5 else None
    return TwoByTwo(
        float(plain.statistic), float(plain.pvalue), float(yates.statistic), float(yates.pvalue), z, z_p,
        min_expected, fisher, None,
    )  # fmt: skip


# ------------------------------------------------------------------- means


@dataclass(frozen=True)
class Welch:
    t: float | None
    p: float | None
    df: float | None
    note: str | None = None


def welch_test(a: Moments, b: Moments) -> Welch:
    """Welch's unequal-variance t test of B against A, from the arms' moments."""
    if a.n < 2 or b.n < 2:
        return Welch(None, None, None, "each arm needs at least two samples")
    va, vb = a.variance or 0.0, b.variance or 0.0
    if va == 0 and vb == 0:
        return Welch(None, None, None, "both arms have no variance")
    result = stats.ttest_ind_from_stats(b.mean, math.sqrt(vb), b.n, a.mean, math.sqrt(va), a.n, equal_var=False)
    sa, sb = va / a.n, vb / b.n
    df = (sa + sb) ** 2 / (sa * sa / (a.n - 1) + sb * sb / (b.n - 1))
    return Welch(float(result.statistic), float(result.pvalue), df)


# ------------------------------------------------------- design and checks


def sample_ratio_mismatch(n_a: int, n_b: int, split_b: float) -> tuple[float, float] | None:
    """Chi-squared goodness of fit of the arms' counts to the intended split: (chi2, p)."""
    n = n_a + n_b
    if n == 0:
        return None
    result = stats.chisquare([n_a, n_b], f_exp=[n * (1 - split_b), n * split_b])
    return float(result.statistic), float(result.pvalue)


def _power_for_h(h: float, n_a: int, n_b: int, alpha: float) -> float:
    """Two-sided power of the two-proportion z test for Cohen's h (normal approximation)."""
    crit = float(stats.norm.ppf(1 - alpha / 2))
    shift = abs(h) * math.sqrt(n_a * n_b / (n_a + n_b))
    return float(stats.norm.sf(crit - shift) + stats.norm.cdf(-crit - shift))


def cohens_h(p_a: float, p_b: float) -> float:
    return 2 * math.asin(math.sqrt(p_b)) - 2 * math.asin(math.sqrt(p_a))


def power_reached(success_a: int, n_a: int, success_b: int, n_b: int, alpha: float) -> float | None:
    """The power to detect the observed difference at the current sample sizes."""
    if n_a == 0 or n_b == 0:
        return None
    return _power_for_h(cohens_h(success_a / n_a, success_b / n_b), n_a, n_b, alpha)


def minimum_detectable_effect(
    success_a: int, n_a: int, n_b: int, alpha: float, power: float = 0.8
) -> tuple[float, float | None] | None:
    """The smallest Cohen's h, and the accuracy lift over arm A it means, detectable with `power`
    at the current sample sizes: (h, absolute difference). None when it cannot be reached."""
    if n_a == 0 or n_b == 0:
        return None
    high = math.pi  # the largest possible h
    if _power_for_h(high, n_a, n_b, alpha) < power:
        return None
    from scipy.optimize import brentq

    h = brentq(lambda x: _power_for_h(x, n_a, n_b, alpha) - power, 1e-12, high, xtol=1e-15, rtol=1e-15)
    base = success_a / n_a
    lifted = math.asin(math.sqrt(base)) + h / 2
    if lifted > math.pi / 2:  # no accuracy above 100% is that far from arm A
        return (h, None)
    return (h, math.sin(lifted) ** 2 - base)
