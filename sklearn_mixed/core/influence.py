"""Leverage, residuals and influence of a fitted linear mixed model.

At the optimum the fitted values are linear in ``y``: ``mu = H y`` with the
hat matrix of the penalized least squares problem (Bates et al. 2015,
section 3; lme4's ``hatvalues``)::

    H = W^1/2 [Z Lambda, X] C^-1 [Z Lambda, X]' W^1/2,
    C = [Lambda'Z'WZ Lambda + I, Lambda'Z'WX; X'WZ Lambda, X'WX] = L L',

so the leverage of row ``i`` is ``h_i = ||L^-1 a_i||^2`` with
``a_i = sqrt(w_i) [Lambda' z_i; x_i]``: one forward substitution through the
factor the fit already holds (its first ``q + p`` rows; the last is ``y``'s),
by blocks of rows.  ``X`` may be centred: ``h`` is invariant to a change of
basis of the fixed columns.  From the leverage, as lme4 1.1-31 defines them
(``r_i = sqrt(w_i) (y_i - mu_i)`` the Pearson residual, ``p`` the rank of X):

    cooks.distance:  D_i = (r_i / (1 - h_i))^2 h_i / (sigma^2 p)
    rstudent:        t_i = r_i / (sigma sqrt(1 - h_i))

and :func:`deletion_refits` refits the model without each group of rows
(lme4's ``influence(fit, groups)``): the rows left are reduced again and the
model refitted from the fitted theta.
"""

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from .cholesky import block_diagonal
from .deviance import later_rows
from .grouping import term_model_matrix

__all__ = [
    "cooks_distance",
    "deletion_refits",
    "fitted_values",
    "hat_values",
    "model_rows",
    "pearson_residuals",
    "studentized_residuals",
]

# Bytes of the dense right-hand sides solved at once (rows per block follow).
_BLOCK_BYTES = 64e6


def model_rows(model, what="leverage and influence"):
    """The rows of ``model`` (:class:`~.rows.ModelRows`), or a ``ValueError``
    saying that ``what`` needs them when they were not kept."""
    if model.data is None:
        raise ValueError(
            f"{what} need(s) the model's rows, and this model kept only its reduced data: it "
            "was fitted from chunks (partial_fit) or from Dask collections, or reduced "
            "without its rows. Fit it with fit(X, y, ...) on data in memory for row-level "
            "diagnostics."
        )
    return model.data


def fitted_values(model):
    """``mu = X beta + sum_f Z_f b_f`` on the model's rows (with the offset)."""
    rows, fit = model_rows(model), model.result
    mu = rows.X @ fit.beta
    for term, b in zip(rows.terms, fit.b, strict=True):
        mu += np.einsum("ik,ik->i", term.covariates, b[term.codes])
    if rows.offset is not None:
        mu += rows.offset
    return mu


def pearson_residuals(model):
    """``sqrt(w_i) (y_i - mu_i)`` (lme4's ``residuals(fit, type = "pearson")``)."""
    rows = model_rows(model, "residuals")
    r = rows.y - fitted_values(model)
    return r if rows.weights is None else np.sqrt(rows.weights) * r


def _scaled_design(model, rows, T):
    """``[Z_f Lambda_f]`` per term (CSR) and ``X~``, rows scaled by ``sqrt(w)``."""
    sqrt_w = None if rows.weights is None else np.sqrt(rows.weights)
    Zs = []
    for term, Tf in zip(rows.terms, T, strict=True):
        Z = term_model_matrix(term) @ block_diagonal(
            np.broadcast_to(Tf, (term.n_levels,) + Tf.shape)
        )
        Zs.append(Z.tocsr() if sqrt_w is None else sp.diags(sqrt_w) @ Z)
    red = model.reduction
    X = rows.X - red.shift_X if red.intercept is not None else rows.X
    if sqrt_w is not None:
        X = X * sqrt_w[:, None]
    return Zs, X


