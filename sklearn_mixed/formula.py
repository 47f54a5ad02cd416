"""lme4-style formulas: ``from_formula`` and ``lmer``.

A formula such as ``log(Weight) ~ Time + I(Time^2) + (Time | Pig)`` is read
with R's syntax and meaning (R's operator precedence and term algebra, R's
functions, R's column names; nothing is evaluated as Python) and turned into
what :class:`MixedLinearRegressor` takes: the fixed-effect features ``X``
(named as R's ``model.matrix`` columns, categorical variables in R's
treatment coding), the response ``y``, the grouping factors ``groups`` (one
column per factor, nested factors as combined labels named like lme4's
``a:b``) and the estimator's random-effect parameters.  :func:`lmer` and
:class:`LmerRegressor` keep the formula and the coding learned at fit, so
that they predict on new raw data.

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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._formula_estimators import LmerRegressor
from ._formula_read import (
    FormulaDesign,
    column_or_values,
    read_formula,
    refuse_row_selection,
    with_offset,
)
from ._formula_vars import is_numeric
from ._mixed import MixedLinearRegressor

__all__ = ["FormulaModel", "LmerRegressor", "from_formula", "lmer"]

# ---------------------------------------------------------------------------
# public API


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
    groups : Series or DataFrame
        The grouping factor as a named Series when there is one (what
        scikit-learn's group splitters such as ``GroupKFold`` take); else one
        column per factor, named as lme4 names them (``a:b`` holds the
        combined labels ``"<a>:<b>"`` of a nested factor): split on one of
        them, e.g. ``groups["Subject"]``, usually the outermost.
    """

    formula: str
    estimator: MixedLinearRegressor
    X: pd.DataFrame
    y: pd.Series
    groups: object
    _design: FormulaDesign = field(repr=False)

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
        groups : Series or DataFrame
            Grouping factors, as :attr:`groups`.

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
        return self._design.features(data), _squeeze(self._design.groups(data))

    def __repr__(self):
        return (
            f"FormulaModel({self.formula!r}, X: {self.X.shape[0]} rows, "
            f"features {list(self.X.columns)!r}, groups {self._design.group_names!r})"
        )


def from_formula(formula, data, *, method="reml", contrasts=None, **estimator_params):
    """Read an lme4 formula: a configured :class:`MixedLinearRegressor` and its data.

    The formula has R's syntax and meaning (see :class:`LmerRegressor` for
    everything understood): column names, R's term algebra (``a*b``,
    ``a:b``, ``a/b``, ``(a + b)^2``, ``- term``, ``0``/``1``/``-1``), R's
    functions (``I(x^2)``, ``log(x)``, ``poly(x, 2)``, ``scale(x)``,
    ``factor(f)``, ...), a transformed response (``log(y) ~ ...``), and
    categorical columns (object, string, category or bool dtype) coded as R
    codes them (treatment contrasts, R's column names such as ``sampleB``).
    Anything else is a ``ValueError`` naming the part not understood.

    Random-effect terms, each in parentheses:

    - ``(1 | g)``: a random intercept per level of the column ``g``;
    - ``(x | g)`` = ``(1 + x | g)``, ``(x1 + x2 | g)``: correlated random
      slopes (``covariance="unstructured"`` for ``g``);
    - ``(1 | g) + (0 + x | g)`` = ``(x || g)``: independent random slopes
      (``covariance="diagonal"``);
    - ``(0 + x | g)``, ``(log(x) | g)``, ``(0 + f | g)``: any covariates
      (``random_effects``);
    - ``(1 | a) + (1 | b)``: crossed factors;
    - ``(1 | a/b)`` = ``(1 | a) + (1 | a:b)``: nested factors; ``a:b`` is
      the factor of the combined labels.

    For predictions on new raw data (the coding learned here applied to
    them), use :class:`LmerRegressor` or :meth:`FormulaModel.design`.

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
    contrasts : dict, default=None
        lme4's ``contrasts`` argument, as for :class:`LmerRegressor`.
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
    >>> from sklearn.model_selection import GroupKFold
    >>> folds = GroupKFold(n_splits=5).split(fm.X, fm.y, groups=fm.groups["batch"])
    >>> fm.groups["batch:cask"].iloc[0]
    'A:a'
    >>> fm = from_formula("Reaction ~ Days + (Days || Subject)", load_sleepstudy())
    >>> fm.estimator.get_params()["covariance"]
    {'Subject': 'diagonal'}
    >>> fm.estimator.get_params()["random_slopes"]
    {'Subject': ['Days']}
    """
    design, params, X = read_formula(formula, data, estimator_params, contrasts=contrasts)
    if design.offset(data) is not None:
        raise ValueError(
            "from_formula returns arrays for MixedLinearRegressor, which has no offset; "
            "fit formulas with offset(...) with lmer() or LmerRegressor, which add it back "
            "in predict"
        )
    y = design.response(data)
    if y is None:
        raise ValueError(f"the response of {formula!r} is not in the data")
    if not is_numeric(y):
        raise ValueError(f"response {y.name!r} must be numeric, got dtype {y.dtype}")
    estimator = MixedLinearRegressor(method=method, **params, **estimator_params)
    groups = _squeeze(design.groups(data))
    return FormulaModel(formula, estimator, X, y.astype(float), groups, design)


def _squeeze(groups):
    """One grouping factor as a named Series (what group splitters take)."""
    return groups.iloc[:, 0] if groups.shape[1] == 1 else groups


def lmer(formula, data, REML=True, weights=None, offset=None, **params):
    """Fit an lme4 formula in one call, as lme4's ``lmer(formula, data, REML)``.

    ``LmerRegressor(formula, method=..., **params).fit(data)``: see
    :class:`LmerRegressor` for the formulas understood.

    Parameters
    ----------
    formula : str
        An lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : DataFrame
        The data.
    REML : bool, default=True
        Fit by REML (``True``) or maximum likelihood (``False``).
    weights : str or array-like, default=None
        Prior weights, lme4's ``weights``: a column name or the values.
    offset : str or array-like, default=None
        lme4's ``offset``: a column name or the values (the same as
        ``+ offset(z)`` in the formula; predictions on new data then need
        the formula's ``offset(...)`` form).
    **params
        Other :class:`LmerRegressor` parameters (``max_iter``, ``tol``,
        ``new_groups``).

    Returns
    -------
    LmerRegressor
        The fitted estimator: ``predict(new_data)`` on raw data, and the
        fitted attributes and reading methods of :class:`MixedLinearRegressor`.

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
    if not isinstance(REML, (bool, np.bool_)):
        raise ValueError(f"REML must be True or False, got {REML!r}")
    refuse_row_selection(params)
    w = column_or_values(weights, data, "weights")
    formula, data = with_offset(formula, data, offset)
    estimator = LmerRegressor(formula, method="reml" if REML else "ml", **params)
    return estimator.fit(data, sample_weight=w)
