"""The iterative solver's log-likelihood and conditional variances against exact ones.

An iterative fit's log-likelihood is lme4's profiled (RE)ML criterion with a
stochastic log-determinant (deflated stochastic Lanczos quadrature); its
conditional variances come from the block-Jacobi preconditioner corrected
along the factors' constant vectors.  Both are compared with dense linear
algebra at the same variance components and with the exact solver's fit, on
designs small enough for both.  Every test is deterministic (seeded data and
probes).
"""

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as la
import scipy.sparse as sp

from sklearn_mixed import CrossedEffectsRegressor
from sklearn_mixed.core import RandomTerm, fit_lmm
from sklearn_mixed.core import iterative_likelihood as likelihood
from sklearn_mixed.core.iterative import fit_crossed_iterative
from sklearn_mixed.core.iterative_likelihood import (
    conditional_variances,
    log_likelihood,
    penalized_rss,
)
from sklearn_mixed.core.iterative_system import (
    _Design,
    _full_rhs,
    _SchurSystem,
    _split_solution,
)
from sklearn_mixed.core.reduction import reduce_rows
from sklearn_mixed.core.rows import intercept_column

# Absolute tolerance on log-likelihoods: 2.5 times the Monte Carlo standard
# error the estimator targets (0.02); the errors measured are about 0.005.
LOGLIK_TOL = 0.05
# Conditional variances: largest relative error on skewed crossed designs
# (measured: 9.4%, below the exact value, for the most popular level of the
# smallest of three factors), and the median one (measured: at most 1.4%).
CONDVAR_MAX_RTOL = 0.12
CONDVAR_MEDIAN_RTOL = 0.02


# ------------------------------------------------------------------ data and references


def _skewed_codes(rng, n, m, sigma=1.0):
    """Level codes with lognormal popularity (every level observed)."""
    weights = rng.lognormal(0.0, sigma, m)
    codes = rng.choice(m, size=n, p=weights / weights.sum())
    codes[:m] = np.arange(m)
    return codes


def _simulate(seed, n, levels, sds, p=3):
    rng = np.random.default_rng(seed)
    codes = [_skewed_codes(rng, n, m) for m in levels]
    X = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(p - 1)])
    y = X @ np.linspace(1.0, 2.0, p) + rng.normal(size=n)
    for c, m, sd in zip(codes, levels, sds, strict=True):
        y += sd * rng.normal(size=m)[c]
    return X, y, codes, list(levels)


def _nested(seed=3, n=20_000):
    """(1 | outer/inner) + (1 | crossed)."""
    rng = np.random.default_rng(seed)
    inner = rng.integers(0, 600, n)
    outer, crossed = inner // 10, rng.integers(0, 50, n)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = X @ [1.0, 2.0] + rng.normal(size=n) + rng.normal(size=60)[outer]
    y += 0.7 * rng.normal(size=600)[inner] + 0.3 * rng.normal(size=50)[crossed]
    return X, y, [outer, inner, crossed], [60, 600, 50]