def _dense_leverage(L, Zs, X, block):
    """``||L^-1 a_i||^2`` for the dense factor (random effects, then X)."""
    n = X.shape[0]
    A = sp.hstack(Zs + [sp.csr_matrix(X)], format="csr") if Zs else sp.csr_matrix(X)
    out = np.empty(n)
    for start in range(0, n, block):
        part = A[start : start + block].toarray().T
        solved = la.solve_triangular(L, part, lower=True, check_finite=False)
        out[start : start + block] = np.einsum("ij,ij->j", solved, solved)
    return out


def _blocked_leverage(model, factor, Zs, X, block):
    """``||L^-1 a_i||^2`` through the blocked factor: closed stages level by
    level (sparse), then the dense block of the other terms and X."""
    closed, dense = model.plan
    stages = factor.stages
    q = factor.q_dense
    L_dense = factor.L22[:-1, :-1]
    n = X.shape[0]
    out = np.empty(n)
    for start in range(0, n, block):
        rows = slice(start, start + block)
        solved = []
        for i, f in enumerate(closed):
            rhs = Zs[f][rows].T.tocsr()
            for h in range(i):
                rhs = rhs - later_rows(factor, h, i) @ solved[h]
            solved.append((block_diagonal(stages[i].L_inv) @ rhs).tocsr())
        dense_rhs = [Zs[f][rows].T.toarray() for f in dense] + [X[rows].T]
        rhs = np.vstack(dense_rhs)
        for h in range(len(closed)):
            C = later_rows(factor, h, len(closed))
            rhs[:q] -= (C @ solved[h]).toarray()
            rhs[q:] -= (solved[h].T @ stages[h].C_W[:-1].T).T
        x = la.solve_triangular(L_dense, rhs, lower=True, check_finite=False)
        total = np.einsum("ij,ij->j", x, x)
        for piece in solved:
            total += np.asarray(piece.multiply(piece).sum(axis=0)).ravel()
        out[rows] = total
    return out


def hat_values(model):
    """Diagonal of the hat matrix, one leverage per row (lme4's ``hatvalues``)."""
    rows = model_rows(model)
    if model.solver != "exact":
        raise ValueError("leverage needs the exact factor; refit with solver='exact'")
    T = model.result.T
    Zs, X = _scaled_design(model, rows, T)
    if not model.terms:
        L = la.cholesky(model.reduction.XX, lower=True)
        return _dense_leverage(L, [], X, _block_rows(L.shape[0]))
    kind, factor = model.factor_at_optimum()
    if kind == "dense":
        L = factor[:-1, :-1]
        return _dense_leverage(L, Zs, X, _block_rows(L.shape[0]))
    return _blocked_leverage(model, factor, Zs, X, _block_rows(factor.L22.shape[0]))


def _block_rows(size):
    return max(1, int(_BLOCK_BYTES // (8 * max(size, 1))))


def cooks_distance(model, hat=None):
    """lme4's ``cooks.distance``: ``(r / (1 - h))^2 h / (sigma^2 p)``; NaN where ``h = 1``."""
    h = hat_values(model) if hat is None else hat
    r = pearson_residuals(model)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (r / (1.0 - h)) ** 2 * h / (model.result.sigma2 * model.p)
    return np.where(np.isfinite(d), d, np.nan)


def studentized_residuals(model, hat=None):
    """lme4's ``rstudent``: ``r / (sigma sqrt(1 - h))``; NaN where ``h = 1``."""
    h = hat_values(model) if hat is None else hat
    r = pearson_residuals(model)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r / (np.sqrt(model.result.sigma2) * np.sqrt(1.0 - h))
    return np.where(np.isfinite(t), t, np.nan)


def deletion_refits(model, labels):
    """Refits without each group of rows: lme4's ``influence(fit, groups)``.

    Parameters
    ----------
    model : LinearMixedModel
        Fitted, with its rows.
    labels : ndarray of shape (n,)
        Integer group of each row (``0 .. G - 1``).

    Yields
    ------
    (group, LinearMixedModel)
        The model refitted (same criterion, from the fitted theta) on the rows
        not in ``group``.
    """
    rows = model_rows(model)
    labels = np.asarray(labels)
    with model.threads():
        for group in range(int(labels.max()) + 1):
            kept = rows.subset(labels != group)
            yield group, model.refit(reduction=kept.reduce())
