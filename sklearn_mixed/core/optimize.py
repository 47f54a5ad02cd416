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

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize

from .bfgs import projected_bfgs

__all__ = ["NEAR_BOUND", "OptimizeOutcome", "better_outcome", "minimize_deviance"]

# Deviance returned where the factorization fails (theta far outside the
# feasible region); finite so that quasi-Newton line searches back off.
_FAILED = 1e300


@dataclass(frozen=True)
class _Bounds:
    """``theta >= lower``, and which quasi-Newton method to use."""

    lower: np.ndarray
    projected: bool  # projected BFGS (cheap evaluations) or L-BFGS-B

    @property
    def pairs(self):
        return [(lo if np.isfinite(lo) else None, None) for lo in self.lower]


@dataclass(frozen=True)
class OptimizeOutcome:
    theta: np.ndarray
    deviance: float
    n_iter: int
    n_evaluations: int
    converged: bool
    message: str


def better_outcome(first, second, tol):
    """The outcome with the lower deviance (the first unless the second is lower by
    more than ``tol`` relative), with both searches' iterations and evaluations."""
    lower = second.deviance < first.deviance - tol * max(1.0, abs(first.deviance))
    best = second if lower else first
    return replace(best, n_iter=first.n_iter + second.n_iter,
                   n_evaluations=first.n_evaluations + second.n_evaluations)  # fmt: skip


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


# Steps off the boundary tried, as fractions of the starting value (at least 1,
# lme4's start of a relative standard deviation).
_BOUNDARY_PROBES = (1e-3, 1e-2, 1e-1, 0.5, 1.0)
_MAX_BOUNDARY_RESTARTS = 3
# Closer than this to its bound, a theta element counts as on it: the deviance
# is even in a diagonal element of Lambda, so there its derivative is ~0 and a
# gradient method started or stopped there does not move.
NEAR_BOUND = 1e-6


def _probe_off_boundary(objective, theta, value, theta0, lower):
    """A point with a lower deviance just inside the boundary, or None.

    Elements of theta at their bound are stationary, so the gradient cannot
    tell whether the interior is lower: evaluate the deviance at a few steps
    into the feasible set.
    """
    at_bound = np.isfinite(lower) & (theta - lower <= NEAR_BOUND)
    if not np.any(at_bound):
        return None
    best, best_value = None, value
    step = np.maximum(np.abs(theta0), 1.0)
    for fraction in _BOUNDARY_PROBES:
        candidate = np.where(at_bound, lower + fraction * step, theta)
        candidate_value = objective(candidate)
        if candidate_value < best_value:
            best, best_value = candidate, candidate_value
    return best


def _quasi_newton(objective, theta, bounds, max_iter, tol, scale=None, gtol=None):
    if bounds.projected:
        options = {} if gtol is None else {"gtol": gtol}
        return projected_bfgs(
            objective.value_and_gradient,
            theta,
            bounds.lower,
            max_iter=max_iter,
            scale=scale,
            **options,
        )
    return minimize(
        objective.value_and_gradient,
        theta,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds.pairs,
        options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-7, "maxcor": 20},
    )


def _nelder_mead_polish(objective, theta, value, bounds, tol):
    return minimize(
        objective,
        theta,
        method="Nelder-Mead",
        bounds=bounds.pairs,
        options={"maxiter": 200 * theta.size, "xatol": 1e-8, "fatol": tol * max(1.0, abs(value))},
    )


def minimize_deviance(
    deviance,
    theta0,
    lower,
    *,
    value_and_gradient=None,
    max_iter=500,
    tol=1e-10,
    projected=False,
    scale=None,
    gtol=None,
):
    """Minimize ``deviance(theta)`` subject to ``theta >= lower``.

    A diagonal element of ``T`` at its bound 0 is always a stationary point
    (the deviance is even in the last diagonal element of an unstructured
    factor and in every element of a diagonal one), so a quasi-Newton method
    that lands there stops although the interior may hold a lower deviance.
    The deviance is then probed a few steps into the interior and, if lower,
    the search restarts from there; a genuinely singular fit stays on the
    boundary.

    Parameters
    ----------
    deviance : callable
        ``theta -> float``; may raise ``numpy.linalg.LinAlgError``.
    theta0, lower : ndarray of shape (d,)
    value_and_gradient : callable, optional
        ``theta -> (float, ndarray)``, the deviance and its gradient.
    max_iter : int
        Maximum number of quasi-Newton iterations.
    tol : float
        Relative tolerance on the deviance between iterations.
    projected : bool
        Use the projected BFGS of :mod:`.bfgs` (few parameters, cheap
        evaluations: its bookkeeping is lighter) instead of L-BFGS-B.
    scale : ndarray of shape (d,), optional
        The projected BFGS's guess of the inverse Hessian's diagonal.
    gtol : float, optional
        The projected BFGS's tolerance on the projected gradient (relative to
        ``max(1, |f|)``; its default 1e-9 when None).
    """
    objective = _CountedObjective(deviance, value_and_gradient)
    theta0 = np.asarray(theta0, dtype=float)
    if theta0.size == 0:
        return OptimizeOutcome(theta0, objective(theta0), 0, 1, True, "no parameters")
    lower = np.asarray(lower, dtype=float)
    theta0 = np.where(np.isfinite(lower) & (theta0 - lower <= NEAR_BOUND), lower, theta0)
    bounds = _Bounds(lower, projected and value_and_gradient is not None)
    result = _quasi_newton(objective, theta0, bounds, max_iter, tol, scale, gtol)
    n_iter, converged, message = result.nit, bool(result.success), str(result.message)
    theta, value = result.x, result.fun
    for _ in range(_MAX_BOUNDARY_RESTARTS):
        restart_point = _probe_off_boundary(objective, theta, value, theta0, lower)
        if restart_point is None:
            break
        restart = _quasi_newton(objective, restart_point, bounds, max_iter, tol, scale, gtol)
        n_iter += restart.nit
        if restart.fun >= value:
            break
        theta, value = restart.x, restart.fun
        converged, message = bool(restart.success), str(restart.message)
    if not converged and n_iter < max_iter:
        polish = _nelder_mead_polish(objective, theta, value, bounds, tol)
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
