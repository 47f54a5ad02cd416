"""The one data reduction: rows -> the cross-products every solver needs.

A linear mixed model ``y = X beta + Z b + eps`` with prior weights ``w``
(``Var(eps_i) = sigma^2 / w_i``, lme4's ``weights``) and an offset ``o``
touches its data only through sums over rows (Bates et al. 2015, section 3;
with weights, ``W = diag(w)``)::

    X'WX, X'Wy, y'Wy                          fixed effects and response
    Z_f'WZ_f   one k_f x k_f block per level  each term f
    Z_f'WX, Z_f'Wy                            each term f, per level
    Z_f'WZ_g                                  each pair of terms (sparse)

plus ``n``, ``sum w`` and ``sum log w`` (the log-determinant of ``W``, which
the deviance subtracts).  :func:`reduce_rows` computes them for a chunk of
rows; two chunks' reductions add up (``a + b``) to the reduction of their
union, so data can be reduced in pieces (streams, partitions of a cluster).
The dense, blocked and iterative solvers, the starting values, the
no-random-effects fit, the profiles and the pooling tables all read a
:class:`Reduction`; nothing else reads rows.

**Centring.**  With an intercept column, ``X`` (its other columns) and ``y``
are shifted by a centre ``(s_X, s_y)``, the weighted means, before any
product: ``y - s_y = 1 (a') + (X - 1 s_X') beta + Z b + eps`` is the same
model with the intercept ``a' = a + s_X' beta - s_y``, and its cross-products
do not lose digits to a large mean (``y + 1e8``).  The model object maps
``a'`` back (:meth:`Reduction.uncentre`).  Reductions with different centres
are added after moving both to the common weighted mean, by the exact update
of the sums (Chan, Golub and LeVeque 1979), which needs ``Z_f'W1``: the
intercept column of ``Z_f'WX``.

Rows with weight 0 carry no information and are dropped by the caller
(:func:`reduce_rows` refuses them), so ``n`` counts rows with positive weight.
"""

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from .pair_pattern import pattern_pair
from .sums import index_sums

__all__ = ["Reduction", "TermSums", "reduce_rows"]

# Rows per block of the quadratic forms X'WX, X'Wy, y'Wy (bounded temporaries).
_BLOCK_ROWS = 1 << 16


@dataclass(frozen=True)
class TermSums:
    """The sums of one random-effects term (``m`` levels, ``k`` coefficients).

    ``A[j] = Z_j'W Z_j``, ``ZX[j] = Z_j'W X~``, ``Zy[j] = Z_j'W y~`` for the
    rows ``Z_j`` of level ``j`` (``X~``, ``y~`` centred); ``level_w``,
    ``level_y``, ``level_yy`` are the level's ``sum w``, ``sum w y~`` and
    ``sum w y~^2`` (for starting values; None once the response changed
    without them) and ``level_n`` its number of rows.
    """

    A: np.ndarray  # (m, k, k)
    ZX: np.ndarray  # (m, k, p)
    Zy: np.ndarray  # (m, k)
    level_w: np.ndarray  # (m,)
    level_y: np.ndarray | None  # (m,)
    level_yy: np.ndarray | None  # (m,)
    level_n: np.ndarray  # (m,) int
    intercept: int | None = None  # the covariate that is all ones, if any

    @property
    def n_levels(self):
        return self.A.shape[0]

    @property
    def n_coef(self):
        return self.A.shape[1]