def _dense_reference(X, y, codes, levels, variances, sigma2, method, conditional=True):
    """lme4's profiled criterion at ``sigma_f^2 / sigma^2`` and ``sigma^2
    diag((Z'Z + Lambda)^-1)`` per factor, by dense algebra on ``Z'Z + Lambda``.

    Factors with variance 0 drop out (their conditional variances are 0);
    ``conditional=False`` skips the inverse (None instead).
    """
    n, p = X.shape
    keep = [f for f, v in enumerate(variances) if v > 0]
    Z = sp.hstack(
        [sp.csr_matrix((np.ones(n), (np.arange(n), codes[f])), (n, levels[f])) for f in keep]
    ).tocsr()
    lam = np.concatenate([np.full(levels[f], sigma2 / variances[f]) for f in keep])
    A = (Z.T @ Z).toarray() + np.diag(lam)
    A_chol = la.cho_factor(A, lower=True)
    ZX, Zy = Z.T @ X, Z.T @ y
    schur_x = X.T @ X - ZX.T @ la.cho_solve(A_chol, ZX)
    beta = np.linalg.solve(schur_x, X.T @ y - ZX.T @ la.cho_solve(A_chol, Zy))
    b = la.cho_solve(A_chol, Zy - ZX @ beta)
    e = y - X @ beta - Z @ b
    pwrss = e @ e + np.sum(lam * b * b)
    logdet = 2.0 * np.sum(np.log(np.diag(A_chol[0]))) - np.sum(np.log(lam))
    dof = n if method == "ml" else n - p
    if method == "reml":
        logdet += np.linalg.slogdet(schur_x)[1]
    deviance = logdet + dof * (1.0 + np.log(2.0 * np.pi * pwrss / dof))
    if not conditional:
        return -0.5 * deviance, None
    diag = sigma2 * np.diag(np.linalg.inv(A))
    parts = np.split(diag, np.cumsum([levels[f] for f in keep])[:-1])
    cond = [np.zeros(m) for m in levels]
    for f, part in zip(keep, parts, strict=True):
        cond[f] = part
    return -0.5 * deviance, cond


def _terms(codes, levels):
    n = len(codes[0])
    return [
        RandomTerm(f"g{i}", c, np.arange(m), np.ones((n, 1)), ("(Intercept)",))
        for i, (c, m) in enumerate(zip(codes, levels, strict=True))
    ]


def _reduce(X, y, codes, levels):
    """The data reduction the estimators make (centred on X's intercept column)."""
    return reduce_rows(X, y, _terms(codes, levels), intercept=intercept_column(X))


def _exact(X, y, codes, levels, method="reml"):
    return fit_lmm(X, y, _terms(codes, levels), method=method).result


def _iterative(X, y, codes, levels, **options):
    """:func:`fit_crossed_iterative` on the centred reduction (its ``beta`` is that
    of X's own columns)."""
    return fit_crossed_iterative(_reduce(X, y, codes, levels), **options)


def _at_fixed_variances(X, y, codes, levels, variances, sigma2, method, seed=0):
    """The iterative pieces at given variance components (no fit)."""
    d = _Design(_reduce(X, y, codes, levels))
    lam = sigma2 / np.asarray(variances, dtype=float)[d.order]
    system = _SchurSystem(d, lam, with_x=True)
    c1, cS = _full_rhs(d)
    x = system.solve(system.reduce(c1, cS), tol=1e-12)[0]
    beta, b = _split_solution(system, c1, x)
    EX = np.zeros((system.size, d.p))
    system.xpart(EX)[:] = np.eye(d.p)
    C = system.xpart(system.solve(EX, tol=1e-12)[0])
    pwrss = penalized_rss(d, lam, beta, b)
    ll = log_likelihood(d, system, 0.5 * (C + C.T), pwrss, method, np.random.default_rng(seed))
    cond = conditional_variances(d, system, sigma2, np.zeros(d.F, dtype=bool))
    return ll, d.to_user(cond, fill=np.asarray(variances)[d.order]), system


def _relative_errors(approx, exact):
    return np.concatenate([a / e - 1.0 for a, e in zip(approx, exact, strict=True)])


# ------------------------------------------------------------------ at fixed variances


@pytest.mark.parametrize(
    ("n", "levels", "variances", "method"),
    [
        (4_000, (300, 120), (0.64, 0.25), "reml"),
        (4_000, (300, 120), (0.64, 0.25), "ml"),
        (4_000, (200, 80, 40), (0.64, 0.25, 0.09), "reml"),
        (4_000, (300, 200), (0.09, 0.0025), "reml"),
        (20_000, (2000, 300, 200), (1.0, 1.0, 1.0), "reml"),
    ],
)
def test_log_likelihood_at_fixed_variances_matches_dense(n, levels, variances, method):
    """The stochastic log-determinant: within LOGLIK_TOL of the exact criterion."""
    X, y, codes, levels = _simulate(20, n, levels, np.sqrt(variances))
    ll, _, system = _at_fixed_variances(X, y, codes, levels, variances, 1.0, method)
    exact, _ = _dense_reference(X, y, codes, levels, variances, 1.0, method, False)
    assert system.size > 64 and ll.n_probes >= 8 and ll.lanczos_steps >= 2  # stochastic path
    assert 0.0 < ll.se <= 0.02
    assert abs(ll.value - exact) < LOGLIK_TOL
    # the reported standard error is of the right size: the error is a few of them
    assert abs(ll.value - exact) < 6.0 * ll.se + 1e-3


