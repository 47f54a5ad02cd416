"""Mathematical identities of the numerical core and of a full fit.

No reference numbers: every check compares the package against an independent
dense computation written here (Bates et al. 2015, eq. 16-18, 34 and 41), an
equivalent formulation (marginal likelihood, ridge regression, OLS) or an
invariance of the model.
"""

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as la

from sklearn_mixed import MixedLinearRegressor
from sklearn_mixed.core.cholesky import blocked_cholesky, relative_factor_matrix
from sklearn_mixed.core.crossprod import blocked_cross_products
from sklearn_mixed.core.deviance import (
    Criterion,
    conditional_covariance_blocks,
    fixed_effects_covariance,
    profiled_deviance,
    residual_variance,
    solve_coefficients,
)
from sklearn_mixed.core.grouping import RandomTerm, term_model_matrix
from sklearn_mixed.core.model import fit_lmm
from sklearn_mixed.core.reduction import reduce_rows
from sklearn_mixed.core.rows import intercept_column

RTOL = 1e-9


# --------------------------------------------------------------------------- helpers
def make_term(name, codes, covariates, structure="unstructured"):
    codes = np.asarray(codes, dtype=np.intp)
    covariates = np.asarray(covariates, dtype=float)
    if covariates.ndim == 1:
        covariates = covariates[:, None]
    m = int(codes.max()) + 1
    assert np.array_equal(np.unique(codes), np.arange(m)), "every level must occur"
    names = ("(Intercept)",) + tuple(f"z{i}" for i in range(1, covariates.shape[1]))
    return RandomTerm(name, codes, np.arange(m), covariates, names, structure)


def random_theta(rng, term):
    """Arbitrary theta with a positive diagonal of T."""
    lower = term.structure.lower_bounds()
    theta = rng.normal(scale=0.8, size=term.structure.n_theta)
    diag = np.isfinite(lower)
    theta[diag] = np.abs(theta[diag]) + 0.2
    return theta


def dense_lambda(terms, thetas):
    Ts = [t.structure.relative_factor(th) for t, th in zip(terms, thetas, strict=True)]
    return la.block_diag(*[np.kron(np.eye(t.n_levels), T) for t, T in zip(terms, Ts, strict=True)])


def dense_reference(X, y, terms, thetas):
    """Straightforward dense PLS at fixed theta (Bates et al. 2015, section 3)."""
    n, p = X.shape
    Z = np.hstack([term_model_matrix(t).toarray() for t in terms])
    Lam = dense_lambda(terms, thetas)
    ZL = Z @ Lam
    q = ZL.shape[1]
    MZ = ZL.T @ ZL + np.eye(q)
    # full mixed-model equations in (u, beta), solved densely
    A = np.block([[MZ, ZL.T @ X], [X.T @ ZL, X.T @ X]])
    rhs = np.concatenate([ZL.T @ y, X.T @ y])
    sol = np.linalg.solve(A, rhs)
    u, beta = sol[:q], sol[q:]
    resid = y - X @ beta - ZL @ u
    r2 = resid @ resid + u @ u
    LZ = np.linalg.cholesky(MZ)
    logdet_Z = 2.0 * np.log(np.diag(LZ)).sum()
    MZ_inv = np.linalg.inv(MZ)
    RX = X.T @ X - X.T @ ZL @ MZ_inv @ ZL.T @ X
    logdet_X = 2.0 * np.log(np.diag(np.linalg.cholesky(RX))).sum() if p else 0.0
    dev_ml = logdet_Z + n * (1.0 + np.log(2.0 * np.pi * r2 / n))
    dev_reml = logdet_Z + logdet_X + (n - p) * (1.0 + np.log(2.0 * np.pi * r2 / (n - p)))
    blocks, start = [], 0
    for t in terms:
        m, k = t.n_levels, t.n_coef
        blocks.append(
            np.stack(
                [
                    MZ_inv[start + j * k : start + (j + 1) * k, start + j * k : start + (j + 1) * k]
                    for j in range(m)
                ]
            )
        )
        start += m * k
    return dict(
        beta=beta,
        u=u,
        r2=r2,
        dev_ml=dev_ml,
        dev_reml=dev_reml,
        cond_blocks=blocks,
        Z=Z,
        Lam=Lam,
        RX=RX,
        logdet_Z=logdet_Z,
    )


