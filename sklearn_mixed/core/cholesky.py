"""Blocked Cholesky factor of the augmented penalized least squares system.

At relative covariance factor ``Lambda(theta) = diag(Lambda1, Lambda2)`` the
penalized least squares problem (Bates et al. 2015, eq. 16-18) is solved by the
Cholesky factor of the symmetric matrix, augmented with ``y``::

    M = [Lambda' Z'Z Lambda + I   Lambda' Z'X   Lambda' Z'y]
        [X'Z Lambda               X'X           X'y        ]
        [y'Z Lambda               y'X           y'y        ]

Term 1 is block diagonal in ``Lambda1' Z1'Z1 Lambda1 + I``, so its part of the
factor is a batch of ``k1 x k1`` factors ``L11[j]``, one per level (closed
form).  With ``C = M21 L11^-T`` (the rows of the other terms, X and y against
term 1), the rest is the dense Cholesky factor ``L22`` of the Schur complement
``S = M22 - C C'``.  The last row of ``L22`` is ``(c_u2', c_beta', r)`` with
``r^2`` the penalized residual sum of squares.
"""

from dataclasses import dataclass

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

__all__ = ["BlockedFactor", "blocked_cholesky", "block_diagonal", "relative_factor_matrix"]


@dataclass(frozen=True)
class BlockedFactor:
    """The blocked factor of ``M``; see the module docstring."""

    L11: np.ndarray  # (m1, k1, k1) lower triangular
    L11_inv: np.ndarray  # (m1, k1, k1)
    C_Z: sp.csr_matrix  # (q2, m1 k1): other terms against term 1
    C_W: np.ndarray  # (p + 1, m1 k1): X and y against term 1
    L22: np.ndarray  # (q2 + p + 1, q2 + p + 1) lower triangular


def block_diagonal(blocks):
    """Sparse block-diagonal matrix from an (m, k, k) stack of blocks."""
    m, k, _ = blocks.shape
    return sp.bsr_matrix((blocks, np.arange(m), np.arange(m + 1)), shape=(m * k, m * k)).tocsr()


def relative_factor_matrix(T_blocks, n_levels):
    """Sparse ``Lambda = diag(I_m (x) T)`` over several terms."""
    if not T_blocks:
        return sp.csr_matrix((0, 0))
    parts = [
        block_diagonal(np.broadcast_to(T, (m,) + T.shape))
        for T, m in zip(T_blocks, n_levels, strict=True)
    ]
    return sp.block_diag(parts, format="csr")


def blocked_cholesky(cp, T1, Lambda2):
    """Factor ``M(theta)`` given term 1's ``T1`` and the other terms' ``Lambda2``.

    Raises ``numpy.linalg.LinAlgError`` when the Schur complement is not
    positive definite (X rank deficient at this theta).
    """
    m1, k1 = cp.m1, cp.k1
    # L11[j] L11[j]' = T1' (Z1'Z1)_j T1 + I
    M11 = T1.T[None, :, :] @ cp.A11 @ T1[None, :, :]
    M11[:, np.arange(k1), np.arange(k1)] += 1.0
    L11 = np.linalg.cholesky(M11)
    L11_inv = np.linalg.inv(L11)
    # Per-level map from term-1 cross-products to C: R_j = T1 L11[j]^-T
    R1 = T1[None, :, :] @ np.swapaxes(L11_inv, 1, 2)
    p1 = cp.WZ1.shape[0]
    C_W = np.einsum("rmk,mkl->rml", cp.WZ1, R1).reshape(p1, m1 * k1)
    q2 = cp.q2
    S = np.empty((q2 + p1, q2 + p1))
    S[q2:, q2:] = cp.WW - C_W @ C_W.T
    if q2:
        C_Z = (Lambda2.T @ (cp.Z2Z1 @ block_diagonal(R1))).tocsr()
        ZZ = (Lambda2.T @ (Lambda2.T @ cp.Z2Z2).T).T  # Lambda2' Z2'Z2 Lambda2
        S[:q2, :q2] = ZZ + np.eye(q2) - (C_Z @ C_Z.T).toarray()
        S[q2:, :q2] = (Lambda2.T @ cp.WZ2.T).T - (C_Z @ C_W.T).T
        S[:q2, q2:] = S[q2:, :q2].T
    else:
        C_Z = sp.csr_matrix((0, m1 * k1))
    L22 = la.cholesky(S, lower=True, check_finite=False)
    return BlockedFactor(L11=L11, L11_inv=L11_inv, C_Z=C_Z, C_W=C_W, L22=L22)
