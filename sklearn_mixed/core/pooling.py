"""No pooling, complete pooling and partial pooling of one grouping factor.

For a factor ``f`` with covariates ``Z_f`` (intercept, then slopes) and level
codes ``g``, the three estimates of a level ``j``'s coefficients are:

- *partial pooling* (the mixed model): ``beta_f + b_j``, with ``beta_f`` the
  fixed effects of ``f``'s covariates (0 for a covariate without one) and
  ``b_j`` the conditional mode;
- *no pooling*: ``beta_f + c_j``, where ``c_j`` is the least-squares fit, on
  level ``j``'s rows alone, of the partial residual

  ``r = y - X beta - sum_{g != f} Z_g b_g``

  on ``Z_f``, i.e. the level's own estimate with everything else (the fixed
  effects and the other factors' modes) held at the mixed model's values.
  With one grouping factor it is the ordinary per-group regression of
  ``y - X_other beta_other`` on ``Z_f`` (lme4's ``lmList`` when every fixed
  effect has a random slope);
- *complete pooling*: the ordinary least-squares fit of ``y`` on ``X``,
  ignoring the groups.

Henderson's equations for ``b_j`` given everything else read
``(Z_j' Z_j + sigma^2 Sigma^{-1}) b_j = Z_j' r_j`` while ``c_j`` solves
``Z_j' Z_j c_j = Z_j' r_j``; for a random intercept this gives
``b_j = (1 - s_j) c_j`` with ``s_j = (sigma^2 / n_j) / (tau^2 + sigma^2 / n_j)``,
the shrinkage fraction, in any design (balanced or not, crossed or nested).

Everything here works on plain arrays: no pandas, no scikit-learn.  Sums over
levels use ``np.bincount``, so the cost is linear in the number of rows with
no Python loop over levels.
"""

import numpy as np

__all__ = [
    "complete_pooling_coefficients",
    "level_cross_products",
    "no_pooling_coefficients",
    "other_factors_contribution",
    "per_level_least_squares",
    "shrinkage_fraction",
]

# A level's Gram matrix Z_j' Z_j, scaled to unit diagonal, whose smallest
# eigenvalue is below this is singular: its coefficients are not identifiable.
IDENTIFIABILITY_TOLERANCE = 1e-10


def level_cross_products(codes, n_levels, covariates, response):
    """Per-level ``Z_j' Z_j`` and ``Z_j' r_j`` by weighted bincounts.

    Parameters
    ----------
    codes : ndarray of shape (n,), int
        Level index of each row, ``0 <= codes < n_levels``.
    n_levels : int
    covariates : ndarray of shape (n, k)
    response : ndarray of shape (n,)

    Returns
    -------
    gram : ndarray of shape (n_levels, k, k)
    rhs : ndarray of shape (n_levels, k)
    """
    k = covariates.shape[1]
    gram = np.empty((n_levels, k, k))
    rhs = np.empty((n_levels, k))
    for a in range(k):
        rhs[:, a] = np.bincount(codes, covariates[:, a] * response, minlength=n_levels)
        for c in range(a, k):
            s = np.bincount(codes, covariates[:, a] * covariates[:, c], minlength=n_levels)
            gram[:, a, c] = gram[:, c, a] = s
    return gram, rhs


def _identifiable(gram, counts):
    """Levels whose ``Z_j' Z_j`` is non-singular (and with at least k rows)."""
    k = gram.shape[1]
    diag = np.einsum("jaa->ja", gram)
    ok = (counts >= k) & np.all(diag > 0, axis=1)
    scale = np.sqrt(np.where(ok[:, None], diag, 1.0))
    # Z_j' Z_j scaled to unit diagonal: its eigenvalues measure collinearity
    # of the level's covariates independently of their units.
    scaled = gram / (scale[:, :, None] * scale[:, None, :])
    scaled[~ok] = np.eye(k)
    smallest = np.linalg.eigvalsh(scaled)[:, 0]
    return ok & (smallest > IDENTIFIABILITY_TOLERANCE)