def core_path(X, y, terms, thetas, n_closed=1, centred=True):
    """The package's blocked computation: ``terms[:n_closed]`` eliminated level
    by level (each nested in the next), the others dense.

    ``centred``: the reduction is centred on X's intercept column, as
    ``fit_lmm`` makes it; ``beta`` is that of X's own columns either way
    (``reduction.uncentre`` maps the centred solution back).
    """
    n, p = X.shape
    closed, dense = list(range(n_closed)), list(range(n_closed, len(terms)))
    reduction = reduce_rows(X, y, terms, intercept=intercept_column(X) if centred else None)
    cp = blocked_cross_products(reduction, closed, dense)
    Ts = [t.structure.relative_factor(th) for t, th in zip(terms, thetas, strict=True)]
    Lambda_dense = relative_factor_matrix(Ts[n_closed:], [t.n_levels for t in terms[n_closed:]])
    factor = blocked_cholesky(cp, Ts[:n_closed], Lambda_dense)
    beta, u_closed, u_dense = solve_coefficients(factor, p)
    beta = reduction.uncentre(beta)
    sizes = [(t.n_levels, t.n_coef) for t in terms[n_closed:]]
    return dict(
        factor=factor,
        dev_ml=profiled_deviance(factor, Criterion(n, p, reml=False)),
        dev_reml=profiled_deviance(factor, Criterion(n, p, reml=True)),
        beta=beta,
        reduction=reduction,
        u=np.concatenate(u_closed + [u_dense]),
        cond_blocks=conditional_covariance_blocks(factor, sizes),
    )


def fixed_design(rng, n, p):
    if p == 0:
        return np.zeros((n, 0))
    return np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(p - 1)])


def unbalanced_codes(rng, sizes):
    codes = np.repeat(np.arange(len(sizes)), sizes)
    return rng.permutation(codes)


def build_design(name, rng):
    """(X, y, terms) for one named design."""
    if name == "intercept_only":
        codes = unbalanced_codes(rng, [3, 5, 1, 8, 4, 6, 2, 7])
        n = codes.size
        terms = [make_term("g", codes, np.ones(n))]
        p = 2
    elif name == "corr_slope_k2":
        codes = unbalanced_codes(rng, [4, 6, 5, 3, 7, 5, 6])
        n = codes.size
        terms = [make_term("g", codes, np.column_stack([np.ones(n), rng.normal(size=n)]))]
        p = 3
    elif name == "diagonal_k3":
        codes = unbalanced_codes(rng, [6, 5, 7, 4, 8, 6])
        n = codes.size
        cov = np.column_stack([np.ones(n), rng.normal(size=n), rng.uniform(-2, 2, size=n)])
        terms = [make_term("g", codes, cov, "diagonal")]
        p = 3
    elif name == "unstructured_k3":
        codes = unbalanced_codes(rng, [6, 5, 7, 4, 8, 6])
        n = codes.size
        cov = np.column_stack([np.ones(n), rng.normal(size=n), rng.uniform(-2, 2, size=n)])
        terms = [make_term("g", codes, cov)]
        p = 2
    elif name == "crossed":
        a = np.repeat(np.arange(9), 5)
        b = np.tile(np.arange(5), 9)
        keep = rng.random(a.size) > 0.15  # not fully balanced
        a, b = a[keep], b[keep]
        n = a.size
        terms = [
            make_term("a", a, np.column_stack([np.ones(n), rng.normal(size=n)])),
            make_term("b", b, np.ones(n)),
        ]
        p = 2
    elif name == "crossed_three":
        a = rng.integers(0, 7, size=70)
        b = rng.integers(0, 4, size=70)
        c = rng.integers(0, 3, size=70)
        a[:7], b[:4], c[:3] = np.arange(7), np.arange(4), np.arange(3)
        n = a.size
        x = rng.normal(size=n)
        terms = [
            make_term("a", a, np.ones(n)),
            make_term("b", b, np.column_stack([np.ones(n), x]), "diagonal"),
            make_term("c", c, np.column_stack([np.ones(n), x])),
        ]
        p = 2
    elif name in ("nested", "nested_outer_slope"):
        outer_of_inner = np.repeat(np.arange(4), [3, 2, 4, 3])  # 12 inner levels in 4 outer
        inner = unbalanced_codes(rng, rng.integers(1, 6, size=12))
        outer = outer_of_inner[inner]
        n = inner.size
        x = rng.normal(size=n)
        if name == "nested":
            terms = [
                make_term("inner", inner, np.ones(n)),
                make_term("outer", outer, np.column_stack([np.ones(n), x])),
            ]
        else:
            # the outer factor has the most random-effect columns (4 x 3 = 12 = inner's)
            cov = np.column_stack([np.ones(n), x, rng.normal(size=n)])
            terms = [make_term("inner", inner, np.ones(n)), make_term("outer", outer, cov)]
        p = 2
    elif name in ("nested_three", "nested_and_crossed"):
        # a/b/c: 20 c-levels in 8 b-levels in 3 a-levels (lme4's (1 | a/b/c))
        b_of_c = np.repeat(np.arange(8), [3, 2, 4, 1, 3, 2, 3, 2])
        a_of_b = np.repeat(np.arange(3), [3, 3, 2])
        c = unbalanced_codes(rng, rng.integers(1, 5, size=20))
        b, a = b_of_c[c], a_of_b[b_of_c[c]]
        n = c.size
        x = rng.normal(size=n)
        terms = [
            make_term("c", c, np.ones(n)),
            make_term("b", b, np.column_stack([np.ones(n), x])),
            make_term("a", a, np.ones(n)),
        ]
        if name == "nested_and_crossed":
            terms.append(make_term("crossed", rng.integers(0, 4, size=n), np.ones(n)))
        p = 2
    elif name == "one_obs_per_level":
        n = 30
        single = np.arange(n)  # one observation per level
        other = unbalanced_codes(rng, [5, 7, 8, 10])
        terms = [make_term("single", single, np.ones(n)), make_term("other", other, np.ones(n))]
        p = 2
    elif name == "singletons_slope":
        codes = unbalanced_codes(rng, [1, 1, 2, 9, 1, 14, 3, 1])
        n = codes.size
        terms = [make_term("g", codes, np.column_stack([np.ones(n), rng.normal(size=n)]))]
        p = 2
    elif name == "no_fixed_effects":
        codes = unbalanced_codes(rng, [4, 6, 5, 3, 7])
        n = codes.size
        terms = [make_term("g", codes, np.column_stack([np.ones(n), rng.normal(size=n)]))]
        p = 0
    else:  # pragma: no cover
        raise ValueError(name)
    X = fixed_design(rng, n, p)
    y = rng.normal(size=n) * 2.0 + 3.0
    for t in terms:
        eff = rng.normal(size=(t.n_levels, t.n_coef))
        y += np.einsum("ik,ik->i", t.covariates, eff[t.codes])
    return X, y, terms


