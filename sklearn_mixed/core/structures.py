"""Covariance structures of a random-effects term: theta <-> T <-> Sigma.

For a term with ``k`` random coefficients per level, the covariance of one
level's random effects is ``Sigma = sigma^2 T T'`` with ``T`` lower triangular
(Bates et al. 2015, eq. 4-5): the *relative factor*.  A structure says which
elements of ``T`` are free parameters ``theta`` and how:

- :class:`Unstructured`: the whole lower triangle, column by column (lme4's
  ``(1 + x | g)``; for ``k = 2``, ``theta = (T11, T21, T22)``);
- :class:`Diagonal`: the diagonal only, independent coefficients (lme4's
  ``(1 | g) + (0 + x | g)``, ``(x || g)``);
- :class:`BlockDiagonal`: correlated blocks, independent of each other
  (lme4's ``(1 | g) + (0 + x + z | g)``), each block unstructured.

Every structure here keeps ``T`` linear in ``theta`` through a fixed set of
*free positions*; the diagonal elements are bounded below by 0 (a zero means
a singular fit), the off-diagonal ones are free.  Adding a structure is adding
a subclass of :class:`CovarianceStructure`: the optimizer, the gradient, the
profile and the reports only use its methods.
"""

import functools

import numpy as np

__all__ = [
    "BlockDiagonal",
    "CovarianceStructure",
    "Diagonal",
    "STRUCTURES",
    "Unstructured",
    "covariance_to_sd_corr",
    "make_structure",
]

STRUCTURES = ("unstructured", "diagonal")


def covariance_to_sd_corr(cov):
    """Standard deviations and correlation matrix of a covariance matrix.

    A zero standard deviation gives correlations of ``nan`` in its row and
    column, as lme4 prints them.
    """
    cov = np.asarray(cov, dtype=float)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    np.fill_diagonal(corr, 1.0)
    return sd, corr


def _readonly(*arrays):
    for a in arrays:
        a.flags.writeable = False
    return arrays


class CovarianceStructure:
    """The parametrization ``theta -> T`` of one term's ``k x k`` relative factor.

    Subclasses set ``k``, ``rows`` and ``cols`` (the free positions of ``T``,
    in lme4's order) and ``blocks`` (lists of coefficient indices that are
    correlated with each other).
    """

    name = "structure"
    k: int
    rows: np.ndarray
    cols: np.ndarray
    blocks: tuple

    # -- theta <-> T
    @property
    def n_theta(self):
        """Number of free parameters."""
        return self.rows.size

    @property
    def on_diagonal(self):
        """Which elements of theta are diagonal elements of T (bounded by 0)."""
        return self.rows == self.cols

    @property
    def _all_diagonal(self):
        """Whether every block has one coefficient (no correlations)."""
        return all(len(block) == 1 for block in self.blocks)

    def start(self):
        """lme4's starting value: ``T = I`` (variances equal to sigma^2)."""
        return self.on_diagonal.astype(float)

    def lower_bounds(self):
        """0 for the diagonal of T, ``-inf`` for the off-diagonal elements."""
        return np.where(self.on_diagonal, 0.0, -np.inf)

    def relative_factor(self, theta):
        """Lower-triangular ``T`` (k x k) from ``theta``."""
        T = np.zeros((self.k, self.k))
        T[self.rows, self.cols] = theta
        return T

    def theta_gradient(self, T_gradient):
        """``dd/dtheta`` from ``dd/dT`` (the chain rule through ``T(theta)``)."""
        return np.asarray(T_gradient)[self.rows, self.cols]

    def theta_of_factor(self, T):
        """``theta`` of a relative factor of this structure."""
        return np.asarray(T, dtype=float)[self.rows, self.cols]

    def theta_from_covariance(self, relative):
        """``theta`` of the structure closest to the relative covariance
        ``Sigma / sigma^2`` (positive definite): each block's Cholesky factor."""
        T = np.zeros((self.k, self.k))
        for block in self.blocks:
            idx = np.ix_(block, block)
            T[idx] = np.linalg.cholesky(relative[idx])
        return self.theta_of_factor(T)

    # -- lme4's (sd, cor) parameters
    def parameter_kinds(self):
        """``"sd"`` or ``"cor"`` for each element of theta, in theta's order."""
        return np.where(self.on_diagonal, "sd", "cor")

    def parameter_names(self, covariate_names, factor):
        """lme4's ``confint(oldNames = FALSE)`` names, in theta's order."""
        names = []
        for r, c in zip(self.rows, self.cols, strict=True):
            if r == c:
                names.append(f"sd_{covariate_names[r]}|{factor}")
            else:
                names.append(f"cor_{covariate_names[r]}.{covariate_names[c]}|{factor}")
        return names

    def sd_cor(self, theta, sigma):
        """lme4's ``(sd, cor)`` values of ``(theta, sigma)`` in theta's order;
        correlations of a zero standard deviation are 0."""
        T = self.relative_factor(theta)
        sd, corr = covariance_to_sd_corr(sigma**2 * T @ T.T)
        corr = np.nan_to_num(corr, nan=0.0)
        return np.where(self.on_diagonal, sd[self.rows], corr[self.rows, self.cols])

    def theta_from_sd_cor(self, values, sigma):
        """``theta`` of lme4's ``(sd, cor)`` values; raises ``LinAlgError`` when a
        block's correlation matrix is not positive semi-definite."""
        values = np.asarray(values, dtype=float)
        if self._all_diagonal:  # no correlations: theta = sd / sigma
            return values / sigma
        diagonal = self.on_diagonal
        sd = np.zeros(self.k)
        sd[self.rows[diagonal]] = values[diagonal]
        R = np.eye(self.k)
        rows, cols = self.rows[~diagonal], self.cols[~diagonal]
        R[rows, cols] = R[cols, rows] = values[~diagonal]
        if len(self.blocks) == 1:
            T = sd[:, None] * _semidefinite_cholesky(R) / sigma
            return T[self.rows, self.cols]
        T = np.zeros((self.k, self.k))
        for block in self.blocks:
            idx = np.ix_(block, block)
            T[idx] = sd[list(block)][:, None] * _semidefinite_cholesky(R[idx]) / sigma
        return self.theta_of_factor(T)

    def correlated(self, a, b):
        """Whether coefficients ``a`` and ``b`` share a block (may be correlated)."""
        return any(a in block and b in block for block in self.blocks)

    def __eq__(self, other):
        return type(self) is type(other) and self.blocks == other.blocks

    def __hash__(self):
        return hash((type(self).__name__, self.blocks))

    def __repr__(self):
        return f"{type(self).__name__}({self.k})"


