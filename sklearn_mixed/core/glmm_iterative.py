"""Approximate GLMMs of crossed random intercepts too large for the exact factor.

The exact GLMM (:mod:`.glmm`) factors, at each PIRLS step, a dense block of
the levels of every factor but the largest.  For two crossed factors of
1e4+ levels each that block no longer fits; the linear model's iterative
solver (:mod:`.iterative`) does without it, and the GLMM here is built on
its pieces:

- **PIRLS** with each Newton step the linear mixed model of the working
  response at sigma = 1, solved by the iterative solver's block PCG on
  Henderson's equations (:func:`~.iterative_system.solve_mixed_model_equations`,
  warm-started);
- **the Laplace criterion** ``log|L|^2 + ||u||^2 + aic(mu)`` with
  ``log|L|^2`` by deflated stochastic Lanczos quadrature at the final
  weights (:func:`~.iterative_likelihood.laplace_random_part`), its probes
  drawn from a fixed seed at every evaluation, so the criterion is a smooth
  deterministic function of theta;
- **lme4's two stages** by bounded Nelder-Mead: ``log theta`` with beta in
  PIRLS (one parameter per factor, from ``theta = 1``), then ``(log theta,
  gamma)`` with ``beta = beta_1 + C gamma`` held in PIRLS (``C C'`` the
  first stage's covariance of beta).

The approximations, stated in the result: the log-determinant carries Monte
Carlo error (``deviance_se``; exact below a few hundred levels of the
smaller factors), standard errors are PIRLS's ``(C^-1)_XX`` (not lme4's
Hessian), conditional variances the iterative solver's approximation, and
theta is searched above ``1e-4`` (a smaller relative sd is reported there).
"""

import numpy as np
from scipy.optimize import minimize

from .glmm_state import halved_step, penalized_deviance
from .iterative_likelihood import laplace_random_part
from .iterative_system import solve_mixed_model_equations
from .pair_pattern import PairPattern
from .reduction import reduce_rows

__all__ = ["ITERATIVE_THETA_FLOOR", "fit_glmm_iterative"]

# theta (a relative sd) is searched on [1e-4, 1e3], in logs.
ITERATIVE_THETA_FLOOR = 1e-4
_LOG_THETA_BOUNDS = (np.log(ITERATIVE_THETA_FLOOR), np.log(1e3))
_ETA_STEP = 1e-6
_MAX_PIRLS = 50
_CG_TOL = 1e-10
_TINY_WEIGHT = 1e-300


class _IterativePirls:
    """PIRLS for (beta, b) at theta on the iterative solver, warm-started."""

    def __init__(self, model):
        self.model = model
        self.predictor = model.predictor
        terms = self.predictor.terms
        if any(t.n_coef != 1 or not np.all(t.covariates[:, 0] == 1.0) for t in terms):
            raise ValueError(
                "the iterative GLMM solver fits random intercepts only ((1 | g) terms); "
                "use solver='exact' for random slopes"
            )
        self.beta = self.predictor.glm_start(model.family, model.prior)
        self.b = [np.zeros(t.n_levels) for t in terms]
        self.pattern = None
        self.cg_start = self.cg_fixed = None  # CG's warm starts (beta free, beta held)

    def _eta(self, beta, b):
        eta = self.predictor.offset + self.predictor.X @ beta
        for t, b_t in zip(self.predictor.terms, b, strict=True):
            eta = eta + b_t[t.codes]
        return eta

    def _reduce(self, eta, beta=None):
        """The working reduction at ``eta`` (``beta`` given: held, ``X beta`` moved
        to the response and no fixed columns)."""
        family, prior, pred = self.model.family, self.model.prior, self.predictor
        _, W, r = family.working(pred.y, eta, prior)
        z = eta - pred.offset + r
        X, intercept = pred.X, pred.intercept
        if beta is not None:
            X, intercept, z = X[:, :0], None, z - X @ beta
        reduction = reduce_rows(X, z, pred.terms, weights=np.maximum(W, _TINY_WEIGHT),
                                intercept=intercept, pattern=self.pattern)  # fmt: skip
        if self.pattern is None:
            self.pattern = PairPattern.of(pred.terms, reduction.counts)
        return reduction

    def _penalized(self, eta, b, theta):
        u = [b_t / th for b_t, th in zip(b, theta, strict=True)]  # u = b / theta
        return penalized_deviance(self.predictor, self.model.family, self.model.prior, eta, u)

    def run(self, theta, beta_cov=False, beta=None):
        """``(beta, b, eta, reduction at eta, info)`` at the modes for ``theta``
        (and ``beta`` held fixed, if given)."""
        variances = theta**2
        fixed = beta is not None
        b = self.b
        beta = np.asarray(beta, dtype=float) if fixed else self.beta
        eta = self._eta(beta, b)
        pdev = self._penalized(eta, b, theta)
        info = {}
        for _ in range(_MAX_PIRLS):
            reduction = self._reduce(eta, beta if fixed else None)
            start = self.cg_fixed if fixed else self.cg_start
            beta_n, b_n, info = solve_mixed_model_equations(
                reduction, variances, 1.0, tol=_CG_TOL, start=start
            )
            if fixed:
                self.cg_fixed, beta_n = info["reduced"], beta
            else:
                self.cg_start = info["reduced"]

            def evaluate(beta_t, b_t):
                eta_t = self._eta(beta_t, b_t)
                return self._penalized(eta_t, b_t, theta), eta_t

            accepted = halved_step((beta, b), (beta_n, b_n), pdev, evaluate)
            if accepted is None:  # no descent: the modes, to rounding
                break
            (beta, b), pdev, eta_t = accepted
            moved = np.max(np.abs(eta_t - eta), initial=0.0)
            eta = eta_t
            if moved <= _ETA_STEP * max(1.0, np.max(np.abs(eta))):
                break
        reduction = self._reduce(eta, beta if fixed else None)  # weights at the final modes
        if beta_cov:
            reduction_X = self._reduce(eta) if fixed else reduction
            info = solve_mixed_model_equations(reduction_X, variances, 1.0, tol=_CG_TOL,
                                               beta_cov=True, start=self.cg_start)[2]  # fmt: skip
        self.b = b
        if not fixed:
            self.beta = beta
        return beta, b, eta, reduction, info


