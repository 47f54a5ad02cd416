"""Satterthwaite's degrees of freedom for t-tests of the fixed effects.

The variance parameters are ``varpar = (theta, sigma)`` (lmerTest's choice:
lme4's relative covariance parameters and the residual *standard deviation*).
At a given ``theta`` the factor of Henderson's equations (:mod:`.deviance`)
gives ``log|L_Z|^2``, ``log|L_X|^2``, the penalized residual sum of squares
``r^2(theta)`` and ``(L_X L_X')^-1``; the (RE)ML deviance *not* profiled over
sigma is then (Bates et al. 2015, eq. 33 and 41)::

    ML:   d(theta, sigma)   = log|L_Z|^2 + r^2 / sigma^2 + n log(2 pi sigma^2)
    REML: d_R(theta, sigma) = d(theta, sigma) + log|L_X|^2 - p log(2 pi sigma^2)

and the covariance of the fixed effects ``V(varpar) = sigma^2 (L_X L_X')^-1``.
With ``H`` the Hessian of ``d`` (or ``d_R``) at the optimum, the asymptotic
covariance of the variance parameters is ``A = 2 H^-1`` (a Moore-Penrose
inverse over the positive eigenvalues of ``H``), and for a contrast ``c``::

    var_c = c' V c,    g_i = c' (dV / dvarpar_i) c,    df = 2 var_c^2 / (g' A g)

(Satterthwaite 1946; Kuznetsova, Brockhoff and Christensen 2017, lmerTest).
``H`` and ``dV/dvarpar`` are central differences refined by Richardson
extrapolation, with the steps of R's numDeriv (``0.1 |x|`` for the Hessian,
``1e-4 |x|`` for the Jacobian, each halved three times), whose ``hessian`` and
``jacobian`` lmerTest calls.
"""

from dataclasses import dataclass

import numpy as np
import scipy.linalg as la

from .deviance import fixed_effects_covariance, log_determinants
from .problem import MixedModelProblem
from .threads import single_blas_thread

__all__ = [
    "CriterionPieces",
    "SatterthwaiteComponents",
    "criterion_pieces_function",
    "fixed_effects_covariance_at",
    "numerical_hessian",
    "numerical_jacobian",
    "satterthwaite_components",
    "satterthwaite_df",
    "unprofiled_deviance",
    "varpar_covariance",
]

# numDeriv's defaults: the first step of coordinate i is ``d |x_i|``, plus
# ``1e-4`` where |x_i| < zero_tol, then three more steps, each half the previous
# one, for Richardson's extrapolation.  ``d`` is 0.1 for the Hessian (numDeriv's
# ``hessian``: large steps keep the second differences above rounding noise)
# and 1e-4 for the Jacobian (``jacobian``).
_HESSIAN_STEP = 0.1
_JACOBIAN_STEP = 1e-4
_ZERO_STEP = 1e-4
_ZERO_TOL = np.sqrt(np.finfo(float).eps / 7e-7)
_N_STEPS = 4

# lmerTest: eigenvalues of H within this of 0 count as zero (dropped from A).
EIGENVALUE_TOL = 1e-8


@dataclass(frozen=True)
class CriterionPieces:
    """What the deviance at ``(theta, sigma)`` needs from the factor at theta."""

    logdet_Z: float  # log|L_Z|^2
    logdet_X: float  # log|L_X|^2
    pwrss: float  # r^2, the penalized residual sum of squares
    unscaled_beta_cov: np.ndarray  # (L_X L_X')^-1, so that Var(beta) = sigma^2 times it


def _linear_model_pieces(X, y):
    """The pieces of a model without random effects: ``L_X L_X' = X'X``."""
    L_X = la.cholesky(X.T @ X, lower=True)
    coef = la.cho_solve((L_X, True), X.T @ y)
    residual = y - X @ coef
    L_X_inv = la.solve_triangular(L_X, np.eye(X.shape[1]), lower=True)
    pieces = CriterionPieces(
        logdet_Z=0.0,
        logdet_X=2.0 * np.log(np.diag(L_X)).sum(),
        pwrss=float(residual @ residual),
        unscaled_beta_cov=L_X_inv.T @ L_X_inv,
    )
    return lambda theta: pieces


