"""Analytic gradient of the profiled deviance with respect to T, by adjoints.

The deviance depends on theta only through the blocked factor of ``M(theta)``
(:mod:`.cholesky`)::

    d = 2 sum_j log diag L11[j] + 2 sum_{i in D} log L22[i, i] + nu log L22[-1, -1]^2

(``D``: the rows of the other terms, and for REML those of X; ``nu = n`` for
ML, ``n - p`` for REML; at a known residual standard deviation ``sigma`` the
last term is ``r^2 / sigma^2``, whose derivative is that of ``nu log r^2``
with ``nu = r^2 / sigma^2``: :meth:`.deviance.Criterion.response_weight`).
Reverse-mode differentiation walks the factorization backwards, at the cost of
about one more factorization:

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
from scipy.linalg import lapack

from .blocks import block_matmul, blockwise_outer, rows_times_blocks, summed_products
from .cholesky import block_diagonal, fill_in_gram, relative_factor_matrix, row_block_pairs

__all__ = ["blocked_gradients", "intercept_gradients", "relative_factor_gradients"]


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
    Phi = np.tril(block_matmul(np.swapaxes(L, 1, 2), L_bar))
    k = L.shape[1]
    Phi[:, np.arange(k), np.arange(k)] *= 0.5
    M_bar = block_matmul(block_matmul(np.swapaxes(L_inv, 1, 2), Phi), L_inv)
    return 0.5 * (M_bar + np.swapaxes(M_bar, 1, 2))


def _deviance_weights(n_rows, q2, p, nu, reml):
    """``w``: the deviance is ``sum_i w_i log L22[i, i]^2`` plus constants."""
    weight = np.zeros(n_rows)
    weight[:q2] = 1.0
    if reml:
        weight[q2 : q2 + p] = 1.0
    weight[-1] = nu
    return weight


def _schur_adjoint(factor, q2, p, nu, reml):
    """``Sbar = L22^-T diag(w) L22^-1``.

    ``w`` is 1 but on the rows of X (0 for ML) and of y (``nu``), so
    ``Sbar = S^-1 + sum_i (w_i - 1) u_i u_i'`` with ``u_i = L22^-T e_i`` for
    those ``p + 1`` rows: one LAPACK inverse from the Cholesky factor
    (``potri``) and a few triangular solves.
    """
    L22 = factor.L22
    size = L22.shape[0]
    weight = _deviance_weights(size, q2, p, nu, reml)
    S_inv, info = lapack.dpotri(L22, lower=1)
    if info:
        raise np.linalg.LinAlgError(f"singular factor (dpotri info={info})")
    S_bar = np.tril(S_inv) + np.tril(S_inv, -1).T
    rows = np.flatnonzero(weight != 1.0)
    E = np.zeros((size, rows.size))
    E[rows, np.arange(rows.size)] = 1.0
    U, info = lapack.dtrtrs(L22, E, lower=1, trans=1)
    if info:
        raise np.linalg.LinAlgError(f"singular factor (dtrtrs info={info})")
    return S_bar + (U * (weight[rows] - 1.0)) @ U.T


def _term1_adjoint(cp, factor, T1, Cbar_Z, Cbar_W, Bbar_Z, G):
    """Adjoint of term 1's ``T1``."""
    blk, stage = cp.closed[0], factor.stages[0]
    m1, k1 = blk.n_levels, blk.n_coef
    L11, L11_inv = stage.L, stage.L_inv
    p1 = blk.WZ.shape[0]
    C_W = stage.C_W.reshape(p1, m1, k1)
    CbW = Cbar_W.reshape(p1, m1, k1)
    # Cbar_j' C_j summed over the rows of X, y and the other terms
    CtC = blockwise_outer(CbW, C_W)
    if cp.q_dense:
        CtC += row_block_pairs(stage.C_Z.T.tocsr(), Cbar_Z.T, k1).transpose(0, 2, 1)
    L_bar = -np.tril(block_matmul(np.swapaxes(L11_inv, 1, 2), CtC))
    L_bar[:, np.arange(k1), np.arange(k1)] += 2.0 / np.diagonal(L11, axis1=1, axis2=2)
    M11_bar = _cholesky_adjoint(L11, L11_inv, L_bar)
    # Bbar_j = Cbar_j L11[j]^-1
    Bbar_W = rows_times_blocks(CbW, L11_inv)
    # sum_j 2 A_j T1 M11bar_j + sum_{r, j} WZ[r, j]' Bbar_W[r, j]
    T1_bar = 2.0 * summed_products(block_matmul(blk.A, T1), M11_bar)
    T1_bar += np.tensordot(blk.WZ, Bbar_W, axes=([0, 1], [0, 1]))
    if cp.q_dense:
        T1_bar += _column_block_pairs(G, Bbar_Z, k1)
    return T1_bar


