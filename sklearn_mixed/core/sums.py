"""Sums of values per index (level, cell), with a bounded rounding error.

``np.bincount`` adds the values of an index one after the other, an error of
``eps`` times their number (1e-11 relative for 1e5 rows of one level), which
the fixed intercept can amplify 1e4-fold: the reduction of the same rows in
chunks (a stream, Dask partitions) and at once would then differ at 1e-7.
Summed by blocks of rows, each index adds at most ~``_ROWS_PER_INDEX`` values
in a row, and the blocks' sums are added.
"""

import numpy as np

__all__ = ["index_sums"]

# Fewest rows per block (bounded temporaries, few Python steps).
_BLOCK_ROWS = 1 << 16
# Rows per index in a block.
_ROWS_PER_INDEX = 256


def index_sums(index, weights, size):
    """``out[j] = sum of weights[i] over i with index[i] == j`` (the count of
    each index when ``weights`` is None), ``size`` entries."""
    if weights is None:
        return np.bincount(index, minlength=size).astype(float)
    block = max(_BLOCK_ROWS, _ROWS_PER_INDEX * size)
    if index.size <= block:
        return np.bincount(index, weights=weights, minlength=size)
    out = np.zeros(size)
    for start in range(0, index.size, block):
        rows = slice(start, start + block)
        out += np.bincount(index[rows], weights=weights[rows], minlength=size)
    return out
