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

from ._formula_design import (
    is_categorical,
    is_numeric,
    levels_of,
    term_codings,
    term_columns,
    type3_hypotheses,
)
from ._formula_parse import ParsedFormula, parse_formula
from ._mixed import MixedLinearRegressor

__all__ = ["FormulaModel", "from_formula", "lmer"]

# ---------------------------------------------------------------------------
# data: checks, fixed-effect columns, grouping factors


def _used_columns(parsed, *, response=True):
    """Columns the formula reads (formulaic's fixed-part columns excepted)."""
    used = [parsed.response] if response else []
    used += list(itertools.chain(*parsed.fixed.terms))
    for factor, blocks in parsed.random.values():
        used += list(factor)
        for block in blocks:
            used += list(itertools.chain(*block.slopes))
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


def _categorical(variables, data):
    """The categorical variables among ``variables``; the others must be numeric."""
    categorical = {v for v in variables if is_categorical(data[v])}
    bad = [v for v in variables if v not in categorical and not is_numeric(data[v])]
    if bad:
        raise ValueError(f"column(s) {bad!r} are neither numeric nor categorical")
    return categorical


@dataclass(frozen=True)
class _Design:
    """How the features are built, for the training data and new data.

    ``fixed`` are the fixed-effect columns (or formulaic's ``formulaic_spec``
    builds them), ``extra`` the covariates of random effects that are not
    fixed-effect columns; ``levels`` the levels of every categorical variable.
    """

    fixed: tuple  # of Column
    extra: tuple  # of Column
    levels: dict
    formulaic_spec: object = None

    def features(self, data):
        self._check_levels(data)
        if self.formulaic_spec is not None:
            matrix = _call_formulaic(self.formulaic_spec.get_model_matrix, data)
            values = np.asarray(matrix, dtype=float)
            fixed = pd.DataFrame(values, index=data.index, columns=matrix.columns)
            fixed = fixed.drop(columns=["Intercept"], errors="ignore")
        else:
            fixed = pd.DataFrame(
                {c.name: c.values(data) for c in self.fixed},
                index=data.index,
                columns=[c.name for c in self.fixed],
            )
        extra = pd.DataFrame(
            {c.name: c.values(data) for c in self.extra},
            index=data.index,
            columns=[c.name for c in self.extra],
        )
        return pd.concat([fixed, extra], axis=1) if len(self.extra) else fixed

    def _check_levels(self, data):
        for var, levels in self.levels.items():
            unseen = sorted(set(pd.unique(data[var])) - set(levels), key=str)
            if unseen:
                raise ValueError(
                    f"categorical column {var!r} has level(s) {unseen!r} not seen in the "
                    f"data of the formula; known levels: {levels!r}"
                )


def _fixed_columns(fixed, data, levels, categorical):
    """``{term: [Column]}`` of the built-in fixed part, R's coding."""
    codings = term_codings(list(fixed.terms), categorical, fixed.intercept)
    return {term: term_columns(term, codings[term], levels, categorical) for term in fixed.terms}


def _formulaic_fixed(fixed, data):
    import formulaic

    matrix = _call_formulaic(
        lambda d: formulaic.model_matrix(
            fixed.formulaic_rhs, d, context={"np": np}, na_action="raise"
        ),
        data,
    )
    return matrix.model_spec, "Intercept" in matrix.columns


def _call_formulaic(build, data):
    """``build(data)`` with formulaic's errors as ValueErrors naming the available columns."""
    try:
        return build(data)
    except Exception as exc:  # formulaic raises several exception types
        raise ValueError(
            f"formulaic could not build the fixed part: {exc}. "
            f"Available columns: {[str(c) for c in data.columns]!r}"
        ) from exc


def _random_blocks(factor, blocks, levels, categorical):
    """Each lme4 term of a factor as the :class:`Column` list of its covariates
    (``None`` for the intercept); a slope may be any numeric or categorical term."""
    out = []
    for block in blocks:
        slopes = list(block.slopes)
        codings = term_codings(slopes, categorical, block.intercept)
        columns = [None] if block.intercept else []
        for term in slopes:
            columns += term_columns(term, codings[term], levels, categorical)
        if not columns:
            raise ValueError(f"random-effect term {block.source!r} of {factor!r} is empty")
        out.append(columns)
    return out


def _classic_parameters(random, fixed_names):
    """``random_slopes`` and ``covariance`` when every factor has an intercept and
    either one correlated term or independent one-covariate terms, all of them
    fixed-effect columns (the estimator's short form); else None."""
    slopes, covariance = {}, {}
    for name, columns in random.items():
        names = [[None if c is None else c.name for c in block] for block in columns]
        flat = [n for block in names for n in block]
        if None not in flat or any(n not in fixed_names for n in flat if n is not None):
            return None
        if len(names) == 1 and names[0][0] is None:
            covariance[name] = "unstructured"
        elif all(len(block) == 1 for block in names):
            covariance[name] = "diagonal"
        else:
            return None
        slopes[name] = [n for n in flat if n is not None]
    return slopes, covariance


