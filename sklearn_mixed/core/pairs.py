"""``N diag(w) N'`` for a fixed sparse ``N`` and changing weights ``w``.

With random intercepts only, the block of the other factors against the
factor eliminated in closed form is ``C = diag(r) N diag(c)``, ``N`` the
cross-tabulation of level counts, and ``C C' = diag(r) N diag(c^2) N' diag(r)``.
Every entry of ``N diag(w) N'`` is ``sum_j N_aj N_bj w_j``: a fixed linear
map of ``w``.  Storing the products ``N_aj N_bj`` once, as a sparse matrix
``P`` with one row per pair ``(a, b)`` that meets in some column, turns each
evaluation into one sparse product ``P w`` (InstEval: 1.9e6 stored products,
against a sparse-times-sparse product with hashing at every evaluation).
"""

import numpy as np
import scipy.sparse as sp

__all__ = ["PAIR_LIMIT", "WeightedGram"]

# Beyond this many stored products (12 bytes each), P costs too much memory
# and a dense syrk of C is the better way (cholesky.gram).
PAIR_LIMIT = 20_000_000


def _number_keys(keys, n_keys):
    """Sorted distinct keys and each key's position among them.

    A table over all ``n_keys`` possible keys avoids sorting the (many more)
    stored products when the table is small enough.
    """
    if n_keys > 50_000_000:
        return np.unique(keys, return_inverse=True)
    present = np.zeros(n_keys, dtype=bool)
    present[keys] = True
    distinct = np.flatnonzero(present)
    position = np.cumsum(present) - 1
    return distinct, position[keys]


class WeightedGram:
    """Precomputed ``N diag(w) N'`` (lower-triangle pairs) for CSR ``N`` (q x m)."""

    def __init__(self, N):
        N = sp.csc_matrix(N)
        N.sort_indices()
        q, m = N.shape
        self.shape = (q, q)
        counts = np.diff(N.indptr)
        # columns grouped by their count c; each contributes c (c + 1) / 2 products
        order, keys, values = [], [], []
        for c in np.unique(counts[counts > 0]):
            cols = np.flatnonzero(counts == c)
            entries = N.indptr[cols][:, None] + np.arange(c)[None, :]
            rows, vals = N.indices[entries].astype(np.int64), N.data[entries]
            s, t = np.tril_indices(c)  # pairs with rows[s] >= rows[t] (sorted)
            order.append(cols)
            keys.append((rows[:, s] * q + rows[:, t]).ravel())
            values.append((vals[:, s] * vals[:, t]).ravel())
        empty = [np.zeros(0, dtype=np.int64)]
        order = np.concatenate(order or empty)
        keys, pair = _number_keys(np.concatenate(keys or empty), q * q)
        values = values or [np.zeros(0)]
        self.a, self.b = keys // q, keys % q
        # stored column by column in the grouped order: CSC with permuted
        # columns; one counting sort to CSR rows, then the true column indices
        sizes = counts[order].astype(np.int64)
        indptr = np.concatenate([[0], np.cumsum(sizes * (sizes + 1) // 2)])
        P = sp.csc_matrix((np.concatenate(values), pair, indptr), shape=(keys.size, order.size))
        P = P.tocsr()
        P.indices = order[P.indices].astype(P.indices.dtype)
        P.has_sorted_indices = False
        self.P = sp.csr_matrix((P.data, P.indices, P.indptr), shape=(keys.size, m))

    @staticmethod
    def stored_products(N):
        """How many products ``N_aj N_bj`` (a >= b) the precomputation would store."""
        counts = np.diff(sp.csc_matrix(N).indptr).astype(np.int64)
        return int(np.sum(counts * (counts + 1) // 2))

    def __call__(self, w):
        """``N diag(w) N'`` as a dense symmetric array."""
        values = self.P @ w
        G = np.zeros(self.shape)
        G[self.a, self.b] = values
        G[self.b, self.a] = values
        return G

    def quadratic_forms(self, S, r=None):
        """``n_j' S n_j`` for every column ``j`` of ``N`` (``S`` symmetric; only its
        lower triangle is read), or ``n_j' diag(r) S diag(r) n_j``."""
        weights = S[self.a, self.b] * np.where(self.a == self.b, 1.0, 2.0)
        if r is not None:
            weights *= r[self.a] * r[self.b]
        return self.P.T @ weights
