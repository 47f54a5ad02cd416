"""The iterative solver (CG + stochastic traces) against the exact REML / ML fit.

On simulated designs small enough for the exact blocked-Cholesky solver
(crossed, three factors, nested, mostly-singleton levels), the approximate fit
must give variance components within 1% of the exact ones, predictions within
``1e-3 sd(y)`` and fixed effects within a small fraction of their standard
errors; at fixed variance components the CG solution must equal the exact
solution of Henderson's equations.  Every test is deterministic (seeded data
and probes).
"""

import numpy as np
import pandas as pd
import pytest

from sklearn_mixed import CrossedEffectsRegressor
from sklearn_mixed.core import RandomTerm, fit_lmm
from sklearn_mixed.core.iterative import (
    _Design,
    _Probes,
    _SchurSystem,
    _TraceEstimator,
    fit_crossed_iterative,
    solve_mixed_model_equations,
)
from sklearn_mixed.core.reduction import reduce_rows
from sklearn_mixed.core.rows import intercept_column


def _skewed_codes(rng, n, m, sigma=1.0):
    """Level codes with lognormal popularity (every level observed)."""
    weights = rng.lognormal(0.0, sigma, m)
    codes = rng.choice(m, size=n, p=weights / weights.sum())
    codes[:m] = np.arange(m)
    return codes


def _simulate(seed, n, levels, sds, sd_eps=1.0, p=3):
    rng = np.random.default_rng(seed)
    codes = [_skewed_codes(rng, n, m) for m in levels]
    X = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(p - 1)])
    y = X @ np.linspace(1.0, 2.0, p) + sd_eps * rng.normal(size=n)
    for c, m, sd in zip(codes, levels, sds, strict=True):
        y += sd * rng.normal(size=m)[c]
    return X, y, codes, list(levels)


def _terms(codes, levels):
    n = len(codes[0])
    return [
        RandomTerm(f"g{i}", c, np.arange(m), np.ones((n, 1)), ("(Intercept)",))
        for i, (c, m) in enumerate(zip(codes, levels, strict=True))
    ]


def _reduce(X, y, codes, levels, centred=True):
    """The data reduction; ``centred``: on X's intercept column, as the estimators make it."""
    intercept = intercept_column(X) if centred else None
    return reduce_rows(X, y, _terms(codes, levels), intercept=intercept)


def _exact(X, y, codes, levels, method="reml"):
    return fit_lmm(X, y, _terms(codes, levels), method=method).result


def _iterative(X, y, codes, levels, **options):
    """:func:`fit_crossed_iterative` on the centred reduction (its fixed effects,
    and their covariance, are those of X's own columns)."""
    return fit_crossed_iterative(_reduce(X, y, codes, levels), **options)


def _exact_variances(fit):
    return np.array([c[0, 0] for c in fit.term_cov])


def _exact_prediction(fit, X, codes):
    return X @ fit.beta + sum(b[:, 0][c] for b, c in zip(fit.b, codes, strict=True))


def _assert_matches_exact(X, y, codes, levels, method="reml", seed=0, rtol=0.01):
    exact = _exact(X, y, codes, levels, method)
    approx = _iterative(X, y, codes, levels, method=method, random_state=seed)
    assert exact.converged and approx.converged
    np.testing.assert_allclose(approx.variances, _exact_variances(exact), rtol=rtol)
    assert approx.sigma2 == pytest.approx(exact.sigma2, rel=rtol)
    gap = np.abs(approx.predict(X, codes) - _exact_prediction(exact, X, codes)).max()
    assert gap < 1e-3 * y.std()
    se = np.sqrt(np.diag(exact.beta_cov))
    assert np.all(np.abs(approx.beta - exact.beta) < 0.01 * se)
    np.testing.assert_allclose(np.sqrt(np.diag(approx.beta_cov)), se, rtol=0.01)
    # the reported Monte Carlo error is what was asked for
    assert np.all(approx.mc_se < 2e-3)
    return exact, approx


# ------------------------------------------------------------------ against exact fits


def test_two_crossed_factors_match_exact_reml():
    X, y, codes, levels = _simulate(0, 30_000, (500, 100), (0.8, 0.5))
    exact, approx = _assert_matches_exact(X, y, codes, levels)
    # much closer than required on this design
    np.testing.assert_allclose(approx.variances, _exact_variances(exact), rtol=1e-3)
    np.testing.assert_allclose(approx.theta, exact.theta, rtol=1e-3)
    for b_approx, b_exact in zip(approx.b, exact.b, strict=True):
        np.testing.assert_allclose(b_approx, b_exact[:, 0], atol=1e-4 * y.std())


def test_two_crossed_factors_match_exact_ml():
    X, y, codes, levels = _simulate(1, 25_000, (500, 100), (0.8, 0.5))
    _assert_matches_exact(X, y, codes, levels, method="ml")


