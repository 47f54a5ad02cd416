"""lme4's ``glmer(formula, data, family, weights, offset, nAGQ)`` in one call."""

import numpy as np
from pandas.api.types import is_numeric_dtype

from ._mixed_glm import MixedLogisticRegression, MixedPoissonRegressor
from .formula import _read_formula

__all__ = ["glmer"]

_FAMILIES = {"binomial": MixedLogisticRegression, "poisson": MixedPoissonRegressor}


def _column_or_array(value, data, what):
    """A column of ``data`` by name, or the values given."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in data.columns:
            raise ValueError(f"{what} names column {value!r}, which is not in the data")
        return data[value].to_numpy(dtype=float)
    values = np.asarray(value, dtype=float).reshape(-1)
    if values.shape[0] != len(data):
        raise ValueError(f"{what} has {values.shape[0]} values for {len(data)} rows")
    return values


def glmer(formula, data, family="binomial", weights=None, offset=None, nAGQ=1, **params):
    """Fit an lme4 GLMM formula in one call, as lme4's ``glmer``.

    The formula is read as by :func:`from_formula` (fixed part, categorical
    columns coded as R's, ``(x | g)``, ``(x || g)``, crossed and nested
    factors).

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
    MixedLogisticRegression or MixedPoissonRegressor
        The fitted estimator (binomial: ``classes_`` are ``[0, 1]`` for a
        numeric response, the two labels otherwise).

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
    if family not in _FAMILIES:
        raise ValueError(f"family must be one of {sorted(_FAMILIES)}, got {family!r}")
    if "method" in params:
        raise ValueError("GLMMs are fitted by maximum likelihood; glmer takes no method=")
    X, y, groups, formula_params, _, _ = _read_formula(
        formula, data, params, numeric_response=family == "poisson"
    )
    formula_params.pop("fixed_terms", None)
    estimator = _FAMILIES[family](nagq=nAGQ, **formula_params, **params)
    w = _column_or_array(weights, data, "weights")
    off = _column_or_array(offset, data, "offset")
    groups = groups if groups.shape[1] else None
    if family == "poisson":
        return estimator.fit(X, y.astype(float), groups=groups, sample_weight=w, offset=off)
    if off is not None:
        raise ValueError("offset is supported for the Poisson family only")
    if is_numeric_dtype(y):
        return estimator._fit_proportions(X, y.to_numpy(dtype=float), groups, w)
    return estimator.fit(X, y, groups=groups, sample_weight=w)
