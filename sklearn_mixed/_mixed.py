"""MixedLinearRegressor: linear mixed models as a scikit-learn regressor."""

from numbers import Real

from sklearn.utils._param_validation import Interval, StrOptions

from ._base import _BaseMixedRegressor
from ._groups import resolve_random_effects

__all__ = ["MixedLinearRegressor"]


class MixedLinearRegressor(_BaseMixedRegressor):
    """Linear mixed-effects regression fitted by REML or ML, as lme4's ``lmer``.

    The model is ``y = X beta + Z b + eps`` with random effects
    ``b ~ N(0, Sigma)`` per level of each grouping factor and residuals
    ``eps_i ~ N(0, sigma^2 / w_i)`` (``w`` the prior weights, 1 by default).
    Each grouping factor gets a random intercept and, optionally, random
    slopes on some features; ``random_effects`` gives any lme4 terms (no
    intercept, covariates that are not fixed effects, several independent
    terms per factor).  Variance parameters are
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
    ``y ~ x + (0 + x | g)``                     ``random_effects={"g": ["x"]}``
    ``y ~ 1 + (1 + z | g)``, z not fixed        ``random_effects={"g": ["1", "z"]}``,
                                                ``fixed_features=[]``
    ``y ~ x + (1 | g) + (0 + z1 + z2 | g)``     ``random_effects={"g": [["1"], ["z1", "z2"]]}``
    ``y ~ 0 + (1 | g)``                         ``fit_intercept=False`` and no features
    ``lmer(..., weights = w)``                  ``fit(X, y, groups=g, sample_weight=w)``
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
    random_effects : dict, default=None
        Any lme4 random-effect terms, per grouping factor, as
        ``{factor: terms}``: a list of covariate names (feature names or
        indices, ``"1"`` for the intercept) is one correlated term, lme4's
        ``(1 + x | g)`` is ``["1", "x"]`` and ``(0 + x + z | g)`` is
        ``["x", "z"]``; a list of such lists gives independent terms,
        ``(1 | g) + (0 + x | g)`` is ``[["1"], ["x"]]``.  The covariates need
        not be fixed effects (see ``fixed_features``).  A factor given here
        takes nothing from ``random_slopes`` and ``covariance``; the other
        factors keep them.
    fixed_features : list, default=None
        The features that are fixed effects (names or indices); ``None``: all.
        The other features are only covariates of random effects, and their
        ``coef_`` is 0.
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
    fixed_sigma : float, default=None
        A known residual standard deviation (MixedModels.jl's ``sigma``):
        sigma is not estimated, which makes models with one observation per
        level identifiable (random-effects meta-analysis with
        ``sample_weight = 1 / sampling variance`` and ``fixed_sigma=1``).
    fixed_terms : dict, default=None
        How the fixed-effect columns group into model terms for
        :meth:`anova`'s F tests: ``{term: [column names]}`` tests the
        coefficients of those columns together (a factor's dummies), or
        ``{term: L}`` the hypothesis ``L beta = 0`` (``L`` over the fixed
        columns: the intercept, then the fixed features).  ``None``: each
        feature is its own term.  The formula door sets it, with lmerTest's
        type III hypotheses for terms contained in interactions.

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
        The value of lme4's ``logLik(fit)``.  For ``method="ml"`` the
        maximized log-likelihood; for ``method="reml"`` the restricted (REML)
        log-likelihood, ``-REMLcrit / 2``, not the log-likelihood of the data
        at the REML estimates: it compares only fits with the same fixed
        effects.
    deviance_ : float
        ``-2 log_likelihood_``: for REML the REML criterion (lme4's
        ``REMLcrit(fit)``, printed as "REML criterion at convergence"), not
        lme4's ``deviance(fit)`` of a REML fit; for ML the deviance (lme4's
        ``deviance(fit)``).
    aic_, bic_ : float
        ``deviance_ + 2 k`` and ``deviance_ + log(n) k``, ``k`` the fixed
        effects, covariance parameters and residual variance (unless
        ``fixed_sigma``), as lme4's ``AIC(fit)`` and ``BIC(fit)``: from the
        REML criterion for REML fits (comparable only with the same fixed
        effects; :func:`~sklearn_mixed.anova` refits by ML), from the
        log-likelihood for ML fits.
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
        Number of observations used in ``fit`` (rows of weight 0 excluded).
    fixed_effect_names_ : list of str
        The estimated fixed-effect columns, ``"(Intercept)"`` first: the rows
        of ``fixed_effects_`` and ``fixed_effects_cov_``.
    aliased_features_ : list of str
        Fixed-effect columns dropped because they are linear combinations of
        earlier ones (lme4's rank-deficiency check); their ``coef_`` is 0.
    model_ : LinearMixedModel
        The fitted numerical model (:mod:`sklearn_mixed.core.model`): the
        reduced data, ``model_.deviance(theta)`` (lme4's
        ``as.function(fit)``), refits by the other criterion, and the
        solution ``model_.result``.
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
        "random_effects": [None, dict],
        "fixed_features": [None, list, tuple, str],
        "fixed_sigma": [None, Interval(Real, 0, None, closed="neither")],
        "fixed_terms": [None, dict],
    }

    def __init__(
        self,
        *,
        random_slopes=None,
        covariance="unstructured",
        random_effects=None,
        fixed_features=None,
        method="reml",
        fit_intercept=True,
        group_cols=None,
        new_groups="population",
        max_iter=500,
        tol=1e-10,
        fixed_sigma=None,
        fixed_terms=None,
    ):
        self.random_slopes = random_slopes
        self.covariance = covariance
        self.random_effects = random_effects
        self.fixed_features = fixed_features
        self.method = method
        self.fit_intercept = fit_intercept
        self.group_cols = group_cols
        self.new_groups = new_groups
        self.max_iter = max_iter
        self.tol = tol
        self.fixed_sigma = fixed_sigma
        self.fixed_terms = fixed_terms

    def _random_specs(self, factor_names, feature_names):
        """Each factor's random effects from ``random_effects``, ``random_slopes``
        and ``covariance``."""
        return resolve_random_effects(
            self.random_effects, self.random_slopes, self.covariance, factor_names, feature_names
        )
