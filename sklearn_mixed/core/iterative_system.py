"""Henderson's equations for crossed random intercepts, by block PCG.

Part of the iterative solver (:mod:`.iterative`): the one pass over the data
(:class:`_Design`: level counts, cross-products with X and y, sparse
cross-tabulations of each pair of factors), the Schur complement on all
factors but the largest (never formed; products through the
cross-tabulations), block-Jacobi preconditioned conjugate gradients with many
right-hand sides, and the solution at fixed variance components.
"""

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

__all__ = ["solve_mixed_model_equations"]

_TEMP_BYTES = 24e6  # temporaries of factor 1's size per sparse product (below malloc's mmap)
_BETWEEN_SHARE = 0.5  # deflate the traces by X columns varying mostly between levels


def _permuted(matrix, rows, cols):
    """``matrix[rows][:, cols]`` of a sparse matrix, as CSR."""
    return matrix.tocsr()[rows][:, cols].tocsr()


class _Design:
    """Sufficient statistics of ``y ~ X + (1 | f_1) + ... + (1 | f_F)``, from the
    data reduction (:mod:`.reduction`), in the solver's internal order.

    The factors are reordered so that the one with the most levels (observed
    levels only) comes first: it is eliminated exactly.  Levels without
    observations are dropped, and the levels of the other factors are
    renumbered by decreasing count, which keeps the products with the
    cross-tabulations cache friendly when popularity is skewed.  With prior
    weights every count is a sum of weights.
    """

    def __init__(self, reduction):
        terms = reduction.terms
        if not terms or any(t.n_coef != 1 for t in terms):
            raise ValueError("the iterative solver fits random intercepts only")
        F = len(terms)
        self.n, self.p, self.F = reduction.n, reduction.p, F
        self.sum_log_w = reduction.sum_log_w
        self.n_levels_user = [t.n_levels for t in terms]
        used = [int(np.count_nonzero(t.level_n)) for t in terms]
        # internal order: the factor with the most observed levels first
        self.order = sorted(range(F), key=lambda i: (-used[i], i))
        self.counts, self.levels, self.ZtX, self.Zty = [], [], [], []
        for pos, i in enumerate(self.order):
            t = terms[i]
            present = np.flatnonzero(t.level_n)
            if pos > 0:  # by decreasing count (stable): popular levels together
                present = present[np.argsort(-t.level_w[present], kind="stable")]
            self.counts.append(t.A[present, 0, 0])
            self.levels.append(present)  # internal level j is user level present[j]
            self.ZtX.append(t.ZX[present, 0, :])
            self.Zty.append(t.Zy[present, 0])
        self.m = [c.size for c in self.counts]
        self.XtX, self.Xty, self.yty = reduction.XX, reduction.Xy, reduction.yy
        self.X_sums = (
            reduction.XX[:, reduction.intercept] if reduction.intercept is not None
            else np.zeros(self.p)
        )  # fmt: skip
        # cross-tabulations: N1[g] = Z_1'WZ_g (g >= 1), pair[(f, g)] = Z_f'WZ_g (1 <= f < g)

        def crosstab(f, g):
            i, j = self.order[f], self.order[g]
            return _permuted(reduction.pair(i, j), self.levels[f], self.levels[g])

        self.N1 = [None] + [crosstab(0, g) for g in range(1, F)]
        self.pair = {(f, g): crosstab(f, g) for f in range(1, F) for g in range(f + 1, F)}
        # columns of X that vary mostly between the levels of a factor: their
        # level means are directions of large variance for the traces
        self.between = [self._between_columns(f) for f in range(F)]
        self._operators = {}

    def _between_columns(self, f):
        sums, n = self.X_sums, self.n
        total = np.diag(self.XtX) - sums**2 / n
        between = np.sum(self.ZtX[f] ** 2 / self.counts[f][:, None], axis=0) - sums**2 / n
        scale = np.maximum(np.diag(self.XtX), 1e-300)
        varying = total > 1e-10 * scale
        return np.flatnonzero(varying & (between > _BETWEEN_SHARE * np.where(varying, total, 1.0)))

    def residual_sum_of_squares(self, beta, b):
        """``e'We`` of ``e = y - X beta - sum_f Z_f b_f``, from the cross-products.

        ``y'y - 2 c'x + x'Cx`` with ``C`` and ``c`` Henderson's matrix (without
        the penalty) and right-hand side, ``x = (beta, b)``: no pass over the rows.
        """
        Xb = self.XtX @ beta
        value = self.yty - 2.0 * (beta @ self.Xty) + beta @ Xb
        for f in range(self.F):
            bf = b[f]
            value += -2.0 * (bf @ self.Zty[f]) + 2.0 * (bf @ (self.ZtX[f] @ beta))
            value += bf @ (self.counts[f] * bf)
            for g in range(f + 1, self.F):
                value += 2.0 * (bf @ self.cross(f, g, b[g][:, None])[:, 0])
        return max(float(value), 0.0)

    def operators(self, with_x):
        """``(B, rows, Mo)`` of the reduced system, built once per ``with_x``.

        ``B = [Z_1'Z_2, ..., Z_1'Z_F, Z_1'X]`` (CSR, the fixed-effects columns
        stored as sparse entries so that one sparse product covers all),
        ``rows`` the row of each stored entry of ``B``, and ``Mo`` the
        coefficient block of ``x = (b_2, ..., b_F, beta)`` without its
        ``lambda``-dependent diagonal ``counts_f + lambda_f``.
        """
        key = bool(with_x and self.p)
        if key not in self._operators:
            F, p = self.F, self.p
            blocks = [self.N1[g] for g in range(1, F)]
            if key:
                blocks.append(sp.csr_matrix(self.ZtX[0]))
            if blocks:
                B = sp.hstack(blocks, format="csr")
            else:
                B = sp.csr_matrix((self.m[0], 0))
            rows = np.repeat(np.arange(B.shape[0], dtype=np.int32), np.diff(B.indptr))
            sizes = [self.m[f] for f in range(1, F)] + ([p] if key else [])
            grid = [[None] * len(sizes) for _ in sizes]
            for f in range(1, F):
                for g in range(1, F):
                    if f < g:
                        grid[f - 1][g - 1] = self.pair[(f, g)]
                    elif f > g:
                        grid[f - 1][g - 1] = self.pair[(g, f)].T
                if key:
                    grid[f - 1][F - 1] = sp.csr_matrix(self.ZtX[f])
                    grid[F - 1][f - 1] = sp.csr_matrix(self.ZtX[f].T)
            if key:
                grid[F - 1][F - 1] = sp.csr_matrix(self.XtX)
            for i, size in enumerate(sizes):  # empty diagonal blocks fix the shapes
                if grid[i][i] is None:
                    grid[i][i] = sp.csr_matrix((size, size))
            Mo = sp.bmat(grid, format="csr") if sizes else sp.csr_matrix((0, 0))
            self._operators[key] = (B, rows, Mo)
        return self._operators[key]

    def cross(self, f, g, v):
        """``Z_f'Z_g v`` for internal factors ``f != g`` (v of shape (m_g, k))."""
        if f == 0:
            return self.N1[g] @ v
        if g == 0:
            return self.N1[f].T @ v
        if f < g:
            return self.pair[(f, g)] @ v
        return self.pair[(g, f)].T @ v

    def to_user(self, b_internal, fill=None):
        """Per-level arrays in the user's factor and level order.

        Levels without observations get 0, or ``fill[f]`` (internal factor order).
        """
        out = [None] * self.F
        for pos, i in enumerate(self.order):
            full = np.full(self.n_levels_user[i], 0.0 if fill is None else fill[pos])
            full[self.levels[pos]] = b_internal[pos]
            out[i] = full
        return out