def _group_frame(random, data):
    """One column per grouping factor; ``a:b`` holds the combined labels ``"<a>:<b>"``."""
    columns = {}
    for name, (variables, _) in random.items():
        if len(variables) == 1:
            columns[name] = data[variables[0]]
        else:
            parts = [data[v].astype(str) for v in variables]
            columns[name] = parts[0].str.cat(parts[1:], sep=":")
    return pd.DataFrame(columns, index=data.index)


# ---------------------------------------------------------------------------
# public API

_SET_BY_FORMULA = (
    "random_slopes",
    "covariance",
    "random_effects",
    "fixed_features",
    "fixed_terms",
    "fit_intercept",
    "group_cols",
)


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
    X, y, groups, params, parsed, design = _read_formula(formula, data, estimator_params)
    estimator = MixedLinearRegressor(method=method, **params, **estimator_params)
    return FormulaModel(formula, estimator, X, y.astype(float), groups, parsed, design)


def _read_formula(formula, data, estimator_params, numeric_response=True):
    """``(X, y, groups, estimator parameters, parsed formula, design)`` of a formula."""
    conflicts = [p for p in _SET_BY_FORMULA if p in estimator_params]
    if conflicts:
        raise ValueError(
            f"{conflicts!r} are set by the formula; write them there, e.g. (x || g) for "
            "independent slopes or 0 + ... for no intercept."
        )
    parsed = parse_formula(formula)
    _check_columns(_used_columns(parsed), data, formula)
    if numeric_response and not is_numeric(data[parsed.response]):
        raise ValueError(
            f"response {parsed.response!r} must be numeric, got dtype {data[parsed.response].dtype}"
        )
    covariates = list(itertools.chain(*parsed.fixed.terms))
    for _, blocks in parsed.random.values():
        covariates += [v for block in blocks for term in block.slopes for v in term]
    categorical = _categorical(list(dict.fromkeys(covariates)), data)
    levels = {v: levels_of(data[v]) for v in categorical}
    for v, lev in levels.items():
        if len(lev) < 2 and any(v in t for t in parsed.fixed.terms):
            raise ValueError(
                f"categorical column {v!r} has a single level {lev!r}; a fixed effect needs "
                "at least 2 (drop it from the formula)."
            )
    fixed, hypotheses, formulaic_spec = parsed.fixed, None, None
    if fixed.formulaic_rhs is not None:
        formulaic_spec, fit_intercept = _formulaic_fixed(fixed, data)
        fixed_columns = []
    else:
        fit_intercept = fixed.intercept
        by_term = _fixed_columns(fixed, data, levels, categorical)
        fixed_columns = [c for t in fixed.terms for c in by_term[t]]
        hypotheses = _fixed_terms(fixed, by_term, data, levels, categorical)
    random = {
        name: _random_blocks(name, blocks, levels, categorical)
        for name, (_, blocks) in parsed.random.items()
    }
    fixed_names = [c.name for c in fixed_columns]
    if formulaic_spec is not None:
        fixed_names = list(_Design((), (), levels, formulaic_spec).features(data).columns)
    extra = {
        c.name: c
        for columns in random.values()
        for block in columns
        for c in block
        if c is not None and c.name not in fixed_names
    }
    design = _Design(tuple(fixed_columns), tuple(extra.values()), levels, formulaic_spec)
    X = design.features(data)
    params = {"fit_intercept": fit_intercept, "fixed_terms": hypotheses}
    classic = None if extra else _classic_parameters(random, fixed_names)
    if classic is not None:
        params["random_slopes"], params["covariance"] = classic
    else:
        params["random_effects"] = {
            name: [["1" if c is None else c.name for c in block] for block in columns]
            for name, columns in random.items()
        }
        if extra:
            params["fixed_features"] = fixed_names
    y = data[parsed.response]
    groups = _group_frame(parsed.random, data)
    return X, y, groups, params, parsed, design


def _fixed_terms(fixed, by_term, data, levels, categorical):
    """``fixed_terms`` of the estimator: per term its column names, or lmerTest's type
    III hypothesis matrix for a term contained in an interaction."""
    terms = list(fixed.terms)
    if not terms:
        return None
    matrices = type3_hypotheses(terms, by_term, data, levels, categorical, fixed.intercept)
    out = {}
    names = (["(Intercept)"] if fixed.intercept else []) + [
        c.name for t in terms for c in by_term[t]
    ]
    for term in terms:
        label, columns = ":".join(term), [c.name for c in by_term[term]]
        plain = np.zeros((len(columns), len(names)))
        plain[np.arange(len(columns)), [names.index(c) for c in columns]] = 1.0
        H = matrices[label]
        same = H.shape == plain.shape and np.allclose(H, plain, atol=1e-12)
        out[label] = columns if same else H
    return out


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
