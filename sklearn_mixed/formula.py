"""lme4-style formulas: ``from_formula`` and ``lmer``.

A formula such as ``Reaction ~ Days + (Days | Subject)`` is read by a small
tokenizer and turned into what :class:`MixedLinearRegressor` takes: the
fixed-effect features ``X`` (named columns, categorical columns in R's
treatment coding), the response ``y``, the grouping factors ``groups`` (one
column per factor, nested factors as combined labels named like lme4's
``a:b``) and the estimator's ``random_slopes``, ``covariance`` and
``fit_intercept``.  The built-in reader evaluates nothing; richer fixed-part
expressions (``np.log(x)``, ``C(f):x``, ...) are handed to the optional
package formulaic when it is installed, which evaluates them as Python.

Random-effect terms, and how they map onto one grouping factor ``g``:

==================================================  ================================
lme4                                                MixedLinearRegressor
==================================================  ================================
``(1 | g)``                                         intercept only
``(x | g)``, ``(1 + x | g)``, ``(x1 + x2 | g)``     ``random_slopes``, "unstructured"
``(1 | g) + (0 + x | g)``, ``(x || g)``             ``random_slopes``, "diagonal"
``(1 | a) + (1 | b)``                               two factors (crossed)
``(1 | a/b)`` = ``(1 | a) + (1 | a:b)``             factors ``a`` and ``a:b`` (nested)
==================================================  ================================
"""

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._formula_parse import FORMULAIC_HINT, ParsedFormula, parse_formula
from ._mixed import MixedLinearRegressor

__all__ = ["FormulaModel", "from_formula", "lmer"]

# ---------------------------------------------------------------------------
# data: checks, fixed-effect columns, grouping factors


def _used_columns(parsed, *, response=True):
    """Columns the formula reads (formulaic's fixed-part columns excepted)."""
    used = [parsed.response] if response else []
    used += list(itertools.chain(*parsed.fixed.terms))
    for factor, slopes, _ in parsed.random.values():
        used += [*factor, *itertools.chain(*slopes)]
    return list(dict.fromkeys(used))


def _check_columns(used, data, formula):
    """``data`` is a DataFrame with the columns ``used``, none of them missing."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    unknown = [c for c in used if c not in data.columns]
    if unknown:
        raise ValueError(
            f"column(s) {unknown!r} of formula {formula!r} not found in data; "
            f"available columns: {[str(c) for c in data.columns]!r}"
        )
    counts = {c: int(data[c].isna().sum()) for c in used}
    missing = {c: n for c, n in counts.items() if n}
    if missing:
        raise ValueError(
            f"missing values (NaN/None) in column(s) used by the formula, count per column: "
            f"{missing!r}; nothing is dropped silently: drop or impute them first, e.g. "
            f"data.dropna(subset={list(missing)!r})."
        )


def _is_numeric(series):
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _is_categorical(series):
    return (
        isinstance(series.dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(series)
        or pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
    )


def _levels(series):
    """Levels in R's order: the categories' order, False before True, else sorted."""
    present = pd.unique(series)
    if isinstance(series.dtype, pd.CategoricalDtype):
        return [c for c in series.dtype.categories if c in set(present)]
    try:
        return sorted(present)
    except TypeError:
        return sorted(present, key=str)


def _level_name(level):
    """A level as R prints it in a column name: ``TRUE`` for logicals, else ``str``."""
    if isinstance(level, (bool, np.bool_)):
        return "TRUE" if level else "FALSE"
    return str(level)


@dataclass(frozen=True)
class _Column:
    """One fixed-effect column: a product of numeric variables, or a level indicator."""

    name: str
    variables: tuple
    level: object = None  # for an indicator, the level of variables[0]
    is_indicator: bool = False

    def values(self, data):
        if self.is_indicator:
            return (data[self.variables[0]] == self.level).to_numpy(dtype=float)
        return np.prod([data[v].to_numpy(dtype=float) for v in self.variables], axis=0)


def _term_columns(term, data, levels, full_coding):
    """The columns of one fixed term: R's treatment coding for a categorical column."""
    kinds = {v: _is_categorical(data[v]) for v in term}
    if len(term) == 1 and kinds[term[0]]:
        var = term[0]
        if len(levels[var]) < 2 and not full_coding:
            raise ValueError(
                f"categorical column {var!r} has a single level {levels[var]!r}; "
                "a fixed effect needs at least 2 (drop it from the formula)."
            )
        kept = levels[var] if full_coding else levels[var][1:]
        return [_Column(var + _level_name(lev), term, lev, True) for lev in kept]
    bad = [v for v, categorical in kinds.items() if categorical]
    if bad:
        raise ValueError(
            f"interaction {':'.join(term)!r} involves categorical column(s) {bad!r}; built-in "
            f"interactions are of numeric columns ({FORMULAIC_HINT}, then write e.g. C(f):x)."
        )
    bad = [v for v in term if not _is_numeric(data[v])]
    if bad:
        raise ValueError(f"column(s) {bad!r} are neither numeric nor categorical")
    return [_Column(":".join(term), term)]


