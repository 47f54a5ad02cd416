"""The profiled deviance of a model with one random-effects term, level by level.

With a single grouping factor (``m`` levels, ``k`` coefficients each: the
most common model, sleepstudy, Exam, Hsb82) the random-effects block of the
penalized least squares system is block diagonal, and the whole factor is

    L = [L_Z, 0; L_XZ, L_22],   L_Z = blockdiag(L_j),  L_j L_j' = M_j = T'A_jT + I,

``A_j = Z_j'WZ_j``.  With ``B_j = Z_j'W [X, y]`` (``k x (p + 1)``),
``C_j = L_j^-1 T'B_j`` and ``G = [X, y]'W[X, y]``, the Schur complement is
``S = G - sum_j C_j'C_j`` and ``L_22 = chol(S)`` (Bates et al. 2015, section
3, with the blocked factor of :mod:`.cholesky` reduced to this case).  Every
step is a batched ``k x k`` product over the levels: one evaluation costs a few
dozen numpy calls whatever ``m``, where the dense system (:mod:`.dense`) costs
``(m k + p)^3`` and the general blocked factor its sparse bookkeeping.

The gradient is the adjoint of these steps (the derivation of
:mod:`.gradient` without other terms): with ``Sbar = L_22^-T P L_22^-1``
(``P``: 1 on the rows of X for REML, 0 for ML, ``nu`` on y's),

    Cbar_j = -2 C_j Sbar,   Ebar_j = L_j^-T Cbar_j,
    Lbar_j = tril(-Ebar_j C_j') + diag(2 / diag L_j),   Mbar_j = chol_adjoint(Lbar_j),
    dd/dT  = sum_j (2 A_j T Mbar_j + B_j Ebar_j').

:meth:`SingleTermDeviance.factor` returns the factor as a
:class:`~.cholesky.BlockedFactor`, so the solution, the variances, the
profiles and the leverage read it like any other.
"""

import functools

import numpy as np
import scipy.sparse as sp

from .blocks import batched_cholesky, batched_lower_inverse, cholesky_adjoint, summed_products
from .cholesky import BlockedFactor, EliminatedTerm, augmented_cholesky, log_pivot_adjoint

__all__ = ["SingleTermDeviance"]


@functools.lru_cache(maxsize=64)
def _no_rows(columns):
    """An empty ``0 x columns`` CSR matrix (shared, read-only use)."""
    return sp.csr_matrix((0, columns))


class SingleTermDeviance:
    """Profiled deviance, gradient and factor of ``y ~ X + (z | g)`` (one term).

    Parameters
    ----------
    term : TermSums
        The term's sums from the reduction (``A``, ``ZX``, ``Zy``).
    G : ndarray of shape (p + 1, p + 1)
        ``[X, y]'W[X, y]``.
    criterion : Criterion
    """

    def __init__(self, term, G, criterion):
        self.A = term.A
        self.B = np.concatenate([term.ZX, term.Zy[:, :, None]], axis=2)  # (m, k, p + 1)
        self.G = G
        self.criterion = criterion
        self.m, self.k = term.n_levels, term.n_coef
        self.p1 = G.shape[0]
        self._empty = _no_rows(self.m * self.k)
        k = self.k
        self._eye = np.eye(k)
        self._lower = np.tril(np.ones((k, k)))
        self._half_lower = self._lower - 0.5 * self._eye
        self._weights = np.zeros(self.p1)  # of the deviance's log pivots of L_22
        if criterion.reml:
            self._weights[:-1] = 1.0

    def _forward(self, T):
        """``(L, L^-1, C, L_22)``; raises ``LinAlgError`` if a block is not PD."""
        R = np.matmul(self.A, T)  # A_j T
        L = batched_cholesky(np.matmul(T.T, R) + self._eye)
        L_inv = batched_lower_inverse(L)
        C = np.matmul(L_inv, np.matmul(T.T, self.B))  # L_j^-1 T'B_j
        flat = C.reshape(-1, self.p1)
        S = self.G - flat.T @ flat
        return R, L, L_inv, C, augmented_cholesky(S, overwrite=True)

    def factor(self, T):
        """The factor at ``T`` as a :class:`~.cholesky.BlockedFactor`."""
        _, L, L_inv, C, L22 = self._forward(T)
        C_W = np.ascontiguousarray(C.transpose(2, 0, 1)).reshape(self.p1, self.m * self.k)
        stage = EliminatedTerm(L=L, L_inv=L_inv, C_Z=self._empty, C_W=C_W)
        return BlockedFactor(stages=(stage,), L22=L22, q_dense=0)

    def log_determinants(self, T):
        """``(log|L_Z|^2, log|L_X|^2, r^2)`` at ``T``, and ``L_22``."""
        _, L, _, _, L22 = self._forward(T)
        d22 = np.diag(L22)
        logdet_Z = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum()
        return (logdet_Z, 2.0 * np.log(d22[:-1]).sum(), float(d22[-1]) ** 2), L22

    def deviance(self, T):
        return self.criterion.value(*self.log_determinants(T)[0])

    def value_and_gradient(self, T):
        """The deviance and ``dd/dT`` (module docstring)."""
        R, L, L_inv, C, L22 = self._forward(T)
        diag = np.diagonal(L, axis1=1, axis2=2)
        d22 = np.diag(L22)
        log_d22 = np.log(d22[:-1])
        # (log|L_Z|^2, log|L_X|^2, r^2), kept for derivatives in sigma
        self.last_pieces = (2.0 * np.log(diag).sum(), 2.0 * log_d22.sum(), float(d22[-1]) ** 2)
        value = self.criterion.value(*self.last_pieces)
        S_bar = log_pivot_adjoint(L22, self._weights, self.criterion)
        C_bar = -2.0 * np.matmul(C, S_bar)
        E_bar = np.matmul(np.swapaxes(L_inv, 1, 2), C_bar)
        L_bar = -np.matmul(E_bar, np.swapaxes(C, 1, 2)) * self._lower
        L_bar += (2.0 / diag)[:, :, None] * self._eye
        M_bar = cholesky_adjoint(L, L_inv, L_bar, self._half_lower)
        T_bar = 2.0 * summed_products(R, M_bar)
        T_bar += summed_products(self.B, np.swapaxes(E_bar, 1, 2))
        return value, T_bar
