"""Blocked Cholesky factor of the augmented penalized least squares system.

At relative covariance factor ``Lambda(theta)`` the penalized least squares
problem (Bates et al. 2015, eq. 16-18) is solved by the Cholesky factor of the
symmetric matrix, augmented with ``y``::

    M = [Lambda' Z'Z Lambda + I   Lambda' Z'X   Lambda' Z'y]
        [X'Z Lambda               X'X           X'y        ]
        [y'Z Lambda               y'X           y'y        ]

The *closed* terms are eliminated one after the other, level by level.  Term
1 (the most levels) has a block-diagonal ``Lambda1' Z1'Z1 Lambda1 + I``, so
its factor is a batch of ``k1 x k1`` factors ``L1[j]``.  A later closed term
``i`` has all earlier closed terms nested in it, so the fill-in
``sum_h C_ih C_ih'`` left on its diagonal block by their elimination is block
diagonal too (each level of an inner term meets one level of term ``i``):
nested factors keep their sparsity.  With
``C_ri = (B_ri - sum_h C_rh C_ih') L_i^-T`` for every later row ``r`` (later
terms, X and y), what remains is the dense Cholesky factor ``L22`` of the
Schur complement ``S = M_DD - sum_i C_Di C_Di'`` over the dense terms, X and
y.  The last row of ``L22`` is ``(c_uD', c_beta', r)``, ``r^2`` being the
penalized residual sum of squares.  For random intercepts crossed with term 1,
``S`` is assembled on its sparsity pattern straight into LAPACK's layout
(:mod:`.schur`).
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import blas, lapack

from .blocks import batched_cholesky, batched_lower_inverse, block_matmul, rows_times_blocks
from .threads import all_blas_threads

__all__ = [
    "BlockedFactor",
    "augmented_cholesky",
    "EliminatedTerm",
    "block_diagonal",
    "row_block_pairs",
    "blocked_cholesky",
    "fill_in_gram",
    "gram",
    "log_pivot_adjoint",
    "relative_factor_matrix",
]


@dataclass(frozen=True)
class EliminatedTerm:
    """The part of the factor belonging to one closed term."""

    L: np.ndarray  # (m, k, k) lower triangular, one per level
    L_inv: np.ndarray  # (m, k, k)
    C_Z: sp.csr_matrix  # (later random-effects columns, m k)
    C_W: np.ndarray  # (p + 1, m k): X and y against this term
    # random intercepts: C_Z = diag(row_scale) later_Z diag(col_scale)
    row_scale: np.ndarray | None = None
    col_scale: np.ndarray | None = None


@dataclass(frozen=True)
class BlockedFactor:
    """The blocked factor of ``M``; see the module docstring."""

    stages: tuple  # of EliminatedTerm, in elimination order
    L22: np.ndarray  # (q_D + p + 1, q_D + p + 1) lower triangular
    q_dense: int  # q_D, the dense random-effects columns leading L22


def log_pivot_adjoint(L, weights, criterion):
    """``Sbar = L^-T diag(w) L^-1``: the adjoint of ``sum_i w_i log L_ii^2``.

    ``weights`` are the deviance's weights of the log pivots but the last;
    the response's (the last) is ``criterion.response_weight(r^2)`` at
    ``r^2 = L[-1, -1]^2``.  Raises ``LinAlgError`` if ``L`` is singular.
    """
    weight = np.array(weights, dtype=float)
    weight[-1] = criterion.response_weight(L[-1, -1] ** 2)
    L_inv, info = lapack.dtrtri(L, lower=1)
    if info:
        raise np.linalg.LinAlgError(f"singular factor (dtrtri info={info})")
    root = np.sqrt(weight)[:, None] * L_inv
    return root.T @ root


def augmented_cholesky(M, overwrite=False):
    """Lower Cholesky factor of an augmented matrix whose last row is the response's.

    The response's pivot ``r^2`` (the penalized residual sum of squares) is 0
    when the other columns fit it exactly (a constant response, say): LAPACK
    then stops at the last pivot, with the rest of the factor complete, and
    ``r = 0`` is set.  Raises ``numpy.linalg.LinAlgError`` when an earlier
    pivot fails (the system itself is singular).
    """
    L, info = lapack.dpotrf(M, lower=1, clean=1, overwrite_a=overwrite)
    if info == M.shape[0]:  # only the response's pivot: r^2 <= 0 by rounding
        L[-1, -1] = 0.0
    elif info:
        raise np.linalg.LinAlgError(f"matrix is not positive definite (dpotrf info={info})")
    return L


def block_diagonal(blocks):
    """Sparse (CSR) block-diagonal matrix from an (m, k, k) stack of blocks."""
    m, k, _ = blocks.shape
    # row j k + a holds columns j k .. j k + k - 1
    indices = (np.arange(m * k)[:, None] // k * k + np.arange(k)[None, :]).ravel()
    indptr = np.arange(0, m * k * k + 1, k)
    data = np.ascontiguousarray(blocks).reshape(-1)
    return sp.csr_matrix((data, indices, indptr), shape=(m * k, m * k))


def relative_factor_matrix(T_blocks, n_levels):
    """Sparse ``Lambda = diag(I_m (x) T)`` over several terms."""
    if not T_blocks:
        return _EMPTY
    if all(T.shape == (1, 1) for T in T_blocks):  # random intercepts: a diagonal
        diag = np.repeat([T[0, 0] for T in T_blocks], n_levels).astype(float)
        positions = np.arange(diag.size + 1)
        return sp.csr_matrix((diag, positions[:-1], positions), shape=(diag.size,) * 2)
    parts = [
        block_diagonal(np.broadcast_to(T, (m,) + T.shape))
        for T, m in zip(T_blocks, n_levels, strict=True)
    ]
    return _block_diag(parts)


_EMPTY = sp.csr_matrix((0, 0))


def _block_diag(parts):
    parts = [P for P in parts if P.shape[0]]
    if not parts:
        return _EMPTY
    if len(parts) == 1:
        return parts[0]
    return sp.block_diag(parts, format="csr")


def row_block_pairs(H, Y, k):
    """``out[l, a, b] = sum_c H[l k + a, c] Y[l k + b, c]`` for sparse ``H`` (Y sparse
    or dense): with ``Y = H``, the diagonal ``k x k`` blocks of ``H H'``."""
    m = H.shape[0] // k
    out = np.empty((m, k, k))
    for a in range(k):
        Ha = H[a::k]
        for b in range(k):
            out[:, a, b] = np.asarray(Ha.multiply(Y[b::k]).sum(axis=1)).ravel()
    return out


