"""Fit a linear mixed model by minimizing the profiled (RE)ML deviance.

``y = X beta + Z b + eps``, ``b ~ N(0, sigma^2 Lambda Lambda')``,
``eps ~ N(0, sigma^2 I)``.  The data are touched once (:mod:`.crossprod`); every
evaluation of the deviance factors the augmented system (:mod:`.cholesky`,
:mod:`.deviance`); the optimizer (:mod:`.optimize`) finds theta; the same
factor then yields beta, the conditional modes b and their variances.
"""

import contextlib
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from .cholesky import BlockedFactor, block_diagonal, blocked_cholesky, relative_factor_matrix
from .covariance import (
    free_positions,
    n_theta,
    relative_factor,
    theta_lower_bounds,
    theta_start,
)
from .crossprod import cross_products
from .deviance import (
    conditional_covariance_blocks,
    fixed_effects_covariance,
    profiled_deviance,
    residual_variance,
    solve_coefficients,
)
from .gradient import relative_factor_gradients
from .optimize import minimize_deviance

__all__ = ["LMMFit", "fit_lmm", "rank_deficient_columns", "SINGULAR_TOLERANCE"]

# Below this size of the dense block, BLAS calls are too small to gain from
# threads, and waiting threads cost milliseconds per call on a busy machine.
_SINGLE_THREAD_BELOW = 1000
_blas_controller = None


def _blas_thread_limit(dense_size):
    """Context limiting BLAS to one thread for small dense blocks."""
    global _blas_controller
    if dense_size >= _SINGLE_THREAD_BELOW:
        return contextlib.nullcontext()
    if _blas_controller is None:
        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


# lme4's isSingular(tol = 1e-4): a bounded element of theta below this is 0.
SINGULAR_TOLERANCE = 1e-4


@dataclass
class LMMFit:
    """Everything a fitted linear mixed model knows, as arrays.

    Per-term lists follow the order of the ``terms`` given to :func:`fit_lmm`.
    """

    method: str
    n: int
    p: int
    theta: np.ndarray
    T: list  # relative factors, k x k each
    beta: np.ndarray
    b: list  # conditional modes, (m, k) each
    sigma2: float
    beta_cov: np.ndarray  # (p, p)
    conditional_cov: list  # Var(b_j | y), (m, k, k) each
    deviance: float
    n_iter: int
    n_evaluations: int
    converged: bool
    message: str
    singular: bool
    term_cov: list = field(default_factory=list)  # sigma^2 T T', k x k each

    @property
    def log_likelihood(self):
        return -0.5 * self.deviance

    @property
    def n_params(self):
        """Fixed effects, covariance parameters and the residual variance."""
        return self.p + self.theta.size + 1

    @property
    def aic(self):
        return self.deviance + 2.0 * self.n_params

    @property
    def bic(self):
        return self.deviance + np.log(self.n) * self.n_params


def rank_deficient_columns(XtX, rtol=1e-10):
    """Indices of columns of X that are linear combinations of earlier ones.

    Works on the cross-product ``X'X`` scaled to unit diagonal, adding columns
    one at a time; a column whose residual squared norm (relative) falls below
    ``rtol`` is reported.
    """
    p = XtX.shape[0]
    scale = np.sqrt(np.clip(np.diag(XtX), 0.0, None))
    bad, kept = [], []
    for j in range(p):
        if scale[j] == 0.0:
            bad.append(j)
            continue
        idx = kept + [j]
        G = XtX[np.ix_(idx, idx)] / np.outer(scale[idx], scale[idx])
        if np.linalg.eigvalsh(G)[0] < rtol:
            bad.append(j)
        else:
            kept.append(j)
    return bad


def _order_terms(terms):
    """Term with the most levels first (eliminated in closed form)."""
    first = max(range(len(terms)), key=lambda i: (terms[i].n_levels, terms[i].n_coef, -i))
    return [first] + [i for i in range(len(terms)) if i != first]


class _ThetaLayout:
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
        return [
            relative_factor(theta[s], t.n_coef, t.structure)
            for t, s in zip(self.terms, self.slices, strict=True)
        ]

    def theta_gradient(self, T_grads):
        """dd/dtheta from dd/dT per term (user order): the free elements of T."""
        out = np.empty(self.start.size)
        for t, s, g in zip(self.terms, self.slices, T_grads, strict=True):
            rows, cols = free_positions(t.n_coef, t.structure)
            out[s] = g[rows, cols]
        return out


def _plain_linear_factor(cp_WW, p):
    """Factor of the augmented system when there are no random effects."""
    from scipy.linalg import cholesky

    L22 = cholesky(cp_WW, lower=True, check_finite=False)
    empty = np.zeros((0, 1, 1))
    return BlockedFactor(empty, empty, sp.csr_matrix((0, 0)), np.zeros((p + 1, 0)), L22)


