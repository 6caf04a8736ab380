"""Simulated A/B tests read after every batch: how often the always-valid (mSPRT) and the fixed-horizon
tests declare a difference, seeded so the figures in README are the ones the tests check."""

from __future__ import annotations

from typing import Any

import numpy as np

from domain.sequential import TAU_PROPORTIONS

Z_95 = 1.959963984540054


def peeking(*, p_a: float, p_b: float, runs: int = 2000, peek_every: int = 100, total: int = 10_000,
            alpha: float = 0.05, tau: float = TAU_PROPORTIONS, seed: int = 20261202) -> dict[str, Any]:  # fmt: skip
    """`runs` tests of `total` samples split 50/50, looked at after every `peek_every` samples."""
    rng = np.random.default_rng(seed)
    per_peek, peeks = peek_every // 2, total // peek_every
    a = rng.binomial(per_peek, p_a, size=(runs, peeks)).cumsum(axis=1)
    b = rng.binomial(per_peek, p_b, size=(runs, peeks)).cumsum(axis=1)
    n = per_peek * np.arange(1, peeks + 1)
    pooled = (a + b) / (2 * n)
    variance = np.maximum(pooled * (1 - pooled) * (2 / n), 1e-12)
    estimate = (b - a) / n
    tau2 = tau * tau
    log_lambda = 0.5 * np.log(variance / (variance + tau2)) + tau2 * estimate**2 / (2 * variance * (variance + tau2))
    always_valid = log_lambda >= np.log(1 / alpha)
    fixed = np.abs(estimate / np.sqrt(variance)) >= Z_95
    first = np.where(always_valid.any(axis=1), always_valid.argmax(axis=1), -1)
    stopped = (first[first >= 0] + 1) * peek_every
    return {
        "runs": runs, "peeks": peeks, "peek_every": peek_every, "total": total, "alpha": alpha, "tau": tau,
        "p_a": p_a, "p_b": p_b,
        "always_valid_rate": float(always_valid.any(axis=1).mean()),
        "fixed_horizon_peeking_rate": float(fixed.any(axis=1).mean()),
        "fixed_horizon_once_rate": float(fixed[:, -1].mean()),
        "median_samples_to_decision": float(np.median(stopped)) if stopped.size else None,
    }  # fmt: skip


if __name__ == "__main__":  # the figures README quotes: python -m tests.support.sequential_simulation
    import json

    for p_b in (0.30, 0.34):
        print(json.dumps(peeking(p_a=0.30, p_b=p_b)))
