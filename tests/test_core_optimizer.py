"""The optimizer finds the global optimum of the profiled deviance.

On simulated random-slope designs with covariates on awkward scales (where a
quasi-Newton method can stop on the boundary theta_kk = 0, a stationary point
by symmetry), the optimum of :func:`fit_lmm` is compared with the best of
several derivative-free searches from scattered starting points.
"""

import numpy as np
import pytest
from scipy.optimize import minimize

from sklearn_mixed.core import RandomTerm, fit_lmm
from sklearn_mixed.core.model import LinearMixedModel
from sklearn_mixed.core.reduction import reduce_rows
from sklearn_mixed.core.rows import intercept_column


def _simulate(seed, n_groups=12, per_group=8, slope_scale=10.0):
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    codes = np.repeat(np.arange(n_groups), per_group)
    x = rng.uniform(0, slope_scale, n)
    b0 = rng.normal(0, 2.0, n_groups)
    b1 = rng.normal(0, rng.choice([0.0, 0.05, 0.3]), n_groups)
    y = 1.0 + 0.5 * x + b0[codes] + b1[codes] * x + rng.normal(0, 1.0, n)
    X = np.column_stack([np.ones(n), x])
    term = RandomTerm("g", codes, np.arange(n_groups), X.copy(), ("(Intercept)", "x"))
    return X, y, [term]


def _deviance_function(X, y, terms, method):
    reduction = reduce_rows(X, y, terms, intercept=intercept_column(X))  # as fit_lmm reduces
    problem = LinearMixedModel(reduction, terms, method=method)

    def deviance(theta):
        try:
            return problem.deviance(theta)
        except np.linalg.LinAlgError:
            return np.inf

    return deviance, problem.layout.lower


def _simulate_crossed(seed, n=60):
    """Two crossed intercepts, the second with a small variance (near the boundary)."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 8, n), rng.integers(0, 5, n)
    a[:8], b[:5] = np.arange(8), np.arange(5)
    y = 2 + 1.5 * rng.normal(size=8)[a] + 0.1 * rng.normal(size=5)[b] + rng.normal(0, 0.8, n)
    one = np.ones((n, 1))
    terms = [
        RandomTerm(name, c, np.arange(c.max() + 1), one, ("(Intercept)",))
        for name, c in (("a", a), ("b", b))
    ]
    return one, y, terms


DESIGNS = [("slope", seed) for seed in range(8)] + [("crossed", seed) for seed in range(6)]


@pytest.mark.parametrize("method", ["ml", "reml"])
@pytest.mark.parametrize("design, seed", DESIGNS)
def test_optimum_is_global_against_multistart(design, seed, method):
    X, y, terms = (_simulate if design == "slope" else _simulate_crossed)(seed)
    fit = fit_lmm(X, y, terms, method=method).result
    deviance, lower = _deviance_function(X, y, terms, method)
    rng = np.random.default_rng(100 + seed)
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    best = np.inf
    for _ in range(4):
        start = np.abs(rng.normal(0.5, 0.5, lower.size))
        res = minimize(
            deviance,
            start,
            method="Nelder-Mead",
            bounds=bounds,
            options={"xatol": 1e-9, "fatol": 1e-10, "maxiter": 4000},
        )
        best = min(best, res.fun)
    assert fit.deviance <= best + 1e-6
    assert fit.deviance == pytest.approx(deviance(fit.theta), abs=1e-9)
