"""Validation of grouping factors, ``group_cols`` and random-slope specifications.

These helpers turn what a user passes (arrays, Series, DataFrames, names) into
plain arrays for the numerical core, and fail with a message naming the
problem.
"""

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "INTERCEPT",
    "RandomSpec",
    "default_factor_names",
    "resolve_covariance",
    "resolve_fixed_features",
    "resolve_random_effects",
    "resolve_random_slopes",
    "split_group_columns",
    "validate_groups",
]

INTERCEPT = "(Intercept)"
# Names of the intercept in a random_effects specification.
_INTERCEPT_NAMES = ("1", INTERCEPT)


def default_factor_names(n_factors):
    """``group`` for one factor, ``group_1, group_2, ...`` for several."""
    if n_factors == 1:
        return ["group"]
    return [f"group_{i + 1}" for i in range(n_factors)]


def split_group_columns(X, groups, group_cols):
    """Take the grouping columns out of ``X`` when ``group_cols`` is set.

    Returns ``(X_features, groups)``.  With ``group_cols`` the grouping factors
    are read from the named columns of the DataFrame ``X`` and removed from
    the features.
    """
    if group_cols is None:
        return X, groups
    cols = [group_cols] if isinstance(group_cols, str) else list(group_cols)
    if groups is not None:
        raise ValueError(
            "groups were passed both as the `groups` argument and through "
            f"group_cols={cols!r}; pass them one way only."
        )
    if not hasattr(X, "columns"):
        raise ValueError(
            f"group_cols={cols!r} needs X as a pandas DataFrame with those columns, "
            f"got {type(X).__name__}. Use set_output(transform='pandas') on "
            "preceding transformers, or pass groups=... to fit and predict."
        )
    missing = [c for c in cols if c not in X.columns]
    if missing:
        raise ValueError(
            f"group_cols {missing!r} not found among the columns of X: {list(X.columns)!r}"
        )
    return X.drop(columns=cols), X[cols]


def _as_factor_table(groups):
    """``(names, list of 1-D label arrays)`` from array-like groups."""
    if isinstance(groups, pd.DataFrame):
        return [str(c) for c in groups.columns], [groups[c].to_numpy() for c in groups.columns]
    if isinstance(groups, pd.Series):
        name = "group" if groups.name is None else str(groups.name)
        return [name], [groups.to_numpy()]
    arr = np.asarray(groups)
    if arr.ndim == 1:
        return ["group"], [arr]
    if arr.ndim == 2:
        return default_factor_names(arr.shape[1]), [arr[:, j] for j in range(arr.shape[1])]
    raise ValueError(f"groups must be 1-D or 2-D (one column per factor), got shape {arr.shape}")


def _check_labels(name, labels, n_samples):
    if len(labels) != n_samples:
        raise ValueError(
            f"grouping factor {name!r} has {len(labels)} labels but X has {n_samples} rows; "
            "pass one label per row."
        )
    missing = pd.isna(labels)
    if np.any(missing):
        rows = np.flatnonzero(missing)[:5].tolist()
        raise ValueError(
            f"grouping factor {name!r} has {int(missing.sum())} missing labels (NaN/None), "
            f"e.g. at rows {rows}; drop those rows or give them a level."
        )


def validate_groups(groups, n_samples, *, expected_names=None):
    """Names and label arrays of the grouping factors, checked.

    Parameters
    ----------
    groups : array-like of shape (n_samples,) or (n_samples, n_factors)
    n_samples : int
    expected_names : list of str, optional
        Factor names seen in ``fit``; at predict time the factors must match.
    """
    names, labels = _as_factor_table(groups)
    if len(names) == 0:
        raise ValueError("groups has no columns; pass at least one grouping factor.")
    if len(set(names)) != len(names):
        raise ValueError(f"grouping factor names must be unique, got {names!r}")
    for name, lab in zip(names, labels, strict=True):
        _check_labels(name, lab, n_samples)
    if expected_names is not None:
        names, labels = _match_expected(names, labels, expected_names)
    return names, labels


