"""The small-model path: the dense system and the projected BFGS driver.

Small models (``q + p + 1 <= DENSE_SIZE_LIMIT``) are fitted on one dense
Cholesky factor of the whole augmented system and optimized by
:func:`~sklearn_mixed.core.bfgs.projected_bfgs`; larger ones by the blocked
factor and L-BFGS-B.  Both paths must give one fit, and the driver must find
the constrained minimum that scipy's L-BFGS-B finds.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

import sklearn_mixed.core.model as model_module
from sklearn_mixed.core import RandomTerm, fit_lmm
from sklearn_mixed.core.bfgs import projected_bfgs
from sklearn_mixed.core.dense import augmented_gram
from sklearn_mixed.core.grouping import term_model_matrix
from sklearn_mixed.core.model import LinearMixedModel
from sklearn_mixed.core.reduction import reduce_rows
from sklearn_mixed.core.rows import intercept_column


def _model(X, y, terms, method):
    """The model as :func:`fit_lmm` builds it (centred when X has an intercept), unfitted."""
    reduction = reduce_rows(X, y, terms, intercept=intercept_column(X))
    return LinearMixedModel(reduction, terms, method=method)


def _design(seed, n=150):
    """A random slope by ``g`` (12 levels) crossed with an intercept by ``h`` (5)."""
    rng = np.random.default_rng(seed)
    g, h = rng.integers(0, 12, n), rng.integers(0, 5, n)
    g[:12], h[:5] = np.arange(12), np.arange(5)
    x = rng.uniform(0, 5, n)
    y = (
        1.0 + 0.4 * x + rng.normal(0, 1.5, 12)[g] + rng.normal(0, 0.3, 12)[g] * x
        + rng.normal(0, 0.8, 5)[h] + rng.normal(0, 1.0, n)
    )  # fmt: skip
    X = np.column_stack([np.ones(n), x])
    terms = [
        RandomTerm("g", g, np.arange(12), X.copy(), ("(Intercept)", "x")),
        RandomTerm("h", h, np.arange(5), np.ones((n, 1)), ("(Intercept)",)),
    ]
    return X, y, terms


@pytest.mark.parametrize("method", ["ml", "reml"])
@pytest.mark.parametrize("seed", range(3))
def test_dense_and_blocked_fits_agree(method, seed, monkeypatch):
    """The dense path's estimates, modes, conditional and fixed-effect
    covariances equal the blocked factor's (which lme4's tests cover)."""
    X, y, terms = _design(seed)
    assert _model(X, y, terms, method).is_small
    dense = fit_lmm(X, y, terms, method=method).result
    monkeypatch.setattr(model_module, "DENSE_SIZE_LIMIT", 0)
    model = _model(X, y, terms, method)
    assert not model.is_small
    blocked = fit_lmm(X, y, terms, method=method).result
    assert dense.deviance == pytest.approx(blocked.deviance, abs=1e-6)
    np.testing.assert_allclose(dense.theta, blocked.theta, atol=2e-4)
    # compare the solutions at one theta, free of optimizer tolerance: the
    # blocked factor's solution at the dense fit's theta
    at_theta = model._solution(dense.theta)
    np.testing.assert_allclose(dense.beta, at_theta.beta, rtol=1e-9)
    np.testing.assert_allclose(dense.beta_cov, at_theta.beta_cov, rtol=1e-9)
    assert dense.sigma2 == pytest.approx(at_theta.sigma2, rel=1e-10)
    assert dense.deviance == pytest.approx(at_theta.deviance, rel=1e-12)
    for b_dense, b_blocked in zip(dense.b, at_theta.b, strict=True):
        np.testing.assert_allclose(b_dense, b_blocked, rtol=1e-8, atol=1e-12)
    for c_dense, c_blocked in zip(dense.conditional_cov, at_theta.conditional_cov, strict=True):
        np.testing.assert_allclose(c_dense, c_blocked, rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("centred", [False, True])
def test_augmented_gram_equals_explicit_products(centred, weighted):
    """``G`` assembled from the reduction's sums equals ``[Z, X, y]'W[Z, X, y]``
    formed from the rows (centred: ``X``'s other columns and ``y`` shifted by
    their weighted means), and is symmetric."""
    X, y, terms = _design(4)
    w = np.random.default_rng(4).uniform(0.2, 3.0, len(y)) if weighted else None
    reduction = reduce_rows(X, y, terms, weights=w, intercept=0 if centred else None)
    G = augmented_gram(reduction)
    Xs, ys = X.copy(), y.copy()
    if centred:
        ww = np.ones(len(y)) if w is None else w
        Xs[:, 1] -= ww @ X[:, 1] / ww.sum()
        ys -= ww @ y / ww.sum()
    W = np.hstack([term_model_matrix(t).toarray() for t in terms] + [Xs, ys[:, None]])
    expected = W.T @ (W if w is None else w[:, None] * W)
    np.testing.assert_allclose(G, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    if w is None:
        np.testing.assert_array_equal(G, G.T)
    else:
        # the reduction forms X'WX as (WX)'X, symmetric only to rounding
        np.testing.assert_allclose(G, G.T, rtol=1e-15, atol=1e-15 * np.abs(G).max())


def _quadratic(A, c):
    def fun_and_grad(x):
        return 0.5 * x @ A @ x - c @ x + 0.1 * np.sum(x**4), A @ x - c + 0.4 * x**3

    return fun_and_grad


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    d=st.integers(1, 6),
    scale=st.sampled_from([1.0, 30.0, 1e3]),
)
def test_projected_bfgs_finds_the_bound_constrained_minimum(seed, d, scale):
    """On strictly convex functions with some coordinates bounded at 0 (the
    minimum often on the bound) and badly scaled curvature, the minimum equals
    L-BFGS-B's at tight tolerances."""
    rng = np.random.default_rng(seed)
    Q = rng.normal(size=(d, d))
    A = Q @ Q.T + 0.1 * np.eye(d)
    A[0, :] *= scale
    A[:, 0] *= scale
    c = rng.normal(size=d) * 3
    lower = np.where(rng.random(d) < 0.6, 0.0, -np.inf)
    f = _quadratic(A, c)
    x0 = np.ones(d)
    ours = projected_bfgs(f, x0, lower)
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    ref = minimize(f, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000})  # fmt: skip
    assert ours.success, ours.message
    assert np.all(ours.x >= lower)
    assert ours.fun <= ref.fun + 1e-9 * max(1.0, abs(ref.fun))
    np.testing.assert_allclose(ours.x, ref.x, atol=1e-5 * max(1.0, np.abs(ref.x).max()))


