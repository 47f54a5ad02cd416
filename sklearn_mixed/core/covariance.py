"""Relative covariance factors: theta <-> T <-> Sigma.

For a term with ``k`` random coefficients per level, the covariance of one
level's random effects is ``Sigma = sigma^2 T T'`` with ``T`` lower triangular
(Bates et al. 2015, eq. 4-5).  ``theta`` lists the free elements of ``T`` column
by column (lme4's order): for ``k = 2`` unstructured, ``theta = (T11, T21, T22)``.
A ``"diagonal"`` term (independent intercept and slopes, lme4's
``(1|g) + (0 + x|g)``) has only the diagonal of ``T`` free.

Diagonal elements are bounded below by 0 (a zero means a singular fit);
off-diagonal elements are unbounded.
"""

import functools

import numpy as np

__all__ = [
    "STRUCTURES",
    "covariance_to_sd_corr",
    "free_positions",
    "n_theta",
    "relative_factor",
    "theta_lower_bounds",
    "theta_start",
]

STRUCTURES = ("unstructured", "diagonal")


@functools.lru_cache(maxsize=64)
def free_positions(k, structure):
    """Row and column indices of the free elements of T, column-major (read-only)."""
    if structure == "diagonal":
        rows = cols = np.arange(k)
    elif structure == "unstructured":
        cols, rows = np.triu_indices(k)  # column-major walk over the lower triangle
    else:
        raise ValueError(f"covariance structure must be one of {STRUCTURES}, got {structure!r}")
    rows.flags.writeable = False
    cols.flags.writeable = False
    return rows, cols


def n_theta(k, structure):
    """Number of free parameters of a k x k relative factor."""
    return k if structure == "diagonal" else k * (k + 1) // 2


def theta_start(k, structure):
    """lme4's starting value: T = I (variance components equal to sigma^2)."""
    rows, cols = free_positions(k, structure)
    return (rows == cols).astype(float)


def theta_lower_bounds(k, structure):
    """0 for the diagonal of T, -inf for the off-diagonal elements."""
    rows, cols = free_positions(k, structure)
    return np.where(rows == cols, 0.0, -np.inf)


def relative_factor(theta, k, structure):
    """Lower-triangular T (k x k) from its free elements ``theta``."""
    rows, cols = free_positions(k, structure)
    T = np.zeros((k, k))
    T[rows, cols] = theta
    return T


def covariance_to_sd_corr(cov):
    """Standard deviations and correlation matrix of a covariance matrix.

    A zero standard deviation gives correlations of ``nan`` in its row and
    column, as lme4 prints them.
    """
    cov = np.asarray(cov, dtype=float)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    np.fill_diagonal(corr, 1.0)
    return sd, corr
