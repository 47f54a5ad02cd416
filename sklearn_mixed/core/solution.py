"""The solution of a fitted linear mixed model, as arrays.

- :class:`CriterionPieces`: what the (RE)ML criterion at ``(theta, sigma)``
  needs from the factor at ``theta`` (profiles, Satterthwaite);
- :class:`LMMFit`: estimates, variances and the optimizer's summary at the
  optimum (:attr:`LinearMixedModel.result <.model.LinearMixedModel.result>`).
"""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["CriterionPieces", "LMMFit"]


@dataclass(frozen=True)
class CriterionPieces:
    """What the deviance at ``(theta, sigma)`` needs from the factor at theta."""

    logdet_Z: float  # log|L_Z|^2
    logdet_X: float  # log|L_X|^2
    pwrss: float  # r^2, the penalized residual sum of squares
    unscaled_beta_cov: np.ndarray  # (L_X L_X')^-1 (centred coordinates)


class InformationCriteria:
    """``log_likelihood``, AIC and BIC of a fit with ``deviance``, ``n`` and ``n_params``."""

    @property
    def log_likelihood(self):
        return -0.5 * self.deviance

    @property
    def aic(self):
        return self.deviance + 2.0 * self.n_params

    @property
    def bic(self):
        return self.deviance + np.log(self.n) * self.n_params


@dataclass
class LMMFit(InformationCriteria):
    """The solution of a fitted linear mixed model, as arrays.

    Per-term lists follow the model's term order; ``beta`` and ``beta_cov``
    are those of the model's fixed columns as given (not centred).
    """

    method: str
    n: int
    p: int
    theta: np.ndarray
    T: list  # relative factors, k x k each
    beta: np.ndarray
    b: list  # conditional modes, (m, k) each
    sigma2: float
    beta_cov: np.ndarray  # (p, p)
    conditional_cov: list  # Var(b_j | y), (m, k, k) each
    deviance: float
    n_iter: int
    n_evaluations: int
    converged: bool
    message: str
    singular: bool
    term_cov: list = field(default_factory=list)  # sigma^2 T T', k x k each
    fixed_sigma: bool = False
    exact_fit: bool = False
    log_likelihood_se: float = 0.0  # Monte Carlo error (iterative solver)

    @property
    def n_params(self):
        """Fixed effects, covariance parameters and the residual variance (unless known)."""
        return self.p + self.theta.size + (0 if self.fixed_sigma else 1)