def test_three_crossed_factors_match_exact():
    X, y, codes, levels = _simulate(2, 40_000, (400, 100, 30), (0.8, 0.5, 0.3))
    _assert_matches_exact(X, y, codes, levels)


def test_nested_factors_match_exact():
    """(1 | outer/inner) + (1 | crossed): the inner factor's levels are unique per outer."""
    rng = np.random.default_rng(3)
    n = 20_000
    inner = rng.integers(0, 600, n)
    outer = inner // 10
    crossed = rng.integers(0, 50, n)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = (
        X @ [1.0, 2.0]
        + rng.normal(size=60)[outer]
        + 0.7 * rng.normal(size=600)[inner]
        + 0.3 * rng.normal(size=50)[crossed]
        + rng.normal(size=n)
    )
    _assert_matches_exact(X, y, [outer, inner, crossed], [60, 600, 50])
    _assert_matches_exact(X, y, [outer, inner], [60, 600])


def test_mostly_single_observation_levels_match_exact():
    """A factor whose levels mostly have one observation, crossed with another."""
    rng = np.random.default_rng(4)
    singles, shared, n = 9_000, 3_000, 20_000
    codes_a = np.concatenate([np.arange(singles), singles + rng.integers(0, shared, n - singles)])
    codes_a[singles : singles + shared] = singles + np.arange(shared)
    codes_b = rng.integers(0, 100, n)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    m_a = singles + shared
    y = (
        X @ [1.0, -1.0]
        + 0.8 * rng.normal(size=m_a)[codes_a]
        + 0.5 * rng.normal(size=100)[codes_b]
        + rng.normal(size=n)
    )
    assert np.mean(np.bincount(codes_a) == 1) > 0.7
    _assert_matches_exact(X, y, [codes_a, codes_b], [m_a, 100])


def test_covariates_constant_within_levels_and_weak_factor():
    """Item- and user-level covariates (deflated directions); a tiny item variance."""
    X, y, codes, levels = _simulate(5, 30_000, (500, 100), (0.3, 0.05))
    rng = np.random.default_rng(5)
    item_x = rng.normal(size=levels[1])[codes[1]]
    user_x = rng.normal(size=levels[0])[codes[0]]
    X2 = np.column_stack([X, item_x, user_x])
    y2 = y + 0.5 * item_x - 0.3 * user_x
    _, approx = _assert_matches_exact(X2, y2, codes, levels)
    assert approx.diagnostics["history"]


def test_zero_variance_component_is_singular():
    X, y, codes, levels = _simulate(7, 30_000, (500, 100), (0.8, 0.0))
    exact = _exact(X, y, codes, levels)
    assert exact.singular and exact.theta[1] == 0.0  # the exact fit is on the boundary
    approx = _iterative(X, y, codes, levels, random_state=0)
    assert approx.converged and approx.singular
    assert approx.variances[1] == 0.0 and np.all(approx.b[1] == 0.0)
    assert approx.variances[0] == pytest.approx(_exact_variances(exact)[0], rel=0.01)
    gap = np.abs(approx.predict(X, codes) - _exact_prediction(exact, X, codes)).max()
    assert gap < 1e-3 * y.std()


# ------------------------------------------------------------------ the pieces


def test_cg_solution_equals_exact_mixed_model_equations():
    """At the exact fit's variances, CG gives the exact fit's beta and modes."""
    X, y, codes, levels = _simulate(8, 20_000, (400, 80, 20), (0.8, 0.5, 0.3))
    exact = _exact(X, y, codes, levels)
    reduction = _reduce(X, y, codes, levels)
    beta, b, info = solve_mixed_model_equations(
        reduction, _exact_variances(exact), exact.sigma2, tol=1e-12
    )
    assert info["residual"] < 1e-12
    np.testing.assert_allclose(beta, exact.beta, rtol=1e-8, atol=1e-10)
    for b_cg, b_exact in zip(b, exact.b, strict=True):
        np.testing.assert_allclose(b_cg, b_exact[:, 0], rtol=1e-7, atol=1e-9)


