"""The scikit-learn contract shared by the mixed-model regressors.

:class:`_BaseMixedRegressor` validates the input, reads the grouping factors
(from ``groups`` or the ``group_cols`` of ``X``), stores the fitted attributes,
predicts (with ``return_std``), scores, requests ``groups`` as metadata and
reports (``summary``, ``effect_ranges``, the fit warnings).  A subclass says
which random terms a fit has and how it is computed, through two hooks:

- ``_random_terms(X, groups)``: the :class:`~sklearn_mixed.core.RandomTerm` of
  each grouping factor, and the feature columns of each factor's random slopes;
- ``_fit_terms(design, y, terms)``: the fit, an :class:`~sklearn_mixed.core.LMMFit`
  (by default :func:`~sklearn_mixed.core.fit_lmm`, Henderson's equations).
"""

import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _results
from ._groups import split_group_columns, validate_groups
from ._reading import ReadingMixin
from .core import encode_factor, fit_lmm, nesting_pairs, rank_deficient_columns
from .exceptions import PopulationPredictionWarning, SingularFitWarning

__all__ = ["INTERCEPT"]

INTERCEPT = "(Intercept)"


class _BaseMixedRegressor(ReadingMixin, RegressorMixin, BaseEstimator):
    """Base class of the linear mixed-model regressors (not for direct use).

    Subclasses set ``_parameter_constraints`` (extending the shared ones),
    ``__init__`` and the hooks ``_random_terms`` and, optionally,
    ``_fit_terms``.  The parameters ``method``, ``fit_intercept``,
    ``group_cols``, ``new_groups``, ``max_iter`` and ``tol`` are shared.
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
    def _random_terms(self, X, groups):
        """``(terms, slopes)``: a RandomTerm per grouping factor, in the order
        given, and ``{factor: [column indices of its random slopes]}``."""
        raise NotImplementedError

    def _fit_terms(self, design, y, terms):
        """The LMMFit of ``y ~ design + terms``: Henderson's equations."""
        return fit_lmm(design, y, terms, method=self.method, max_iter=self.max_iter, tol=self.tol)

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Fixed-effect features (and the ``group_cols`` columns, if set).
        y : array-like of shape (n_samples,)
            Response.
        groups : array-like of shape (n_samples,) or (n_samples, n_factors), default=None
            Grouping factors, one column per factor (crossed or nested; pass a
            nested factor as its combined label, like lme4's ``a:b``).  Names
            come from DataFrame columns or the Series name.  ``None`` fits a
            linear model without random effects.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X, groups = _split_features_and_groups(X, groups, self.group_cols)
        # An intercept-only model (lme4's y ~ 1 + (1 | g)) has X with 0 columns;
        # without groups it is a linear model, which needs a feature.
        X, y = validate_data(
            self,
            X,
            y,
            y_numeric=True,
            dtype=np.float64,
            ensure_min_features=0 if groups is not None else 1,
        )
        design = self._fixed_design(X)
        # the features are a view of the design from here on: one copy of X
        X = design[:, 1:] if self.fit_intercept else design
        self._check_full_rank(design)
        terms, slopes = self._random_terms(X, groups)
        fit = self._fit_terms(design, y, terms)
        self._store_fit(fit, terms, slopes)
        # references (no copies) for refits: intervals, tests and shrinkage
        self._training = TrainingData(design, y, terms)
        self._warn_about_fit(fit)
        return self

    def _feature_names(self):
        if hasattr(self, "feature_names_in_"):
            return [str(c) for c in self.feature_names_in_]
        return [f"x{i}" for i in range(self.n_features_in_)]

    def _fixed_design(self, X):
        if self.fit_intercept:
            return np.column_stack([np.ones(X.shape[0]), X])
        return X

    def _fixed_names(self):
        return ([INTERCEPT] if self.fit_intercept else []) + self._feature_names()

    def _check_full_rank(self, design):
        if design.shape[1] == 0:
            raise ValueError(
                "the model has no fixed effects: X has no columns and fit_intercept=False. "
                "Models without fixed effects (lme4's y ~ 0 + (1 | g)) are not supported; "
                "set fit_intercept=True or pass features."
            )
        if design.shape[0] <= design.shape[1]:
            raise ValueError(
                f"got n_samples={design.shape[0]} for {design.shape[1]} fixed effects; "
                "the model needs more rows than fixed effects."
            )
        bad = rank_deficient_columns(design.T @ design)
        if bad:
            names = [self._fixed_names()[j] for j in bad]
            raise ValueError(
                f"X is rank deficient: column(s) {names!r} are constant or linear "
                "combinations of the others (with the intercept); drop them."
            )

    def _store_fit(self, fit, terms, slopes):
        beta = fit.beta
        if self.fit_intercept:
            self.intercept_, self.coef_ = float(beta[0]), beta[1:].copy()
        else:
            self.intercept_, self.coef_ = 0.0, beta.copy()
        self.fixed_effects_cov_ = fit.beta_cov
        self.residual_variance_ = fit.sigma2
        self.theta_ = fit.theta
        self.group_names_ = [t.name for t in terms]
        self.n_groups_ = {t.name: t.n_levels for t in terms}
        self.nested_ = nesting_pairs(self.group_names_, [t.codes for t in terms])
        self.random_slope_names_ = {t.name: list(t.covariate_names[1:]) for t in terms}
        self.covariance_structures_ = {t.name: t.structure for t in terms}
        self.random_effects_cov_ = {t.name: c for t, c in zip(terms, fit.term_cov, strict=True)}
        self.random_effects_conditional_cov_ = {
            t.name: c for t, c in zip(terms, fit.conditional_cov, strict=True)
        }
        # arrays behind the DataFrame attributes, which are built on access
        self._beta = beta
        self._modes = {t.name: b for t, b in zip(terms, fit.b, strict=True)}
        self._term_labels = [(t.name, tuple(t.covariate_names)) for t in terms]
        self._levels = {t.name: pd.Index(t.levels) for t in terms}
        self._slope_index = slopes
        self.log_likelihood_ = fit.log_likelihood
        self.deviance_ = fit.deviance
        self.aic_, self.bic_ = fit.aic, fit.bic
        self.n_iter_, self.converged_, self.singular_ = fit.n_iter, fit.converged, fit.singular
        self.n_obs_ = fit.n

    # The DataFrame attributes are views of the fitted arrays, built when read
    # (as scikit-learn's ``feature_importances_``): a small fit costs no pandas.
    @property
    def fixed_effects_(self):
        """DataFrame: estimate, standard error and t value per fixed effect."""
        return _results.fixed_effects_table(
            self._fixed_names(), self._beta, self.fixed_effects_cov_
        )

    @property
    def random_effects_(self):
        """dict of str -> DataFrame: conditional modes, one row per level."""
        return {
            name: pd.DataFrame(
                self._modes[name],
                index=self._levels[name].rename(name),
                columns=list(covariates),
            )
            for name, covariates in self._term_labels
        }

    @property
    def variance_components_(self):
        """DataFrame: variance and standard deviation per (factor, term) and residual."""
        term_cov = [self.random_effects_cov_[name] for name, _ in self._term_labels]
        return _results.variance_components_table(
            self._term_labels, term_cov, self.residual_variance_
        )

    def _warn_about_fit(self, fit):
        if not fit.converged:
            warnings.warn(
                f"The optimizer did not converge after {fit.n_iter} iterations "
                f"({fit.message}). {self._convergence_advice}",
                ConvergenceWarning,
                stacklevel=4,
            )
        if fit.singular:
            zero = _results.zero_variance_terms(self.variance_components_)
            warnings.warn(
                "boundary (singular) fit: the random-effects covariance is singular "
                f"({', '.join(zero) or 'a correlation of +-1'}). The data do not support "
                f"this variance component: {self._singular_advice} See isSingular in lme4.",
                SingularFitWarning,
                stacklevel=4,
            )

    # -------------------------------------------------------------- predict
    def predict(self, X, groups=None, return_std=False):
        """Predict with the fixed effects plus the conditional modes of seen levels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        groups : array-like of shape (n_samples,) or (n_samples, n_factors), default=None
            Grouping factors as in ``fit``.  Seen levels add their conditional
            modes; unseen levels add 0 for that factor (``new_groups=
            "population"``) or raise (``"error"``).  Without groups the
            prediction is the population (fixed-effects) one, with a warning
            when the model was fitted with groups.
        return_std : bool, default=False
            Also return the predictive standard deviation of a new observation
            (see the class Notes for the formula).

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
        y_std : ndarray of shape (n_samples,)
            Only when ``return_std=True``.
        """
        check_is_fitted(self)
        X, groups = _split_features_and_groups(X, groups, self.group_cols)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_min_features=0)
        design = self._fixed_design(X)
        mean = X @ self.coef_ + self.intercept_
        if return_std:
            # sigma^2 + x' Var(beta) x, then each factor's z' V z below
            var = self.residual_variance_ + np.einsum(
                "ij,jk,ik->i", design, self.fixed_effects_cov_, design
            )
        codes = self._predict_codes(X.shape[0], groups)
        for name, level in codes.items():
            z = np.column_stack([np.ones(X.shape[0])] + [X[:, j] for j in self._slope_index[name]])
            seen = level >= 0
            b = self._modes[name]
            mean[seen] += np.einsum("ik,ik->i", z[seen], b[level[seen]])
            if return_std:
                # seen level: Var(b_j | y); unseen level: the factor's Sigma
                V = np.where(
                    seen[:, None, None],
                    self.random_effects_conditional_cov_[name][np.maximum(level, 0)],
                    self.random_effects_cov_[name][None, :, :],
                )
                var += np.einsum("ik,ikl,il->i", z, V, z)
        if return_std:
            return mean, np.sqrt(var)
        return mean

    def _predict_codes(self, n_samples, groups):
        """Level index per factor (-1 for unseen levels)."""
        if groups is None:
            if self.group_names_:
                warnings.warn(
                    f"{type(self).__name__} was fitted with grouping factors "
                    f"{self.group_names_!r} but predict got no groups: returning the "
                    "population (fixed-effects only) prediction. Pass groups=... (or "
                    "set group_cols) to use the group-specific effects.",
                    PopulationPredictionWarning,
                    stacklevel=3,
                )
            return {name: np.full(n_samples, -1) for name in self.group_names_}
        if not self.group_names_:
            raise ValueError(
                "this model was fitted without groups, so it has no random effects to "
                "predict with; pass groups to fit as well."
            )
        names, labels = validate_groups(groups, n_samples, expected_names=self.group_names_)
        codes = {}
        for name, lab in zip(names, labels, strict=True):
            code = self._levels[name].get_indexer(pd.Index(lab))
            if self.new_groups == "error" and np.any(code < 0):
                unseen = pd.unique(np.asarray(lab)[code < 0]).tolist()
                raise ValueError(
                    f"grouping factor {name!r} has {len(unseen)} level(s) not seen in fit: "
                    f"{list(unseen[:10])!r}{' ...' if len(unseen) > 10 else ''}. Set "
                    "new_groups='population' to predict them with the population effect."
                )
            if len(code) and np.all(code < 0):
                self._warn_if_label_types_differ(name, lab)
            codes[name] = code
        return codes

    def _warn_if_label_types_differ(self, name, labels):
        """No level seen at all and labels of another kind: a likely mix-up (308 vs "308")."""
        fit_kind = pd.api.types.infer_dtype(self._levels[name], skipna=True)
        new_kind = pd.api.types.infer_dtype(labels, skipna=True)
        if fit_kind != new_kind:
            warnings.warn(
                f"none of the labels of grouping factor {name!r} were seen in fit: fit "
                f"labels are {fit_kind} (e.g. {self._levels[name][0]!r}), predict got "
                f"{new_kind} (e.g. {labels[0]!r}). All rows get the population effect for "
                f"{name!r}; convert the labels to the type used in fit if they are the same "
                "groups.",
                PopulationPredictionWarning,
                stacklevel=4,
            )

    def get_metadata_routing(self):
        """Metadata requests: ``groups`` for fit, predict and score by default.

        With ``group_cols`` set the groups come from ``X``, so ``groups`` is
        not requested (a ``GroupKFold`` may still consume it), unless the
        requests were set explicitly with ``set_*_request``.

        Returns
        -------
        routing : MetadataRequest
        """
        request = super().get_metadata_routing()
        if self.group_cols is not None and not hasattr(self, "_metadata_request"):
            for method in ("fit", "predict", "score"):
                getattr(request, method).add_request(param="groups", alias=False)
        return request

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
        return r2_score(y, self.predict(X, groups=groups), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _split_features_and_groups(X, groups, group_cols):
    """Features and grouping factors; a DataFrame without columns becomes (n, 0)."""
    X, groups = split_group_columns(X, groups, group_cols)
    if hasattr(X, "columns") and len(X.columns) == 0:
        X = np.empty((len(X), 0))
    return X, groups


def encode_factors(names, labels, n_samples):
    """``(codes, levels)`` of each grouping factor, checked to be a usable factor."""
    encoded = []
    for name, lab in zip(names, labels, strict=True):
        codes, levels = _encode_labels(lab)
        _check_level_count(name, len(levels), n_samples)
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


@dataclass(frozen=True)
class TrainingData:
    """What ``fit`` solved, kept by reference for refits and diagnostics.

    ``design`` is the fixed-effects model matrix (with the intercept column
    when ``fit_intercept``), ``y`` the response and ``terms`` the
    :class:`~sklearn_mixed.core.RandomTerm` list of the fit, in the order of
    ``group_names_``.  ``core.fit_lmm(design, y, terms, method=...)`` refits
    the same model.
    """

    design: np.ndarray
    y: np.ndarray
    terms: list


def _check_level_count(name, n_levels, n_samples):
    if n_levels < 2:
        raise ValueError(
            f"grouping factor {name!r} has a single level; a random effect needs at "
            "least 2 levels to estimate its variance. Remove the factor."
        )
    if n_levels >= n_samples:
        raise ValueError(
            f"grouping factor {name!r} has {n_levels} levels for {n_samples} "
            "observations; its random intercept cannot be told apart from the "
            "residual. The number of levels must be smaller than the number of rows."
        )
