"""The pattern-assembled Schur complement of crossed random intercepts
(:mod:`sklearn_mixed.core.schur`) and the moment start (:mod:`sklearn_mixed.core.start`).

A sparse crossing (each of 300 levels of ``a`` meets 2-3 of 120 levels of
``b``, and ``b`` is nested in a 6-level ``c``) makes the cross-products store
the pairs of ``b`` levels, so the blocked factor takes the pattern path; its
factor, gradient and conditional variances must equal the generic dense path
and central differences.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from test_core_gradient import central_differences

import sklearn_mixed.core.model as model_module
from sklearn_mixed.core.cholesky import _dense_schur_complement
from sklearn_mixed.core.deviance import conditional_covariance_blocks
from sklearn_mixed.core.grouping import RandomTerm
from sklearn_mixed.core.model import LinearMixedModel
from sklearn_mixed.core.pairs import WeightedGram
from sklearn_mixed.core.reduction import reduce_rows
from sklearn_mixed.core.rows import intercept_column
from sklearn_mixed.core.start import intercept_moment_start, intercept_moments

N_A, N_B, N_C = 300, 120, 6


def _crossed_design(rng, n_per=3):
    n = N_A * n_per
    a = np.repeat(np.arange(N_A), n_per)
    b = (a // 3 + rng.integers(0, 3, n)) % N_B
    c = b % N_C
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = (
        X @ [1.0, 0.5]
        + rng.normal(size=N_A)[a]
        + 0.7 * rng.normal(size=N_B)[b]
        + 0.5 * rng.normal(size=N_C)[c]
        + rng.normal(size=n)
    )
    one = np.ones((n, 1))
    terms = [
        RandomTerm(name, codes, np.arange(m), one, ("(Intercept)",))
        for name, codes, m in (("a", a, N_A), ("b", b, N_B), ("c", c, N_C))
    ]
    return X, y, terms


def _intercepts(codes_list):
    """Random intercepts on the given level codes."""
    one = np.ones((len(codes_list[0]), 1))
    return [
        RandomTerm(f"f{i}", codes, np.arange(codes.max() + 1), one, ("(Intercept)",))
        for i, codes in enumerate(codes_list)
    ]


def _reduce(X, y, terms):
    """The reduction ``fit_lmm`` makes (centred on X's intercept column)."""
    return reduce_rows(X, y, terms, intercept=intercept_column(X))


@pytest.fixture
def blocked(monkeypatch):
    monkeypatch.setattr(model_module, "DENSE_SIZE_LIMIT", 0)


def _problem(method, seed=5):
    X, y, terms = _crossed_design(np.random.default_rng(seed))
    problem = LinearMixedModel(_reduce(X, y, terms), terms, method=method)
    assert problem.cp.schur is not None  # the pattern path is taken
    return problem


def _generic_L22(problem, theta):
    """``L22`` from the dense Schur complement (no pattern)."""
    factor, T = problem.factorize(theta)
    lam = problem._dense_lambda(T)
    S = _dense_schur_complement(problem.cp, lam, list(factor.stages))
    return np.linalg.cholesky(S), factor


@pytest.mark.parametrize("theta", [[0.8, 0.6, 0.4], [1.3, 0.0, 0.9], [0.2, 2.0, 0.0]])
def test_pattern_factor_equals_dense_schur_complement(blocked, theta):
    problem = _problem("ml")
    expected, factor = _generic_L22(problem, np.array(theta))
    np.testing.assert_allclose(factor.L22, expected, rtol=1e-10, atol=1e-10)
    assert np.all(np.triu(factor.L22, 1) == 0.0)


@pytest.mark.parametrize("method", ["ml", "reml"])
@pytest.mark.parametrize("theta", [[0.8, 0.6, 0.4], [1.1, 0.0, 0.7], [0.5, 1.2, 0.0]])
def test_pattern_gradient_matches_central_differences(blocked, method, theta):
    problem = _problem(method)
    theta = np.array(theta)
    value, grad = problem.value_and_gradient(theta)
    assert value == pytest.approx(problem.deviance(theta), rel=1e-12)
    assert grad == pytest.approx(central_differences(problem, theta), rel=1e-5, abs=1e-5)


def test_pattern_deviance_equals_dense_system(blocked, monkeypatch):
    blocked_problem = _problem("reml")
    monkeypatch.setattr(model_module, "DENSE_SIZE_LIMIT", 10**4)
    X, y, terms = _crossed_design(np.random.default_rng(5))
    dense_problem = LinearMixedModel(_reduce(X, y, terms), terms, method="reml")
    assert dense_problem.is_small
    for theta in ([0.8, 0.6, 0.4], [0.3, 1.7, 0.05]):
        theta = np.array(theta)
        assert blocked_problem.deviance(theta) == pytest.approx(
            dense_problem.deviance(theta), rel=1e-11
        )


def test_conditional_variances_of_dense_terms_from_potri(blocked):
    """Diagonal blocks of ``S_D^-1`` equal the column norms of ``L_D^-1``."""
    problem = _problem("ml")
    factor, _ = problem.factorize(np.array([0.7, 1.3, 0.5]))
    q = factor.q_dense
    L_D_inv = np.linalg.inv(factor.L22[:q, :q])
    norms = np.sum(L_D_inv**2, axis=0)
    blocks = conditional_covariance_blocks(factor, [(N_B, 1), (N_C, 1)], problem.cp.closed[0].pairs)
    np.testing.assert_allclose(blocks[1][:, 0, 0], norms[:N_B], rtol=1e-10)
    np.testing.assert_allclose(blocks[2][:, 0, 0], norms[N_B:], rtol=1e-10)


def test_weighted_gram_with_empty_and_unequal_columns():
    rng = np.random.default_rng(4)
    dense = np.zeros((30, 12))
    for j, count in enumerate([0, 1, 2, 5, 0, 3, 3, 7, 1, 2, 4, 30]):
        rows = rng.choice(30, size=count, replace=False)
        dense[rows, j] = rng.integers(1, 4, size=count)
    N = sp.csr_matrix(dense)
    gram = WeightedGram(N)
    w = rng.random(12)
    np.testing.assert_allclose(gram(w), dense @ np.diag(w) @ dense.T, atol=1e-12)
    assert np.all(gram.a >= gram.b)
    S = rng.normal(size=(30, 30))
    S = S + S.T
    r = rng.random(30)
    expected = np.einsum("aj,ab,bj->j", dense * r[:, None], S, dense * r[:, None])
    np.testing.assert_allclose(gram.quadratic_forms(np.tril(S), r), expected, atol=1e-10)


def _moments_from_rows(X, y, codes_list):
    """The moment equations of :mod:`sklearn_mixed.core.start`, from the rows:
    ``V_f`` the within-level sum of squares of the OLS residuals (``V_0`` about
    their mean), ``E V_f = (n - m_f) sigma^2 + sum_{g != f} sigma_g^2 (n -
    sum_{j, l} c_jl^2 / n_j)``, solved by least squares."""
    n, F = len(y), len(codes_list)
    r = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    A, V = np.zeros((F + 1, F + 1)), np.empty(F + 1)
    for f, codes in enumerate(codes_list):
        levels, level, n_j = np.unique(codes, return_inverse=True, return_counts=True)
        means = np.bincount(level, weights=r) / n_j
        V[f] = np.sum((r - means[level]) ** 2)
        A[f, F] = n - levels.size
        for g, other in enumerate(codes_list):
            if g != f:
                pairs = np.unique(np.column_stack([level, other]), axis=0, return_counts=True)
                A[f, g] = n - np.sum(pairs[1] ** 2.0 / n_j[pairs[0][:, 0]])
    V[F] = np.sum((r - r.mean()) ** 2)
    A[F, F] = n - 1.0
    for g, codes in enumerate(codes_list):
        A[F, g] = n - np.sum(np.unique(codes, return_counts=True)[1] ** 2.0) / n
    return np.linalg.lstsq(A, V, rcond=None)[0]


def test_moment_equations_equal_a_computation_from_rows():
    """The moments from the reduction's sums and sparse cross-tabulations (with
    unused levels: ``c * 100``) equal the same equations evaluated on the rows,
    with a covariate varying within the levels."""
    rng = np.random.default_rng(1)
    n = 3000
    a, b, c = rng.integers(0, 60, n), rng.integers(0, 25, n), rng.integers(0, 8, n)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = X @ [1.0, 2.0] + rng.normal(size=60)[a] + 0.5 * rng.normal(size=25)[b]
    y += 0.3 * rng.normal(size=8)[c] + rng.normal(size=n)
    codes_list = [a, b, 100 * c]
    got = intercept_moments(_reduce(X, y, _intercepts(codes_list)))
    np.testing.assert_allclose(got, _moments_from_rows(X, y, codes_list), rtol=1e-9)


def test_moment_start_recovers_the_variances():
    """On a large crossed design the moments land near the true theta."""
    rng = np.random.default_rng(0)
    n, m_a, m_b = 40_000, 400, 200
    a, b = rng.integers(0, m_a, n), rng.integers(0, m_b, n)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = X @ [2.0, 1.0] + 0.8 * rng.normal(size=m_a)[a] + 0.4 * rng.normal(size=m_b)[b]
    y += rng.normal(size=n)
    theta = intercept_moment_start(_reduce(X, y, _intercepts([a, b])))
    np.testing.assert_allclose(theta, [0.8, 0.4], rtol=0.15)


def test_moment_start_floor_and_fallback():
    rng = np.random.default_rng(2)
    n = 200
    g = rng.integers(0, 10, n)
    X = np.ones((n, 1))
    terms = _intercepts([g])
    y = rng.normal(size=n)  # no group effect: the estimate is floored, not 0
    theta = intercept_moment_start(_reduce(X, y, terms))
    assert theta.shape == (1,) and theta[0] >= 0.1 - 1e-12
    assert intercept_moment_start(_reduce(X, np.full(n, 3.0), terms)) is None  # exact fit