def test_projected_bfgs_on_rosenbrock():
    """A curved valley, unbounded: the minimum (1, 1) to 1e-6."""

    def rosen(x):
        f = 100.0 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2
        g = np.array(
            [-400.0 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0]), 200 * (x[1] - x[0] ** 2)]
        )
        return f, g

    result = projected_bfgs(rosen, np.array([-1.2, 1.0]), np.full(2, -np.inf))
    assert result.success
    np.testing.assert_allclose(result.x, [1.0, 1.0], atol=1e-6)


def test_projected_bfgs_reports_failure():
    """A function unbounded below along a free coordinate is not 'converged'."""
    result = projected_bfgs(lambda x: (-x[0], np.array([-1.0])), np.zeros(1), np.full(1, -np.inf),
                            max_iter=30)  # fmt: skip
    assert not result.success
    assert result.nit == 30


@pytest.mark.parametrize(
    "method, lme4_theta",
    [("reml", [0.96674, 0.01517, 0.23091]), ("ml", [0.92919, 0.01817, 0.22264])],
)
def test_slope_start_is_the_optimum_on_balanced_design(method, lme4_theta):
    """sleepstudy is balanced (10 days per subject, the same days): the
    moment estimate from the subjects' own regressions (spread divided by
    m - 1 for REML, m for ML) is the (RE)ML estimate (lme4's theta of
    lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = TRUE / FALSE)),
    so the fit starts at its optimum."""
    from sklearn_mixed.core.start import slope_moment_start
    from sklearn_mixed.datasets import load_sleepstudy

    df = load_sleepstudy()
    codes = df["Subject"].astype("category").cat.codes.to_numpy().astype(np.intp)
    X = np.column_stack([np.ones(len(df)), df["Days"].to_numpy(float)])
    term = RandomTerm("Subject", codes, np.arange(18), X.copy(), ("(Intercept)", "Days"))
    y = df["Reaction"].to_numpy(float)
    model = _model(X, y, [term], method)
    start = slope_moment_start(model.reduction, model.layout, method)
    np.testing.assert_array_equal(model.start(), start)  # the start the fit uses
    # lme4 stops within ~4e-5 of the optimum along the flat intercept direction
    np.testing.assert_allclose(start, lme4_theta, atol=5e-5)
    fit = fit_lmm(X, y, [term], method=method)
    np.testing.assert_allclose(fit.theta, start, atol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_slope_start_is_interior_and_fit_unchanged(seed):
    """On unbalanced designs the start is only near the optimum; it is
    interior (diagonal of T > 0) and the optimum is the one reached from
    lme4's start T = I (dense path, same deviance)."""
    from sklearn_mixed.core.optimize import minimize_deviance

    X, y, terms = _design(seed)
    model = _model(X, y, terms, "reml")
    lower = model.layout.lower
    start = model.start()
    assert not np.array_equal(start, model.layout.start)  # the moments, not T = I
    assert np.all(start[np.isfinite(lower)] > 0)
    from_identity = minimize_deviance(
        model.deviance,
        np.where(np.isfinite(lower), 1.0, 0.0),
        lower,
        value_and_gradient=model.value_and_gradient,
    )
    fit = fit_lmm(X, y, terms, method="reml").result
    assert fit.deviance == pytest.approx(from_identity.deviance, abs=1e-7)
