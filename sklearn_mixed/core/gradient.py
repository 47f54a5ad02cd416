"""Analytic gradient of the profiled deviance with respect to T, by adjoints.

The deviance depends on theta only through the blocked factor of ``M(theta)``
(:mod:`.cholesky`)::

    d = 2 sum_j log diag L11[j] + 2 sum_{i in D} log L22[i, i] + nu log L22[-1, -1]^2

(``D``: the rows of the other terms, and for REML those of X; ``nu = n`` for
ML, ``n - p`` for REML).  Reverse-mode differentiation walks the factorization
backwards, at the cost of about one more factorization:

1. ``L22 = chol(S)``: ``L22bar`` is diagonal, so ``Sbar = L22^-T P L22^-1`` with
   ``P = diag(1 on D, nu on the last row)`` (Murray 2016, the Cholesky adjoint).
2. ``S = M22 - C C'``:  ``Cbar = -2 Sbar C``.
3. ``C_j = B_j L11[j]^-T``: ``Bbar_j = Cbar_j L11[j]^-1`` and
   ``L11bar[j] = -tril(L11[j]^-T Cbar_j' C_j) + diag(2 / diag L11[j])``.
4. ``L11[j] = chol(M11[j])``: ``M11bar[j] = sym(L^-T Phi(L' L11bar) L^-1)``.
5. ``M11[j] = T1' A_j T1 + I``, ``B = Lambda_rest' [Z2'Z1; W'Z1] Lambda1`` and
   ``M22 = Lambda_rest' [Z2'Z2, Z2'W; W'Z2, W'W] Lambda_rest + I_Z``, so every
   adjoint becomes a ``k x k`` adjoint of each term's ``T``, summed over levels.

Only the diagonal blocks of ``Lambdabar`` are ever needed, so sparse products
are reduced block by block and never formed in full.
"""

import numpy as np
import scipy.linalg as la

__all__ = ["relative_factor_gradients"]


def _sparse_block_pairs(H, Y, k):
    """``out[l, a, b] = sum_c H[l k + a, c] Y[l k + b, c]`` (H sparse, Y dense)."""
    m = H.shape[0] // k
    out = np.empty((m, k, k))
    for a in range(k):
        Ha = H[a::k]
        for b in range(k):
            out[:, a, b] = np.asarray(Ha.multiply(Y[b::k]).sum(axis=1)).ravel()
    return out


def _column_block_pairs(G, Y, k):
    """``out[a, b] = sum_{r, j} G[r, j k + a] Y[r, j k + b]`` (G sparse, Y dense)."""
    out = np.empty((k, k))
    for a in range(k):
        Ga = G[:, a::k]
        for b in range(k):
            out[a, b] = Ga.multiply(Y[:, b::k]).sum()
    return out


def _cholesky_adjoint(L, L_inv, L_bar):
    """Batched adjoint of ``M = L L'`` (symmetric ``Mbar``) from ``Lbar``."""
    Phi = np.tril(np.swapaxes(L, 1, 2) @ L_bar)
    k = L.shape[1]
    Phi[:, np.arange(k), np.arange(k)] *= 0.5
    M_bar = np.swapaxes(L_inv, 1, 2) @ Phi @ L_inv
    return 0.5 * (M_bar + np.swapaxes(M_bar, 1, 2))


def _schur_adjoint(factor, q2, p, nu, reml):
    """``Sbar`` for the dense factor ``L22`` of the Schur complement."""
    L22 = factor.L22
    weight = np.zeros(L22.shape[0])
    weight[:q2] = 1.0
    if reml:
        weight[q2 : q2 + p] = 1.0
    weight[-1] = nu
    L_inv = la.solve_triangular(L22, np.eye(L22.shape[0]), lower=True, check_finite=False)
    return L_inv.T @ (weight[:, None] * L_inv)