DESIGNS = [
    "intercept_only",
    "corr_slope_k2",
    "diagonal_k3",
    "unstructured_k3",
    "crossed",
    "crossed_three",
    "nested",
    "nested_outer_slope",
    "nested_three",
    "nested_and_crossed",
    "one_obs_per_level",
    "singletons_slope",
    "no_fixed_effects",
]


# Designs whose first terms form a nesting chain: (design, number of closed terms)
NESTED_CHAINS = [
    ("nested", 2),
    ("nested_outer_slope", 2),
    ("nested_three", 2),
    ("nested_three", 3),
    ("nested_and_crossed", 2),
    ("nested_and_crossed", 3),
]


def design_cases():
    """(design, first term, closed terms): every term of multi-term designs goes
    first once, with the others dense; nesting chains also eliminate their outer
    terms level by level."""
    cases = []
    for i, name in enumerate(DESIGNS):
        X, y, terms = build_design(name, np.random.default_rng(100 + i))
        for first in range(len(terms)):
            cases.append(pytest.param(name, first, 1, id=f"{name}-first={terms[first].name}"))
    for name, n_closed in NESTED_CHAINS:
        cases.append(pytest.param(name, 0, n_closed, id=f"{name}-closed={n_closed}"))
    return cases


def setup_case(name, first, seed_offset=0):
    rng = np.random.default_rng(100 + DESIGNS.index(name))
    X, y, terms = build_design(name, rng)
    order = [first] + [i for i in range(len(terms)) if i != first]
    terms = [terms[i] for i in order]
    trng = np.random.default_rng(7 + seed_offset)
    thetas = [random_theta(trng, t) for t in terms]
    return X, y, terms, thetas


def assert_close(a, b, rtol=RTOL, atol=0.0, err_msg=""):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=err_msg)


