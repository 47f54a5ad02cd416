"""Model comparison: lme4's ``anova`` and information criteria.

- :func:`anova`: likelihood-ratio tests between nested fitted models, refitting
  REML fits by maximum likelihood as lme4's ``anova(m0, m1)`` does; of one
  model, lmerTest's ``anova(fit)``: F tests of its fixed-effect terms
  (:mod:`._fixed_tests`);
- :func:`fixed_effects_tests`: t-tests of one model's coefficients
  (lmerTest's ``summary``);
- :func:`information_criteria`: AIC, BIC and log-likelihood of several fits,
  side by side, without refits.
"""

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from ._fixed_tests import fixed_effects_tests
from ._formula_estimators import array_estimator
from ._tables import ResultTable

__all__ = ["BOUNDARY_NOTE", "anova", "fixed_effects_tests", "information_criteria"]

BOUNDARY_NOTE = (
    "Testing a variance component at 0 (a random term present in one model and "
    "absent from the other) puts the null hypothesis on the boundary of the "
    "parameter space: the chi-square p-value is then conservative (too large). "
    "The usual correction for one variance is the 50:50 mixture of chi-square(0) "
    "and chi-square(1), i.e. half the p-value of chi-square(1) (Self and Liang "
    "1987; Stram and Lee 1994)."
)

_IC_COLUMNS = ["npar", "AIC", "BIC", "logLik", "deviance"]


def anova(*models, refit=True, names=None, ddf="satterthwaite"):
    """Likelihood-ratio tests between nested mixed models, as lme4's ``anova(m0, m1, ...)``.

    With one model: lmerTest's ``anova(fit)``, the type III F tests of its
    fixed-effect terms with Satterthwaite's denominator degrees of freedom
    (see :meth:`MixedLinearRegressor.anova
    <sklearn_mixed.MixedLinearRegressor.anova>`).

    The models are sorted by their number of parameters (``npar``: fixed
    effects, covariance parameters and the residual variance); each row is
    tested against the row above it with ``Chisq = 2 max(0, logLik -
    logLik_above)`` on ``Df = npar - npar_above`` degrees of freedom.  The
    models must be nested (the smaller a special case of the larger) and fitted
    to the same observations: it is checked that ``y`` is the same and, as a
    necessary condition of nesting, that the smaller model's fixed effects and
    grouping factors are among the larger one's.

    Parameters
    ----------
    *models : fitted MixedLinearRegressor or CrossedEffectsRegressor
        Two or more models fitted to the same ``y`` (or one model: F tests).
    refit : bool, default=True
        As lme4 (1.1-31): every model fitted by REML is refitted by maximum
        likelihood (its own solver and settings, ``method="ml"``, on its
        training data), whether or not the fixed effects differ, so that all
        rows are log-likelihoods.  With ``refit=False`` the models' own
        criteria are compared, which is valid only for REML fits that all have
        the same fixed effects (comparing random effects; lme4 compares them
        without the check): REML fits with different fixed effects, or a mix
        of REML and ML fits, raise a ``ValueError``.
    names : list of str, default=None
        Row names, in the order of ``models``; ``"model 1"``, ``"model 2"``,
        ... by default.
    ddf : {"satterthwaite", "residual"}, default="satterthwaite"
        Denominator degrees of freedom of the F tests of one model.

    Returns
    -------
    table : DataFrame
        One row per model, sorted by ``npar``: ``npar``, ``AIC``, ``BIC``,
        ``logLik``, ``deviance`` (``-2 logLik``), ``Chisq``, ``Df`` and
        ``Pr(>Chisq)`` (missing in the first row, and ``Pr(>Chisq)`` missing
        when ``Df`` is 0).  ``table.attrs["note"]`` holds the boundary caveat
        below and ``table.attrs["refitted"]`` the names of the models refitted
        by ML.  ``print(table)`` shows the whole table whatever pandas'
        display options (a DataFrame subclass; with one model too).

    Warns
    -----
    UserWarning
        When two consecutive models are not nested in their fixed effects or
        grouping factors, or a model is an approximate (iterative) fit whose
        log-likelihood carries Monte Carlo error.

    Notes
    -----
    The chi-square reference distribution assumes the null hypothesis is in
    the interior of the parameter space.  Testing whether a variance is 0 (a
    random intercept or slope present in the larger model only) puts it on the
    boundary: the p-value is then conservative, and the usual correction for a
    single variance is the 50:50 mixture of chi-square(0) and chi-square(1),
    i.e. half the chi-square(1) p-value (Self and Liang 1987; Stram and Lee
    1994).  This caveat is also ``table.attrs["note"]``.

    Examples
    --------
    lme4's ``anova(lmer(Reaction ~ Days + (1 | Subject), sleepstudy),
    lmer(Reaction ~ Days + (Days | Subject), sleepstudy))``:

    >>> from sklearn_mixed import MixedLinearRegressor, anova
    >>> from sklearn_mixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> X, y, subject = df[["Days"]], df["Reaction"], df["Subject"]
    >>> m0 = MixedLinearRegressor().fit(X, y, groups=subject)
    >>> m1 = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=subject)
    >>> table = anova(m0, m1, names=["intercept", "slope"])
    >>> print(table.drop(columns="Pr(>Chisq)").round(2).to_string())
               npar      AIC      BIC  logLik  deviance  Chisq    Df
    intercept     4  1802.08  1814.85 -897.04   1794.08    NaN  <NA>
    slope         6  1763.94  1783.10 -875.97   1751.94  42.14     2
    >>> print(f"{table.loc['slope', 'Pr(>Chisq)']:.3g}")
    7.07e-10
    >>> table.attrs["refitted"]
    ['intercept', 'slope']
    """
    models = tuple(map(array_estimator, models))  # a formula estimator's fit
    if len(models) == 1:
        _check_models(models, None, minimum=1)
        return models[0].anova(ddf=ddf)
    names = _check_models(models, names, minimum=2)
    _check_same_response(models, names)
    refitted = []
    if refit:
        criteria = []
        for model, name in zip(models, names, strict=True):
            if model.method == "reml":
                refitted.append(name)
                criteria.append(_ml_refit_criterion(model, name))
            else:
                criteria.append(_own_criterion(model))
    else:
        _check_comparable_without_refit(models, names)
        criteria = [_own_criterion(model) for model in models]
    _warn_if_approximate(models, names)
    order = np.argsort([npar for npar, _ in criteria], kind="stable")
    _warn_if_not_nested([models[i] for i in order], [names[i] for i in order])
    table = _criteria_table([criteria[i] for i in order], [names[i] for i in order], models[0])
    _add_tests(table)
    table.attrs["note"] = BOUNDARY_NOTE
    table.attrs["refitted"] = refitted
    return table


