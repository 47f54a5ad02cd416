"""The (RE)ML criterion and conditional variances of an iterative fit.

Part of the iterative solver (:mod:`.iterative`), evaluated once at the final
variance components, with the lme4 notation ``theta_f = sigma_f / sigma``,
``lambda_f = 1 / theta_f^2``, ``C`` the coefficient matrix of Henderson's
equations (``Z'Z + Lambda`` bordered by ``X``) and ``r^2 = ||y - X beta -
Z b||^2 + sum_f lambda_f ||b_f||^2`` the penalized residual sum of squares.

**Log-likelihood.**  The profiled criterion of lme4 (Bates et al. 2015, eqs.
34 and 41) needs ``log|L_Z|^2 = log det(Lambda'Z'Z Lambda + I) = log det(Z'Z +
Lambda) - sum_f m_f log lambda_f`` and, for REML, ``log|L_X|^2``, the
log-determinant of the fixed-effects Schur complement ``X'X - X'Z (Z'Z +
Lambda)^-1 Z'X = ((C^-1)_XX)^-1``.  Their sum is ``log det C - sum_f m_f log
lambda_f``, and ``log det C`` splits along the solver's elimination::

    log det C = sum_j log(n_1j + lambda_1)              (factor 1, diagonal)
              + log det P                                (block-Jacobi preconditioner of S)
              + log det A,   A = R^-1 S R^-T,  P = R R'

``P`` is exact and cheap (the diagonal of each factor's block of the Schur
complement ``S``, the dense ``p x p`` fixed-effects block) and ``A`` has unit
diagonal.  ``log det A`` is estimated by stochastic Lanczos quadrature (Ubaru,
Chen and Saad 2017): ``tr log A = E z' log(A) z`` over Rademacher probes
``z``, each quadratic form a Gauss quadrature from a few Lanczos steps with
the same products as the CG solves.  Two exact reductions make the probes'
variance small:

- *Deflation.*  The preconditioned crossed design keeps a few outlying
  eigenvalues along the factors' constant vectors (and the level means of
  covariates that vary between levels) coupled with the fixed effects.  With
  ``Q`` an orthonormal basis of those directions and ``M = Q'AQ``,
  ``log det A = log det M + log det T`` exactly, where ``T = Pi (A - AQ M^-1
  Q'A) Pi`` is the Schur complement on the range of ``Pi = I - QQ'``; ``M``
  is factored directly and only ``T`` is probed, with projected probes
  ``Pi z``.
- *Control variate.*  ``z'(T - I)z`` is the first Lanczos coefficient and its
  mean, ``tr T - (N - k) = k - tr(M^-1 (AQ)'(AQ))`` (with ``tr A = N``), is
  exact; each probe contributes ``z'(log T - T + I)z``, whose off-diagonal
  entries are of second order in ``T - I``.

The sample standard deviation of the probes gives the Monte Carlo standard
error, reported with the log-likelihood; probes are added (8 to 128) until
its upper 95% confidence bound is below ``0.02`` on the log-likelihood scale.
Each probe takes 3-4 Lanczos steps on crossed designs (the deflated ``T`` is
close to the identity), so the cost is about ``k + 4 n_probes`` products with
``S``, linear in the data.  ``log|L_X|^2`` comes from
the ``p`` solves of the fixed effects' covariance and ``r^2`` from the final
solution and one pass over the data, both exact up to the CG tolerance.
Reduced systems of at most 64 unknowns (or 8 more than the deflated
directions) are factored densely (standard error 0).  Measured against dense algebra
(``tests/test_iterative_likelihood.py``): errors of about 0.005 on the
log-likelihood, with standard errors of the same size.

**Conditional variances.**  As lme4's ``condVar``, ``Var(b | y) = sigma^2
diag((Z'Z + Lambda)^-1)`` (given beta).  With ``S_Z`` the Schur complement of
factor 1 on the other factors (without ``X``), ``P_Z`` its diagonal and ``U``
the factors' normalized constant vectors, ``S_Z^-1`` is approximated by
``P_Z^-1 + U (U'S_Z^-1 U - U'P_Z^-1 U) U'``, exact along ``U`` (``F - 1``
solves): the constant vectors are the near-null directions of ``Z'Z`` that
ignoring the other factors misses.  Factor 1's block of the inverse is
``D_1^-1 + K' S_Z^-1 K`` with ``K = B_Z' D_1^-1``, the same approximation
inside.  Direction of the errors:

- The plain block-Jacobi value ``sigma^2 / (n_j + lambda_f)``, which ignores
  the other factors, always *understates* ``Var(b_j | y)`` (``(A^-1)_jj >= 1 /
  A_jj`` for any positive definite ``A``), on crossed designs by a factor up
  to ``1 + n_j sigma_f^2 / (m_f sigma^2)`` (the uncertainty of the split of
  the overall level between the factors, along their constant vectors).
- The approximation here is exact along the constant vectors and for the
  factor with the most levels on balanced designs; what it ignores is the
  coupling of a level with individual levels of the other factors beyond
  their diagonal.  It can err either way: on balanced designs the other
  factors' values are 1-2% too *high* (``1 / pdiag`` instead of the
  eigenvalue off the constant vector); on skewed designs the most popular
  levels are *understated*, by up to about 10%, the median error being about
  1% (``tests/test_iterative_likelihood.py``).

References
----------
Bates, D., Maechler, M., Bolker, B. and Walker, S. (2015). Fitting linear
mixed-effects models using lme4. *Journal of Statistical Software* 67(1).

Golub, G. H. and Meurant, G. (2010). *Matrices, Moments and Quadrature with
Applications*. Princeton University Press.

Ubaru, S., Chen, J. and Saad, Y. (2017). Fast estimation of tr(f(A)) via
stochastic Lanczos quadrature. *SIAM Journal on Matrix Analysis and
Applications* 38(4), 1075-1099.
"""

