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

from .deviance import Criterion
from .solution import CriterionPieces

__all__ = [
    "SatterthwaiteComponents",
    "fixed_effects_covariance_at",
    "numerical_hessian",
    "numerical_jacobian",
    "satterthwaite_components",
    "satterthwaite_df",
    "satterthwaite_f_test",
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

# lmerTest's contestMD: eigenvalues of L V L' below this times the largest are dropped.
_CONTRAST_EPS = np.sqrt(np.finfo(float).eps)

# lmerTest: eigenvalues of H within this of 0 count as zero (dropped from A).
EIGENVALUE_TOL = 1e-8


def _linear_model_pieces(model):
    """The pieces of a model without random effects: ``L_X L_X' = X'WX``."""
    red = model.reduction
    L_X = la.cholesky(red.XX, lower=True)
    coef = la.cho_solve((L_X, True), red.Xy)
    L_X_inv = la.solve_triangular(L_X, np.eye(red.p), lower=True)
    pieces = CriterionPieces(
        logdet_Z=0.0,
        logdet_X=2.0 * np.log(np.diag(L_X)).sum(),
        pwrss=float(red.yy - coef @ red.Xy),
        unscaled_beta_cov=L_X_inv.T @ L_X_inv,
    )
    return lambda theta: pieces


def _pieces_function(model):
    """``theta -> CriterionPieces`` of a fitted model, memoized per theta."""
    if not model.terms:
        return _linear_model_pieces(model)
    cache = {}

    def pieces(theta):
        key = np.asarray(theta, dtype=float).tobytes()
        if key not in cache:
            cache[key] = model.pieces(theta)
        return cache[key]

    return pieces


def unprofiled_deviance(pieces, sigma, model):
    """``d(theta, sigma)`` (ML) or ``d_R(theta, sigma)`` (REML) of the module doc."""
    criterion = Criterion(model.n, model.p, model.method == "reml",
                          model.reduction.sum_log_w, sigma)  # fmt: skip
    return criterion.value(pieces.logdet_Z, pieces.logdet_X, pieces.pwrss)


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


def satterthwaite_components(model, theta=None, sigma=None):
    """Hessian-based covariance of ``(theta, sigma)`` and ``dV/d(theta, sigma)``.

    Parameters
    ----------
    model : LinearMixedModel
        A fitted model (exact solver, sigma estimated).
    theta, sigma : optional
        Where to evaluate them; default the model's estimates.

    Returns
    -------
    SatterthwaiteComponents
        ``V`` and its derivatives are those of the model's centred fixed
        columns; :meth:`SatterthwaiteComponents.df` takes contrasts of the
        uncentred coefficients (the centring map is applied to them).
    """
    if model.fixed_sigma is not None:
        raise ValueError("Satterthwaite's df need sigma as a parameter; sigma is known here")
    pieces = _pieces_function(model)
    theta = model.theta if theta is None else theta
    sigma = np.sqrt(model.result.sigma2) if sigma is None else sigma
    varpar = np.append(np.asarray(theta, dtype=float), sigma)

    def deviance(v):
        return unprofiled_deviance(pieces(v[:-1]), v[-1], model)

    def beta_cov(v):
        return fixed_effects_covariance_at(pieces(v[:-1]), v[-1])

    # about 100 small factorizations: one BLAS thread, as the fit (see .threads)
    with model.threads():
        hessian = numerical_hessian(deviance, varpar)
        jacobians = numerical_jacobian(beta_cov, varpar)
    varpar_cov, eigenvalues = varpar_covariance(hessian)
    J = _centring_map(model.reduction)
    return SatterthwaiteComponents(
        beta_cov=J @ beta_cov(varpar) @ J.T,
        jacobians=np.einsum("ij,kjl,ml->kim", J, jacobians, J),
        varpar_cov=varpar_cov,
        hessian_eigenvalues=eigenvalues,
    )


def _centring_map(reduction):
    """``J`` with ``beta = J beta_centred + const`` (:meth:`.Reduction.uncentre`)."""
    J = np.eye(reduction.p)
    if reduction.intercept is not None:
        J[reduction.intercept] -= reduction.shift_X
        J[reduction.intercept, reduction.intercept] = 1.0
    return J


def satterthwaite_f_test(components, L, beta, sigma2, eps=_CONTRAST_EPS):
    """lmerTest's F test of ``L beta = 0`` with Satterthwaite's denominator df.

    ``L V L'`` is diagonalized, ``L V L' = P diag(d) P'``; over the ``q``
    eigenvalues above ``eps d_1``: ``F = sum_m (P_m'L beta)^2 / d_m / q``, each
    direction has ``nu_m = 2 d_m^2 / (g_m' A g_m)`` (``g_m`` the gradient of
    ``P_m'L V L'P_m`` in the variance parameters) and, when ``q > 1``,
    ``E = sum nu_m / (nu_m - 2)``, ``ddf = 2 E / (E - q)`` (2 if some
    ``nu_m <= 2``), as lmerTest 3.1-3's ``contestMD`` (Kuznetsova et al. 2017).

    Returns
    -------
    (F, numerator df, denominator df, sum of squares, mean square)
        ``Mean Sq = F sigma^2`` and ``Sum Sq = Mean Sq x NumDF``, as lmerTest prints.
    """
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.shape[0] == 0:
        return (np.nan,) * 5
    VL = L @ components.beta_cov @ L.T
    d, P = np.linalg.eigh(0.5 * (VL + VL.T))
    order = np.argsort(d)[::-1]
    d, P = d[order], P[:, order]
    keep = d > max(eps * d[0], 0.0)
    q = int(keep.sum())
    if q == 0:
        return (np.nan,) * 5
    PtL = P[:, keep].T @ L
    F = float(np.sum((PtL @ beta) ** 2 / d[keep]) / q)
    nu = components.df(PtL)
    if q == 1 or np.all(np.abs(np.diff(nu)) < 1e-8):
        ddf = float(np.mean(nu))
    elif np.any(nu <= 2):
        ddf = 2.0
    else:
        E = np.sum(nu / (nu - 2.0))
        ddf = float(2.0 * E / (E - q))
    mean_sq = F * sigma2
    return F, q, ddf, mean_sq * q, mean_sq
