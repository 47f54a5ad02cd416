"""Nested factors keep their sparsity: chains of nested terms are eliminated
level by level, and the result equals the dense elimination of the outer terms."""

import numpy as np
import pytest

import sklearn_mixed.core.layout as layout_module
from sklearn_mixed.core import RandomTerm, fit_lmm
from sklearn_mixed.core.layout import elimination_order
from sklearn_mixed.core.model import LinearMixedModel
from sklearn_mixed.core.reduction import reduce_rows


def _term(name, codes, covariates):
    return RandomTerm(name, codes, np.arange(codes.max() + 1), covariates, ("(Intercept)",))


def _nested_design(seed, n_outer=600, per_outer=3, per_inner=3):
    """(1 | outer/inner) plus a crossed factor, lme4's (1|a/b) + (1|c)."""
    rng = np.random.default_rng(seed)
    inner = np.repeat(np.arange(n_outer * per_outer), per_inner)
    outer = inner // per_outer
    n = inner.size
    crossed = rng.integers(0, 5, n)
    one = np.ones((n, 1))
    y = (
        1.0
        + rng.normal(0, 1.0, n_outer)[outer]
        + rng.normal(0, 0.7, n_outer * per_outer)[inner]
        + rng.normal(0, 0.3, 5)[crossed]
        + rng.normal(0, 0.5, n)
    )
    X = np.column_stack([one, rng.normal(size=n)])
    terms = [_term("outer", outer, one), _term("inner", inner, one), _term("crossed", crossed, one)]
    return X, y, terms


def _reduce(X, y, terms):
    return reduce_rows(X, y, terms, intercept=0)


def test_elimination_order_closes_nesting_chains():
    X, y, terms = _nested_design(0, n_outer=40)
    reduction = _reduce(X, y, terms)
    assert elimination_order(reduction, dense_limit=0) == ([1, 0], [2])
    assert elimination_order(reduction, dense_limit=41) == ([1], [0, 2])  # small outer: dense
    # crossed factors are never closed after the first
    assert elimination_order(_reduce(X, y, [terms[2], terms[1]]), dense_limit=0) == ([1], [0])


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_large_nested_design_uses_closed_chain_and_matches_dense(method, monkeypatch):
    X, y, terms = _nested_design(1)
    model = LinearMixedModel(_reduce(X, y, terms), terms, method=method)
    assert model.plan == ([1, 0], [2])  # 600 outer levels
    sparse = fit_lmm(X, y, terms, method=method).result
    monkeypatch.setattr(layout_module, "DENSE_LIMIT", 10**9)
    model = LinearMixedModel(_reduce(X, y, terms), terms, method=method)
    assert model.plan == ([1], [0, 2])
    dense = fit_lmm(X, y, terms, method=method).result
    assert sparse.converged and dense.converged
    assert sparse.deviance == pytest.approx(dense.deviance, abs=1e-6)
    np.testing.assert_allclose(sparse.theta, dense.theta, rtol=1e-3)
    np.testing.assert_allclose(sparse.beta, dense.beta, rtol=1e-5)
    for b_sparse, b_dense in zip(sparse.b, dense.b, strict=True):
        np.testing.assert_allclose(b_sparse, b_dense, atol=1e-4 * np.abs(b_dense).max())
    for c_sparse, c_dense in zip(sparse.conditional_cov, dense.conditional_cov, strict=True):
        np.testing.assert_allclose(c_sparse, c_dense, rtol=1e-3)