from dataclasses import dataclass

import numpy as np
import scipy.linalg as la

from .iterative_system import _block_pcg, _Design, _SchurSystem
from .iterative_traces import _orthonormal_columns, _se_upper_ratio, _standard_error

__all__ = []

_PROBES = 8  # Lanczos probes of log det T; doubled while the Monte Carlo error is too large
_MAX_PROBES = 128
_SE_TOL = 0.02  # target Monte Carlo standard error of the log-likelihood
_QUADRATURE_TOL = 1e-3  # a probe's Gauss quadrature has converged (change, log-det units)
_MAX_STEPS = 200  # Lanczos steps per probe at most
_DENSE_SIZE = 64  # reduced systems up to this size are factored densely
_VARIANCE_TOL = 1e-6  # CG tolerance of the conditional variances' solves


@dataclass
class LogLikelihood:
    """The (RE)ML criterion at given variance components, with its Monte Carlo error."""

    value: float
    se: float
    n_probes: int
    lanczos_steps: int
    cg_products: int


# ----------------------------------------------------------------------------- log det


class _Preconditioned:
    """``A = R^-1 S R^-T`` for the reduced system ``S``, ``P = R R'`` its preconditioner.

    ``R = blockdiag(diag(sqrt(pdiag)), L)`` with ``L L' = S_XX``: the
    diagonal of ``A`` is 1.
    """

    def __init__(self, system):
        self.system = system
        self.nz = system.pdiag.size
        self.root = np.sqrt(system.pdiag)
        self.L = np.linalg.cholesky(system.SXX) if system.px else np.zeros((0, 0))

    def logdet_xx(self):
        return 2.0 * float(np.sum(np.log(np.diag(self.L))))

    def _solve_r(self, V, trans):
        out = np.empty_like(V)
        out[: self.nz] = V[: self.nz] / self.root[:, None]
        if self.system.px:
            out[self.nz :] = la.solve_triangular(self.L, V[self.nz :], lower=True, trans=trans)
        return out

    def apply(self, V):
        return self._solve_r(self.system.matvec(self._solve_r(V, "T")), "N")

    def transform(self, V):
        """``R'V``: a direction of ``S`` in the coordinates of ``A``."""
        out = np.empty_like(V)
        out[: self.nz] = V[: self.nz] * self.root[:, None]
        out[self.nz :] = self.L.T @ V[self.nz :]
        return out


