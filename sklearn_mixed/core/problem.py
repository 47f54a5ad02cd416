"""A mixed model's data, reduced once, as a function of theta.

:class:`MixedModelProblem` holds the cross-products and the elimination plan,
and maps ``theta`` to the blocked factor (:mod:`.cholesky`), the profiled
deviance (:mod:`.deviance`) and its gradient (:mod:`.gradient`).
"""

import functools

import numpy as np

from .cholesky import block_diagonal, blocked_cholesky, relative_factor_matrix
from .covariance import free_positions, n_theta, relative_factor, theta_lower_bounds, theta_start
from .crossprod import cross_products
from .dense import DENSE_SIZE_LIMIT, DenseDeviance, dense_gram
from .deviance import profiled_deviance
from .gradient import intercept_gradients, relative_factor_gradients
from .grouping import is_nested_in
from .start import intercept_moment_start, slope_moment_start

__all__ = ["MixedModelProblem", "ThetaLayout", "elimination_order"]


# A nesting term with fewer random-effect columns than this stays in the dense
# block: a small dense Cholesky (with the analytic gradient) beats sparse
# bookkeeping; beyond it, the dense block would grow with the square of its size.
DENSE_LIMIT = 500


def elimination_order(terms, dense_limit=None):
    """Split terms into closed (eliminated level by level) and dense ones.

    The term with the most levels comes first; then, while some remaining
    term with at least ``dense_limit`` columns has every closed term nested in
    it, the one with the most levels joins them (nested factors: ``batch:cask``
    then ``batch``), so that nested factors keep their sparsity.  The rest
    (crossed factors, and small outer factors) are dense.

    Returns
    -------
    closed, dense : list of int
        Indices into ``terms``.
    """
    if dense_limit is None:
        dense_limit = DENSE_LIMIT
    remaining = sorted(range(len(terms)), key=lambda i: (-terms[i].n_levels, -terms[i].n_coef, i))
    closed = [remaining.pop(0)]
    while True:
        nesting = [
            i
            for i in remaining
            if terms[i].n_columns >= dense_limit
            and all(is_nested_in(terms[c].codes, terms[i].codes) for c in closed)
        ]
        if not nesting:
            return closed, remaining
        closed.append(nesting[0])
        remaining.remove(nesting[0])


def _small_problem(X, y, terms, method):
    """The dense system of a model with few random effects, or None."""
    n, p = X.shape
    q = sum(t.n_columns for t in terms)
    if q + p + 1 > DENSE_SIZE_LIMIT:
        return None
    G = dense_gram(X, y, terms)
    return DenseDeviance(G, [(t.n_levels, t.n_coef) for t in terms], n, p, method)


class ThetaLayout:
    """Where each term's parameters sit in the theta vector (user order)."""

    def __init__(self, terms):
        self.terms = terms
        sizes = [n_theta(t.n_coef, t.structure) for t in terms]
        self.slices = np.split(np.arange(sum(sizes)), np.cumsum(sizes)[:-1])
        self.start = np.concatenate(
            [theta_start(t.n_coef, t.structure) for t in terms] or [np.zeros(0)]
        )
        self.lower = np.concatenate(
            [theta_lower_bounds(t.n_coef, t.structure) for t in terms] or [np.zeros(0)]
        )

    def factors(self, theta):
        """Relative factor ``T`` per term."""
        return [
            relative_factor(theta[s], t.n_coef, t.structure)
            for t, s in zip(self.terms, self.slices, strict=True)
        ]

    def theta_gradient(self, T_grads):
        """dd/dtheta from dd/dT per term: the free elements of each T."""
        out = np.empty(self.start.size)
        for t, s, g in zip(self.terms, self.slices, T_grads, strict=True):
            rows, cols = free_positions(t.n_coef, t.structure)
            out[s] = g[rows, cols]
        return out


