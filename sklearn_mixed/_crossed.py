"""CrossedEffectsRegressor: random intercepts for crossed (or nested) grouping factors."""

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions

from . import _results
from ._base import _BaseMixedRegressor
from ._groups import INTERCEPT, RandomSpec

__all__ = ["CrossedEffectsRegressor", "EXACT_TOL", "ITERATIVE_THRESHOLD", "ITERATIVE_TOL"]

ITERATIVE_THRESHOLD = 10_000
"""``solver="auto"`` uses the iterative solver above this many levels in all
grouping factors but the one with the most levels.

The exact solver eliminates the factor with the most levels in closed form and
keeps the levels of the other factors in a dense block, whose Cholesky factor
costs memory in the square and time in the cube of their number (1e4 levels:
800 MB and about 3e11 operations per evaluation of the deviance).
"""

EXACT_TOL = 1e-10
"""Default ``tol`` of the exact solver (relative change of the deviance), as
``MixedLinearRegressor``'s."""

ITERATIVE_TOL = 1e-6
"""Default ``tol`` of the iterative solver, passed to it as its stopping tolerance."""


def choose_solver(solver, n_levels):
    """``"exact"`` or ``"iterative"``: ``solver`` unless it is ``"auto"``.

    ``"auto"`` is ``"iterative"`` when the levels of all factors but the
    largest (the exact solver's dense block) number more than
    :data:`ITERATIVE_THRESHOLD`.  Without grouping factors the fit is a
    closed-form linear model: ``"exact"``.
    """
    if not n_levels:
        return "exact"
    if solver != "auto":
        return solver
    dense = sum(n_levels) - max(n_levels)
    return "iterative" if dense > ITERATIVE_THRESHOLD else "exact"


