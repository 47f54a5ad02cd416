"""The scikit-learn contract shared by the mixed-model regressors.

:class:`_BaseMixedRegressor` validates the input, reads the grouping factors
(from ``groups`` or the ``group_cols`` of ``X``) and the prior weights,
builds and reduces the model's rows once (:mod:`._design`), fits the core's
:class:`~sklearn_mixed.core.LinearMixedModel` and keeps it as ``model_``,
stores the fitted attributes, predicts (with ``return_std`` and any subset of
the random effects), scores, requests ``groups`` as metadata and reports.
A subclass says which random effects each grouping factor has and which
solver fits them, through two hooks:

- ``_random_specs(factor_names, feature_names)``: a
  :class:`~sklearn_mixed._groups.RandomSpec` per grouping factor;
- ``_solver(n_levels)`` and ``_fit_options()``: the solver and its settings.
"""

import copy
import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import _results
from ._dask import (
    fit_partitions,
    is_dask_collection,
    lazy_predict,
    partition_score,
    partitions,
    refuse_dask,
)
from ._design import NotIdentifiable, chunk_weights, drop_zero_weights, fixed_columns
from ._grouped import GroupedModelMixin, split_features_and_groups
from ._groups import INTERCEPT, split_group_columns, validate_groups
from ._reading import ReadingMixin
from ._stream import RowStream
from .core import LinearMixedModel
from .exceptions import ExactFitWarning, NotYetFittedWarning, SingularFitWarning, user_stacklevel

__all__ = ["INTERCEPT"]


