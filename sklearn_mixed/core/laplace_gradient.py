"""The gradient of a GLMM's Laplace criterion in ``(theta, beta)``.

At the modes ``u`` (``dpdev/du = 0``, ``pdev = sum_i d_i + ||u||^2``) the
Laplace criterion ``D = pdev + log|M| + const``, ``M = A'WA + I``,
``A = Z Lambda``, depends on ``(theta, beta)`` directly, through ``Lambda``
and ``eta``, and through the weights ``W(eta)`` of ``log|M|``; ``u`` moves
with them (implicit function theorem).  With the canonical link
(``dd_i/deta_i = -2 r_i``, ``r = w (y - mu)``), ``G = M^-1``, the leverages
``h_i = a_i' G a_i`` (``a_i`` row ``i`` of ``A``) and ``c = h W'(eta)``:

    d log|M| = c' d eta + 2 tr(G A'WZ dLambda)            (W, then Lambda)
    d eta    = X dbeta + Z dLambda u + D d omega
    d omega  = -Mt^-1 (D'WZ dLambda u - [dLambda'Z'r; 0])   (the free modes)

where ``omega`` are the quantities PIRLS solves for (``u``, and ``beta``
when beta is inside PIRLS: ``D = [A, X]``, ``Mt = D'WD + diag(I, 0)``;
else ``D = A``, ``Mt = M``).  With ``v = Mt^-1 D'c`` and ``e = c - 2 r -
W D v``:

    dD/dbeta = X'e                                      (beta held fixed only)
    dD/dT_f  = sum_j (Z_f'e)_j u_j' + (Z_f'r)_j v_j' + 2 [Z'WZ Lambda G]_jj

per term ``f``, level ``j`` (``k x k`` blocks), mapped to theta by the
covariance structures.  One inversion of the dense system: for models the
working fit solves dense (:meth:`~.model.LinearMixedModel.penalized_system`).
"""

import numpy as np
import scipy.linalg as la
from scipy.linalg import lapack

__all__ = ["laplace_gradient"]


def _level_sums(term, values):
    """``Z_f' values`` as ``(m, k)``: per level, sum of ``values * z``."""
    out = np.empty((term.n_levels, term.n_coef))
    for a in range(term.n_coef):
        out[:, a] = np.bincount(
            term.codes, weights=values * term.covariates[:, a], minlength=term.n_levels
        )
    return out


def _leverages(terms, T, G):
    """``h_i = a_i' G a_i`` with ``a_i`` row ``i`` of ``Z Lambda`` (its nonzeros)."""
    columns, values, start = [], [], 0
    for t, T_t in zip(terms, T, strict=True):
        columns.append(start + t.codes[:, None] * t.n_coef + np.arange(t.n_coef)[None, :])
        values.append(t.covariates @ T_t)  # (Z Lambda)_i on the level's columns: z_i' T
        start += t.n_levels * t.n_coef
    h = np.zeros(terms[0].codes.shape[0])
    for cf, af in zip(columns, values, strict=True):
        for cg, ag in zip(columns, values, strict=True):
            block = G[cf[:, :, None], cg[:, None, :]]
            h += np.einsum("ia,iab,ib->i", af, block, ag)
    return h


def laplace_gradient(predictor, family, prior, state, theta, layout, beta_fixed):
    """``dD/dtheta`` (and ``dD/dbeta`` if ``beta_fixed``) at a converged PIRLS state,
    or None when the working model is not solved dense."""
    model = state.model
    system = None if model is None else model.penalized_system(theta)
    if system is None:
        return None
    ZWZL, L = system
    terms, T = predictor.terms, state.T
    q = ZWZL.shape[0]
    y, eta = predictor.y, state.eta
    _, W, _ = family.working(y, eta, prior)
    r = prior * (y - state.mu)
    L_inv, _ = lapack.dtrtri(L[:q, :q], lower=1)
    G = L_inv.T @ L_inv  # M^-1
    c = _leverages(terms, T, G) * family.weight_derivative(eta, prior)
    # D'c: A'c (per level T' Z_f'c), then X~'c for beta inside PIRLS
    Ac = np.concatenate(
        [(_level_sums(t, c) @ T_t).ravel() for t, T_t in zip(terms, T, strict=True)]
    )
    X_free = None
    if not beta_fixed and model.p:
        X_free = predictor.X - model.reduction.shift_X  # the working fit's centred columns
        Ac = np.concatenate([Ac, X_free.T @ c])
    v = la.cho_solve((L, True), Ac)
    splits = np.cumsum([t.n_levels * t.n_coef for t in terms])
    v_u = [part.reshape(t.n_levels, t.n_coef)
           for part, t in zip(np.split(v[:q], splits[:-1]), terms, strict=True)]  # fmt: skip
    Dv = predictor.random_part(v_u, T)
    if X_free is not None:
        Dv += X_free @ v[q:]
    e = c - 2.0 * r - W * Dv
    grads, start = [], 0
    for t, u_t, v_t in zip(terms, state.u, v_u, strict=True):
        m, k = t.n_levels, t.n_coef
        rows = slice(start, start + m * k)
        B1 = ZWZL[rows].reshape(m, k, q)
        B2 = G[rows].reshape(m, k, q)
        trace = np.einsum("mkq,mlq->kl", B1, B2)  # diagonal blocks of Z'WZ Lambda G
        grads.append(_level_sums(t, e).T @ u_t + _level_sums(t, r).T @ v_t + 2.0 * trace)
        start += m * k
    grad_theta = layout.theta_gradient(grads)
    if not beta_fixed:
        return grad_theta
    return np.concatenate([grad_theta, predictor.X.T @ e])
