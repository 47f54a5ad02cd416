"""From what a user passes to the model's rows: fixed design, random terms, checks.

:func:`build_rows` turns validated features, response, grouping factors and
prior weights into the core's :class:`~sklearn_mixed.core.ModelRows` (the
fixed-effects model matrix and the random terms) and reduces them once.
Columns of the fixed design that are combinations of earlier ones are
dropped with a warning, as lme4 does; models that lme4 refuses as
unidentifiable are refused with its reasons.
"""

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_array

from ._groups import INTERCEPT
from .core import ModelRows, RandomTerm, aliased_columns, encode_factor, make_structure
from .exceptions import user_stacklevel

__all__ = [
    "FittedDesign",
    "NotIdentifiable",
    "build_rows",
    "chunk_rows",
    "chunk_weights",
    "drop_zero_weights",
    "encode_labels",
    "finish_design",
    "fixed_columns",
    "random_term",
    "select_rows",
]


@dataclass(frozen=True)
class FittedDesign:
    """The model's rows and reduction, and where its columns come from.

    ``fixed`` lists, per column of ``rows.X``, ``None`` for the intercept or
    the index of its feature; ``aliased`` the names of the feature columns
    dropped as combinations of earlier ones.
    """

    rows: ModelRows | None  # None when reduced from chunks (rows not kept)
    reduction: object
    terms: tuple  # the random terms (with their rows when ``rows`` is kept)
    fixed: tuple
    fixed_names: tuple
    aliased: tuple
    levels: dict  # factor -> its level labels (array)
    specs: dict  # factor -> RandomSpec
    all_names: tuple  # the fixed columns before aliased ones were dropped
    all_columns: tuple = ()  # their features (None: the intercept)
    full_reduction: object = None  # the reduction of all of them


class NotIdentifiable(ValueError):
    """The rows cannot identify the model (too few rows or levels); more rows can."""


def chunk_weights(sample_weight, n_samples):
    """Prior weights of a chunk of rows, checked: finite, non-negative, one per
    row; all 0 is allowed (a chunk of weight 0 adds nothing)."""
    w = check_array(sample_weight, ensure_2d=False, dtype=np.float64, ensure_min_samples=0,
                    input_name="sample_weight")  # fmt: skip
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(f"sample_weight.shape == {w.shape}, expected ({n_samples},)!")
    if np.any(w < 0):
        raise ValueError("Negative values in data passed to sample_weight")
    return w


def drop_zero_weights(X, y, groups, sample_weight):
    """Rows with weight 0 removed (they carry no information; lme4 1.1-31 would
    return an infinite log-likelihood): ``(X, y, groups, weights or None)``."""
    if sample_weight is None:
        return X, y, groups, None
    keep = sample_weight > 0
    if keep.all():
        return X, y, groups, (None if np.all(sample_weight == 1.0) else sample_weight)
    if groups is not None:
        groups = select_rows(groups, keep)
    weights = sample_weight[keep]
    return X[keep], y[keep], groups, (None if np.all(weights == 1.0) else weights)


def select_rows(groups, keep):
    """The rows ``keep`` (a boolean mask) of grouping factors, as given or an array."""
    return groups.iloc[keep] if hasattr(groups, "iloc") else np.asarray(groups)[keep]


def encode_labels(labels):
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
            raise NotIdentifiable(
                f"grouping factor {t.name!r} has {t.n_levels} levels for {n} observations; "
                "its random effects cannot be told apart from the residual. The number of "
                "levels must be smaller than the number of rows."
            )
        q = t.n_levels * t.n_coef
        if n <= q:
            labels = " + ".join(t.covariate_names)
            raise NotIdentifiable(
                f"number of observations (={n}) <= number of random effects (={q}) for term "
                f"({labels} | {t.name}); the random-effects parameters and the residual "
                "variance are probably unidentifiable (lme4's check.nobs.vs.nRE)."
            )


def fixed_columns(fixed, fit_intercept, feature_names):
    """The fixed-effects columns (``None`` for the intercept, else a feature
    index) and their names."""
    columns = ([None] if fit_intercept else []) + list(fixed)
    return columns, [INTERCEPT if c is None else str(feature_names[c]) for c in columns]


def chunk_rows(X, y, coded, weights, *, specs, columns, offset=None):
    """:class:`~sklearn_mixed.core.ModelRows` of a chunk of validated rows.

    ``coded`` lists, per grouping factor, ``(name, codes, levels)``: the level
    index of each row among the factor's ``levels`` (all levels of the model,
    not only this chunk's).
    """
    n = X.shape[0]
    design = np.empty((n, len(columns)))
    for j, c in enumerate(columns):
        design[:, j] = 1.0 if c is None else X[:, c]
    terms = []
    for name, codes, levels in coded:
        spec = specs[name]
        cov = [np.ones(n) if c is None else X[:, c] for c in spec.covariates]
        cov = np.column_stack(cov) if cov else np.empty((n, 0))
        terms.append(random_term(name, spec, levels, codes, cov))
    intercept = 0 if columns and columns[0] is None else None
    return ModelRows(design, y, tuple(terms), weights, offset, intercept)


def random_term(name, spec, levels, codes=None, covariates=None):
    """The :class:`~sklearn_mixed.core.RandomTerm` of a factor's ``spec`` on the
    rows' ``codes`` and ``covariates``, or on no rows (a model reduced from
    chunks keeps none)."""
    k = len(spec.covariates)
    if codes is None:
        codes, covariates = np.empty(0, dtype=np.intp), np.empty((0, k))
    structure = make_structure(spec.blocks, k)
    return RandomTerm(name, codes, levels, covariates, spec.names, structure)


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
    columns, names = fixed_columns(fixed, fit_intercept, feature_names)
    coded = []
    if factors is not None:
        coded = [(name, *encode_labels(lab)) for name, lab in zip(*factors, strict=True)]
    rows = chunk_rows(X, y, coded, weights, specs=specs, columns=columns)
    return finish_design(
        rows.reduce(), rows.terms, columns, names, specs, rows=rows,
        fixed_sigma=fixed_sigma, residual=residual,
    )  # fmt: skip


def finish_design(reduction, terms, columns, names, specs, *, rows=None, fixed_sigma=None,
                  residual=True):  # fmt: skip
    """The :class:`FittedDesign` of a reduction of all fixed ``columns``: aliased
    columns dropped with lme4's warning, lme4's identifiability checks.

    ``terms`` are the random terms in the reduction's order (their rows are
    not read); ``rows``, if kept, lose the aliased columns too.
    """
    all_names, all_columns, full_reduction = tuple(names), tuple(columns), reduction
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
            stacklevel=user_stacklevel(),
        )
        reduction = reduction.select_fixed(keep)
        if rows is not None:
            rows = replace(rows, X=rows.X[:, keep], intercept=reduction.intercept)
        columns = [columns[j] for j in keep]
        names = [names[j] for j in keep]
    n = reduction.n
    if residual and n <= len(columns):
        raise NotIdentifiable(
            f"got n_samples={n} for {len(columns)} fixed effects; the model needs more rows "
            "than fixed effects."
        )
    for t in terms:
        if t.n_levels < 2:
            raise NotIdentifiable(
                f"grouping factor {t.name!r} has a single level; a random effect needs at "
                "least 2 levels to estimate its variance. Remove the factor."
            )
    if residual:
        _check_identifiable(terms, n, fixed_sigma)
    levels = {t.name: t.levels for t in terms}
    return FittedDesign(
        rows, reduction, tuple(terms), tuple(columns), tuple(names), aliased, levels, specs,
        all_names, all_columns, full_reduction,
    )  # fmt: skip
