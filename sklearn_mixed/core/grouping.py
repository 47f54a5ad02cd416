"""Grouping factors and the random-effects model matrix Z.

A random-effects *term* is one grouping factor ``g`` with ``k`` columns per
level (a random intercept, then random slopes).  For observation ``i`` in level
``g[i] = j`` the row of ``Z`` holds the term's covariate vector ``z_i`` in the
``k`` columns of level ``j`` and zeros elsewhere, so ``Z`` is
``n x (m k)`` with ``k`` non-zeros per row (Bates et al. 2015, section 2.3).

Everything here works on plain arrays: no pandas, no scikit-learn.
"""

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from .structures import CovarianceStructure, make_structure

__all__ = [
    "RandomTerm",
    "encode_factor",
    "is_nested_in",
    "nesting_pairs",
    "term_model_matrix",
]


@dataclass(frozen=True)
class RandomTerm:
    """One grouping factor and the covariates whose coefficients vary by level.

    Attributes
    ----------
    name : str
        Name of the grouping factor.
    codes : ndarray of shape (n,), int
        Level index of each observation, ``0 <= codes < n_levels``.
    levels : ndarray of shape (m,)
        Level labels, in the order of the codes.
    covariates : ndarray of shape (n, k)
        The covariates whose coefficients vary by level: a column of ones
        for a random intercept, any columns for slopes.
    covariate_names : tuple of str
        Names of the ``k`` covariate columns (``"(Intercept)"`` for ones).
    structure : CovarianceStructure or str, default="unstructured"
        Form of the ``k x k`` covariance of the term's random effects
        (:mod:`.structures`; a name is turned into the structure).
    """

    name: str
    codes: np.ndarray
    levels: np.ndarray
    covariates: np.ndarray
    covariate_names: tuple
    structure: CovarianceStructure | str = "unstructured"

    def __post_init__(self):
        if not isinstance(self.structure, CovarianceStructure):
            object.__setattr__(self, "structure", make_structure(self.structure, self.n_coef))

    def subset(self, rows):
        """The term on the rows selected by ``rows`` (same levels and codes)."""
        return replace(self, codes=self.codes[rows], covariates=self.covariates[rows])

    @property
    def n_levels(self):
        return len(self.levels)

    @property
    def n_coef(self):
        """k, the number of random coefficients per level."""
        return self.covariates.shape[1]

    @property
    def n_columns(self):
        """m k, the number of columns this term contributes to Z."""
        return self.n_levels * self.n_coef


def encode_factor(labels):
    """Integer codes and sorted unique levels of a 1-D array of labels.

    Levels are sorted (as R's ``factor`` sorts them), so results do not depend
    on the order of the rows.

    Returns
    -------
    codes : ndarray of shape (n,), intp
    levels : ndarray of shape (m,)
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if labels.dtype.kind in "iu" and labels.size:
        dense = _encode_compact_integers(labels)
        if dense is not None:
            return dense
    try:
        levels, codes = np.unique(labels, return_inverse=True)
    except TypeError:
        # Labels of mixed types (1 and "1") cannot be compared: keep them
        # distinct and order them by type name, then text.
        levels = sorted(set(labels.tolist()), key=lambda v: (type(v).__name__, str(v)))
        position = {v: i for i, v in enumerate(levels)}
        codes = np.fromiter((position[v] for v in labels.tolist()), np.intp, len(labels))
        levels = np.array(levels, dtype=object)
    return codes.astype(np.intp, copy=False), levels


def _encode_compact_integers(labels):
    """:func:`encode_factor` of integers spanning at most a few times ``n``
    values, in O(n) by a table of the values present (no sort), or None."""
    low, high = int(labels.min()), int(labels.max())
    if high - low > 4 * labels.size + 1024:
        return None
    offset = labels - low
    present = np.zeros(high - low + 1, dtype=bool)
    present[offset] = True
    rank = np.cumsum(present, dtype=np.intp) - 1  # code of each present value
    return rank[offset], (np.flatnonzero(present) + low).astype(labels.dtype)


def is_nested_in(inner_codes, outer_codes):
    """True when every level of ``inner`` occurs within exactly one outer level."""
    inner_codes = np.asarray(inner_codes)
    outer_codes = np.asarray(outer_codes)
    n_inner = int(inner_codes.max()) + 1 if inner_codes.size else 0
    first_outer = np.full(n_inner, -1, dtype=np.intp)
    first_outer[inner_codes] = outer_codes
    return bool(np.all(first_outer[inner_codes] == outer_codes))


def nesting_pairs(names, reduction):
    """Pairs ``(inner, outer)`` of factor names where inner is nested in outer.

    From the level cross-tabulations of a :class:`~.reduction.Reduction`
    (term ``i`` is ``names[i]``).  A factor is only reported as nested in
    another with strictly fewer levels (two factors with identical partitions
    are aliases, not nested).
    """
    n_levels = [int(np.count_nonzero(t.level_n)) for t in reduction.terms]
    pairs = []
    for i in range(len(names)):
        for j in range(len(names)):
            if i != j and n_levels[i] > n_levels[j] and reduction.nested(i, j):
                pairs.append((names[i], names[j]))
    return pairs


def term_model_matrix(term):
    """The sparse ``n x (m k)`` block of Z for one term (CSR).

    Column ``j k + a`` holds covariate ``a`` for the rows in level ``j``.
    """
    n, k = term.covariates.shape
    indptr = np.arange(0, n * k + 1, k)
    indices = (term.codes[:, None] * k + np.arange(k)[None, :]).ravel()
    data = np.ascontiguousarray(term.covariates, dtype=float).ravel()
    return sp.csr_matrix((data, indices, indptr), shape=(n, term.n_columns))
