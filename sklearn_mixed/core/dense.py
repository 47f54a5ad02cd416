"""The profiled deviance of a small model, on the full dense system.

When all random effects together number a few hundred (sleepstudy: 36), one
dense Cholesky factor of the whole augmented matrix

    M(theta) = Lambda~' G Lambda~ + J,   G = [Z, X, y]'[Z, X, y],
    Lambda~ = diag(Lambda, I),  J = diag(I_q, 0)

costs microseconds, far less than the bookkeeping of the blocked factor.  Its
deviance is ``sum_i w_i log L_ii^2`` plus constants (``w``: 1 on the random
effects, 1 on X for REML and 0 for ML, ``nu`` on y), and the adjoint of the
Cholesky factorization gives ``Mbar = L^-T W L^-1``, so that

    dd/dLambda~ = 2 G Lambda~ Mbar,

whose diagonal ``k x k`` blocks, summed over the levels of a term, are the
gradient with respect to its ``T``.  At the optimum the same factor
``L = [L_Z, 0, 0; R_ZX, L_X, 0; c_u', c_beta', r]`` gives the whole solution
(Bates et al. 2015, section 3): ``[u; beta]`` solves ``L_11' v = c``,
``sigma^2 = r^2 / nu``, ``Var(beta) = sigma^2 (L_X L_X')^-1`` and
``Var(u | y) = sigma^2 (L_Z L_Z')^-1``.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import blas, lapack

from .blocks import blockwise_outer
from .crossprod import data_gram
from .grouping import term_model_matrix

__all__ = ["DENSE_SIZE_LIMIT", "DenseDeviance", "DenseSolution", "dense_gram"]

# Largest q + p + 1 for which the dense system is used.  Each evaluation
# costs about 1.7 (q + p + 1)^3 flops (Cholesky, triangular inverse, syrk);
# the blocked factor of a one-factor model costs ~2 ms of bookkeeping whatever
# its size, so beyond ~150 (hsb82: 323) it wins.
DENSE_SIZE_LIMIT = 150

# Largest n (q + p + 1) for which [Z, X, y] is formed as a dense array.
_DENSE_DESIGN_LIMIT = 2_000_000


def dense_gram(X, y, terms):
    """``G = [Z, X, y]'[Z, X, y]``, the columns of Z in ``terms`` order."""
    n, p = X.shape
    q = sum(t.n_columns for t in terms)
    if n * (q + p + 1) > _DENSE_DESIGN_LIMIT:  # long data: Z stays sparse
        Zt = sp.hstack([term_model_matrix(t) for t in terms], format="csr").T.tocsr()
        ZtW = np.column_stack([np.asarray(Zt @ X), np.asarray(Zt @ y)])
        return np.block([[(Zt @ Zt.T).toarray(), ZtW], [ZtW.T, data_gram(X, y)]])
    W = np.zeros((n, q + p + 1))
    rows, start = np.arange(n), 0
    for t in terms:
        k = t.n_coef
        for a in range(k):  # column j k + a of the term holds covariate a in level j
            W[rows, start + t.codes * k + a] = t.covariates[:, a]
        start += t.n_columns
    W[:, q : q + p] = X
    W[:, -1] = y
    G = blas.dsyrk(1.0, W, trans=1, lower=1)
    return G + np.tril(G, -1).T


@dataclass(frozen=True)
class DenseSolution:
    """Henderson's solution at theta from the dense factor (see module doc).

    ``u`` and ``conditional`` (the diagonal blocks of ``(L_Z L_Z')^-1``) are
    per term in ``terms`` order; the caller scales by ``T`` and ``sigma^2``.
    """

    beta: np.ndarray
    u: list
    conditional: list
    sigma2: float
    beta_cov: np.ndarray
    deviance: float


