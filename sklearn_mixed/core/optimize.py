"""Optimizer driver for the profiled deviance over theta.

The profiled deviance is a smooth function of a handful of parameters whose
evaluation costs nothing in n, so the driver is a bound-constrained
quasi-Newton method (L-BFGS-B, bounds 0 on the diagonal of T) with the
analytic gradient of :mod:`.gradient` (about the cost of one more evaluation)
or, when none is given, central differences (``2 dim(theta)`` evaluations,
accurate to about ``eps^(2/3)``).  When L-BFGS-B stops without meeting its criteria (a line search
failure near a boundary, say) the point is polished by bounded Nelder-Mead, a
derivative-free method, as lme4 relies on one (BOBYQA).
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

__all__ = ["OptimizeOutcome", "minimize_deviance"]

# Deviance returned where the factorization fails (theta far outside the
# feasible region); finite so that quasi-Newton line searches back off.
_FAILED = 1e300


@dataclass(frozen=True)
class OptimizeOutcome:
    theta: np.ndarray
    deviance: float
    n_iter: int
    n_evaluations: int
    converged: bool
    message: str


class _CountedObjective:
    """Wraps the deviance: counts evaluations, maps failures to a large value."""

    def __init__(self, deviance, value_and_gradient=None):
        self.deviance = deviance
        self.analytic = value_and_gradient
        self.n_evaluations = 0

    def __call__(self, theta):
        self.n_evaluations += 1
        try:
            value = float(self.deviance(theta))
        except np.linalg.LinAlgError:
            return _FAILED
        return value if np.isfinite(value) else _FAILED

    def value_and_gradient(self, theta):
        """Value and gradient: analytic when available, else central differences."""
        if self.analytic is not None:
            self.n_evaluations += 1
            try:
                value, grad = self.analytic(theta)
            except np.linalg.LinAlgError:
                return _FAILED, np.zeros_like(theta)
            if np.isfinite(value) and np.all(np.isfinite(grad)):
                return float(value), grad
            return _FAILED, np.zeros_like(theta)
        f0 = self(theta)
        grad = np.empty_like(theta)
        for i in range(theta.size):
            h = 1e-6 * max(1.0, abs(theta[i]))
            step = np.zeros_like(theta)
            step[i] = h
            grad[i] = (self(theta + step) - self(theta - step)) / (2.0 * h)
        return f0, grad


def minimize_deviance(deviance, theta0, lower, *, value_and_gradient=None, max_iter=500, tol=1e-10):
    """Minimize ``deviance(theta)`` subject to ``theta >= lower``.

    Parameters
    ----------
    deviance : callable
        ``theta -> float``; may raise ``numpy.linalg.LinAlgError``.
    value_and_gradient : callable, optional
        ``theta -> (float, ndarray)``, the deviance and its gradient.
    theta0, lower : ndarray of shape (d,)
    max_iter : int
        Maximum number of quasi-Newton iterations.
    tol : float
        Relative tolerance on the deviance between iterations.
    """
    objective = _CountedObjective(deviance, value_and_gradient)
    theta0 = np.asarray(theta0, dtype=float)
    if theta0.size == 0:
        return OptimizeOutcome(theta0, objective(theta0), 0, 1, True, "no parameters")
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    result = minimize(
        objective.value_and_gradient,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-7, "maxcor": 20},
    )
    n_iter, converged, message = result.nit, bool(result.success), str(result.message)
    theta, value = result.x, result.fun
    if not converged and result.nit < max_iter:
        polish = minimize(
            objective,
            theta,
            method="Nelder-Mead",
            bounds=bounds,
            options={
                "maxiter": 200 * theta.size,
                "xatol": 1e-8,
                "fatol": tol * max(1.0, abs(value)),
            },
        )
        n_iter += polish.nit
        if polish.fun <= value:
            theta, value = polish.x, polish.fun
        converged, message = bool(polish.success), str(polish.message)
    return OptimizeOutcome(
        theta=np.asarray(theta, dtype=float),
        deviance=float(value),
        n_iter=int(n_iter),
        n_evaluations=objective.n_evaluations,
        converged=converged,
        message=message,
    )
