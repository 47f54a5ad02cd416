"""MixedEffectsRegressor: random effects for the groups around any regressor.

The model is ``y = f(X) + Z b + e``, with ``f`` any scikit-learn regressor and
``Z b`` the random effects of the package's terms (crossed, nested, slopes),
``b ~ N(0, sigma^2 Lambda Lambda')``, ``e ~ N(0, sigma^2)``.  It is fitted by
backfitting, the EM scheme of MERF (Hajjem, Bellavance and Larocque 2014)
generalized to any random terms:

1. ``f`` is fitted to ``y - Z b`` (the response with the current group
   effects taken out);
2. the linear mixed model of ``r = y - f(X)`` (an intercept and the random
   terms; ``f(X)`` is its offset) is fitted by ML or REML: theta, sigma and
   the conditional modes ``b``;
3. repeat until the mixed model's criterion (``-2`` log-likelihood of ``r``)
   changes by less than ``tol``.

With a linear ``f`` (``LinearRegression``), step 1 and the modes of step 2 are
the block Gauss-Seidel iteration on Henderson's mixed-model equations, and at
its fixed point theta maximizes the likelihood with beta at its optimum: the
fixed point is the linear mixed model's ML fit (the envelope theorem: the
profiled likelihood's stationary points are those of the likelihood in theta
at the optimal beta).
"""

import inspect
import time
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context, clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import r2_score
from sklearn.model_selection import check_cv, cross_val_predict, train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    has_fit_parameter,
    validate_data,
)

from ._dask import refuse_dask
from ._groups import split_group_columns, validate_groups
from ._mixed import MixedLinearRegressor

__all__ = ["MixedEffectsRegressor"]