def test_log_determinant_of_the_preconditioned_system(monkeypatch):
    """log det A by deflated SLQ against the dense one, on a design where the
    probes' part (log det T beyond its control variate) is far from negligible."""
    X, y, codes, levels = _simulate(20, 20_000, (2000, 300, 200), (1.0, 1.0, 1.0))
    design = _Design(_reduce(X, y, codes, levels))
    system = _SchurSystem(design, np.ones(3))
    operator = likelihood._Preconditioned(system)
    A = operator.apply(np.eye(system.size))
    exact = np.linalg.slogdet(0.5 * (A + A.T))[1]
    probe_means = []
    quadrature = likelihood._lanczos_quadrature

    def recording(*args, **kwargs):
        values, steps = quadrature(*args, **kwargs)
        probe_means.append(values.mean())
        return values, steps

    monkeypatch.setattr(likelihood, "_lanczos_quadrature", recording)
    value, se, probes, _ = likelihood._logdet_preconditioned(
        design, operator, np.random.default_rng(0)
    )
    assert probes >= 8 and 0.0 < se < 0.05
    assert abs(value - exact) < 4.0 * se + 1e-3
    assert abs(probe_means[-1]) > 50.0 * se  # without the probes it would be far off


def test_lanczos_quadrature_converges_to_quadratic_forms():
    rng = np.random.default_rng(25)
    Q = np.linalg.qr(rng.normal(size=(200, 200)))[0]
    eigenvalues = np.geomspace(0.1, 10.0, 200)
    A = (Q * eigenvalues) @ Q.T
    V = rng.normal(size=(200, 5))
    exact = np.einsum("ij,ij->j", V, (Q * np.log(eigenvalues)) @ (Q.T @ V))
    values, steps = likelihood._lanczos_quadrature(lambda W: A @ W, V, np.log, tol=1e-10)
    np.testing.assert_allclose(values, exact, rtol=1e-8)
    assert np.all((steps > 5) & (steps < 60))


def test_monte_carlo_error_matches_spread_over_seeds():
    """Across probe seeds the estimates centre on the exact value with the stated spread."""
    X, y, codes, levels = _simulate(21, 3_000, (300, 200), (0.8, 0.5))
    exact, _ = _dense_reference(X, y, codes, levels, (0.64, 0.25), 1.0, "reml", False)
    fits = [
        _at_fixed_variances(X, y, codes, levels, (0.64, 0.25), 1.0, "reml", seed)[0]
        for seed in range(12)
    ]
    errors = np.array([f.value - exact for f in fits])
    se = np.array([f.se for f in fits])
    assert abs(errors.mean()) < 3.0 * errors.std() / np.sqrt(errors.size) + 1e-3  # unbiased
    assert 0.5 < errors.std() / np.median(se) < 2.0


def test_small_reduced_system_is_exact():
    """Up to 64 unknowns past the largest factor, log det is factored: no Monte Carlo."""
    X, y, codes, levels = _simulate(22, 3_000, (200, 20), (0.8, 0.5))
    ll, _, _ = _at_fixed_variances(X, y, codes, levels, (0.5, 0.2), 1.3, "reml")
    exact, _ = _dense_reference(X, y, codes, levels, (0.5, 0.2), 1.3, "reml")
    assert ll.se == 0.0 and ll.n_probes == 0
    assert ll.value == pytest.approx(exact, abs=1e-7)