def relative_factor_gradients(cp, factor, T1, Lambda2, rest_sizes, Lambda1_Z2Z1, criterion):
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
    criterion : Criterion
        REML or ML, profiled or at a known sigma.

    Returns
    -------
    list of ndarray
        ``dd/dT`` per term, term 1 first (full matrices; the caller keeps the
        free elements).
    """
    p, q2 = cp.p, cp.q_dense
    stage = factor.stages[0]
    m1, k1 = stage.L.shape[:2]
    nu = criterion.response_weight(factor.L22[-1, -1] ** 2)
    S_bar = _schur_adjoint(factor, q2, p, nu, criterion.reml)
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
        Bbar_Z = rows_times_blocks(Cbar_Z.reshape(q2, m1, k1), stage.L_inv).reshape(q2, m1 * k1)
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
        diag = diag + row_block_pairs(H[sl], Bbar_Z[sl], k)
        grads.append(diag.sum(axis=0))
        start += m * k
    return grads


def intercept_gradients(cp, factor, thetas, dense_sizes, criterion):
    """Gradient for random intercepts only (k = 1 everywhere), by traces.

    For a scalar ``theta_f``, ``dM/dtheta_f = (P_f (M - J) + (M - J) P_f) /
    theta_f`` (``P_f`` the projection on factor ``f``'s columns, ``J`` the
    identity on the random effects), and with ``Mbar = L^-T W L^-1``::

        dd/dtheta_f = 2 / theta_f (m_f - sum_{c in f} Mbar[c, c])

    (``tr(P_f M Mbar) = m_f`` because ``L`` is triangular).  The diagonal of
    ``Mbar`` is a weighted column norm of ``L^-1``: ``diag(Sbar)`` for the dense
    factors and ``(1 + c_j' Sbar c_j) / D_j`` for the levels of the closed one,
    whose sum is ``sum(1 / D_j) + sum(Sbar * C D^-1 C')``.  No product with
    ``Sbar`` of the size of ``C`` is needed.  At ``theta_f = 0`` the deviance
    is even in ``theta_f``, so the derivative is 0.

    Parameters
    ----------
    thetas : list of float
        ``theta`` of the closed factor, then of each dense factor.
    dense_sizes : list of int
        Levels of each dense factor.
    """
    stage = factor.stages[0]
    D = stage.L[:, 0, 0] ** 2
    if cp.schur is not None and stage.row_scale is not None:
        nu = criterion.response_weight(factor.L22[-1, -1] ** 2)
        weight = _deviance_weights(factor.L22.shape[0], cp.q_dense, cp.p, nu, criterion.reml)
        diag_S, trace = cp.schur.adjoint_traces(stage, factor.L22, weight)
    else:
        diag_S, trace = _dense_adjoint_traces(cp, factor, criterion)
    diag_inverse = [np.sum(1.0 / D) + trace]
    start = 0
    for m in dense_sizes:
        diag_inverse.append(diag_S[start : start + m].sum())
        start += m
    sizes = [cp.closed[0].n_levels] + list(dense_sizes)
    return [
        2.0 / theta * (m - tr) if theta != 0.0 else 0.0
        for theta, m, tr in zip(thetas, sizes, diag_inverse, strict=True)
    ]


def _dense_adjoint_traces(cp, factor, criterion):
    """``diag(Sbar)`` and ``tr(Sbar K)``, ``K = C D^-1 C'``, from the full ``Sbar``."""
    p, q2 = cp.p, cp.q_dense
    stage = factor.stages[0]
    nu = criterion.response_weight(factor.L22[-1, -1] ** 2)
    S_bar = _schur_adjoint(factor, q2, p, nu, criterion.reml)
    # K over the rows of the dense factors, X and y
    scale = 1.0 / stage.L[:, 0, 0]
    C_W = stage.C_W * scale[None, :]
    trace = np.sum(S_bar[q2:, q2:] * (C_W @ C_W.T))
    if q2:
        trace += np.sum(S_bar[:q2, :q2] * fill_in_gram(cp, stage, stage.C_Z, 2))
        # C_W D^-1 C_Z' with C_W already scaled by D^-1/2
        trace += 2.0 * np.sum(S_bar[q2:, :q2] * (stage.C_Z @ (C_W * scale[None, :]).T).T)
    return np.diag(S_bar), trace


def blocked_gradients(cp, factor, T, plan, term_sizes, criterion):
    """``dd/dT`` per term of the general blocked factor, in elimination order.

    Parameters
    ----------
    cp : BlockedCrossProducts
    factor : BlockedFactor
        The factor at ``T``.
    T : list of ndarray
        Relative factor per term (term order).
    plan : (list of int, list of int)
        Closed and dense term indices (:func:`.layout.elimination_order`).
    term_sizes : list of (m, k)
        Levels and coefficients per term (term order).
    criterion : Criterion
    """
    closed, dense = plan
    if all(k == 1 for _, k in term_sizes):
        thetas = [T[i][0, 0] for i in closed + dense]
        dense_levels = [term_sizes[i][0] for i in dense]
        grads = intercept_gradients(cp, factor, thetas, dense_levels, criterion)
        return [np.array([[g]]) for g in grads]
    T1 = T[closed[0]]
    Lambda2 = relative_factor_matrix([T[i] for i in dense], [term_sizes[i][0] for i in dense])
    products = (None, None)
    if cp.q_dense:
        later_Z = cp.closed[0].later_Z
        m1 = later_Z.shape[1] // T1.shape[0]
        Lambda1 = block_diagonal(np.broadcast_to(T1, (m1,) + T1.shape))
        products = ((Lambda2.T @ later_Z).tocsr(), (later_Z @ Lambda1).tocsr())
    sizes = [term_sizes[i] for i in dense]
    return relative_factor_gradients(cp, factor, T1, Lambda2, sizes, products, criterion)
