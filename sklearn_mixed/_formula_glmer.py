"""The GLMM formula estimators: lme4's ``glmer`` on raw data.

:class:`GlmerClassifier` (binomial, logit link) and :class:`GlmerRegressor`
(Poisson, log link) read the formula as :class:`LmerRegressor` does
(:mod:`._formula_estimators`) and fit :class:`MixedLogisticRegression` or
:class:`MixedPoissonRegressor` inside.  Binomial responses may be labels,
0/1, proportions with trials as ``sample_weight``, or ``cbind(successes,
failures)``; Poisson offsets come from the formula's ``offset(...)``.
"""

from numbers import Integral

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._formula_estimators import FORMULA_SYNTAX, FormulaEstimator, numeric_response
from ._formula_vars import is_numeric, levels_of
from ._mixed_glm import MixedLogisticRegression, MixedPoissonRegressor

__all__ = ["GlmerClassifier", "GlmerRegressor"]


class _GlmerMixin:
    """The parameters and fit shared by the GLMM formula estimators."""

    _parameter_constraints: dict = {
        **FormulaEstimator._parameter_constraints,
        "new_groups": [StrOptions({"population", "marginal", "error"})],
        "nagq": [Interval(Integral, 1, None, closed="left")],
        "solver": [StrOptions({"exact", "iterative"})],
    }

    def _fit_glmm(self, X, y, sample_weight):
        data, design, features, response, groups, offset = self._fit_inner(X, y, sample_weight)
        self._fit_response(design, data, features, response, groups, offset, sample_weight)
        return self

    def _response(self, design, data, y):
        if design.counts_response:
            if y is not None:
                raise ValueError(
                    f"the response {design.parsed.response!r} is read from X: pass y=None"
                )
            return None  # cbind(successes, failures): read in _fit_response
        return super()._response(design, data, y)


