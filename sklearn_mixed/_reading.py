"""What a fitted model says: ranges, intraclass correlation, shrinkage,
tests, intervals and the printed report.

These methods only read a fitted estimator (its fitted attributes and its
model object ``model_``); the numerics live in :mod:`._interpretation`,
:mod:`._fixed_tests`, :mod:`._influence`, :mod:`.inference` and the core.
"""

from sklearn.utils.validation import check_is_fitted

from . import _influence, _interpretation, _results
from ._fixed_tests import fixed_effects_anova, term_hypotheses
from .core import influence as core_influence

__all__ = ["ReadingMixin"]


class ReadingMixin:
    """Methods of :class:`~sklearn_mixed._base._BaseMixedRegressor` that read a fit."""

    def effect_ranges(self, level=0.95):
        """Where ``level`` of the group effects and of one group's observations lie.

        For each factor and term (intercept, slopes): the population value
        ``a`` (its fixed effect; 0 for a slope without one) and the standard
        deviation ``tau`` of the groups around it, so that ``a +- z tau``
        holds ``level`` of the group coefficients (``z = 1.96`` for 95%,
        ``2.58`` for 99%).  The ``("Residual", "observations")`` row gives
        ``+- z sigma``: ``level`` of one group's observations lie within it of
        that group's own mean.

        Parameters
        ----------
        level : float or sequence of float, default=0.95
            Coverage in (0, 1), e.g. ``0.95`` or ``(0.95, 0.99)``.

        Returns
        -------
        ranges : DataFrame
            Indexed by ``(factor, term)``; columns ``center``, ``std_dev``,
            then ``lower``, ``upper`` for one level, or ``lower_95``,
            ``upper_95``, ``lower_99``, ... for several.

        Examples
        --------
        >>> from sklearn_mixed import MixedLinearRegressor
        >>> from sklearn_mixed.datasets import load_sleepstudy
        >>> df = load_sleepstudy()
        >>> est = MixedLinearRegressor().fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
        >>> est.effect_ranges((0.95, 0.99)).loc[("Subject", "(Intercept)")].round(1).tolist()
        [251.4, 37.1, 178.6, 324.2, 155.8, 347.0]
        """
        check_is_fitted(self)
        return _interpretation.effect_ranges(self, level)

    def intraclass_correlation(self):
        """Intraclass correlation of the random intercepts, per grouping factor.

        ``icc = tau_f^2 / (sum_g tau_g^2 + sigma^2)``: the correlation of two
        observations in the same level of factor ``f`` and different levels
        of the other factors.  ``icc_same_level`` adds the variances of the
        factors ``f`` is nested in (two observations in the same cask are in
        the same batch too).  With random slopes the correlation depends on
        the covariates; these are its values at ``x = 0``.

        Returns
        -------
        icc : DataFrame
            Indexed by factor; columns ``variance``, ``icc``, ``icc_same_level``.

        Examples
        --------
        >>> from sklearn_mixed import MixedLinearRegressor
        >>> from sklearn_mixed.datasets import load_sleepstudy
        >>> df = load_sleepstudy()
        >>> est = MixedLinearRegressor().fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
        >>> round(float(est.intraclass_correlation().loc["Subject", "icc"]), 3)
        0.589
        """
        check_is_fitted(self)
        return _interpretation.intraclass_correlation(self)

    def shrinkage(self, factor=None):
        """No pooling, complete pooling and partial pooling of a factor's levels.

        Parameters
        ----------
        factor : str, default=None
            Grouping factor; ``None`` is the first one.

        Returns
        -------
        table : DataFrame
            One row per level; columns ``(quantity, term)``: ``("n_obs", "")``
            and, per random term, ``no_pooling`` (the level's own least-squares
            estimate, the rest of the model held at its estimates),
            ``complete_pooling`` (ordinary least squares ignoring the groups),
            ``partial_pooling`` (fixed effect plus conditional mode) and
            ``shrinkage`` (``1 - (partial - fixed) / (no_pooling - fixed)``;
            for a random intercept ``(sigma^2 / n_j) / (tau^2 + sigma^2 / n_j)``).
            Definitions in :func:`sklearn_mixed._interpretation.shrinkage`.

        Examples
        --------
        >>> from sklearn_mixed import MixedLinearRegressor
        >>> from sklearn_mixed.datasets import load_sleepstudy
        >>> df = load_sleepstudy()
        >>> est = MixedLinearRegressor().fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
        >>> est.shrinkage().loc["308", "shrinkage"].round(3).tolist()
        [0.065]
        """
        check_is_fitted(self)
        return _interpretation.shrinkage(self, factor)

    # ------------------------------------------------ tests (model_comparison)
    def fixed_effects_tests(self, ddf="satterthwaite"):
        """t-tests of the fixed effects, as lmerTest's ``summary(lmer(...))``.

        ``t = estimate / std_error`` on ``df`` degrees of freedom:
        Satterthwaite's approximation (lmerTest's default), from the Hessian of
        the (RE)ML deviance in ``(theta, sigma)`` and the derivatives of
        ``Var(beta)`` (see :mod:`sklearn_mixed.core.satterthwaite`), or the
        residual ``n - p`` of a plain linear model's t-test.

        Parameters
        ----------
        ddf : {"satterthwaite", "residual"}, default="satterthwaite"

        Returns
        -------
        tests : DataFrame
            Indexed by fixed effect; columns ``estimate``, ``std_error``,
            ``df``, ``t_value`` and ``p_value`` (two-sided).  It prints
            whole whatever pandas' display options (a DataFrame subclass).

        Raises
        ------
        ValueError
            For an approximate iterative fit (``approximate_``), whose deviance
            is not exact.

        Examples
        --------
        lmerTest's ``summary(lmer(Reaction ~ Days + (Days | Subject), sleepstudy))``:

        >>> from sklearn_mixed import MixedLinearRegressor
        >>> from sklearn_mixed.datasets import load_sleepstudy
        >>> df = load_sleepstudy()
        >>> est = MixedLinearRegressor(random_slopes=["Days"])
        >>> est = est.fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
        >>> tests = est.fixed_effects_tests()
        >>> print(tests[["estimate", "std_error", "df", "t_value"]].round(3).to_string())
                     estimate  std_error    df  t_value
        term
        (Intercept)   251.405      6.825  17.0   36.838
        Days           10.467      1.546  17.0    6.771
        >>> print(f"{tests.loc['Days', 'p_value']:.3g}")
        3.26e-06
        """
        from ._fixed_tests import fixed_effects_tests

        return fixed_effects_tests(self, ddf)

    def anova(self, ddf="satterthwaite"):
        """F tests of the fixed-effect terms, as lmerTest's ``anova(fit)`` (type III).

        Each term's hypothesis ``L beta = 0`` (all its coefficients 0, or
        lmerTest's type III contrasts when the formula door set
        ``fixed_terms`` for a term contained in an interaction) is tested by
        ``F = (L beta)' (L V L')^-1 (L beta) / q`` on ``q`` and Satterthwaite's
        denominator degrees of freedom (lmerTest 3.1-3's ``contestMD``).
        Without ``fixed_terms`` every feature is its own term.

        Parameters
        ----------
        ddf : {"satterthwaite", "residual"}, default="satterthwaite"

        Returns
        -------
        table : DataFrame
            Indexed by term: ``Sum Sq``, ``Mean Sq``, ``NumDF``, ``DenDF``,
            ``F value``, ``Pr(>F)``.  It prints whole whatever pandas'
            display options (a DataFrame subclass).

        Examples
        --------
        >>> from sklearn_mixed import MixedLinearRegressor
        >>> from sklearn_mixed.datasets import load_sleepstudy
        >>> df = load_sleepstudy()
        >>> est = MixedLinearRegressor(random_slopes=["Days"])
        >>> est = est.fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
        >>> print(est.anova()[["NumDF", "DenDF", "F value"]].round(3).to_string())
              NumDF  DenDF  F value
        term
        Days      1   17.0   45.853
        """
        check_is_fitted(self)
        hypotheses = term_hypotheses(
            getattr(self, "fixed_terms", None), self._design_names, self.fixed_effect_names_
        )
        return fixed_effects_anova(self, hypotheses, ddf)

    # ------------------------------------------------ influence (row level)
    def residuals(self, kind="response"):
        """Residuals of the training rows: ``y - mu`` or, ``kind="pearson"``,
        ``sqrt(w) (y - mu)`` (lme4's ``residuals(fit, type = ...)``).

        ``mu`` is the fitted value with the random effects, the rows those of
        ``fit`` with positive weight, in order.
        """
        check_is_fitted(self)
        if kind == "pearson":
            return core_influence.pearson_residuals(self.model_)
        if kind != "response":
            raise ValueError(f"kind must be 'response' or 'pearson', got {kind!r}")
        rows = core_influence.model_rows(self.model_, "residuals")
        return rows.y - core_influence.fitted_values(self.model_)

    def leverage(self):
        """Leverage (hat values) of the training rows, as lme4's ``hatvalues``.

        The diagonal of the hat matrix ``H`` with ``mu = H y``: how much a
        row's fitted value (fixed part plus random effects) moves with its
        own response.  Between 0 and 1; their sum is the model's effective
        number of parameters.

        Returns
        -------
        hat : ndarray of shape (n_samples,)

        Examples
        --------
        >>> from sklearn_mixed import MixedLinearRegressor
        >>> from sklearn_mixed.datasets import load_sleepstudy
        >>> df = load_sleepstudy()
        >>> est = MixedLinearRegressor(random_slopes=["Days"])
        >>> est = est.fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
        >>> print(f"{est.leverage()[:3].round(4)}  sum {est.leverage().sum():.3f}")
        [0.2293 0.1697 0.1268]  sum 29.022
        """
        check_is_fitted(self)
        return core_influence.hat_values(self.model_)

    def cooks_distance(self):
        """Cook's distance of each training row, as lme4's ``cooks.distance``.

        ``(r / (1 - h))^2 h / (sigma^2 p)`` with ``r`` the Pearson residual,
        ``h`` the leverage and ``p`` the number of fixed effects.

        Returns
        -------
        distance : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return core_influence.cooks_distance(self.model_)

    def studentized_residuals(self):
        """Studentized residuals, as lme4's ``rstudent``: ``r / (sigma sqrt(1 - h))``.

        Returns
        -------
        residuals : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return core_influence.studentized_residuals(self.model_)

    def influence(self, groups=None):
        """Refit without each group, as lme4's ``influence(fit, groups)``.

        Parameters
        ----------
        groups : str or array-like, default=None
            A grouping factor's name (delete each of its levels in turn), or
            one label per training row; ``None`` deletes one row at a time.

        Returns
        -------
        GroupInfluence
            The refitted fixed effects and variance components per deleted
            group, with ``dfbeta()``, ``dfbetas()`` and ``cooks_distance()``.

        Examples
        --------
        >>> from sklearn_mixed import MixedLinearRegressor
        >>> from sklearn_mixed.datasets import load_sleepstudy
        >>> df = load_sleepstudy()
        >>> est = MixedLinearRegressor(random_slopes=["Days"])
        >>> est = est.fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
        >>> infl = est.influence(groups="Subject")
        >>> print(infl.cooks_distance().sort_values().tail(2).round(3).to_string())
        deleted
        335    0.115
        309    0.132
        """
        check_is_fitted(self)
        return _influence.group_influence(self, groups)

    # ------------------------------------------------ intervals (inference)
    def confint(
        self,
        method="wald",
        level=0.95,
        *,
        n_boot=1000,
        random_state=None,
        n_jobs=None,
        progress=False,
    ):
        """Confidence intervals of the parameters, as lme4's ``confint(fit)``.

        Rows in lme4's ``oldNames = FALSE`` names and order: per grouping
        factor ``sd_<term>|<factor>`` and ``cor_<term2>.<term1>|<factor>``,
        then ``sigma``, then the fixed effects.  See
        :func:`sklearn_mixed.inference.confint` for the methods.

        Parameters
        ----------
        method : {"wald", "profile", "bootstrap"}, default="wald"
            ``"wald"`` (fixed effects only, NaN for the variance parameters),
            ``"profile"`` (profile likelihood of the ML deviance, as lme4) or
            ``"bootstrap"`` (parametric bootstrap percentile intervals).
        level : float, default=0.95
        n_boot : int, default=1000
            Bootstrap replicates.
        random_state : int, numpy Generator or RandomState, default=None
            Seed of the bootstrap (results do not depend on ``n_jobs``).
        n_jobs : int, default=None
            Parallel bootstrap refits (joblib).
        progress : bool, default=False
            Print a progress bar of the bootstrap to stderr.

        Returns
        -------
        intervals : DataFrame
            Columns named as R's (``"2.5 %"``, ``"97.5 %"``).

        Examples
        --------
        >>> from sklearn_mixed import MixedLinearRegressor
        >>> from sklearn_mixed.datasets import load_sleepstudy
        >>> df = load_sleepstudy()
        >>> est = MixedLinearRegressor(random_slopes=["Days"])
        >>> est = est.fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
        >>> print(est.confint("profile").round(3).to_string())
                                        2.5 %   97.5 %
        sd_(Intercept)|Subject         14.381   37.716
        cor_Days.(Intercept)|Subject   -0.481    0.685
        sd_Days|Subject                 3.801    8.753
        sigma                          22.898   28.858
        (Intercept)                   237.681  265.130
        Days                            7.359   13.576
        """
        from .inference import confint

        return confint(
            self,
            method,
            level,
            n_boot=n_boot,
            random_state=random_state,
            n_jobs=n_jobs,
            progress=progress,
        )

    def summary(self):
        """A report like lme4's ``print(fit)``, as a string.

        Returns
        -------
        report : str
            Variance components (variances, standard deviations,
            correlations), fixed effects, log-likelihood, AIC/BIC, number of
            levels per factor and the 95% ranges of the group effects.
        """
        check_is_fitted(self)
        return _results.summary_report(self)
