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
    "bmm",
    "cholesky_adjoint",
    "left_times",
    "right_times",
    "segment_sum",
    "summed_products",
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
        if not pivot.min(initial=np.inf) > 0.0:
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


def cholesky_adjoint(L, L_inv, L_bar, half_lower):
    """``Mbar`` (symmetric) of ``M = L L'`` from ``Lbar`` (Murray 2016), batched:
    ``L^-T Phi(L' Lbar) L^-1``, ``Phi`` the lower triangle with its diagonal
    halved (``half_lower``: that ``k x k`` mask)."""
    Phi = bmm(np.swapaxes(L, 1, 2), L_bar) * half_lower
    M_bar = bmm(bmm(np.swapaxes(L_inv, 1, 2), Phi), L_inv)
    return 0.5 * (M_bar + np.swapaxes(M_bar, 1, 2))


def segment_sum(index, values, size):
    """``out[g] = sum of values[i] over i with index[i] == g``, for (n, ...) values:
    one ``bincount`` over (group, component) keys (``np.add.at`` is ~6x slower)."""
    values = np.asarray(values, dtype=float)
    inner = int(np.prod(values.shape[1:], dtype=np.int64))
    keys = (np.asarray(index, dtype=np.int64)[:, None] * inner + np.arange(inner)).ravel()
    out = np.bincount(keys, weights=values.reshape(-1), minlength=size * inner)
    return out.reshape((size,) + values.shape[1:])


# Below this many matrices, or above this inner size, numpy's matmul is faster.
_UNROLL_FROM = 512


def bmm(A, B):
    """``A[i] @ B[i]`` for (n, a, c) and (n, c, b) stacks of small matrices.

    numpy's batched matmul pays a per-matrix overhead that dominates for
    2 x 2 blocks; loops over the small dimensions run each product as a vector
    operation over the ``n`` matrices instead.
    """
    n, a, c = A.shape
    b = B.shape[2]
    if n < _UNROLL_FROM or a * b * c > 27:
        return np.matmul(A, B)
    out = np.empty((n, a, b))
    for i in range(a):
        for j in range(b):
            acc = A[:, i, 0] * B[:, 0, j]
            for l in range(1, c):
                acc += A[:, i, l] * B[:, l, j]
            out[:, i, j] = acc
    return out


def summed_products(A, B):
    """``sum_i A[i] @ B[i]`` for (n, a, c) and (n, c, b) stacks: one GEMM over
    ``(i, c)`` instead of ``n`` small products and a sum."""
    return np.tensordot(A, B, axes=([0, 2], [0, 1]))


def right_times(A, M):
    """``A[i] @ M`` for a stack A (n, a, c) and one matrix M (c, b): one GEMM."""
    n, a, c = A.shape
    return (np.ascontiguousarray(A).reshape(n * a, c) @ M).reshape(n, a, M.shape[1])


def left_times(M, A):
    """``M @ A[i]`` for one matrix M (b, a) and a stack A (n, a, c): one GEMM."""
    n, a, c = A.shape
    flat = np.ascontiguousarray(np.swapaxes(A, 1, 2)).reshape(n * c, a) @ M.T
    return np.swapaxes(flat.reshape(n, c, M.shape[0]), 1, 2)
