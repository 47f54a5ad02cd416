"""Profiled deviance and the solution of Henderson's equations at theta.

With the blocked factor of ``M(theta)`` (see :mod:`.cholesky`), ``L_Z`` its
random-effects part, ``L_X`` its fixed-effects part and ``r^2`` the penalized
residual sum of squares, ``sigma^2`` profiled out (Bates et al. 2015, eq. 34
and 41)::

    ML:   d(theta)   = log|L_Z|^2 + n (1 + log(2 pi r^2 / n))
    REML: d_R(theta) = log|L_Z|^2 + log|L_X|^2
                       + (n - p) (1 + log(2 pi r^2 / (n - p)))

The same factor gives ``beta`` and the spherical modes ``u`` by back
substitution, ``b = Lambda u`` (the BLUPs), ``Var(beta) = sigma^2 (L_X L_X')^-1``
and the conditional variances ``Var(b | y) = sigma^2 Lambda (L_Z L_Z')^-1 Lambda'``.
"""

import numpy as np
import scipy.linalg as la

__all__ = [
    "conditional_covariance_blocks",
    "fixed_effects_covariance",
    "log_determinants",
    "profiled_deviance",
    "residual_variance",
    "solve_coefficients",
]


def log_determinants(factor, q2, p):
    """``(log|L_Z|^2, log|L_X|^2, r^2)`` of a :class:`BlockedFactor`."""
    d11 = np.diagonal(factor.L11, axis1=1, axis2=2)
    d22 = np.diag(factor.L22)
    logdet_Z = 2.0 * (np.log(d11).sum() + np.log(d22[:q2]).sum())
    logdet_X = 2.0 * np.log(d22[q2 : q2 + p]).sum()
    return logdet_Z, logdet_X, d22[-1] ** 2


def profiled_deviance(factor, n, p, q2, method):
    """-2 log-likelihood (ML) or -2 REML criterion, profiled over beta and sigma."""
    logdet_Z, logdet_X, pwrss = log_determinants(factor, q2, p)
    if method == "ml":
        return logdet_Z + n * (1.0 + np.log(2.0 * np.pi * pwrss / n))
    dof = n - p
    return logdet_Z + logdet_X + dof * (1.0 + np.log(2.0 * np.pi * pwrss / dof))


def residual_variance(factor, n, p, method):
    """sigma^2 = r^2 / n (ML) or r^2 / (n - p) (REML)."""
    pwrss = factor.L22[-1, -1] ** 2
    return pwrss / (n if method == "ml" else n - p)


def solve_coefficients(factor, q2, p):
    """Fixed effects ``beta`` and spherical modes ``(u1, u2)`` by back substitution.

    The last row of the augmented factor holds ``(c_u1', c_u2', c_beta')``;
    ``[u2; beta]`` solves ``L22[:-1, :-1]' v = c`` and then, level by level,
    ``L11[j]' u1_j = c_u1j - (C' v)_j``.
    """
    L22 = factor.L22
    v = la.solve_triangular(L22[:-1, :-1], L22[-1, :-1], lower=True, trans="T")
    u2, beta = v[:q2], v[q2:]
    m1, k1 = factor.L11.shape[:2]
    C_W = factor.C_W
    rhs = C_W[-1] - C_W[:p].T @ beta
    if q2:
        rhs = rhs - factor.C_Z.T @ u2
    # u1_j = L11[j]^-T rhs_j
    u1 = np.einsum("mkl,mk->ml", factor.L11_inv, rhs.reshape(m1, k1))
    return beta, u1, u2


def fixed_effects_covariance(factor, q2, p, sigma2):
    """``Var(beta_hat) = sigma^2 L_X^-T L_X^-1``."""
    L_X = factor.L22[q2 : q2 + p, q2 : q2 + p]
    L_X_inv = la.solve_triangular(L_X, np.eye(p), lower=True)
    return sigma2 * (L_X_inv.T @ L_X_inv)


def conditional_covariance_blocks(factor, q2, term_sizes):
    """Diagonal blocks of ``(L_Z L_Z')^-1``, one (m, k, k) stack per term.

    With ``L_Z = [[L11, 0], [C_Z, L2]]`` the inverse factor is
    ``[[L11^-1, 0], [-L2^-1 C_Z L11^-1, L2^-1]]``, so the block of level ``j``
    of term 1 is ``L11[j]^-T L11[j]^-1 + G_j' G_j`` with
    ``G = L2^-1 C_Z L11^-1``, and the blocks of the other terms are Gram
    matrices of column blocks of ``L2^-1``.

    Parameters
    ----------
    term_sizes : list of (m, k)
        Levels and coefficients per term, term 1 first.
    """
    L11_inv = factor.L11_inv
    m1, k1 = L11_inv.shape[:2]
    blocks = [np.swapaxes(L11_inv, 1, 2) @ L11_inv]
    if not q2:
        return blocks
    L2_inv = la.solve_triangular(factor.L22[:q2, :q2], np.eye(q2), lower=True)
    # G[:, j-block] = L2^-1 C_Z[:, j-block] L11[j]^-1
    CL = np.einsum("rmk,mkl->rml", factor.C_Z.toarray().reshape(q2, m1, k1), L11_inv)
    G = L2_inv @ CL.reshape(q2, m1 * k1)
    G = G.reshape(q2, m1, k1)
    blocks[0] = blocks[0] + np.einsum("rmk,rml->mkl", G, G)
    start = 0
    for m, k in term_sizes[1:]:
        cols = L2_inv[:, start : start + m * k].reshape(q2, m, k)
        blocks.append(np.einsum("rmk,rml->mkl", cols, cols))
        start += m * k
    return blocks
