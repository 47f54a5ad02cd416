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
``D`` over the others; a fixed effect ``beta_j = v`` is fixed by moving
``x_j v`` to the response (an offset) and refitting theta.  The interval ends
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
from .covariance import covariance_to_sd_corr, free_positions
from .dense import DenseDeviance, dense_gram
from .deviance import fixed_effects_covariance, log_determinants, solve_coefficients
from .optimize import minimize_deviance
from .problem import MixedModelProblem

__all__ = [
    "MLComponents",
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
    shapes : list of (k, structure)
        Coefficients per level and covariance structure of each term.
    """

    def __init__(self, shapes):
        self.shapes = list(shapes)
        kinds, self._spans, start = [], [], 0
        for k, structure in self.shapes:
            rows, cols = free_positions(k, structure)
            kinds += ["sd" if r == c else "cor" for r, c in zip(rows, cols, strict=True)]
            self._spans.append((k, structure, rows, cols, slice(start, start + rows.size)))
            start += rows.size
        self.kinds = np.array(kinds + ["sigma"])
        self.lower = np.where(self.kinds == "cor", -1.0, 0.0)
        self.upper = np.where(self.kinds == "cor", 1.0, np.inf)

    @property
    def size(self):
        return self.kinds.size

    def from_theta(self, theta, sigma):
        """``omega`` of ``(theta, sigma)``; correlations of a zero sd are 0."""
        omega = []
        for k, _, rows, cols, span in self._spans:
            T = np.zeros((k, k))
            T[rows, cols] = theta[span]
            sd, corr = covariance_to_sd_corr(sigma**2 * T @ T.T)
            corr = np.nan_to_num(corr, nan=0.0)
            omega.append(np.where(rows == cols, sd[rows], corr[rows, cols]))
        return np.concatenate(omega + [[sigma]])

    def to_theta(self, omega):
        """``(theta, sigma)`` of ``omega``; raises ``LinAlgError`` when a
        correlation matrix is not positive semi-definite."""
        sigma = omega[-1]
        theta = []
        for k, structure, rows, cols, span in self._spans:
            values = omega[span]
            if structure == "diagonal" or k == 1:  # T = diag(sd) / sigma
                theta.append(values / sigma)
                continue
            on_diagonal = rows == cols  # the diagonal comes in order: sd_1, ..., sd_k
            R = np.eye(k)
            R[rows[~on_diagonal], cols[~on_diagonal]] = values[~on_diagonal]
            T = values[on_diagonal][:, None] * _semidefinite_cholesky(R) / sigma
            theta.append(T[rows, cols])
        return np.concatenate(theta), sigma


def _semidefinite_cholesky(R):
    """Lower ``L`` with ``L L' = R`` for a positive semi-definite correlation
    matrix given by its lower triangle (correlations of +-1 allowed)."""
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


class MLComponents:
    """``theta -> (log|L_Z|^2, r^2)`` of ``y ~ X + terms``: the two parts of
    the ML deviance, which :class:`MixedModelProblem` only returns combined."""

    def __init__(self, X, y, terms):
        self.problem = MixedModelProblem(X, y, terms, "ml")
        self.n = self.problem.n
        self._dense = None
        if self.problem.is_small:  # the same dense system, its factor read directly
            sizes = [(t.n_levels, t.n_coef) for t in terms]
            self._dense = DenseDeviance(dense_gram(X, y, terms), sizes, self.n, X.shape[1], "ml")

    def __call__(self, theta):
        if self._dense is not None:
            diag = np.diagonal(self._dense.factor(self.problem.layout.factors(theta))[1])
            return 2.0 * np.log(diag[: self._dense.q]).sum(), diag[-1] ** 2
        logdet_Z, _, pwrss = log_determinants(self.problem.factorize(theta)[0], self.problem.p)
        return logdet_Z, pwrss


def ml_deviance_function(components, parameters):
    """``omega -> D(omega)``, the ML deviance in lme4's parameters (module doc),
    from the :class:`MLComponents` of the model."""
    n = components.n

    def deviance(omega):
        if not omega[-1] > 0.0:  # sigma = 0: an infinite deviance
            return _FAILED
        try:
            theta, sigma = parameters.to_theta(omega)
            logdet_Z, pwrss = components(theta)
        except np.linalg.LinAlgError:
            return _FAILED
        value = logdet_Z + pwrss / sigma**2 + n * np.log(2.0 * np.pi * sigma**2)
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

    def __init__(self, X, y, terms, z):
        self.X, self.y, self.terms, self.z = X, y, terms, z
        components = MLComponents(X, y, terms)
        problem = components.problem
        fit = _minimize_theta(problem, problem.layout.start)
        self.theta_hat = fit.theta
        sigma_hat = np.sqrt(components(fit.theta)[1] / problem.n)
        self.parameters = VarianceParameters([(t.n_coef, t.structure) for t in terms])
        self.deviance = ml_deviance_function(components, self.parameters)
        self.omega_hat = self.parameters.from_theta(fit.theta, sigma_hat)
        self.d_min = fit.deviance
        self.beta_hat, self.beta_se = _fixed_effects(problem, fit.theta, sigma_hat)
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
        result = projected_bfgs(
            _central_differences(lambda x: self.deviance(omega_of(x)), lower), x0, lower
        )
        return result.fun, omega_of(result.x)

    def _fixed_profile(self, i, v, theta_start):
        """ML deviance with ``beta_j = v`` fixed by the offset ``x_j v``."""
        j = i - self.parameters.size
        X_rest = np.delete(self.X, j, axis=1)
        problem = MixedModelProblem(X_rest, self.y - self.X[:, j] * v, self.terms, "ml")
        fit = _minimize_theta(problem, theta_start)
        return fit.deviance, fit.theta

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


def _minimize_theta(problem, theta_start):
    """Minimize the profiled deviance from ``theta_start`` moved off its bounds
    (the deviance is flat there, so a search could not leave them)."""
    lower = problem.layout.lower
    theta_start = np.where(np.isfinite(lower), np.maximum(theta_start, _OFF_BOUND), theta_start)
    gradient = problem.value_and_gradient if problem.has_gradient else None
    return minimize_deviance(
        problem.deviance, theta_start, problem.layout.lower,
        value_and_gradient=gradient, cheap=problem.is_small, tol=1e-12,
    )  # fmt: skip


def _fixed_effects(problem, theta, sigma):
    """``beta`` and its standard errors at theta (ML)."""
    if problem.is_small:
        solution = problem.dense_solution(theta)
        return solution.beta, np.sqrt(np.diag(solution.beta_cov))
    factor = problem.factorize(theta)[0]
    beta = solve_coefficients(factor, problem.p)[0]
    return beta, np.sqrt(np.diag(fixed_effects_covariance(factor, problem.p, sigma**2)))


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


def profile_intervals(X, y, terms, level=0.95, which=None):
    """Profile-likelihood intervals of lme4's parameters of ``y ~ X + terms``.

    Parameters
    ----------
    X : ndarray of shape (n, p)
    y : ndarray of shape (n,)
    terms : list of RandomTerm
        At least one term.
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
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    profiler = _Profiler(X, y, terms, norm.ppf(0.5 + level / 2.0))
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