def _term1_adjoint(cp, factor, T1, Cbar_Z, Cbar_W, Bbar_Z, G):
    """Adjoint of term 1's ``T1``."""
    blk, stage = cp.closed[0], factor.stages[0]
    m1, k1 = blk.n_levels, blk.n_coef
    L11, L11_inv = stage.L, stage.L_inv
    p1 = blk.WZ.shape[0]
    C_W = stage.C_W.reshape(p1, m1, k1)
    CbW = Cbar_W.reshape(p1, m1, k1)
    # Cbar_j' C_j summed over the rows of X, y and the other terms
    CtC = np.einsum("rja,rjb->jab", CbW, C_W)
    if cp.q_dense:
        CtC += _sparse_block_pairs(stage.C_Z.T.tocsr(), Cbar_Z.T, k1).transpose(0, 2, 1)
    L_bar = -np.tril(np.swapaxes(L11_inv, 1, 2) @ CtC)
    L_bar[:, np.arange(k1), np.arange(k1)] += 2.0 / np.diagonal(L11, axis1=1, axis2=2)
    M11_bar = _cholesky_adjoint(L11, L11_inv, L_bar)
    # Bbar_j = Cbar_j L11[j]^-1
    Bbar_W = np.einsum("rjk,jkl->rjl", CbW, L11_inv)
    T1_bar = 2.0 * np.einsum("jab,bc,jcd->ad", blk.A, T1, M11_bar)
    T1_bar += np.einsum("rja,rjb->ab", blk.WZ, Bbar_W)
    if cp.q_dense:
        T1_bar += _column_block_pairs(G, Bbar_Z, k1)
    return T1_bar


def relative_factor_gradients(cp, factor, T1, Lambda2, rest_sizes, Lambda1_Z2Z1, method):
    """Gradient of the profiled deviance with respect to each term's ``T``.

    Parameters
    ----------
    cp : CrossProducts
    factor : BlockedFactor
        The factor at the current theta.
    T1 : ndarray (k1, k1)
        Term 1's relative factor.
    Lambda2 : sparse (q2, q2)
        The other terms' relative factor.
    rest_sizes : list of (m, k)
        Levels and coefficients of the other terms.
    Lambda1_Z2Z1 : tuple of sparse matrices
        ``(G, H) = (Lambda2' Z2'Z1, Z2'Z1 Lambda1)``.
    method : {"reml", "ml"}

    Returns
    -------
    list of ndarray
        ``dd/dT`` per term, term 1 first (full matrices; the caller keeps the
        free elements).
    """
    n, p, q2 = cp.n, cp.p, cp.q_dense
    stage = factor.stages[0]
    m1, k1 = stage.L.shape[:2]
    reml = method == "reml"
    S_bar = _schur_adjoint(factor, q2, p, n - p if reml else n, reml)
    C_W = stage.C_W
    Cbar_W = -2.0 * (S_bar[q2:, q2:] @ C_W)
    Cbar_Z = None
    if q2:
        C_Z = stage.C_Z
        Cbar_W -= 2.0 * (C_Z.T @ S_bar[:q2, q2:]).T
        Cbar_Z = -2.0 * ((C_Z.T @ S_bar[:q2, :q2]).T + S_bar[:q2, q2:] @ C_W)
    G, H = Lambda1_Z2Z1
    Bbar_Z = None
    if q2:
        # Bbar_j = Cbar_j L11[j]^-1 for the other terms' rows
        Bbar_Z = np.einsum("rjk,jkl->rjl", Cbar_Z.reshape(q2, m1, k1), stage.L_inv).reshape(
            q2, m1 * k1
        )
    grads = [_term1_adjoint(cp, factor, T1, Cbar_Z, Cbar_W, Bbar_Z, G)]
    if not q2:
        return grads
    # Lambdabar2 = 2 Z2'Z2 Lambda2 Sbar_ZZ + 2 Z2'W Sbar_WZ + H Bbar_Z', diagonal blocks
    ZZ_Lambda = (Lambda2.T @ cp.ZdZd).T
    dense_part = 2.0 * (ZZ_Lambda @ S_bar[:q2, :q2] + cp.WZd.T @ S_bar[q2:, :q2])
    start = 0
    for m, k in rest_sizes:
        sl = slice(start, start + m * k)
        blocks = dense_part[sl, sl].reshape(m, k, m, k)
        diag = blocks[np.arange(m), :, np.arange(m), :]  # (m, k, k)
        diag = diag + _sparse_block_pairs(H[sl], Bbar_Z[sl], k)
        grads.append(diag.sum(axis=0))
        start += m * k
    return grads