@dataclass(frozen=True)
class Reduction:
    """Weighted, centred cross-products of ``[Z, X, y]``; see the module docstring.

    ``pairs[(f, g)]`` (``f < g``, term indices) is ``Z_f'WZ_g`` as a CSR
    matrix of shape ``(m_f k_f, m_g k_g)``; ``counts[(f, g)]`` the number of
    rows in each pair of levels (their pattern: nesting, fill-in).
    """

    n: int
    sum_w: float
    sum_log_w: float
    intercept: int | None  # column of X that is all ones (enables centring)
    shift_X: np.ndarray  # (p,), 0 at the intercept
    shift_y: float
    XX: np.ndarray  # (p, p)
    Xy: np.ndarray  # (p,)
    yy: float
    terms: tuple  # of TermSums
    pairs: dict
    counts: dict

    @property
    def p(self):
        return self.XX.shape[0]

    @property
    def unit_weights(self):
        """Whether every weight is 1 (then ``sum w = n`` and ``sum log w = 0``)."""
        return self.sum_log_w == 0.0 and self.sum_w == self.n

    def pair(self, f, g):
        """``Z_f'WZ_g`` for any two distinct terms (CSR)."""
        if f < g:
            return self.pairs[(f, g)]
        return self.pairs[(g, f)].T.tocsr()

    def pair_counts(self, f, g):
        """Rows per pair of levels of terms ``f`` and ``g`` (CSR)."""
        if f < g:
            return self.counts[(f, g)]
        return self.counts[(g, f)].T.tocsr()

    def nested(self, inner, outer):
        """Whether every level of term ``inner`` occurs within one level of ``outer``."""
        N = self.pair_counts(inner, outer)
        return bool(np.all(np.diff(N.indptr) <= 1))

    # ------------------------------------------------------------ combination
    def recentred(self, shift_X, shift_y):
        """The same sums about another centre (exact update, see module docstring)."""
        if self.intercept is None:
            return self
        d = np.asarray(shift_X, dtype=float) - self.shift_X
        d[self.intercept] = 0.0
        e = float(shift_y) - self.shift_y
        X1 = self.XX[:, self.intercept]  # X~'W 1
        y1 = self.Xy[self.intercept]  # 1'W y~
        sw = self.sum_w
        XX = self.XX - np.outer(X1, d) - np.outer(d, X1) + sw * np.outer(d, d)
        Xy = self.Xy - X1 * e - d * y1 + sw * d * e
        yy = self.yy - 2.0 * e * y1 + sw * e * e
        terms = []
        for t in self.terms:
            Z1 = t.ZX[:, :, self.intercept]  # Z_j'W 1
            level_y = level_yy = None
            if t.level_y is not None:
                level_y = t.level_y - t.level_w * e
                level_yy = t.level_yy - 2.0 * e * t.level_y + t.level_w * e * e
            terms.append(
                replace(
                    t,
                    ZX=t.ZX - Z1[:, :, None] * d[None, None, :],
                    Zy=t.Zy - Z1 * e,
                    level_y=level_y,
                    level_yy=level_yy,
                )
            )
        return replace(
            self,
            shift_X=self.shift_X + d,
            shift_y=self.shift_y + e,
            XX=XX,
            Xy=Xy,
            yy=float(yy),
            terms=tuple(terms),
        )

    def centre(self):
        """The weighted means ``(s_X, s_y)`` of the rows reduced."""
        if self.intercept is None:
            return self.shift_X, self.shift_y
        sX = self.shift_X + self.XX[:, self.intercept] / self.sum_w
        sX[self.intercept] = 0.0
        return sX, self.shift_y + self.Xy[self.intercept] / self.sum_w

    def __add__(self, other):
        """The reduction of the union of two chunks of rows (same model)."""
        self._check_compatible(other)
        if other.n == 0:  # an empty chunk: its centre is undefined, its sums are 0
            return self
        if self.n == 0:
            return other
        total = replace(self, sum_w=self.sum_w + other.sum_w)
        if self.intercept is not None:  # the common centre: the weighted mean of both
            sa, ya = self.centre()
            sb, yb = other.centre()
            wa, wb = self.sum_w, other.sum_w
            shift_X = (wa * sa + wb * sb) / (wa + wb)
            shift_y = (wa * ya + wb * yb) / (wa + wb)
            a, b = self.recentred(shift_X, shift_y), other.recentred(shift_X, shift_y)
        else:
            a, b = self, other
        terms = tuple(_add_terms(s, t) for s, t in zip(a.terms, b.terms, strict=True))
        pairs = {key: (a.pairs[key] + b.pairs[key]).tocsr() for key in a.pairs}
        return replace(
            total,
            n=a.n + b.n,
            sum_log_w=a.sum_log_w + b.sum_log_w,
            shift_X=a.shift_X,
            shift_y=a.shift_y,
            XX=a.XX + b.XX,
            Xy=a.Xy + b.Xy,
            yy=a.yy + b.yy,
            terms=terms,
            pairs=pairs,
            counts={
                key: pairs[key]  # random intercepts without weights: the same table
                if a.counts[key] is a.pairs[key] and b.counts[key] is b.pairs[key]
                else (a.counts[key] + b.counts[key]).tocsr()
                for key in a.counts
            },
        )

    def _check_compatible(self, other):
        shapes = [(t.n_levels, t.n_coef) for t in self.terms]
        if (
            not isinstance(other, Reduction)
            or other.p != self.p
            or other.intercept != self.intercept
            or [(t.n_levels, t.n_coef) for t in other.terms] != shapes
        ):
            raise ValueError(
                "reductions of different models cannot be added: the fixed columns, the "
                "intercept, the terms and their number of levels must be the same"
            )

    # ------------------------------------------------------------ levels
    def relevel(self, term, positions, n_levels):
        """The same sums with the levels of term ``term`` renumbered: level ``j``
        becomes ``positions[j]`` of ``n_levels`` (a permutation, or room for
        levels not yet seen: their sums are 0).

        Chunks of a stream code their levels as they come; adding levels is
        this with ``positions = arange(m)``, and sorting them a permutation.
        """
        positions = np.asarray(positions, dtype=np.intp)
        old = self.terms[term]
        if positions.shape != (old.n_levels,) or np.unique(positions).size != positions.size:
            raise ValueError(f"positions must give each of the {old.n_levels} levels its own place")
        if positions.size and not 0 <= positions.min() <= positions.max() < n_levels:
            raise ValueError(f"positions must lie in [0, {n_levels})")

        def spread(values):
            if values is None:
                return None
            out = np.zeros((n_levels,) + values.shape[1:], dtype=values.dtype)
            out[positions] = values
            return out

        terms = list(self.terms)
        terms[term] = replace(old, **{name: spread(getattr(old, name)) for name in _LEVEL_ARRAYS})
        k = old.n_coef
        # Z_f'WZ_g: the rows (f = term) or columns (g = term) of level j move to positions[j]
        entries = np.repeat(positions * k, k) + np.tile(np.arange(k), positions.size)
        pairs, counts = dict(self.pairs), dict(self.counts)
        for key in self.pairs:
            if term in key:
                side = key.index(term)
                pairs[key] = _move_entries(self.pairs[key], side, entries, n_levels * k)
                counts[key] = (
                    pairs[key]
                    if self.counts[key] is self.pairs[key]
                    else _move_entries(self.counts[key], side, positions, n_levels)
                )
        return replace(self, terms=tuple(terms), pairs=pairs, counts=counts)

    # ------------------------------------------------------------ fixed part
    def select_fixed(self, columns):
        """The reduction of the model with only the fixed ``columns`` of X."""
        columns = np.asarray(columns, dtype=int)
        intercept = None
        if self.intercept is not None and self.intercept in columns:
            intercept = int(np.flatnonzero(columns == self.intercept)[0])
        out = self if intercept is not None else self.recentred(np.zeros(self.p), 0.0)
        return replace(
            out,
            intercept=intercept,
            shift_X=out.shift_X[columns],
            XX=out.XX[np.ix_(columns, columns)],
            Xy=out.Xy[columns],
            terms=tuple(replace(t, ZX=t.ZX[:, :, columns]) for t in out.terms),
        )

    def with_fixed_coefficient(self, j, value):
        """The reduction of the model with ``beta_j = value`` fixed: ``x_j value``
        moves to the response (an offset) and column ``j`` leaves X."""
        v = float(value)
        if j == self.intercept:  # y - v with the other columns, uncentred: no intercept left
            out = self.recentred(np.zeros(self.p), v)
            keep = np.delete(np.arange(self.p), j)
            return replace(
                out,
                intercept=None,
                shift_X=np.zeros(keep.size),
                shift_y=0.0,
                XX=out.XX[np.ix_(keep, keep)],
                Xy=out.Xy[keep],
                terms=tuple(
                    replace(t, ZX=t.ZX[:, :, keep], level_y=None, level_yy=None) for t in out.terms
                ),
            )
        x_j = self.XX[:, j]
        yy = self.yy - 2.0 * v * self.Xy[j] + v * v * self.XX[j, j]
        Xy = self.Xy - v * x_j
        terms = tuple(
            replace(t, Zy=t.Zy - v * t.ZX[:, :, j], level_y=None, level_yy=None) for t in self.terms
        )
        moved = replace(
            self, yy=float(yy), Xy=Xy, shift_y=self.shift_y - v * self.shift_X[j], terms=terms
        )
        keep = np.delete(np.arange(self.p), j)
        return moved.select_fixed(keep)

    def centre_coefficients(self, beta):
        """Coefficients of the centred design from those of the uncentred one."""
        beta = np.array(beta, dtype=float)
        if self.intercept is not None:
            beta[self.intercept] += self.shift_X @ beta - self.shift_y
        return beta

    def uncentre(self, beta, beta_cov=None):
        """Coefficients of the uncentred design from those of the centred one.

        ``a = a' - s_X' beta + s_y`` for the intercept ``a'``; the covariance
        transforms by the same (unit-determinant) linear map.
        """
        beta = np.array(beta, dtype=float)
        if self.intercept is None:
            return beta if beta_cov is None else (beta, beta_cov)
        J = np.eye(self.p)
        J[self.intercept] -= self.shift_X
        J[self.intercept, self.intercept] = 1.0
        out = J @ beta
        out[self.intercept] += self.shift_y
        if beta_cov is None:
            return out
        return out, J @ beta_cov @ J.T