def per_level_least_squares(codes, n_levels, covariates, response):
    """Least-squares coefficients of ``response`` on ``covariates``, per level.

    Parameters
    ----------
    codes : ndarray of shape (n,), int
    n_levels : int
    covariates : ndarray of shape (n, k)
    response : ndarray of shape (n,)

    Returns
    -------
    coef : ndarray of shape (n_levels, k)
        ``(Z_j' Z_j)^{-1} Z_j' r_j``; a row of NaN where the level's
        coefficients are not identifiable (fewer rows than coefficients, a
        covariate constant within the level, or collinear covariates).
    counts : ndarray of shape (n_levels,), int
        Rows per level.

    Examples
    --------
    >>> import numpy as np
    >>> codes = np.array([0, 0, 1, 1, 2])
    >>> z = np.column_stack([np.ones(5), [0.0, 1.0, 0.0, 2.0, 1.0]])
    >>> coef, counts = per_level_least_squares(codes, 3, z, np.array([1.0, 3, 0, 4, 5]))
    >>> coef
    array([[ 1.,  2.],
           [ 0.,  2.],
           [nan, nan]])
    >>> counts
    array([2, 2, 1])
    """
    counts = np.bincount(codes, minlength=n_levels)
    gram, rhs = level_cross_products(codes, n_levels, covariates, response)
    ok = _identifiable(gram, counts)
    k = gram.shape[1]
    gram[~ok] = np.eye(k)  # placeholders, so the batched solve never fails
    coef = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]
    coef[~ok] = np.nan
    return coef, counts


def other_factors_contribution(terms, modes, skip):
    """``sum_{g != skip} Z_g b_g`` per row: the other factors' random part.

    Parameters
    ----------
    terms : list of RandomTerm
    modes : list of ndarray of shape (m_g, k_g)
        Conditional modes ``b_g``, in the order of ``terms``.
    skip : int
        Index of the factor left out.

    Returns
    -------
    contribution : ndarray of shape (n,)
    """
    n = terms[skip].codes.shape[0]
    total = np.zeros(n)
    for index, (term, b) in enumerate(zip(terms, modes, strict=True)):
        if index != skip:
            total += np.einsum("ik,ik->i", term.covariates, b[term.codes])
    return total


def no_pooling_coefficients(design, y, beta, terms, modes, factor, population):
    """Each level's own estimate of factor ``factor``'s coefficients.

    ``population + c_j``, ``c_j`` the per-level least-squares fit of the partial
    residual ``y - X beta - sum_{g != factor} Z_g b_g`` on the factor's
    covariates (see the module docstring).

    Parameters
    ----------
    design : ndarray of shape (n, p)
        Fixed-effects model matrix ``X``.
    y : ndarray of shape (n,)
    beta : ndarray of shape (p,)
    terms : list of RandomTerm
    modes : list of ndarray
        Conditional modes, in the order of ``terms``.
    factor : int
        Index of the factor in ``terms``.
    population : ndarray of shape (k,)
        The fixed effect of each of the factor's covariates (0 where none).

    Returns
    -------
    coef : ndarray of shape (m, k)
        NaN rows where not identifiable.
    counts : ndarray of shape (m,), int
    """
    term = terms[factor]
    residual = y - design @ beta - other_factors_contribution(terms, modes, factor)
    deviation, counts = per_level_least_squares(
        term.codes, term.n_levels, term.covariates, residual
    )
    return population[None, :] + deviation, counts


def complete_pooling_coefficients(design, y):
    """Ordinary least squares of ``y`` on ``design``, ignoring the groups.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.column_stack([np.ones(3), [0.0, 1.0, 2.0]])
    >>> complete_pooling_coefficients(X, np.array([1.0, 3.0, 5.0])).round(6)
    array([1., 2.])
    """
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return coef


def shrinkage_fraction(no_pooling, partial_pooling, population):
    """``1 - (partial - population) / (no_pooling - population)``, elementwise.

    The fraction of the way from the level's own estimate to the population
    value that partial pooling went: 0 keeps the no-pooling estimate, 1 is
    complete shrinkage to the population value.  NaN where the no-pooling
    estimate is NaN or equals the population value.

    Examples
    --------
    >>> import numpy as np
    >>> shrinkage_fraction(np.array([10.0, 2.0]), np.array([6.0, 1.0]), np.array([2.0, 0.0]))
    array([0.5, 0.5])
    """
    away = np.asarray(no_pooling, dtype=float) - population
    moved = np.asarray(partial_pooling, dtype=float) - population
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = 1.0 - moved / away
    return np.where(away == 0.0, np.nan, fraction)
