"""The Schur complement of crossed random intercepts, assembled on its pattern.

Random intercepts only, term 1 (``m`` levels) eliminated in closed form, the
other factors (``q`` columns, relative factor ``Lambda_D = diag(lambda)``)
dense with ``W = [X, y]``.  With ``t = theta_1``, ``N = Z_D'Z_1`` (level
counts, ``q x m``), ``D_j = t^2 A_j + 1`` and ``c_j = D_j^-1/2``, the closed
stage gives ``C_D = diag(r) N diag(c)`` with ``r = t lambda``
(:mod:`.cholesky`), and the dense block to factor is::

    S_DD = diag(lambda) Z_D'Z_D diag(lambda) + I - diag(r) N diag(c^2) N' diag(r)
    S_WD = W'Z_D diag(lambda) - C_W C_D'
    S_WW = W'W - C_W C_W'

``N diag(w) N'`` is nonzero only on the pairs of levels that meet in some
level of term 1 (InstEval: 22% of the lower triangle), one sparse product
``P w`` (:mod:`.pairs`), and ``Z_D'Z_D`` only on its own short pattern.  So
``S`` is scattered into a zeroed Fortran array, lower triangle only, that
LAPACK's ``potrf`` factors in place: no dense products, no copies.

For the gradient (:func:`.gradient.intercept_gradients`) the same pattern
turns ``tr(Sbar C D^-1 C')`` into a sum over the pairs: ``Sbar`` is needed
there, on its diagonal and on the rows of ``W``, nowhere else.
"""

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from .cholesky import augmented_cholesky

__all__ = ["CrossedSchur"]


def _lower_positions(rows, cols, size):
    """Flat positions of ``(rows, cols)`` in a Fortran-ordered ``size x size`` array."""
    return rows.astype(np.int64) + cols.astype(np.int64) * size


class CrossedSchur:
    """The pattern of ``S`` for random intercepts crossed with term 1.

    Parameters
    ----------
    pairs : WeightedGram
        ``N diag(w) N'`` on the pairs ``(a, b)``, ``a >= b``, of ``N = Z_D'Z_1``.
    ZdZd : sparse matrix of shape (q, q)
    p1 : int
        Columns of ``W = [X, y]``.
    """

    def __init__(self, pairs, ZdZd, p1):
        self.q = q = ZdZd.shape[0]
        self.size = size = q + p1
        self.pairs = pairs
        self.a, self.b = pairs.a, pairs.b
        self.pair_positions = _lower_positions(self.a, self.b, size)
        # off-diagonal pairs count twice in a trace over the symmetric matrix
        self.pair_multiplicity = np.where(self.a == self.b, 1.0, 2.0)
        ZdZd = sp.tril(ZdZd, format="coo")
        rows, cols = ZdZd.row, ZdZd.col
        self.zz = (rows, cols, ZdZd.data, _lower_positions(rows, cols, size))
        self.diagonal_positions = _lower_positions(np.arange(q), np.arange(q), size)

    def factor(self, stage, lam, WZd, WW):
        """Lower Cholesky factor ``L22`` of ``S`` (see the module docstring).

        Raises ``numpy.linalg.LinAlgError`` when ``S`` is not positive definite.
        """
        q, size = self.q, self.size
        r, c2 = stage.row_scale, stage.col_scale**2
        S = np.zeros((size, size), order="F")
        flat = S.reshape(-1, order="F")  # a view: S is Fortran-contiguous
        rows, cols, values, positions = self.zz
        flat[positions] = values * lam[rows] * lam[cols]
        flat[self.diagonal_positions] += 1.0
        flat[self.pair_positions] -= (self.pairs.P @ c2) * r[self.a] * r[self.b]
        C_W = stage.C_W
        # C_D C_W' = diag(r) N diag(c) C_W', with stage.C_Z = C_D
        S[q:, :q] = WZd * lam[None, :] - (stage.C_Z @ C_W.T).T
        S[q:, q:] = WW - C_W @ C_W.T
        return augmented_cholesky(S, overwrite=True)

    def adjoint_traces(self, stage, L22, weight):
        """``diag(Sbar)`` over the dense columns and ``tr(Sbar K)``, ``K = C D^-1 C'``.

        ``Sbar = L22^-T diag(weight) L22^-1 = S^-1 + sum_i (w_i - 1) u_i u_i'``
        with ``u_i = L22^-T e_i`` for the few rows where ``w_i != 1`` (X, y):
        one ``potri`` and a few triangular solves.  ``tr(S^-1 K)`` is a sum over
        the pairs and the rows of W, and ``u' K u = |D^-1/2 C' u|^2`` needs
        only sparse products.
        """
        S_inv, info = lapack.dpotri(L22, lower=1)  # lower triangle valid
        if info:
            raise np.linalg.LinAlgError(f"singular factor (dpotri info={info})")
        U, w = self._corrections(L22, weight)
        c = stage.col_scale
        trace = self._inverse_trace(stage, S_inv)
        CtU = c[:, None] * (stage.C_Z.T @ U[: self.q] + stage.C_W.T @ U[self.q :])
        trace += np.sum(w * np.sum(CtU**2, axis=0))
        flat = S_inv.reshape(-1, order="F")
        diagonal = flat[self.diagonal_positions] + (U[: self.q] ** 2) @ w
        return diagonal, trace

    def _corrections(self, L22, weight):
        """``u_i = L22^-T e_i`` and ``w_i - 1`` for the rows where ``w_i != 1``."""
        rows = np.flatnonzero(weight != 1.0)
        E = np.zeros((self.size, rows.size))
        E[rows, np.arange(rows.size)] = 1.0
        U, info = lapack.dtrtrs(L22, E, lower=1, trans=1)
        if info:
            raise np.linalg.LinAlgError(f"singular factor (dtrtrs info={info})")
        return U, weight[rows] - 1.0

    def _inverse_trace(self, stage, S_inv):
        """``tr(S^-1 K)`` from the lower triangle of ``S^-1``.

        On the dense rows ``K = diag(r) N diag(c^4) N' diag(r)`` (the pairs);
        on the rows of W, ``C_W D^-1 C_W'`` and ``C_W D^-1 C_D'``.
        """
        q = self.q
        a, b = self.a, self.b
        r, c = stage.row_scale, stage.col_scale
        flat = S_inv.reshape(-1, order="F")
        K_pairs = (self.pairs.P @ c**4) * r[a] * r[b]
        trace = np.dot(self.pair_multiplicity * flat[self.pair_positions], K_pairs)
        S_WW = np.tril(S_inv[q:, q:]) + np.tril(S_inv[q:, q:], -1).T
        C_W = stage.C_W * c[None, :]  # C_W D^-1/2
        trace += np.sum(S_WW * (C_W @ C_W.T))
        # S^-1[q:, :q] lies below the diagonal
        trace += 2.0 * np.sum(S_inv[q:, :q] * (stage.C_Z @ (C_W * c[None, :]).T).T)
        return trace