# ----------------------------------------------------- 1. blocked == dense reference
@pytest.mark.parametrize("name, first, n_closed", design_cases())
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("centred", [True, False], ids=["centred", "raw"])
def test_blocked_matches_dense_reference(name, first, n_closed, seed, centred):
    X, y, terms, thetas = setup_case(name, first, seed)
    ref = dense_reference(X, y, terms, thetas)
    got = core_path(X, y, terms, thetas, n_closed, centred)
    assert_close(got["dev_ml"], ref["dev_ml"], err_msg="ML deviance")
    assert_close(got["dev_reml"], ref["dev_reml"], err_msg="REML deviance")
    scale = np.abs(ref["beta"]).max(initial=1.0)
    assert_close(got["beta"], ref["beta"], atol=RTOL * scale, err_msg="beta")
    uscale = np.abs(ref["u"]).max()
    assert_close(got["u"], ref["u"], atol=RTOL * uscale, err_msg="u")
    for t, B, B_ref in zip(terms, got["cond_blocks"], ref["cond_blocks"], strict=True):
        assert B.shape == (t.n_levels, t.n_coef, t.n_coef)
        assert_close(B, B_ref, atol=1e-12, err_msg=f"conditional blocks of {t.name}")
    # the penalized RSS, sigma^2 and Var(beta) from the same factor
    n, p = X.shape
    factor = got["factor"]
    assert_close(factor.L22[-1, -1] ** 2, ref["r2"])
    assert_close(residual_variance(factor, Criterion(n, p, reml=False)), ref["r2"] / n)
    assert_close(residual_variance(factor, Criterion(n, p, reml=True)), ref["r2"] / (n - p))
    if p:
        s2 = ref["r2"] / (n - p)
        # Var(beta) of the centred columns, mapped back to X's own
        beta_cov = fixed_effects_covariance(factor, p, s2)
        beta_cov = got["reduction"].uncentre(np.zeros(p), beta_cov)[1]
        assert_close(beta_cov, s2 * np.linalg.inv(ref["RX"]), atol=1e-13)


def _marginal_pieces(X, y, terms, thetas):
    ref = dense_reference(X, y, terms, thetas)
    ZL = ref["Z"] @ ref["Lam"]
    V = ZL @ ZL.T + np.eye(len(y))
    return ref, V


@pytest.mark.parametrize("name, first, n_closed", design_cases())
def test_ml_deviance_is_marginal_gaussian_likelihood(name, first, n_closed):
    """-2 log N(y; X beta, sigma^2 (Z Lam Lam' Z' + I)) at the profiled beta, sigma^2."""
    X, y, terms, thetas = setup_case(name, first)
    n, p = X.shape
    got = core_path(X, y, terms, thetas, n_closed)
    ref, V = _marginal_pieces(X, y, terms, thetas)
    beta = got["beta"]
    # sigma^2 profiled: r^2 / n with r^2 = (y - X beta)' V^-1 (y - X beta) at the GLS beta
    e = y - X @ beta
    quad = e @ np.linalg.solve(V, e)
    assert_close(quad, ref["r2"], err_msg="r^2 is the generalized RSS")
    sigma2 = quad / n
    _, logdetV = np.linalg.slogdet(V)
    neg2ll = n * np.log(2 * np.pi * sigma2) + logdetV + quad / sigma2
    assert_close(got["dev_ml"], neg2ll)
    # beta is the GLS estimate
    if p:
        Vi_X = np.linalg.solve(V, X)
        assert_close(beta, np.linalg.solve(X.T @ Vi_X, Vi_X.T @ y), atol=RTOL * np.abs(beta).max())


@pytest.mark.parametrize("name, first, n_closed", design_cases())
def test_reml_deviance_is_restricted_likelihood(name, first, n_closed):
    """REML: (n-p) log(2 pi s2) + log|V| + log|X'V^-1X| + r^2/s2 at s2 = r^2/(n-p)."""
    X, y, terms, thetas = setup_case(name, first)
    n, p = X.shape
    got = core_path(X, y, terms, thetas, n_closed)
    ref, V = _marginal_pieces(X, y, terms, thetas)
    e = y - X @ got["beta"]
    quad = e @ np.linalg.solve(V, e)
    s2 = quad / (n - p)
    logdetXVX = np.linalg.slogdet(X.T @ np.linalg.solve(V, X))[1] if p else 0.0
    neg2 = (n - p) * np.log(2 * np.pi * s2) + np.linalg.slogdet(V)[1] + logdetXVX + quad / s2
    assert_close(got["dev_reml"], neg2)


