"""Variance-component ingredients of the iterative solver (:mod:`.iterative`).

The method-of-moments start (Gao and Owen 2017, U-statistics of within-level
squared differences, for any number of factors), the Hutchinson estimates,
with control variates, of each factor's trace of the inverse coefficient
matrix (the probes are drawn once and kept), and the average-information
Newton step (Gilmour, Thompson and Cullis 1995) with the Monte Carlo error it
propagates.
"""

import numpy as np
from scipy import stats

from .start import intercept_moments

__all__ = []


def _moment_start(reduction, d):
    """Method-of-moments variances (internal order), floored at ``1e-3`` of the total.

    The U-statistics of Gao and Owen (2017) for any number of factors, from
    the data reduction (:func:`.start.intercept_moments`).
    """
    F = d.F
    total = max(float(reduction.yy) / max(reduction.sum_w, 1.0), 1e-300)
    est = intercept_moments(reduction)
    if est is None:
        est = np.full(F + 1, np.nan)
    floor = 1e-3 * total
    est = np.where(np.isfinite(est), est, floor)
    est = np.maximum(est, floor)
    return np.concatenate([est[:F][d.order], est[F:]])


# ----------------------------------------------------------------------------- traces


def _orthonormal_columns(A, rtol=1e-8):
    """Gram-Schmidt on the columns of A in order, dropping dependent ones.

    Prefixes of the result span prefixes of A (the first column stays first).
    """
    cols = []
    for j in range(A.shape[1]):
        v = A[:, j].astype(float, copy=True)
        norm0 = np.linalg.norm(v)
        if norm0 == 0.0:
            continue
        for _ in range(2):  # twice is enough
            for u in cols:
                v -= u * (u @ v)
        norm = np.linalg.norm(v)
        if norm > rtol * norm0:
            cols.append(v / norm)
    return np.column_stack(cols) if cols else np.zeros((A.shape[0], 0))


class _Probes:
    """Rademacher probes per factor, drawn once and extended on demand."""

    def __init__(self, m, rng):
        self.m = m
        self.rng = rng
        self.z = [np.zeros((mf, 0), dtype=np.int8) for mf in m]

    def get(self, f, count):
        have = self.z[f].shape[1]
        if count > have:
            new = self.rng.integers(0, 2, size=(self.m[f], count - have), dtype=np.int8)
            self.z[f] = np.concatenate([self.z[f], 2 * new - 1], axis=1)
        return self.z[f][:, :count].astype(float)


def _quadratic_forms(rhs, X, R):
    """``r' S^-1 r`` per column from approximate solutions: ``r'x + x'(r - S x)``.

    The error is ``res' S^-1 res``, quadratic in the CG residual.
    """
    return np.einsum("ij,ij->j", rhs, X) + np.einsum("ij,ij->j", R, X)


