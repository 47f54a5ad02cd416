"""Where the rows of a reduction fall in its pair tables, for reducing again.

A GLMM reduces the same rows again and again with new working weights
(PIRLS): the cells of the tables ``Z_f'WZ_g`` do not change, so each pair
of scalar terms is one weighted ``bincount`` on the known cells, and the
counts are reused (:func:`~.reduction.reduce_rows`, ``pattern=``).
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .sums import index_sums

__all__ = ["PairPattern", "pattern_pair"]


@dataclass(frozen=True)
class PairPattern:
    """Where each row falls in the pair tables of a set of terms: for data reduced
    again and again with new weights (PIRLS), each pair of scalar terms is then
    one weighted ``bincount`` on the known cells, and the counts are reused."""

    counts: dict  # (f, g) -> CSR level counts, sorted indices
    positions: dict  # (f, g) -> (n,) index of each row's cell in counts[(f, g)].data

    @classmethod
    def of(cls, terms, counts):
        """The pattern of ``terms`` (their rows) given their pair ``counts``."""
        positions, sorted_counts = {}, {}
        for (f, g), N in counts.items():
            N = N.copy()
            N.sort_indices()
            m_g = terms[g].n_levels
            cells = np.repeat(np.arange(N.shape[0], dtype=np.int64), np.diff(N.indptr))
            cells = cells * m_g + N.indices
            keys = terms[f].codes.astype(np.int64) * m_g + terms[g].codes
            positions[(f, g)] = np.searchsorted(cells, keys)
            sorted_counts[(f, g)] = N
        return cls(sorted_counts, positions)

    def pair(self, f, g, values):
        """``Z_f'WZ_g`` of two scalar terms from the rows' products ``values``."""
        N = self.counts[(f, g)]
        data = index_sums(self.positions[(f, g)], values, N.nnz)
        return sp.csr_matrix((data, N.indices, N.indptr), shape=N.shape)


def pattern_pair(pattern, terms, f, g, w):
    """The pair table of scalar terms ``f``, ``g`` on a known pattern, or None."""
    s, t = terms[f], terms[g]
    if pattern is None or s.n_coef != 1 or t.n_coef != 1:
        return None
    v = np.asarray(s.covariates[:, 0] * t.covariates[:, 0], dtype=float)
    return pattern.pair(f, g, v if w is None else w * v), pattern.counts[(f, g)]