# ------------------------------------------------------------------- 2. ridge identity
@pytest.mark.parametrize("name, first, n_closed", design_cases())
def test_mme_solution_is_ridge_regression(name, first, n_closed):
    """beta, b = Lambda u minimize ||y - X beta - Z b||^2 + sigma^2 b' G^-1 b.

    G = sigma^2 Lambda Lambda', i.e. the penalty ||u||^2 with b = Lambda u.
    """
    X, y, terms, thetas = setup_case(name, first)
    got = core_path(X, y, terms, thetas, n_closed)
    Z = np.hstack([term_model_matrix(t).toarray() for t in terms])
    Lam = dense_lambda(terms, thetas)
    sigma2 = 1.7  # any sigma^2: it cancels in the penalty sigma^2 G^-1
    G = sigma2 * Lam @ Lam.T
    P = sigma2 * np.linalg.inv(G)
    D = np.hstack([X, Z])
    pen = la.block_diag(np.zeros((X.shape[1], X.shape[1])), P)
    coef = np.linalg.solve(D.T @ D + pen, D.T @ y)
    p = X.shape[1]
    beta_r, b_r = coef[:p], coef[p:]
    b = Lam @ got["u"]
    assert_close(got["beta"], beta_r, atol=1e-9 * np.abs(beta_r).max(initial=1.0))
    assert_close(b, b_r, atol=1e-9 * np.abs(b_r).max())

    # the criterion at the solution is r^2, and the solution is a minimum of it
    def crit(beta, b):
        r = y - X @ beta - Z @ b
        return r @ r + b @ np.linalg.solve(Lam @ Lam.T, b)

    best = crit(got["beta"], b)
    assert_close(best, got["factor"].L22[-1, -1] ** 2)
    rng = np.random.default_rng(3)
    for _ in range(5):
        step_beta, step_b = 1e-3 * rng.normal(size=p), 1e-3 * rng.normal(size=b.size)
        assert crit(got["beta"] + step_beta, b + step_b) > best


# ------------------------------------------------------- 3. invariances of a full fit
def simulate(seed=0, n_groups=10):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(4, 11, size=n_groups)
    g = np.repeat(np.arange(n_groups), sizes)
    n = g.size
    x1 = rng.normal(size=n)
    x2 = rng.uniform(-1, 1, size=n)
    b0 = rng.normal(scale=1.5, size=n_groups)
    b1 = rng.normal(scale=0.8, size=n_groups)
    y = 2.0 + 1.0 * x1 - 0.5 * x2 + b0[g] + b1[g] * x1 + rng.normal(scale=0.7, size=n)
    X = pd.DataFrame({"x1": x1, "x2": x2})
    return X, y, g


def check_same_fit(a, b, relabel=None, rtol=1e-5, atol=1e-7, ll_rtol=1e-9):
    """Compare two fits; ``relabel`` maps a's level labels to b's, per factor."""
    assert_close(b.log_likelihood_, a.log_likelihood_, rtol=ll_rtol)
    assert_close(b.intercept_, a.intercept_, rtol=rtol, atol=atol)
    assert_close(b.coef_, a.coef_, rtol=rtol, atol=atol)
    assert_close(b.residual_variance_, a.residual_variance_, rtol=rtol, atol=atol)
    assert_close(b.fixed_effects_cov_, a.fixed_effects_cov_, rtol=rtol, atol=atol)
    assert set(a.group_names_) == set(b.group_names_)
    for name in a.group_names_:
        assert_close(b.random_effects_cov_[name], a.random_effects_cov_[name], rtol=rtol, atol=atol)
        re_a, re_b = a.random_effects_[name], b.random_effects_[name]
        labels = list(re_a.index)
        mapped = [relabel[name][lab] for lab in labels] if relabel else labels
        assert_close(re_b.loc[mapped].to_numpy(), re_a.to_numpy(), rtol=rtol, atol=atol)
        cc_a = a.random_effects_conditional_cov_[name]
        pos_b = b.random_effects_[name].index.get_indexer(mapped)
        assert (pos_b >= 0).all()
        assert_close(b.random_effects_conditional_cov_[name][pos_b], cc_a, rtol=rtol, atol=atol)


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_row_permutation_invariance(method):
    X, y, g = simulate(0)
    est = MixedLinearRegressor(random_slopes=["x1"], method=method).fit(X, y, groups=g)
    perm = np.random.default_rng(1).permutation(len(y))
    est_p = MixedLinearRegressor(random_slopes=["x1"], method=method).fit(
        X.iloc[perm].reset_index(drop=True), y[perm], groups=g[perm]
    )
    check_same_fit(est, est_p)


RELABELS = {
    "int_to_str": lambda v: f"{v}",  # "10" sorts before "2"
    "int_reversed": lambda v: -int(v),
    "int_to_prefixed_reversed_str": lambda v: f"L{99 - v:02d}",
    "int_to_float": lambda v: 0.5 * v + 0.25,
}