def information_criteria(*models, names=None):
    """AIC, BIC, log-likelihood and number of parameters of fitted models.

    No refit: each row is the model's own criterion (``method_`` column:
    ``"REML"`` or ``"ML"``).  AIC and BIC compare models only when they are
    likelihoods of the same data, all ML fits or REML fits with the same fixed
    effects; a ``UserWarning`` says when the table mixes criteria that are not
    comparable.  Use :func:`anova` for refits and tests.

    Parameters
    ----------
    *models : fitted MixedLinearRegressor or CrossedEffectsRegressor
    names : list of str, default=None
        Row names, in the order of ``models``; ``"model 1"``, ... by default.

    Returns
    -------
    table : DataFrame
        One row per model, in the order given: ``npar``, ``AIC``, ``BIC``,
        ``logLik``, ``deviance`` and ``criterion``; it prints whole, as
        :func:`anova`'s table.

    Examples
    --------
    >>> from sklearn_mixed import MixedLinearRegressor, information_criteria
    >>> from sklearn_mixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> X, y, subject = df[["Days"]], df["Reaction"], df["Subject"]
    >>> m0 = MixedLinearRegressor(method="ml").fit(X, y, groups=subject)
    >>> m1 = MixedLinearRegressor(method="ml", random_slopes=["Days"]).fit(X, y, groups=subject)
    >>> print(information_criteria(m0, m1).round(2).to_string())
             npar      AIC      BIC  logLik  deviance criterion
    model 1     4  1802.08  1814.85 -897.04   1794.08        ML
    model 2     6  1763.94  1783.10 -875.97   1751.94        ML
    """
    models = tuple(map(array_estimator, models))  # a formula estimator's fit
    names = _check_models(models, names, minimum=1)
    if len(models) > 1:
        problem = _incomparable_criteria(models)
        if problem:
            warnings.warn(
                f"information_criteria: {problem} Compare fits by method='ml', or use "
                "anova(..., refit=True), which refits REML fits by ML.",
                UserWarning,
                stacklevel=2,
            )
    table = _criteria_table([_own_criterion(m) for m in models], names, models[0])
    table["criterion"] = [m.method.upper() for m in models]
    return table