class _TraceEstimator:
    """``tau_f = tr(C^ff)`` per factor from Hutchinson probes with control variates.

    Factor 1 (eliminated): ``tau_1 = tr(D_1^-1) + tr(K' S^-1 K)``,
    ``K = B' D_1^-1``.  The second term is estimated with probes of factor 1's
    space projected off ``U_1`` (orthonormalized ``D_1^-1 Z_1'[1, X_b]``,
    ``X_b`` the columns of X that vary mostly between levels: the projection
    removes the probes' fixed-effects part, which carries the large
    eigenvalues), plus its exact part on ``U_1``, with the control variate
    ``r' P^-1 r`` (``P`` the preconditioner), whose expectation is exact.

    Factor ``f >= 2``: ``A = (S^-1)_ff`` is solved against raw Rademacher
    probes ``z`` and against ``U_f`` (Gram-Schmidt of ``[1, level means of
    X_b]``).  With an intercept, ``1_f`` is an exact eigenvector of ``A``
    (eigenvalue ``1 / lambda_f``) that would dominate the probes' variance;
    the control variate ``sum_jk c_jk ((u_j'z)(u_k'z) - delta_jk)``, of mean
    zero, removes the off-diagonal part of ``A`` along ``U_f``, with weights
    ``c = U'AU - U' diag(P^-1) U`` from the ``U_f`` solves (not from the
    probes, so the estimate stays unbiased and its standard error honest).
    A factor with no more levels than probes is computed exactly, one unit
    vector per level.
    """

    def __init__(self, design, probes):
        self.d = design
        self.probes = probes

    def rhs(self, system, n_probes, exact):
        """Reduced right-hand sides and their layout ``(factor, kind, count)``."""
        d = self.d
        blocks, layout, self.bases = [], [], [None] * d.F
        # factor 1: D1^-1 Z_1'[1, X_between]
        if exact[0]:
            blocks.append(system.Kt(np.eye(d.m[0])))
            layout.append((0, "unit", d.m[0]))
        else:
            A1 = np.column_stack([d.counts[0], d.ZtX[0][:, d.between[0]]])
            U1 = _orthonormal_columns(system.invD1[:, None] * A1)
            z = self.probes.get(0, n_probes[0])
            zt = z - U1 @ (U1.T @ z)
            for kind, cols in (("basis", U1), ("probe", zt)):
                blocks.append(system.Kt(cols))
                layout.append((0, kind, cols.shape[1]))
            self.bases[0] = U1
        for f in range(1, d.F):
            if exact[f]:
                pieces = (("unit", np.eye(d.m[f])),)
            else:
                means = d.ZtX[f][:, d.between[f]] / d.counts[f][:, None]
                U = _orthonormal_columns(np.column_stack([np.ones(d.m[f]), means]))
                self.bases[f] = U
                pieces = (("basis", U), ("probe", self.probes.get(f, n_probes[f])))
            for kind, cols in pieces:
                R = np.zeros((system.size, cols.shape[1]))
                system.block(R, f)[:] = cols
                blocks.append(R)
                layout.append((f, kind, cols.shape[1]))
        return np.concatenate(blocks, axis=1), layout

    def estimate(self, system, rhs, layout, X, R):
        """``tau`` and the standard errors of its Hutchinson parts."""
        d = self.d
        q = _quadratic_forms(rhs, X, R)
        tau = np.zeros(d.F)
        se = np.zeros(d.F)
        spans = {}
        col = 0
        for f, kind, k in layout:
            spans[(f, kind)] = slice(col, col + k)
            col += k
        # factor 1
        if (0, "unit") in spans:
            tau[0] = system.invD1.sum() + q[spans[(0, "unit")]].sum()
        else:
            sb, sp_ = spans[(0, "basis")], spans[(0, "probe")]
            tau[0] = system.invD1.sum() + q[sb].sum()
            tau[0] += system.cv_trace() - system.precondition_diag_quadratic(rhs[:, sb]).sum()
            vals = q[sp_] - system.precondition_diag_quadratic(rhs[:, sp_])
            tau[0] += vals.mean() if vals.size else 0.0
            se[0] = _standard_error(vals)
        for f in range(1, d.F):
            if (f, "unit") in spans:
                tau[f] = q[spans[(f, "unit")]].sum()
                continue
            sb, sp_ = spans[(f, "basis")], spans[(f, "probe")]
            U = self.bases[f]
            AU = system.block(X[:, sb], f)
            W = 0.5 * (U.T @ AU + AU.T @ U)
            W[np.diag_indices_from(W)] = q[sb]  # variational diagonal
            # control variate: the off-diagonal part of A along U, whose
            # coefficients U'AU - U'DU come from the basis solves (D = diag(A)
            # approximated by the preconditioner's), subtracted from each
            # probe through (U'z)(U'z)' - I, of mean zero
            dinv = 1.0 / system.pdiag[system.offsets[f - 1] : system.offsets[f]]
            coef = W - U.T @ (dinv[:, None] * U)
            coef = 0.5 * (coef + coef.T)
            s_ = U.T @ system.block(rhs[:, sp_], f)
            vals = q[sp_] - (np.einsum("jn,jk,kn->n", s_, coef, s_) - np.trace(coef))
            tau[f] = vals.mean()
            se[f] = _standard_error(vals)
        return tau, se


def _se_upper_ratio(count, level=0.05):
    """Upper confidence factor of a standard deviation estimated from ``count`` values."""
    if count < 2:
        return np.inf
    return float(np.sqrt((count - 1) / stats.chi2.ppf(level, count - 1)))


def _standard_error(values):
    if values.size == 0:
        return 0.0
    if values.size == 1:
        return np.inf
    return float(values.std(ddof=1) / np.sqrt(values.size))


