"""Profiled deviance and the solution of Henderson's equations at theta.

With the blocked factor of ``M(theta)`` (see :mod:`.cholesky`), ``L_Z`` its
random-effects part, ``L_X`` its fixed-effects part and ``r^2`` the penalized
residual sum of squares, ``sigma^2`` profiled out (Bates et al. 2015, eq. 34
and 41)::

    ML:   d(theta)   = log|L_Z|^2 + n (1 + log(2 pi r^2 / n)) - log|W|
    REML: d_R(theta) = log|L_Z|^2 + log|L_X|^2
                       + (n - p) (1 + log(2 pi r^2 / (n - p))) - log|W|

(``log|W| = sum log w_i`` for prior weights, whose products are in the
factor).  At a known residual standard deviation ``sigma`` (MixedModels.jl's
``sigma=``, meta-analysis) nothing is profiled: ``nu (1 + log(2 pi r^2 / nu))``
becomes ``r^2 / sigma^2 + nu log(2 pi sigma^2)`` with ``nu = n`` (ML) or
``n - p`` (REML).  :class:`Criterion` holds which of these a fit uses.

The same factor gives ``beta`` and the spherical modes ``u`` by back
substitution, ``b = Lambda u`` (the BLUPs), ``Var(beta) = sigma^2 (L_X L_X')^-1``
and the conditional variances ``Var(b | y) = sigma^2 Lambda (L_Z L_Z')^-1 Lambda'``.
"""

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy.linalg import lapack

from .blocks import blockwise_outer, bmm
from .cholesky import block_diagonal

__all__ = [
    "Criterion",
    "conditional_covariance_blocks",
    "fixed_effects_covariance",
    "log_determinants",
    "profiled_deviance",
    "residual_variance",
    "solve_coefficients",
]


def log_determinants(factor, p):
    """``(log|L_Z|^2, log|L_X|^2, r^2)`` of a :class:`BlockedFactor`."""
    q = factor.q_dense
    d22 = np.diag(factor.L22)
    logdet_Z = 2.0 * np.log(d22[:q]).sum()
    for stage in factor.stages:
        logdet_Z += 2.0 * np.log(np.diagonal(stage.L, axis1=1, axis2=2)).sum()
    logdet_X = 2.0 * np.log(d22[q : q + p]).sum()
    return logdet_Z, logdet_X, d22[-1] ** 2


@dataclass(frozen=True)
class Criterion:
    """The deviance a fit minimizes: REML or ML, sigma profiled out or known.

    Attributes
    ----------
    n, p : int
        Observations (positive weights) and fixed effects.
    reml : bool
    sum_log_w : float
        ``log|W|``, 0 without prior weights.
    fixed_sigma : float or None
        A known residual standard deviation; None profiles sigma out.
    """

    n: int
    p: int
    reml: bool
    sum_log_w: float = 0.0
    fixed_sigma: float | None = None

    @property
    def dof(self):
        """``n - p`` (REML) or ``n`` (ML)."""
        return self.n - self.p if self.reml else self.n

    def value(self, logdet_Z, logdet_X, pwrss):
        """The deviance from the factor's log-determinants and ``r^2``."""
        value = float(logdet_Z) - self.sum_log_w
        if self.reml:
            value += float(logdet_X)
        nu = self.dof
        if self.fixed_sigma is None:
            if not pwrss > 0.0:  # an exact fit (r = 0) has deviance -inf
                return -math.inf
            return value + nu * (1.0 + math.log(2.0 * math.pi * float(pwrss) / nu))
        s2 = self.fixed_sigma**2
        return value + float(pwrss) / s2 + nu * math.log(2.0 * math.pi * s2)

    def response_weight(self, pwrss):
        """``c`` with ``d(deviance) = d(c log r^2)`` at this ``r^2`` (for adjoints)."""
        return self.dof if self.fixed_sigma is None else pwrss / self.fixed_sigma**2

    def sigma2(self, pwrss):
        """``sigma^2``: ``r^2 / nu``, or the known value."""
        return pwrss / self.dof if self.fixed_sigma is None else self.fixed_sigma**2


def profiled_deviance(factor, criterion):
    """The deviance of ``criterion`` (-2 log-likelihood or -2 REML criterion)."""
    logdet_Z, logdet_X, pwrss = log_determinants(factor, criterion.p)
    return criterion.value(logdet_Z, logdet_X, pwrss)


