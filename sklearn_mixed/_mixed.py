"""MixedLinearRegressor: linear mixed models as a scikit-learn regressor."""

import numpy as np
from sklearn.utils._param_validation import StrOptions

from ._base import INTERCEPT, _BaseMixedRegressor, encode_factors
from ._groups import resolve_covariance, resolve_random_slopes, validate_groups
from .core import RandomTerm

__all__ = ["MixedLinearRegressor"]


class MixedLinearRegressor(_BaseMixedRegressor):
    """Linear mixed-effects regression fitted by REML or ML, as lme4's ``lmer``.

    The model is ``y = X beta + Z b + eps`` with random effects
    ``b ~ N(0, Sigma)`` per level of each grouping factor and residuals
    ``eps ~ N(0, sigma^2 I)``.  Each grouping factor gets a random intercept
    and, optionally, random slopes on some features.  Variance parameters are
    estimated by minimizing the profiled (RE)ML deviance; the fixed effects
    ``beta`` and the conditional modes ``b`` (BLUPs) solve Henderson's
    mixed-model equations, in the penalized least squares form of Bates et al.
    (2015).

    ==========================================  ============================================
    lme4                                        sklearn-mixed
    ==========================================  ============================================
    ``y ~ x + (1 | g)``                         ``MixedLinearRegressor().fit(X, y, groups=g)``
    ``y ~ 1 + (1 | a) + (1 | b)``               ``groups=df[["a", "b"]]`` (crossed)
    ``y ~ 1 + (1 | a/b)``                       ``groups=`` columns ``a`` and ``a:b`` (nested)
    ``y ~ x + (1 + x | g)``                     ``random_slopes=["x"]``
    ``y ~ x + (1 | g) + (0 + x | g)``           ``random_slopes=["x"], covariance="diagonal"``
    ==========================================  ============================================

    Parameters
    ----------
    random_slopes : list or dict, default=None
        Features whose coefficients vary by group.  ``None``: random
        intercepts only.  A list of feature names or column indices: slopes on
        every grouping factor.  A dict ``{factor: [features]}``: per factor.
    covariance : {"unstructured", "diagonal"} or dict, default="unstructured"
        Covariance of one level's random intercept and slopes: correlated
        (``"unstructured"``, lme4's ``(1 + x | g)``) or independent
        (``"diagonal"``, lme4's ``(1 | g) + (0 + x | g)``); a dict gives it per
        factor.
    method : {"reml", "ml"}, default="reml"
        Restricted (REML, unbiased variance components) or full maximum
        likelihood (needed to compare models that differ in fixed effects).
    fit_intercept : bool, default=True
        Whether to fit a fixed intercept.  Random intercepts are always fitted
        for every grouping factor.
    group_cols : list of str, default=None
        Read the grouping factors from these columns of the DataFrame ``X``
        (and remove them from the features) instead of from ``groups``.  This
        is the way to use groups where scikit-learn cannot route them to
        ``predict`` (scorers, ``cross_val_predict``).
    new_groups : {"population", "error"}, default="population"
        What ``predict`` does with levels not seen in ``fit``: contribute 0 for
        that factor (the population prediction), or raise a ``ValueError``.
    max_iter : int, default=500
        Maximum number of optimizer iterations.
    tol : float, default=1e-10
        Relative tolerance on the deviance for convergence.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Fixed-effect slopes.
    intercept_ : float
        Fixed intercept (0.0 when ``fit_intercept=False``).
    fixed_effects_ : DataFrame
        ``estimate``, ``std_error`` and ``t_value`` for ``"(Intercept)"`` and
        each feature.
    fixed_effects_cov_ : ndarray of shape (n_fixed, n_fixed)
        Covariance matrix of the fixed-effect estimates.
    residual_variance_ : float
        sigma^2, the within-group (residual) variance.
    random_effects_cov_ : dict of str -> ndarray of shape (k, k)
        Covariance of one level's random effects, per factor, intercept first
        then slopes.
    random_effects_ : dict of str -> DataFrame
        Conditional modes (BLUPs), one row per level, indexed by the labels.
    random_effects_conditional_cov_ : dict of str -> ndarray of shape (m, k, k)
        Conditional covariance ``Var(b_j | y)`` of each level's random
        effects (lme4's ``condVar``).
    variance_components_ : DataFrame
        Variance, standard deviation and correlations per factor and term,
        and the residual.
    theta_ : ndarray
        lme4's relative covariance parameters, factors in the order given.
    log_likelihood_ : float
        REML criterion for ``method="reml"``, log-likelihood otherwise (the
        value of lme4's ``logLik``).
    deviance_ : float
        ``-2 log_likelihood_`` (lme4's "REML criterion at convergence" for REML).
    aic_, bic_ : float
        Information criteria from ``log_likelihood_``.
    n_iter_ : int
        Optimizer iterations.
    converged_ : bool
        Whether the optimizer converged.
    singular_ : bool
        Whether a variance is estimated as 0 (lme4's ``isSingular``).
    group_names_ : list of str
        Names of the grouping factors (empty when fitted without groups).
    n_groups_ : dict of str -> int
        Number of levels per factor.
    nested_ : list of (str, str)
        Pairs ``(inner, outer)`` of factors found nested in the data.
    random_slope_names_ : dict of str -> list of str
        Features with random slopes, per factor.
    covariance_structures_ : dict of str -> str
        ``"unstructured"`` or ``"diagonal"``, per factor.
    n_obs_ : int
        Number of observations used in ``fit``.
    n_features_in_ : int
        Number of features (grouping columns excluded).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features, when ``X`` has string column names.

    See Also
    --------
    sklearn.linear_model.LinearRegression : The model without random effects.

    Notes
    -----
    ``predict(X, groups, return_std=True)`` returns the standard deviation of
    a *new observation*::

        var = sigma^2 + x' Var(beta) x + sum_f z_f' V_f z_f

    where ``x`` holds the fixed-effect covariates (with the intercept),
    ``z_f`` factor ``f``'s random-effect covariates and ``V_f`` the
    conditional covariance ``Var(b_j | y)`` of the observation's level ``j`` if
    it was seen in ``fit``, or the factor's covariance ``Sigma_f`` if not.
    Covariances between the estimates of ``beta`` and of different factors'
    modes are neglected, so ``mean +- 1.96 std`` is an approximate 95%
    prediction interval.

    References
    ----------
    D. Bates, M. Maechler, B. Bolker, S. Walker (2015). Fitting linear
    mixed-effects models using lme4. Journal of Statistical Software 67(1).

    Examples
    --------
    >>> from sklearn_mixed import MixedLinearRegressor
    >>> from sklearn_mixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> model = MixedLinearRegressor(random_slopes=["Days"])
    >>> model = model.fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
    >>> print(f"{model.intercept_:.2f} {model.coef_[0]:.2f}")
    251.41 10.47
    >>> print(f"{model.log_likelihood_:.2f}")
    -871.81
    >>> model.predict(df[["Days"]].head(2), groups=df["Subject"].head(2)).round(1)
    array([253.7, 273.3])
    """

    _parameter_constraints: dict = {
        **_BaseMixedRegressor._parameter_constraints,
        "random_slopes": [None, list, tuple, dict],
        "covariance": [StrOptions({"unstructured", "diagonal"}), dict],
    }

    def __init__(
        self,
        *,
        random_slopes=None,
        covariance="unstructured",
        method="reml",
        fit_intercept=True,
        group_cols=None,
        new_groups="population",
        max_iter=500,
        tol=1e-10,
    ):
        self.random_slopes = random_slopes
        self.covariance = covariance
        self.method = method
        self.fit_intercept = fit_intercept
        self.group_cols = group_cols
        self.new_groups = new_groups
        self.max_iter = max_iter
        self.tol = tol

    def _random_terms(self, X, groups):
        """RandomTerm per grouping factor, in the order given, and the
        column indices of each factor's random slopes."""
        if groups is None:
            return [], {}
        names, labels = validate_groups(groups, X.shape[0])
        feature_names = self._feature_names()
        slopes = resolve_random_slopes(self.random_slopes, names, feature_names)
        structure = resolve_covariance(self.covariance, names)
        encoded = encode_factors(names, labels, X.shape[0])
        terms = []
        for name, (codes, levels) in zip(names, encoded, strict=True):
            idx = slopes[name]
            covariates = np.column_stack([np.ones(X.shape[0])] + [X[:, j] for j in idx])
            cov_names = (INTERCEPT,) + tuple(feature_names[j] for j in idx)
            terms.append(RandomTerm(name, codes, levels, covariates, cov_names, structure[name]))
        return terms, slopes
