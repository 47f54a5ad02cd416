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
from scipy.linalg import lapack

from .blocks import blockwise_outer, summed_products
from .cholesky import augmented_cholesky, log_pivot_adjoint

__all__ = ["DENSE_SIZE_LIMIT", "DenseDeviance", "DenseSolution", "augmented_gram"]

# Largest q + p + 1 for which the dense system is used.  Each evaluation
# costs about 1.7 (q + p + 1)^3 flops (Cholesky, triangular inverse, syrk);
# the blocked factor of a one-factor model costs ~2 ms of bookkeeping whatever
# its size, so beyond ~150 (hsb82: 323) it wins.
DENSE_SIZE_LIMIT = 150


def augmented_gram(reduction):
    """``G = [Z, X, y]'W[Z, X, y]`` from a :class:`~.reduction.Reduction`.

    The columns of ``Z`` come term after term, each term's level by level
    (``k`` columns per level).
    """
    sizes = [t.n_levels * t.n_coef for t in reduction.terms]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    q, p = int(starts[-1]), reduction.p
    G = np.zeros((q + p + 1, q + p + 1))
    for f, t in enumerate(reduction.terms):
        m, k = t.n_levels, t.n_coef
        span = slice(starts[f], starts[f + 1])
        square = G[span, span].reshape(m, k, m, k)
        square[np.arange(m), :, np.arange(m), :] = t.A  # one k x k block per level
        G[q : q + p, span] = t.ZX.reshape(m * k, p).T
        G[-1, span] = t.Zy.ravel()
        for g in range(f + 1, len(reduction.terms)):
            block = reduction.pairs[(f, g)].toarray()
            G[span, starts[g] : starts[g + 1]] = block
            G[starts[g] : starts[g + 1], span] = block.T
    G[:q, q:] = G[q:, :q].T
    G[q : q + p, q : q + p] = reduction.XX
    G[q : q + p, -1] = G[-1, q : q + p] = reduction.Xy
    G[-1, -1] = reduction.yy
    return G


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
        ``[Z, X, y]'W[Z, X, y]`` (:func:`augmented_gram`).
    term_sizes : list of (m, k)
        Levels and coefficients per term, in the order of ``Z``'s columns.
    criterion : Criterion
        REML or ML, profiled or at a known sigma.
    """

    def __init__(self, G, term_sizes, criterion):
        self.G = G
        self.criterion = criterion
        self.p = criterion.p
        self.term_sizes = list(term_sizes)
        size = G.shape[0]
        self.q = size - self.p - 1
        # the deviance is sum_i weights_i log L_ii^2 + (terms in r^2 alone)
        self.weights = np.ones(size)
        if not criterion.reml:
            self.weights[self.q : self.q + self.p] = 0.0
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
        each term's columns, ``k`` per level, are multiplied by its ``T`` (scalar
        terms, and the identity on X and y, as one column scaling)."""
        scale = np.ones(A.shape[1])
        for (start, m, k), T in zip(self.spans, T_blocks, strict=True):
            if k == 1:
                scale[start : start + m] = T[0, 0]
        out = A * scale
        for (start, m, k), T in zip(self.spans, T_blocks, strict=True):
            if k > 1:  # (A Lambda)[:, j k + b] = sum_a A[:, j k + a] T[a, b]
                block = A[:, start : start + m * k]
                out[:, start : start + m * k] = (block.reshape(-1, k) @ T).reshape(block.shape)
        return out

    def factor(self, T_blocks):
        """``(G Lambda~, L)``; raises ``LinAlgError`` if ``M`` is not positive definite."""
        GL = self.times_relative_factor(self.G, T_blocks)
        M = self.times_relative_factor(GL.T, T_blocks)  # Lambda~' G Lambda~, G symmetric
        M[self._diagonal] += self._J
        return GL, augmented_cholesky(M, overwrite=True)

    def deviance(self, T_blocks):
        _, L = self.factor(T_blocks)
        return self._deviance(L)

    def log_determinants(self, L):
        """``(log|L_Z|^2, log|L_X|^2, r^2)`` of the dense factor."""
        diag = np.diagonal(L)
        q = self.q
        logdet_Z = 2.0 * np.log(diag[:q]).sum()
        return logdet_Z, 2.0 * np.log(diag[q:-1]).sum(), diag[-1] ** 2

    def _deviance(self, L):
        return self.criterion.value(*self.log_determinants(L))

    def value_and_gradient(self, T_blocks):
        """Deviance and ``dd/dT`` per term."""
        GL, L = self.factor(T_blocks)
        M_bar = log_pivot_adjoint(L, self.weights, self.criterion)  # L^-T W L^-1
        # dd/dT = sum over levels j of the (j, j) blocks of 2 G Lambda~ Mbar:
        # 2 sum_j sum_s (G Lambda~)[j k + a, s] Mbar[j k + b, s]  (Mbar symmetric)
        grads = []
        for start, m, k in self.spans:
            rows = slice(start, start + m * k)
            A = GL[rows].reshape(m, k, -1)
            B = M_bar[rows].reshape(m, k, -1)
            grads.append(2.0 * summed_products(A, B.transpose(0, 2, 1)))
        self.last_pieces = self.log_determinants(L)  # kept for derivatives in sigma
        return self.criterion.value(*self.last_pieces), grads

    def solution(self, T_blocks):
        """The :class:`DenseSolution` at the relative factors ``T_blocks``."""
        _, L = self.factor(T_blocks)
        q = self.q
        # [u; beta] = L_11^-T c, c the last row of L
        v, _ = lapack.dtrtrs(L[:-1, :-1], L[-1, :-1], lower=1, trans=1)
        sigma2 = self.criterion.sigma2(L[-1, -1] ** 2)
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