class GlmerClassifier(ClassifierMixin, _GlmerMixin, FormulaEstimator):
    __doc__ = (
        """lme4's ``glmer(..., family = binomial)`` as a scikit-learn classifier on raw data.

    ``GlmerClassifier("use ~ age + I(age^2) + urban + (1 | district)").fit(df)``
    fits lme4's logistic mixed model with ``X`` the DataFrame itself, as
    :class:`LmerRegressor` does for linear models.  The response is a column
    with two labels (or 0/1), a proportion with ``sample_weight`` the
    numbers of trials, or ``cbind(successes, failures)``.
"""
        + FORMULA_SYNTAX
        + """
    Parameters
    ----------
    formula : str
        An lme4 formula, e.g. ``"use ~ age + I(age^2) + urban + (urban | district)"``.
    contrasts : dict, default=None
        lme4's ``contrasts`` argument, as for :class:`LmerRegressor`.
    new_groups : {"population", "marginal", "error"}, default="population"
        Unseen levels of a grouping factor: random effect 0, the probability
        averaged over the random effects' distribution, or an error.
    nagq : int, default=1
        1: Laplace; more: adaptive Gauss-Hermite quadrature (lme4's ``nAGQ``).
    solver : {"exact", "iterative"}, default="exact"
        As :class:`MixedLogisticRegression`.
    max_iter : int, default=500
        Maximum number of optimizer iterations.
    tol : float, default=1e-10
        Optimizer tolerance.

    Attributes
    ----------
    estimator_ : MixedLogisticRegression
        The fitted array estimator, whose fitted attributes (``classes_``,
        ``fixed_effects_``, ``variance_components_``, ...) and reading
        methods (``summary``, ``confint``) are also this estimator's.
    design_ : object
        The formula as read on the training data.
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Columns of ``X`` seen in ``fit``.

    See Also
    --------
    glmer : Fit a formula in one call.
    MixedLogisticRegression : The same models on arrays.

    Examples
    --------
    >>> from sklearn_mixed import GlmerClassifier
    >>> from sklearn_mixed.datasets import load_contraception
    >>> df = load_contraception()
    >>> model = GlmerClassifier("use ~ age + I(age^2) + urban + livch + (1 | district)")
    >>> model.fit(df).classes_
    array(['N', 'Y'], dtype=object)
    >>> model.predict_proba(df.head(2)).round(3)
    array([[0.84 , 0.16 ],
           [0.777, 0.223]])
    """
    )

    _inner_class = MixedLogisticRegression
    __metadata_request__predict = {"random_effects": True}
    __metadata_request__predict_proba = {"random_effects": True}
    __metadata_request__predict_log_proba = {"random_effects": True}
    __metadata_request__decision_function = {"random_effects": True}

    def __sklearn_tags__(self):
        return self._formula_tags(super().__sklearn_tags__())

    def __init__(self, formula, *, contrasts=None, new_groups="population", nagq=1,
                 solver="exact", max_iter=500, tol=1e-10):  # fmt: skip
        self.formula = formula
        self.contrasts = contrasts
        self.new_groups = new_groups
        self.nagq = nagq
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Read the formula on ``X`` and fit lme4's logistic mixed model.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_columns)
            The data, grouping columns included.
        y : array-like of shape (n_samples,), default=None
            Two labels, 0/1, or proportions (with ``sample_weight`` the
            trials); None reads the formula's response from ``X``.
        sample_weight : array-like of shape (n_samples,), default=None
            Prior weights; the numbers of trials for proportions.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        return self._fit_glmm(X, y, sample_weight)

    def _fit_response(self, design, data, features, response, groups, offset, sample_weight):
        vars(self).pop("classes_", None)  # set below only for a categorical response
        if offset is not None:
            raise ValueError(
                "offset(...) is supported for the Poisson family only (GlmerRegressor)"
            )
        counts = design.counts(data)
        if response is None and counts is not None:
            successes, failures = counts
            trials = successes + failures
            if np.any(trials <= 0) or np.any(successes < 0) or np.any(failures < 0):
                raise ValueError("cbind(successes, failures) needs counts >= 0, not all 0 in a row")
            weights = trials if sample_weight is None else trials * np.asarray(sample_weight)
            self.estimator_.fit_proportions(features, successes / trials, groups, weights)
            return
        if sample_weight is not None and _proportions(response):  # glmer's prop, weights = n
            self.estimator_.fit_proportions(features, response.to_numpy(dtype=float), groups,
                                            sample_weight)  # fmt: skip
            return
        levels = _category_order(response)
        if levels is not None:  # R models P(second level), in R's level order
            codes = (response == levels[1]).astype(int)
            self.estimator_.fit(features, codes, groups=groups, sample_weight=sample_weight)
            self.classes_ = np.asarray(levels, dtype=object)
        else:
            self.estimator_.fit(features, response, groups=groups, sample_weight=sample_weight)

    def score(self, X, y=None, sample_weight=None):
        """Accuracy on ``X`` (``y`` read from ``X`` when None).

        Parameters
        ----------
        X : DataFrame
        y : array-like of shape (n_samples,), default=None
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        if self.design_.counts_response:
            raise ValueError(
                "a cbind(successes, failures) response has no label per row for a score: "
                "compare predict_proba(X)[:, 1] with the proportions (e.g. log_loss with "
                "the trials as sample_weight), or use log_likelihood_"
            )
        return self._score_with(accuracy_score, X, y, sample_weight)

    def _inner_call(self, method, X, random_effects):
        features, groups, _ = self._read_new(X, random_effects)
        out = getattr(self.estimator_, method)(features, groups=groups,
                                               random_effects=random_effects)  # fmt: skip
        if method == "predict" and "classes_" in vars(self):  # codes back to the labels
            return self.classes_[out.astype(int)]
        return out

    def predict_proba(self, X, *, random_effects=None):
        """Class probabilities ``[1 - p, p]`` on raw data.

        Parameters
        ----------
        X : DataFrame
            New rows with the formula's columns.
        random_effects : list or dict, default=None
            Which random effects to add (lme4's ``re.form``); ``[]``: none.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
        """
        return self._inner_call("predict_proba", X, random_effects)

    def predict_log_proba(self, X, *, random_effects=None):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : DataFrame
        random_effects : list or dict, default=None

        Returns
        -------
        log_proba : ndarray of shape (n_samples, 2)
        """
        return self._inner_call("predict_log_proba", X, random_effects)

    def decision_function(self, X, *, random_effects=None):
        """The linear predictor (log-odds of ``classes_[1]``) on raw data.

        Parameters
        ----------
        X : DataFrame
        random_effects : list or dict, default=None

        Returns
        -------
        eta : ndarray of shape (n_samples,)
        """
        return self._inner_call("decision_function", X, random_effects)

    def predict(self, X, *, random_effects=None):
        """The more probable class of each row.

        Parameters
        ----------
        X : DataFrame
        random_effects : list or dict, default=None

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self._inner_call("predict", X, random_effects)


def _category_order(response):
    """The two levels of a response in R's order when it is not scikit-learn's
    (R models the second level: categories in their order, text in R's
    collation, ``"no" < "Yes"``; scikit-learn sorts by code point); else None."""
    if response is None or is_numeric(response):
        return None
    levels = levels_of(response)
    if len(levels) != 2 or list(levels) == sorted(levels, key=str):
        return None
    return levels


def _proportions(response):
    """A numeric response in [0, 1], not only 0 and 1: proportions of successes."""
    if not is_numeric(response):
        return False
    values = response.to_numpy(dtype=float)
    return bool(np.all((values >= 0) & (values <= 1)) and not np.isin(values, (0, 1)).all())


class GlmerRegressor(RegressorMixin, _GlmerMixin, FormulaEstimator):
    __doc__ = (
        """lme4's ``glmer(..., family = poisson)`` as a scikit-learn regressor on raw data.

    ``GlmerRegressor("y ~ x + offset(log(t)) + (1 | g)").fit(df)`` fits
    lme4's Poisson mixed model (log link) with ``X`` the DataFrame itself,
    offsets included, as :class:`LmerRegressor` does for linear models.
"""
        + FORMULA_SYNTAX
        + """
    Parameters
    ----------
    formula : str
        An lme4 formula with a count response.
    family : {"poisson"}, default="poisson"
        The response distribution (log link).
    contrasts : dict, default=None
        lme4's ``contrasts`` argument, as for :class:`LmerRegressor`.
    new_groups : {"population", "marginal", "error"}, default="population"
        Unseen levels of a grouping factor: random effect 0, the mean
        over the random effects' distribution, or an error.
    nagq : int, default=1
        1: Laplace; more: adaptive Gauss-Hermite quadrature.
    solver : {"exact", "iterative"}, default="exact"
        As :class:`MixedPoissonRegressor`.
    max_iter : int, default=500
        Maximum number of optimizer iterations.
    tol : float, default=1e-10
        Optimizer tolerance.

    Attributes
    ----------
    estimator_ : MixedPoissonRegressor
        The fitted array estimator, whose fitted attributes and reading
        methods are also this estimator's.
    design_ : object
        The formula as read on the training data.
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Columns of ``X`` seen in ``fit``.

    See Also
    --------
    glmer : Fit a formula in one call.
    MixedPoissonRegressor : The same models on arrays.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_mixed import GlmerRegressor
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"g": rng.integers(0, 20, 400).astype(str),
    ...                    "x": rng.normal(size=400), "t": rng.uniform(1, 3, 400)})
    >>> b = rng.normal(scale=0.5, size=20)[df["g"].astype(int)]
    >>> df["y"] = rng.poisson(df["t"] * np.exp(0.3 + 0.5 * df["x"] + b))
    >>> model = GlmerRegressor("y ~ x + offset(log(t)) + (1 | g)").fit(df)
    >>> model.fixed_effect_names_
    ['(Intercept)', 'x']
    """
    )

    _inner_class = MixedPoissonRegressor
    __metadata_request__predict = {"random_effects": True}

    def __sklearn_tags__(self):
        return self._formula_tags(super().__sklearn_tags__())

    _parameter_constraints: dict = {
        **_GlmerMixin._parameter_constraints,
        "family": [StrOptions({"poisson"})],
    }

    def __init__(self, formula, *, family="poisson", contrasts=None, new_groups="population",
                 nagq=1, solver="exact", max_iter=500, tol=1e-10):  # fmt: skip
        self.formula = formula
        self.contrasts = contrasts
        self.family = family
        self.new_groups = new_groups
        self.nagq = nagq
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Read the formula on ``X`` and fit lme4's Poisson mixed model.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_columns)
            The data, grouping columns and offset columns included.
        y : array-like of shape (n_samples,), default=None
            Counts; None reads the formula's response from ``X``.
        sample_weight : array-like of shape (n_samples,), default=None
            Prior weights.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        return self._fit_glmm(X, y, sample_weight)

    def _fit_response(self, design, data, features, response, groups, offset, sample_weight):
        if response is None:  # cbind(successes, failures)
            raise ValueError("a cbind(successes, failures) response is binomial: GlmerClassifier")
        self.estimator_.fit(features, numeric_response(response), groups=groups,
                            sample_weight=sample_weight, offset=offset)  # fmt: skip

    def predict(self, X, *, random_effects=None):
        """Expected counts on raw data (offset included).

        Parameters
        ----------
        X : DataFrame
            New rows with the formula's columns.
        random_effects : list or dict, default=None
            Which random effects to add (lme4's ``re.form``); ``[]``: none.

        Returns
        -------
        mu : ndarray of shape (n_samples,)
        """
        features, groups, offset = self._read_new(X, random_effects)
        return self.estimator_.predict(features, groups=groups, offset=offset,
                                       random_effects=random_effects)  # fmt: skip

    def score(self, X, y=None, sample_weight=None):
        """D² (fraction of Poisson deviance explained) on ``X``.

        Parameters
        ----------
        X : DataFrame
        y : array-like of shape (n_samples,), default=None
            Counts; None reads them from ``X``.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        response = self._response(self.design_, self._data(X, reset=False), y)
        features, groups, offset = self._read_new(X, None)
        return self.estimator_.score(features, response.to_numpy(dtype=float), groups=groups,
                                     sample_weight=sample_weight, offset=offset)  # fmt: skip