class MixedModelProblem:
    """Cross-products and elimination plan of ``y ~ X + terms``; theta -> factor.

    Parameters
    ----------
    X : ndarray of shape (n, p)
    y : ndarray of shape (n,)
    terms : list of RandomTerm
        At least one term.
    method : {"reml", "ml"}
    """

    def __init__(self, X, y, terms, method):
        self.n, self.p = X.shape
        self.method = method
        self.terms = terms
        self.closed, self.dense = elimination_order(terms)
        self.order = self.closed + self.dense  # elimination order
        self.layout = ThetaLayout(terms)
        self._intercepts_only = all(t.n_coef == 1 for t in terms)
        if self._intercepts_only:  # moment estimates: about half the evaluations
            start = intercept_moment_start(
                X, y, [t.codes for t in terms], [t.n_levels for t in terms]
            )
            if start is not None:
                self.layout.start = start
        else:  # random slopes: from the levels' own least-squares fits
            start = slope_moment_start(y, terms, self.layout, method)
            if start is not None:
                self.layout.start = start
        self._data = (X, y)
        self._last_factor = None  # (theta, factor, T) of the last factorization
        self._small = _small_problem(X, y, terms, method)

    @functools.cached_property
    def cp(self):
        """The blocked cross-products (formed on first use: small problems
        work on the dense system alone)."""
        X, y = self._data
        closed = [self.terms[i] for i in self.closed]
        return cross_products(X, y, closed, [self.terms[i] for i in self.dense])

    @property
    def is_small(self):
        """Whether the whole system is dense (:mod:`.dense`)."""
        return self._small is not None

    @property
    def dense_size(self):
        """Order of the dense block each evaluation factors."""
        if self._small is not None:
            return self._small.G.shape[0]
        return self.cp.q_dense + self.p + 1

    def dense_solution(self, theta):
        """The :class:`~.dense.DenseSolution` at theta of a small problem."""
        return self._small.solution(self.layout.factors(theta))

    @property
    def has_gradient(self):
        """Analytic gradient: small problems, or one closed term (the others dense)."""
        return self._small is not None or len(self.closed) == 1

    def factorize(self, theta):
        """Blocked factor at theta, and ``T`` per term (user order).

        The last one is kept: the optimum is usually the point evaluated last.
        """
        last = self._last_factor
        if last is not None and np.array_equal(last[0], theta):
            return last[1], last[2]
        T = self.layout.factors(theta)
        factor = blocked_cholesky(
            cp=self.cp, T_closed=[T[i] for i in self.closed], Lambda_dense=self._dense_lambda(T)
        )
        self._last_factor = (np.array(theta, dtype=float), factor, T)
        return factor, T

    def _dense_lambda(self, T):
        return relative_factor_matrix(
            [T[i] for i in self.dense], [self.terms[i].n_levels for i in self.dense]
        )

    def deviance(self, theta):
        if self._small is not None:
            return self._small.deviance(self.layout.factors(theta))
        return profiled_deviance(self.factorize(theta)[0], self.n, self.p, self.method)

    def value_and_gradient(self, theta):
        """Deviance and its analytic gradient (when :attr:`has_gradient`)."""
        if self._small is not None:
            value, grads = self._small.value_and_gradient(self.layout.factors(theta))
            return value, self.layout.theta_gradient(grads)
        factor, T = self.factorize(theta)
        value = profiled_deviance(factor, self.n, self.p, self.method)
        if self._intercepts_only:
            thetas = [T[i][0, 0] for i in self.order]
            dense_sizes = [self.terms[i].n_levels for i in self.dense]
            grads = intercept_gradients(self.cp, factor, thetas, dense_sizes, self.method)
            return value, self._theta_gradient([np.array([[g]]) for g in grads])
        T1 = T[self.closed[0]]
        Lambda2 = self._dense_lambda(T)
        products = (None, None)
        if self.cp.q_dense:
            later_Z = self.cp.closed[0].later_Z
            Lambda1 = block_diagonal(
                np.broadcast_to(T1, (later_Z.shape[1] // T1.shape[0],) + T1.shape)
            )
            products = ((Lambda2.T @ later_Z).tocsr(), (later_Z @ Lambda1).tocsr())
        sizes = [(self.terms[i].n_levels, self.terms[i].n_coef) for i in self.dense]
        grads = relative_factor_gradients(
            self.cp, factor, T1, Lambda2, sizes, products, self.method
        )
        return value, self._theta_gradient(grads)

    def _theta_gradient(self, grads):
        """dd/dtheta from dd/dT given per term in elimination order."""
        user_grads = [None] * len(self.order)
        for pos, term_index in enumerate(self.order):
            user_grads[term_index] = grads[pos]
        return self.layout.theta_gradient(user_grads)

    def singular(self, theta, tol):
        """lme4's isSingular: a bounded element of theta below ``tol``."""
        return bool(np.any(np.isfinite(self.layout.lower) & (theta < tol)))