def fit_glmm_iterative(model, *, max_iter=200, tol=1e-6, random_state=0):
    """Fit ``model`` (a :class:`~.glmm.GeneralizedLinearMixedModel` of random
    intercepts) approximately; returns ``(theta, beta, b, beta_cov, conditional
    variances, deviance, deviance_se, optimizer result)``."""
    pirls = _IterativePirls(model)
    family, prior, y = model.family, model.prior, model.predictor.y

    def laplace(theta, beta_cov=False, beta=None):
        beta, b, eta, reduction, info = pirls.run(theta, beta_cov, beta)
        rng = np.random.default_rng(random_state)  # the same probes at every theta
        logdet, se, cond = laplace_random_part(reduction, theta**2, rng)
        u2 = sum(float(np.sum((b_t / th) ** 2)) for b_t, th in zip(b, theta, strict=True))
        value = logdet + u2 + family.minus_two_log_likelihood(y, family.linkinv(eta), prior)
        return value, se, (beta, b, info, cond)

    k, p = len(model.terms), model.p
    stage1 = minimize(
        lambda x: laplace(np.exp(x))[0], np.zeros(k), method="Nelder-Mead",
        bounds=[_LOG_THETA_BOUNDS] * k,
        options={"maxiter": max_iter * k, "xatol": 1e-3, "fatol": tol},
    )  # fmt: skip
    theta1 = np.exp(stage1.x)
    _, _, (beta1, _, info1, _) = laplace(theta1, beta_cov=True)
    # stage 2: (log theta, gamma), beta = beta1 + C gamma (gamma in standard errors)
    C = np.linalg.cholesky(info1["beta_cov"]) if p else np.zeros((0, 0))

    def joint(x):
        return laplace(np.exp(x[:k]), beta=beta1 + C @ x[k:])[0]

    x0 = np.concatenate([stage1.x, np.zeros(p)])
    steps = np.diag(np.r_[np.full(k, 0.05), np.full(p, 0.5)])  # log theta, gamma
    simplex = np.vstack([x0, x0 + steps])
    bounds = [_LOG_THETA_BOUNDS] * k + [(None, None)] * p
    result = minimize(joint, x0, method="Nelder-Mead", bounds=bounds,
                      options={"maxiter": max_iter * (k + p), "xatol": 1e-3, "fatol": tol,
                               "initial_simplex": simplex})  # fmt: skip
    theta, beta = np.exp(result.x[:k]), beta1 + C @ result.x[k:]
    value, se, (_, b, info, cond) = laplace(theta, beta_cov=True, beta=beta)
    result.nit += stage1.nit
    result.nfev += stage1.nfev
    return theta, beta, b, info.get("beta_cov"), cond, value, se, result
