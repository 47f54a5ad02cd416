"""The inverse of the penalized system, where a GLMM's Laplace gradient reads it.

``M = Lambda'Z'WZ Lambda + I`` (the random effects' block of the factored
system) and ``G = M^-1``.  The gradient of :mod:`.laplace_gradient` needs
``G`` only at a few places: its diagonal blocks (one ``k x k`` block per
level), its entries between the levels that share a row of data, and
solves with the whole system (with the fixed effects when they are free).
Two factors provide them:

- :class:`DenseSystem`: a small model factored dense; ``G`` is formed.
- :class:`BlockedSystem`: one term eliminated level by level (``A``, block
  diagonal, factor ``L_A``) and dense terms (``D``): with ``C = L_A^-1 B'``
  the eliminated rows of the factor and ``S = L_D L_D'`` the Schur complement,

      G_DD = S^-1,   G_AD = -L_A^-T C S^-1,
      G_AA[j] = L_A[j]^-T (I + (C S^-1 C')_jj) L_A[j]^-1        (diagonal blocks)

  ``C S^-1`` is dense, ``q_A x q_D``: refused (None) beyond a memory budget.
"""

import numpy as np
import scipy.linalg as la
from scipy.linalg import lapack

__all__ = ["make_system"]

# Largest C S^-1 (q_A x q_D doubles) formed for the blocked gradient.
_DENSE_CROSS_LIMIT = 30_000_000
# Below this ratio of the smallest to the largest diagonal element of T, the
# trace term T^-T (I - G_jj) is not formed (a variance at its bound).
_INVERTIBLE = 1e-7


def _inverse_gram(L):
    """``(L L')^-1`` of a lower triangular ``L`` (LAPACK's potri: half the flops
    of inverting ``L`` and multiplying)."""
    inv, info = lapack.dpotri(L, lower=1)
    if info:
        raise np.linalg.LinAlgError(f"singular factor (dpotri info={info})")
    return np.tril(inv) + np.tril(inv, -1).T


def _term_sizes(terms):
    return [t.n_levels * t.n_coef for t in terms]


class DenseSystem:
    """``G`` and solves of a model factored dense (columns in term order)."""

    def __init__(self, ZWZL, L, terms):
        self.terms = terms
        self.ZWZL = ZWZL
        self.L = L
        self.q = ZWZL.shape[0]
        self._G = None
        self.starts = np.concatenate([[0], np.cumsum(_term_sizes(terms))]).astype(int)

    @property
    def G(self):
        """``M^-1`` (formed on first use: a solve needs only the factor)."""
        if self._G is None:
            self._G = _inverse_gram(self.L[: self.q, : self.q])
        return self._G

    def _columns(self, f, codes):
        k = self.terms[f].n_coef
        return self.starts[f] + codes[:, None] * k + np.arange(k)[None, :]

    def entries(self, f, codes_f, g, codes_g):
        """``G`` between the rows' levels of terms ``f`` and ``g``: (n, k_f, k_g)."""
        cf, cg = self._columns(f, codes_f), self._columns(g, codes_g)
        return self.G[cf[:, :, None], cg[:, None, :]]

    def diagonal_blocks(self, f):
        t = self.terms[f]
        cols = self._columns(f, np.arange(t.n_levels))
        return self.G[cols[:, :, None], cols[:, None, :]]

    def trace_blocks(self, f, T):
        """``sum_j [Z'WZ Lambda G]_jj`` over the levels of term ``f`` (k x k)."""
        t = self.terms[f]
        rows = slice(self.starts[f], self.starts[f + 1])
        B1 = self.ZWZL[rows].reshape(t.n_levels, t.n_coef, self.q)
        B2 = self.G[rows].reshape(t.n_levels, t.n_coef, self.q)
        return np.einsum("mkq,mlq->kl", B1, B2)

    def solve(self, rhs_terms, rhs_X):
        """``[x_u; x_beta]`` of the whole system for a right-hand side per term
        (``(m, k)`` each) and one for the free fixed effects (or None)."""
        rhs = np.concatenate([r.ravel() for r in rhs_terms] + ([] if rhs_X is None else [rhs_X]))
        x = la.cho_solve((self.L, True), rhs)
        parts = np.split(x[: self.q], self.starts[1:-1])
        x_u = [p.reshape(t.n_levels, t.n_coef) for p, t in zip(parts, self.terms, strict=True)]
        return x_u, x[self.q :]