@pytest.mark.parametrize("relabel", list(RELABELS))
def test_level_relabelling_invariance(relabel):
    X, y, g = simulate(2, n_groups=12)
    f = RELABELS[relabel]
    est = MixedLinearRegressor(random_slopes=["x1"]).fit(X, y, groups=pd.Series(g, name="g"))
    new = np.array([f(v) for v in g], dtype=object if isinstance(f(0), str) else None)
    est_r = MixedLinearRegressor(random_slopes=["x1"]).fit(X, y, groups=pd.Series(new, name="g"))
    check_same_fit(est, est_r, relabel={"g": {lab: f(lab) for lab in np.unique(g)}})


def test_string_to_string_relabelling_invariance():
    X, y, g = simulate(3, n_groups=8)
    names = np.array(["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"], dtype=object)
    other = np.array(["zeta", "yak", "xi", "wolf", "vole", "urial", "tern", "seal"], dtype=object)
    est = MixedLinearRegressor(random_slopes=["x1"]).fit(X, y, groups=names[g])
    est_r = MixedLinearRegressor(random_slopes=["x1"]).fit(X, y, groups=other[g])
    check_same_fit(est, est_r, relabel={"group": dict(zip(names, other, strict=True))})


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_adding_constant_to_y_shifts_only_intercept(method):
    X, y, g = simulate(4)
    est = MixedLinearRegressor(random_slopes=["x1"], method=method).fit(X, y, groups=g)
    c = 37.5
    est_c = MixedLinearRegressor(random_slopes=["x1"], method=method).fit(X, y + c, groups=g)
    assert_close(est_c.intercept_, est.intercept_ + c, rtol=1e-7)
    shifted = est_c
    shifted.intercept_ = est_c.intercept_ - c
    check_same_fit(est, shifted)


@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize("c", [10.0, -0.25])
def test_scaling_a_feature_random_intercept(method, c):
    """x2 -> c x2 divides its coefficient by c.

    ML: the likelihood of y does not change.  REML: the criterion contains
    log|X'V^-1X|, which gains 2 log|c|, so log_likelihood_ drops by log|c|
    per scaled fixed-effect column.
    """
    X, y, g = simulate(5)
    est = MixedLinearRegressor(method=method).fit(X, y, groups=g)
    Xs = X.copy()
    Xs["x2"] = c * Xs["x2"]
    est_s = MixedLinearRegressor(method=method).fit(Xs, y, groups=g)
    assert_close(est_s.coef_[1], est.coef_[1] / c, rtol=1e-6)
    assert_close(est_s.coef_[0], est.coef_[0], rtol=1e-6)
    assert_close(est_s.intercept_, est.intercept_, rtol=1e-6)
    assert_close(est_s.residual_variance_, est.residual_variance_, rtol=1e-6)
    assert_close(est_s.random_effects_cov_["group"], est.random_effects_cov_["group"], rtol=1e-6)
    assert_close(
        est_s.random_effects_["group"].to_numpy(),
        est.random_effects_["group"].to_numpy(),
        rtol=1e-5,
        atol=1e-8,
    )
    jacobian = 0.0 if method == "ml" else -np.log(abs(c))
    assert_close(est_s.log_likelihood_, est.log_likelihood_ + jacobian, rtol=1e-9)
    # standard errors scale like |c|: t values are invariant up to the sign of c
    assert_close(
        est_s.fixed_effects_["t_value"].to_numpy(),
        est.fixed_effects_["t_value"].to_numpy() * [1.0, 1.0, np.sign(c)],
        rtol=1e-5,
    )


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_scaling_a_feature_with_random_slope(method):
    """x1 -> c x1 with a random slope on x1: Sigma -> D^-1 Sigma D^-1, D = diag(1, c)."""
    X, y, g = simulate(6)
    c = 4.0
    est = MixedLinearRegressor(random_slopes=["x1"], method=method).fit(X, y, groups=g)
    Xs = X.copy()
    Xs["x1"] = c * Xs["x1"]
    est_s = MixedLinearRegressor(random_slopes=["x1"], method=method).fit(Xs, y, groups=g)
    Dinv = np.diag([1.0, 1.0 / c])
    assert_close(est_s.coef_, est.coef_ * np.array([1.0 / c, 1.0]), rtol=1e-5)
    assert_close(
        est_s.random_effects_cov_["group"],
        Dinv @ est.random_effects_cov_["group"] @ Dinv,
        rtol=1e-4,
    )
    # optimizer precision: compare the modes on the scale of the largest one
    b = est.random_effects_["group"].to_numpy() @ Dinv
    assert_close(est_s.random_effects_["group"].to_numpy(), b, rtol=0, atol=1e-5 * np.abs(b).max())
    assert_close(est_s.residual_variance_, est.residual_variance_, rtol=1e-5)
    jacobian = 0.0 if method == "ml" else -np.log(abs(c))
    assert_close(est_s.log_likelihood_, est.log_likelihood_ + jacobian, rtol=1e-9)


