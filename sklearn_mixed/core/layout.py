"""Where things sit: theta per term, and the terms in the blocked factor.

- :class:`ThetaLayout`: each term's slice of the theta vector, its relative
  factor ``T`` and bounds (from the terms' covariance structures);
- :func:`elimination_order`: which terms the blocked Cholesky factor
  eliminates level by level (the largest, and those it nests in) and which
  stay in its dense block.
"""

import numpy as np

__all__ = ["DENSE_LIMIT", "SINGULAR_TOLERANCE", "ThetaLayout", "elimination_order"]

# lme4's isSingular(tol = 1e-4): a bounded element of theta below this is 0.
SINGULAR_TOLERANCE = 1e-4
# A nesting term with fewer random-effect columns than this stays in the dense
# block: a small dense Cholesky (with the analytic gradient) beats sparse
# bookkeeping; beyond it, the dense block would grow with the square of its size.
DENSE_LIMIT = 500


def elimination_order(reduction, dense_limit=None):
    """Split the terms into closed (eliminated level by level) and dense ones.

    The term with the most levels comes first; then, while some remaining
    term with at least ``dense_limit`` columns has every closed term nested in
    it, the one with the most levels joins them (nested factors: ``batch:cask``
    then ``batch``), so that nested factors keep their sparsity.  The rest
    (crossed factors, and small outer factors) are dense.

    Returns
    -------
    closed, dense : list of int
        Term indices.
    """
    if dense_limit is None:
        dense_limit = DENSE_LIMIT
    terms = reduction.terms
    remaining = sorted(range(len(terms)), key=lambda i: (-terms[i].n_levels, -terms[i].n_coef, i))
    closed = [remaining.pop(0)]
    while True:
        nesting = [
            i
            for i in remaining
            if terms[i].n_levels * terms[i].n_coef >= dense_limit
            and all(reduction.nested(c, i) for c in closed)
        ]
        if not nesting:
            return closed, remaining
        closed.append(nesting[0])
        remaining.remove(nesting[0])


class ThetaLayout:
    """Where each term's parameters sit in the theta vector (term order)."""

    def __init__(self, structures):
        self.structures = list(structures)
        sizes = [s.n_theta for s in self.structures]
        self.slices = np.split(np.arange(sum(sizes)), np.cumsum(sizes)[:-1]) if sizes else []
        empty = [np.zeros(0)]
        self.start = np.concatenate([s.start() for s in self.structures] or empty)
        self.lower = np.concatenate([s.lower_bounds() for s in self.structures] or empty)

    def split(self, theta):
        """``theta`` per term."""
        return [np.asarray(theta, dtype=float)[s] for s in self.slices]

    def factors(self, theta):
        """Relative factor ``T`` per term."""
        return [
            s.relative_factor(t) for s, t in zip(self.structures, self.split(theta), strict=True)
        ]

    def theta_gradient(self, T_grads):
        """dd/dtheta from dd/dT per term."""
        out = np.empty(self.start.size)
        for structure, s, g in zip(self.structures, self.slices, T_grads, strict=True):
            out[s] = structure.theta_gradient(g)
        return out

    def inverse_hessian_guess(self, theta, n_levels):
        """A guess of the deviance's inverse Hessian (its diagonal) at ``theta``.

        Near the optimum the deviance's Hessian is twice the information, and
        a relative sd estimated from ``m`` levels has a variance between
        ``theta^2 / (2m)`` (levels measured exactly) and several times that
        (noisy levels): the inverse Hessian is then about ``theta^2 / (4m)``
        to ``theta^2 / m``; take ``theta^2 / (2m)``, with ``theta`` at least a
        tenth of the term's largest diagonal element and at least 0.1 (near 0
        the deviance is flat or concave in theta, not steeper).
        """
        scale = np.empty(np.size(theta))
        for structure, s, m in zip(self.structures, self.slices, n_levels, strict=True):
            values = np.abs(np.asarray(theta, dtype=float)[s])
            floor = 0.1 * max(values[structure.on_diagonal].max(initial=0.0), 1.0)
            scale[s] = np.maximum(values, floor) ** 2 / (2.0 * max(m, 1))
        return scale

    def singular(self, theta, tol=SINGULAR_TOLERANCE):
        """lme4's isSingular: a bounded element of theta below ``tol``."""
        return bool(np.any(np.isfinite(self.lower) & (np.asarray(theta) < tol)))
