"""Tables that read a fitted mixed model: ranges, intraclass correlations, shrinkage.

For random intercepts, ``y_ij = a + x_ij' b + eta_j + eps_ij`` with
``eta_j ~ N(0, tau^2)`` and ``eps_ij ~ N(0, sigma^2)``:

- :func:`effect_ranges`: ``level`` of the groups' intercepts lie in
  ``a +- z tau`` (``z = 1.96`` for 95%, ``2.58`` for 99%), the same for each
  random slope around its fixed slope, and ``level`` of one group's
  observations lie in ``(a + eta_j) +- z sigma`` (plus ``x' b``);
- :func:`intraclass_correlation`: the correlation of two observations that
  share a factor's level (:mod:`sklearn_mixed.core.intraclass`);
- :func:`shrinkage`: no pooling, complete pooling and partial pooling of
  each level's coefficients (:mod:`sklearn_mixed.core.pooling`).

The estimators' ``effect_ranges``, ``intraclass_correlation`` and
``shrinkage`` methods call these functions.
"""

from numbers import Real

import numpy as np
import pandas as pd
from scipy.stats import norm

from ._groups import INTERCEPT
from .core.intraclass import containing_factors, intraclass_correlations
from .core.pooling import (
    complete_pooling_coefficients,
    no_pooling_coefficients,
    shrinkage_fraction,
)

__all__ = [
    "effect_ranges",
    "intraclass_correlation",
    "level_label",
    "normal_quantile",
    "shrinkage",
]

SHRINKAGE_QUANTITIES = ("no_pooling", "complete_pooling", "partial_pooling", "shrinkage")


def _as_levels(level):
    """The coverage levels as a tuple of floats, each checked to be in (0, 1)."""
    levels = (level,) if isinstance(level, Real) else tuple(level)
    if not levels:
        raise ValueError("level must be a number in (0, 1) or a non-empty sequence of them")
    for value in levels:
        if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 < value < 1.0:
            raise ValueError(f"each level must be a number in (0, 1), e.g. 0.95; got {value!r}")
    return tuple(float(v) for v in levels)