@dataclass(frozen=True)
class _Design:
    """How the fixed-effect features are built, for the training data and new data."""

    columns_by_term: dict  # frozenset of variables -> list of _Column
    levels: dict  # categorical variable -> its levels
    formulaic_spec: object = None

    @property
    def columns(self):
        return [c for cols in self.columns_by_term.values() for c in cols]

    def features(self, data):
        if self.formulaic_spec is not None:
            matrix = _call_formulaic(self.formulaic_spec.get_model_matrix, data)
            values = np.asarray(matrix, dtype=float)
            matrix = pd.DataFrame(values, index=data.index, columns=matrix.columns)
            return matrix.drop(columns=["Intercept"], errors="ignore")
        self._check_levels(data)
        values = {c.name: c.values(data) for c in self.columns}
        return pd.DataFrame(values, index=data.index, columns=[c.name for c in self.columns])

    def _check_levels(self, data):
        for var, levels in self.levels.items():
            unseen = sorted(set(pd.unique(data[var])) - set(levels), key=str)
            if unseen:
                raise ValueError(
                    f"categorical column {var!r} has level(s) {unseen!r} not seen in the "
                    f"data of the formula; known levels: {levels!r}"
                )


def _build_design(fixed, data):
    """The :class:`_Design` of the fixed part on the training data."""
    if fixed.formulaic_rhs is not None:
        import formulaic

        matrix = _call_formulaic(
            lambda d: formulaic.model_matrix(
                fixed.formulaic_rhs, d, context={"np": np}, na_action="raise"
            ),
            data,
        )
        return _Design({}, {}, matrix.model_spec), "Intercept" in matrix.columns
    levels = {
        v: _levels(data[v])
        for term in fixed.terms
        if len(term) == 1
        for v in term
        if _is_categorical(data[v])
    }
    columns_by_term, full_coding = {}, not fixed.intercept
    for term in fixed.terms:
        columns = _term_columns(term, data, levels, full_coding)
        full_coding = full_coding and not any(c.is_indicator for c in columns)
        columns_by_term[frozenset(term)] = columns
    return _Design(columns_by_term, levels), fixed.intercept


def _call_formulaic(build, data):
    """``build(data)`` with formulaic's errors as ValueErrors naming the available columns."""
    try:
        return build(data)
    except Exception as exc:  # formulaic raises several exception types
        raise ValueError(
            f"formulaic could not build the fixed part: {exc}. "
            f"Available columns: {[str(c) for c in data.columns]!r}"
        ) from exc


def _slope_columns(factor, slopes, covariance, design, features):
    """Names of the feature columns of a factor's random slopes."""
    names = []
    for term in slopes:
        names += _term_slope_names(factor, term, covariance, design, features)
    return list(dict.fromkeys(names))


def _term_slope_names(factor, term, covariance, design, features):
    """The feature columns of one random-slope term; it must be a fixed term too."""
    label = ":".join(term)
    if design.formulaic_spec is not None:
        names = [label] if label in features.columns else []
    else:
        columns = design.columns_by_term.get(frozenset(term), [])
        if columns and columns[0].is_indicator:
            columns = _categorical_slopes(factor, label, columns, covariance, design)
        names = [c.name for c in columns]
    if not names:
        raise ValueError(
            f"random slope {label!r} of factor {factor!r} is not a fixed-effect column; "
            "random slopes are deviations from a fixed slope, so add it to the fixed "
            f"part (y ~ {label} + ({label} | g)). Fixed columns: {list(features.columns)!r}"
        )
    return names


def _categorical_slopes(factor, label, columns, covariance, design):
    """Treatment-coded slopes of a categorical column: all levels but the first."""
    if covariance == "diagonal":
        raise ValueError(
            f"categorical random slope {label!r} of factor {factor!r} is only supported in a "
            f"correlated term ({label} | {factor}); lme4 codes (0 + {label} | {factor}) with "
            "one column per level, which MixedLinearRegressor cannot represent."
        )
    reference = design.levels[label][0]
    return [c for c in columns if c.level != reference]


def _group_frame(random, data):
    """One column per grouping factor; ``a:b`` holds the combined labels ``"<a>:<b>"``."""
    columns = {}
    for name, (variables, _, _) in random.items():
        if len(variables) == 1:
            columns[name] = data[variables[0]]
        else:
            parts = [data[v].astype(str) for v in variables]
            columns[name] = parts[0].str.cat(parts[1:], sep=":")
    return pd.DataFrame(columns, index=data.index)