class MixedEffectsRegressor(RegressorMixin, BaseEstimator):
    """Any regressor for the features, random effects for the groups (MERF's EM).

    The prediction is ``f(X) + Z b``: a scikit-learn regressor ``f``
    (gradient boosting by default, a random forest, a neural network, a
    pipeline) for the features, plus the conditional modes (BLUPs) of the
    grouping factors' random effects: intercepts and optionally slopes,
    crossed or nested, as in :class:`MixedLinearRegressor`.  Unseen levels
    get the population value ``f(X)``.

    The fit alternates (backfitting; MERF's EM, Hajjem et al. 2014, for any
    random terms): ``f`` on ``y - Z b``, then the linear mixed model of
    ``y - f(X)`` (an intercept and the random terms) for the variance
    components and the modes, until the mixed model's ``-2``
    log-likelihood changes by less than ``tol``.  With
    ``LinearRegression`` as ``f`` it converges to
    :class:`MixedLinearRegressor`'s ML fit.

    Parameters
    ----------
    estimator : regressor, default=None
        The model of the features (cloned at each iteration).  None:
        ``HistGradientBoostingRegressor(early_stopping=True)`` seeded by
        ``random_state``: its number of trees adapts to the signal left after
        the group effects (with 100 fixed trees it was 2% less accurate than
        GPBoost on GPBoost's design, benchmarks/bench_mixed_effects.py).  Its
        ``fit`` receives ``sample_weight`` when given and supported.
    random_slopes : list or dict, default=None
        Numeric columns of ``X`` with a random slope per level, as in
        :class:`MixedLinearRegressor` (a list for every factor, or
        ``{factor: [columns]}``).  They are also features of ``f``.
    covariance : {"unstructured", "diagonal"} or dict, default="unstructured"
        The random effects' covariance per factor.
    method : {"ml", "reml"}, default="ml"
        Criterion of the mixed model of ``y - f(X)``.  ``"reml"`` counts only
        the mixed model's intercept as a fixed effect (``f`` has no degrees of
        freedom to count), so it is not the REML of a linear ``f``.
    group_cols : str or list of str, default=None
        Columns of the DataFrame ``X`` holding the grouping factors (taken
        out of the features), instead of passing ``groups``.
    new_groups : {"population", "error"}, default="population"
        Unseen levels at predict: the population value, or an error.
    cv : int, cross-validation generator or iterable, default=None
        None: the mixed model's offset is ``f``'s in-sample prediction (as
        MERF).  Else ``f(X)`` is predicted out of fold (``cv`` folds, one
        more fit of ``f`` per fold and iteration): a flexible ``f`` that
        fits its training rows' noise then leaves the variance components
        their share.  An integer is ``KFold`` (unshuffled); a splitter is
        used as given, a group splitter (``GroupKFold``) with the first
        grouping factor as its groups.
    max_iter : int, default=20
        Iterations (each fits ``f`` and the mixed model once).
    tol : float, default=1e-4
        Converged when the ``-2`` log-likelihood changes by at most
        ``tol * max(1, |value|)`` in an iteration, or has stopped moving:
        over its last ``n_iter_no_change + 2`` values the drift of a fitted
        line is within twice their scatter about it (a refitted tree
        ensemble moves it up and down around its limit).  0 runs
        ``max_iter`` iterations (or until early stopping).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows, score each iteration's
        prediction on them (R^2, with groups) and stop when it has not
        improved for ``n_iter_no_change`` iterations; the best iteration's
        models are kept.
    validation_fraction : float, default=0.1
        The rows held out by ``early_stopping``.
    n_iter_no_change : int, default=3
        Iterations without improvement of the validation score (with
        ``early_stopping``) or of the criterion (see ``tol``) before stopping.
    random_state : int, RandomState instance or None, default=None
        Seeds the default estimator, the validation split and ``cv``'s
        shuffling.
    verbose : int, default=0
        1: a line per iteration (criterion, change, validation score, time).

    Attributes
    ----------
    estimator_ : regressor
        ``f`` of the last (or, with early stopping, best) iteration.
    random_model_ : MixedLinearRegressor or None
        The mixed model of ``y - f(X)``; None when fitted without groups
        (then the prediction is ``f`` alone).
    objective_ : ndarray of shape (`n_iter_`,)
        The mixed model's ``-2`` log-likelihood (or REML criterion) per
        iteration: the history of the objective.
    validation_score_ : ndarray of shape (`n_iter_`,)
        R^2 on the held-out rows per iteration (empty without early stopping).
    n_iter_ : int
    converged_ : bool
        Whether the criterion converged or plateaued (see ``tol``).
    best_iteration_ : int
        The iteration whose models are kept (1-based).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)

    See Also
    --------
    MixedLinearRegressor : A linear fixed part, fitted exactly.
    MixedEffectsEncoder : Group shrinkage as features for any model.

    References
    ----------
    Hajjem, A., Bellavance, F. and Larocque, D. (2014). Mixed-effects random
    forest for clustered data. Journal of Statistical Computation and
    Simulation 84(6), 1313-1328.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mixed import MixedEffectsRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, size=(2000, 2))
    >>> groups = rng.integers(0, 50, 2000)
    >>> y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + rng.normal(size=50)[groups]
    >>> y = y + 0.3 * rng.normal(size=2000)
    >>> model = MixedEffectsRegressor(random_state=0).fit(X, y, groups=groups)
    >>> model.converged_, bool(model.random_effects_cov_["group"][0, 0] > 0.5)
    (True, True)
    >>> model.predict(X[:2], groups=groups[:2]).shape
    (2,)
    """

    __metadata_request__fit = {"groups": True}
    __metadata_request__predict = {"groups": True, "return_std": True}
    __metadata_request__score = {"groups": True}

    _parameter_constraints: dict = {
        "estimator": [None, HasMethods(["fit", "predict"])],
        "random_slopes": [None, list, tuple, dict],
        "covariance": [StrOptions({"unstructured", "diagonal"}), dict],
        "method": [StrOptions({"ml", "reml"})],
        "group_cols": [None, list, tuple, str],
        "new_groups": [StrOptions({"population", "error"})],
        "cv": [None, "cv_object"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, estimator=None, *, random_slopes=None, covariance="unstructured",
                 method="ml", group_cols=None, new_groups="population", cv=None,
                 max_iter=20, tol=1e-4, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=3, random_state=None, verbose=0):  # fmt: skip
        self.estimator = estimator
        self.random_slopes = random_slopes
        self.covariance = covariance
        self.method = method
        self.group_cols = group_cols
        self.new_groups = new_groups
        self.cv = cv
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, groups=None, sample_weight=None):
        """Fit ``f`` and the random effects by backfitting.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The features of ``f`` (and the ``group_cols`` columns, if set).
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,) or (n_samples, n_factors), default=None
            Grouping factors, one column per factor (crossed or nested).
            None fits ``f`` alone.
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to ``f`` (when its ``fit`` takes it) and to the mixed model
            (precision weights).

        Returns
        -------
        self : object
        """
        refuse_dask((X, y, groups), type(self).__name__)
        X, groups = split_group_columns(X, groups, self.group_cols)
        X, y = self._validate_xy(X, y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        rng = check_random_state(self.random_state)
        self._estimator_seed = rng.randint(np.iinfo(np.int32).max)
        self.objective_, self.validation_score_ = np.zeros(0), np.zeros(0)
        if groups is None:
            self.estimator_ = self._fit_f(X, y, sample_weight)
            self.random_model_ = None
            self.n_iter_, self.converged_, self.best_iteration_ = 1, True, 1
            return self
        groups = _as_frame(groups, len(y))
        train, valid = np.arange(len(y)), None
        if self.early_stopping:
            train, valid = train_test_split(
                train, test_size=self.validation_fraction, random_state=rng
            )
        rows = _Rows(X, y, groups, sample_weight, self._feature_names())
        self._backfit(rows, train, valid)
        return self

    def _backfit(self, rows, train, valid):
        """The EM iterations on the ``train`` rows; ``valid`` scores them."""
        data = rows.take(train)
        zb = np.zeros(len(train))  # Z b of the training rows (the modes, no intercept)
        objective, scores, best = [], [], (-np.inf, None)
        self.converged_ = False
        for iteration in range(1, self.max_iter + 1):
            start = time.perf_counter()
            f, offset = self._fit_f_with_offset(data, data.y - zb)
            mixed = self._fit_mixed(data, data.y - offset)
            fitted = mixed.predict(data.slopes(self._slope_names), groups=data.groups)
            zb = fitted - mixed.intercept_
            objective.append(-2.0 * mixed.log_likelihood_)
            self.estimator_, self.random_model_, self.n_iter_ = f, mixed, iteration
            change = objective[-1] - objective[-2] if iteration > 1 else np.inf
            if valid is not None:
                scores.append(self._validation_score(rows.take(valid)))
                if scores[-1] > best[0]:  # NaN (too few held-out rows) is never best
                    best = (scores[-1], (f, mixed, iteration))
            self._report(iteration, objective[-1], change, scores, time.perf_counter() - start)
            small = abs(change) <= self.tol * max(1.0, abs(objective[-1]))
            if self.tol > 0 and (small or _plateau(objective, self.tol, self.n_iter_no_change)):
                self.converged_ = True
                break
            best_iteration = 0 if best[1] is None else best[1][2]
            if valid is not None and iteration - best_iteration >= self.n_iter_no_change:
                break
        self.objective_, self.validation_score_ = np.asarray(objective), np.asarray(scores)
        self.best_iteration_ = self.n_iter_
        if best[1] is not None:
            self.estimator_, self.random_model_, self.best_iteration_ = best[1]

    def _fit_f(self, X, target, sample_weight):
        estimator = self._new_estimator()
        options = {}
        if sample_weight is not None and has_fit_parameter(estimator, "sample_weight"):
            options["sample_weight"] = sample_weight
        return estimator.fit(X, target, **options)

    def _fit_f_with_offset(self, data, target):
        """``f`` fitted to ``target`` on all the rows, and its in-sample or
        out-of-fold prediction (the mixed model's offset)."""
        f = self._fit_f(data.X, target, data.weights)
        if self.cv is None:
            return f, f.predict(data.X)
        # the splitter as given (an integer: KFold, unshuffled); group splitters
        # (GroupKFold) get the first grouping factor
        splitter = check_cv(self.cv)
        params = {}
        if data.weights is not None and has_fit_parameter(f, "sample_weight"):
            params["sample_weight"] = data.weights
        uses_groups = _split_requests(splitter).get("groups")
        groups = data.groups.iloc[:, 0] if uses_groups else None
        offset = cross_val_predict(self._new_estimator(), data.X, target, cv=splitter,
                                   groups=groups, params=params)  # fmt: skip
        return f, offset

    def _new_estimator(self):
        if self.estimator is None:
            return HistGradientBoostingRegressor(
                early_stopping=True, random_state=self._estimator_seed
            )
        return clone(self.estimator)

    def _fit_mixed(self, data, residual):
        mixed = MixedLinearRegressor(
            random_slopes=self._slope_spec, covariance=self.covariance, fixed_features=[],
            method=self.method, new_groups=self.new_groups,
        )  # fmt: skip
        return mixed.fit(data.slopes(self._slope_names), residual, groups=data.groups,
                         sample_weight=data.weights)  # fmt: skip

    def _validation_score(self, rows):
        prediction = self._predict_mean(rows.X, rows.groups)
        return r2_score(rows.y, prediction, sample_weight=rows.weights)

    def _report(self, iteration, value, change, scores, seconds):
        if not self.verbose:
            return
        line = (f"[{type(self).__name__}] iteration {iteration}: -2 log-likelihood "
                f"{value:.6f}, change {change:.3g}")  # fmt: skip
        if scores:
            line += f", validation R^2 {scores[-1]:.5f}"
        print(f"{line}, {seconds:.2f} s", flush=True)

    # -------------------------------------------------------------- predict
    def predict(self, X, groups=None, return_std=False):
        """``f(X)`` plus the conditional modes of the rows' seen levels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        groups : array-like, default=None
            Grouping factors as in ``fit``; unseen levels (and ``None``, with
            a warning for a model fitted with groups) get the population value.
        return_std : bool, default=False
            Also return the predictive standard deviation of a new observation:
            the residual, the mixed model's intercept and the level's
            conditional variance, plus ``f``'s own variance when its
            ``predict`` has ``return_std`` (``BayesianRidge``,
            ``GaussianProcessRegressor``; their std may already include
            their noise, which is then counted twice).  ``f``'s
            uncertainty is otherwise not included.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
        y_std : ndarray of shape (n_samples,)
            Only when ``return_std=True``.
        """
        check_is_fitted(self)
        refuse_dask((X, groups), type(self).__name__)
        X, groups = split_group_columns(X, groups, self.group_cols)
        X = self._validate_x(X)
        if groups is not None:
            groups = _as_frame(groups, _n_rows(X))
        return self._predict_mean(X, groups, return_std)

    def _predict_mean(self, X, groups, return_std=False):
        f_std = None
        if return_std and "return_std" in inspect.signature(self.estimator_.predict).parameters:
            f, f_std = self.estimator_.predict(X, return_std=True)
        else:
            f = self.estimator_.predict(X)
        f = np.asarray(f, dtype=float)
        if self.random_model_ is None:
            if return_std:
                raise ValueError(
                    "return_std needs a model fitted with groups (the residual variance "
                    "comes from the mixed model)"
                )
            return f
        slopes = _slopes_of(X, self._slope_names, self._feature_names())
        out = self.random_model_.predict(slopes, groups=groups, return_std=return_std)
        if not return_std:
            return f + out
        var = out[1] ** 2 + (0.0 if f_std is None else np.asarray(f_std) ** 2)
        return f + out[0], np.sqrt(var)

    def score(self, X, y, groups=None, sample_weight=None):
        """R^2 of ``predict(X, groups)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like, default=None
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        return r2_score(y, self.predict(X, groups=groups), sample_weight=sample_weight)

    # ------------------------------------------------------ mixed-model views
    @property
    def random_effects_(self):
        """dict of DataFrames: the conditional modes per factor (see
        :attr:`MixedLinearRegressor.random_effects_`)."""
        return self._random_model().random_effects_

    @property
    def random_effects_cov_(self):
        """dict of ndarrays: each factor's random-effect covariance."""
        return self._random_model().random_effects_cov_

    @property
    def residual_variance_(self):
        """float: sigma^2 of the mixed model of ``y - f(X)``."""
        return self._random_model().residual_variance_

    @property
    def log_likelihood_(self):
        """float: the mixed model's log-likelihood (or REML criterion) of ``y - f(X)``."""
        return self._random_model().log_likelihood_

    def _random_model(self):
        check_is_fitted(self)
        if self.random_model_ is None:
            raise AttributeError("fitted without groups: there are no random effects")
        return self.random_model_

    # -------------------------------------------------------------- internals
    def _validate_xy(self, X, y):
        X = self._validate_x(X, reset=True)
        y = column_or_1d(y, warn=True)
        try:
            y = np.asarray(y, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(
                f"Unknown label type: y must be numeric (a regression target), got {y.dtype} "
                f"values such as {y[:3].tolist()!r}"
            ) from None
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity")
        if _n_rows(X) != y.shape[0]:
            raise ValueError(f"X has {_n_rows(X)} samples but y has {y.shape[0]}")
        self._slope_spec = _slope_spec(self.random_slopes, self._feature_names())
        self._slope_names = _slope_names(self._slope_spec)
        return X, y

    def _validate_x(self, X, reset=False):
        """X checked for its number of rows and features and their names; its
        values are left to ``f`` (a pipeline may take strings, gradient
        boosting takes NaN)."""
        if not hasattr(X, "shape") or len(X.shape) != 2:
            X = validate_data(self, X, reset=reset, dtype=None, ensure_all_finite=False)
        else:
            validate_data(self, X, reset=reset, skip_check_array=True)
        if X.shape[0] < 1:
            raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum "
                             "of 1 is required.")  # fmt: skip
        return X

    def _feature_names(self):
        if hasattr(self, "feature_names_in_"):
            return [str(c) for c in self.feature_names_in_]
        return [f"x{i}" for i in range(self.n_features_in_)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # not `self.estimator or ...`: an unfitted ensemble's truth value reads estimators_
        estimator = HistGradientBoostingRegressor() if self.estimator is None else self.estimator
        inner = estimator.__sklearn_tags__()
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.string = inner.input_tags.string
        return tags


class _Rows:
    """The rows of a fit: features, response, groups and weights, and a subset."""

    def __init__(self, X, y, groups, weights, feature_names=None):
        self.X, self.y, self.groups, self.weights = X, y, groups, weights
        self.feature_names = feature_names

    def take(self, index):
        X = self.X.iloc[index] if hasattr(self.X, "iloc") else self.X[index]
        weights = None if self.weights is None else self.weights[index]
        groups = self.groups.iloc[index].reset_index(drop=True)
        return _Rows(X, self.y[index], groups, weights, self.feature_names)

    def slopes(self, names):
        return _slopes_of(self.X, names, self.feature_names)


def _split_requests(splitter):
    """The metadata a splitter's ``split`` asks for (``{"groups": True}`` for
    GroupKFold and its kin; nothing for KFold or an iterable of folds)."""
    try:
        return splitter.get_metadata_routing().split.requests
    except AttributeError:
        return {}


def _plateau(objective, tol, patience):
    """Whether the criterion has stopped moving: over its last ``patience + 2``
    values, the drift of a least-squares line is within twice their scatter
    about it (or ``tol`` relative).  A smooth ``f`` converges by the change;
    a tree ensemble refitted to a changing target moves the criterion up and
    down around its limit, while a steady climb or fall (a forest's in-sample
    fit settling over a dozen iterations) is a trend, not a plateau."""
    window = patience + 2
    if len(objective) < window:
        return False
    values = np.asarray(objective[-window:], dtype=float)
    steps = np.arange(window, dtype=float)
    slope, intercept = np.polyfit(steps, values, 1)
    scatter = np.std(values - (slope * steps + intercept), ddof=2) if window > 2 else 0.0
    drift = abs(slope) * (window - 1)
    return bool(drift <= max(2.0 * scatter, tol * abs(values.mean())))


def _slope_spec(random_slopes, feature_names):
    """``random_slopes`` with column positions (integers) replaced by the
    feature names, checked against them."""

    def name(column):
        if isinstance(column, Integral) and not isinstance(column, bool):
            if not 0 <= column < len(feature_names):
                raise ValueError(
                    f"random_slopes position {column} is not a column of X "
                    f"({len(feature_names)} features)"
                )
            return feature_names[column]
        if str(column) not in feature_names:
            raise ValueError(f"random_slopes {column!r} is not a column of X: {feature_names}")
        return str(column)

    if random_slopes is None:
        return None
    if isinstance(random_slopes, dict):
        return {factor: [name(c) for c in columns] for factor, columns in random_slopes.items()}
    return [name(c) for c in random_slopes]


def _slope_names(random_slopes):
    if random_slopes is None:
        return []
    if isinstance(random_slopes, dict):
        names = [c for columns in random_slopes.values() for c in columns]
    else:
        names = list(random_slopes)
    return list(dict.fromkeys(str(c) for c in names))


def _slopes_of(X, names, feature_names):
    """The random slopes' columns of ``X`` as a float DataFrame (no columns: none)."""
    n = _n_rows(X)
    if not names:
        return np.empty((n, 0))
    index = [list(feature_names).index(c) for c in names]
    values = X.iloc[:, index].to_numpy() if hasattr(X, "iloc") else np.asarray(X)[:, index]
    return pd.DataFrame(values.astype(float), columns=names)


def _as_frame(groups, n):
    """Groups as a DataFrame with a fresh index (rows align with X by position),
    checked and named as every estimator of the package reads them."""
    names, labels = validate_groups(groups, n)
    return pd.DataFrame(dict(zip(names, labels, strict=True)))


def _n_rows(X):
    return X.shape[0]
