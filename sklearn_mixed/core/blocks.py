"""Stacks of small ``k x k`` blocks, one per level of a grouping factor.

A closed term contributes one ``k x k`` block per level (``k``: intercept and
slopes, rarely more than 3) and there may be a million levels.  Generic
batched routines (``numpy.linalg`` on ``(m, k, k)`` stacks, ``einsum``) loop
over the levels in C with per-block overhead; here the loops run over the
``k`` rows and columns instead, each step a vector operation over all ``m``
levels.
"""

import numpy as np

__all__ = [
    "batched_cholesky",
    "block_matmul",
    "batched_lower_inverse",
    "blockwise_outer",
    "rows_times_blocks",
]

# Above this block size numpy's batched LAPACK calls are faster than
# loops over the block's rows and columns.
_UNROLL_UP_TO = 4


def batched_cholesky(D):
    """Lower Cholesky factors of an (m, k, k) stack of SPD blocks.

    Raises ``numpy.linalg.LinAlgError`` if a block is not positive definite.
    """
    m, k, _ = D.shape
    if k > _UNROLL_UP_TO:
        return np.linalg.cholesky(D)
    L = np.zeros_like(D)
    for j in range(k):
        # L_jj = sqrt(D_jj - sum_l L_jl^2), L_ij = (D_ij - sum_l L_il L_jl) / L_jj
        pivot = D[:, j, j] - (L[:, j, :j] ** 2).sum(axis=1)
        if np.any(pivot <= 0.0):
            raise np.linalg.LinAlgError("a block is not positive definite")
        L[:, j, j] = np.sqrt(pivot)
        for i in range(j + 1, k):
            off = D[:, i, j] - (L[:, i, :j] * L[:, j, :j]).sum(axis=1)
            L[:, i, j] = off / L[:, j, j]
    return L


def batched_lower_inverse(L):
    """Inverses of an (m, k, k) stack of lower-triangular blocks (forward substitution)."""
    m, k, _ = L.shape
    if k > _UNROLL_UP_TO:
        return np.linalg.inv(L)
    inv = np.zeros_like(L)
    for i in range(k):
        inv[:, i, i] = 1.0 / L[:, i, i]
        for j in range(i):
            # (L^-1)_ij = -sum_{l=j}^{i-1} L_il (L^-1)_lj / L_ii
            acc = (L[:, i, j:i] * inv[:, j:i, j]).sum(axis=1)
            inv[:, i, j] = -acc * inv[:, i, i]
    return inv


def block_matmul(A, B):
    """``A[j] @ B[j]`` for (m, k, k) stacks (either may be a single (k, k) block)."""
    A = A if A.ndim == 3 else A[None]
    B = B if B.ndim == 3 else B[None]
    m, k = max(A.shape[0], B.shape[0]), A.shape[1]
    out = np.empty((m, k, B.shape[2]))
    for i in range(k):
        for j in range(B.shape[2]):
            acc = A[:, i, 0] * B[:, 0, j]
            for c in range(1, A.shape[2]):
                acc = acc + A[:, i, c] * B[:, c, j]
            out[:, i, j] = acc
    return out


def rows_times_blocks(B, M, transpose=False):
    """``out[r, j, :] = B[r, j, :] @ M[j]`` (or ``@ M[j]'``) for B (r, m, k), M (m, k, l)."""
    if transpose:
        M = np.swapaxes(M, 1, 2)
    r, m, k = B.shape
    out = np.empty((r, m, M.shape[2]))
    for col in range(M.shape[2]):
        acc = B[:, :, 0] * M[None, :, 0, col]
        for a in range(1, k):
            acc += B[:, :, a] * M[None, :, a, col]
        out[:, :, col] = acc
    return out


def blockwise_outer(A, B):
    """``out[j, a, b] = sum_r A[r, j, a] B[r, j, b]`` for A (r, m, k), B (r, m, l)."""
    k, l_ = A.shape[2], B.shape[2]
    out = np.empty((A.shape[1], k, l_))
    for a in range(k):
        for b in range(l_):
            out[:, a, b] = (A[:, :, a] * B[:, :, b]).sum(axis=0)
    return out
