"""Model comparison (lme4's ``anova``) and t-tests of the fixed effects (lmerTest).

- :func:`anova`: likelihood-ratio tests between nested fitted models, refitting
  REML fits by maximum likelihood as lme4's ``anova(m0, m1)`` does;
- :func:`information_criteria`: AIC, BIC and log-likelihood of several fits,
  side by side, without refits;
- :func:`fixed_effects_tests`: the t-tests of the fixed effects with
  Satterthwaite's degrees of freedom, as lmerTest's ``summary(lmer(...))``
  (the estimators' ``fixed_effects_tests`` method).
"""

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from .core.satterthwaite import EIGENVALUE_TOL, satterthwaite_components

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


def anova(*models, refit=True, names=None):
    """Likelihood-ratio tests between nested mixed models, as lme4's ``anova(m0, m1, ...)``.

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
        At least two models fitted to the same ``y``.
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

    Returns
    -------
    table : DataFrame
        One row per model, sorted by ``npar``: ``npar``, ``AIC``, ``BIC``,
        ``logLik``, ``deviance`` (``-2 logLik``), ``Chisq``, ``Df`` and
        ``Pr(>Chisq)`` (missing in the first row, and ``Pr(>Chisq)`` missing
        when ``Df`` is 0).  ``table.attrs["note"]`` holds the boundary caveat
        below and ``table.attrs["refitted"]`` the names of the models refitted
        by ML.

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
        ``logLik``, ``deviance`` and ``criterion``.

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


def fixed_effects_tests(model, ddf="satterthwaite"):
    """t-tests of a fitted model's fixed effects (the estimators' method).

    See :meth:`MixedLinearRegressor.fixed_effects_tests
    <sklearn_mixed.MixedLinearRegressor.fixed_effects_tests>`.
    """
    check_is_fitted(model)
    if ddf not in ("satterthwaite", "residual"):
        raise ValueError(f"ddf must be 'satterthwaite' or 'residual', got {ddf!r}")
    if getattr(model, "approximate_", False):
        raise ValueError(
            "fixed_effects_tests needs the exact (RE)ML deviance, but this model is an "
            "approximate iterative fit (approximate_=True). Refit with solver='exact'."
        )
    beta, beta_cov = model._beta, model.fixed_effects_cov_
    training = model._training
    n, p = training.design.shape
    if ddf == "residual":
        df = np.full(p, float(n - p))
    else:
        components = satterthwaite_components(
            training.design,
            training.y,
            training.terms,
            model.method,
            model.theta_,
            np.sqrt(model.residual_variance_),
        )
        _warn_about_hessian(components.hessian_eigenvalues)
        df = components.df(np.eye(p))
    se = np.sqrt(np.diag(beta_cov))
    t = beta / se
    return pd.DataFrame(
        {
            "estimate": beta,
            "std_error": se,
            "df": df,
            "t_value": t,
            "p_value": 2.0 * stats.t.sf(np.abs(t), df),
        },
        index=pd.Index(model._fixed_names(), name="term"),
    )


def _warn_about_hessian(eigenvalues):
    """lmerTest's warnings: the Hessian in (theta, sigma) is not positive definite."""
    bad = eigenvalues[eigenvalues <= EIGENVALUE_TOL]
    if bad.size:
        warnings.warn(
            f"the Hessian of the deviance in (theta, sigma) has {bad.size} eigenvalue(s) "
            f"at or below {EIGENVALUE_TOL:g} ({', '.join(f'{v:.1e}' for v in bad)}): the fit "
            "is on the boundary (a variance at 0) or did not converge. The Satterthwaite df "
            "leave those directions out (as lmerTest does); check converged_ and singular_, "
            "or simplify the random effects.",
            UserWarning,
            stacklevel=4,  # the caller of the estimator's method
        )


# ------------------------------------------------------------------ helpers
def _check_models(models, names, minimum):
    """Fitted estimators with training data, and their row names."""
    if len(models) < minimum:
        raise ValueError(f"need at least {minimum} fitted model(s), got {len(models)}")
    for i, model in enumerate(models, start=1):
        if not hasattr(model, "_fit_terms"):
            raise TypeError(
                f"argument {i} is a {type(model).__name__}; expected a fitted "
                "MixedLinearRegressor or CrossedEffectsRegressor"
            )
        check_is_fitted(model, "_training")
    if names is None:
        return [f"model {i}" for i in range(1, len(models) + 1)]
    names = [str(name) for name in names]
    if len(names) != len(models) or len(set(names)) != len(names):
        raise ValueError(f"names must be {len(models)} distinct names, got {names!r}")
    return names


def _check_same_response(models, names):
    """lme4 requires the same data; here: the same number of rows and the same y."""
    y0 = models[0]._training.y
    for model, name in zip(models[1:], names[1:], strict=True):
        y = model._training.y
        if y.shape != y0.shape:
            raise ValueError(
                f"models were not fitted to the same data: {names[0]!r} has "
                f"{y0.shape[0]} observations, {name!r} has {y.shape[0]}. Fit all models "
                "to the same rows (drop missing values before fitting)."
            )
        if not np.array_equal(y, y0):
            raise ValueError(
                f"models were not fitted to the same response: y of {name!r} differs from "
                f"y of {names[0]!r}. Likelihoods of different data are not comparable."
            )


def _same_fixed_effects(models):
    d0 = models[0]._training.design
    return all(
        m._training.design.shape == d0.shape and np.array_equal(m._training.design, d0)
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
    npar = model._beta.size + model.theta_.size + 1
    return npar, float(model.log_likelihood_)


def _ml_refit_criterion(model, name):
    """``(npar, logLik)`` of the model refitted by ML with its own solver and settings."""
    training = model._training
    estimator = clone(model).set_params(method="ml")
    fit = estimator._fit_terms(training.design, training.y, training.terms)
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
    X_small, X_large = small._training.design, large._training.design
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
    n = model._training.y.shape[0]
    return pd.DataFrame(
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