def fit_lmm(X, y, terms, *, method="reml", max_iter=500, tol=1e-10):
    """Fit ``y ~ X + random terms`` by REML or ML.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Full-rank fixed-effects model matrix (intercept column included).
    y : ndarray of shape (n,)
    terms : list of RandomTerm
        May be empty (a linear model fitted by the same criterion).
    method : {"reml", "ml"}
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    if not terms:
        WW = np.column_stack([X, y]).T @ np.column_stack([X, y])
        factor = _plain_linear_factor(WW, p)
        return _assemble(factor, [], [], np.zeros(0), method, n, p, None)
    order = _order_terms(terms)
    ordered = [terms[i] for i in order]
    layout = _ThetaLayout(terms)
    cp = cross_products(X, y, ordered)
    n_levels_rest = [t.n_levels for t in ordered[1:]]

    rest_sizes = [(t.n_levels, t.n_coef) for t in ordered[1:]]

    def factorize(theta):
        T = layout.factors(theta)
        T_ordered = [T[i] for i in order]
        Lambda2 = relative_factor_matrix(T_ordered[1:], n_levels_rest)
        return blocked_cholesky(cp, T_ordered[0], Lambda2), T, T_ordered, Lambda2

    def deviance(theta):
        return profiled_deviance(factorize(theta)[0], n, p, cp.q2, method)

    def value_and_gradient(theta):
        factor, _, T_ordered, Lambda2 = factorize(theta)
        value = profiled_deviance(factor, n, p, cp.q2, method)
        T1 = T_ordered[0]
        if cp.q2:
            Lambda1 = block_diagonal(np.broadcast_to(T1, (cp.m1,) + T1.shape))
            products = ((Lambda2.T @ cp.Z2Z1).tocsr(), (cp.Z2Z1 @ Lambda1).tocsr())
        else:
            products = (None, None)
        grads = relative_factor_gradients(cp, factor, T1, Lambda2, rest_sizes, products, method)
        user_grads = [None] * len(order)
        for pos, term_index in enumerate(order):
            user_grads[term_index] = grads[pos]
        return value, layout.theta_gradient(user_grads)

    with _blas_thread_limit(cp.q2 + p + 1):
        outcome = minimize_deviance(
            deviance,
            layout.start,
            layout.lower,
            value_and_gradient=value_and_gradient,
            max_iter=max_iter,
            tol=tol,
        )
        factor, T = factorize(outcome.theta)[:2]
        return _assemble(
            factor,
            ordered,
            [T[i] for i in order],
            outcome.theta,
            method,
            n,
            p,
            outcome,
            order=order,
            layout=layout,
        )


def _assemble(factor, ordered, T_ordered, theta, method, n, p, outcome, order=(), layout=None):
    """Solution, variances and diagnostics from the factor at the optimum."""
    q2 = factor.C_Z.shape[0]
    beta, u1, u2 = solve_coefficients(factor, q2, p)
    sigma2 = residual_variance(factor, n, p, method)
    beta_cov = fixed_effects_covariance(factor, q2, p, sigma2)
    deviance = profiled_deviance(factor, n, p, q2, method)
    b, cond = [None] * len(ordered), [None] * len(ordered)
    if ordered:
        sizes = [(t.n_levels, t.n_coef) for t in ordered]
        blocks = conditional_covariance_blocks(factor, q2, sizes)
        rest_columns = np.cumsum([m * k for m, k in sizes[1:]])
        u_parts = [u1] + np.split(u2, rest_columns[:-1]) if len(sizes) > 1 else [u1]
        parts = zip(order, T_ordered, u_parts, blocks, sizes, strict=True)
        for term_index, T, u, B, (m, k) in parts:
            b[term_index] = u.reshape(m, k) @ T.T  # b_j = T u_j
            cond[term_index] = sigma2 * (T[None] @ B @ T.T[None])
    T_user = [None] * len(ordered)
    for pos, term_index in enumerate(order):
        T_user[term_index] = T_ordered[pos]
    singular = bool(
        layout is not None and np.any(np.isfinite(layout.lower) & (theta < SINGULAR_TOLERANCE))
    )
    return LMMFit(
        method=method,
        n=n,
        p=p,
        theta=np.asarray(theta, dtype=float),
        T=T_user,
        beta=beta,
        b=b,
        sigma2=float(sigma2),
        beta_cov=beta_cov,
        conditional_cov=cond,
        deviance=float(deviance),
        n_iter=outcome.n_iter if outcome else 1,  # closed form: one factorization
        n_evaluations=outcome.n_evaluations if outcome else 1,
        converged=outcome.converged if outcome else True,
        message=outcome.message if outcome else "closed form",
        singular=singular,
        term_cov=[sigma2 * T @ T.T for T in T_user],
    )