# The per-level arrays of TermSums (first axis: the term's levels).
_LEVEL_ARRAYS = ("A", "ZX", "Zy", "level_w", "level_y", "level_yy", "level_n")


def _move_entries(M, side, moves, size):
    """CSR ``M`` with its rows (``side=0``) or columns (``side=1``) ``i`` moved
    to ``moves[i]`` of ``size``."""
    M = M.tocoo()
    rows, cols = (moves[M.row], M.col) if side == 0 else (M.row, moves[M.col])
    shape = (size, M.shape[1]) if side == 0 else (M.shape[0], size)
    return sp.csr_matrix((M.data, (rows, cols)), shape=shape)


def _add_terms(s, t):
    both = s.level_y is not None and t.level_y is not None
    return TermSums(
        A=s.A + t.A,
        ZX=s.ZX + t.ZX,
        Zy=s.Zy + t.Zy,
        level_w=s.level_w + t.level_w,
        level_y=s.level_y + t.level_y if both else None,
        level_yy=s.level_yy + t.level_yy if both else None,
        level_n=s.level_n + t.level_n,
        # a covariate that is all ones in every chunk (a slope can be 1 in one chunk)
        intercept=s.intercept if s.intercept == t.intercept else None,
    )


# ------------------------------------------------------------------- rows
def _is_ones(column):
    return bool(np.all(column == 1.0))