def test_cg_solution_equals_dense_solve_of_henderson_equations():
    rng = np.random.default_rng(9)
    n, levels = 600, [40, 15, 6]
    codes = [rng.integers(0, m, n) for m in levels]
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = rng.normal(size=n)
    variances, sigma2 = np.array([0.7, 0.4, 0.2]), 1.3
    Z = np.hstack([np.eye(m)[c] for c, m in zip(codes, levels, strict=True)])
    penalty = np.concatenate(
        [np.full(m, sigma2 / v) for m, v in zip(levels, variances, strict=True)]
    )
    C = np.block([[X.T @ X, X.T @ Z], [Z.T @ X, Z.T @ Z + np.diag(penalty)]])
    dense = np.linalg.solve(C, np.concatenate([X.T @ y, Z.T @ y]))
    # the raw (uncentred) reduction: the coefficients of X's own columns
    reduction = _reduce(X, y, codes, levels, centred=False)
    beta, b, _ = solve_mixed_model_equations(reduction, variances, sigma2, tol=1e-13)
    np.testing.assert_allclose(beta, dense[:3], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(np.concatenate(b), dense[3:], rtol=1e-9, atol=1e-11)


def test_trace_estimates_agree_with_dense_inverse():
    """Each factor's tr(C^ff) is within a few of its reported standard errors."""
    X, y, codes, levels = _simulate(10, 8_000, (300, 60, 25), (0.8, 0.5, 0.3))
    design = _Design(_reduce(X, y, codes, levels))
    lam = np.array([1.5, 4.0, 9.0])
    system = _SchurSystem(design, lam)
    S = system.matvec(np.eye(system.size))
    S = 0.5 * (S + S.T)
    # dense inverse of the full coefficient matrix, factor blocks in internal order
    m1 = design.m[0]
    B = system.Bs.toarray() / system.sqrt_invD1[:, None]
    full = np.block(
        [[np.diag(1.0 / system.invD1), B], [B.T, S + B.T @ (system.invD1[:, None] * B)]]
    )
    inverse_diag = np.diag(np.linalg.inv(full))
    exact = [inverse_diag[:m1].sum()] + [
        inverse_diag[m1 + system.offsets[f - 1] : m1 + system.offsets[f]].sum()
        for f in range(1, design.F)
    ]
    estimator = _TraceEstimator(design, _Probes(design.m, np.random.default_rng(0)))
    rhs, layout = estimator.rhs(system, [16, 16, 16], [False, False, False])
    solution = np.linalg.solve(S, rhs)
    tau, se = estimator.estimate(system, rhs, layout, solution, rhs - S @ solution)
    assert np.all(np.abs(tau - exact) <= 4.0 * se + 1e-10 * np.abs(exact))
    assert np.all(se < 0.03 * np.asarray(exact))


def test_probes_are_reproducible_and_seed_dependent():
    X, y, codes, levels = _simulate(11, 10_000, (300, 60), (0.8, 0.5))
    a = _iterative(X, y, codes, levels, random_state=3)
    b = _iterative(X, y, codes, levels, random_state=3)
    c = _iterative(X, y, codes, levels, random_state=4)
    np.testing.assert_array_equal(a.variances, b.variances)
    assert a.sigma2 == b.sigma2
    assert not np.array_equal(a.variances, c.variances)
    np.testing.assert_allclose(a.variances, c.variances, rtol=0.01)


def test_small_factors_use_exact_traces():
    """A factor with no more levels than probes gets its trace exactly."""
    X, y, codes, levels = _simulate(12, 10_000, (300, 5), (1.0, 1.0))
    exact, approx = _assert_matches_exact(X, y, codes, levels)
    assert list(approx.diagnostics["exact_traces"]) == [False, True]
    assert approx.n_probes[1] == 5
    np.testing.assert_allclose(approx.variances, _exact_variances(exact), rtol=1e-4)


def test_unused_levels_get_zero_modes():
    X, y, codes, levels = _simulate(13, 10_000, (300, 60), (0.8, 0.5))
    compact = _iterative(X, y, codes, levels, random_state=0)
    spread = _iterative(X, y, [2 * c for c in codes], [2 * m + 1 for m in levels], random_state=0)
    np.testing.assert_allclose(spread.variances, compact.variances, rtol=1e-12)
    for b_spread, b_compact in zip(spread.b, compact.b, strict=True):
        assert np.all(b_spread[1::2] == 0.0)
        np.testing.assert_allclose(
            b_spread[::2][: b_compact.size], b_compact, rtol=1e-8, atol=1e-12
        )


def test_factor_order_does_not_matter():
    X, y, codes, levels = _simulate(14, 10_000, (300, 60), (0.8, 0.5))
    ab = _iterative(X, y, codes, levels, random_state=0)
    ba = _iterative(X, y, codes[::-1], levels[::-1], random_state=0)
    np.testing.assert_allclose(ba.variances[::-1], ab.variances, rtol=1e-12)
    np.testing.assert_allclose(ba.b[0], ab.b[1], rtol=1e-8, atol=1e-12)


def test_factor_with_a_level_per_row_is_refused():
    """A factor with as many levels as rows is not identifiable from the residual
    (checked by the estimator, before any solver)."""
    y = np.random.default_rng(0).normal(size=50)
    groups = pd.DataFrame({"a": np.arange(50), "b": np.arange(50) % 5})
    with pytest.raises(ValueError, match="'a' has 50 levels for 50 observations"):
        CrossedEffectsRegressor(solver="iterative").fit(np.zeros((50, 0)), y, groups=groups)


def test_bad_method():
    codes = [np.arange(10) % 2]
    reduction = _reduce(np.ones((10, 1)), np.arange(10.0), codes, [2])
    with pytest.raises(ValueError, match="method"):
        fit_crossed_iterative(reduction, method="x")