class CrossedEffectsRegressor(_BaseMixedRegressor):
    """Random intercepts for any number of crossed or nested grouping factors.

    The model is lme4's ``y ~ x + (1 | f1) + (1 | f2) + ...``:
    ``y = X beta + sum_f b_f[level_f] + eps`` with independent random
    intercepts ``b_f ~ N(0, tau_f^2)`` per level of each factor and residuals
    ``eps ~ N(0, sigma^2)``.  The factors may be crossed (every plate with
    every sample) or nested (casks within batches, passed as the combined
    label ``batch:cask``); nesting is detected from the data.

    The exact solver is :class:`MixedLinearRegressor`'s (Henderson's
    equations, profiled REML or ML deviance): on the same data its fits equal
    ``MixedLinearRegressor()``'s.  On top of them this estimator reports, per
    factor, its number of levels, its variance and its share of the total
    variance (``variance_shares_``).  For designs too large for the exact
    solver, an approximate iterative solver can be used (``solver``).

    =======================================  =====================================
    lme4                                     sklearn-mixed
    =======================================  =====================================
    ``y ~ x + (1 | a) + (1 | b)`` (crossed)  ``fit(X, y, groups=df[["a", "b"]])``
    ``y ~ 1 + (1 | a/b)`` (nested)           ``groups=`` columns ``a`` and ``a:b``
    ``REML = FALSE``                         ``method="ml"``
    =======================================  =====================================

    Parameters
    ----------
    method : {"reml", "ml"}, default="reml"
        Restricted (REML, unbiased variance components) or full maximum
        likelihood (needed to compare models that differ in fixed effects).
    fit_intercept : bool, default=True
        Whether to fit a fixed intercept.  Random intercepts are always fitted
        for every grouping factor.
    group_cols : list of str, default=None
        Read the grouping factors from these columns of the DataFrame ``X``
        (and remove them from the features) instead of from ``groups``.
    new_groups : {"population", "error"}, default="population"
        What ``predict`` does with levels not seen in ``fit``: contribute 0 for
        that factor (the population prediction), or raise a ``ValueError``.
    solver : {"auto", "exact", "iterative"}, default="auto"
        ``"exact"``: minimize the profiled deviance, as
        :class:`MixedLinearRegressor`.  ``"iterative"``: the approximate
        iterative solver of ``sklearn_mixed.core.iterative``, for huge crossed
        designs (its fits are approximate, see Notes).  ``"auto"``: exact
        unless the levels of all factors but the largest number more than
        ``sklearn_mixed._crossed.ITERATIVE_THRESHOLD`` (10000).
    max_iter : int, default=500
        Maximum number of iterations of the optimizer (exact) or of the
        iterative solver.
    tol : float, default=None
        Convergence tolerance.  ``None``: 1e-10 for the exact solver (relative
        change of the deviance, as ``MixedLinearRegressor``), 1e-6 for the
        iterative one.
    random_state : int, RandomState instance or None, default=None
        Seed of the iterative solver's stochastic parts, passed to it as
        given.  The exact solver is deterministic and ignores it.

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
        sigma^2, the residual variance.
    random_effects_cov_ : dict of str -> ndarray of shape (1, 1)
        Variance ``tau_f^2`` of each factor's random intercepts.
    random_effects_ : dict of str -> DataFrame
        Conditional modes (BLUPs), one row per level, indexed by the labels,
        one column ``"(Intercept)"``.
    random_effects_conditional_cov_ : dict of str -> ndarray of shape (m, 1, 1)
        Conditional variance ``Var(b_j | y)`` of each level's random intercept.
    variance_components_ : DataFrame
        Variance and standard deviation per factor and the residual, as
        :class:`MixedLinearRegressor`'s.
    variance_shares_ : DataFrame
        Indexed by the factor names and ``"Residual"``: ``variance``,
        ``std_dev`` and ``share``, the variance over the sum of the variances
        of all factors and the residual (the shares sum to 1).
    theta_ : ndarray of shape (n_factors,)
        lme4's relative covariance parameters ``tau_f / sigma``.
    log_likelihood_ : float
        The value of lme4's ``logLik(fit)``.  For ``method="ml"`` the
        maximized log-likelihood; for ``method="reml"`` the restricted (REML)
        log-likelihood, ``-REMLcrit / 2``, not the log-likelihood of the data
        at the REML estimates: it compares only fits with the same fixed
        effects.  An iterative fit's value is a stochastic estimate.
    log_likelihood_se_ : float
        Monte Carlo standard error of ``log_likelihood_`` (iterative fits, whose
        log-determinant is a stochastic estimate); 0.0 for exact fits.
    deviance_ : float
        ``-2 log_likelihood_``: for REML the REML criterion (lme4's
        ``REMLcrit(fit)``, printed as "REML criterion at convergence"), not
        lme4's ``deviance(fit)`` of a REML fit; for ML the deviance (lme4's
        ``deviance(fit)``).
    aic_, bic_ : float
        ``deviance_ + 2 k`` and ``deviance_ + log(n) k``, ``k`` the fixed
        effects, covariance parameters and residual variance, as lme4's
        ``AIC(fit)`` and ``BIC(fit)``: from the REML criterion for REML fits
        (comparable only with the same fixed effects;
        :func:`~sklearn_mixed.anova` refits by ML), from the log-likelihood
        for ML fits.
    n_iter_ : int
        Iterations of the optimizer or the iterative solver.
    converged_ : bool
        Whether it converged.
    singular_ : bool
        Whether a factor's variance is estimated as 0 (lme4's ``isSingular``).
    solver_ : {"exact", "iterative"}
        The solver used (``"exact"`` when fitted without groups).
    approximate_ : bool
        Whether the fit is approximate (``solver_ == "iterative"``).
    group_names_ : list of str
        Names of the grouping factors (empty when fitted without groups).
    n_groups_ : dict of str -> int
        Number of levels per factor.
    nested_ : list of (str, str)
        Pairs ``(inner, outer)``: every level of ``inner`` occurs within one
        level of ``outer`` (detected from the data, as MixedModels.jl does).
    random_slope_names_ : dict of str -> list
        Empty lists (random intercepts only), as :class:`MixedLinearRegressor`'s.
    covariance_structures_ : dict of str -> str
        ``"unstructured"`` per factor (a 1 x 1 covariance).
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
    MixedLinearRegressor : The same models plus random slopes.

    Notes
    -----
    The exact solver eliminates the factor with the most levels in closed form
    and keeps the others in a dense block, so its cost grows with the cube of
    the number of levels of all factors but the largest.  ``solver="auto"``
    switches to the iterative solver above ``ITERATIVE_THRESHOLD`` of them.

    Iterative fits are *approximate* (``approximate_`` is ``True``): the
    variance components solve the REML (or ML) score equations with the traces
    of the inverse mixed-model matrix estimated by random probes, whose Monte
    Carlo error is kept below 0.2% (relative, one standard error); the fixed
    effects, their covariance and the conditional modes are the conjugate
    gradient solution of Henderson's equations at those variance components.
    Against the exact fit, the tests require variance components within 1% and
    predictions within ``1e-3 sd(y)``.  The log-likelihood (hence
    ``deviance_``, AIC and BIC) is the exact (RE)ML criterion at the fitted
    variance components except for its log-determinant, a *stochastic*
    estimate (stochastic Lanczos quadrature) whose Monte Carlo standard error
    is ``log_likelihood_se_`` (kept below 0.02); the tests require it within
    0.05 of the exact value.  The conditional variances (hence ``return_std``
    and ``random_effects_conditional_cov_``) are approximated from the
    block-Jacobi preconditioner, corrected along each factor's constant vector:
    within about 10% of the exact ones in the tests (median 1%; the most
    popular levels tend to be understated, which matters little for
    ``return_std`` as their variances are the smallest).
    See :mod:`sklearn_mixed.core.iterative` and
    :mod:`sklearn_mixed.core.iterative_likelihood` for the methods and their
    references.

    ``predict(X, groups, return_std=True)`` returns the standard deviation of
    a new observation, ``sigma^2 + x' Var(beta) x + sum_f V_f`` with ``V_f``
    the conditional variance of the row's level of factor ``f``, or
    ``tau_f^2`` for an unseen level, as :class:`MixedLinearRegressor`.

    References
    ----------
    D. Bates, M. Maechler, B. Bolker, S. Walker (2015). Fitting linear
    mixed-effects models using lme4. Journal of Statistical Software 67(1).

    Examples
    --------
    >>> from sklearn_mixed import CrossedEffectsRegressor
    >>> from sklearn_mixed.datasets import load_penicillin
    >>> pen = load_penicillin()  # diameter ~ 1 + (1 | plate) + (1 | sample)
    >>> model = CrossedEffectsRegressor()
    >>> model = model.fit(pen[[]], pen["diameter"], groups=pen[["plate", "sample"]])
    >>> print(f"{model.log_likelihood_:.2f}")
    -165.43
    >>> model.n_groups_, model.nested_, model.solver_
    ({'plate': 24, 'sample': 6}, [], 'exact')
    >>> print(model.variance_shares_.round(3))
              variance  std_dev  share
    factor
    plate        0.717    0.847  0.151
    sample       3.731    1.932  0.785
    Residual     0.302    0.550  0.064
    """

    _parameter_constraints: dict = {
        **_BaseMixedRegressor._parameter_constraints,
        "solver": [StrOptions({"auto", "exact", "iterative"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither"), None],
        "random_state": ["random_state"],
    }

    _convergence_advice = "Increase max_iter, or standardize the features (e.g. StandardScaler)."
    _singular_advice = "consider removing the factor."

    def __init__(
        self,
        *,
        method="reml",
        fit_intercept=True,
        group_cols=None,
        new_groups="population",
        solver="auto",
        max_iter=500,
        tol=None,
        random_state=None,
    ):
        self.method = method
        self.fit_intercept = fit_intercept
        self.group_cols = group_cols
        self.new_groups = new_groups
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _random_specs(self, factor_names, feature_names):
        """A random intercept per grouping factor."""
        return {name: RandomSpec((None,), ((0,),), (INTERCEPT,)) for name in factor_names}

    def _solver(self, n_levels):
        return choose_solver(self.solver, n_levels)

    def _fit_options(self, solver):
        if solver == "iterative":
            return {
                "max_iter": self.max_iter,
                "tol": ITERATIVE_TOL if self.tol is None else self.tol,
                "random_state": self.random_state,
            }
        return {"max_iter": self.max_iter, "tol": EXACT_TOL if self.tol is None else self.tol}

    def _store_fit(self, design):
        super()._store_fit(design)
        self.solver_ = self.model_.solver
        self.approximate_ = self.solver_ == "iterative"
        self.log_likelihood_se_ = self.model_.result.log_likelihood_se

    @property
    def variance_shares_(self):
        """DataFrame: each factor's and the residual's variance and share of the total."""
        term_cov = [self.random_effects_cov_[name] for name in self.group_names_]
        return _results.variance_shares_table(self.group_names_, term_cov, self.residual_variance_)