def crossed_data(seed, n_a, n_b):
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(n_a), n_b * 2)
    b = np.tile(np.repeat(np.arange(n_b), 2), n_a)
    keep = rng.random(a.size) > 0.1
    a, b = a[keep], b[keep]
    n = a.size
    x = rng.normal(size=n)
    y = (
        1
        + 0.5 * x
        + rng.normal(size=n_a)[a]
        + 0.7 * rng.normal(size=n_b)[b]
        + 0.3 * rng.normal(size=n_a)[a] * x
        + rng.normal(scale=0.5, size=n)
    )
    groups = pd.DataFrame({"a": [f"a{v}" for v in a], "b": [f"b{v}" for v in b]})
    return pd.DataFrame({"x": x}), y, groups


@pytest.mark.filterwarnings("ignore::sklearn_mixed.SingularFitWarning")  # (6, 6) is singular
@pytest.mark.parametrize("n_a, n_b", [(8, 5), (6, 6)])  # (6, 6): tie in number of levels
def test_swapping_crossed_factors(n_a, n_b):
    X, y, groups = crossed_data(8, n_a, n_b)
    slopes = {"a": ["x"]}
    est = MixedLinearRegressor(random_slopes=slopes).fit(X, y, groups=groups[["a", "b"]])
    est_s = MixedLinearRegressor(random_slopes=slopes).fit(X, y, groups=groups[["b", "a"]])
    check_same_fit(est, est_s)
    # theta is listed in the order of the factors given
    swapped = np.concatenate([est.theta_[3:], est.theta_[:3]])
    assert_close(est_s.theta_, swapped, rtol=1e-4, atol=1e-7)


# ----------------------------------------------------- 4. no random effects == OLS
@pytest.mark.parametrize("method", ["ml", "reml"])
def test_no_groups_is_ols(method):
    rng = np.random.default_rng(11)
    n = 57
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 4.0 + rng.normal(size=n)
    est = MixedLinearRegressor(method=method).fit(X, y)
    D = np.column_stack([np.ones(n), X])
    p = D.shape[1]
    coef, *_ = np.linalg.lstsq(D, y, rcond=None)
    rss = np.sum((y - D @ coef) ** 2)
    assert_close(est.intercept_, coef[0])
    assert_close(est.coef_, coef[1:])
    sigma2 = rss / n if method == "ml" else rss / (n - p)
    assert_close(est.residual_variance_, sigma2)
    assert_close(est.fixed_effects_cov_, sigma2 * np.linalg.inv(D.T @ D))
    if method == "ml":
        loglik = -0.5 * n * (np.log(2 * np.pi * sigma2) + 1.0)
        # the Gaussian log-likelihood evaluated directly
        direct = np.sum(-0.5 * np.log(2 * np.pi * sigma2) - (y - D @ coef) ** 2 / (2 * sigma2))
        assert_close(loglik, direct)
    else:
        # restricted likelihood: -1/2 [(n-p) log(2 pi s2) + log|X'X| + RSS/s2]
        loglik = -0.5 * (
            (n - p) * np.log(2 * np.pi * sigma2) + np.linalg.slogdet(D.T @ D)[1] + rss / sigma2
        )
    assert_close(est.log_likelihood_, loglik)
    assert est.group_names_ == []


def test_ml_loglik_at_least_reml_fit_evaluated_by_ml():
    """The ML fit maximizes the likelihood: the REML estimates do no better under ML."""
    X, y, g = simulate(9)
    ml = MixedLinearRegressor(random_slopes=["x1"], method="ml").fit(X, y, groups=g)
    reml = MixedLinearRegressor(random_slopes=["x1"], method="reml").fit(X, y, groups=g)
    codes = np.unique(g, return_inverse=True)[1]
    Xd = np.column_stack([np.ones(len(y)), X.to_numpy()])
    term = make_term("group", codes, np.column_stack([np.ones(len(y)), X["x1"].to_numpy()]))
    ml_at_reml = -0.5 * dense_reference(Xd, y, [term], [reml.theta_])["dev_ml"]
    assert ml.log_likelihood_ >= ml_at_reml - 1e-9 * abs(ml_at_reml)
    reml_at_ml = -0.5 * dense_reference(Xd, y, [term], [ml.theta_])["dev_reml"]
    assert reml.log_likelihood_ >= reml_at_ml - 1e-9 * abs(reml_at_ml)
    # REML inflates sigma^2 relative to ML
    assert reml.residual_variance_ > ml.residual_variance_ * 0.99