# ------------------------------------------------------------------ helpers
def _check_models(models, names, minimum):
    """Fitted estimators with training data, and their row names."""
    if len(models) < minimum:
        raise ValueError(f"need at least {minimum} fitted model(s), got {len(models)}")
    for i, model in enumerate(models, start=1):
        if not hasattr(model, "_random_specs"):
            raise TypeError(
                f"argument {i} is a {type(model).__name__}; expected a fitted "
                "MixedLinearRegressor or CrossedEffectsRegressor"
            )
        check_is_fitted(model, "model_")
    if names is None:
        return [f"model {i}" for i in range(1, len(models) + 1)]
    names = [str(name) for name in names]
    if len(names) != len(models) or len(set(names)) != len(names):
        raise ValueError(f"names must be {len(models)} distinct names, got {names!r}")
    return names


def _check_same_response(models, names):
    """lme4 requires the same data; here: the same number of rows and the same y
    (the same response sums when a model kept no rows: fitted from chunks)."""
    sums = any(m.model_.data is None for m in models)
    y0 = _response_of(models[0], sums)
    for model, name in zip(models[1:], names[1:], strict=True):
        y = _response_of(model, sums)
        if y.shape != y0.shape or models[0].n_obs_ != model.n_obs_:
            raise ValueError(
                f"models were not fitted to the same data: {names[0]!r} has "
                f"{models[0].n_obs_} observations, {name!r} has {model.n_obs_}. Fit all models "
                "to the same rows (drop missing values before fitting)."
            )
        # sums of the same rows in another order agree to rounding (1e-10 relative)
        same = np.allclose(y, y0, rtol=1e-10, atol=0)
        if not (same if sums else np.array_equal(y, y0)):
            raise ValueError(
                f"models were not fitted to the same response: y of {name!r} differs from "
                f"y of {names[0]!r}. Likelihoods of different data are not comparable."
            )


def _response_of(model, sums):
    """The response of a model's rows or (``sums``) ``sum w``, ``sum log w``,
    ``sum w y`` and ``y'Wy`` from its reduction, whatever its fixed effects."""
    if not sums:
        return model.model_.data.y
    red = model.model_.reduction
    sums = [red.sum_w, red.sum_log_w]
    if red.intercept is not None:  # about 0: y'Wy, and 1'Wy in the intercept's entry
        red = red.recentred(np.zeros(red.p), 0.0)
        sums.append(red.Xy[red.intercept])
    return np.array([*sums, red.yy])


def _same_fixed_effects(models):
    """Whether the models have the same fixed-effects columns (their rows, or
    their centred cross-products for models fitted from chunks)."""
    if any(m.model_.data is None for m in models):
        r0 = models[0].model_.reduction
        return all(
            m.model_.reduction.p == r0.p
            and np.allclose(m.model_.reduction.XX, r0.XX, rtol=1e-10)
            and np.allclose(m.model_.reduction.shift_X, r0.shift_X, rtol=1e-10)
            for m in models[1:]
        )
    d0 = models[0].model_.data.X
    return all(
        m.model_.data.X.shape == d0.shape and np.array_equal(m.model_.data.X, d0)
        for m in models[1:]
    )


def _incomparable_criteria(models):
    """Why the models' own criteria are not comparable, or ``""``."""
    methods = {m.method for m in models}
    if len(methods) > 1:
        return "some models were fitted by REML and some by ML; their criteria differ."
    if methods == {"reml"} and not _same_fixed_effects(models):
        return (
            "the models were fitted by REML and their fixed effects differ; REML "
            "criteria are comparable only between models with the same fixed effects."
        )
    return ""


