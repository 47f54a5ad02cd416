"""One term eliminated level by level, the others dense, on lists of level pairs.

The commonest multi-factor models (crossed factors, ScotsSec's primary x
second; nested ones, egsingle's children in schools; InstEval's students,
teachers and departments) eliminate the term with the most levels in closed
form and keep the others in a dense block (:mod:`.cholesky`).  The cross
products between them, ``Z_t'WZ_1``, are non-zero only where a level ``l`` of
a dense term ``t`` meets a level ``j`` of the eliminated term: a list of
``k_D x k_1`` blocks ``N_a``, one per meeting pair ``a = (l, j)``.  Every step
of an evaluation is then a batched product over this list, instead of sparse
matrices rebuilt at each theta:

    M_j  = T_1'A_jT_1 + I = L_j L_j'                   (each level j of term 1)
    C_a  = T_t'N_a T_1 L_j^-T                          (each pair a = (l, j))
    CW_j = [X, y]'WZ_j T_1 L_j^-T                      (each level j)
    S    = Lambda_D'[Z_D, W]'[Z_D, W]Lambda_D + I_D - sum_j C_.j C_.j'

the last sum over the *pairs of pairs* ``(a, b)`` that share a level ``j``
(their number, ``sum_j n_j^2``, is precomputed: 1.9e6 for InstEval), and
``L_22 = chol(S)``.  The gradient is the adjoint of the same steps (as
:mod:`.gradient` derives it): with ``Sbar = L_22^-T P L_22^-1``,

    Cbar_a  = -2 (sum_b Sbar_ab C_b + Sbar_aW CW_j),   Bbar_a = Cbar_a L_j^-1,
    Lbar_j  = -tril(L_j^-T sum_a Cbar_a'C_a) + diag(2 / diag L_j),
    dd/dT_1 = sum_j 2 A_jT_1 Mbar_j + sum_a N_a'T_t Bbar_a + (the same for W),
    dd/dT_t = sum_a N_aT_1 Bbar_a' + the diagonal blocks of 2 (G_DD Lambda_D Sbar_DD
              + G_WD' Sbar_WD).

All dense terms must have the same number of coefficients ``k_D``.
"""

import numpy as np
import scipy.sparse as sp

from .blocks import (
    batched_cholesky,
    batched_lower_inverse,
    bmm,
    cholesky_adjoint,
    left_times,
    right_times,
    segment_sum,
    summed_products,
)
from .cholesky import BlockedFactor, EliminatedTerm, augmented_cholesky, log_pivot_adjoint
from .crossprod import data_gram, dense_terms_gram

__all__ = ["PAIR_BUDGET", "PairedDeviance", "paired_size"]

# Largest number of (pair of pairs) x k_D^2 entries the kernel precomputes.
PAIR_BUDGET = 30_000_000


def _meeting_blocks(reduction, t, closed, k_D, k_1):
    """The pairs ``(l, j)`` where level ``l`` of term ``t`` meets level ``j`` of the
    closed term, and their ``k_D x k_1`` blocks of ``Z_t'WZ_1``."""
    counts = reduction.pair_counts(t, closed).tocoo()
    l, j = counts.row, counts.col
    m1 = reduction.terms[closed].n_levels
    keys = l.astype(np.int64) * m1 + j
    order = np.argsort(keys)
    values = reduction.pair(t, closed).tocoo()  # rows l k_D + a, columns j k_1 + c
    row_level, a = np.divmod(values.row, k_D)
    col_level, c = np.divmod(values.col, k_1)
    pair = order[np.searchsorted(keys[order], row_level.astype(np.int64) * m1 + col_level)]
    blocks = np.zeros((l.size, k_D, k_1))
    blocks[pair, a, c] = values.data
    return l, j, blocks


def paired_size(reduction, closed, dense):
    """``sum_j n_j^2 k_D^2``: the pairs of pairs the kernel would store."""
    k_D = reduction.terms[dense[0]].n_coef
    per_level = np.zeros(reduction.terms[closed].n_levels)
    for t in dense:
        C = reduction.pair_counts(t, closed).tocsc()
        per_level += np.diff(C.indptr)
    return int(np.sum(per_level**2)) * k_D * k_D


