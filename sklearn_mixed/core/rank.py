"""Aliased fixed-effect columns, found on the reduced cross-products.

lme4 drops the columns of a rank-deficient fixed-effects model matrix before
fitting (``lmerControl(check.rankX = "message+drop.cols")``): R's pivoted QR
(LINPACK ``dqrdc2`` with tolerance ``1e-7``) moves a column to the end when
its residual, after projection on the columns kept before it, has a norm
below ``1e-7`` of the column's own; the columns moved are dropped.  The same
sequential rule on the Gram matrix ``X'WX``: column ``j`` is *aliased* when

    r_j^2 = x_j'x_j - c'c <= tol^2 x_j'x_j,    c = L_kept^-1 X_kept'x_j,

``L_kept`` the Cholesky factor of the kept columns' Gram matrix.  On a
centred reduction (a model with an intercept) the norms are those of the
centred columns, so that shifting a column by a constant, which the intercept
absorbs, changes nothing (lme4 would drop ``x + 1e8`` as constant); a column
whose centred norm is below ``1e-12`` of its uncentred norm is constant to
the precision of the data, aliased with the intercept.

The Gram matrix resolves ``r_j^2 / x_j'x_j`` only to its rounding floor,
a few ``p eps`` (the centred cross-products carry rounding of that relative
size), where R's QR on the rows resolves ``r_j`` to ``eps``: an exact
dependence among dummy columns (``f:g`` with an intercept, 270 rows, p = 19)
leaves ``r_j^2 ~ 1.4e-13 x_j'x_j``, above ``tol^2``.  A column is therefore
aliased when ``r_j^2 <= max(tol^2, 64 p eps) x_j'x_j``: relative to its own
norm, so that rescaling a column changes nothing; R's threshold 1e-7 on
``r_j / |x_j|`` becomes ``sqrt(64 p eps)`` (2.7e-7 for p = 5, 5e-7 for p = 19).
"""

import numpy as np
import scipy.linalg as la

__all__ = ["ALIAS_TOL", "aliased_columns"]

# lme4's tolerance (chkRank.drop.cols, tol = 1e-7) on the relative residual norm.
ALIAS_TOL = 1e-7
# A centred column this small relative to its uncentred norm is a constant.
_CONSTANT_TOL = 1e-12


def aliased_columns(reduction, tol=ALIAS_TOL):
    """Indices of fixed columns that are combinations of earlier ones.

    Parameters
    ----------
    reduction : Reduction
    tol : float
        Relative residual norm below which a column is aliased.

    Returns
    -------
    list of int
    """
    G = reduction.XX
    p = G.shape[0]
    norm2 = np.diag(G).copy()
    uncentred = norm2 + reduction.sum_w * reduction.shift_X**2
    relative = max(tol**2, 64 * p * np.finfo(float).eps)  # the rounding floor: docstring
    if p and np.all(norm2 > _CONSTANT_TOL**2 * uncentred):
        try:  # full rank: every pivot of the Cholesky factor is r_j
            pivots = np.diagonal(np.linalg.cholesky(G)) ** 2
            if np.all(pivots > relative * norm2):
                return []
        except np.linalg.LinAlgError:
            pass
    kept, bad = [], []
    L = np.zeros((0, 0))
    for j in range(p):
        if not norm2[j] > _CONSTANT_TOL**2 * uncentred[j]:
            bad.append(j)
            continue
        c = la.solve_triangular(L, G[kept, j], lower=True) if kept else np.zeros(0)
        r2 = norm2[j] - c @ c
        if r2 <= relative * norm2[j]:
            bad.append(j)
            continue
        size = len(kept)
        grown = np.zeros((size + 1, size + 1))
        grown[:size, :size] = L
        grown[size, :size] = c
        grown[size, size] = np.sqrt(r2)
        L = grown
        kept.append(j)
    return bad
