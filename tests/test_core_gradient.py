"""The analytic gradient of the profiled deviance equals finite differences.

The adjoint in :mod:`sklearn_mixed.core.gradient` walks the blocked Cholesky
factorization backwards; here it is checked against central differences of
the deviance with respect to every element of every term's ``T``, on designs
with one, two and three terms (k = 1, 2, 3; crossed, random slopes), for ML
and REML.
"""

import numpy as np
import pytest

import sklearn_mixed.core.problem as problem_module
from sklearn_mixed.core.cholesky import block_diagonal, blocked_cholesky, relative_factor_matrix
from sklearn_mixed.core.crossprod import cross_products
from sklearn_mixed.core.deviance import profiled_deviance
from sklearn_mixed.core.gradient import relative_factor_gradients
from sklearn_mixed.core.grouping import RandomTerm
from sklearn_mixed.core.problem import MixedModelProblem

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


def _deviance(cp, T_blocks, terms, method):
    Lambda2 = relative_factor_matrix(T_blocks[1:], [t.n_levels for t in terms[1:]])
    factor = blocked_cholesky(cp, T_blocks[:1], Lambda2)
    return profiled_deviance(factor, cp.n, cp.p, method), factor, Lambda2


@pytest.mark.parametrize("method", ["ml", "reml"])
@pytest.mark.parametrize("design", list(DESIGNS))
def test_gradient_matches_central_differences(design, method):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(N, 2))
    X = np.column_stack([np.ones(N), x])
    y = X @ [1.0, 0.5, -0.3] + rng.normal(size=N)
    terms = [_term(rng, x, f"g{i}", m, k) for i, (m, k) in enumerate(DESIGNS[design])]
    cp = cross_products(X, y, terms[:1], terms[1:])
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
    grads = relative_factor_gradients(cp, factor, T_blocks[0], Lambda2, sizes, products, method)
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
        monkeypatch.setattr(problem_module, "DENSE_SIZE_LIMIT", 0)
    rng = np.random.default_rng(11)
    x = rng.normal(size=(N, 2))
    X = np.column_stack([np.ones(N), x])
    y = X @ [1.0, 0.5, -0.3] + rng.normal(size=N)
    terms = [_term(rng, x, f"g{i}", m, k) for i, (m, k) in enumerate(PROBLEMS[design])]
    problem = MixedModelProblem(X, y, terms, method)
    assert problem.has_gradient
    assert (problem._small is None) == (path == "blocked")
    for theta in (rng.uniform(0.2, 1.5, problem.layout.start.size), problem.layout.start):
        theta = theta.copy()
        if design.startswith("intercepts") and theta.size > 1:
            theta[1] = 0.0  # on the boundary
        _, grad = problem.value_and_gradient(theta)
        h = 1e-6
        for i in range(theta.size):
            step = np.zeros_like(theta)
            step[i] = h
            fd = (problem.deviance(theta + step) - problem.deviance(theta - step)) / (2 * h)
            assert grad[i] == pytest.approx(fd, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("method", ["ml", "reml"])
def test_dense_and_blocked_deviance_agree(method, monkeypatch):
    """The small-problem dense system and the blocked factor give one deviance."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, 2))
    X = np.column_stack([np.ones(N), x])
    y = X @ [1.0, 0.5, -0.3] + rng.normal(size=N)
    terms = [_term(rng, x, "g0", 30, 2), _term(rng, x, "g1", 7, 1)]
    dense = MixedModelProblem(X, y, terms, method)
    monkeypatch.setattr(problem_module, "DENSE_SIZE_LIMIT", 0)
    blocked = MixedModelProblem(X, y, terms, method)
    for theta in rng.uniform(0.1, 2.0, (5, dense.layout.start.size)):
        assert dense.deviance(theta) == pytest.approx(blocked.deviance(theta), rel=1e-10)