# ---------------------------------------------------------------------------
# public API

_SET_BY_FORMULA = ("random_slopes", "covariance", "fit_intercept", "group_cols")


@dataclass(frozen=True, eq=False)
class FormulaModel:
    """An lme4 formula read on a data set: the estimator and its data.

    Made by :func:`from_formula`.  ``estimator.fit(X, y, groups=groups)``
    (or :meth:`fit`) fits lme4's ``lmer(formula, data)``.

    Attributes
    ----------
    formula : str
        The formula as given.
    estimator : MixedLinearRegressor
        Unfitted, with ``random_slopes`` and ``covariance`` per grouping
        factor and ``fit_intercept`` from the formula.
    X : DataFrame
        Fixed-effect features, named like R's model matrix columns (no
        intercept column: ``fit_intercept`` adds it); 0 columns for
        ``y ~ 1 + ...``.
    y : Series
        The response.
    groups : DataFrame
        One column per grouping factor, named as lme4 names them (``a:b``
        holds the combined labels ``"<a>:<b>"`` of a nested factor).
    """

    formula: str
    estimator: MixedLinearRegressor
    X: pd.DataFrame
    y: pd.Series
    groups: pd.DataFrame
    _parsed: ParsedFormula = field(repr=False)
    _design: _Design = field(repr=False)

    def fit(self):
        """Fit :attr:`estimator` on ``X``, ``y`` and ``groups``; return it.

        Returns
        -------
        estimator : MixedLinearRegressor
            The fitted estimator.

        Examples
        --------
        >>> from sklearn_mixed import from_formula
        >>> from sklearn_mixed.datasets import load_sleepstudy
        >>> fm = from_formula("Reaction ~ Days + (1 | Subject)", load_sleepstudy())
        >>> print(f"{fm.fit().coef_[0]:.2f}")
        10.47
        """
        return self.estimator.fit(self.X, self.y, groups=self.groups)

    def design(self, data):
        """``(X, groups)`` of new data, coded as the data of the formula.

        Categorical columns keep the levels (and reference level) of the
        data the formula was read on; a level not among them is an error.

        Parameters
        ----------
        data : DataFrame
            The columns of the formula (the response is not needed).

        Returns
        -------
        X : DataFrame
            Fixed-effect features, the columns of :attr:`X`.
        groups : DataFrame
            Grouping factors, the columns of :attr:`groups`.

        Examples
        --------
        >>> import pandas as pd
        >>> from sklearn_mixed import from_formula
        >>> from sklearn_mixed.datasets import load_sleepstudy
        >>> df = load_sleepstudy()
        >>> fm = from_formula("Reaction ~ Days + (Days | Subject)", df)
        >>> new = pd.DataFrame({"Days": [10, 10], "Subject": ["308", "not seen"]})
        >>> X, groups = fm.design(new)
        >>> fm.fit().predict(X, groups=groups).round(1)
        array([450.3, 356.1])
        """
        _check_columns(_used_columns(self._parsed, response=False), data, self.formula)
        return self._design.features(data), _group_frame(self._parsed.random, data)

    def __repr__(self):
        return (
            f"FormulaModel({self.formula!r}, X: {self.X.shape[0]} rows, "
            f"features {list(self.X.columns)!r}, groups {list(self.groups.columns)!r})"
        )


