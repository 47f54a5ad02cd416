"""Starting values of theta, from the data reduction.

**Random intercepts: the method of moments.**  For ``y = X beta + sum_f
b_f[g_f] + eps`` with ``b_f ~ N(0, sigma_f^2)`` and OLS residuals ``r``, the
within-level sum of squares of factor ``f``,
``V_f = sum_j sum_{i in j} (r_i - rbar_j)^2 = sum_j (1 / n_j) sum_{pairs i < k
in j} (r_i - r_k)^2``, has (ignoring the fit of beta, as Gao and Owen 2017)

    E V_f = (n - m_f) sigma^2 + sum_{g != f} sigma_g^2 (n - sum_{j, l} c_jl^2 / n_j),

``c_jl`` the rows in level ``j`` of ``f`` and ``l`` of ``g``, since a pair
in level ``j`` has ``E (r_i - r_k)^2 = 2 sigma^2 + 2 sum_g sigma_g^2 [levels of
g differ]``; and ``V_0 = sum_i (r_i - rbar)^2`` the same over one level
holding all rows.  Unlike Gao and Owen's U-statistics (pairs weighted
equally) the pairs of a level are weighted by ``1 / n_j``, which makes every
``V`` a quadratic form in the cross-products: ``V_f = r'(I - P_f) r`` with
``P_f`` the projection on ``f``'s levels, exact from the reduction.  Solving
for the variances costs ``O(n_levels)`` and lands close to the (RE)ML
estimate (InstEval), which halves the optimizer's evaluations against lme4's
start ``theta = 1``.

**Random slopes: the levels' own fits.**  The spread of the levels'
least-squares coefficients ``b_j`` estimates ``Sigma`` plus their sampling
variance: ``Sigma ~ cov(b_j) - sigma^2 mean (Z_j'Z_j)^-1``.

Gao, K. and Owen, A. B. (2017). Efficient moment calculations for variance
components in large unbalanced crossed random effects models. Electronic
Journal of Statistics 11(1), 1235-1296.
"""

import numpy as np

__all__ = ["intercept_moment_start", "intercept_moments", "slope_moment_start"]

# Lower limit of a variance estimate, as a fraction of the residual variance:
# a start strictly inside the feasible set.
_FLOOR = 1e-2


def _ols(reduction):
    """OLS coefficients of the (centred) reduction; zeros without fixed effects."""
    if not reduction.p:
        return np.zeros(0)
    return np.linalg.lstsq(reduction.XX, reduction.Xy, rcond=None)[0]


def _within(reduction, t, beta):
    """``r'(I - P_f) r``, ``r = y - X beta``: the within-level sum of squares."""
    n_j = np.where(t.level_w > 0, t.level_w, 1.0)
    Zr = t.Zy[:, 0] - t.ZX[:, 0, :] @ beta  # per-level sums of r
    rr = reduction.yy - 2.0 * beta @ reduction.Xy + beta @ reduction.XX @ beta
    return rr - np.sum(Zr * Zr / n_j)


def _squared_cells_per_level(reduction, f, g, n_f):
    """``sum_{j, l} c_jl^2 / n_j`` over the cells of factors ``f`` (``j``) and ``g``."""
    C = reduction.counts[(min(f, g), max(f, g))]
    data = C.data.astype(float) ** 2
    if f < g:  # f's levels are the rows
        levels = np.repeat(np.arange(C.shape[0]), np.diff(C.indptr))
    else:
        levels = C.indices
    return float(np.sum(data / n_f[levels]))


def _moment_equations(reduction, beta):
    """``(A, V)``: ``E V = A (sigma_1^2, ..., sigma_F^2, sigma^2)`` (module docstring)."""
    n, F = float(reduction.n), len(reduction.terms)
    counts = [t.level_n.astype(float) for t in reduction.terms]
    A = np.zeros((F + 1, F + 1))
    V = np.empty(F + 1)
    for f, t in enumerate(reduction.terms):
        V[f] = _within(reduction, t, beta)
        n_f = np.where(counts[f] > 0, counts[f], 1.0)
        A[f, F] = n - np.count_nonzero(counts[f])
        for g in range(F):
            if g != f:
                A[f, g] = n - _squared_cells_per_level(reduction, f, g, n_f)
    rr = reduction.yy - 2.0 * beta @ reduction.Xy + beta @ reduction.XX @ beta
    total = reduction.Xy[reduction.intercept] - beta @ reduction.XX[:, reduction.intercept] \
        if reduction.intercept is not None else 0.0  # fmt: skip
    V[F] = rr - total**2 / reduction.sum_w
    A[F, F] = n - 1.0
    for g in range(F):
        A[F, g] = n - np.sum(counts[g] ** 2) / n
    return A, V


