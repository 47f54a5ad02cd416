"""The blocked layout of the cross-products, for the blocked Cholesky factor.

The random-effects terms are split into *closed* terms ``Z_1, ..., Z_r``,
eliminated level by level in closed form (the term with the most levels, then
terms in which all earlier closed terms are nested), and *dense* terms
``Z_D``; ``W = [X, y]``.  The penalized least squares system of Bates et al.
(2015, eq. 17-18), augmented with ``y``, only needs (all weighted by the prior
weights, from the one data reduction :mod:`.reduction`)::

    Z_i'Z_i              block diagonal: one k_i x k_i block per level
    [Z_{i+1..r}, Z_D]'Z_i  sparse: the later random-effects columns against Z_i
    W'Z_i                dense  (p + 1 x m_i k_i)
    Z_D'Z_D              dense  (q_D x q_D)
    W'Z_D                dense  (p + 1 x q_D)
    W'W                  dense  (p + 1 x p + 1)

This module only rearranges a :class:`~.reduction.Reduction` into that
layout: it reads no rows.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .cholesky import block_diagonal
from .pairs import PAIR_LIMIT, WeightedGram
from .schur import CrossedSchur

__all__ = ["ClosedBlock", "CrossProducts", "blocked_cross_products"]


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


def data_gram(reduction):
    """``W'W`` for ``W = [X, y]`` (weighted, centred)."""
    p = reduction.p
    WW = np.empty((p + 1, p + 1))
    WW[:p, :p] = reduction.XX
    WW[:p, p] = WW[p, :p] = reduction.Xy
    WW[p, p] = reduction.yy
    return WW


def _cross_with_data(t):
    """``W'Z`` of one term, ``(p + 1, m, k)``: X's rows, then y's."""
    return np.concatenate([np.moveaxis(t.ZX, 2, 0), t.Zy[None]], axis=0)


# Below this many stored products the precomputed pairs always win.
_FEW_PRODUCTS = 100_000


def _weighted_gram(later_Z):
    """A :class:`WeightedGram` of ``later_Z`` if it beats a dense syrk, else None.

    Its cost per evaluation is the number of stored products; a syrk costs
    ``q^2 m`` flops, about a hundred times cheaper each, but below ~1e5
    products both cost less than the sparse bookkeeping of the syrk's path.
    """
    q, m = later_Z.shape
    if not q:
        return None
    stored = WeightedGram.stored_products(later_Z)
    if stored > PAIR_LIMIT or (stored > _FEW_PRODUCTS and 100 * stored > q * q * m):
        return None
    return WeightedGram(later_Z)


def _stack(blocks, n_cols):
    if not blocks:
        return sp.csr_matrix((0, n_cols))
    if len(blocks) == 1:
        return blocks[0].tocsr()
    return sp.vstack(blocks, format="csr")


def dense_terms_gram(reduction, dense):
    """``Z_D'Z_D`` (sparse CSR) of the dense terms, in the order given."""
    sizes = [reduction.terms[f].n_levels * reduction.terms[f].n_coef for f in dense]
    if not dense:
        return sp.csr_matrix((0, 0))
    if len(dense) == 1:
        return block_diagonal(reduction.terms[dense[0]].A)
    grid = [[None] * len(dense) for _ in dense]
    for a, f in enumerate(dense):
        grid[a][a] = block_diagonal(reduction.terms[f].A)
        for b in range(a + 1, len(dense)):
            grid[a][b] = reduction.pair(f, dense[b])
            grid[b][a] = grid[a][b].T
    for a, size in enumerate(sizes):
        grid[a][a] = grid[a][a] if grid[a][a].shape[0] else sp.csr_matrix((size, size))
    return sp.bmat(grid, format="csr")


def blocked_cross_products(reduction, closed, dense, precompute=True):
    """:class:`CrossProducts` of closed terms (in elimination order) and dense terms.

    Parameters
    ----------
    reduction : Reduction
    closed : sequence of int
        At least one term index; each must have all earlier closed terms nested in it.
    dense : sequence of int
    precompute : bool
        Precompute the products of pairs of levels (:mod:`.pairs`) where they
        pay off over many evaluations.
    """
    p = reduction.p
    blocks = []
    for i, f in enumerate(closed):
        t = reduction.terms[f]
        later = list(closed[i + 1 :]) + list(dense)
        later_Z = _stack([reduction.pair(g, f) for g in later], t.n_levels * t.n_coef)
        single_intercept = len(closed) == 1 and t.n_coef == 1
        blocks.append(
            ClosedBlock(
                A=t.A,
                WZ=_cross_with_data(t),
                later_Z=later_Z,
                pairs=_weighted_gram(later_Z) if single_intercept and precompute else None,
            )
        )
    ZdZd = dense_terms_gram(reduction, list(dense))
    if dense:
        WZd = np.concatenate(
            [_cross_with_data(reduction.terms[f]).reshape(p + 1, -1) for f in dense], axis=1
        )
    else:
        WZd = np.zeros((p + 1, 0))
    pairs = blocks[0].pairs
    return CrossProducts(
        n=reduction.n,
        p=p,
        closed=tuple(blocks),
        ZdZd=ZdZd.toarray(),
        WZd=WZd,
        WW=data_gram(reduction),
        schur=CrossedSchur(pairs, ZdZd, p + 1) if pairs is not None else None,
    )
