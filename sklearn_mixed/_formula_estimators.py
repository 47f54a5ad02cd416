"""Estimators whose parameter is an lme4 formula and whose ``X`` is the raw data.

:class:`LmerRegressor` (and the GLMM twins of :mod:`._formula_glmer`)
read the formula on the DataFrame given to ``fit`` (:mod:`._formula_read`),
learn its coding (levels, ``poly`` and ``scale`` coefficients), fit the
array estimator inside (``estimator_``) and apply the same coding to the
data given to ``predict``.  Groups and offsets come from the data's columns,
so nothing needs routing: Pipelines, ``cross_val_predict``, ``GridSearchCV``
over formulas and ``search.predict(new_data)`` work with scikit-learn's
defaults.  The fitted attributes and reading methods (``summary``,
``confint``, ``fixed_effects_``, ...) are those of ``estimator_``.
"""

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    assert_all_finite,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._dask import refuse_dask
from ._formula_read import read_formula
from ._formula_vars import is_numeric
from ._mixed import MixedLinearRegressor

__all__ = ["FORMULA_SYNTAX", "FormulaEstimator", "LmerRegressor", "array_estimator"]


class FormulaEstimator(BaseEstimator):
    """Shared by the formula estimators: reading the data, forwarding the fit."""

    _parameter_constraints: dict = {
        "formula": [str],
        "contrasts": [None, dict],
        "new_groups": [StrOptions({"population", "error"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
    }

    def _inner(self, formula_params):
        """The unfitted array estimator with the formula's and our parameters
        (those it takes: a GLMM has no ``fixed_terms``, the family is the class)."""
        accepted = self._inner_class().get_params(deep=False)
        params = {**formula_params, **self.get_params(deep=False)}
        return self._inner_class(**{k: v for k, v in params.items() if k in accepted})

    def _data(self, X, reset):
        """``X`` as a DataFrame: as given, or an array's columns (and those of a
        DataFrame whose column names are not all text) named ``x0, x1, ...``."""
        refuse_dask(X, type(self).__name__)
        if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
            if reset:
                self.feature_names_in_ = np.asarray(X.columns, dtype=object)
                self.n_features_in_ = X.shape[1]
            return X
        X = validate_data(self, X, reset=reset, dtype="numeric", ensure_all_finite=False)
        if reset and X.shape[0] < 2:
            raise ValueError(f"n_samples={X.shape[0]}: a mixed model needs at least 2 rows")
        return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])

    def _response(self, design, data, y):
        """``y``, or the formula's left-hand side read from the data; both must agree."""
        from_data = design.response(data)
        if y is None:
            if from_data is None:
                raise ValueError(
                    f"{type(self).__name__} requires y to be passed, but the target y is None "
                    f"and the response of {self.formula!r} cannot be read from X (columns "
                    f"{[str(c) for c in data.columns]!r}); pass y or add the column"
                )
            return from_data
        y = column_or_1d(y, dtype=None, warn=True)
        if len(y) != len(data):
            raise ValueError(f"y has {len(y)} values for {len(data)} rows of X")
        if is_numeric(pd.Series(y)):
            assert_all_finite(y, input_name="y")
        y = pd.Series(y, index=data.index)
        if from_data is not None and not _same(y, from_data):
            raise ValueError(
                f"y differs from the formula's response {design.parsed.response!r} computed "
                "from the columns of X; pass y=None to use the formula's response, or a y "
                "equal to it (on the scale of the left-hand side)"
            )
        return y

    def _read_new(self, X, random_effects):
        """``(features, groups, offset)`` of new data, coded as at fit."""
        check_is_fitted(self)
        data = self._data(X, reset=False)
        design = self.design_
        groups = None
        if random_effects is None or len(random_effects):  # the factors whose modes are added
            wanted = [f for f in random_effects or design.group_names if f in design.group_names]
            groups = design.groups(data, wanted)
        return design.features(data), groups, design.offset(data)

    def _fit_inner(self, X, y, sample_weight):
        data = self._data(X, reset=True)
        design, params, features = read_formula(self.formula, data, contrasts=self.contrasts)
        response = self._response(design, data, y)
        self.design_ = design
        self.estimator_ = self._inner(params)
        return data, design, features, response, design.groups(data), design.offset(data)

    def _score_with(self, metric, X, y, sample_weight):
        """``metric(y, predict(X))``, ``y`` read from ``X`` when None."""
        check_is_fitted(self)
        response = self._response(self.design_, self._data(X, reset=False), y)
        if is_numeric(response):
            response = numeric_response(response)
        return float(metric(response, self.predict(X), sample_weight=sample_weight))

    def __getattr__(self, name):
        # The fitted attributes and reading methods of the estimator inside (not its
        # parameters, its input bookkeeping or its fits on arrays).
        inner = vars(self).get("estimator_")
        if inner is None or not _forwarded(name) or not hasattr(inner, name):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(inner, name)

    def __dir__(self):
        inner = vars(self).get("estimator_")
        extra = [n for n in dir(inner) if _forwarded(n)] if inner is not None else []
        return sorted(set(super().__dir__()) | set(extra))

    def _formula_tags(self, tags):
        """The inner estimator's target tags; ``y`` optional; text and categories in X."""
        inner = self._inner_class().__sklearn_tags__()
        tags.target_tags = inner.target_tags
        tags.classifier_tags = inner.classifier_tags
        tags.target_tags.required = False
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags


_OWN = ("feature_names_in_", "n_features_in_")
# The reading methods of the array estimators (their fitted model, no new data).
READING_METHODS = frozenset({
    "anova", "confint", "cooks_distance", "effect_ranges", "fixed_effects_tests",
    "influence", "intraclass_correlation", "leverage", "residuals", "shrinkage",
    "studentized_residuals", "summary",
})  # fmt: skip


def _forwarded(name):
    """Fitted attributes (``coef_``, ...) and reading methods are forwarded."""
    fitted = name.endswith("_") and not name.startswith("_") and name not in _OWN
    return fitted or name in READING_METHODS


def array_estimator(model):
    """The fitted array estimator inside a formula estimator; any other model as is."""
    return vars(model).get("estimator_", model) if isinstance(model, FormulaEstimator) else model


def numeric_response(response):
    """The response as floats (numbers stored as objects too), else a clear error."""
    try:
        return response.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"Unknown label type: the response must be numeric, got dtype {response.dtype} "
            f"(e.g. {response.iloc[0]!r}); a binary response needs GlmerClassifier"
        ) from None