class DenseDeviance:
    """Profiled deviance and gradient in theta on the dense augmented system.

    Parameters
    ----------
    G : ndarray of shape (q + p + 1, q + p + 1)
        ``[Z, X, y]'[Z, X, y]``, the random-effects columns in ``terms`` order.
    term_sizes : list of (m, k)
        Levels and coefficients per term, in the order of ``Z``'s columns.
    n, p : int
    method : {"reml", "ml"}
    """

    def __init__(self, G, term_sizes, n, p, method):
        self.G = G
        self.n, self.p = n, p
        self.term_sizes = list(term_sizes)
        size = G.shape[0]
        self.q = size - p - 1
        self.weights = np.ones(size)
        if method == "ml":
            self.weights[self.q : self.q + p] = 0.0
        self.nu = n - p if method == "reml" else n
        self.weights[-1] = self.nu
        self.sqrt_weights = np.sqrt(self.weights)
        self._diagonal = np.diag_indices(size)
        self._J = np.zeros(size)
        self._J[: self.q] = 1.0
        self.spans = []  # per term: first column, levels and coefficients
        start = 0
        for m, k in self.term_sizes:
            self.spans.append((start, m, k))
            start += m * k

    def times_relative_factor(self, A, T_blocks):
        """``A Lambda~`` without forming ``Lambda~ = diag(I_m (x) T per term, I)``:
        each term's columns, ``k`` per level, are multiplied by its ``T``."""
        out = A.copy()
        for (start, m, k), T in zip(self.spans, T_blocks, strict=True):
            block = A[:, start : start + m * k]
            if k == 1:
                out[:, start : start + m] = block * T[0, 0]
            else:  # (A Lambda)[:, j k + b] = sum_a A[:, j k + a] T[a, b]
                out[:, start : start + m * k] = (block.reshape(-1, k) @ T).reshape(block.shape)
        return out

    def factor(self, T_blocks):
        """``(G Lambda~, L)``; raises ``LinAlgError`` if ``M`` is not positive definite."""
        GL = self.times_relative_factor(self.G, T_blocks)
        M = self.times_relative_factor(GL.T, T_blocks)  # Lambda~' G Lambda~, G symmetric
        M[self._diagonal] += self._J
        L, info = lapack.dpotrf(M, lower=1, clean=1, overwrite_a=1)
        if info:
            raise np.linalg.LinAlgError(f"M is not positive definite (dpotrf info={info})")
        return GL, L

    def deviance(self, T_blocks):
        _, L = self.factor(T_blocks)
        return self._deviance(L)

    def _deviance(self, L):
        diag = np.diagonal(L)
        pwrss = diag[-1] ** 2
        value = 2.0 * (self.weights[:-1] @ np.log(diag[:-1]))
        return value + self.nu * (1.0 + np.log(2.0 * np.pi * pwrss / self.nu))

    def value_and_gradient(self, T_blocks):
        """Deviance and ``dd/dT`` per term."""
        GL, L = self.factor(T_blocks)
        L_inv, info = lapack.dtrtri(L, lower=1)
        if info:
            raise np.linalg.LinAlgError(f"singular factor (dtrtri info={info})")
        root = self.sqrt_weights[:, None] * L_inv
        M_bar = root.T @ root  # L^-T W L^-1, symmetric
        # dd/dT = sum over levels j of the (j, j) blocks of 2 G Lambda~ Mbar:
        # 2 sum_j sum_s (G Lambda~)[j k + a, s] Mbar[j k + b, s]  (Mbar symmetric)
        grads = []
        for start, m, k in self.spans:
            rows = slice(start, start + m * k)
            A = GL[rows].reshape(m, k, -1)
            B = M_bar[rows].reshape(m, k, -1)
            grads.append(2.0 * np.matmul(A, B.transpose(0, 2, 1)).sum(axis=0))
        return self._deviance(L), grads

    def solution(self, T_blocks):
        """The :class:`DenseSolution` at the relative factors ``T_blocks``."""
        _, L = self.factor(T_blocks)
        q = self.q
        # [u; beta] = L_11^-T c, c the last row of L
        v, _ = lapack.dtrtrs(L[:-1, :-1], L[-1, :-1], lower=1, trans=1)
        sigma2 = L[-1, -1] ** 2 / self.nu
        L_inv, _ = lapack.dtrtri(L[:-1, :-1], lower=1)
        L_X_inv = L_inv[q:, q:]  # the inverse of a triangular factor's trailing block
        L_Z_inv = L_inv[:q, :q]
        u, conditional, start = [], [], 0
        for m, k in self.term_sizes:
            u.append(v[start : start + m * k].reshape(m, k))
            cols = L_Z_inv[:, start : start + m * k].reshape(q, m, k)
            conditional.append(blockwise_outer(cols, cols))  # Gram of each level's columns
            start += m * k
        return DenseSolution(
            beta=v[q:],
            u=u,
            conditional=conditional,
            sigma2=float(sigma2),
            beta_cov=sigma2 * (L_X_inv.T @ L_X_inv),
            deviance=float(self._deviance(L)),
        )