def residual_variance(factor, criterion):
    """sigma^2 = r^2 / n (ML) or r^2 / (n - p) (REML), or the known value."""
    return criterion.sigma2(factor.L22[-1, -1] ** 2)


def solve_coefficients(factor, p):
    """Fixed effects and spherical modes by back substitution.

    The last row of the augmented factor holds the right-hand side; ``[u_D;
    beta]`` solves ``L22[:-1, :-1]' v = c``, then the closed terms, last
    first, level by level: ``L_i[j]' u_ij = c_ij - (C_i' u_later - C_Xi' beta)_j``.

    Returns
    -------
    beta : ndarray of shape (p,)
    u_closed : list of ndarray of shape (m_i k_i,), in elimination order
    u_dense : ndarray of shape (q_D,)
    """
    L22, q = factor.L22, factor.q_dense
    v = la.solve_triangular(L22[:-1, :-1], L22[-1, :-1], lower=True, trans="T")
    u_dense, beta = v[:q], v[q:]
    u_closed = [None] * len(factor.stages)
    for i in reversed(range(len(factor.stages))):
        stage = factor.stages[i]
        m, k = stage.L.shape[:2]
        later = np.concatenate(u_closed[i + 1 :] + [u_dense])
        rhs = stage.C_W[-1] - stage.C_W[:p].T @ beta - stage.C_Z.T @ later
        # u_ij = L_i[j]^-T rhs_j
        u_closed[i] = np.einsum("mkl,mk->ml", stage.L_inv, rhs.reshape(m, k)).ravel()
    return beta, u_closed, u_dense


def fixed_effects_covariance(factor, p, sigma2):
    """``Var(beta_hat) = sigma^2 L_X^-T L_X^-1``."""
    q = factor.q_dense
    L_X = factor.L22[q : q + p, q : q + p]
    L_X_inv = la.solve_triangular(L_X, np.eye(p), lower=True)
    return sigma2 * (L_X_inv.T @ L_X_inv)


def _column_pairs(G, k):
    """``out[j, a, b] = sum_r G[r, j k + a] G[r, j k + b]`` for sparse or dense G."""
    m = G.shape[1] // k
    if not sp.issparse(G):
        Gr = G.reshape(G.shape[0], m, k)
        return blockwise_outer(Gr, Gr)
    G = G.tocsc()
    out = np.empty((m, k, k))
    for a in range(k):
        for b in range(a, k):
            out[:, a, b] = np.asarray(G[:, a::k].multiply(G[:, b::k]).sum(axis=0)).ravel()
            out[:, b, a] = out[:, a, b]
    return out


def later_rows(factor, h, s):
    """Rows of closed term ``s`` (the dense terms when ``s`` is past the last
    closed term) in stage ``h``'s ``C_Z``, laid out as [closed h+1..r, dense]."""
    C = factor.stages[h].C_Z
    if s == len(factor.stages):
        return C[C.shape[0] - factor.q_dense :]
    sizes = [stage.L.shape[0] * stage.L.shape[1] for stage in factor.stages]
    start = sum(sizes[h + 1 : s])
    return C[start : start + sizes[s]]


def _inverse_factor_columns(factor, i, L_D_inv):
    """The columns of ``L_Z^-1`` belonging to closed term ``i``, by stage.

    ``L_Z x = e`` is solved forward: ``X_i = L_i^-1``, then for each later
    closed term ``s``: ``X_s = -L_s^-1 sum_h C_sh X_h``, and for the dense
    terms ``X_D = -L_D^-1 sum_h C_Dh X_h``.  Nesting keeps the ``X_s`` sparse.
    """
    stages = factor.stages
    pieces = [block_diagonal(stages[i].L_inv)]
    for s in range(i + 1, len(stages) + 1):
        acc = later_rows(factor, i, s) @ pieces[0]
        for h in range(i + 1, s):
            acc = acc + later_rows(factor, h, s) @ pieces[h - i]
        if s < len(stages):
            pieces.append(-(block_diagonal(stages[s].L_inv) @ acc))
        else:
            pieces.append(-(L_D_inv @ acc.toarray()))
    return pieces


