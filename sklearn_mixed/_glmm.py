"""The GLMM estimators' shared contract: fit, the linear predictor, reports.

:class:`_BaseMixedGLM` validates the input, reads the grouping factors and
builds the model's rows (:mod:`._design`) as the linear regressors do, fits
the core's :class:`~sklearn_mixed.core.glmm.GeneralizedLinearMixedModel`
(kept as ``model_``) and stores the fitted attributes.  Subclasses give the
family, how ``y`` is read, and what ``predict`` returns.
"""

import warnings
from dataclasses import replace
from numbers import Integral, Real

import numpy as np
import pandas as pd
from numpy.polynomial.hermite_e import hermegauss
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    _check_y,
    check_is_fitted,
    validate_data,
)

from . import _glmm_report
from ._base import _finite_numeric
from ._dask import refuse_dask
from ._design import drop_zero_weights
from ._grouped import GroupedModelMixin, split_features_and_groups
from ._groups import resolve_random_effects
from .core.glmm import GeneralizedLinearMixedModel
from .exceptions import SingularFitWarning

__all__ = ["_BaseMixedGLM"]

# Gauss-Hermite nodes of the marginal mean E[g^-1(eta + sqrt(v) Z)].
_MARGINAL_NODES = 40


class _BaseMixedGLM(GroupedModelMixin, BaseEstimator):
    """Base class of the GLMM estimators (not for direct use)."""

    __metadata_request__fit = {"groups": True}
    __metadata_request__predict = {"groups": True}
    __metadata_request__score = {"groups": True}

    _parameter_constraints: dict = {
        "random_slopes": [None, list, tuple, dict],
        "covariance": [StrOptions({"unstructured", "diagonal"}), dict],
        "random_effects": [None, dict],
        "fixed_features": [None, list, tuple, str],
        "fit_intercept": ["boolean"],
        "group_cols": [None, list, tuple, str],
        "new_groups": [StrOptions({"population", "marginal", "error"})],
        "nagq": [Interval(Integral, 1, 100, closed="both")],
        "solver": [StrOptions({"exact", "iterative"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
    }
    # GLMMs are fitted by maximum likelihood (for anova's checks)
    method = "ml"
    _family = ""

    def __init__(self, *, random_slopes=None, covariance="unstructured", random_effects=None,
                 fixed_features=None, fit_intercept=True, group_cols=None,
                 new_groups="population", nagq=1, solver="exact", max_iter=500,
                 tol=1e-10):  # fmt: skip
        self.random_slopes = random_slopes
        self.covariance = covariance
        self.random_effects = random_effects
        self.fixed_features = fixed_features
        self.fit_intercept = fit_intercept
        self.group_cols = group_cols
        self.new_groups = new_groups
        self.nagq = nagq
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol

    def _random_specs(self, factor_names, feature_names):
        return resolve_random_effects(
            self.random_effects, self.random_slopes, self.covariance, factor_names, feature_names
        )

    # ------------------------------------------------------------------ fit
    def _fit(self, X, response, groups, sample_weight, offset):
        """Fit to a validated 0/1, proportion or count ``response``."""
        n = X.shape[0]
        offset = None if offset is None else _check_offset(offset, n)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
            if offset is not None:
                offset = offset[sample_weight > 0]
        X, response, groups, weights = drop_zero_weights(X, response, groups, sample_weight)
        self._check_response(response)
        design = self._build_design(X, response, groups, weights, residual=False)
        rows = design.rows if offset is None else replace(design.rows, offset=offset)
        solver = self.solver if groups is not None else "exact"
        model = GeneralizedLinearMixedModel(rows, self._family, nagq=self.nagq, solver=solver)
        try:
            self.model_ = model.fit(max_iter=self.max_iter, tol=self.tol)
        except np.linalg.LinAlgError as exc:
            raise ValueError(
                "the fit failed: a working linear model of PIRLS became singular. This "
                "happens when the response is (quasi-)completely separated: every row of "
                "some levels (or of some values of a feature) has the same outcome, so their "
                "effects run off to infinity (lme4 reports huge estimates with convergence "
                "warnings). Check the data for such levels; merge them or drop the factor."
            ) from exc
        self._store_fit(design)
        self._warn_about_fit(model.result)
        return self

    def _check_response(self, response):
        """Raise ``ValueError`` for a response the family cannot fit (subclasses)."""

    def _validate_input(self, X, y, groups, y_numeric):
        """The parameters, ``(X, y, groups)`` checked: features as floats (the
        grouping columns split off), ``y`` of as many rows."""
        self._validate_params()
        refuse_dask((X, y, groups), type(self).__name__)
        X, groups = split_features_and_groups(X, groups, self.group_cols)
        min_features = 0 if groups is not None else 1
        features = _finite_numeric(X, 2)
        if features is not None and features.shape[1] >= min_features and features.shape[0]:
            validate_data(self, X, skip_check_array=True)
            X = features
        else:
            X = validate_data(self, X, dtype=np.float64, ensure_min_features=min_features)
        y = _check_y(y, y_numeric=y_numeric)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}")
        return X, y, groups

    def _store_fit(self, design):
        fit = self.model_.result
        self._store_fitted_model(design, fit)
        self.solver_ = fit.solver
        self.log_likelihood_se_ = 0.5 * fit.deviance_se

    def _warn_about_fit(self, fit):
        if not fit.converged:
            warnings.warn(
                f"The optimizer did not converge after {fit.n_iter} iterations "
                f"({fit.message}). Increase max_iter, standardize the features, or simplify "
                "the random effects.",
                ConvergenceWarning,
                stacklevel=4,
            )
        if fit.separated:
            warnings.warn(
                "a random-effect standard deviation ran to its bound (1e4 on the linear "
                "predictor's scale): the response is (quasi-)completely separated by the "
                "levels of a grouping factor (every row of each level has the same "
                "outcome). The likelihood has no maximum there; the variance and the "
                "conditional modes of those levels are as large as the bound allows, not "
                "estimates (lme4 reports huge estimates with convergence warnings).",
                ConvergenceWarning,
                stacklevel=4,
            )
        if fit.singular:
            warnings.warn(
                "boundary (singular) fit: a random-effect variance is estimated as 0 (or a "
                "correlation as +-1); the data do not support this variance component. See "
                "isSingular in lme4.",
                SingularFitWarning,
                stacklevel=4,
            )
        if not fit.hessian_used and fit.hessian.size:
            warnings.warn(
                "the Hessian of the deviance in (theta, beta) is not positive definite: "
                "the fixed effects' standard errors come from the PIRLS factor instead "
                "(lme4 does the same, with a warning). The fit may be near a boundary.",
                UserWarning,
                stacklevel=4,
            )

    # ----------------------------------------------------------- results
    @property
    def fixed_effects_(self):
        """DataFrame: estimate, standard error, z value and p value (Wald) per fixed effect."""
        check_is_fitted(self)
        fit = self.model_.result
        se = np.sqrt(np.diag(fit.beta_cov))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = fit.beta / se
        return pd.DataFrame(
            {"estimate": fit.beta, "std_error": se, "z_value": z,
             "p_value": 2.0 * stats.norm.sf(np.abs(z))},
            index=pd.Index(self.fixed_effect_names_, name="term"),
        )  # fmt: skip

    @property
    def variance_components_(self):
        """DataFrame: variance and standard deviation per (factor, term)."""
        check_is_fitted(self)
        rows = []
        for t in self.model_.terms:
            cov = self.random_effects_cov_[t.name]
            variances = np.diag(cov)
            rows += [(t.name, c, float(v))
                     for c, v in zip(t.covariate_names, variances, strict=True)]  # fmt: skip
        index = pd.MultiIndex.from_tuples([r[:2] for r in rows], names=["factor", "term"])
        variance = np.array([r[2] for r in rows])
        return pd.DataFrame({"variance": variance, "std_dev": np.sqrt(variance)}, index=index)

    def summary(self):
        """lme4-style report: criterion, random effects, fixed effects with Wald tests.

        Returns
        -------
        report : str
        """
        check_is_fitted(self)
        return _glmm_report.summary_report(self)

    def confint(self, method="wald", level=0.95):
        """Confidence intervals of the fixed effects and the random-effect sds.

        Parameters
        ----------
        method : {"wald", "profile"}, default="wald"
            ``"wald"``: ``estimate +- z SE`` for the fixed effects (lme4's
            ``confint(fit, method = "Wald")``, which gives none for the
            variance parameters).  ``"profile"``: likelihood-ratio intervals of
            every parameter, the Laplace (or AGQ) deviance minimized over the
            others at each value (lme4's ``confint(fit)``).
        level : float, default=0.95

        Returns
        -------
        intervals : DataFrame
            Lower and upper bound per parameter, labelled as lme4's.
        """
        check_is_fitted(self)
        from ._glmm_inference import glmm_confint

        return glmm_confint(self, method, level)

    # ------------------------------------------------------------ predict
    def _linear_predictor(self, X, groups, offset, random_effects):
        """``eta`` with the modes of seen levels, and the variance ``v`` of the
        random effects predicted at 0 (unseen levels, coefficients left out)."""
        check_is_fitted(self)
        refuse_dask((X, groups, offset), type(self).__name__)
        X, groups = split_features_and_groups(X, groups, self.group_cols)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_min_features=0)
        eta = X @ self.coef_ + self.intercept_
        if offset is not None:
            eta = eta + _check_offset(offset, X.shape[0])
        unseen_var = np.zeros(X.shape[0])
        fit = self.model_.result
        for index, z, seen, level in self._random_effect_rows(X, groups, random_effects):
            eta += np.einsum("ik,ik->i", z, np.where(seen, fit.b[index][level], 0.0))
            zu = np.where(seen, 0.0, z)
            unseen_var += np.einsum("ik,kl,il->i", zu, fit.term_cov[index], zu)
        return eta, unseen_var

    def _mean(self, X, groups, offset, random_effects):
        """The conditional mean (unseen effects at 0), or with ``new_groups=
        "marginal"`` the mean integrated over the unseen effects' distribution."""
        eta, v = self._linear_predictor(X, groups, offset, random_effects)
        family = self.model_.family
        if self.new_groups != "marginal" or not np.any(v > 0):
            return family.linkinv(eta)
        if family.link == "log":  # E exp(eta + N(0, v)) = exp(eta + v / 2)
            return family.linkinv(eta + 0.5 * v)
        nodes, weights = hermegauss(_MARGINAL_NODES)
        weights = weights / weights.sum()
        sd = np.sqrt(v)
        return sum(w * family.linkinv(eta + sd * x) for x, w in zip(nodes, weights, strict=True))


def _check_offset(offset, n):
    offset = np.asarray(offset, dtype=float).reshape(-1)
    if offset.shape[0] != n:
        raise ValueError(f"offset has {offset.shape[0]} values for {n} samples")
    if not np.all(np.isfinite(offset)):
        raise ValueError("offset contains NaN or infinity")
    return offset