def test_conditional_variances_at_fixed_variances():
    """Against sigma^2 diag((Z'Z + Lambda)^-1); the plain block-Jacobi value
    sigma^2 / (n_j + lambda_f), which ignores the other factors, understates it."""
    variances, sigma2 = (0.64, 0.25, 0.09), 1.1
    X, y, codes, levels = _simulate(23, 20_000, (400, 100, 30), np.sqrt(variances))
    _, cond, _ = _at_fixed_variances(X, y, codes, levels, variances, sigma2, "reml")
    _, exact = _dense_reference(X, y, codes, levels, variances, sigma2, "reml")
    errors = np.abs(_relative_errors(cond, exact))
    assert errors.max() < CONDVAR_MAX_RTOL and np.median(errors) < CONDVAR_MEDIAN_RTOL
    plain = [
        sigma2 / (np.bincount(c, minlength=m) + sigma2 / v)
        for c, m, v in zip(codes, levels, variances, strict=True)
    ]
    plain_errors = _relative_errors(plain, exact)
    assert np.all(plain_errors <= 1e-12)  # always below: (A^-1)_jj >= 1 / A_jj
    assert plain_errors.min() < -0.5  # and by far on this design


def test_conditional_variances_balanced_design():
    """Every user x item cell twice: exact for the users, 1-2% above for the items."""
    rng = np.random.default_rng(24)
    users, items = np.meshgrid(np.arange(150), np.arange(40), indexing="ij")
    codes = [np.repeat(users.ravel(), 2), np.repeat(items.ravel(), 2)]
    n = codes[0].size
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.normal(size=n) + rng.normal(size=150)[codes[0]] + rng.normal(size=40)[codes[1]]
    _, cond, _ = _at_fixed_variances(X, y, codes, [150, 40], (0.5, 0.3), 1.0, "reml")
    _, exact = _dense_reference(X, y, codes, [150, 40], (0.5, 0.3), 1.0, "reml")
    np.testing.assert_allclose(cond[0], exact[0], rtol=1e-5)
    assert np.all((cond[1] >= exact[1]) & (cond[1] <= 1.03 * exact[1]))


# ------------------------------------------------------------------ fits against exact fits


DESIGNS = {
    "crossed-reml": (lambda: _simulate(0, 30_000, (500, 100), (0.8, 0.5)), "reml"),
    "crossed-ml": (lambda: _simulate(1, 25_000, (500, 100), (0.8, 0.5)), "ml"),
    "three-factors": (lambda: _simulate(2, 40_000, (400, 100, 30), (0.8, 0.5, 0.3)), "reml"),
    "nested": (_nested, "reml"),
}


@pytest.mark.parametrize("name", list(DESIGNS))
def test_fit_log_likelihood_and_conditional_variances_match_exact(name):
    simulate, method = DESIGNS[name]
    X, y, codes, levels = simulate()
    exact = _exact(X, y, codes, levels, method)
    approx = _iterative(X, y, codes, levels, method=method, random_state=0)
    assert exact.converged and approx.converged
    # the exact criterion at the iterative variances, and the exact fit's (its maximum)
    at_theta, cond_at_theta = _dense_reference(
        X, y, codes, levels, approx.variances, approx.sigma2, method
    )
    assert abs(approx.log_likelihood - at_theta) < LOGLIK_TOL
    assert abs(approx.log_likelihood - exact.log_likelihood) < LOGLIK_TOL
    assert 0.0 < approx.log_likelihood_se <= 0.02
    errors = np.abs(_relative_errors(approx.conditional_var, cond_at_theta))
    assert errors.max() < CONDVAR_MAX_RTOL and np.median(errors) < CONDVAR_MEDIAN_RTOL
    exact_cond = [c[:, 0, 0] for c in exact.conditional_cov]
    errors = np.abs(_relative_errors(approx.conditional_var, exact_cond))
    assert errors.max() < CONDVAR_MAX_RTOL and np.median(errors) < CONDVAR_MEDIAN_RTOL


