"""The rows a model was reduced from, kept for what needs rows after the fit.

The fit itself reads only the reduction (:mod:`.reduction`); residuals,
leverage and influence, and the parametric bootstrap need the rows.  A model
reduced from a stream of chunks or a Dask collection keeps none.
"""

from dataclasses import dataclass

import numpy as np

from .reduction import reduce_rows

__all__ = ["ModelRows", "intercept_column"]


def intercept_column(X):
    """Index of the first all-ones column of X, or None."""
    X = np.asarray(X)
    if X.shape[0] == 0:
        return None
    ones = np.flatnonzero(np.all(X == 1.0, axis=0))
    return int(ones[0]) if ones.size else None


@dataclass(frozen=True)
class ModelRows:
    """The rows a model was reduced from, kept by reference (no copies).

    For what needs rows after the fit: residuals, leverage and influence,
    the parametric bootstrap.  ``X`` is the fixed-effects model matrix of the
    model (its columns as fitted), ``terms`` the random terms with their level
    codes and covariates.
    """

    X: np.ndarray
    y: np.ndarray
    terms: tuple
    weights: np.ndarray | None = None
    offset: np.ndarray | None = None
    intercept: int | None = None

    @property
    def n(self):
        return self.y.shape[0]

    def reduce(self, y=None):
        """The reduction of these rows (with another response ``y``, if given)."""
        return reduce_rows(
            self.X,
            self.y if y is None else y,
            self.terms,
            weights=self.weights,
            offset=self.offset,
            intercept=self.intercept,
        )

    def subset(self, rows):
        """The rows selected by ``rows`` (a boolean mask or indices)."""
        pick = None if self.weights is None else self.weights[rows]
        off = None if self.offset is None else self.offset[rows]
        return ModelRows(
            self.X[rows],
            self.y[rows],
            tuple(t.subset(rows) for t in self.terms),
            pick,
            off,
            self.intercept,
        )