# ----------------------------------------------------------------------------- Newton steps


def _newton_step(H, g, lam, frozen, tau_se, counts):
    """Newton step in psi and the Monte Carlo error of psi from the traces.

    The error is ``H^-1 J diag(se(tau)^2) J' H^-1`` (``J = d score / d tau``);
    with few probes the sample variance is itself uncertain, so its upper
    confidence bound decides whether more probes are needed.

    Returns ``(step, mc_se, sens_upper, mc_upper)``.
    """
    F = lam.size
    J = np.zeros((F + 1, F))
    J[np.arange(F), np.arange(F)] = 0.5 * lam
    J[F, :] = -0.5 * lam
    free = np.concatenate([~frozen, [True]])
    Hf = H[np.ix_(free, free)]
    try:
        Hinv = np.linalg.inv(Hf)
    except np.linalg.LinAlgError:
        Hinv = np.diag(1.0 / np.maximum(np.abs(np.diag(Hf)), 1e-12))
    step = np.zeros(F + 1)
    step[free] = Hinv @ g[free]
    sens = np.zeros((F + 1, F))  # d psi / d tau, times se(tau)
    sens[free] = (Hinv @ J[free]) * np.where(np.isfinite(tau_se), tau_se, 1e300)
    sens[:, frozen] = 0.0
    mc_se = np.sqrt(np.sum(sens**2, axis=1))
    sens_upper = sens * np.array([_se_upper_ratio(c) for c in counts])
    mc_upper = np.sqrt(np.sum(sens_upper**2, axis=1))
    return step, mc_se, sens_upper, mc_upper


def _average_information_rhs(d, b, ee, variances, lam):
    """Right-hand sides ``[Z'w_k; X'w_k]`` and Gram matrix ``w_k'w_l``.

    ``w_f = Z_f b_f / sigma_f^2`` and ``w_e = e / sigma^2`` are the derivatives
    of ``V`` applied to ``P y``; ``X'w_e = 0`` and ``Z_f'w_e = lambda_f b_f / sigma^2``
    by Henderson's equations.
    """
    F = d.F
    k = F + 1
    cols_by_factor = [np.zeros((d.m[g], k)) for g in range(F)]
    cX = np.zeros((d.p, k))
    for f in range(F):
        bf = b[f][:, None] / variances[f]
        for g in range(F):
            if g == f:
                cols_by_factor[g][:, f] = d.counts[f] * bf[:, 0]
            else:
                cols_by_factor[g][:, f] = d.cross(g, f, bf)[:, 0]
        cX[:, f] = d.ZtX[f].T @ bf[:, 0]
    for g in range(F):
        cols_by_factor[g][:, F] = lam[g] * b[g] / variances[F]
    ww = np.empty((k, k))
    for f in range(F):
        for l in range(k):
            ww[f, l] = b[f] @ cols_by_factor[f][:, l] / variances[f]
    for l in range(F):
        ww[F, l] = ww[l, F]
    ww[F, F] = ee / variances[F] ** 2
    c1 = cols_by_factor[0]
    cS = np.concatenate(cols_by_factor[1:] + [cX], axis=0)
    return c1, cS, 0.5 * (ww + ww.T)


def _average_information(c1, rhs, x, system, ww, variances):
    """``AI_kl = (w_k'w_l - c_k' C^-1 c_l) / (2 sigma^2)`` from the reduced solves."""
    quad = c1.T @ (system.invD1[:, None] * c1) + rhs.T @ x
    AI = (ww - 0.5 * (quad + quad.T)) / (2.0 * variances[-1])
    return 0.5 * (AI + AI.T)


def _extend_warm(warm, old_layout, new_layout):
    """Warm starts for a new layout: columns of blocks kept, new columns 0."""
    old_pos, col = {}, 0
    for f, kind, k in old_layout:
        old_pos[(f, kind)] = (col, k)
        col += k
    blocks = []
    for f, kind, k in new_layout:
        start, k_old = old_pos.get((f, kind), (0, 0))
        block = np.zeros((warm.shape[0], k))
        kk = min(k, k_old)
        block[:, :kk] = warm[:, start : start + kk]
        blocks.append(block)
    return np.concatenate(blocks, axis=1)
