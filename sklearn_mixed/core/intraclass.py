"""Intraclass correlations of the random intercepts.

With random intercepts ``eta_f ~ N(0, tau_f^2)`` for the factors ``f`` and a
residual ``eps ~ N(0, sigma^2)``, an observation's variance (at ``x = 0`` when
some coefficients vary by group: only the intercepts count there) is

``V = sum_g tau_g^2 + sigma^2``,

and two observations that share the levels of the factors in a set ``S`` (and
differ in all other factors) have covariance ``sum_{g in S} tau_g^2``, hence
correlation ``sum_{g in S} tau_g^2 / V``.  Two correlations per factor ``f``:

- ``icc``: ``S = {f}``, ``tau_f^2 / V``, factor ``f``'s share of the variance;
- ``icc_same_level``: ``S`` = ``f`` and every factor that ``f`` is nested in
  (two observations in the same level of ``f`` are necessarily in the same
  level of those), e.g. for casks nested in batches,
  ``(tau_cask^2 + tau_batch^2) / V``.  Equal to ``icc`` for a factor nested in
  no other.

Plain arrays only: no pandas, no scikit-learn.
"""

import numpy as np

__all__ = ["containing_factors", "intraclass_correlations"]


def containing_factors(reduction):
    """``contains[f, g]``: sharing a level of ``f`` implies sharing one of ``g``.

    True when ``f``'s partition of the rows refines ``g``'s (``f`` is nested
    in ``g``, or ``f`` and ``g`` group the rows identically), and on the
    diagonal; from the level cross-tabulations of a
    :class:`~.reduction.Reduction`.
    """
    m = len(reduction.terms)
    contains = np.eye(m, dtype=bool)
    for f in range(m):
        for g in range(m):
            if f != g:
                contains[f, g] = reduction.nested(f, g)
    return contains


def intraclass_correlations(intercept_variances, sigma2, contains):
    """``(icc, icc_same_level)`` per factor, as defined in the module docstring.

    Parameters
    ----------
    intercept_variances : ndarray of shape (m,)
        ``tau_f^2``, the random-intercept variance of each factor.
    sigma2 : float
        Residual variance.
    contains : ndarray of shape (m, m), bool
        From :func:`containing_factors`.

    Returns
    -------
    icc : ndarray of shape (m,)
    icc_same_level : ndarray of shape (m,)

    Examples
    --------
    >>> import numpy as np
    >>> contains = np.array([[True, False], [True, True]])  # factor 1 nested in 0
    >>> icc, same = intraclass_correlations(np.array([1.0, 2.0]), 1.0, contains)
    >>> icc, same
    (array([0.25, 0.5 ]), array([0.25, 0.75]))
    """
    tau2 = np.asarray(intercept_variances, dtype=float)
    total = tau2.sum() + float(sigma2)
    if total <= 0:
        nan = np.full(tau2.shape, np.nan)
        return nan, nan.copy()
    return tau2 / total, (contains @ tau2) / total