def _same(y, from_data):
    a, b = np.asarray(y), np.asarray(from_data)
    if is_numeric(pd.Series(a)) and is_numeric(pd.Series(b)):
        return np.allclose(a.astype(float), b.astype(float), rtol=1e-12, atol=0)
    return bool(np.all(a == b))


FORMULA_SYNTAX = """
    The formula has R's syntax and meaning, as ``lme4::lmer`` reads it:

    - the response: a column, or an expression such as ``log(Weight)``;
    - terms: column names (backticks around other names, as in R), ``a:b``
      (interaction), ``a*b`` (``a + b + a:b``), ``a/b`` (``a + a:b``),
      ``(a + b)^2``, ``a %in% b``, ``- term``; ``1``, ``0`` and ``-1`` add
      or remove the intercept, the last one written winning;
    - functions: ``I(...)`` with ``+ - * / ^``, comparisons and ``& | !``
      (``I(x^2)`` is a square), ``log(x)``, ``log(x, base)``, ``log2``,
      ``log10``, ``log1p``, ``exp``, ``expm1``, ``sqrt``, ``abs``, ``sign``,
      ``sin``, ``cos``, ``tan``, ``floor``, ``ceiling``, ``trunc``,
      ``round``, ``pmin``, ``pmax``, ``as.numeric``, ``as.integer``;
      ``scale(x)`` (mean and standard deviation of the training data),
      ``poly(x, k)`` (R's orthogonal polynomials, coefficients learned at
      fit) and ``poly(x, k, raw = TRUE)``; ``factor(x)`` (levels sorted,
      labelled as R prints them), ``factor(x, levels = c(...))``,
      ``relevel(f, ref = "b")``, ``ordered(x)``; ``offset(z)`` (a known
      term);
    - categorical columns (text, category or bool dtype) and logical
      expressions are factors in R's treatment coding, an ordered pandas
      categorical in R's polynomial contrasts (``contrasts`` sets others),
      named as R names model-matrix columns (``CuFCu035``,
      ``Time:CuFCu035``, ``poly(Time, 2)1``, ``I(Time > 6)TRUE``,
      ``EvitO.L``); levels in category order, else sorted as R sorts
      them (numbers numerically, text in R's English collation: ``a < b <
      B``, ``no < Yes``);
    - random terms ``(1 | g)``, ``(x | g)``, ``(x || g)``, ``(0 + x | g)``
      with ``x`` any variable above (``(log(Time) | Pig)``), crossed
      factors ``(1 | a) + (1 | b)``, nested ``(1 | a/b)`` and ``(1 | a:b)``.

    Anything else (Python syntax such as ``x**2`` or ``np.log(x)``, a
    function R has but this reader does not) is a ``ValueError`` naming it:
    the model is lme4's or there is no model.  Columns used must have no
    missing values (nothing is dropped silently).  On new data, a level of a
    categorical covariate not seen at fit is an error; an unseen level of a
    grouping factor gets the population prediction (``new_groups``).
"""


