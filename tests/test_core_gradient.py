"""The analytic gradient of the profiled deviance equals finite differences.

The adjoint in :mod:`sklearn_mixed.core.gradient` walks the blocked Cholesky
factorization backwards; here it is checked against central differences of
the deviance with respect to every element of every term's ``T``, on designs
with one, two and three terms (k = 1, 2, 3; crossed, random slopes), for ML
and REML.
"""

import numpy as np
import pytest

import sklearn_mixed.core.model as model_module
from sklearn_mixed.core.cholesky import block_diagonal, blocked_cholesky, relative_factor_matrix
from sklearn_mixed.core.crossprod import blocked_cross_products
from sklearn_mixed.core.deviance import Criterion, profiled_deviance
from sklearn_mixed.core.gradient import relative_factor_gradients
from sklearn_mixed.core.grouping import RandomTerm
from sklearn_mixed.core.model import LinearMixedModel
from sklearn_mixed.core.reduction import reduce_rows
from sklearn_mixed.core.rows import intercept_column

N = 240


def _term(rng, x, name, n_levels, k):
    codes = rng.integers(0, n_levels, N)
    codes[:n_levels] = np.arange(n_levels)  # every level observed
    covariates = np.column_stack([np.ones(N)] + [x[:, i] for i in range(k - 1)])
    return RandomTerm(name, codes, np.arange(n_levels), covariates, tuple(range(k)))


DESIGNS = {
    "one term, k=2": [(30, 2)],
    "two crossed terms, k=2 and k=2": [(30, 2), (8, 2)],
    "three terms, k=1, 3, 1": [(40, 1), (7, 3), (5, 1)],
    "two intercepts": [(25, 1), (6, 1)],
}


def _model(X, y, terms, method):
    """The model as ``fit_lmm`` builds it (centred on X's intercept column)."""
    reduction = reduce_rows(X, y, terms, intercept=intercept_column(X))
    return LinearMixedModel(reduction, terms, method=method)


def central_differences(model, theta, h=1e-6):
    """The deviance's gradient in theta by central differences of step ``h``
    (truncation ~h^2, rounding ~1e-16 |d| / h: both below the tests' rel. 1e-5)."""
    grad = np.empty(theta.size)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = h
        grad[i] = (model.deviance(theta + step) - model.deviance(theta - step)) / (2 * h)
    return grad


def _criterion(cp, method):
    return Criterion(cp.n, cp.p, method == "reml")


def _deviance(cp, T_blocks, terms, method):
    Lambda2 = relative_factor_matrix(T_blocks[1:], [t.n_levels for t in terms[1:]])
    factor = blocked_cholesky(cp, T_blocks[:1], Lambda2)
    return profiled_deviance(factor, _criterion(cp, method)), factor, Lambda2


@pytest.mark.parametrize("method", ["ml", "reml"])
@pytest.mark.parametrize("design", list(DESIGNS))
def test_gradient_matches_central_differences(design, method):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(N, 2))
    X = np.column_stack([np.ones(N), x])
    y = X @ [1.0, 0.5, -0.3] + rng.normal(size=N)
    terms = [_term(rng, x, f"g{i}", m, k) for i, (m, k) in enumerate(DESIGNS[design])]
    reduction = reduce_rows(X, y, terms, intercept=0)
    cp = blocked_cross_products(reduction, [0], list(range(1, len(terms))))
    T_blocks = [np.tril(rng.normal(size=(t.n_coef,) * 2)) + np.eye(t.n_coef) for t in terms]
    _, factor, Lambda2 = _deviance(cp, T_blocks, terms, method)
    products = (None, None)
    if cp.q_dense:
        later_Z = cp.closed[0].later_Z
        Lambda1 = block_diagonal(
            np.broadcast_to(T_blocks[0], (terms[0].n_levels,) + T_blocks[0].shape)
        )
        products = ((Lambda2.T @ later_Z).tocsr(), (later_Z @ Lambda1).tocsr())
    sizes = [(t.n_levels, t.n_coef) for t in terms[1:]]
    grads = relative_factor_gradients(
        cp, factor, T_blocks[0], Lambda2, sizes, products, _criterion(cp, method)
    )
    h = 1e-6
    for i, T in enumerate(T_blocks):
        for a, b in zip(*np.tril_indices(T.shape[0]), strict=True):
            plus = [t.copy() for t in T_blocks]
            minus = [t.copy() for t in T_blocks]
            plus[i][a, b] += h
            minus[i][a, b] -= h
            fd = (
                _deviance(cp, plus, terms, method)[0] - _deviance(cp, minus, terms, method)[0]
            ) / (2 * h)
            assert grads[i][a, b] == pytest.approx(fd, rel=1e-5, abs=1e-5)


