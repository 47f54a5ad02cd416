"""The cross-products of Henderson's mixed-model equations, computed once.

The random-effects terms are split into *closed* terms ``Z_1, ..., Z_r``,
eliminated level by level in closed form (the term with the most levels, then
terms in which all earlier closed terms are nested), and *dense* terms
``Z_D``; ``W = [X, y]``.  The penalized least squares system of Bates et al.
(2015, eq. 17-18), augmented with ``y``, only needs::

    Z_i'Z_i              block diagonal: one k_i x k_i block per level
    [Z_{i+1..r}, Z_D]'Z_i  sparse: the later random-effects columns against Z_i
    W'Z_i                dense  (p + 1 x m_i k_i)
    Z_D'Z_D              dense  (q_D x q_D)
    W'Z_D                dense  (p + 1 x q_D)
    W'W                  dense  (p + 1 x p + 1)

After this single pass over the data, one evaluation of the profiled deviance
costs nothing in ``n``.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .grouping import term_model_matrix
from .pairs import PAIR_LIMIT, WeightedGram
from .schur import CrossedSchur
from .threads import single_blas_thread

__all__ = ["ClosedBlock", "CrossProducts", "cross_products"]


@dataclass(frozen=True)
class ClosedBlock:
    """Cross-products of one term eliminated level by level."""

    A: np.ndarray  # (m, k, k): per-level Gram matrices Z_j'Z_j
    WZ: np.ndarray  # (p + 1, m, k)
    later_Z: sp.csr_matrix  # (later random-effects columns, m k)
    pairs: WeightedGram | None = None  # later_Z diag(w) later_Z', when it pays

    @property
    def n_levels(self):
        return self.A.shape[0]

    @property
    def n_coef(self):
        return self.A.shape[1]


@dataclass(frozen=True)
class CrossProducts:
    """Cross-products of ``[Z_closed, Z_D, X, y]``; see the module docstring."""

    n: int
    p: int
    closed: tuple  # of ClosedBlock, in elimination order
    ZdZd: np.ndarray  # (q_D, q_D)
    WZd: np.ndarray  # (p + 1, q_D)
    WW: np.ndarray  # (p + 1, p + 1)
    # the pattern of the dense block, when the closed term has precomputed pairs
    schur: CrossedSchur | None = None

    @property
    def q_dense(self):
        return self.ZdZd.shape[0]


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


def data_gram(X, y):
    """``W'W`` for ``W = [X, y]``, without forming ``W`` (no copy of X)."""
    p = X.shape[1]
    WW = np.empty((p + 1, p + 1))
    WW[:p, :p] = X.T @ X
    WW[:p, p] = WW[p, :p] = X.T @ y
    WW[p, p] = y @ y
    return WW


def _cross_with_data(Z, X, y):
    """``W'Z`` for ``W = [X, y]`` ((p + 1) x columns of Z), without forming ``W``."""
    Zt = Z.T.tocsr()
    return np.vstack([np.asarray(Zt @ X).T, np.asarray(Zt @ y)[None, :]])


def _weighted_gram(later_Z):
    """A :class:`WeightedGram` of ``later_Z`` if it beats a dense syrk, else None.

    Its cost per evaluation is the number of stored products; a syrk costs
    ``q^2 m`` flops, about a hundred times cheaper each.
    """
    q, m = later_Z.shape
    if not q:
        return None
    stored = WeightedGram.stored_products(later_Z)
    if stored > PAIR_LIMIT or 100 * stored > q * q * m:
        return None
    return WeightedGram(later_Z)


def _hstack(matrices, n):
    if not matrices:
        return sp.csr_matrix((n, 0))
    return sp.hstack(matrices, format="csr")


def cross_products(X, y, closed_terms, dense_terms=()):
    """Cross-products for closed terms (in elimination order) and dense terms.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Fixed-effects model matrix.
    y : ndarray of shape (n,)
    closed_terms : sequence of RandomTerm
        At least one; each must have all earlier closed terms nested in it.
    dense_terms : sequence of RandomTerm
    """
    with single_blas_thread():  # small level-2 products: threads would only wait
        return _cross_products(X, y, closed_terms, dense_terms)


def _cross_products(X, y, closed_terms, dense_terms):
    n, p = X.shape
    Z_closed = [term_model_matrix(t) for t in closed_terms]
    Z_dense = _hstack([term_model_matrix(t) for t in dense_terms], n)
    blocks = []
    for i, (term, Z) in enumerate(zip(closed_terms, Z_closed, strict=True)):
        later = _hstack(Z_closed[i + 1 :] + [Z_dense], n)
        later_Z = (later.T.tocsr() @ Z).tocsr()
        single_intercept = len(closed_terms) == 1 and term.n_coef == 1
        blocks.append(
            ClosedBlock(
                A=_block_diagonal_gram(term),
                WZ=_cross_with_data(Z, X, y).reshape(p + 1, term.n_levels, term.n_coef),
                later_Z=later_Z,
                pairs=_weighted_gram(later_Z) if single_intercept else None,
            )
        )
    ZdZd = Z_dense.T.tocsr() @ Z_dense
    pairs = blocks[0].pairs
    return CrossProducts(
        n=n,
        p=p,
        closed=tuple(blocks),
        ZdZd=ZdZd.toarray(),
        WZd=_cross_with_data(Z_dense, X, y),
        WW=data_gram(X, y),
        schur=CrossedSchur(pairs, ZdZd, p + 1) if pairs is not None else None,
    )