# ----------------------------------------------------------------------- 6. optimizer
def optimizer_case(name, seed):
    rng = np.random.default_rng(seed)
    if name == "slope":
        codes = unbalanced_codes(rng, rng.integers(4, 12, size=12))
        n = codes.size
        x = rng.normal(size=n)
        terms = [make_term("g", codes, np.column_stack([np.ones(n), x]))]
        X = np.column_stack([np.ones(n), x])
        y = 1 + x + rng.normal(size=12)[codes] + 0.6 * rng.normal(size=12)[codes] * x
    elif name == "crossed":
        a = rng.integers(0, 10, size=90)
        b = rng.integers(0, 6, size=90)
        a[:10], b[:6] = np.arange(10), np.arange(6)
        n = a.size
        terms = [make_term("a", a, np.ones(n)), make_term("b", b, np.ones(n))]
        X = np.column_stack([np.ones(n), rng.normal(size=n)])
        y = X @ [1.0, 2.0] + rng.normal(size=10)[a] + 0.5 * rng.normal(size=6)[b]
    elif name == "diagonal_k3":
        codes = unbalanced_codes(rng, rng.integers(5, 10, size=10))
        n = codes.size
        z = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n)])
        terms = [make_term("g", codes, z, "diagonal")]
        X = z.copy()
        effects = rng.normal(size=(10, 3)) * [1, 0.5, 0.3]
        y = X @ [1.0, 0.5, -0.5] + np.einsum("ik,ik->i", z, effects[codes])
    elif name == "boundary":
        # no group effect at all for "b": its variance estimate sits on the bound (or near)
        a = rng.integers(0, 8, size=60)
        b = rng.integers(0, 5, size=60)
        a[:8], b[:5] = np.arange(8), np.arange(5)
        n = a.size
        terms = [make_term("a", a, np.ones(n)), make_term("b", b, np.ones(n))]
        X = np.ones((n, 1))
        y = 2 + 1.5 * rng.normal(size=8)[a]
    y = y + rng.normal(scale=0.8, size=len(y))
    return X, y, terms


def dense_deviance_function(X, y, terms, method):
    sizes = [t.structure.n_theta for t in terms]
    splits = np.cumsum(sizes)[:-1]

    def dev(theta):
        ref = dense_reference(X, y, terms, np.split(theta, splits))
        return ref["dev_ml" if method == "ml" else "dev_reml"]

    lower = np.concatenate([t.structure.lower_bounds() for t in terms])
    return dev, lower


@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize(
    "name, seed", [("slope", 0), ("crossed", 1), ("diagonal_k3", 2), ("boundary", 3)]
)
def test_optimum_is_stationary_and_minimal(name, seed, method):
    X, y, terms = optimizer_case(name, seed)
    fit = fit_lmm(X, y, terms, method=method).result
    dev, lower = dense_deviance_function(X, y, terms, method)
    theta = fit.theta
    assert np.all(theta >= lower)
    d0 = dev(theta)
    assert_close(fit.deviance, d0, rtol=1e-10)
    # projected gradient by central (or one-sided at the bound) differences
    h = 1e-5
    on_bound = np.isfinite(lower) & (theta - lower < 10 * h)
    grad = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        if on_bound[i]:
            grad[i] = (dev(theta + e) - d0) / h
        else:
            grad[i] = (dev(theta + e) - dev(theta - e)) / (2 * h)
    interior = ~on_bound
    assert np.all(np.abs(grad[interior]) < 2e-3), (theta, grad)
    assert np.all(grad[on_bound] > -2e-3), (theta, grad)  # pointing into the feasible set
    # and a minimum: random feasible perturbations never do better
    rng = np.random.default_rng(seed)
    for scale in (1e-3, 1e-2, 1e-1, 0.5):
        for _ in range(4):
            t = np.maximum(theta + scale * rng.normal(size=theta.size), lower)
            assert dev(t) >= d0 - 1e-9 * abs(d0), (scale, t, dev(t), d0)