def conditional_covariance_blocks(factor, dense_sizes, pairs=None):
    """Diagonal blocks of ``(L_Z L_Z')^-1``, one (m, k, k) stack per term.

    The block of a level is the Gram matrix of its columns of ``L_Z^-1``
    (``(L_Z L_Z')^-1 = L_Z^-T L_Z^-1``).  Closed terms come first, in
    elimination order, then the dense terms, whose blocks are those of
    ``S_D^-1 = L_D^-T L_D^-1`` (one LAPACK ``potri``).

    Parameters
    ----------
    dense_sizes : list of (m, k)
        Levels and coefficients of the dense terms.
    pairs : WeightedGram, optional
        Precomputed products of the closed term's cross-tabulation (random
        intercepts): its blocks are then ``(1 + c_j' S_D^-1 c_j) / D_j`` from
        one sparse product.
    """
    q = factor.q_dense
    if q == 0 and len(factor.stages) == 1:  # one term: L_Z = blockdiag(L_j)
        L_inv = factor.stages[0].L_inv
        return [np.matmul(np.swapaxes(L_inv, 1, 2), L_inv)]
    S_inv = _dense_inverse(factor.L22[:q, :q])
    L_D_inv = None
    blocks = []
    for i, stage in enumerate(factor.stages):
        if i == 0 and pairs is not None and stage.row_scale is not None:
            blocks.append(_intercept_blocks(stage, S_inv, pairs))
            continue
        if len(factor.stages) == 1:
            blocks.append(_one_stage_blocks(stage, S_inv))
            continue
        if L_D_inv is None:
            L_D_inv = la.solve_triangular(factor.L22[:q, :q], np.eye(q), lower=True)
        k = stage.L.shape[1]
        pieces = _inverse_factor_columns(factor, i, L_D_inv)
        blocks.append(sum(_column_pairs(piece, k) for piece in pieces))
    start = 0
    for m, k in dense_sizes:
        # the k x k diagonal blocks of S_D^-1 over this term's columns
        square = S_inv[start : start + m * k, start : start + m * k].reshape(m, k, m, k)
        lower = np.tril(square[np.arange(m), :, np.arange(m), :])
        blocks.append(lower + np.swapaxes(np.tril(lower, -1), 1, 2))
        start += m * k
    return blocks


def _one_stage_blocks(stage, S_inv):
    """The blocks of the one closed term: ``L_j^-T (I + C_j' S_D^-1 C_j) L_j^-1``.

    Its columns of ``L_Z^-1`` are ``[L_j^-1; -L_D^-1 C_j L_j^-1]`` (``C_j``
    its columns of ``C_Z``), whose Gram matrix this is; ``C_Z`` is sparse, so
    ``S_D^-1 C_Z`` costs its non-zeros times ``q_D``.
    """
    m, k, _ = stage.L.shape
    C = stage.C_Z.tocoo()
    S_full = np.tril(S_inv) + np.tril(S_inv, -1).T
    SC = np.asarray((C.T @ S_full).T)  # (q_D, m k)
    level = C.col // k
    inner = np.zeros((m, k, k))
    for b in range(k):
        # inner[j, a, b] = sum_r C[r, j k + a] (S_D^-1 C)[r, j k + b]
        values = C.data * SC[C.row, level * k + b]
        inner[:, :, b] = np.bincount(C.col, values, minlength=m * k).reshape(m, k)
    inner += np.eye(k)
    L_inv = stage.L_inv
    blocks = bmm(bmm(np.swapaxes(L_inv, 1, 2), inner), L_inv)
    return 0.5 * (blocks + np.swapaxes(blocks, 1, 2))


def _dense_inverse(L_D):
    """The lower triangle of ``S_D^-1 = L_D^-T L_D^-1`` (the upper is not set)."""
    if not L_D.size:
        return np.zeros(L_D.shape)
    S_inv, info = lapack.dpotri(L_D, lower=1)
    if info:
        raise np.linalg.LinAlgError(f"singular factor (dpotri info={info})")
    return S_inv


def _intercept_blocks(stage, S_inv, pairs):
    """``(1 + c_j' S_D^-1 c_j) / D_j`` with ``c_j = diag(r) n_j / L_j``."""
    forms = pairs.quadratic_forms(S_inv, stage.row_scale) * stage.col_scale**2
    D = stage.L[:, 0, 0] ** 2
    return ((1.0 + forms) / D)[:, None, None]