def _match_expected(names, labels, expected):
    """Reorder factors to the fit order; names must match when they were given.

    Named factors may be a subset of those seen in fit (the others then get
    the population effect, lme4's ``re.form``); unnamed arrays must give
    every factor, in the fit order.
    """
    if set(names) <= set(expected):
        by_name = dict(zip(names, labels, strict=True))
        kept = [n for n in expected if n in by_name]
        return kept, [by_name[n] for n in kept]
    if names == default_factor_names(len(names)) and len(names) == len(expected):
        return list(expected), labels  # unnamed arrays: positional
    if len(names) != len(expected):
        raise ValueError(
            f"the model was fitted with {len(expected)} grouping factor(s) {expected!r}, "
            f"got {len(names)}: {names!r}; name the columns (a DataFrame) to predict with "
            "some of them only"
        )
    raise ValueError(f"grouping factors {names!r} do not match those seen in fit: {expected!r}")


def _feature_index(spec, feature_names, what="random slope feature"):
    """Column index of a feature given by name or by integer position."""
    if isinstance(spec, numbers.Integral) and not isinstance(spec, bool):
        if not 0 <= spec < len(feature_names):
            raise ValueError(
                f"{what} index {spec} is out of range for {len(feature_names)} features"
            )
        return int(spec)
    if isinstance(spec, str):
        if spec not in feature_names:
            raise ValueError(
                f"{what} {spec!r} is not a feature of X; features are {list(feature_names)!r}"
            )
        return list(feature_names).index(spec)
    raise ValueError(f"{what}s are names or integer indices, got {spec!r}")


def resolve_random_slopes(random_slopes, factor_names, feature_names):
    """``{factor: [feature indices]}`` from None, a list or a dict."""
    if random_slopes is None:
        return {f: [] for f in factor_names}
    if isinstance(random_slopes, dict):
        unknown = [f for f in random_slopes if f not in factor_names]
        if unknown:
            raise ValueError(
                f"random_slopes names grouping factor(s) {unknown!r} that are not among "
                f"the groups {factor_names!r}"
            )
        spec = {f: list(random_slopes.get(f, []) or []) for f in factor_names}
    else:
        spec = {f: list(random_slopes) for f in factor_names}
    resolved = {}
    for factor, features in spec.items():
        idx = [_feature_index(s, feature_names) for s in features]
        if len(set(idx)) != len(idx):
            raise ValueError(f"random slopes for {factor!r} repeat a feature: {features!r}")
        resolved[factor] = idx
    return resolved


def resolve_covariance(covariance, factor_names):
    """``{factor: "unstructured" | "diagonal"}`` from a string or a dict."""
    allowed = ("unstructured", "diagonal")
    if isinstance(covariance, str):
        return {f: covariance for f in factor_names}
    unknown = [f for f in covariance if f not in factor_names]
    if unknown:
        raise ValueError(
            f"covariance names grouping factor(s) {unknown!r} that are not among "
            f"the groups {factor_names!r}"
        )
    out = {f: covariance.get(f, "unstructured") for f in factor_names}
    bad = {f: c for f, c in out.items() if c not in allowed}
    if bad:
        raise ValueError(f"covariance must be one of {allowed}, got {bad!r}")
    return out


@dataclass(frozen=True)
class RandomSpec:
    """The random effects of one grouping factor.

    ``covariates``: per coefficient, ``None`` for the intercept or the index
    of its feature column; ``blocks``: coefficient indices correlated with
    each other (lme4's terms of the factor); ``names``: the coefficients'
    names (``"(Intercept)"`` or the feature's).
    """

    covariates: tuple
    blocks: tuple
    names: tuple

    @property
    def slopes(self):
        """Feature indices of the non-intercept coefficients."""
        return [c for c in self.covariates if c is not None]