def _deflation_directions(design, system):
    """``[1_f, level means of X_between]`` per factor ``f >= 2`` and the X block."""
    d = design
    blocks = []
    for f in range(1, d.F):
        means = d.ZtX[f][:, d.between[f]] / d.counts[f][:, None]
        U = _orthonormal_columns(np.column_stack([np.ones(d.m[f]), means]))
        V = np.zeros((system.size, U.shape[1]))
        system.block(V, f)[:] = U
        blocks.append(V)
    if system.px:
        V = np.zeros((system.size, system.px))
        system.xpart(V)[:] = np.eye(system.px)
        blocks.append(V)
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((system.size, 0))


class _Deflated:
    """``T = Pi (A - AQ M^-1 Q'A) Pi`` on the range of ``Pi = I - QQ'``.

    ``log det A = log det M + log det T`` with ``M = Q'AQ`` (block
    elimination in the basis ``[Q, Q_perp]``), and ``tr T = N - tr(M^-1
    (AQ)'(AQ))`` since ``tr A = N``.
    """

    def __init__(self, operator, Q, AQ):
        self.operator, self.Q, self.AQ = operator, Q, AQ
        M = Q.T @ AQ
        self.M_chol = la.cho_factor(0.5 * (M + M.T), lower=True)
        self.logdet_M = 2.0 * float(np.sum(np.log(np.diag(self.M_chol[0]))))
        gram = AQ.T @ AQ
        self.trace = Q.shape[0] - float(np.trace(la.cho_solve(self.M_chol, gram)))

    def project(self, V):
        return V - self.Q @ (self.Q.T @ V)

    def complete(self, W):
        """``T V`` from ``W = A V`` (``V`` in the range of ``Pi``)."""
        W = W - self.AQ @ la.cho_solve(self.M_chol, self.Q.T @ W)
        return self.project(W)

    def apply(self, V):
        return self.complete(self.operator.apply(V))


def _log_minus_linear(x):
    """``log x - x + 1``: the log with its first-order part (the control variate) removed."""
    x = np.maximum(x, 1e-300)
    return np.log(x) - x + 1.0


def _gauss_quadrature(alpha, beta, fn):
    """``e_1' fn(J) e_1`` for the Jacobi matrix ``J`` with diagonal alpha, off-diagonal beta."""
    if alpha.size == 1:
        return float(fn(alpha[:1])[0])
    nodes, vectors = la.eigh_tridiagonal(alpha, beta)
    return float(np.sum(vectors[0] ** 2 * fn(nodes)))


def _lanczos_quadrature(apply, V0, fn, AV0=None, tol=_QUADRATURE_TOL, max_steps=_MAX_STEPS):
    """``v' fn(A) v`` for each column ``v`` of ``V0`` (Golub and Meurant 2010).

    The columns run Lanczos in lockstep, without reorthogonalization; a
    column stops when its quadrature changes by less than ``tol`` or its
    Krylov space is invariant.  ``AV0``: the first product, if already known.
    Returns the values and the steps taken.
    """
    k = V0.shape[1]
    norms2 = np.einsum("ij,ij->j", V0, V0)
    scale = np.sqrt(np.maximum(norms2, 1e-300))
    Qc = V0 / scale
    Qp = np.zeros_like(Qc)
    alpha, beta = np.zeros((max_steps, k)), np.zeros((max_steps, k))
    values, steps = np.zeros(k), np.zeros(k, dtype=int)
    previous = np.full(k, np.nan)  # no convergence test after the first step
    active = np.flatnonzero(norms2 > 0)
    for j in range(max_steps):
        if j == 0 and AV0 is not None:
            W = AV0[:, active] / scale[active]
        else:
            W = apply(Qc[:, active])
        if j:
            W -= beta[j - 1, active] * Qp[:, active]
        a = np.einsum("ij,ij->j", Qc[:, active], W)
        W -= a * Qc[:, active]
        b = np.linalg.norm(W, axis=0)
        alpha[j, active], beta[j, active] = a, b
        new = np.array(
            [norms2[c] * _gauss_quadrature(alpha[: j + 1, c], beta[:j, c], fn) for c in active]
        )
        done = (np.abs(new - previous[active]) < tol) | (b <= 1e-12 * np.abs(a))
        values[active] = previous[active] = new
        steps[active] = j + 1
        Qp[:, active] = Qc[:, active]
        Qc[:, active] = W / np.where(b > 0, b, 1.0)
        active = active[~done]
        if active.size == 0:
            break
    return values, steps


