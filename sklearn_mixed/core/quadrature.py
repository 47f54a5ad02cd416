"""Adaptive Gauss-Hermite quadrature of a GLMM with one scalar random-effect term.

With one scalar term the levels' random effects are independent given the
data, and each level's integral ``int p(y_j | u) phi(u) du`` is one
dimensional.  Centred at the mode ``u_j`` and scaled by ``s_j = 1 / L_jj``
(``L_jj^2 = 1 + lambda^2 sum_i W_i z_i^2``, the Laplace curvature), with
``devc_j(u) = u^2 + sum_{i in j} d_i(u)`` (unit deviances)::

    -2 log int = devc_j(u_j) + log L_jj^2 - 2 log sum_k w_k exp(-(devc_j(u_j + s_j x_k)
                 - devc_j(u_j)) / 2 + x_k^2 / 2)

over probabilists' Gauss-Hermite nodes ``x_k`` with weights ``w_k`` summing
to 1 (one node: the Laplace approximation).  As lme4's ``nAGQ > 1`` the sum
over levels is on the deviance scale: relative to the saturated model, so
without the binomial coefficients or ``log y!`` of the Laplace criterion
(the two agree for 0/1 data).
"""

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

__all__ = ["quadrature_deviance"]


def quadrature_deviance(predictor, family, prior, state, nagq):
    """The AGQ criterion (-2 log-likelihood) at a converged PIRLS state."""
    (term,) = predictor.terms
    lam = float(state.T[0][0, 0])
    z = term.covariates[:, 0]
    codes, m = term.codes, term.n_levels
    y, eta = predictor.y, state.eta
    _, W, _ = family.working(y, eta, prior)
    curvature = 1.0 + lam * lam * np.bincount(codes, weights=W * z * z, minlength=m)
    s = 1.0 / np.sqrt(curvature)  # L_jj^-1
    u = state.u[0][:, 0]
    d0 = family.unit_deviance(y, state.mu, prior)
    devc0 = u * u + np.bincount(codes, weights=d0, minlength=m)
    nodes, weights = hermegauss(nagq)
    weights = weights / weights.sum()
    log_terms = np.empty((m, nagq))
    for k, (x, w) in enumerate(zip(nodes, weights, strict=True)):
        shift = s * x  # u_j + s_j x_k
        mu_k = family.linkinv(eta + lam * z * shift[codes])
        dev_k = (u + shift) ** 2 + np.bincount(
            codes, weights=family.unit_deviance(y, mu_k, prior), minlength=m
        )
        log_terms[:, k] = np.log(w) - 0.5 * (dev_k - devc0) + 0.5 * x * x
    top = log_terms.max(axis=1)
    log_mult = top + np.log(np.exp(log_terms - top[:, None]).sum(axis=1))
    return float(devc0.sum() + np.log(curvature).sum() - 2.0 * log_mult.sum())