PROBLEMS = {
    "intercepts, two crossed": [(30, 1), (8, 1)],
    "intercepts, three crossed": [(40, 1), (7, 1), (5, 1)],
    "intercepts, one factor": [(25, 1)],
    "slope and intercept": [(30, 2), (6, 1)],
}


@pytest.mark.parametrize("path", ["dense", "blocked"])
@pytest.mark.parametrize("method", ["ml", "reml"])
@pytest.mark.parametrize("design", list(PROBLEMS))
def test_problem_gradient_matches_central_differences(design, method, path, monkeypatch):
    """The gradient the optimizer uses (small problems: the dense system;
    otherwise the trace formula for intercepts only, the adjoint for slopes)
    equals central differences of the deviance in theta, including at
    theta_f = 0 where an intercept-only deviance is even."""
    if path == "blocked":
        monkeypatch.setattr(model_module, "DENSE_SIZE_LIMIT", 0)
    rng = np.random.default_rng(11)
    x = rng.normal(size=(N, 2))
    X = np.column_stack([np.ones(N), x])
    y = X @ [1.0, 0.5, -0.3] + rng.normal(size=N)
    terms = [_term(rng, x, f"g{i}", m, k) for i, (m, k) in enumerate(PROBLEMS[design])]
    problem = _model(X, y, terms, method)
    assert problem.has_gradient
    assert problem.is_small == (path == "dense")
    # a random theta, and the start the fit uses (moments or the levels' own fits)
    for theta in (rng.uniform(0.2, 1.5, problem.layout.start.size), problem.start()):
        theta = theta.copy()
        if design.startswith("intercepts") and theta.size > 1:
            theta[1] = 0.0  # on the boundary
        _, grad = problem.value_and_gradient(theta)
        assert grad == pytest.approx(central_differences(problem, theta), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_dense_and_blocked_deviance_agree(method, monkeypatch):
    """The small-problem dense system and the blocked factor give one deviance."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, 2))
    X = np.column_stack([np.ones(N), x])
    y = X @ [1.0, 0.5, -0.3] + rng.normal(size=N)
    terms = [_term(rng, x, "g0", 30, 2), _term(rng, x, "g1", 7, 1)]
    dense = _model(X, y, terms, method)
    monkeypatch.setattr(model_module, "DENSE_SIZE_LIMIT", 0)
    blocked = _model(X, y, terms, method)
    assert dense.is_small and not blocked.is_small
    for theta in rng.uniform(0.1, 2.0, (5, dense.layout.start.size)):
        assert dense.deviance(theta) == pytest.approx(blocked.deviance(theta), rel=1e-10)


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_gradient_with_precomputed_pairs(method, monkeypatch):
    """Sparse crossing (each of 300 levels meets 2-3 of 120 others): the closed
    factor's products N_aj N_bj are precomputed, and the value and gradient
    still equal the dense system's and central differences."""
    rng = np.random.default_rng(5)
    n_a, n_b, n = 300, 120, 900
    a = np.repeat(np.arange(n_a), 3)
    b = (a // 3 + rng.integers(0, 3, n)) % n_b
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = X @ [1.0, 0.5] + rng.normal(size=n_a)[a] + rng.normal(size=n_b)[b] + rng.normal(size=n)
    one = np.ones((n, 1))
    terms = [
        RandomTerm("a", a, np.arange(n_a), one, ("(Intercept)",)),
        RandomTerm("b", b, np.arange(n_b), one, ("(Intercept)",)),
    ]
    monkeypatch.setattr(model_module, "DENSE_SIZE_LIMIT", 0)
    problem = _model(X, y, terms, method)
    assert problem.cp.closed[0].pairs is not None
    theta = np.array([0.8, 0.6])
    value, grad = problem.value_and_gradient(theta)
    h = 1e-6
    for i in range(2):
        step = np.zeros(2)
        step[i] = h
        fd = (problem.deviance(theta + step) - problem.deviance(theta - step)) / (2 * h)
        assert grad[i] == pytest.approx(fd, rel=1e-5, abs=1e-5)
    monkeypatch.setattr(model_module, "DENSE_SIZE_LIMIT", 10**4)
    dense = _model(X, y, terms, method)
    assert dense.is_small
    assert value == pytest.approx(dense.deviance(theta), rel=1e-11)


def test_weighted_gram_matches_explicit_products():
    import scipy.sparse as sp

    from sklearn_mixed.core.pairs import WeightedGram

    rng = np.random.default_rng(2)
    N = sp.random(40, 150, density=0.1, random_state=3, format="csr")
    N.data = np.round(N.data * 4) + 1
    gram = WeightedGram(N)
    w = rng.random(150)
    np.testing.assert_allclose(gram(w), (N @ sp.diags(w) @ N.T).toarray(), atol=1e-12)
    S = rng.normal(size=(40, 40))
    S = S + S.T
    dense = N.toarray()
    np.testing.assert_allclose(
        gram.quadratic_forms(S), np.einsum("aj,ab,bj->j", dense, S, dense), atol=1e-10
    )


def test_conditional_variances_with_precomputed_pairs(monkeypatch):
    """The closed factor's conditional variances from the precomputed products
    equal the generic selected inversion."""
    from sklearn_mixed.core.deviance import conditional_covariance_blocks

    rng = np.random.default_rng(8)
    n_a, n_b, n = 300, 120, 900
    a = np.repeat(np.arange(n_a), 3)
    b = (a // 3 + rng.integers(0, 3, n)) % n_b
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.normal(size=n)
    one = np.ones((n, 1))
    terms = [
        RandomTerm("a", a, np.arange(n_a), one, ("(Intercept)",)),
        RandomTerm("b", b, np.arange(n_b), one, ("(Intercept)",)),
    ]
    monkeypatch.setattr(model_module, "DENSE_SIZE_LIMIT", 0)
    problem = _model(X, y, terms, "reml")
    pairs = problem.cp.closed[0].pairs
    assert pairs is not None
    factor, _ = problem.factorize(np.array([0.7, 1.3]))
    fast = conditional_covariance_blocks(factor, [(n_b, 1)], pairs)
    generic = conditional_covariance_blocks(factor, [(n_b, 1)])
    for got, expected in zip(fast, generic, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_nested_pair_kernel_matches_blocked_factor_and_differences(method, monkeypatch):
    """Children nested in schools, slopes on both (egsingle's shape): the pair
    kernel's shortcut for one pair per level (core.paired) gives the deviance
    of the general blocked factor and a gradient equal to central differences."""
    monkeypatch.setattr(model_module, "DENSE_SIZE_LIMIT", 0)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(N, 2))
    X = np.column_stack([np.ones(N), x])
    y = X @ [1.0, 0.5, -0.3] + rng.normal(size=N)
    child = np.repeat(np.arange(60), N // 60)
    school = child // 6  # 10 schools of 6 children
    covariates = np.column_stack([np.ones(N), x[:, 0]])
    terms = [RandomTerm(name, codes, np.arange(codes.max() + 1), covariates, (0, 1))
             for name, codes in (("child", child), ("school", school))]  # fmt: skip
    paired = _model(X, y, terms, method)
    assert paired._paired is not None and paired._paired._one_per_level
    monkeypatch.setattr(model_module, "PAIR_BUDGET", 0)
    blocked = _model(X, y, terms, method)
    assert blocked._paired is None
    for theta in (rng.uniform(0.2, 1.5, 6), paired.start()):
        value, grad = paired.value_and_gradient(theta)
        assert value == pytest.approx(blocked.deviance(theta), rel=1e-12)
        assert grad == pytest.approx(central_differences(paired, theta), rel=1e-5, abs=1e-5)