class LmerRegressor(RegressorMixin, FormulaEstimator):
    __doc__ = (
        """lme4's ``lmer`` as a scikit-learn regressor on raw data.

    ``LmerRegressor("Weight ~ Time + I(Time^2) + (Time | Pig)").fit(df)``
    fits lme4's ``lmer(Weight ~ Time + I(Time^2) + (Time | Pig), df)``:
    ``X`` is the DataFrame itself (features and grouping columns by name)
    and ``y`` the response, read from ``X`` by the formula's left-hand side
    when not given.  The coding learned at fit is applied at predict, so
    ``predict(new_df)`` works on rows of new data, with seen and unseen
    groups.  Since the groups are columns of ``X``, the estimator works in
    ``Pipeline``, ``cross_val_predict`` and ``GridSearchCV`` (also over
    formulas: ``{"formula": [f1, f2]}``) with scikit-learn's defaults, no
    metadata routing needed.
"""
        + FORMULA_SYNTAX
        + """
    Parameters
    ----------
    formula : str
        An lme4 formula, e.g. ``"log(Weight) ~ Time * CuF + (Time | Pig)"``.
    method : {"reml", "ml"}, default="reml"
        lme4's ``REML = TRUE`` or ``FALSE``.
    contrasts : dict, default=None
        lme4's ``contrasts`` argument: ``{variable: "contr.sum"}`` codes that
        factor of the formula (a column or an expression such as
        ``"factor(Cu)"``) by R's ``contr.sum``, ``contr.helmert``,
        ``contr.poly``, ``contr.SAS`` or ``contr.treatment``.  Default: R's,
        ``contr.treatment`` for unordered factors and ``contr.poly`` for
        ordered ones (an ordered pandas categorical or ``ordered(x)``).
    new_groups : {"population", "error"}, default="population"
        Unseen levels of a grouping factor in ``predict``: 0 for that
        factor's random effects (lme4's ``allow.new.levels = TRUE``) or an
        error.
    max_iter : int, default=500
        Maximum number of optimizer iterations.
    tol : float, default=1e-10
        Optimizer tolerance.

    Attributes
    ----------
    estimator_ : MixedLinearRegressor
        The fitted array estimator; its fitted attributes (``coef_``,
        ``fixed_effects_``, ``variance_components_``, ``random_effects_``,
        ``log_likelihood_``, ...) and reading methods (``summary``,
        ``confint``, ``anova``, ``residuals``, ...) are also this
        estimator's.
    design_ : object
        The formula as read on the training data: its variables, the coding
        and the transforms learned, applied to new data.
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Columns of ``X`` seen in ``fit``.

    See Also
    --------
    lmer : Fit a formula in one call.
    MixedLinearRegressor : The same models on arrays, groups passed apart.
    GlmerClassifier : Binary outcomes.

    Examples
    --------
    >>> from sklearn_mixed import LmerRegressor
    >>> from sklearn_mixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> model = LmerRegressor("Reaction ~ Days + I(Days^2) + (Days | Subject)").fit(df)
    >>> model.fixed_effect_names_
    ['(Intercept)', 'Days', 'I(Days^2)']
    >>> new = df.head(2).assign(Subject=["308", "a new subject"])
    >>> model.predict(new).round(1)
    array([257.7, 263.2])
    """
    )

    _inner_class = MixedLinearRegressor
    __metadata_request__predict = {"random_effects": True, "return_std": True}

    def __sklearn_tags__(self):
        return self._formula_tags(super().__sklearn_tags__())

    _parameter_constraints: dict = {
        **FormulaEstimator._parameter_constraints,
        "method": [StrOptions({"reml", "ml"})],
    }

    def __init__(self, formula, *, method="reml", contrasts=None, new_groups="population",
                 max_iter=500, tol=1e-10):  # fmt: skip
        self.formula = formula
        self.contrasts = contrasts
        self.method = method
        self.new_groups = new_groups
        self.max_iter = max_iter
        self.tol = tol

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Read the formula on ``X`` and fit lme4's model.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_columns)
            The data: the formula's columns, grouping columns included
            (an array's columns are named ``x0``, ``x1``, ...).
        y : array-like of shape (n_samples,), default=None
            The response on the scale of the formula's left-hand side; None
            reads it from ``X``.  When ``X`` also has the left-hand side's
            columns, the two must agree.
        sample_weight : array-like of shape (n_samples,), default=None
            Prior weights (lme4's ``weights``).

        Returns
        -------
        self : object
            Fitted estimator.
        """
        _, _, features, response, groups, offset = self._fit_inner(X, y, sample_weight)
        target = numeric_response(response) - (0.0 if offset is None else offset)
        self.estimator_.fit(features, target, groups=groups, sample_weight=sample_weight)
        return self

    def predict(self, X, *, random_effects=None, return_std=False):
        """Predict on raw data: fixed effects, offset and the modes of seen levels.

        Parameters
        ----------
        X : DataFrame
            New rows with the formula's columns (the response is not needed).
        random_effects : list or dict, default=None
            Which random effects to add (lme4's ``re.form``); ``[]`` gives
            the population prediction (``re.form = NA``), without grouping
            columns.  See :meth:`MixedLinearRegressor.predict`.
        return_std : bool, default=False
            Also return the predictive standard deviation of a new observation.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            On the scale of the formula's left-hand side (as lme4's ``predict``).
        y_std : ndarray of shape (n_samples,)
            Only when ``return_std=True``.
        """
        features, groups, offset = self._read_new(X, random_effects)
        out = self.estimator_.predict(
            features, groups=groups, return_std=return_std, random_effects=random_effects
        )
        shift = 0.0 if offset is None else offset
        return (out[0] + shift, out[1]) if return_std else out + shift

    def score(self, X, y=None, sample_weight=None):
        """R² of the predictions on ``X`` (``y`` read from ``X`` when None).

        Parameters
        ----------
        X : DataFrame
        y : array-like of shape (n_samples,), default=None
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        return self._score_with(r2_score, X, y, sample_weight)