def _weighted_covariates(term, w):
    """``w * z_a`` per covariate of a term (``w`` itself for an intercept column),
    and which covariates are intercepts."""
    ones = [_is_ones(term.covariates[:, a]) for a in range(term.n_coef)]
    columns = []
    for a in range(term.n_coef):
        if ones[a]:
            columns.append(w)
        else:
            z = np.ascontiguousarray(term.covariates[:, a], dtype=float)
            columns.append(z if w is None else w * z)
    return columns, ones


def _term_sums(term, w, X, shift_X, intercept, y_c, wy):
    """:class:`TermSums` of one term by weighted bincounts (one pass each).

    ``Z_j'W X~ = Z_j'W X - (Z_j'W 1) s_X'``: linear in X, so the shift costs
    only ``eps |s_X| / spread`` of relative precision (the quadratic sums are
    formed centred, :func:`_fixed_sums`).
    """
    m, k, codes = term.n_levels, term.n_coef, term.codes
    wz, ones = _weighted_covariates(term, w)
    z = [None if ones[a] else term.covariates[:, a] for a in range(k)]
    level_n = np.bincount(codes, minlength=m)
    level_w = level_n.astype(float) if w is None else index_sums(codes, w, m)
    A = np.empty((m, k, k))
    for a in range(k):
        for b in range(a, k):
            if ones[a] and ones[b]:
                A[:, a, b] = level_w
            elif ones[a]:
                A[:, a, b] = index_sums(codes, wz[b], m)
            else:
                A[:, a, b] = index_sums(codes, wz[a] if z[b] is None else wz[a] * z[b], m)
            A[:, b, a] = A[:, a, b]
    Z1 = np.stack(
        [
            level_w
            if ones[a]
            else A[:, a, ones.index(True)]
            if any(ones)
            else index_sums(codes, wz[a], m)
            for a in range(k)
        ],
        axis=1,
    )
    p = X.shape[1]
    ZX = np.empty((m, k, p))
    for j in range(p):
        if j == intercept:  # the intercept column of X: Z_j'W 1
            ZX[:, :, j] = Z1
            continue
        x = X[:, j]
        for a in range(k):
            ZX[:, a, j] = index_sums(codes, x if wz[a] is None else wz[a] * x, m)
        if shift_X[j]:
            ZX[:, :, j] -= Z1 * shift_X[j]
    Zy = np.empty((m, k))
    for a in range(k):
        Zy[:, a] = index_sums(codes, wy if z[a] is None else wy * z[a], m)
    level_y = Zy[:, ones.index(True)].copy() if any(ones) else index_sums(codes, wy, m)
    level_yy = index_sums(codes, wy * y_c, m)
    intercept_coef = ones.index(True) if any(ones) else None
    return TermSums(A, ZX, Zy, level_w, level_y, level_yy, level_n, intercept_coef)


