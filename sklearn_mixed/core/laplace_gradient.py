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
covariance structures.  ``G`` where it is needed (diagonal blocks, entries
between levels sharing a row) and the solves come from the working fit's
factor (:mod:`.penalized_system`): dense, or one eliminated term with dense
ones; elsewhere (the pair kernel, nested chains) there is none and the
caller differentiates numerically.
"""

import numpy as np

from .penalized_system import make_system

__all__ = ["laplace_gradient"]


def _level_sums(term, values):
    """``Z_f' values`` as ``(m, k)``: per level, sum of ``values * z``."""
    out = np.empty((term.n_levels, term.n_coef))
    for a in range(term.n_coef):
        out[:, a] = np.bincount(
            term.codes, weights=values * term.covariates[:, a], minlength=term.n_levels
        )
    return out


def _leverages(system, terms, T):
    """``h_i = a_i' G a_i`` with ``a_i`` row ``i`` of ``Z Lambda`` (its nonzeros
    ``z_i' T`` per term, at the row's levels)."""
    values = [t.covariates @ T_t for t, T_t in zip(terms, T, strict=True)]
    h = np.zeros(terms[0].codes.shape[0])
    for f, (tf, af) in enumerate(zip(terms, values, strict=True)):
        for g, (tg, ag) in enumerate(zip(terms, values, strict=True)):
            if g < f:
                continue
            block = system.entries(f, tf.codes, g, tg.codes)
            h += (1.0 if f == g else 2.0) * np.einsum("ia,iab,ib->i", af, block, ag)
    return h


def laplace_gradient(predictor, family, prior, state, theta, layout, beta_fixed):
    """``dD/dtheta`` (and ``dD/dbeta`` if ``beta_fixed``) at a converged PIRLS state,
    or None where the working fit's factor does not give it (:mod:`.penalized_system`)."""
    model = state.model
    if model is None:
        return None
    terms, T = predictor.terms, state.T
    system = make_system(model.penalized_system(theta), terms)
    if system is None:
        return None
    traces = [system.trace_blocks(f, T_f) for f, T_f in enumerate(T)]
    if any(trace is None for trace in traces):
        return None
    y, eta = predictor.y, state.eta
    _, W, _ = family.working(y, eta, prior)
    r = prior * (y - state.mu)
    c = _leverages(system, terms, T) * family.weight_derivative(eta, prior)
    # D'c: A'c (per level T' Z_f'c), and X~'c when beta is inside PIRLS
    Ac = [_level_sums(t, c) @ T_t for t, T_t in zip(terms, T, strict=True)]
    X_free = None
    if not beta_fixed and model.p:
        X_free = predictor.X - model.reduction.shift_X  # the working fit's centred columns
    v_u, v_X = system.solve(Ac, None if X_free is None else X_free.T @ c)
    Dv = predictor.random_part(v_u, T)
    if X_free is not None:
        Dv += X_free @ v_X
    e = c - 2.0 * r - W * Dv
    grads = [
        _level_sums(t, e).T @ u_t + _level_sums(t, r).T @ v_t + 2.0 * trace
        for t, u_t, v_t, trace in zip(terms, state.u, v_u, traces, strict=True)
    ]
    grad_theta = layout.theta_gradient(grads)
    if not beta_fixed:
        return grad_theta
    return np.concatenate([grad_theta, predictor.X.T @ e])