def _diagonal(Lambda):
    """The diagonal of a sparse ``Lambda`` when that is all it holds (random
    intercepts: every ``T`` is 1 x 1), else None."""
    rows = np.repeat(np.arange(Lambda.shape[0]), np.diff(Lambda.indptr))
    if np.any(Lambda.data[Lambda.indices != rows]):  # a stored value off the diagonal
        return None
    return Lambda.diagonal()


# Above this density of C (stored entries / size), C C' is a dense syrk: BLAS
# outruns the sparse product, whose cost grows as the square of the entries
# per column.
DENSE_GRAM_DENSITY = 0.05


def gram(C):
    """``C C'`` as a dense array, by sparse product or dense syrk as fits ``C``."""
    rows, cols = C.shape
    if not sp.issparse(C):
        dense = C
    elif rows and cols and C.nnz > DENSE_GRAM_DENSITY * rows * cols:
        dense = C.toarray()
    else:
        return (C @ C.T).toarray()
    with all_blas_threads(rows * rows * cols):
        G = blas.dsyrk(1.0, dense.T, trans=1, lower=1)  # dense.T is Fortran-ordered
    return G + np.tril(G, -1).T


def _scale_csr(M, rows=None, cols=None):
    """``diag(rows) M diag(cols)`` for CSR ``M``, on its stored values."""
    out = M.copy()
    if rows is not None:
        out.data *= np.repeat(rows, np.diff(M.indptr))
    if cols is not None:
        out.data *= cols[M.indices]
    return out


def _eliminate(D, B_Z, B_W, k, row_scale=None):
    """Factor the block-diagonal ``D`` and form ``C = B L^-T`` for later rows.

    ``row_scale``: ``B_Z = diag(row_scale) later_Z`` (random intercepts), recorded
    with the column scale ``1 / L`` so that ``C_Z C_Z'`` can be formed from
    precomputed products.
    """
    if k == 1:  # scalar blocks: L = sqrt(D)
        L = np.sqrt(D)
        L_inv = 1.0 / L
        col_scale = L_inv[:, 0, 0]
        C_Z = _scale_csr(B_Z, cols=col_scale) if B_Z.shape[0] else B_Z
        return EliminatedTerm(
            L=L,
            L_inv=L_inv,
            C_Z=C_Z,
            C_W=B_W * col_scale,
            row_scale=row_scale,
            col_scale=col_scale if row_scale is not None else None,
        )
    L = batched_cholesky(D)
    L_inv = batched_lower_inverse(L)
    if B_Z.shape[0]:
        C_Z = (B_Z @ block_diagonal(np.swapaxes(L_inv, 1, 2))).tocsr()
    else:
        C_Z = B_Z
    p1, m = B_W.shape[0], D.shape[0]
    C_W = rows_times_blocks(B_W.reshape(p1, m, k), L_inv, transpose=True).reshape(p1, m * k)
    return EliminatedTerm(L=L, L_inv=L_inv, C_Z=C_Z, C_W=C_W)


