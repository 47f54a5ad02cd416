"""The cross-products of Henderson's mixed-model equations, computed once.

Write ``Z = [Z1, Z2]`` where ``Z1`` is the term with the most levels and
``Z2`` all the other terms, and ``W = [X, y]``.  The penalized least squares
system of Bates et al. (2015, eq. 17-18), augmented with ``y``, only needs::

    Z1'Z1   block diagonal: one k1 x k1 block per level of term 1
    Z2'Z1   sparse (q2 x m1 k1)
    W'Z1    dense  (p + 1 x m1 k1)
    Z2'Z2   dense  (q2 x q2)
    W'Z2    dense  (p + 1 x q2)
    W'W     dense  (p + 1 x p + 1)

After this single pass over the data, one evaluation of the profiled deviance
costs nothing in ``n``.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .grouping import term_model_matrix

__all__ = ["CrossProducts", "cross_products"]


@dataclass(frozen=True)
class CrossProducts:
    """Cross-products of ``[Z1, Z2, X, y]``; see the module docstring."""

    n: int
    p: int
    k1: int
    m1: int
    A11: np.ndarray  # (m1, k1, k1)
    Z2Z1: sp.csr_matrix  # (q2, m1 k1)
    WZ1: np.ndarray  # (p + 1, m1, k1)
    Z2Z2: np.ndarray  # (q2, q2)
    WZ2: np.ndarray  # (p + 1, q2)
    WW: np.ndarray  # (p + 1, p + 1)

    @property
    def q2(self):
        return self.Z2Z2.shape[0]


def _block_diagonal_gram(term):
    """Per-level Gram matrices sum_{i in level j} z_i z_i' as (m, k, k)."""
    m, k = term.n_levels, term.n_coef
    z = term.covariates
    A = np.empty((m, k, k))
    for a in range(k):
        for b in range(a, k):
            A[:, a, b] = np.bincount(term.codes, weights=z[:, a] * z[:, b], minlength=m)
            A[:, b, a] = A[:, a, b]
    return A


def cross_products(X, y, terms):
    """Cross-products for the terms, ``terms[0]`` being eliminated in closed form.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Fixed-effects model matrix.
    y : ndarray of shape (n,)
    terms : sequence of RandomTerm
        At least one term; ``terms[0]`` should have the most levels.
    """
    n, p = X.shape
    W = np.empty((n, p + 1))
    W[:, :p] = X
    W[:, p] = y
    first, rest = terms[0], terms[1:]
    Z1 = term_model_matrix(first)
    WZ1 = np.asarray((Z1.T @ W).T).reshape(p + 1, first.n_levels, first.n_coef)
    if rest:
        Z2 = sp.hstack([term_model_matrix(t) for t in rest], format="csr")
        Z2T = Z2.T.tocsr()
        Z2Z1 = (Z2T @ Z1).tocsr()
        Z2Z2 = (Z2T @ Z2).toarray()
        WZ2 = np.asarray((Z2T @ W).T)
    else:
        Z2Z1 = sp.csr_matrix((0, first.n_columns))
        Z2Z2 = np.zeros((0, 0))
        WZ2 = np.zeros((p + 1, 0))
    return CrossProducts(
        n=n,
        p=p,
        k1=first.n_coef,
        m1=first.n_levels,
        A11=_block_diagonal_gram(first),
        Z2Z1=Z2Z1,
        WZ1=WZ1,
        Z2Z2=Z2Z2,
        WZ2=WZ2,
        WW=W.T @ W,
    )