def criterion_pieces_function(X, y, terms, method):
    """``theta -> CriterionPieces`` of ``y ~ X + terms``, memoized per theta.

    Parameters
    ----------
    X : ndarray of shape (n, p)
    y : ndarray of shape (n,)
    terms : list of RandomTerm
        May be empty (a linear model; theta is then empty).
    method : {"reml", "ml"}
    """
    if not terms:
        return _linear_model_pieces(X, y)
    problem = MixedModelProblem(X, y, terms, method)
    p = X.shape[1]
    cache = {}

    def pieces(theta):
        key = np.asarray(theta, dtype=float).tobytes()
        if key not in cache:
            factor, _ = problem.factorize(np.asarray(theta, dtype=float))
            logdet_Z, logdet_X, pwrss = log_determinants(factor, p)
            cache[key] = CriterionPieces(
                logdet_Z, logdet_X, float(pwrss), fixed_effects_covariance(factor, p, 1.0)
            )
        return cache[key]

    return pieces


def unprofiled_deviance(pieces, sigma, n, p, method):
    """``d(theta, sigma)`` (ML) or ``d_R(theta, sigma)`` (REML) of the module doc."""
    sigma2 = sigma**2
    log_2pi_sigma2 = np.log(2.0 * np.pi * sigma2)
    value = pieces.logdet_Z + pieces.pwrss / sigma2 + n * log_2pi_sigma2
    if method == "reml":
        value += pieces.logdet_X - p * log_2pi_sigma2
    return value


def fixed_effects_covariance_at(pieces, sigma):
    """``V = sigma^2 (L_X L_X')^-1`` at the theta of ``pieces``."""
    return sigma**2 * pieces.unscaled_beta_cov


def _steps(x, relative):
    """numDeriv's first step per coordinate: ``relative |x|``, plus ``1e-4`` near 0."""
    x = np.abs(np.asarray(x, dtype=float))
    return relative * x + _ZERO_STEP * (x < _ZERO_TOL)


def _richardson(estimates):
    """Richardson's extrapolation of estimates at steps h, h/2, h/4, ...

    Central differences have errors in even powers of h: eliminating the
    ``h^(2m)`` term combines consecutive estimates as
    ``(4^m A(h/2) - A(h)) / (4^m - 1)``.
    """
    table = [np.asarray(e, dtype=float) for e in estimates]
    for m in range(1, len(table)):
        weight = 4.0**m
        table = [
            (weight * fine - coarse) / (weight - 1.0)
            for coarse, fine in zip(table[:-1], table[1:], strict=True)
        ]
    return table[0]


def numerical_hessian(f, x):
    """Hessian of scalar ``f`` at ``x`` by Richardson-extrapolated central differences.

    The diagonal first: ``H_ii(h) = (f(x + h_i) - 2 f(x) + f(x - h_i)) / h_i^2``;
    then, with the extrapolated diagonal, ``H_ij(h) = (f(x + h_i + h_j) - 2 f(x)
    + f(x - h_i - h_j) - H_ii h_i^2 - H_jj h_j^2) / (2 h_i h_j)``.  Both have
    errors in even powers of h; four steps leave an error of order ``h^8``.
    """
    x = np.asarray(x, dtype=float)
    k = x.size
    f0 = f(x)
    steps = [np.diag(_steps(x, _HESSIAN_STEP) / 2.0**s) for s in range(_N_STEPS)]
    diagonal = _richardson(
        [[(f(x + e[i]) - 2.0 * f0 + f(x - e[i])) / e[i, i] ** 2 for i in range(k)] for e in steps]
    )
    H = np.diag(diagonal)
    for i in range(k):
        for j in range(i):

            def mixed(e, i=i, j=j):
                both = e[i] + e[j]
                second = f(x + both) - 2.0 * f0 + f(x - both)
                pure = diagonal[i] * e[i, i] ** 2 + diagonal[j] * e[j, j] ** 2
                return (second - pure) / (2.0 * e[i, i] * e[j, j])

            H[i, j] = H[j, i] = _richardson([mixed(e) for e in steps])
    return H


