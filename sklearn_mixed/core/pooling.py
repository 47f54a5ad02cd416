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

Everything here works on the data reduction (:mod:`.reduction`): each
level's ``Z_j'W Z_j`` and ``Z_j'W r`` follow from the cross-products, with no
pass over the rows.
"""

import numpy as np

__all__ = [
    "complete_pooling_coefficients",
    "no_pooling_coefficients",
    "per_level_least_squares",
    "shrinkage_fraction",
]

# A level's Gram matrix Z_j' Z_j, scaled to unit diagonal, whose smallest
# eigenvalue is below this is singular: its coefficients are not identifiable.
IDENTIFIABILITY_TOLERANCE = 1e-10


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


def per_level_least_squares(gram, rhs, counts):
    """Least-squares coefficients per level from its normal equations.

    Parameters
    ----------
    gram : ndarray of shape (n_levels, k, k)
        ``Z_j'W Z_j``.
    rhs : ndarray of shape (n_levels, k)
        ``Z_j'W r_j``.
    counts : ndarray of shape (n_levels,), int
        Rows per level.

    Returns
    -------
    coef : ndarray of shape (n_levels, k)
        ``(Z_j'W Z_j)^{-1} Z_j'W r_j``; a row of NaN where the level's
        coefficients are not identifiable (fewer rows than coefficients, a
        covariate constant within the level, or collinear covariates).

    Examples
    --------
    Two levels with rows ``(z, r) = (0, 1), (1, 3)`` and ``(0, 0), (2, 4)``
    for ``r = a + b z``, and a level with one row:

    >>> import numpy as np
    >>> gram = np.array([[[2.0, 1.0], [1.0, 1.0]], [[2.0, 2.0], [2.0, 4.0]],
    ...                  [[1.0, 1.0], [1.0, 1.0]]])
    >>> rhs = np.array([[4.0, 3.0], [4.0, 8.0], [5.0, 5.0]])
    >>> per_level_least_squares(gram, rhs, np.array([2, 2, 1]))
    array([[ 1.,  2.],
           [ 0.,  2.],
           [nan, nan]])
    """
    gram = np.array(gram, dtype=float)
    ok = _identifiable(gram, counts)
    k = gram.shape[1]
    gram[~ok] = np.eye(k)  # placeholders, so the batched solve never fails
    coef = np.linalg.solve(gram, np.asarray(rhs, dtype=float)[:, :, None])[:, :, 0]
    coef[~ok] = np.nan
    return coef


def no_pooling_coefficients(reduction, fit, factor, population):
    """Each level's own estimate of factor ``factor``'s coefficients.

    ``population + c_j``, ``c_j`` the per-level least-squares fit of the partial
    residual ``r = y - X beta - sum_{g != factor} Z_g b_g`` on the factor's
    covariates (see the module docstring), from
    ``Z_j'W r = Z_j'W y - Z_j'W X beta - sum_g (Z_f'W Z_g)_j b_g``.

    Parameters
    ----------
    reduction : Reduction
    fit : LMMFit
        The fitted model (``beta`` of the reduction's columns, modes ``b``).
    factor : int
        Index of the term.
    population : ndarray of shape (k,)
        The fixed effect of each of the factor's covariates (0 where none).

    Returns
    -------
    coef : ndarray of shape (m, k)
        NaN rows where not identifiable.
    counts : ndarray of shape (m,), int
    """
    t = reduction.terms[factor]
    m, k = t.n_levels, t.n_coef
    beta = reduction.centre_coefficients(fit.beta)
    rhs = t.Zy - t.ZX @ beta
    for g, b in enumerate(fit.b):
        if g != factor:
            rhs -= (reduction.pair(factor, g) @ b.ravel()).reshape(m, k)
    deviation = per_level_least_squares(t.A, rhs, t.level_n)
    return population[None, :] + deviation, t.level_n


def complete_pooling_coefficients(reduction):
    """Weighted least squares of ``y`` on the fixed columns, ignoring the groups.

    The coefficients of the columns as given (not centred).
    """
    coef, *_ = np.linalg.lstsq(reduction.XX, reduction.Xy, rcond=None)
    return reduction.uncentre(coef)


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