def _dense_logdet(system):
    """``log det S`` of a small reduced system, formed column by column."""
    S = system.matvec(np.eye(system.size))
    return 2.0 * float(np.sum(np.log(np.diag(la.cholesky(0.5 * (S + S.T), lower=True)))))


def _logdet_preconditioned(design, op, rng):
    """``log det A`` (``A`` the preconditioned reduced system) by deflated SLQ.

    Returns ``(value, standard error, probes, largest number of Lanczos steps)``.
    """
    system = op.system
    N = system.size
    if N == 0:
        return 0.0, 0.0, 0, 0
    Q = la.qr(op.transform(_deflation_directions(design, system)), mode="economic")[0]
    if N <= max(_DENSE_SIZE, Q.shape[1] + _PROBES):
        logdet_P = 2.0 * float(np.sum(np.log(op.root))) + op.logdet_xx()
        return _dense_logdet(system) - logdet_P, 0.0, 0, 0
    values, steps, count, deflated = np.zeros(0), 0, _PROBES, None
    while True:
        Z = 2.0 * rng.integers(0, 2, size=(N, count - values.size), dtype=np.int8) - 1.0
        V = Z - Q @ (Q.T @ Z)
        TV = None
        if deflated is None:  # A Q and the probes' first product in one pass
            W = op.apply(np.concatenate([Q, V], axis=1))
            deflated = _Deflated(op, Q, W[:, : Q.shape[1]])
            TV = deflated.complete(W[:, Q.shape[1] :])
        new, taken = _lanczos_quadrature(deflated.apply, V, _log_minus_linear, TV)
        values, steps = np.concatenate([values, new]), max(steps, int(taken.max()))
        se = 0.5 * _standard_error(values)  # of the log-likelihood
        upper = se * _se_upper_ratio(values.size)
        if upper <= _SE_TOL or count >= _MAX_PROBES:
            break
        # at least twice the probes, or as many as the upper bound asks for at once
        needed = int(np.ceil(count * (upper / _SE_TOL) ** 2))
        count = min(max(2 * count, needed), _MAX_PROBES)
    # log det T = E z'(log T - T + I)z + E z'(T - I)z, the second exactly
    value = deflated.logdet_M + deflated.trace - (N - Q.shape[1]) + values.mean()
    return value, 2.0 * se, values.size, steps


def penalized_rss(design, lam, beta, b):
    """lme4's ``r^2 = ||y - X beta - Z b||^2_W + sum_f lambda_f ||b_f||^2``."""
    ee = design.residual_sum_of_squares(beta, b)
    return ee + sum(float(lf * (bf @ bf)) for lf, bf in zip(lam, b, strict=True))


def log_likelihood(design, system, cxx_inverse, pwrss, method, rng):
    """lme4's profiled (RE)ML criterion at the system's variance ratios.

    Parameters
    ----------
    design : _Design
    system : _SchurSystem
        The reduced system with the fixed effects, at the final ``lambda``.
    cxx_inverse : ndarray of shape (p, p)
        ``(C^-1)_XX``, the fixed effects' block of the inverse of ``C``.
    pwrss : float
        Penalized residual sum of squares ``r^2``.
    method : {"reml", "ml"}
    rng : numpy Generator
        Source of the probes.

    Returns
    -------
    LogLikelihood
    """
    d, lam = design, system.lam
    products = system.n_products
    op = _Preconditioned(system)
    logdet_A, se, probes, steps = _logdet_preconditioned(d, op, rng)
    # log det C - sum_f m_f log lambda_f, the diagonal parts per level:
    # log((n_1j + lambda_1) / lambda_1) and log(pdiag_j / lambda_f)
    logdet = float(np.sum(np.log1p(d.counts[0] / lam[0]))) + logdet_A
    for f in range(1, d.F):
        logdet += float(np.sum(np.log(system.block(system.pdiag, f) / lam[f])))
    logdet += op.logdet_xx()
    n, p = d.n, d.p
    if method == "ml":  # log|L_Z|^2 alone: remove log|L_X|^2 = -log det (C^-1)_XX
        if p:
            logdet += 2.0 * float(np.sum(np.log(np.diag(la.cholesky(cxx_inverse, lower=True)))))
        dof = n
    else:
        dof = n - p
    logdet -= d.sum_log_w  # prior weights: log|W|
    with np.errstate(divide="ignore"):  # an exact fit (r = 0) has deviance -inf
        deviance = logdet + dof * (1.0 + np.log(2.0 * np.pi * pwrss / dof))
    products = system.n_products - products
    return LogLikelihood(-0.5 * deviance, 0.5 * se, probes, steps, products)


