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
import scipy.linalg as la

from .cholesky import BlockedFactor
from .crossprod import data_gram
from .deviance import (
    conditional_covariance_blocks,
    fixed_effects_covariance,
    profiled_deviance,
    residual_variance,
    solve_coefficients,
)
from .optimize import minimize_deviance
from .problem import MixedModelProblem
from .threads import single_blas_thread

__all__ = ["LMMFit", "fit_lmm", "rank_deficient_columns", "SINGULAR_TOLERANCE"]

# Below this size of the dense block the fit runs on one BLAS thread (see
# :mod:`.threads`); above it the dense Cholesky itself is large enough to gain.
_SINGLE_THREAD_BELOW = 4000


def _blas_thread_limit(dense_size):
    if dense_size >= _SINGLE_THREAD_BELOW:
        return contextlib.nullcontext()
    return single_blas_thread()


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
    one at a time: a column is reported when, with it, the smallest eigenvalue
    of the scaled Gram matrix of the columns kept so far falls below ``rtol``
    (an all-zero column always is).
    """
    p = XtX.shape[0]
    if p == 0:
        return []
    scale = np.sqrt(np.clip(np.diag(XtX), 0.0, None))
    if np.all(scale > 0.0) and np.linalg.eigvalsh(XtX / np.outer(scale, scale))[0] >= rtol:
        return []  # full rank: no column to search for
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


def _plain_linear_factor(X, y):
    """Factor of the augmented system when there are no random effects.

    ``[X'X, X'y; y'X, y'y] = [L_X, 0; c', r][L_X', c; 0, r]`` with
    ``r^2 = y'y - c'c`` clipped at 0: a response that X fits exactly (r = 0)
    is a degenerate but valid linear fit.
    """
    WW = data_gram(X, y)
    p = X.shape[1]
    L22 = np.zeros_like(WW)
    L22[:p, :p] = la.cholesky(WW[:p, :p], lower=True, check_finite=False)
    c = la.solve_triangular(L22[:p, :p], WW[:p, p], lower=True, check_finite=False)
    L22[p, :p] = c
    L22[p, p] = np.sqrt(max(WW[p, p] - c @ c, 0.0))
    return BlockedFactor(stages=(), L22=L22, q_dense=0)


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
    max_iter : int
        Maximum number of optimizer iterations.
    tol : float
        Relative tolerance on the deviance.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    if not terms:
        return _assemble(None, _plain_linear_factor(X, y), [], np.zeros(0), n, p, method, None)
    problem = MixedModelProblem(X, y, terms, method)
    with _blas_thread_limit(problem.dense_size):
        outcome = minimize_deviance(
            problem.deviance,
            problem.layout.start,
            problem.layout.lower,
            value_and_gradient=problem.value_and_gradient if problem.has_gradient else None,
            max_iter=max_iter,
            tol=tol,
            cheap=problem.is_small,
        )
        if problem.is_small:
            return _assemble_dense(problem, outcome.theta, n, p, method, outcome)
        factor, T = problem.factorize(outcome.theta)
        return _assemble(problem, factor, T, outcome.theta, n, p, method, outcome)


def _assemble_dense(problem, theta, n, p, method, outcome):
    """:func:`_assemble` for a small problem, from its dense factor."""
    solution = problem.dense_solution(theta)
    T = problem.layout.factors(theta)
    sigma2 = solution.sigma2
    b = [u @ Tj.T for u, Tj in zip(solution.u, T, strict=True)]  # b_j = T u_j
    cond = [
        sigma2 * (Tj[None] @ B @ Tj.T[None]) for B, Tj in zip(solution.conditional, T, strict=True)
    ]
    return _lmm_fit(
        problem, theta, T, (solution.beta, b, cond, sigma2, solution.beta_cov),
        solution.deviance, n, p, method, outcome,
    )  # fmt: skip


def _modes_and_conditional_covariances(problem, factor, T, u_closed, u_dense, sigma2):
    """Conditional modes ``b = T u`` and ``Var(b | y)`` per term, in user order."""
    terms = problem.terms
    dense_sizes = [(terms[i].n_levels, terms[i].n_coef) for i in problem.dense]
    blocks = conditional_covariance_blocks(factor, dense_sizes, problem.cp.closed[0].pairs)
    dense_columns = np.cumsum([m * k for m, k in dense_sizes])[:-1]
    u_parts = u_closed + (np.split(u_dense, dense_columns) if dense_sizes else [])
    b, cond = [None] * len(terms), [None] * len(terms)
    for term_index, u, B in zip(problem.order, u_parts, blocks, strict=True):
        term, Tj = terms[term_index], T[term_index]
        b[term_index] = u.reshape(term.n_levels, term.n_coef) @ Tj.T  # b_j = T u_j
        cond[term_index] = sigma2 * (Tj[None] @ B @ Tj.T[None])
    return b, cond


def _assemble(problem, factor, T, theta, n, p, method, outcome):
    """Solution, variances and diagnostics from the factor at the optimum."""
    beta, u_closed, u_dense = solve_coefficients(factor, p)
    sigma2 = residual_variance(factor, n, p, method)
    b, cond = [], []
    if problem is not None:
        b, cond = _modes_and_conditional_covariances(problem, factor, T, u_closed, u_dense, sigma2)
    beta_cov = fixed_effects_covariance(factor, p, sigma2)
    deviance = profiled_deviance(factor, n, p, method)
    solved = (beta, b, cond, sigma2, beta_cov)
    return _lmm_fit(problem, theta, T, solved, deviance, n, p, method, outcome)


def _lmm_fit(problem, theta, T, solved, deviance, n, p, method, outcome):
    """The :class:`LMMFit` of a solution ``(beta, b, Var(b | y), sigma^2, Var(beta))``."""
    beta, b, cond, sigma2, beta_cov = solved
    return LMMFit(
        method=method,
        n=n,
        p=p,
        theta=np.asarray(theta, dtype=float),
        T=T,
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
        singular=problem is not None and problem.singular(theta, SINGULAR_TOLERANCE),
        term_cov=[sigma2 * Tj @ Tj.T for Tj in T],
    )