def _scaled_later_rows(blk, T, Lambda_later):
    """``B = Lambda_later' (Z_later' Z_i) Lambda_i`` for the later random-effects rows,
    and the row scale when ``B = diag(row_scale) Z_later' Z_i`` (else None)."""
    m, k = blk.n_levels, blk.n_coef
    if not blk.later_Z.shape[0]:
        return sp.csr_matrix((0, m * k)), None
    lam = _diagonal(Lambda_later)
    if k == 1 and lam is not None:
        row_scale = lam * T[0, 0]
        return _scale_csr(blk.later_Z, rows=row_scale), row_scale
    B = Lambda_later.T @ (blk.later_Z @ block_diagonal(np.broadcast_to(T, (m, k, k))))
    return B.tocsr(), None


def _closed_stage(cp, i, T, Lambda_later, stages, row_offsets):
    """Eliminate closed term ``i`` after the earlier ``stages``."""
    blk = cp.closed[i]
    m, k = blk.n_levels, blk.n_coef
    # D_j = T' A_j T + I - (fill-in of earlier stages), block diagonal by nesting
    D = block_matmul(block_matmul(T.T, blk.A), T)
    D[:, np.arange(k), np.arange(k)] += 1.0
    B_Z, row_scale = _scaled_later_rows(blk, T, Lambda_later)
    B_W = (blk.WZ @ T).reshape(-1, m * k)
    for h, stage in enumerate(stages):
        start = row_offsets[h][i]
        C_i = stage.C_Z[start : start + m * k]
        D -= row_block_pairs(C_i, C_i, k)
        B_Z = B_Z - stage.C_Z[start + m * k :] @ C_i.T
        B_W = B_W - (C_i @ stage.C_W.T).T
    if stages:
        row_scale = None  # B_Z now holds fill-in
    return _eliminate(D, B_Z.tocsr(), B_W, k, row_scale)


def fill_in_gram(cp, stage, C_D, power):
    """``C_D C_D'`` (``power=1``) or ``C_D D^-1 C_D'`` (``power=2``, random intercepts,
    ``D = L^2``), from the precomputed products when the closed term has them."""
    pairs = cp.closed[0].pairs
    if pairs is not None and stage.row_scale is not None and len(cp.closed) == 1:
        r = stage.row_scale
        return pairs(stage.col_scale ** (2 * power)) * np.outer(r, r)
    if power == 1:
        return gram(C_D)
    return gram(_scale_csr(C_D, cols=1.0 / stage.L[:, 0, 0]))


def _dense_schur_complement(cp, Lambda_dense, stages):
    """``S = M_DD - sum_i C_Di C_Di'`` over the dense terms, X and y."""
    q = cp.q_dense
    p1 = cp.WW.shape[0]
    S = np.empty((q + p1, q + p1))
    S[q:, q:] = cp.WW
    if q:
        lam = _diagonal(Lambda_dense)
        if lam is not None:  # Lambda' Z'Z Lambda by scaling rows and columns
            S[:q, :q] = cp.ZdZd * np.outer(lam, lam)
            S[q:, :q] = cp.WZd * lam[None, :]
        else:
            S[:q, :q] = (Lambda_dense.T @ (Lambda_dense.T @ cp.ZdZd).T).T
            S[q:, :q] = (Lambda_dense.T @ cp.WZd.T).T
        S[np.arange(q), np.arange(q)] += 1.0
    for stage in stages:
        C_W = stage.C_W
        S[q:, q:] -= C_W @ C_W.T
        if q:
            C_D = stage.C_Z[stage.C_Z.shape[0] - q :]
            S[:q, :q] -= fill_in_gram(cp, stage, C_D, 1)
            S[q:, :q] -= (C_D @ C_W.T).T
    if q:
        S[:q, q:] = S[q:, :q].T
    return S


def blocked_cholesky(cp, T_closed, Lambda_dense):
    """Factor ``M(theta)`` given the closed terms' ``T`` and the dense ``Lambda``.

    Raises ``numpy.linalg.LinAlgError`` when the Schur complement is not
    positive definite (X rank deficient at this theta).
    """
    sizes = [blk.n_levels * blk.n_coef for blk in cp.closed]
    n_closed = len(sizes)
    # row_offsets[h][i]: first row of closed term i among stage h's later rows
    row_offsets = [
        {i: sum(sizes[h + 1 : i]) for i in range(h + 1, n_closed)} for h in range(n_closed)
    ]
    stages = []
    for i, T in enumerate(T_closed):
        later_levels = [b.n_levels for b in cp.closed[i + 1 :]]
        Lambda_later = _block_diag(
            [relative_factor_matrix(T_closed[i + 1 :], later_levels), Lambda_dense]
        )
        stages.append(_closed_stage(cp, i, T, Lambda_later, stages, row_offsets))
    if cp.schur is not None and stages[0].row_scale is not None:
        lam = _diagonal(Lambda_dense)
        L22 = cp.schur.factor(stages[0], lam, cp.WZd, cp.WW)
    else:
        S = _dense_schur_complement(cp, Lambda_dense, stages)
        L22 = augmented_cholesky(S, overwrite=True)
    return BlockedFactor(stages=tuple(stages), L22=L22, q_dense=cp.q_dense)