# ----------------------------------------------------------------------------- Schur system


class _SchurSystem:
    """Henderson's equations with the largest factor eliminated, at fixed ``lambda``.

    The unknowns are ``(b_1, x)`` with ``x = (b_2, ..., b_F, beta)`` (``beta``
    only when ``with_x``; without it the system is ``Z'Z + Lambda``, as ML's
    traces need).  With ``D_1 = diag(counts_1 + lambda_1)`` and
    ``B = [Z_1'Z_2, ..., Z_1'Z_F, Z_1'X]`` the Schur complement is
    ``S = M - B' D_1^-1 B = M - Bs' Bs``, ``Bs = D_1^-1/2 B``, ``M`` the
    coefficient block of ``x``.  A product with ``S`` is two sparse products
    through ``Bs`` and one through the (small) off-diagonal part of ``M``.
    """

    def __init__(self, design, lam, with_x=True):
        d = self.design = design
        self.lam = np.asarray(lam, dtype=float)
        self.with_x = with_x and d.p > 0
        self.px = d.p if self.with_x else 0
        F = d.F
        B, rows, self.Mo = d.operators(self.with_x)
        self.invD1 = 1.0 / (d.counts[0] + self.lam[0])
        self.sqrt_invD1 = np.sqrt(self.invD1)
        self.Bs = sp.csr_matrix((B.data * self.sqrt_invD1[rows], B.indices, B.indptr), B.shape)
        self.BsT = self.Bs.T
        sizes = [d.m[f] for f in range(1, F)] + [self.px]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.size = int(self.offsets[-1])
        nz = self.size - self.px
        self.mdiag = np.zeros(self.size)
        for f in range(1, F):
            self.mdiag[self.offsets[f - 1] : self.offsets[f]] = d.counts[f] + self.lam[f]
        # block-Jacobi preconditioner: exact diagonal of each factor's block of
        # S, and the dense fixed-effects block of S
        colsq = np.bincount(self.Bs.indices, weights=self.Bs.data**2, minlength=self.size)
        self.pdiag = (self.mdiag - colsq)[:nz]
        if self.px:
            Z1X = d.ZtX[0]
            self.SXX = d.XtX - Z1X.T @ (self.invD1[:, None] * Z1X)
            self.SXX_chol = la.cho_factor(self.SXX, lower=True)
        # columns per sparse product: temporaries of factor 1's size stay small
        self.width = max(1, int(_TEMP_BYTES // (8 * max(d.m[0], 1))))
        self.n_products = 0

    # -- pieces of a vector of the reduced space
    def block(self, V, f):
        """Rows of internal factor ``f >= 1`` in a reduced-space array."""
        return V[self.offsets[f - 1] : self.offsets[f]]

    def xpart(self, V):
        return V[self.offsets[-2] : self.offsets[-1]]

    def _columns(self, fn, V, rows_out):
        """``fn`` applied to blocks of columns of V (bounded temporaries)."""
        k = V.shape[1]
        if k <= self.width:
            return fn(V)
        out = np.empty((rows_out, k))
        for j in range(0, k, self.width):
            out[:, j : j + self.width] = fn(V[:, j : j + self.width])
        return out

    def _matvec_block(self, V):
        T = self.Bs @ V
        out = self.Mo @ V
        out += self.mdiag[:, None] * V
        out -= self.BsT @ T
        return out

    def matvec(self, V):
        """``S V`` for V of shape (size, k)."""
        self.n_products += V.shape[1]
        return self._columns(self._matvec_block, V, self.size)

    def precondition(self, R):
        out = np.empty_like(R)
        nz = self.pdiag.size
        out[:nz] = R[:nz] / self.pdiag[:, None]
        if self.px:
            out[nz:] = la.cho_solve(self.SXX_chol, R[nz:])
        return out

    def precondition_diag_quadratic(self, R):
        """``r' P^-1 r`` per column."""
        return np.einsum("ij,ij->j", R, self.precondition(R))

    # -- full system <-> reduced system
    def Kt(self, W):
        """``B' D_1^-1 W`` (reduced space) for W of factor 1's size."""
        return self._columns(lambda Wb: self.BsT @ (self.sqrt_invD1[:, None] * Wb), W, self.size)

    def reduce(self, c1, cS):
        """Right-hand side of the reduced system for the full one ``(c1, cS)``."""
        return cS - self.Kt(c1)

    def back_substitute(self, c1, X):
        """``b_1 = D_1^-1 (c1 - B x)`` from the reduced solution."""
        BX = self._columns(lambda Xb: self.Bs @ Xb, X, self.design.m[0])
        return self.invD1[:, None] * c1 - self.sqrt_invD1[:, None] * BX

    def solve(self, rhs, x0=None, tol=1e-8, max_iter=1000):
        return _block_pcg(self.matvec, self.precondition, rhs, x0, tol, max_iter)

    def cv_trace(self):
        """``tr(K' P^-1 K)`` with ``K = B' D_1^-1`` (``P`` the preconditioner), exactly."""
        _, rows, _ = self.design.operators(self.with_x)
        colsq = np.bincount(
            self.Bs.indices, weights=self.Bs.data**2 * self.invD1[rows], minlength=self.size
        )
        nz = self.pdiag.size
        total = float(np.sum(colsq[:nz] / self.pdiag))
        if self.px:
            Z1X = self.design.ZtX[0]
            G = Z1X.T @ ((self.invD1**2)[:, None] * Z1X)
            total += float(np.trace(la.cho_solve(self.SXX_chol, G)))
        return total


def _block_pcg(matvec, precondition, Bm, X0=None, tol=1e-8, max_iter=1000):
    """Preconditioned CG on the columns of ``Bm``, run in lockstep.

    Each column has its own step sizes; converged columns (relative residual
    below ``tol``, a scalar or one per column) drop out of the products.

    Returns
    -------
    X, R : solutions and their residuals ``Bm - S X``
    iterations : int, the longest column's
    """
    Bm = np.asarray(Bm, dtype=float)
    k = Bm.shape[1]
    tol = np.broadcast_to(np.asarray(tol, dtype=float), (k,))
    if X0 is None:
        X = np.zeros_like(Bm)
        R = Bm.copy()
    else:
        X = np.array(X0, dtype=float, copy=True)
        R = Bm - matvec(X)
    target = tol * np.linalg.norm(Bm, axis=0)
    active = np.flatnonzero(np.linalg.norm(R, axis=0) > target)
    if active.size == 0:
        return X, R, 0
    Zr = precondition(R[:, active])
    P = np.zeros_like(Bm)
    P[:, active] = Zr
    rz = np.zeros(k)
    rz[active] = np.einsum("ij,ij->j", R[:, active], Zr)
    iterations = 0
    while active.size and iterations < max_iter:
        iterations += 1
        Pa = P[:, active]
        AP = matvec(Pa)
        alpha = rz[active] / np.einsum("ij,ij->j", Pa, AP)
        X[:, active] += alpha * Pa
        Ra = R[:, active] - alpha * AP
        R[:, active] = Ra
        still = np.linalg.norm(Ra, axis=0) > target[active]
        if not np.all(still):
            active, Pa, Ra = active[still], Pa[:, still], Ra[:, still]
            if active.size == 0:
                break
        Zr = precondition(Ra)
        rz_new = np.einsum("ij,ij->j", Ra, Zr)
        P[:, active] = Zr + (rz_new / rz[active]) * Pa
        rz[active] = rz_new
    return X, R, iterations


# ----------------------------------------------------------------------------- solutions


def _full_rhs(design):
    """Right-hand side ``(Z_1'y, [Z_2'y, ..., Z_F'y, X'y])`` of Henderson's equations."""
    d = design
    c1 = d.Zty[0][:, None]
    parts = [d.Zty[f][:, None] for f in range(1, d.F)] + [d.Xty[:, None]]
    return c1, np.concatenate(parts, axis=0)


def _split_solution(system, c1, x):
    """``(beta, [b_1, ..., b_F])`` (internal order) from a reduced solution column."""
    d = system.design
    b1 = system.back_substitute(c1, x)[:, 0]
    b = [b1] + [system.block(x, f)[:, 0].copy() for f in range(1, d.F)]
    beta = system.xpart(x)[:, 0].copy()
    return beta, b


def solve_mixed_model_equations(reduction, variances, sigma2, *, tol=1e-10, max_iter=2000,
                                beta_cov=False, start=None):  # fmt: skip
    """Henderson's equations at fixed variance components, by block PCG.

    Parameters
    ----------
    reduction : Reduction
        Of a model with random intercepts only.
    variances : array of shape (F,)
        ``sigma_f^2``, all positive, in the reduction's term order.
    sigma2 : float
        Residual variance.
    tol : float
        Relative residual of the reduced system at which CG stops.
    beta_cov : bool
        Also ``Var(beta) = sigma^2 (C^-1)_XX`` (``p`` more right-hand sides),
        as ``info["beta_cov"]``.
    start : ndarray, optional
        ``info["reduced"]`` of an earlier solve of a system of the same shape
        (CG's warm start).

    Returns
    -------
    beta : ndarray of shape (p,)
        Fixed effects of the reduction's columns (as given, not centred).
    b : list of ndarray of shape (n_levels_f,)
        Conditional modes per factor (0 for levels without observations).
    info : dict
        ``cg_iterations`` and ``residual`` (relative residual reached).
    """
    d = _Design(reduction)
    variances = np.asarray(variances, dtype=float)[d.order]
    if np.any(variances <= 0):
        raise ValueError("variances must be positive")
    system = _SchurSystem(d, sigma2 / variances, with_x=True)
    c1, cS = _full_rhs(d)
    rhs = system.reduce(c1, cS)
    x0 = None if start is None or start.shape != rhs.shape else start
    if beta_cov and system.px:
        EX = np.zeros((system.size, system.px))
        system.xpart(EX)[:] = np.eye(system.px)
        rhs = np.concatenate([rhs, EX], axis=1)
        x0 = None if x0 is None else np.concatenate([x0, np.zeros_like(EX)], axis=1)
    x, R, iterations = system.solve(rhs, x0, tol=tol, max_iter=max_iter)
    beta, b = _split_solution(system, c1, x[:, :1])
    residual = float(np.linalg.norm(R[:, :1]) / max(np.linalg.norm(rhs[:, :1]), 1e-300))
    info = {"cg_iterations": iterations, "residual": residual, "reduced": x[:, :1]}
    beta = reduction.uncentre(beta)
    if beta_cov and system.px:
        C = system.xpart(x[:, 1:])
        info["beta_cov"] = reduction.uncentre(np.zeros(beta.size), sigma2 * 0.5 * (C + C.T))[1]
    return beta, d.to_user(b), info