class _BaseMixedRegressor(GroupedModelMixin, ReadingMixin, RegressorMixin, BaseEstimator):
    """Base class of the linear mixed-model regressors (not for direct use).

    Subclasses set ``_parameter_constraints`` (extending the shared ones),
    ``__init__`` and the hooks ``_random_terms`` and, optionally,
    ``_fit_terms``.  The parameters ``method``, ``fit_intercept``,
    ``group_cols``, ``new_groups``, ``max_iter`` and ``tol`` are shared;
    ``fixed_features`` and ``fixed_sigma`` are read when a subclass has them.
    """

    __metadata_request__fit = {"groups": True}
    # return_std is requested too, so that a routed Pipeline.predict(X, return_std=True)
    # reaches this estimator without a set_predict_request call.
    __metadata_request__predict = {"groups": True, "return_std": True}
    __metadata_request__score = {"groups": True}

    _parameter_constraints: dict = {
        "method": [StrOptions({"reml", "ml"})],
        "fit_intercept": ["boolean"],
        "group_cols": [None, list, tuple, str],
        "new_groups": [StrOptions({"population", "error"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
    }

    # Advice appended to the fit warnings; subclasses without slopes override it.
    _convergence_advice = (
        "Increase max_iter, standardize the features "
        "(e.g. StandardScaler) so slopes are on comparable scales, or "
        "simplify the random effects (covariance='diagonal', fewer slopes)."
    )
    _singular_advice = (
        "consider removing the term, using covariance='diagonal', or a simpler model."
    )

    # ------------------------------------------------------------------ hooks
    def _random_specs(self, factor_names, feature_names):
        """``{factor: RandomSpec}``: each grouping factor's random effects."""
        raise NotImplementedError

    def _solver(self, n_levels):
        """``"exact"`` or ``"iterative"`` for factors with these numbers of levels."""
        return "exact"

    def _fit_options(self, solver):
        """Keyword arguments of :meth:`LinearMixedModel.fit`."""
        return {"max_iter": self.max_iter, "tol": self.tol}

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features (and the ``group_cols`` columns, if set): the fixed
            effects (``fixed_features``, all by default) and the covariates
            of the random effects.
        y : array-like of shape (n_samples,)
            Response.
        groups : array-like of shape (n_samples,) or (n_samples, n_factors), default=None
            Grouping factors, one column per factor (crossed or nested; pass a
            nested factor as its combined label, like lme4's ``a:b``).  Names
            come from DataFrame columns or the Series name.  ``None`` fits a
            linear model without random effects.
        sample_weight : array-like of shape (n_samples,), default=None
            Prior (precision) weights, lme4's ``weights``: the residual
            variance of row ``i`` is ``sigma^2 / w_i``.  Rows of weight 0 are
            left out (as if absent).  Not frequency weights: doubling a row's
            weight is not the same as repeating the row.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self.__dict__.pop("_stream", None)  # fit starts over
        if is_dask_collection(X, y, groups, sample_weight):
            return self._fit_dask(X, y, groups, sample_weight)
        X, groups = split_features_and_groups(X, groups, self.group_cols)
        # An intercept-only model (lme4's y ~ 1 + (1 | g)) has X with 0 columns;
        # without groups it is a linear model, which needs a feature.
        X, y = self._validate_fit_data(X, y, 0 if groups is not None else 1)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        X, y, groups, weights = drop_zero_weights(X, y, groups, sample_weight)
        fixed_sigma = getattr(self, "fixed_sigma", None)
        design = self._build_design(X, y, groups, weights, fixed_sigma=fixed_sigma)
        self._stream = RowStream.of_design(design)
        return self._fit_design(design)

    def _fit_design(self, design):
        """Fit the core's model to a :class:`~._design.FittedDesign`, store it."""
        fixed_sigma = getattr(self, "fixed_sigma", None)
        solver = self._solver([t.n_levels for t in design.terms])
        model = LinearMixedModel(
            design.reduction, design.terms, method=self.method, fixed_sigma=fixed_sigma,
            solver=solver, data=design.rows,
        )  # fmt: skip
        self.model_ = model.fit(**self._fit_options(solver))
        self._store_fit(design)
        self._warn_about_fit(model.result)
        return self

    def _new_stream(self, factor_names, levels=None):
        """The :class:`~._stream.RowStream` of this model for these factors."""
        specs, fixed = self._model_layout(factor_names)
        columns, names = fixed_columns(fixed, self.fit_intercept, self._feature_names())
        return RowStream(factor_names, specs, columns, names, levels)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, groups=None, sample_weight=None):
        """Fit to one more chunk of rows: the model of all chunks so far.

        For data that come in pieces (files, database cursors, Parquet row
        groups, ``pandas.read_csv(chunksize=...)``).  Each call reduces the
        chunk to its cross-products and adds them to those of the earlier
        chunks (or of ``fit``), then refits on the sums: after any sequence
        of calls the model is ``fit`` on the concatenated rows (the
        reduction is a sum; the estimates agree to the optimizer's
        precision).  Levels new in a later chunk are added.  Memory is that
        of the reduced system, not of the rows, which are not kept: the
        row-level diagnostics (``residuals``, ``leverage``, the bootstrap)
        need a model fitted with ``fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features of the chunk, with the columns of the first call.
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,) or (n_samples, n_factors), default=None
            The chunk's labels of every grouping factor of the first call.
        sample_weight : array-like of shape (n_samples,), default=None
            Prior weights, as in ``fit``.

        Returns
        -------
        self : object
            The estimator fitted to all chunks so far; while they cannot
            identify the model yet (a factor with one level so far, fewer
            rows than effects) a warning says so and the estimator stays
            unfitted until a later chunk.
        """
        refuse_dask((X, y, groups, sample_weight), "partial_fit")
        stream = getattr(self, "_stream", None)
        X, groups = split_features_and_groups(X, groups, self.group_cols)
        X, y = self._validate_fit_data(
            X, y, 0 if groups is not None else 1, reset=stream is None, ensure_min_samples=0
        )
        if sample_weight is not None:  # a chunk of weight 0 adds nothing
            sample_weight = chunk_weights(sample_weight, X.shape[0])
        X, y, groups, weights = drop_zero_weights(X, y, groups, sample_weight)
        names, labels = [], []
        if groups is not None:
            expected = None if stream is None else stream.factor_names
            names, labels = validate_groups(groups, X.shape[0], expected_names=expected)
        if stream is None:
            stream = self._stream = self._new_stream(names)
        elif names != stream.factor_names:
            raise ValueError(
                f"partial_fit got grouping factors {names!r}; the first chunk had "
                f"{stream.factor_names!r}. Pass every factor with every chunk."
            )
        stream.add(X, y, labels, weights)
        return self._fit_stream(stream)

    def _fit_stream(self, stream):
        try:
            design = stream.design(fixed_sigma=getattr(self, "fixed_sigma", None))
        except NotIdentifiable as error:
            warnings.warn(
                f"the chunks so far do not identify the model yet: {error} The rows are "
                "reduced and kept; the model is fitted after the chunk that identifies it.",
                NotYetFittedWarning,
                stacklevel=user_stacklevel(),
            )
            self._forget_fit()
            return self
        return self._fit_design(design)

    def __sklearn_is_fitted__(self):
        # partial_fit keeps n_features_in_ while the chunks do not identify the model yet
        return hasattr(self, "model_")

    def _for_workers(self):
        """A copy that predicts as this estimator, without the rows and sums (sent
        to every Dask worker that predicts)."""
        light = copy.copy(self)
        light.__dict__.pop("_stream", None)
        light.model_ = self.model_.without_data()
        return light

    def _forget_fit(self):
        """Remove the fitted attributes of an earlier call (not the stream)."""
        for name in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            if name not in ("n_features_in_", "feature_names_in_"):
                delattr(self, name)

    def _fit_dask(self, X, y, groups, sample_weight):
        """``fit`` on Dask collections (:mod:`._dask`): two passes, the fit on the client."""
        X, groups = split_group_columns(X, groups, self.group_cols)
        if hasattr(X, "columns"):
            empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in X.dtypes.items()})
            feature_names = [str(c) for c in X.columns]
        else:
            empty, feature_names = np.empty((0, X.shape[1])), None
        validate_data(self, empty, skip_check_array=True)
        if groups is None and self.n_features_in_ == 0:
            raise ValueError("X has 0 features and there are no groups: nothing to fit.")
        parts = partitions(X, y, groups, sample_weight)
        weighted = sample_weight is not None
        stream = fit_partitions(
            parts, groups, weighted, self._new_stream, self.n_features_in_, feature_names
        )
        design = stream.design(fixed_sigma=getattr(self, "fixed_sigma", None))
        self._stream = stream.reopened()  # partial_fit may add levels later
        return self._fit_design(design)

    def _validate_fit_data(self, X, y, min_features, reset=True, ensure_min_samples=1):
        """``validate_data`` of ``X`` and ``y``; for finite numeric arrays and
        DataFrames only its feature-name bookkeeping (the array checks would
        convert them to what they are: ~0.6 ms of a 3 ms fit)."""
        features, target = _finite_numeric(X, 2), _finite_numeric(y, 1)
        if (
            features is not None
            and target is not None
            and features.shape[0] == target.shape[0] > 0
            and features.shape[1] >= min_features
        ):
            validate_data(self, X, skip_check_array=True, reset=reset)
            return features, target
        return validate_data(
            self, X, y, y_numeric=True, dtype=np.float64, ensure_min_features=min_features,
            reset=reset, ensure_min_samples=ensure_min_samples,
        )  # fmt: skip

    def _store_fit(self, design):
        fit = self.model_.result
        self._store_fitted_model(design, fit)
        self._design_names = list(design.all_names)
        self.residual_variance_ = fit.sigma2

    # The DataFrame attributes are views of the fitted arrays, built when read
    # (as scikit-learn's ``feature_importances_``): a small fit costs no pandas.
    @property
    def fixed_effects_(self):
        """DataFrame: estimate, standard error and t value per fixed effect."""
        check_is_fitted(self)
        fit = self.model_.result
        return _results.fixed_effects_table(self.fixed_effect_names_, fit.beta, fit.beta_cov)

    @property
    def variance_components_(self):
        """DataFrame: variance and standard deviation per (factor, term) and residual."""
        check_is_fitted(self)
        terms = self.model_.terms
        labels = [(t.name, tuple(t.covariate_names)) for t in terms]
        term_cov = [self.random_effects_cov_[t.name] for t in terms]
        return _results.variance_components_table(labels, term_cov, self.residual_variance_)

    def _warn_about_fit(self, fit):
        if fit.exact_fit:
            warnings.warn(
                "the fixed effects fit the response exactly (a constant response, say): the "
                "residual variance and the random-effect variances are 0 and the likelihood "
                "is unbounded (log_likelihood_ = inf). Check the response; lme4 reports such "
                "fits with convergence warnings.",
                ExactFitWarning,
                stacklevel=user_stacklevel(),
            )
            return
        if not fit.converged:
            warnings.warn(
                f"The optimizer did not converge after {fit.n_iter} iterations "
                f"({fit.message}). {self._convergence_advice}",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )
        if fit.singular:
            zero = _results.zero_variance_terms(self.model_.terms, fit.term_cov, fit.sigma2)
            warnings.warn(
                "boundary (singular) fit: the random-effects covariance is singular "
                f"({', '.join(zero) or 'a correlation of +-1'}). The data do not support "
                f"this variance component: {self._singular_advice} See isSingular in lme4.",
                SingularFitWarning,
                stacklevel=user_stacklevel(),
            )

    # -------------------------------------------------------------- predict
    def predict(self, X, groups=None, return_std=False, random_effects=None):
        """Predict with the fixed effects plus the conditional modes of seen levels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        groups : array-like of shape (n_samples,) or (n_samples, n_factors), default=None
            Grouping factors as in ``fit``.  Seen levels add their conditional
            modes; unseen levels add 0 for that factor (``new_groups=
            "population"``) or raise (``"error"``).  A DataFrame (or named
            Series) with only some of the fitted factors uses those and the
            population effect for the others (lme4's ``re.form = ~(1 | g)``).
            Without groups the prediction is the population (fixed-effects
            only) one, with a warning when the model was fitted with groups.
        return_std : bool, default=False
            Also return the predictive standard deviation of a new observation
            (see the class Notes for the formula).
        random_effects : list or dict, default=None
            Which random effects to add (lme4's ``re.form``): ``None`` all;
            a list of factor names, those factors' (``[]``: none, lme4's
            ``re.form = NA``); a dict ``{factor: [coefficient names]}``, only
            those coefficients of each factor listed, e.g.
            ``{"Subject": ["(Intercept)"]}`` for lme4's ``re.form =
            ~(1 | Subject)`` on a ``(Days | Subject)`` model.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
        y_std : ndarray of shape (n_samples,)
            Only when ``return_std=True``.
        """
        check_is_fitted(self)
        if is_dask_collection(X, groups):
            options = {"return_std": return_std, "random_effects": random_effects}
            return lazy_predict(self._for_workers(), X, groups, options)
        X, groups = split_features_and_groups(X, groups, self.group_cols)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_min_features=0)
        mean = X @ self.coef_ + self.intercept_
        if return_std:
            # sigma^2 + x' Var(beta) x, then each factor's z' V z below
            design = np.column_stack(
                [np.ones(X.shape[0]) if c is None else X[:, c] for c in self._fixed_columns]
            ) if self._fixed_columns else np.zeros((X.shape[0], 0))  # fmt: skip
            var = self.residual_variance_ + np.einsum(
                "ij,jk,ik->i", design, self.fixed_effects_cov_, design
            )
        fit = self.model_.result
        for index, z, seen, level in self._random_effect_rows(X, groups, random_effects):
            t = self.model_.terms[index]
            b = np.where(seen, fit.b[index][level], 0.0)
            mean += np.einsum("ik,ik->i", z, b)
            if return_std:
                var += _random_effect_variance(
                    z, seen, fit.conditional_cov[index][level], self.random_effects_cov_[t.name]
                )
        if return_std:
            return mean, np.sqrt(var)
        return mean

    def score(self, X, y, groups=None, sample_weight=None):
        """R^2 of ``predict(X, groups)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like, default=None
            Grouping factors as in ``predict``.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        if is_dask_collection(X, y, groups, sample_weight):
            check_is_fitted(self)
            return partition_score(self._for_workers(), X, y, groups, sample_weight)
        return r2_score(y, self.predict(X, groups=groups), sample_weight=sample_weight)


def _finite_numeric(data, ndim):
    """``data`` as a float64 array when it is an ndarray, DataFrame or Series of
    ``ndim`` dimensions with real numbers, all finite; else None."""
    if isinstance(data, (pd.DataFrame, pd.Series)):
        data = data.to_numpy()
    elif not isinstance(data, np.ndarray):
        return None
    if data.ndim != ndim or data.dtype.kind not in "fiu":
        return None
    data = np.asarray(data, dtype=np.float64)
    return data if np.isfinite(data).all() else None


def _random_effect_variance(z, seen, conditional, Sigma):
    """``z' V z`` per row: ``Var(b_j | y)`` for the coefficients predicted with the
    level's mode, the factor's ``Sigma`` for the others (an unseen level, or a
    coefficient left out); covariances between the two kinds are neglected."""
    out = np.zeros(z.shape[0])
    rows = seen.any(axis=1)
    if rows.any():
        zs = np.where(seen[rows], z[rows], 0.0)
        out[rows] += np.einsum("ik,ikl,il->i", zs, conditional[rows], zs)
    zu = np.where(seen, 0.0, z)
    out += np.einsum("ik,kl,il->i", zu, Sigma, zu)
    return out