def normal_quantile(level):
    """``z`` with ``P(|Z| <= z) = level`` for a standard normal ``Z`` (1.96 for 0.95)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return float(norm.ppf(0.5 + level / 2.0))


def level_label(level):
    """``"95"`` for 0.95, ``"99.5"`` for 0.995: the suffix of the range columns."""
    return f"{100 * level:g}"


def _fixed_value(est, term, values):
    """The entry of ``values`` (one per fixed effect) for ``term``; 0 without one."""
    names = est.fixed_effect_names_
    return float(values[names.index(term)]) if term in names else 0.0


def effect_ranges(est, level=0.95):
    """Where ``level`` of the groups' coefficients and of one group's observations lie.

    One row per (factor, term): ``center``, the population value (the term's
    fixed effect, 0 for a random slope without one), and ``std_dev``, the
    standard deviation ``tau`` of the groups around it; ``center +- z tau``
    holds ``level`` of the groups' coefficients.  The last row,
    ``("Residual", "observations")``, has center 0 and ``std_dev`` sigma:
    ``level`` of one group's observations lie within ``+- z sigma`` of that
    group's own mean (its fixed part plus its random effects).

    Parameters
    ----------
    est : fitted mixed-model regressor
    level : float or sequence of float, default=0.95
        Coverage, in (0, 1).  One level gives the columns ``lower`` and
        ``upper``; several give ``lower_<pct>`` and ``upper_<pct>`` per level
        (``lower_95``, ``upper_95``, ``lower_99``, ...).

    Returns
    -------
    ranges : DataFrame
        Indexed by ``(factor, term)``.

    Examples
    --------
    >>> from sklearn_mixed import MixedLinearRegressor
    >>> from sklearn_mixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> est = MixedLinearRegressor().fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
    >>> print(effect_ranges(est, level=(0.95, 0.99)).round(1).to_string())
                           center  std_dev  lower_95  upper_95  lower_99  upper_99
    factor   term
    Subject  (Intercept)    251.4     37.1     178.6     324.2     155.8     347.0
    Residual observations     0.0     31.0     -60.7      60.7     -79.8      79.8
    """
    levels = _as_levels(level)
    single = isinstance(level, Real)
    rows, index = [], []
    for (factor, term), sd in est.variance_components_["std_dev"].items():
        residual = factor == "Residual"
        center = 0.0 if residual else _fixed_value(est, term, est.model_.result.beta)
        index.append((factor, "observations" if residual else term))
        row = {"center": center, "std_dev": float(sd)}
        for value in levels:
            z = normal_quantile(value)
            suffix = "" if single else f"_{level_label(value)}"
            row[f"lower{suffix}"] = center - z * sd
            row[f"upper{suffix}"] = center + z * sd
        rows.append(row)
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["factor", "term"]))


def intraclass_correlation(est):
    """Intraclass correlations of the random intercepts, one row per factor.

    ``V = sum_g tau_g^2 + sigma^2`` is an observation's variance at ``x = 0``
    (with random slopes the variance, hence the correlation, depends on the
    covariates; at ``x = 0`` only the intercept variances ``tau_g^2`` count).

    - ``icc``: ``tau_f^2 / V``, the correlation of two observations in the
      same level of ``f`` and in different levels of every other factor (for
      a factor nested in another, such pairs do not exist and it is the
      factor's share of the variance);
    - ``icc_same_level``: ``sum_g tau_g^2 / V`` over ``f`` and the factors
      ``f`` is nested in: the correlation of two observations in the same
      level of ``f`` (hence in the same level of those factors) and in
      different levels of every other factor.  Equal to ``icc`` for a factor
      nested in no other.

    Returns
    -------
    icc : DataFrame
        Indexed by factor (``group_names_`` order); columns ``variance``
        (``tau_f^2``), ``icc`` and ``icc_same_level``.

    Examples
    --------
    >>> from sklearn_mixed import MixedLinearRegressor
    >>> from sklearn_mixed.datasets import load_pastes
    >>> df = load_pastes().rename(columns={"sample": "batch:cask"})
    >>> est = MixedLinearRegressor().fit(
    ...     df[[]], df["strength"], groups=df[["batch", "batch:cask"]]
    ... )
    >>> print(intraclass_correlation(est).round(3).to_string())
                variance    icc  icc_same_level
    factor
    batch          1.657  0.154           0.154
    batch:cask     8.434  0.783           0.937
    """
    terms = est.model_.terms
    tau2 = np.array([_intercept_variance(est, t) for t in terms])
    contains = containing_factors(est.model_.reduction)
    icc, same = intraclass_correlations(tau2, est.residual_variance_, contains)
    return pd.DataFrame(
        {"variance": tau2, "icc": icc, "icc_same_level": same},
        index=pd.Index([t.name for t in terms], name="factor"),
    )


def _intercept_variance(est, term):
    """The variance of a term's random intercept; 0 for a term without one."""
    names = list(term.covariate_names)
    if INTERCEPT not in names:
        return 0.0
    i = names.index(INTERCEPT)
    return float(est.random_effects_cov_[term.name][i, i])


def _factor_index(est, factor):
    names = est.group_names_
    if not names:
        raise ValueError(
            "this model was fitted without grouping factors, so there is no pooling "
            "to show; pass groups to fit."
        )
    if factor is None:
        return 0
    if factor not in names:
        raise ValueError(f"unknown grouping factor {factor!r}; the fitted factors are {names!r}")
    return names.index(factor)


def shrinkage(est, factor=None):
    """No pooling, complete pooling and partial pooling of one factor's levels.

    For each level of ``factor`` and each of its random terms (intercept,
    slopes):

    - ``no_pooling``: the level's own least-squares estimate, from its rows
      alone: the population value plus the per-level least-squares fit of
      ``y - X beta - (the other factors' random effects)`` on the factor's
      covariates, everything but this level's coefficients held at the mixed
      model's estimates.  With one grouping factor, the per-group regression
      of ``y - X_other beta_other`` on the intercept and slopes (lme4's
      ``lmList`` when every fixed effect has a random slope).  NaN where not
      identifiable: fewer rows than coefficients, or a slope covariate
      constant (or collinear with another) within the level;
    - ``complete_pooling``: the coefficient from the ordinary least-squares
      fit of ``y`` on the fixed design, ignoring the groups (the same for
      every level; 0 for a slope without a fixed effect);
    - ``partial_pooling``: the mixed model's estimate, fixed effect plus
      conditional mode (lme4's ``coef``);
    - ``shrinkage``: ``1 - (partial - population) / (no_pooling -
      population)``, the population value being the mixed model's fixed
      effect (0 for a slope without one): 0 keeps the level's own estimate,
      1 moves it all the way to the population value.  NaN where the
      no-pooling estimate is NaN or equals the population value.  For a
      random intercept it equals ``(sigma^2 / n_j) / (tau^2 + sigma^2 / n_j)``
      (in any design: Henderson's equations give it exactly); with random
      slopes the coefficients shrink jointly, through a matrix, so a term's
      fraction can fall outside [0, 1].

    Parameters
    ----------
    est : fitted mixed-model regressor
    factor : str, default=None
        Grouping factor; ``None`` is the first one.

    Returns
    -------
    table : DataFrame
        One row per level (index: the level labels, named after the factor);
        columns a MultiIndex ``(quantity, term)``: ``("n_obs", "")``, then
        ``no_pooling``, ``complete_pooling``, ``partial_pooling`` and
        ``shrinkage`` for each term.

    Examples
    --------
    >>> from sklearn_mixed import MixedLinearRegressor
    >>> from sklearn_mixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> est = MixedLinearRegressor(random_slopes=["Days"])
    >>> est = est.fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
    >>> table = shrinkage(est)
    >>> print(table.loc["308", ["no_pooling", "partial_pooling"]].round(2).to_string())
    quantity         term
    no_pooling       (Intercept)    244.19
                     Days            21.76
    partial_pooling  (Intercept)    253.66
                     Days            19.67
    """
    index = _factor_index(est, factor)
    model = est.model_
    term = model.terms[index]
    names = list(term.covariate_names)
    fit = model.result
    population = np.array([_fixed_value(est, t, fit.beta) for t in names])
    no_pool, counts = no_pooling_coefficients(model.reduction, fit, index, population)
    pooled = complete_pooling_coefficients(model.reduction)
    complete = np.array([_fixed_value(est, t, pooled) for t in names])
    partial = population[None, :] + fit.b[index]
    blocks = {
        "no_pooling": no_pool,
        "complete_pooling": np.broadcast_to(complete, no_pool.shape),
        "partial_pooling": partial,
        "shrinkage": shrinkage_fraction(no_pool, partial, population),
    }
    columns = [("n_obs", "")] + [(q, t) for q in SHRINKAGE_QUANTITIES for t in names]
    data = np.column_stack([counts] + [blocks[q] for q in SHRINKAGE_QUANTITIES])
    table = pd.DataFrame(
        data,
        index=pd.Index(term.levels, name=term.name),
        columns=pd.MultiIndex.from_tuples(columns, names=["quantity", "term"]),
    )
    return table.astype({("n_obs", ""): np.int64})