class PairedDeviance:
    """Profiled deviance, gradient and factor with one term eliminated level by level.

    Parameters
    ----------
    reduction : Reduction
    closed : int
        The eliminated term.
    dense : list of int
        The other terms, in the order of the dense block; all with ``k_D``
        coefficients.
    criterion : Criterion
    """

    def __init__(self, reduction, closed, dense, criterion):
        one = reduction.terms[closed]
        self.criterion = criterion
        self.m1, self.k1 = one.n_levels, one.n_coef
        self.kD = reduction.terms[dense[0]].n_coef
        self.A1 = one.A
        self.BW = np.concatenate([one.ZX, one.Zy[:, :, None]], axis=2)  # (m1, k1, p1)
        self.p1 = reduction.p + 1
        sizes = [reduction.terms[t].n_levels for t in dense]
        self.level_start = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.q = int(self.level_start[-1]) * self.kD
        self.Q = self.q + self.p1
        G = dense_terms_gram(reduction, dense).toarray()
        WZd = np.concatenate(
            [np.concatenate([reduction.terms[t].ZX, reduction.terms[t].Zy[:, :, None]], axis=2)
             .reshape(-1, self.p1) for t in dense], axis=0
        ).T  # fmt: skip
        self.G_DD, self.G_WD, self.G_WW = G, WZd, data_gram(reduction)
        self._pairs(reduction, closed, dense)
        self._weights = np.ones(self.Q)
        if not criterion.reml:
            self._weights[self.q : self.Q - 1] = 0.0
        k = self.k1
        self._eye1, self._eyeD = np.eye(k), np.eye(self.kD)
        self._lower = np.tril(np.ones((k, k)))
        self._half_lower = self._lower - 0.5 * self._eye1

    # ------------------------------------------------------------ structure
    def _pairs(self, reduction, closed, dense):
        """Pair list ``(term, dense row, level j, N)`` and the pairs of pairs."""
        terms, rows, js, blocks = [], [], [], []
        for pos, t in enumerate(dense):
            l, j, N = _meeting_blocks(reduction, t, closed, self.kD, self.k1)
            terms.append(np.full(l.size, pos))
            rows.append((self.level_start[pos] + l) * self.kD)
            js.append(j)
            blocks.append(N)
        order = np.argsort(np.concatenate(js), kind="stable")  # pairs grouped by level j
        self.pair_term = np.concatenate(terms)[order]
        self.pair_row = np.concatenate(rows)[order]
        self.pair_level = np.concatenate(js)[order]
        self.N = np.concatenate(blocks, axis=0)[order]
        counts = np.bincount(self.pair_level, minlength=self.m1)
        # nested in one dense term: pair a is level a, and the only pair of pairs (a, a)
        self._one_per_level = bool(np.all(counts == 1))
        order = np.arange(self.pair_level.size)
        starts = np.concatenate([[0], np.cumsum(counts)])
        # pairs of pairs (a, b) sharing a level: all ordered combinations per level
        size = int(np.sum(counts**2))
        first = np.repeat(np.arange(self.m1), counts**2)
        offset = np.arange(size) - np.repeat(np.concatenate([[0], np.cumsum(counts**2)[:-1]]),
                                             counts**2)  # fmt: skip
        width = counts[first]
        self.pp_a = order[starts[first] + offset // np.maximum(width, 1)]
        self.pp_b = order[starts[first] + offset % np.maximum(width, 1)]
        kD, Q = self.kD, self.Q
        r = np.arange(kD)
        # flat positions of each block C_a C_b' in S and of CW_j'C_a' in S's W rows
        self.pp_pos = ((self.pair_row[self.pp_a, None, None] + r[None, :, None]) * Q
                       + self.pair_row[self.pp_b, None, None] + r[None, None, :])  # fmt: skip
        w = np.arange(self.q, Q)
        self.wd_pos = (w[None, :, None]) * Q + self.pair_row[:, None, None] + r[None, None, :]

    def _per_pair(self, X):
        """``X[j]`` of each pair's level ``j``."""
        return X if self._one_per_level else X[self.pair_level]

    def _per_level(self, X):
        """Sums of ``X`` over each level's pairs."""
        return X if self._one_per_level else segment_sum(self.pair_level, X, self.m1)

    def _pairs_of_pairs(self, X, Y):
        """``X[a] @ Y[b]'`` for each pair of pairs ``(a, b)`` sharing a level."""
        if self._one_per_level:
            return bmm(X, np.swapaxes(Y, 1, 2))
        return bmm(X[self.pp_a], np.swapaxes(Y[self.pp_b], 1, 2))

    # ------------------------------------------------------------ forward
    def _lambda_columns(self, M, T_dense):
        """``M Lambda_D`` on the dense columns of ``M`` (each level's k_D columns x T_t)."""
        out = np.empty_like(M)
        kD = self.kD
        for pos, T in enumerate(T_dense):
            cols = slice(self.level_start[pos] * kD, self.level_start[pos + 1] * kD)
            block = M[:, cols]
            out[:, cols] = (block.reshape(M.shape[0], -1, kD) @ T).reshape(block.shape)
        return out

    def _pair_products(self, T_dense, X):
        """``T_t' X_a`` for each pair ``a`` (``T_t`` of its dense term)."""
        if len(T_dense) == 1:
            return left_times(T_dense[0].T, X)
        out = np.empty((X.shape[0], self.kD, X.shape[2]))
        for pos, T in enumerate(T_dense):
            rows = self.pair_term == pos
            out[rows] = left_times(T.T, X[rows])
        return out

    def _forward(self, T1, T_dense):
        R1 = right_times(self.A1, T1)
        L1 = batched_cholesky(left_times(T1.T, R1) + self._eye1)
        L1i = batched_lower_inverse(L1)
        L1iT = np.swapaxes(L1i, 1, 2)
        # CW_j' (p1 x k1) = BW_j' T1 L_j^-T, stored as (m1, p1, k1)
        BWT = right_times(np.swapaxes(self.BW, 1, 2), T1)
        CW = bmm(BWT, L1iT)
        # C_a = T_t' N_a T1 L_j^-T
        B = self._pair_products(T_dense, right_times(self.N, T1))
        C = bmm(B, self._per_pair(L1iT))
        S = np.zeros((self.Q, self.Q))
        q = self.q
        GL = self._lambda_columns(self.G_DD, T_dense)
        S[:q, :q] = self._lambda_columns(GL.T, T_dense)
        S[np.arange(q), np.arange(q)] += 1.0
        S[q:, :q] = self._lambda_columns(self.G_WD, T_dense)
        S[q:, q:] = self.G_WW
        flat = S.reshape(-1)
        fill = self._pairs_of_pairs(C, C)
        flat -= np.bincount(self.pp_pos.ravel(), fill.ravel(), minlength=self.Q**2)
        cross = bmm(self._per_pair(CW), np.swapaxes(C, 1, 2))  # (np, p1, kD)
        flat -= np.bincount(self.wd_pos.ravel(), cross.ravel(), minlength=self.Q**2)
        S[q:, q:] -= _gram_w(CW)
        S[:q, q:] = S[q:, :q].T
        return R1, L1, L1i, BWT, CW, B, C, augmented_cholesky(S, overwrite=True)

    def factor(self, T1, T_dense):
        """The factor as a :class:`~.cholesky.BlockedFactor` (for the solution)."""
        _, L1, L1i, _, CW, _, C, L22 = self._forward(T1, T_dense)
        kD, k1 = self.kD, self.k1
        rows = (self.pair_row[:, None, None] + np.arange(kD)[None, :, None]) + 0 * np.arange(k1)
        cols = (self.pair_level[:, None, None] * k1 + np.arange(k1)[None, None, :]) + 0 * rows
        C_Z = sp.csr_matrix((C.ravel(), (rows.ravel(), cols.ravel())), shape=(self.q, self.m1 * k1))
        C_W = np.ascontiguousarray(np.swapaxes(CW, 0, 1)).reshape(self.p1, self.m1 * k1)
        stage = EliminatedTerm(L=L1, L_inv=L1i, C_Z=C_Z, C_W=C_W)
        return BlockedFactor(stages=(stage,), L22=L22, q_dense=self.q)

    def log_determinants(self, T1, T_dense):
        """``(log|L_Z|^2, log|L_X|^2, r^2)`` and ``L_22``."""
        _, L1, _, _, _, _, _, L22 = self._forward(T1, T_dense)
        d22 = np.diag(L22)
        q = self.q
        logdet_Z = 2.0 * np.log(np.diagonal(L1, axis1=1, axis2=2)).sum()
        logdet_Z += 2.0 * np.log(d22[:q]).sum()
        return (logdet_Z, 2.0 * np.log(d22[q:-1]).sum(), float(d22[-1]) ** 2), L22

    def deviance(self, T1, T_dense):
        return self.criterion.value(*self.log_determinants(T1, T_dense)[0])

    # ------------------------------------------------------------ adjoint
    def value_and_gradient(self, T1, T_dense):
        """The deviance, ``dd/dT_1`` and ``dd/dT_t`` per dense term (module docstring)."""
        R1, L1, L1i, BWT, CW, B, C, L22 = self._forward(T1, T_dense)
        q, kD = self.q, self.kD
        diag1 = np.diagonal(L1, axis1=1, axis2=2)
        d22 = np.diag(L22)
        # (log|L_Z|^2, log|L_X|^2, r^2), kept for derivatives in sigma
        self.last_pieces = (
            2.0 * np.log(diag1).sum() + 2.0 * np.log(d22[:q]).sum(),
            2.0 * np.log(d22[q:-1]).sum(),
            float(d22[-1]) ** 2,
        )
        value = self.criterion.value(*self.last_pieces)
        S_bar = log_pivot_adjoint(L22, self._weights, self.criterion)
        # Cbar_a = -2 (sum_b Sbar_ab C_b + Sbar_aW CW_j)
        r = np.arange(kD)
        block_ab = S_bar[self.pair_row[self.pp_a, None, None] + r[None, :, None],
                         self.pair_row[self.pp_b, None, None] + r[None, None, :]]  # fmt: skip
        if self._one_per_level:
            C_bar = bmm(block_ab, C)
        else:
            C_bar = segment_sum(self.pp_a, bmm(block_ab, C[self.pp_b]), C.shape[0])
        S_aW = S_bar[self.pair_row[:, None] + r[None, :], q:]  # (np, kD, p1)
        C_bar += bmm(S_aW, self._per_pair(CW))
        C_bar *= -2.0
        # CWbar_j' = -2 (sum_a Sbar_Wa C_a + Sbar_WW CW_j')
        CW_bar = self._per_level(bmm(np.swapaxes(S_aW, 1, 2), C))
        CW_bar += left_times(S_bar[q:, q:], CW)
        CW_bar *= -2.0
        # per level j: Lbar_j, then Mbar_j; Bbar = Cbar L^-1
        CtC = bmm(np.swapaxes(CW_bar, 1, 2), CW)
        CtC += self._per_level(bmm(np.swapaxes(C_bar, 1, 2), C))
        L_bar = -bmm(np.swapaxes(L1i, 1, 2), CtC) * self._lower
        L_bar += (2.0 / diag1)[:, :, None] * self._eye1
        M_bar = cholesky_adjoint(L1, L1i, L_bar, self._half_lower)
        B_bar = bmm(C_bar, self._per_pair(L1i))
        BW_bar = bmm(CW_bar, L1i)
        T1_bar = 2.0 * summed_products(R1, M_bar)
        T1_bar += summed_products(self.BW, BW_bar)
        TB = self._pair_products([T.T for T in T_dense], B_bar)  # T_t Bbar_a
        T1_bar += summed_products(np.swapaxes(self.N, 1, 2), TB)
        per_pair = bmm(right_times(self.N, T1), np.swapaxes(B_bar, 1, 2))  # N T1 Bbar'
        grads_D = self._dense_gradients(T_dense, S_bar, per_pair)
        return value, T1_bar, grads_D

    def _dense_gradients(self, T_dense, S_bar, per_pair):
        """``dd/dT_t``: the diagonal blocks of ``2 (G_DD Lambda_D Sbar_DD + G_WD' Sbar_WD)``
        over term ``t``'s levels, summed, plus its pairs' ``N T_1 Bbar'``."""
        q, kD, p1 = self.q, self.kD, self.p1
        GL = self._lambda_columns(self.G_DD, T_dense)  # G_DD Lambda_D
        grads = []
        for pos in range(len(T_dense)):
            lo, hi = self.level_start[pos] * kD, self.level_start[pos + 1] * kD
            m = (hi - lo) // kD
            # block l: sum_s GL[l a, s] Sbar[s, l b] + sum_w G_WD[w, l a] Sbar[q + w, l b]
            rows = GL[lo:hi].reshape(m, kD, q)
            cols = S_bar[:q, lo:hi].reshape(q, m, kD).transpose(1, 0, 2)
            g = summed_products(rows, cols)
            W_rows = self.G_WD[:, lo:hi].reshape(p1, m, kD)
            g += np.einsum("wma,wmb->ab", W_rows, S_bar[q:, lo:hi].reshape(p1, m, kD))
            g *= 2.0
            g += (per_pair if len(T_dense) == 1 else per_pair[self.pair_term == pos]).sum(axis=0)
            grads.append(g)
        return grads


def _gram_w(CW):
    """``sum_j CW_j' CW_j`` for CW of shape (m, p1, k1)."""
    flat = np.ascontiguousarray(np.swapaxes(CW, 0, 1)).reshape(CW.shape[1], -1)
    return flat @ flat.T
