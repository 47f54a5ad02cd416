"""The solution of a linear mixed model at theta, and its closed forms.

Mixed into :class:`~.model.LinearMixedModel`: from the factor at ``theta``
(dense or blocked) the fixed effects ``beta`` and ``Var(beta)``, the
conditional modes ``b = T u`` and ``Var(b | y) = sigma^2 T B T'`` per term,
``sigma^2`` and the deviance, gathered in an :class:`~.solution.LMMFit`; and
the closed-form fits without random effects or of a response the fixed
effects fit exactly.  It reads the model's reduction, layout, terms and
solver attributes.
"""

import numpy as np

from .cholesky import BlockedFactor, augmented_cholesky
from .crossprod import data_gram
from .deviance import (
    conditional_covariance_blocks,
    fixed_effects_covariance,
    log_determinants,
    solve_coefficients,
)
from .solution import LMMFit

__all__ = ["SolutionMixin"]

# The fixed effects fit y exactly when the OLS residual sum of squares is below
# this fraction of the total (rounding leaves ~1e-16 of it).
_EXACT_FIT = 1e-12


class SolutionMixin:
    """The solution at theta and the closed forms of :class:`~.model.LinearMixedModel`."""

    # ------------------------------------------------------ closed forms
    def _fixed_factor(self):
        """Factor of ``[X'WX, X'Wy; y'WX, y'Wy]`` (no random effects)."""
        WW = data_gram(self.reduction)
        if self.p:
            return augmented_cholesky(WW)
        return np.sqrt(np.maximum(WW, 0.0))

    def _fits_exactly(self):
        """Whether the fixed effects fit y exactly (a constant response, say)."""
        total = self.reduction.yy
        rss = self._fixed_factor()[-1, -1] ** 2
        return total <= 0.0 or rss <= _EXACT_FIT * total

    def _closed_form(self, exact):
        """The fit without random effects, or of a response the fixed effects fit
        exactly (all variances 0, infinite likelihood)."""
        L = self._fixed_factor()
        factor = BlockedFactor(stages=(), L22=L, q_dense=0)
        theta = np.zeros(self.layout.start.size)
        beta, _, _ = solve_coefficients(factor, self.p)
        if exact:
            L[-1, -1] = 0.0
        sigma2 = self.criterion.sigma2(L[-1, -1] ** 2)
        beta_cov = fixed_effects_covariance(factor, self.p, sigma2)
        T = self.layout.factors(theta)
        b = [np.zeros((t.n_levels, t.n_coef)) for t in self.terms]
        cond = [np.zeros((t.n_levels, t.n_coef, t.n_coef)) for t in self.terms]
        deviance = -np.inf if exact else self.criterion.value(*log_determinants(factor, self.p))
        self.theta = theta
        self.result = self._lmm_fit(theta, T, (beta, b, cond, sigma2, beta_cov), deviance, None)
        self.result.exact_fit = exact
        self.result.singular = exact
        return self

    # ------------------------------------------------------- the solution
    def _solution(self, theta):
        if self._small is not None:
            return self._dense_solution(theta)
        factor, T = self.factorize(theta)
        beta, u_closed, u_dense = solve_coefficients(factor, self.p)
        sigma2 = self.criterion.sigma2(factor.L22[-1, -1] ** 2)
        b, cond = self._modes_and_conditional_covariances(factor, T, u_closed, u_dense, sigma2)
        beta_cov = fixed_effects_covariance(factor, self.p, sigma2)
        deviance = self.criterion.value(*log_determinants(factor, self.p))
        return self._lmm_fit(theta, T, (beta, b, cond, sigma2, beta_cov), deviance, self.optimizer)

    def _dense_solution(self, theta):
        solution = self._small.solution(self.layout.factors(theta))
        T = self.layout.factors(theta)
        sigma2 = solution.sigma2
        b = [u @ Tj.T for u, Tj in zip(solution.u, T, strict=True)]  # b_j = T u_j
        cond = [sigma2 * (Tj[None] @ B @ Tj.T[None])
                for B, Tj in zip(solution.conditional, T, strict=True)]  # fmt: skip
        solved = (solution.beta, b, cond, sigma2, solution.beta_cov)
        return self._lmm_fit(theta, T, solved, solution.deviance, self.optimizer)

    def _modes_and_conditional_covariances(self, factor, T, u_closed, u_dense, sigma2):
        """Conditional modes ``b = T u`` and ``Var(b | y)`` per term, in term order."""
        rt = self.reduction.terms
        dense_sizes = [(rt[i].n_levels, rt[i].n_coef) for i in self._dense]
        kernels = self._single is not None or self._paired is not None
        pairs = None if kernels else self.cp.closed[0].pairs
        blocks = conditional_covariance_blocks(factor, dense_sizes, pairs)
        u = self._term_order_modes(u_closed, u_dense)
        b = [u_t @ T_t.T for u_t, T_t in zip(u, T, strict=True)]  # b_j = T u_j
        cond = [None] * len(rt)
        for term_index, B in zip(self._closed + self._dense, blocks, strict=True):
            Tj = T[term_index]
            cond[term_index] = sigma2 * (Tj[None] @ B @ Tj.T[None])
        return b, cond

    def _lmm_fit(self, theta, T, solved, deviance, outcome):
        """The :class:`LMMFit` of ``(beta, b, Var(b | y), sigma^2, Var(beta))`` (centred)."""
        beta, b, cond, sigma2, beta_cov = solved
        beta, beta_cov = self.reduction.uncentre(beta, beta_cov)
        return LMMFit(
            method=self.method,
            n=self.n,
            p=self.p,
            theta=np.asarray(theta, dtype=float),
            T=T,
            beta=beta,
            b=b,
            sigma2=float(sigma2),
            beta_cov=beta_cov,
            conditional_cov=cond,
            deviance=float(deviance),
            n_iter=outcome.n_iter if outcome else 1,  # closed form: one factorization
            n_evaluations=outcome.n_evaluations if outcome else 1,
            converged=outcome.converged if outcome else True,
            message=outcome.message if outcome else "closed form",
            singular=bool(self.terms) and self.layout.singular(theta),
            term_cov=[sigma2 * Tj @ Tj.T for Tj in T],
            fixed_sigma=self.fixed_sigma is not None,
        )