# ----------------------------------------------------------------------------- Var(b | y)


def _solve_random_part(system, R, tol):
    """``S_Z^-1 R``: the reduced system without X is its leading block."""
    nz, px = system.pdiag.size, system.px

    def matvec(V):
        return system.matvec(np.concatenate([V, np.zeros((px, V.shape[1]))]))[:nz]

    def precondition(V):
        return V / system.pdiag[:, None]

    return _block_pcg(matvec, precondition, R, None, tol)[0]


def conditional_variances(design, system, sigma2, frozen):
    """Approximate ``Var(b_f | y) = sigma^2 diag((Z'Z + Lambda)^-1)_f``, internal order.

    ``S_Z^-1 ~ P_Z^-1 + U (U'S_Z^-1 U - U'P_Z^-1 U) U'`` with ``U`` the
    normalized constant vectors of factors ``2..F`` (see the module
    docstring).  A factor whose variance is 0 (``frozen``) has variances 0.
    """
    d = design
    nz = system.pdiag.size
    dinv = 1.0 / system.pdiag
    U = np.zeros((nz, d.F - 1))
    for f in range(1, d.F):
        U[system.offsets[f - 1] : system.offsets[f], f - 1] = 1.0 / np.sqrt(d.m[f])
    SU = _solve_random_part(system, U, _VARIANCE_TOL) if nz else U
    coef = 0.5 * (U.T @ SU + SU.T @ U) - U.T @ (dinv[:, None] * U)
    rest = dinv + np.einsum("ij,jk,ik->i", U, coef, U)
    # factor 1: (D_1^-1 + K'(P_Z^-1 + U coef U')K)_jj, row j of K' = D_1j^-1/2 Bs_j
    _, rows, _ = d.operators(system.with_x)
    Bs = system.Bs
    weight = np.zeros(system.size)
    weight[:nz] = dinv
    diag_part = np.bincount(rows, weights=Bs.data**2 * weight[Bs.indices], minlength=d.m[0])
    Upad = np.zeros((system.size, d.F - 1))
    Upad[:nz] = U
    BU = Bs @ Upad
    first = system.invD1 * (1.0 + diag_part + np.einsum("ij,jk,ik->i", BU, coef, BU))
    out = [first] + [system.block(rest, f).copy() for f in range(1, d.F)]
    return [np.zeros_like(v) if frozen[f] else sigma2 * v for f, v in enumerate(out)]


# ----------------------------------------------------------------------------- GLMMs


def laplace_random_part(reduction, variances, rng):
    """What a GLMM's Laplace criterion needs of its random part, at ``sigma = 1``.

    For a working reduction (weights ``W``) of random intercepts and the
    variances ``sigma_f^2``: ``log|Lambda'Z'WZ Lambda + I| = log det(Z'WZ +
    Lambda^-2) - sum_f m_f log lambda_f`` (``lambda_f = 1 / sigma_f^2``) by the
    deflated SLQ of :func:`log_likelihood` on the system without fixed
    effects, its Monte Carlo standard error, and the approximate conditional
    variances of the modes (:func:`conditional_variances`), in the user's
    factor and level order.
    """
    d = _Design(reduction)
    variances = np.asarray(variances, dtype=float)[d.order]
    system = _SchurSystem(d, 1.0 / variances, with_x=False)
    logdet_A, se, _, _ = _logdet_preconditioned(d, _Preconditioned(system), rng)
    lam = system.lam
    logdet = float(np.sum(np.log1p(d.counts[0] / lam[0]))) + logdet_A
    for f in range(1, d.F):
        logdet += float(np.sum(np.log(system.block(system.pdiag, f) / lam[f])))
    cond = conditional_variances(d, system, 1.0, np.zeros(d.F, dtype=bool))
    return logdet, se, d.to_user(cond)