def _semidefinite_cholesky(R):
    """Lower ``L`` with ``L L' = R`` for a positive semi-definite correlation
    matrix (correlations of +-1 allowed)."""
    try:
        return np.linalg.cholesky(R)  # positive definite: the usual case
    except np.linalg.LinAlgError:
        pass
    k = R.shape[0]
    L = np.zeros((k, k))
    for j in range(k):
        pivot = R[j, j] - L[j, :j] @ L[j, :j]
        if pivot < -1e-12:
            raise np.linalg.LinAlgError("correlation matrix is not positive semi-definite")
        L[j, j] = np.sqrt(max(pivot, 0.0))
        for i in range(j + 1, k):
            rest = R[i, j] - L[i, :j] @ L[j, :j]
            if L[j, j] > 0.0:
                L[i, j] = rest / L[j, j]
            elif abs(rest) > 1e-12:
                raise np.linalg.LinAlgError("correlation matrix is not positive semi-definite")
    return L


class BlockDiagonal(CovarianceStructure):
    """Correlated blocks of coefficients, independent of each other.

    Parameters
    ----------
    blocks : sequence of sequence of int
        A partition of ``range(k)`` into consecutive runs, in order: the
        coefficients of each lme4 term of the factor.  ``theta`` lists each
        block's lower triangle column by column, block after block (lme4's
        order for several terms on one factor).
    """

    name = "block-diagonal"

    def __init__(self, blocks):
        blocks = tuple(tuple(int(i) for i in block) for block in blocks)
        flat = [i for block in blocks for i in block]
        if not blocks or any(not b for b in blocks) or flat != list(range(len(flat))):
            raise ValueError(
                f"blocks must split 0..k-1 into consecutive non-empty runs, got {blocks!r}"
            )
        self.k = len(flat)
        self.blocks = blocks
        rows, cols = [], []
        for block in blocks:
            c, r = np.triu_indices(len(block))  # column-major walk of the lower triangle
            rows.append(np.asarray(block)[r])
            cols.append(np.asarray(block)[c])
        self.rows, self.cols = _readonly(np.concatenate(rows), np.concatenate(cols))

    def __repr__(self):
        return f"BlockDiagonal({[list(b) for b in self.blocks]})"


class Unstructured(BlockDiagonal):
    """All ``k`` coefficients correlated: the whole lower triangle of ``T``."""

    name = "unstructured"

    def __init__(self, k):
        super().__init__([range(k)])


class Diagonal(BlockDiagonal):
    """Independent coefficients: only the diagonal of ``T`` is free."""

    name = "diagonal"

    def __init__(self, k):
        super().__init__([[i] for i in range(k)])


def make_structure(spec, k):
    """A :class:`CovarianceStructure` for ``k`` coefficients from a name or blocks.

    ``"unstructured"``, ``"diagonal"``, a structure (returned as is, after a
    size check) or a list of blocks (coefficient indices).  One block is
    :class:`Unstructured`, ``k`` blocks of one :class:`Diagonal`.
    """
    if isinstance(spec, CovarianceStructure):
        structure = spec
    elif isinstance(spec, str):
        structure = _named_structure(spec, k)
    else:
        structure = _structure_of_blocks(tuple(tuple(int(i) for i in b) for b in spec))
    if structure.k != k:
        raise ValueError(
            f"covariance structure {structure!r} is for {structure.k} coefficients, not {k}"
        )
    return structure


@functools.lru_cache(maxsize=256)
def _named_structure(spec, k):
    """The (immutable, shared) structure of a name."""
    if spec == "unstructured":
        return Unstructured(k)
    if spec == "diagonal":
        return Diagonal(k)
    raise ValueError(f"covariance structure must be one of {STRUCTURES}, got {spec!r}")


@functools.lru_cache(maxsize=256)
def _structure_of_blocks(blocks):
    """The (immutable, shared) structure of blocks: one block is Unstructured,
    blocks of one coefficient Diagonal."""
    structure = BlockDiagonal(blocks)
    if len(blocks) == 1:
        return Unstructured(structure.k)
    if all(len(b) == 1 for b in blocks):
        return Diagonal(structure.k)
    return structure