def _check_comparable_without_refit(models, names):
    problem = _incomparable_criteria(models)
    if problem:
        raise ValueError(f"anova(refit=False): {problem} Use refit=True to refit them by ML.")


def _own_criterion(model):
    """``(npar, logLik)`` as fitted."""
    return model.model_.result.n_params, float(model.log_likelihood_)


def _ml_refit_criterion(model, name):
    """``(npar, logLik)`` of the model refitted by ML with its own solver and settings."""
    fit = model.model_.refit("ml").result
    if not fit.converged:
        warnings.warn(
            f"the ML refit of {name!r} did not converge after {fit.n_iter} iterations "
            f"({fit.message}); its log-likelihood may be too low. Increase max_iter.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return fit.n_params, float(fit.log_likelihood)


def _warn_if_approximate(models, names):
    approximate = [
        n for m, n in zip(models, names, strict=True) if getattr(m, "approximate_", False)
    ]
    if approximate:
        warnings.warn(
            f"{approximate!r} are approximate iterative fits: their log-likelihoods carry "
            "Monte Carlo error (log_likelihood_se_), and so do the chi-square statistics. "
            "Use solver='exact' where feasible for a test.",
            UserWarning,
            stacklevel=3,
        )


def _not_nested_reason(small, large):
    """Why ``small`` is visibly not nested in ``large`` (a necessary check), or ``""``."""
    missing = set(small.group_names_) - set(large.group_names_)
    if missing:
        return f"grouping factor(s) {sorted(missing)!r} are not in the larger model"
    for factor, slopes in small.random_slope_names_.items():
        extra = set(slopes) - set(large.random_slope_names_.get(factor, []))
        if extra:
            return f"random slope(s) {sorted(extra)!r} on {factor!r} are not in the larger model"
    if small.model_.data is None or large.model_.data is None:  # fitted from chunks
        extra = set(small.fixed_effect_names_) - set(large.fixed_effect_names_)
        return f"its fixed effects {sorted(extra)!r} are not in the larger model" if extra else ""
    X_small, X_large = small.model_.data.X, large.model_.data.X
    coef, *_ = np.linalg.lstsq(X_large, X_small, rcond=None)
    residual = np.linalg.norm(X_small - X_large @ coef)
    if residual > 1e-8 * max(np.linalg.norm(X_small), 1.0):
        return "its fixed effects are not in the column space of the larger model's"
    return ""


def _warn_if_not_nested(models, names):
    for i in range(1, len(models)):
        reason = _not_nested_reason(models[i - 1], models[i])
        if reason:
            warnings.warn(
                f"{names[i - 1]!r} does not look nested in {names[i]!r}: {reason}. The "
                "likelihood-ratio test needs nested models; compare non-nested models by "
                "AIC or BIC only.",
                UserWarning,
                stacklevel=3,
            )


def _criteria_table(criteria, names, model):
    """npar, AIC, BIC, logLik, deviance; lme4's AIC and BIC from logLik."""
    npar = np.array([c[0] for c in criteria])
    loglik = np.array([c[1] for c in criteria])
    n = model.model_.n
    return ResultTable(
        {
            "npar": npar,
            "AIC": -2.0 * loglik + 2.0 * npar,
            "BIC": -2.0 * loglik + np.log(n) * npar,
            "logLik": loglik,
            "deviance": -2.0 * loglik,
        },
        index=pd.Index(names),
        columns=_IC_COLUMNS,
    )


def _add_tests(table):
    """Chisq, Df and Pr(>Chisq) of each row against the row above, as lme4."""
    loglik = table["logLik"].to_numpy()
    df = np.diff(table["npar"].to_numpy())
    chisq = 2.0 * np.maximum(0.0, np.diff(loglik))
    # no test between models with the same number of parameters (Df = 0)
    p_value = np.where(df > 0, stats.chi2.sf(chisq, np.maximum(df, 1)), np.nan)
    table["Chisq"] = np.concatenate([[np.nan], chisq])
    table["Df"] = pd.array([pd.NA, *df.tolist()], dtype="Int64")
    table["Pr(>Chisq)"] = np.concatenate([[np.nan], p_value])