def from_formula(formula, data, *, method="reml", **estimator_params):
    """Read an lme4 formula: a configured :class:`MixedLinearRegressor` and its data.

    The fixed part may hold column names, ``1``, ``0`` or ``-1`` (no
    intercept), interactions ``a:b`` and crossings ``a*b`` (``= a + b +
    a:b``) of numeric columns, ``- term``, and categorical columns
    (object, string, category or bool dtype) coded as R does: one indicator
    column per level but the first (the reference), named like R's
    ``sampleB``; the levels are the categories' order, else sorted.  Other
    fixed-part expressions (``np.log(x)``, ``C(f):x``, ``I(x**2)``, ...) are
    built by the optional package formulaic (``pip install
    'sklearn-mixed[formula]'``), with formulaic's column names; formulaic
    evaluates them as Python code, so only use formulas you trust.

    Random-effect terms, each in parentheses:

    - ``(1 | g)``: a random intercept per level of the column ``g``;
    - ``(x | g)`` = ``(1 + x | g)``, ``(x1 + x2 | g)``: correlated random
      slopes (``covariance="unstructured"`` for ``g``);
    - ``(1 | g) + (0 + x | g)`` = ``(x || g)``: independent random slopes
      (``covariance="diagonal"``);
    - ``(1 | a) + (1 | b)``: crossed factors;
    - ``(1 | a/b)`` = ``(1 | a) + (1 | a:b)``: nested factors; ``a:b`` is
      the factor of the combined labels.

    Every factor needs a random intercept, and a random slope must be a
    fixed-effect column too.  Other terms (a slope without an intercept,
    a correlated block next to independent terms of the same factor,
    repeated terms, expressions) raise a ``ValueError``.  Crossed random
    intercepts only can also be fitted by :class:`CrossedEffectsRegressor`,
    with the same ``X`` and ``groups``.

    Parameters
    ----------
    formula : str
        An lme4 formula, ``"response ~ fixed part + (random | factor) + ..."``.
        Column names that are not identifiers go in backticks, as in R.
    data : DataFrame
        The data; rows with missing values in used columns are an error
        (nothing is dropped silently).
    method : {"reml", "ml"}, default="reml"
        lme4's ``REML = TRUE`` or ``FALSE``.
    **estimator_params
        Other :class:`MixedLinearRegressor` parameters (``max_iter``,
        ``tol``, ``new_groups``); ``random_slopes``, ``covariance``,
        ``fit_intercept`` and ``group_cols`` come from the formula.

    Returns
    -------
    FormulaModel
        ``.estimator`` (unfitted), ``.X``, ``.y``, ``.groups``, ``.formula``.

    See Also
    --------
    lmer : Read and fit in one call.

    Examples
    --------
    >>> from sklearn_mixed import from_formula
    >>> from sklearn_mixed.datasets import load_pastes, load_sleepstudy
    >>> fm = from_formula("strength ~ 1 + (1 | batch/cask)", load_pastes())
    >>> fm.X.shape, list(fm.groups.columns)
    ((60, 0), ['batch', 'batch:cask'])
    >>> fm.groups["batch:cask"].iloc[0]
    'A:a'
    >>> fm = from_formula("Reaction ~ Days + (Days || Subject)", load_sleepstudy())
    >>> fm.estimator.get_params()["covariance"]
    {'Subject': 'diagonal'}
    >>> fm.estimator.get_params()["random_slopes"]
    {'Subject': ['Days']}
    """
    conflicts = [p for p in _SET_BY_FORMULA if p in estimator_params]
    if conflicts:
        raise ValueError(
            f"{conflicts!r} are set by the formula; write them there, e.g. (x || g) for "
            "independent slopes or 0 + ... for no intercept."
        )
    parsed = parse_formula(formula)
    _check_columns(_used_columns(parsed), data, formula)
    if not _is_numeric(data[parsed.response]):
        raise ValueError(
            f"response {parsed.response!r} must be numeric, got dtype {data[parsed.response].dtype}"
        )
    design, fit_intercept = _build_design(parsed.fixed, data)
    X = design.features(data)
    if X.shape[1] == 0 and not fit_intercept:
        raise ValueError(
            f"formula {formula!r} has no fixed effect (no intercept and no column); "
            "MixedLinearRegressor needs at least one: remove the 0 or -1."
        )
    slopes = {
        name: _slope_columns(name, terms, covariance, design, X)
        for name, (_, terms, covariance) in parsed.random.items()
    }
    estimator = MixedLinearRegressor(
        random_slopes=slopes,
        covariance={name: structure[2] for name, structure in parsed.random.items()},
        fit_intercept=fit_intercept,
        method=method,
        **estimator_params,
    )
    y = data[parsed.response].astype(float)
    groups = _group_frame(parsed.random, data)
    return FormulaModel(formula, estimator, X, y, groups, parsed, design)


def lmer(formula, data, REML=True, **params):
    """Fit an lme4 formula in one call, as lme4's ``lmer(formula, data, REML)``.

    ``from_formula(formula, data, method=..., **params).fit()``: see
    :func:`from_formula` for the formulas understood.

    Parameters
    ----------
    formula : str
        An lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : DataFrame
        The data.
    REML : bool, default=True
        Fit by REML (``True``) or maximum likelihood (``False``).
    **params
        Other :class:`MixedLinearRegressor` parameters (``max_iter``, ``tol``,
        ``new_groups``).

    Returns
    -------
    MixedLinearRegressor
        The fitted estimator.

    Examples
    --------
    >>> from sklearn_mixed import lmer
    >>> from sklearn_mixed.datasets import load_sleepstudy
    >>> model = lmer("Reaction ~ Days + (Days | Subject)", load_sleepstudy())
    >>> print(model.fixed_effects_.round(4).to_string(index_names=False))
                 estimate  std_error  t_value
    (Intercept)  251.4051     6.8246  36.8383
    Days          10.4673     1.5458   6.7715
    >>> print(f"{model.log_likelihood_:.4f}")
    -871.8141
    """
    if "method" in params:
        raise ValueError("lmer takes REML=True or REML=False, not method=; or use from_formula.")
    return from_formula(formula, data, method="reml" if REML else "ml", **params).fit()