class BlockedSystem:
    """``G`` and solves from the blocked factor of one eliminated term and dense terms."""

    def __init__(self, factor, closed, dense, terms):
        (stage,) = factor.stages
        (self.closed,) = closed
        self.dense, self.terms = list(dense), terms
        self.L_inv = stage.L_inv  # (m_A, k, k)
        self.K_D = stage.C_Z  # (q_D, q_A): the factor's rows of the dense terms
        self.K_X = stage.C_W[:-1]  # (p, q_A): of the free fixed effects
        q_D = factor.q_dense
        self.L_R = factor.L22[:-1, :-1]
        self.q_D = q_D
        sizes = _term_sizes(terms)
        starts = np.cumsum([0] + [sizes[f] for f in self.dense])[:-1]
        self.dense_start = dict(zip(self.dense, starts, strict=True))
        self._inverse = None

    def _form_inverse(self):
        """``S^-1``, ``G_AD`` and the diagonal blocks ``G_AA`` (on first use)."""
        if self._inverse is not None:
            return
        q_D, terms = self.q_D, self.terms
        self.S_inv = _inverse_gram(self.L_R[:q_D, :q_D]) if q_D else np.zeros((0, 0))
        t = terms[self.closed]
        m, k = t.n_levels, t.n_coef
        K_T = self.K_D.T.tocsr() if q_D else None  # C = L_A^-1 B', rows by level
        E = np.asarray(K_T @ self.S_inv) if q_D else np.zeros((m * k, 0))  # C S^-1
        E = E.reshape(m, k, q_D)
        self.G_AD = -np.einsum("mba,mbq->maq", self.L_inv, E).reshape(m * k, q_D)
        # (C S^-1 C')_jj: E_j against the factor's columns of level j
        F = np.zeros((m, k, k))
        for a in range(k):
            for b in range(k):
                if q_D:
                    F[:, a, b] = np.asarray(K_T[b::k].multiply(E[:, a, :]).sum(axis=1)).ravel()
        inner = F + np.eye(k)[None]
        self.G_AA = np.einsum("mba,mbc,mcd->mad", self.L_inv, inner, self.L_inv)
        self._inverse = True

    @staticmethod
    def fits(factor, closed, terms):
        """Whether this class handles the factor, within the memory budget."""
        if len(closed) != 1 or len(factor.stages) != 1:
            return False
        t = terms[closed[0]]
        return t.n_levels * t.n_coef * factor.q_dense <= _DENSE_CROSS_LIMIT

    def _dense_columns(self, f, codes):
        k = self.terms[f].n_coef
        return self.dense_start[f] + codes[:, None] * k + np.arange(k)[None, :]

    def entries(self, f, codes_f, g, codes_g):
        self._form_inverse()
        if f == self.closed and g == self.closed:
            return self.G_AA[codes_f]
        if g == self.closed:
            return np.swapaxes(self.entries(g, codes_g, f, codes_f), 1, 2)
        cg = self._dense_columns(g, codes_g)
        if f == self.closed:
            k = self.terms[f].n_coef
            cf = codes_f[:, None] * k + np.arange(k)[None, :]
            return self.G_AD[cf[:, :, None], cg[:, None, :]]
        cf = self._dense_columns(f, codes_f)
        return self.S_inv[cf[:, :, None], cg[:, None, :]]

    def diagonal_blocks(self, f):
        self._form_inverse()
        if f == self.closed:
            return self.G_AA
        cols = self._dense_columns(f, np.arange(self.terms[f].n_levels))
        return self.S_inv[cols[:, :, None], cols[:, None, :]]

    def trace_blocks(self, f, T):
        """``sum_j T^-T (I - G_jj)``: ``Z'WZ Lambda G = Lambda^-T (M - I) G =
        Lambda^-T (I - G)``; None where ``T`` is (nearly) singular."""
        d = np.abs(np.diag(T))
        if d.min() <= _INVERTIBLE * max(d.max(), 1.0):
            return None
        k = T.shape[0]
        blocks = self.diagonal_blocks(f)
        total = self.terms[f].n_levels * np.eye(k) - blocks.sum(axis=0)
        return la.solve_triangular(T, total, lower=True, trans="T")

    def solve(self, rhs_terms, rhs_X):
        t = self.terms[self.closed]
        m, k = t.n_levels, t.n_coef
        y_A = np.einsum("mab,mb->ma", self.L_inv, rhs_terms[self.closed]).ravel()
        r_R = [rhs_terms[f].ravel() for f in self.dense] + ([] if rhs_X is None else [rhs_X])
        r_R = np.concatenate(r_R) if r_R else np.zeros(0)
        p = r_R.size - self.q_D
        K_y = np.concatenate([self.K_D @ y_A if self.q_D else np.zeros(0), self.K_X[:p] @ y_A])
        y_R = la.solve_triangular(self.L_R[: r_R.size, : r_R.size], r_R - K_y, lower=True)
        x_R = la.solve_triangular(self.L_R[: r_R.size, : r_R.size], y_R, lower=True, trans="T")
        back = y_A - self.K_X[:p].T @ x_R[self.q_D :]
        if self.q_D:
            back -= self.K_D.T @ x_R[: self.q_D]
        x_A = np.einsum("mba,mb->ma", self.L_inv, back.reshape(m, k))
        x_u = [None] * len(self.terms)
        x_u[self.closed] = x_A
        for f in self.dense:
            start = self.dense_start[f]
            size = self.terms[f].n_levels * self.terms[f].n_coef
            x_u[f] = x_R[start : start + size].reshape(self.terms[f].n_levels, -1)
        return x_u, x_R[self.q_D :]


def make_system(spec, terms):
    """The system of :meth:`~.model.LinearMixedModel.penalized_system`'s ``spec``,
    or None where the gradient is not available (pair kernel, memory)."""
    if spec is None:
        return None
    if spec[0] == "dense":
        return DenseSystem(spec[1], spec[2], terms)
    _, factor, closed, dense = spec
    if not BlockedSystem.fits(factor, closed, terms):
        return None
    return BlockedSystem(factor, closed, dense, terms)
