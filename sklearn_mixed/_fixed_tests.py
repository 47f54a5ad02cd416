"""Tests of the fixed effects, as lmerTest: t-tests and F tests of terms.

- :func:`fixed_effects_tests`: each coefficient's t-test with Satterthwaite's
  degrees of freedom (lmerTest's ``summary(lmer(...))``);
- :func:`fixed_effects_anova`: the F test of each fixed-effect *term* (a
  factor's dummies together), lmerTest's ``anova(fit)`` (type III,
  Satterthwaite's denominator degrees of freedom).

A term's hypothesis ``L beta = 0`` is given by the estimator's
``fixed_terms``: a list of feature names (the hypothesis that their
coefficients are all 0) or a hypothesis matrix over the fixed columns (the
formula door computes lmerTest's type III contrasts for terms contained in
interactions); without it each feature is its own term.
"""

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.utils.validation import check_is_fitted

from ._groups import INTERCEPT
from ._tables import ResultTable
from .core.satterthwaite import EIGENVALUE_TOL, satterthwaite_components, satterthwaite_f_test

__all__ = ["fixed_effects_anova", "fixed_effects_tests"]

ANOVA_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]


def _check_exact(model, what):
    check_is_fitted(model)
    if getattr(model, "approximate_", False):
        raise ValueError(
            f"{what} needs the exact (RE)ML deviance, but this model is an approximate "
            "iterative fit (approximate_=True). Refit with solver='exact'."
        )
    if model.model_.fixed_sigma is not None:
        raise ValueError(
            f"{what} with Satterthwaite's df treats sigma as a parameter; with a known "
            "sigma (fixed_sigma) use ddf='residual', or the Wald intervals of confint()."
        )


def _components(model):
    components = satterthwaite_components(model.model_)
    _warn_about_hessian(components.hessian_eigenvalues)
    return components


def fixed_effects_tests(model, ddf="satterthwaite"):
    """t-tests of a fitted model's fixed effects (the estimators' method).

    See :meth:`MixedLinearRegressor.fixed_effects_tests
    <sklearn_mixed.MixedLinearRegressor.fixed_effects_tests>`.
    """
    if ddf not in ("satterthwaite", "residual"):
        raise ValueError(f"ddf must be 'satterthwaite' or 'residual', got {ddf!r}")
    check_is_fitted(model)
    fit = model.model_.result
    n, p = fit.n, fit.p
    if ddf == "residual":
        df = np.full(p, float(n - p))
    else:
        _check_exact(model, "fixed_effects_tests")
        df = _components(model).df(np.eye(p))
    se = np.sqrt(np.diag(fit.beta_cov))
    t = fit.beta / se
    return ResultTable(
        {
            "estimate": fit.beta,
            "std_error": se,
            "df": df,
            "t_value": t,
            "p_value": 2.0 * stats.t.sf(np.abs(t), df),
        },
        index=pd.Index(model.fixed_effect_names_, name="term"),
    )


def term_hypotheses(spec, all_names, kept_names):
    """``{term: L}``, each term's hypothesis matrix over the fitted fixed columns.

    Parameters
    ----------
    spec : dict or None
        The estimator's ``fixed_terms``: per term a list of fixed column
        names, or a matrix over ``all_names``; None: one term per column
        but the intercept.
    all_names : list of str
        The fixed columns before aliased ones were dropped.
    kept_names : list of str
        The fitted fixed columns.

    Returns
    -------
    dict of str -> ndarray or None
        None for a hypothesis on an aliased (dropped) column: not estimable.
    """
    if spec is None:
        spec = {name: [name] for name in kept_names if name != INTERCEPT}
    out = {}
    for label, value in spec.items():
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            unknown = [v for v in value if v not in all_names]
            if unknown:
                raise ValueError(
                    f"fixed_terms[{label!r}] names {unknown!r}, not fixed-effect columns "
                    f"{list(all_names)!r}"
                )
            L = np.zeros((len(value), len(all_names)))
            L[np.arange(len(value)), [all_names.index(v) for v in value]] = 1.0
        else:
            L = np.atleast_2d(np.asarray(value, dtype=float))
            if L.shape[1] != len(all_names):
                raise ValueError(
                    f"fixed_terms[{label!r}] has {L.shape[1]} columns; the fixed columns are "
                    f"{list(all_names)!r}"
                )
        kept = [list(all_names).index(v) for v in kept_names]
        dropped = np.ones(len(all_names), dtype=bool)
        dropped[kept] = False
        if np.any(np.abs(L[:, dropped]) > 1e-8):
            out[label] = None
        else:
            L = L[:, kept]
            out[label] = L[np.abs(L).sum(axis=1) > 1e-8]
    return out


def fixed_effects_anova(model, hypotheses, ddf="satterthwaite"):
    """lmerTest's ``anova(fit)``: F tests of the fixed-effect terms (type III).

    ``hypotheses`` from :func:`term_hypotheses`.  See
    :meth:`MixedLinearRegressor.anova <sklearn_mixed.MixedLinearRegressor.anova>`.
    """
    if ddf not in ("satterthwaite", "residual"):
        raise ValueError(f"ddf must be 'satterthwaite' or 'residual', got {ddf!r}")
    check_is_fitted(model)
    fit = model.model_.result
    if ddf == "satterthwaite":
        _check_exact(model, "anova")
        components = _components(model)
    rows = []
    for L in hypotheses.values():
        if L is None or L.shape[0] == 0:
            rows.append([np.nan] * 6)
            continue
        if ddf == "satterthwaite":
            F, q, den, ss, ms = satterthwaite_f_test(components, L, fit.beta, fit.sigma2)
        else:
            F, q, den, ss, ms = _residual_f_test(L, fit)
        rows.append([ss, ms, q, den, F, stats.f.sf(F, q, den)])
    table = ResultTable(rows, index=pd.Index(list(hypotheses), name="term"), columns=ANOVA_COLUMNS)
    method = "Satterthwaite's" if ddf == "satterthwaite" else "residual"
    table.attrs["heading"] = f"Type III Analysis of Variance Table with {method} method"
    return table


def _residual_f_test(L, fit):
    """The Wald F test of ``L beta = 0`` on ``n - p`` denominator df."""
    VL = L @ fit.beta_cov @ L.T
    d, P = np.linalg.eigh(0.5 * (VL + VL.T))
    keep = d > max(np.sqrt(np.finfo(float).eps) * d.max(), 0.0)
    q = int(keep.sum())
    PtL = P[:, keep].T @ L
    F = float(np.sum((PtL @ fit.beta) ** 2 / d[keep]) / q)
    ms = F * fit.sigma2
    return F, q, float(fit.n - fit.p), ms * q, ms


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