def _crosstab(rows, cols, m_rows, m_cols, values=None):
    """Sparse ``sum`` of ``values`` (1 by default) per cell ``(rows, cols)``, CSR.

    A dense table by ``bincount`` when it is no larger than the data (small
    models: no sort), else a COO matrix summed by scipy.
    """
    n = rows.size
    if m_rows * m_cols <= max(4 * n, 4096):
        keys = rows.astype(np.int64) * m_cols + cols
        table = index_sums(keys, values, m_rows * m_cols).reshape(m_rows, -1)
        present = table != 0
        indptr = np.concatenate([[0], np.cumsum(present.sum(axis=1))])
        indices = np.nonzero(present)[1]
        data = table[present].astype(float)
        return sp.csr_matrix((data, indices, indptr), shape=(m_rows, m_cols))
    data = np.ones(n) if values is None else values
    return sp.coo_matrix((data, (rows, cols)), shape=(m_rows, m_cols)).tocsr()


def _pair_sums(s, t, w):
    """``Z_s'WZ_t`` (CSR) and the level counts of terms ``s`` and ``t``."""
    counts = _crosstab(s.codes, t.codes, s.n_levels, t.n_levels)
    ks, kt = s.n_coef, t.n_coef
    plain = ks == kt == 1 and _is_ones(s.covariates[:, 0]) and _is_ones(t.covariates[:, 0])
    if plain and w is None:
        return counts, counts
    rows, cols, values = [], [], []
    for a in range(ks):
        for b in range(kt):
            v = np.asarray(s.covariates[:, a] * t.covariates[:, b], dtype=float)
            rows.append(s.codes * ks + a)
            cols.append(t.codes * kt + b)
            values.append(v if w is None else w * v)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    pair = _crosstab(rows, cols, s.n_levels * ks, t.n_levels * kt, np.concatenate(values))
    return pair, counts


