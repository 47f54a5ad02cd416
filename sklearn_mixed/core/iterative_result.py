"""The result of the iterative solver (:mod:`.iterative`), in the user's order.

The solver works with the factors reordered (the one with the most levels
first) and the levels without observations dropped; :class:`IterativeFit`
holds everything in the user's factor and level order.
"""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["IterativeFit"]


@dataclass
class IterativeFit:
    """An approximate (RE)ML fit of crossed random intercepts, as arrays.

    Per-factor lists follow the order of ``codes_list``.

    Attributes
    ----------
    beta : ndarray of shape (p,)
        Fixed effects (generalized least squares at the estimated variances).
    b : list of ndarray of shape (n_levels_f,)
        Conditional modes (BLUPs); 0 for levels without observations.
    sigma2 : float
        Residual variance.
    variances : ndarray of shape (F,)
        ``sigma_f^2`` per factor.
    beta_cov : ndarray of shape (p, p) or None
        ``sigma^2 (X' V^-1 X)^-1`` at the estimated variances, from ``p`` CG
        solves (exact up to the CG tolerance; not a further approximation);
        None when not requested.
    log_likelihood : float or None
        lme4's profiled REML criterion (``method="reml"``) or log-likelihood
        at the estimated variance ratios, with a *stochastic* estimate of
        its log-determinant (stochastic Lanczos quadrature, see
        :mod:`.iterative_likelihood`); None when not requested.
    log_likelihood_se : float
        Monte Carlo standard error of ``log_likelihood`` (0 when its
        log-determinant was computed exactly; NaN when not requested).
    conditional_var : list of ndarray of shape (n_levels_f,)
        Approximate ``Var(b_j | y)`` (given beta, as lme4's ``condVar``): the
        block-Jacobi value corrected along the factors' constant vectors (see
        :mod:`.iterative_likelihood`); ``sigma_f^2`` for levels without
        observations.
    mc_se : ndarray of shape (F + 1,)
        Estimated Monte Carlo standard error of ``log sigma_f^2`` (and, last,
        ``log sigma^2``) due to the stochastic traces: the relative error to
        expect against the exact (RE)ML variances.
    n_probes : ndarray of shape (F,)
        Hutchinson probes used per factor.
    diagnostics : dict
        ``cg_products`` (matrix-vector products with the Schur complement, one
        per right-hand side and CG iteration, up to the final solution),
        ``cg_iterations`` (CG iterations, the longest column of each block
        solve), ``history`` (one dict per outer iteration), ``start`` (the
        moment estimates), ``log_likelihood`` (its probes, Lanczos steps,
        products and seconds), ``conditional_var`` (products and seconds),
        ``seconds``.
    """

    method: str
    n: int
    p: int
    beta: np.ndarray
    b: list
    sigma2: float
    variances: np.ndarray
    beta_cov: object
    n_iter: int
    converged: bool
    message: str
    singular: bool
    mc_se: np.ndarray
    n_probes: np.ndarray
    log_likelihood: object = None
    log_likelihood_se: float = np.nan
    conditional_var: list = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)

    @property
    def theta(self):
        """lme4's relative scale ``sigma_f / sigma`` per factor."""
        return np.sqrt(self.variances / self.sigma2)

    def predict(self, X, codes_list):
        """``X beta + sum_f b_f[codes_f]`` (codes as in the fit)."""
        out = np.asarray(X, dtype=float) @ self.beta
        for b, codes in zip(self.b, codes_list, strict=True):
            out += b[np.asarray(codes)]
        return out


def _in_user_order(d, variances, mc_se, counts, exact):
    """Variances, Monte Carlo errors, probe counts and exact-trace flags in the
    user's factor order (the solver works with the largest factor first)."""
    F = d.F
    variances = _user_variances(d, variances)[:F]
    mc_user = _user_variances(d, mc_se)
    probes_user = np.empty(F, dtype=int)
    probes_user[d.order] = np.where(exact, [d.m[f] for f in range(F)], counts)
    exact_user = np.empty(F, dtype=bool)
    exact_user[d.order] = exact
    return variances, mc_user, probes_user, exact_user


def _user_variances(d, values):
    """A per-factor vector followed by the residual's, factors in the user's order."""
    out = np.empty(d.F + 1)
    out[d.order] = values[: d.F]
    out[d.F] = values[d.F]
    return out
