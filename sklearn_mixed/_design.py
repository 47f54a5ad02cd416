"""From what a user passes to the model's rows: fixed design, random terms, checks.

:func:`build_rows` turns validated features, response, grouping factors and
prior weights into the core's :class:`~sklearn_mixed.core.ModelRows` (the
fixed-effects model matrix and the random terms) and reduces them once.
Columns of the fixed design that are combinations of earlier ones are
dropped with a warning, as lme4 does; models that lme4 refuses as
unidentifiable are refused with its reasons.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._groups import INTERCEPT
from .core import ModelRows, RandomTerm, aliased_columns, encode_factor, make_structure

__all__ = ["FittedDesign", "build_rows", "drop_zero_weights", "encode_factors"]


@dataclass(frozen=True)
class FittedDesign:
    """The model's rows and reduction, and where its columns come from.

    ``fixed`` lists, per column of ``rows.X``, ``None`` for the intercept or
    the index of its feature; ``aliased`` the names of the feature columns
    dropped as combinations of earlier ones.
    """

    rows: ModelRows
    reduction: object
    fixed: tuple
    fixed_names: tuple
    aliased: tuple
    levels: dict  # factor -> its level labels (array)
    specs: dict  # factor -> RandomSpec
    all_names: tuple  # the fixed columns before aliased ones were dropped


def drop_zero_weights(X, y, groups, sample_weight):
    """Rows with weight 0 removed (they carry no information; lme4 1.1-31 would
    return an infinite log-likelihood): ``(X, y, groups, weights or None)``."""
    if sample_weight is None:
        return X, y, groups, None
    keep = sample_weight > 0
    if keep.all():
        return X, y, groups, (None if np.all(sample_weight == 1.0) else sample_weight)
    if groups is not None:
        groups = groups.iloc[keep] if hasattr(groups, "iloc") else np.asarray(groups)[keep]
    weights = sample_weight[keep]
    return X[keep], y[keep], groups, (None if np.all(weights == 1.0) else weights)


def encode_factors(names, labels, n_samples):
    """``(codes, levels)`` of each grouping factor, checked to be a usable factor."""
    encoded = []
    for name, lab in zip(names, labels, strict=True):
        codes, levels = _encode_labels(lab)
        if len(levels) < 2:
            raise ValueError(
                f"grouping factor {name!r} has a single level; a random effect needs at "
                "least 2 levels to estimate its variance. Remove the factor."
            )
        encoded.append((codes, levels))
    return encoded


def _encode_labels(labels):
    """Sorted levels and codes; pandas' hash-based factorize for text labels
    (numpy's ``unique`` sorts every row), the core's encoder otherwise."""
    labels = np.asarray(labels)
    if labels.dtype.kind in "OUST":
        try:
            codes, levels = pd.factorize(labels, sort=True)
        except TypeError:  # labels of mixed types
            return encode_factor(labels)
        return codes.astype(np.intp, copy=False), np.asarray(levels)
    return encode_factor(labels)


def _check_identifiable(terms, n, fixed_sigma):
    """lme4's checks of the random effects against the number of observations.

    ``check.nobs.vs.nlev`` and ``check.nobs.vs.nRE`` (both "stop" in lme4):
    with as many random effects as observations the variance components and
    the residual variance cannot be told apart.  A known residual variance
    (``fixed_sigma``) makes them identifiable.
    """
    if fixed_sigma is not None:
        return
    for t in terms:
        if t.n_levels >= n:
            raise ValueError(
                f"grouping factor {t.name!r} has {t.n_levels} levels for {n} observations; "
                "its random effects cannot be told apart from the residual. The number of "
                "levels must be smaller than the number of rows."
            )
        q = t.n_levels * t.n_coef
        if n <= q:
            labels = " + ".join(t.covariate_names)
            raise ValueError(
                f"number of observations (={n}) <= number of random effects (={q}) for term "
                f"({labels} | {t.name}); the random-effects parameters and the residual "
                "variance are probably unidentifiable (lme4's check.nobs.vs.nRE)."
            )


def _random_terms(X, factors, specs):
    """A :class:`~sklearn_mixed.core.RandomTerm` per grouping factor, and its levels."""
    names, labels = factors
    terms, levels = [], {}
    for name, (codes, lev) in zip(names, encode_factors(names, labels, X.shape[0]), strict=True):
        spec = specs[name]
        columns = [np.ones(X.shape[0]) if c is None else X[:, c] for c in spec.covariates]
        structure = make_structure(spec.blocks, len(spec.covariates))
        terms.append(RandomTerm(name, codes, lev, np.column_stack(columns), spec.names, structure))
        levels[name] = lev
    return terms, levels


def build_rows(X, y, factors, weights, *, specs, fixed, fit_intercept, feature_names,
               fixed_sigma=None, residual=True):  # fmt: skip
    """The model's rows, reduced, with aliased fixed columns dropped.

    Parameters
    ----------
    X, y : ndarray
        Validated features and response (rows of weight 0 already dropped).
    factors : (list of str, list of ndarray) or None
        The grouping factors' names and labels (``validate_groups``).
    weights : ndarray or None
    specs : dict of str -> RandomSpec
        Per grouping factor (from :func:`~._groups.resolve_random_effects`).
    fixed : list of int
        Feature columns that are fixed effects.
    fit_intercept : bool
    feature_names : list of str
    fixed_sigma : float or None
    residual : bool
        Whether the model has a residual variance to tell apart from the fixed
        and random effects (a linear model does, a GLMM does not): it then
        needs more rows than fixed effects, and levels than rows.

    Returns
    -------
    FittedDesign
    """
    n = X.shape[0]
    columns = ([None] if fit_intercept else []) + list(fixed)
    names = [INTERCEPT if c is None else str(feature_names[c]) for c in columns]
    design = np.empty((n, len(columns)))
    for j, c in enumerate(columns):
        design[:, j] = 1.0 if c is None else X[:, c]
    all_names = tuple(names)
    terms, levels = ([], {}) if factors is None else _random_terms(X, factors, specs)
    rows = ModelRows(design, y, tuple(terms), weights, None, 0 if fit_intercept else None)
    reduction = rows.reduce()
    bad = aliased_columns(reduction)
    aliased = tuple(names[j] for j in bad)
    if bad:
        keep = [j for j in range(len(columns)) if j not in bad]
        warnings.warn(
            f"fixed-effect model matrix is rank deficient so dropping {len(bad)} "
            f"column{'s' if len(bad) > 1 else ''} / coefficient{'s' if len(bad) > 1 else ''}: "
            f"{list(aliased)!r} (combinations of the columns before them; lme4's "
            "check.rankX). Their coefficients are reported as 0 in coef_.",
            UserWarning,
            stacklevel=4,
        )
        reduction = reduction.select_fixed(keep)
        intercept = reduction.intercept
        rows = ModelRows(design[:, keep], y, tuple(terms), weights, None, intercept)
        columns = [columns[j] for j in keep]
        names = [names[j] for j in keep]
    if residual and n <= len(columns):
        raise ValueError(
            f"got n_samples={n} for {len(columns)} fixed effects; the model needs more rows "
            "than fixed effects."
        )
    if residual:
        _check_identifiable(terms, n, fixed_sigma)
    return FittedDesign(
        rows, reduction, tuple(columns), tuple(names), aliased, levels, specs, all_names
    )
