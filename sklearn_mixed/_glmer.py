"""lme4's ``glmer(formula, data, family, weights, offset, nAGQ)`` in one call."""

from ._formula_glmer import GlmerClassifier, GlmerRegressor
from ._formula_read import column_or_values, refuse_row_selection, with_offset

__all__ = ["glmer"]


def glmer(formula, data, family="binomial", weights=None, offset=None, nAGQ=1, **params):
    """Fit an lme4 GLMM formula in one call, as lme4's ``glmer``.

    The formula is read with R's syntax and meaning, as by
    :class:`GlmerClassifier` (binomial) and :class:`GlmerRegressor`
    (Poisson): ``I(x^2)``, ``log(x)``, ``offset(log(t))``, categorical
    columns coded as R's, ``cbind(successes, failures)`` responses, ``(x |
    g)``, ``(x || g)``, crossed and nested factors.

    Parameters
    ----------
    formula : str
        E.g. ``"r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)"``.
    data : DataFrame
    family : {"binomial", "poisson"}, default="binomial"
        Binomial with the logit link (:class:`MixedLogisticRegression`) or
        Poisson with the log link (:class:`MixedPoissonRegressor`).
    weights : str or array-like, default=None
        Prior weights (a column name or values).  For the binomial family
        with a proportion as response they are the numbers of trials (lme4's
        ``prop ~ ..., weights = size``), and the log-likelihood includes the
        binomial coefficients, as lme4's.
    offset : str or array-like, default=None
        Known part of the linear predictor, e.g. ``np.log(data["exposure"])``
        (lme4's ``offset = log(exposure)``; Poisson only).
    nAGQ : int, default=1
        1: Laplace; more: adaptive Gauss-Hermite quadrature (one scalar
        random-effect term).
    **params
        Other estimator parameters (``new_groups``, ``max_iter``, ``tol``).

    Returns
    -------
    GlmerClassifier or GlmerRegressor
        The fitted estimator (binomial: ``classes_`` are ``[0, 1]`` for a
        numeric response, the two labels otherwise); ``predict`` and
        ``predict_proba`` take raw data.

    Examples
    --------
    lme4's ``glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
    cbpp, binomial)``, written with proportions and trials:

    >>> import pandas as pd
    >>> from sklearn_mixed import glmer
    >>> cbpp = pd.DataFrame({
    ...     "herd": [str(h) for h in range(1, 9) for _ in range(2)],
    ...     "period": ["1", "2"] * 8,
    ...     "incidence": [2, 3, 4, 0, 3, 1, 1, 2, 0, 2, 1, 1, 5, 3, 0, 1],
    ...     "size": [14, 12, 9, 5, 22, 18, 21, 16, 8, 16, 10, 9, 20, 16, 10, 9]})
    >>> cbpp["prop"] = cbpp["incidence"] / cbpp["size"]
    >>> model = glmer("prop ~ period + (1 | herd)", cbpp, weights="size")
    >>> list(model.fixed_effect_names_)
    ['(Intercept)', 'period2']
    """
    if family not in ("binomial", "poisson"):
        raise ValueError(f"family must be 'binomial' or 'poisson', got {family!r}")
    if "method" in params:
        raise ValueError("GLMMs are fitted by maximum likelihood; glmer takes no method=")
    refuse_row_selection(params)
    w = column_or_values(weights, data, "weights")
    if offset is not None and family != "poisson":
        raise ValueError("offset is supported for the Poisson family only")
    formula, data = with_offset(formula, data, offset)
    if family == "poisson":
        estimator = GlmerRegressor(formula, nagq=nAGQ, **params)
    else:
        estimator = GlmerClassifier(formula, nagq=nAGQ, **params)
    return estimator.fit(data, sample_weight=w)
