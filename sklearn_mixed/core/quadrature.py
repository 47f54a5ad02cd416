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

__all__ = ["quadrature_deviance", "quadrature_gradient"]


def _node_terms(predictor, family, prior, state, nagq):
    """Per level and node: the log of the quadrature terms, the nodes ``u_jk`` and
    the rows' means there; and the parts of the criterion."""
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
    log_terms, u_nodes, mu_nodes = np.empty((m, nagq)), np.empty((m, nagq)), []
    for k, (x, w) in enumerate(zip(nodes, weights, strict=True)):
        shift = s * x  # u_j + s_j x_k
        mu_k = family.linkinv(eta + lam * z * shift[codes])
        dev_k = (u + shift) ** 2 + np.bincount(
            codes, weights=family.unit_deviance(y, mu_k, prior), minlength=m
        )
        log_terms[:, k] = np.log(w) - 0.5 * (dev_k - devc0) + 0.5 * x * x
        u_nodes[:, k] = u + shift
        mu_nodes.append(mu_k)
    return log_terms, u_nodes, mu_nodes, devc0, curvature


def _log_sum(log_terms):
    top = log_terms.max(axis=1)
    return top + np.log(np.exp(log_terms - top[:, None]).sum(axis=1))


def quadrature_deviance(predictor, family, prior, state, nagq):
    """The AGQ criterion (-2 log-likelihood) at a converged PIRLS state."""
    log_terms, _, _, devc0, curvature = _node_terms(predictor, family, prior, state, nagq)
    return float(devc0.sum() + np.log(curvature).sum() - 2.0 * _log_sum(log_terms).sum())


def quadrature_gradient(predictor, family, prior, state, nagq):
    """``d/d(lambda, beta)`` of the AGQ criterion, its nodes moving with the mode.

    Per level ``D_j = -2 log s_j - 2 log sum_k w_k exp(-devc(u_jk) / 2 + x_k^2 /
    2)`` with ``u_jk = u_j + s_j x_k``, so with ``pi_jk`` the weights of the
    terms (they sum to 1)::

        dD_j = sum_k pi_jk [d_p devc(u_jk) + devc'(u_jk) (du_j + x_k ds_j)] - 2 ds_j / s_j

    ``d_p devc`` at fixed ``u`` is ``-2 sum_i w_i (y_i - mu_ik) d eta_i`` with
    ``d eta = x`` for beta and ``z u`` for lambda (canonical link); ``devc' =
    2 u - 2 lambda sum_i w_i (y_i - mu_ik) z_i``.  The mode moves as
    ``du_j = -d_u d_p devc / d_u^2 devc`` (``d_u^2 devc = 2 / s_j^2``) and
    ``s_j = (1 + lambda^2 sum_i W_i z_i^2)^-1/2`` with the weights ``W`` at the
    mode, ``dW = W'(eta) d eta``.
    """
    log_terms, u_nodes, mu_nodes, _, curvature = _node_terms(predictor, family, prior, state, nagq)
    pi = np.exp(log_terms - _log_sum(log_terms)[:, None])  # (m, nagq), rows sum to 1
    (term,) = predictor.terms
    codes, z, y, X = term.codes, term.covariates[:, 0], predictor.y, predictor.X
    m, lam = term.n_levels, float(state.T[0][0, 0])
    u = state.u[0][:, 0]
    s = 1.0 / np.sqrt(curvature)
    _, W, _ = family.working(y, state.eta, prior)
    Wp = family.weight_derivative(state.eta, prior)
    r0 = prior * (y - state.mu)  # at the mode

    def per_level(values):
        return np.bincount(codes, weights=values, minlength=m)

    # derivatives in p = (lambda, beta): columns of the rows' d eta at fixed u
    d_eta = np.column_stack([z * u[codes], X])  # (n, 1 + p)
    # the mode: d_u d_p devc = 2 (lambda W z d_eta - r0 z [p = lambda])
    cross = 2.0 * lam * np.stack([per_level(W * z * d_eta[:, c]) for c in range(d_eta.shape[1])], 1)
    cross[:, 0] -= 2.0 * per_level(r0 * z)
    du = -cross * (s * s / 2.0)[:, None]  # (m, 1 + p)
    # the scale: d(lambda^2 sum W z^2) = 2 lambda dlambda sum W z^2 + lambda^2 sum W' z^2 d eta
    total_eta = d_eta + lam * z[:, None] * du[codes]
    d_curv = (
        lam
        * lam
        * np.stack([per_level(Wp * z * z * total_eta[:, c]) for c in range(d_eta.shape[1])], 1)
    )
    d_curv[:, 0] += 2.0 * lam * per_level(W * z * z)
    ds = -0.5 * s[:, None] ** 3 * d_curv  # (m, 1 + p)
    grad = (-2.0 * ds / s[:, None]).sum(axis=0)
    for k, mu_k in enumerate(mu_nodes):
        r = prior * (y - mu_k)
        u_k = u_nodes[:, k]
        explicit = -2.0 * np.stack(
            [per_level(r * z * u_k[codes])] + [per_level(r * X[:, c]) for c in range(X.shape[1])],
            1,
        )
        slope = 2.0 * u_k - 2.0 * lam * per_level(r * z)  # devc'(u_jk)
        x_k = (u_k - u) / np.where(s > 0, s, 1.0)
        moved = slope[:, None] * (du + x_k[:, None] * ds)
        grad += (pi[:, k][:, None] * (explicit + moved)).sum(axis=0)
    return grad