def _spec_from_blocks(factor, blocks, feature_names):
    """A :class:`RandomSpec` from a list of blocks of covariate names/indices."""
    covariates, groups = [], []
    for block in blocks:
        if isinstance(block, (str, numbers.Integral)):
            block = [block]
        indices = []
        for item in block:
            if isinstance(item, str) and item in _INTERCEPT_NAMES:
                cov = None
            else:
                cov = _feature_index(item, feature_names, f"random effect of {factor!r}")
            if cov in covariates:
                raise ValueError(
                    f"random_effects of {factor!r} repeat the covariate {item!r}; each "
                    "covariate may appear in one term only"
                )
            indices.append(len(covariates))
            covariates.append(cov)
        if not indices:
            raise ValueError(f"random_effects of {factor!r} have an empty term {block!r}")
        groups.append(tuple(indices))
    if not covariates:
        raise ValueError(f"random_effects of {factor!r} give no covariate")
    names = tuple(INTERCEPT if c is None else str(feature_names[c]) for c in covariates)
    return RandomSpec(tuple(covariates), tuple(groups), names)


def _as_blocks(spec):
    """A random_effects entry as a list of blocks: a flat list is one block."""
    if isinstance(spec, (str, numbers.Integral)):
        return [[spec]]
    spec = list(spec)
    if spec and all(isinstance(b, (list, tuple)) for b in spec):
        return [list(b) for b in spec]
    if any(isinstance(b, (list, tuple)) for b in spec):
        raise ValueError(
            f"a random_effects entry is a list of names (one correlated term) or a list of "
            f"lists of names (independent terms), got {spec!r}"
        )
    return [spec]


def resolve_random_effects(random_effects, random_slopes, covariance, factor_names, feature_names):
    """``{factor: RandomSpec}`` from the estimator's three random-effects parameters.

    ``random_effects`` (``{factor: blocks}``) gives a factor's terms in full;
    the other factors get a random intercept plus their ``random_slopes``,
    correlated (``covariance="unstructured"``) or independent (``"diagonal"``).
    """
    random_effects = {} if random_effects is None else dict(random_effects)
    unknown = [f for f in random_effects if f not in factor_names]
    if unknown:
        raise ValueError(
            f"random_effects names grouping factor(s) {unknown!r} that are not among the "
            f"groups {factor_names!r}"
        )
    for other, label in ((random_slopes, "random_slopes"), (covariance, "covariance")):
        if isinstance(other, dict):
            clash = sorted(set(other) & set(random_effects))
            if clash:
                raise ValueError(
                    f"factor(s) {clash!r} are given both in random_effects and in {label}; "
                    "random_effects gives a factor's terms in full"
                )
    rest = [f for f in factor_names if f not in random_effects]
    if isinstance(random_slopes, dict):
        random_slopes = {
            f: s for f, s in random_slopes.items() if f in rest or f not in factor_names
        }
    slopes = resolve_random_slopes(random_slopes, rest, feature_names) if rest else {}
    structure = resolve_covariance(covariance, rest) if rest else {}
    specs = {}
    for factor in factor_names:
        if factor in random_effects:
            blocks = _as_blocks(random_effects[factor])
        else:
            items = ["1"] + list(slopes[factor])
            blocks = [items] if structure[factor] == "unstructured" else [[i] for i in items]
        specs[factor] = _spec_from_blocks(factor, blocks, feature_names)
    return specs


def resolve_fixed_features(fixed_features, feature_names):
    """Indices of the feature columns that are fixed effects (all when None)."""
    if fixed_features is None:
        return list(range(len(feature_names)))
    if isinstance(fixed_features, str):
        fixed_features = [fixed_features]
    idx = [_feature_index(s, feature_names, "fixed feature") for s in fixed_features]
    if len(set(idx)) != len(idx):
        raise ValueError(f"fixed_features repeat a feature: {list(fixed_features)!r}")
    return sorted(idx)