def intercept_moments(reduction):
    """Moment estimates ``(sigma_1^2, ..., sigma_F^2, sigma^2)`` of random
    intercepts (term order), or None when a term is not a random intercept or
    the reduction lacks the level sums of y."""
    terms = reduction.terms
    if any(t.n_coef != 1 or t.intercept != 0 or t.level_y is None for t in terms):
        return None
    A, V = _moment_equations(reduction, _ols(reduction))
    return np.linalg.lstsq(A, V, rcond=None)[0]


def intercept_moment_start(reduction):
    """``theta_f = sigma_f / sigma`` per factor from the moment equations, or None.

    Every term must be a random intercept (its one covariate all ones) with
    its per-level sums of ``y`` (``level_y``) in the reduction.

    Returns
    -------
    ndarray of shape (F,) or None
        None when the residual variance estimate is not positive (too few
        observations, an exact fit) or the reduction lacks the level sums:
        the caller keeps its default start.
    """
    est = intercept_moments(reduction)
    if est is None:
        return None
    sigma2 = est[-1]
    if not (np.all(np.isfinite(est)) and sigma2 > 0.0):
        return None
    return np.sqrt(np.maximum(est[:-1], _FLOOR * sigma2) / sigma2)


def _per_level_least_squares(t):
    """Each level's own least-squares fit of y on the term's covariates.

    Returns the coefficients ``b_j`` and ``(Z_j'Z_j)^-1`` of the levels with
    more rows than coefficients and a well-conditioned ``Z_j'Z_j``, and the
    pooled within-level residual variance (None when no level qualifies).
    """
    k = t.n_coef
    usable = t.level_n > k
    if usable.sum() < 3 or t.level_yy is None:
        return None
    # well conditioned: the pivots of Z_j'Z_j scaled to unit diagonal above 1e-8
    S = t.A[usable]
    scale = np.sqrt(np.einsum("mii->mi", S))
    with np.errstate(divide="ignore", invalid="ignore"):  # a covariate all 0 in a level
        scaled = S / (scale[:, :, None] * scale[:, None, :])
        det = np.linalg.det(np.nan_to_num(scaled))
    keep = np.isfinite(det) & (det > 1e-8)
    usable[usable] = keep
    if usable.sum() < 3:
        return None
    S_inv = np.linalg.inv(t.A[usable])
    r = t.Zy[usable]
    b = np.einsum("mkl,ml->mk", S_inv, r)
    rss = t.level_yy[usable] - np.einsum("mk,mk->m", r, b)
    sigma2 = rss.sum() / (t.level_n[usable] - k).sum()
    return b, S_inv, sigma2


def slope_moment_start(reduction, layout, method="reml"):
    """theta from each term's per-level least-squares coefficients, or None.

    The spread of the levels' own coefficients ``b_j`` estimates ``Sigma``
    plus their sampling variance: ``Sigma ~ cov(b_j) - sigma_t^2 mean
    (Z_j'Z_j)^-1``, with ``sigma_t^2`` the term's pooled within-level residual
    variance, which also holds the other terms' variation (a school's
    residual holds its children's effects).  The residual variance ``sigma^2``
    itself is the smallest of the ``sigma_t^2``, and ``T = chol(Sigma /
    sigma^2)`` per correlated block (eigenvalues floored at ``_FLOOR``, so the
    start is interior).
    """
    theta = layout.start.copy()
    estimates = []
    for t in reduction.terms:
        fitted = _per_level_least_squares(t)
        if fitted is None:
            return None
        b, S_inv, sigma2 = fitted
        if not sigma2 > 0:
            return None
        # REML's unbiased spread of the level coefficients; ML divides by m
        ddof = 1 if method == "reml" else 0
        Sigma = np.cov(b, rowvar=False, ddof=ddof).reshape(t.n_coef, t.n_coef)
        estimates.append((Sigma - sigma2 * S_inv.mean(axis=0), sigma2))
    sigma2 = min(s2 for _, s2 in estimates)
    for (Sigma, _), structure, positions in zip(
        estimates, layout.structures, layout.slices, strict=True
    ):
        relative = Sigma / sigma2
        values, vectors = np.linalg.eigh(0.5 * (relative + relative.T))
        relative = (vectors * np.maximum(values, _FLOOR)) @ vectors.T
        theta[positions] = structure.theta_from_covariance(relative)
    return theta
