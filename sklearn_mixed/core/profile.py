"""Profile-likelihood confidence intervals, as lme4's ``confint(method="profile")``.

The parameters are lme4's: per random term the standard deviations and
correlations of its coefficients (in the order of its ``theta``, column by
column of the lower triangle: ``sd_1, cor_21, ..., sd_2, ...``), then the
residual standard deviation ``sigma``, then the fixed effects ``beta``.  As
lme4's ``profile.merMod`` (which calls ``refitML``), the profiled criterion is
the maximum-likelihood deviance whatever criterion the model was fitted with.

In these parameters ``omega = (sd, cor, sigma)`` the ML deviance, ``beta``
profiled out at fixed ``theta``, is (Bates et al. 2015, eq. 32)::

    D(omega) = log|L_Z(theta)|^2 + r^2(theta) / sigma^2 + n log(2 pi sigma^2),
    theta = vec(T),  T = diag(sd) chol(R) / sigma  (R the correlation matrix).

The profile of one parameter ``omega_i`` fixes it at ``v`` and minimizes
``D`` over the others, with the gradient of ``D`` from the model's adjoint in
theta at known sigma (chain rule through ``theta(omega)``; central
differences for a model without one); a fixed effect ``beta_j = v`` is fixed by moving
``x_j v`` to the response (an offset) and refitting theta.  Both work on the
fitted model object (:mod:`.model`): its deviance pieces at any theta, and
its reduced data with a coefficient moved to the offset, algebraically: the
rows are never read again.  The interval ends
are where the signed root ``zeta(v) = sign(v - v_hat) sqrt(D_prof(v) - D_min)``
reaches ``-+z``, found by Brent's method on the exact profile (lme4
interpolates a spline through profile points instead).  An end that the
profile does not reach within the parameter's range (a standard deviation
near 0, a correlation near +-1) is that boundary.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

from .bfgs import projected_bfgs
from .deviance import Criterion

__all__ = [
    "ProfileResult",
    "VarianceParameters",
    "ml_deviance_function",
    "profile_intervals",
]

# Deviance of parameters where it is undefined (a correlation matrix that is
# not positive semi-definite); finite so that line searches back off.
_FAILED = 1e300
# Bracketing of an interval end: steps of z standard errors, doubled this often.
_MAX_DOUBLINGS = 12
# Brent's tolerance on an interval end, relative to the first step (z standard errors).
_XTOL = 1e-6
# Largest |correlation| of a starting point (atanh(+-1) is infinite).
_MAX_COR = 1.0 - 1e-8
# Smallest starting value of a bounded parameter (theta, sd / sigma_hat).
_OFF_BOUND = 1e-2


class VarianceParameters:
    """lme4's ``(sd, cor, ..., sigma)`` of a model's random terms <-> ``(theta, sigma)``.

    Parameters
    ----------
    structures : list of CovarianceStructure
        One per term, in the model's term order.
    """

    def __init__(self, structures):
        self.structures = list(structures)
        sizes = [s.n_theta for s in self.structures]
        self._spans = np.split(np.arange(sum(sizes)), np.cumsum(sizes)[:-1]) if sizes else []
        kinds = [s.parameter_kinds() for s in self.structures]
        self.kinds = np.concatenate(kinds + [np.array(["sigma"])])
        self.lower = np.where(self.kinds == "cor", -1.0, 0.0)
        self.upper = np.where(self.kinds == "cor", 1.0, np.inf)
        # per element of theta, the elements in the same row of the same T:
        # theta is linear in that row's sd (T = diag(sd) chol(R) / sigma)
        self.same_row = []
        for s, span in zip(self.structures, self._spans, strict=True):
            self.same_row += [span[s.rows == r] for r in s.rows]

    @property
    def size(self):
        return self.kinds.size

    def from_theta(self, theta, sigma):
        """``omega`` of ``(theta, sigma)``; correlations of a zero sd are 0."""
        parts = [
            s.sd_cor(theta[span], sigma)
            for s, span in zip(self.structures, self._spans, strict=True)
        ]
        return np.concatenate(parts + [[sigma]])

    def to_theta(self, omega):
        """``(theta, sigma)`` of ``omega``; raises ``LinAlgError`` when a
        correlation matrix is not positive semi-definite."""
        sigma = omega[-1]
        parts = [s.theta_from_sd_cor(omega[span], sigma)
                 for s, span in zip(self.structures, self._spans, strict=True)]  # fmt: skip
        return np.concatenate(parts or [np.zeros(0)]), sigma


def theta_jacobian(parameters, omega, step=1e-7):
    """``d theta / d omega`` (``n_theta x n_omega``).

    ``theta`` is ``1 / sigma`` times a function of the sds and correlations,
    linear in each row's sd: those columns are exact; a correlation's column
    (or a zero sd's) is a central difference of
    :meth:`VarianceParameters.to_theta` (cheap: no deviance), one-sided where a
    step leaves the positive semi-definite set.
    """
    theta0, sigma = parameters.to_theta(omega)
    J = np.zeros((theta0.size, omega.size))
    J[:, -1] = -theta0 / sigma
    for a in range(theta0.size):
        if parameters.kinds[a] == "sd" and omega[a] > 0.0:
            rows = parameters.same_row[a]
            J[rows, a] = theta0[rows] / omega[a]
            continue
        h = step * max(1.0, abs(omega[a]))
        e = np.zeros_like(omega)
        e[a] = h
        try:
            plus, minus = parameters.to_theta(omega + e)[0], parameters.to_theta(omega - e)[0]
            J[:, a] = (plus - minus) / (2 * h)
        except np.linalg.LinAlgError:
            inward = -e if omega[a] > 0 else e
            J[:, a] = (parameters.to_theta(omega + inward)[0] - theta0) / inward[a]
    return J


def ml_value_and_gradient(model, parameters):
    """``omega -> (D(omega), dD/domega)``: the ML deviance in lme4's parameters
    and its gradient, from the model's deviance at known sigma and its
    adjoint in theta (``dD/domega = dD/dtheta dtheta/domega``, plus
    ``dD/dsigma`` at fixed theta for sigma)."""

    def value_and_gradient(omega):
        failed = _FAILED, np.zeros_like(omega)
        if not omega[-1] > 0.0:
            return failed
        try:
            theta, sigma = parameters.to_theta(omega)
            value, d_theta, d_sigma = model.value_and_gradient_at_sigma(theta, sigma)
            grad = d_theta @ theta_jacobian(parameters, omega)
        except np.linalg.LinAlgError:
            return failed
        grad[-1] += d_sigma
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return failed
        return float(value), grad

    return value_and_gradient


def ml_deviance_function(model, parameters):
    """``omega -> D(omega)``, the ML deviance in lme4's parameters (module doc),
    of an ML :class:`~.model.LinearMixedModel`."""
    n, p = model.n, model.p

    def deviance(omega):
        if not omega[-1] > 0.0:  # sigma = 0: an infinite deviance
            return _FAILED
        try:
            theta, sigma = parameters.to_theta(omega)
            pieces = model.log_determinants(theta)
        except np.linalg.LinAlgError:
            return _FAILED
        criterion = Criterion(n, p, False, model.reduction.sum_log_w, sigma)
        value = criterion.value(*pieces)
        return float(value) if np.isfinite(value) else _FAILED

    return deviance


@dataclass(frozen=True)
class ProfileResult:
    """Interval ends per parameter (``omega`` then ``beta``) and the ML fit profiled."""

    lower: np.ndarray
    upper: np.ndarray
    estimate: np.ndarray
    deviance: float
    n_evaluations: int


class _Profiler:
    """The signed root profile of each parameter and its crossings of +-z."""

    def __init__(self, model, z):
        self.z = z
        self.model = model  # fitted by ML
        self.theta_hat = model.theta
        sigma_hat = np.sqrt(model.result.sigma2)
        self.parameters = VarianceParameters(model.layout.structures)
        self.deviance = ml_deviance_function(model, self.parameters)
        self.analytic = (
            ml_value_and_gradient(model, self.parameters) if model.has_gradient else None
        )
        self.omega_hat = self.parameters.from_theta(model.theta, sigma_hat)
        self.d_min = model.result.deviance
        self.beta_hat = model.result.beta
        self.beta_se = np.sqrt(np.diag(model.result.beta_cov))
        # sd and sigma on the scale of sigma, correlations as they are
        self.scale = np.where(self.parameters.kinds == "cor", 1.0, sigma_hat)
        self.n_evaluations = 0

    def zeta_function(self, i):
        """``v -> zeta(v)`` for parameter ``i`` (``omega`` then ``beta``), warm-started."""
        n_omega = self.parameters.size
        visited = []  # (value, optimum of the other parameters)
        if i < n_omega:
            start, center = self.omega_hat, self.omega_hat[i]
            profile = self._variance_profile
        else:
            start, center = self.theta_hat, self.beta_hat[i - n_omega]
            profile = self._fixed_profile

        def zeta(v):
            nearest = min(visited, key=lambda item: abs(item[0] - v), default=(center, start))
            value, optimum = profile(i, v, nearest[1])
            visited.append((v, optimum))
            self.n_evaluations += 1
            return np.sign(v - center) * np.sqrt(max(value - self.d_min, 0.0))

        return zeta

    def _variance_profile(self, i, v, start):
        """min of D over the parameters other than ``omega_i = v``.

        The others are searched in unbounded or lower-bounded coordinates:
        sds and sigma over sigma_hat (bounded by 0), correlations as
        ``atanh(cor)``; the gradient by central differences.
        """
        free = np.arange(self.parameters.size) != i
        if not np.any(free):
            return self.deviance(np.array([v])), np.array([v])
        is_cor = self.parameters.kinds[free] == "cor"
        scale = self.scale[free]

        def omega_of(x):
            omega = start.copy()
            omega[i], omega[free] = v, np.where(is_cor, np.tanh(x), x * scale)
            return omega

        x0 = np.where(is_cor, np.arctanh(np.clip(start[free], -_MAX_COR, _MAX_COR)), start[free])
        # off the bound 0, where the deviance of an sd is flat (even in the sd)
        x0 = np.where(is_cor, x0, np.maximum(x0 / scale, _OFF_BOUND))
        lower = np.where(is_cor, -np.inf, 0.0)
        if self.analytic is None:
            fun = _central_differences(lambda x: self.deviance(omega_of(x)), lower)
        else:

            def fun(x):  # the chain rule through omega_of
                value, grad = self.analytic(omega_of(x))
                return value, grad[free] * np.where(is_cor, 1.0 - np.tanh(x) ** 2, scale)

        result = projected_bfgs(fun, x0, lower)
        return result.fun, omega_of(result.x)

    def _fixed_profile(self, i, v, theta_start):
        """ML deviance with ``beta_j = v`` fixed by the offset ``x_j v``: the
        model's reduced data with the column moved to the response."""
        j = i - self.parameters.size
        fixed = self.model.with_fixed_coefficient(j, v)
        fit = _minimize_theta(fixed, theta_start)
        deviance = fit.result.deviance if fit.optimizer is None else fit.optimizer.deviance
        return deviance, fit.theta

    def ends(self, i, step):
        """``(lower, upper)`` of parameter ``i``, stepping out by ``step`` at first."""
        zeta = self.zeta_function(i)
        n_omega = self.parameters.size
        center = self.omega_hat[i] if i < n_omega else self.beta_hat[i - n_omega]
        low, high = (-np.inf, np.inf)
        if i < n_omega:
            low, high = self.parameters.lower[i], self.parameters.upper[i]
        return tuple(
            _crossing(zeta, center, direction * step, (low, high), direction * self.z)
            for direction in (-1.0, 1.0)
        )


def _central_differences(f, lower, step=1e-5):
    """``x -> (f(x), gradient)`` by central differences (one-sided at a bound)."""

    def value_and_gradient(x):
        f0 = f(x)
        grad = np.empty_like(x)
        for a in range(x.size):
            e = np.zeros_like(x)
            e[a] = step
            if x[a] - step < lower[a]:
                grad[a] = (f(x + e) - f0) / step
            else:
                grad[a] = (f(x + e) - f(x - e)) / (2.0 * step)
        return f0, grad

    return value_and_gradient


def _minimize_theta(model, theta_start):
    """Fit ``model`` from ``theta_start`` moved off its bounds (the deviance is
    flat there, so a search could not leave them)."""
    lower = model.layout.lower
    theta_start = np.where(np.isfinite(lower), np.maximum(theta_start, _OFF_BOUND), theta_start)
    return model.fit(start=theta_start, tol=1e-12)


def _crossing(zeta, center, step, bounds, target):
    """Where ``zeta`` reaches ``target`` beyond ``center`` in the direction of ``step``.

    Steps of ``step`` doubled until ``zeta`` passes the target (or the bound
    is reached: the bound is returned when the profile does not get there,
    NaN when it does not pass the target within the doublings).
    """
    inner, outer = center, center
    for _ in range(_MAX_DOUBLINGS):
        outer = inner + step
        at_bound = not bounds[0] < outer < bounds[1]
        outer = float(np.clip(outer, *bounds))
        # a positive parameter's lower end: move toward the bound geometrically
        if at_bound and bounds[0] == 0.0 and step < 0 and outer == 0.0 and inner > 0.0:
            if abs(zeta(0.0)) < abs(target):
                return 0.0
            return brentq(lambda v: zeta(v) - target, 0.0, inner, xtol=_XTOL * inner)
        value = zeta(outer)
        if abs(value) >= abs(target):
            return brentq(
                lambda v: zeta(v) - target, *sorted((inner, outer)), xtol=_XTOL * abs(step)
            )
        if at_bound:
            return outer
        inner, step = outer, 2.0 * step
    return np.nan


def _hessian_standard_errors(deviance, omega, scale, parameters):
    """Standard errors of ``omega`` from the finite-difference Hessian of D.

    ``D = -2 log L``, so ``Var(omega) ~ 2 H^-1``; non-finite where the
    Hessian is not positive definite (a boundary estimate).
    """
    d = omega.size
    h = 1e-3 * scale
    H = np.empty((d, d))
    f0 = deviance(omega)
    for a in range(d):
        for b in range(a, d):
            H[a, b] = H[b, a] = _second_difference(deviance, omega, a, b, h, f0)
    interior = (omega - h > parameters.lower) & (omega + h < parameters.upper)
    try:
        cov = 2.0 * np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return np.full(d, np.nan)
    se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    return np.where(interior, se, np.nan)


def _second_difference(f, x, a, b, h, f0):
    ea, eb = np.zeros_like(x), np.zeros_like(x)
    ea[a], eb[b] = h[a], h[b]
    if a == b:
        return (f(x + ea) - 2.0 * f0 + f(x - ea)) / h[a] ** 2
    return (f(x + ea + eb) - f(x + ea - eb) - f(x - ea + eb) + f(x - ea - eb)) / (4 * h[a] * h[b])


def profile_intervals(model, level=0.95, which=None):
    """Profile-likelihood intervals of lme4's parameters of a fitted model.

    Parameters
    ----------
    model : LinearMixedModel
        A fitted model with random effects (REML fits are refitted by ML, as
        lme4's ``profile`` does); its residual standard deviation estimated.
    level : float
        Confidence level; the ends are where ``zeta = -+ Phi^-1((1 + level) / 2)``.
    which : sequence of int, optional
        Indices of the parameters to profile (``omega`` then ``beta``); the
        others get NaN ends.  Default: all.

    Returns
    -------
    ProfileResult
        ``lower``, ``upper`` and ``estimate`` (the ML estimates) over
        ``(sd, cor, ..., sigma, beta)`` in lme4's order (module doc).
    """
    if model.fixed_sigma is not None:
        raise ValueError("profiles need sigma as a parameter; this model has a known sigma")
    with model.threads():
        ml = model if model.method == "ml" else model.refit("ml", tol=1e-12)
        profiler = _Profiler(ml, norm.ppf(0.5 + level / 2.0))
        omega_se = _hessian_standard_errors(
            profiler.deviance, profiler.omega_hat, profiler.scale, profiler.parameters
        )
        # a boundary estimate: start with a quarter of the parameter's scale
        omega_step = np.where(np.isfinite(omega_se), omega_se, 0.25 * profiler.scale)
        steps = np.concatenate([omega_step, profiler.beta_se]) * profiler.z
        estimate = np.concatenate([profiler.omega_hat, profiler.beta_hat])
        lower, upper = np.full(estimate.size, np.nan), np.full(estimate.size, np.nan)
        for i in range(estimate.size) if which is None else which:
            lower[i], upper[i] = profiler.ends(i, steps[i])
    return ProfileResult(lower, upper, estimate, profiler.d_min, profiler.n_evaluations)