def numerical_jacobian(f, x):
    """``J[i] = df / dx_i`` of array-valued ``f`` (Richardson-extrapolated central
    differences), stacked on the first axis."""
    x = np.asarray(x, dtype=float)
    h = _steps(x, _JACOBIAN_STEP)

    def central(scale):
        steps = np.diag(h * scale)
        return np.stack([(f(x + e) - f(x - e)) / (2.0 * e[i]) for i, e in enumerate(steps)])

    return _richardson([central(0.5**s) for s in range(_N_STEPS)])


def varpar_covariance(hessian, tol=EIGENVALUE_TOL):
    """``A = 2 H^+`` over the eigenvalues of ``H`` above ``tol``, and the eigenvalues.

    A zero or negative eigenvalue (a boundary fit, or no optimum) leaves its
    direction out of ``A``, as lmerTest does; the caller warns about it.
    """
    eigenvalues, vectors = np.linalg.eigh(hessian)
    keep = eigenvalues > tol
    kept = vectors[:, keep]
    return 2.0 * (kept / eigenvalues[keep]) @ kept.T, eigenvalues


def satterthwaite_df(contrasts, beta_cov, jacobians, varpar_cov):
    """Satterthwaite's df of each contrast (row of ``contrasts``).

    Parameters
    ----------
    contrasts : ndarray of shape (m, p)
    beta_cov : ndarray of shape (p, p)
        ``V`` at the optimum.
    jacobians : ndarray of shape (k, p, p)
        ``dV / dvarpar_i``.
    varpar_cov : ndarray of shape (k, k)
        ``A``.

    Returns
    -------
    df : ndarray of shape (m,)
        ``2 (c' V c)^2 / (g' A g)``; ``inf`` when ``g' A g`` is 0.
    """
    C = np.atleast_2d(np.asarray(contrasts, dtype=float))
    var = np.einsum("mi,ij,mj->m", C, beta_cov, C)
    g = np.einsum("mi,kij,mj->mk", C, jacobians, C)
    denominator = np.einsum("mk,kl,ml->m", g, varpar_cov, g)
    with np.errstate(divide="ignore"):
        return 2.0 * var**2 / denominator


@dataclass(frozen=True)
class SatterthwaiteComponents:
    """lmerTest's ``vcov_beta``, ``Jac_list`` and ``vcov_varpar`` of a fit."""

    beta_cov: np.ndarray  # V at the optimum, (p, p)
    jacobians: np.ndarray  # dV / dvarpar, (k, p, p), varpar = (theta, sigma)
    varpar_cov: np.ndarray  # A = 2 H^+, (k, k)
    hessian_eigenvalues: np.ndarray  # of H, ascending

    def df(self, contrasts):
        """Satterthwaite's df of each row of ``contrasts``."""
        return satterthwaite_df(contrasts, self.beta_cov, self.jacobians, self.varpar_cov)


def satterthwaite_components(X, y, terms, method, theta, sigma):
    """Hessian-based covariance of ``(theta, sigma)`` and ``dV/d(theta, sigma)``.

    Parameters
    ----------
    X, y, terms, method
        The fitted model, as given to :func:`~.lmm.fit_lmm`.
    theta : ndarray
        The (RE)ML estimate of theta.
    sigma : float
        The (RE)ML estimate of the residual standard deviation.

    Returns
    -------
    SatterthwaiteComponents
    """
    n, p = X.shape
    pieces = criterion_pieces_function(X, y, terms, method)
    varpar = np.append(np.asarray(theta, dtype=float), sigma)

    def deviance(v):
        return unprofiled_deviance(pieces(v[:-1]), v[-1], n, p, method)

    def beta_cov(v):
        return fixed_effects_covariance_at(pieces(v[:-1]), v[-1])

    # about 100 small factorizations: one BLAS thread, as the fit (see .threads)
    with single_blas_thread():
        hessian = numerical_hessian(deviance, varpar)
        jacobians = numerical_jacobian(beta_cov, varpar)
    varpar_cov, eigenvalues = varpar_covariance(hessian)
    return SatterthwaiteComponents(
        beta_cov=beta_cov(varpar),
        jacobians=jacobians,
        varpar_cov=varpar_cov,
        hessian_eigenvalues=eigenvalues,
    )