def test_zero_variance_component():
    """A variance at 0: its conditional variances are 0, the criterion is the exact one."""
    X, y, codes, levels = _simulate(7, 30_000, (500, 100), (0.8, 0.0))
    exact = _exact(X, y, codes, levels)
    approx = _iterative(X, y, codes, levels, random_state=0)
    assert approx.singular and exact.theta[1] == 0.0
    assert np.all(approx.conditional_var[1] == 0.0)
    assert abs(approx.log_likelihood - exact.log_likelihood) < LOGLIK_TOL
    np.testing.assert_allclose(
        approx.conditional_var[0], exact.conditional_cov[0][:, 0, 0], rtol=CONDVAR_MAX_RTOL
    )


def test_unused_levels_have_the_prior_variance():
    X, y, codes, levels = _simulate(13, 10_000, (300, 60), (0.8, 0.5))
    compact = _iterative(X, y, codes, levels, random_state=0)
    spread = _iterative(X, y, [2 * c for c in codes], [2 * m + 1 for m in levels], random_state=0)
    assert spread.log_likelihood == pytest.approx(compact.log_likelihood, abs=1e-6)
    for f in range(2):
        assert np.all(spread.conditional_var[f][1::2] == spread.variances[f])
        np.testing.assert_allclose(
            spread.conditional_var[f][::2][: levels[f]], compact.conditional_var[f], rtol=1e-6
        )


def test_log_likelihood_optional_and_seeded():
    """Without it the fit is the same; the probes follow random_state."""
    X, y, codes, levels = _simulate(11, 10_000, (300, 100), (0.8, 0.5))
    a = _iterative(X, y, codes, levels, random_state=3)
    b = _iterative(X, y, codes, levels, random_state=3)
    c = _iterative(X, y, codes, levels, random_state=3, compute_log_likelihood=False)
    assert a.log_likelihood == b.log_likelihood and a.log_likelihood_se > 0.0
    assert c.log_likelihood is None and np.isnan(c.log_likelihood_se)
    np.testing.assert_array_equal(a.variances, c.variances)
    np.testing.assert_array_equal(a.beta, c.beta)
    for ca, cc in zip(a.conditional_var, c.conditional_var, strict=True):
        np.testing.assert_array_equal(ca, cc)


# ------------------------------------------------------------------ the estimator


def test_estimator_reports_log_likelihood_and_predictive_std():
    X, y, codes, _ = _simulate(30, 8_000, (300, 100), (0.8, 0.5), p=2)
    features = pd.DataFrame({"x": X[:, 1]})
    groups = pd.DataFrame({"user": codes[0], "item": codes[1]})
    approx = CrossedEffectsRegressor(solver="iterative", random_state=0)
    approx.fit(features, y, groups=groups)
    exact = CrossedEffectsRegressor(solver="exact").fit(features, y, groups=groups)
    assert approx.approximate_ and 0.0 < approx.log_likelihood_se_ <= 0.02
    assert exact.log_likelihood_se_ == 0.0
    for attr in ("log_likelihood_", "deviance_", "aic_", "bic_"):
        value = getattr(approx, attr)
        assert np.isfinite(value)
        assert abs(value - getattr(exact, attr)) < 2.0 * LOGLIK_TOL
    mean, std = approx.predict(features, groups=groups, return_std=True)
    _, std_exact = exact.predict(features, groups=groups, return_std=True)
    assert np.all(np.isfinite(std) & (std > 0.0))
    np.testing.assert_allclose(std, std_exact, rtol=5e-3)
    for name, cov in approx.random_effects_conditional_cov_.items():
        exact_cov = exact.random_effects_conditional_cov_[name]
        assert np.all(np.isfinite(cov) & (cov > 0.0))
        np.testing.assert_allclose(cov, exact_cov, rtol=CONDVAR_MAX_RTOL)
    assert "log-likelihood:" in approx.summary()
