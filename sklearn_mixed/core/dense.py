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
gradient with respect to its ``T``.
"""

import numpy as np
from scipy.linalg import blas, lapack

__all__ = ["DENSE_SIZE_LIMIT", "DenseDeviance"]

# Largest q + p + 1 for which the dense system is used.
DENSE_SIZE_LIMIT = 400


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
        size = G.shape[0]
        self.q = size - p - 1
        self.weights = np.ones(size)
        if method == "ml":
            self.weights[self.q : self.q + p] = 0.0
        self.nu = n - p if method == "reml" else n
        self.weights[-1] = self.nu
        self.sqrt_weights = np.sqrt(self.weights)
        self.J = np.zeros(size)
        self.J[: self.q] = 1.0
        self.blocks = []  # per term: (rows, cols) of each level's k x k block
        start = 0
        for m, k in term_sizes:
            first = start + k * np.arange(m)
            rows = first[:, None, None] + np.arange(k)[None, :, None]
            cols = first[:, None, None] + np.arange(k)[None, None, :]
            self.blocks.append((rows, cols, k))
            start += m * k

    def relative_factor(self, T_blocks):
        """Dense ``Lambda~ = diag(I_m (x) T per term, I)``."""
        Lam = np.eye(self.G.shape[0])
        for (rows, cols, _), T in zip(self.blocks, T_blocks, strict=True):
            Lam[rows, cols] = T
        return Lam

    def factor(self, T_blocks):
        """``(Lambda~, L)``; raises ``LinAlgError`` if ``M`` is not positive definite."""
        Lam = self.relative_factor(T_blocks)
        GL = self.G @ Lam
        M = Lam.T @ GL
        M[np.diag_indices_from(M)] += self.J
        L, info = lapack.dpotrf(M, lower=1, clean=1)
        if info:
            raise np.linalg.LinAlgError(f"M is not positive definite (dpotrf info={info})")
        return GL, L

    def deviance(self, T_blocks):
        _, L = self.factor(T_blocks)
        return self._deviance(L)

    def _deviance(self, L):
        log_diag2 = 2.0 * np.log(np.diag(L))
        pwrss = L[-1, -1] ** 2
        value = self.weights[:-1] @ log_diag2[:-1]
        return value + self.nu * (1.0 + np.log(2.0 * np.pi * pwrss / self.nu))

    def value_and_gradient(self, T_blocks):
        """Deviance and ``dd/dT`` per term."""
        GL, L = self.factor(T_blocks)
        L_inv, info = lapack.dtrtri(L, lower=1)
        if info:
            raise np.linalg.LinAlgError(f"singular factor (dtrtri info={info})")
        root = self.sqrt_weights[:, None] * L_inv
        M_bar = blas.dsyrk(1.0, root, trans=1, lower=1)
        M_bar = M_bar + np.tril(M_bar, -1).T
        Lam_bar = 2.0 * (GL @ M_bar)  # G Lambda~ Mbar
        grads = [Lam_bar[rows, cols].sum(axis=0) for rows, cols, _ in self.blocks]
        return self._deviance(L), grads