def _fixed_sums(X, w, shift_X, y_c, wy):
    """``X~'WX~``, ``X~'Wy~``, ``y~'Wy~`` by blocks of rows."""
    n, p = X.shape
    XX, Xy, yy = np.zeros((p, p)), np.zeros(p), 0.0
    for start in range(0, n, _BLOCK_ROWS):
        rows = slice(start, start + _BLOCK_ROWS)
        Xb = X[rows] - shift_X if np.any(shift_X) else X[rows]
        WXb = Xb if w is None else Xb * w[rows, None]
        XX += WXb.T @ Xb
        Xy += Xb.T @ wy[rows]
        yy += float(y_c[rows] @ wy[rows])
    return 0.5 * (XX + XX.T), Xy, yy  # (WX)'X: symmetric up to rounding


def reduce_rows(X, y, terms, *, weights=None, offset=None, intercept=None, shift=None,
                pattern=None):  # fmt: skip
    """The :class:`Reduction` of a chunk of rows.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Fixed-effects model matrix (with its intercept column, if any).
    y : ndarray of shape (n,)
    terms : sequence of RandomTerm
        Each with ``codes`` (n,), ``covariates`` (n, k) and ``n_levels``
        (the same level coding in every chunk of one model).
    weights : ndarray of shape (n,), optional
        Prior weights, all positive; None for unit weights.
    offset : ndarray of shape (n,), optional
        Known part of the linear predictor, subtracted from ``y``.
    intercept : int, optional
        Index of the all-ones column of X: the sums are then centred.
    shift : (ndarray of shape (p,), float), optional
        The centre; default the weighted means of this chunk.
    pattern : PairPattern, optional
        The pair cells of these rows and terms (:class:`PairPattern`), known
        from an earlier reduction: reused, not recomputed.

    Returns
    -------
    Reduction
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    if offset is not None:
        y = y - np.asarray(offset, dtype=float)
    w = None if weights is None else np.asarray(weights, dtype=float)
    if w is not None and not np.all(w > 0):
        raise ValueError("prior weights must be positive; drop rows of weight 0 first")
    sum_w = float(n if w is None else w.sum())
    if intercept is None or n == 0:
        shift_X, shift_y = np.zeros(p), 0.0
    elif shift is not None:
        shift_X, shift_y = np.array(shift[0], dtype=float), float(shift[1])
    else:
        shift_X = X.mean(axis=0) if w is None else (w @ X) / sum_w
        shift_y = float(y.mean() if w is None else w @ y / sum_w)
    if intercept is not None:
        shift_X[intercept] = 0.0
    y_c = y - shift_y
    wy = y_c if w is None else w * y_c
    XX, Xy, yy = _fixed_sums(X, w, shift_X, y_c, wy)
    term_sums = tuple(_term_sums(t, w, X, shift_X, intercept, y_c, wy) for t in terms)
    pairs, counts = {}, {}
    for f in range(len(terms)):
        for g in range(f + 1, len(terms)):
            known = pattern_pair(pattern, terms, f, g, w)
            pairs[(f, g)], counts[(f, g)] = known or _pair_sums(terms[f], terms[g], w)
    return Reduction(
        n=n,
        sum_w=sum_w,
        sum_log_w=0.0 if w is None else float(np.log(w).sum()),
        intercept=intercept,
        shift_X=shift_X,
        shift_y=shift_y,
        XX=XX,
        Xy=Xy,
        yy=yy,
        terms=term_sums,
        pairs=pairs,
        counts=counts,
    )
