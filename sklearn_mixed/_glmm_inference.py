"""Confidence intervals of a fitted GLMM, as lme4's ``confint(glmer(...))``.

Parameters as lme4 names them (``oldNames = FALSE``): per grouping factor the
standard deviations and correlations of its random effects (``sigma = 1``),
then the fixed effects.  ``"wald"``: ``beta +- z SE``, NaN for the variance
parameters.  ``"profile"``: for each parameter the values where the signed
square root of the profiled deviance, ``zeta = sign(v - v^) sqrt(D(v) -
D^)``, with ``D(v)`` the Laplace (or AGQ) deviance minimized over all other
parameters, reaches ``+-z``; an end not reached within the parameter's range
is that bound (0 for a standard deviation, +-1 for a correlation), as lme4.
"""

import warnings

import numpy as np
import pandas as pd
from scipy.optimize import brentq, minimize

from ._interpretation import normal_quantile

__all__ = ["glmm_confint"]

# Brackets of a profile end: steps of this many approximate standard errors.
_BRACKET_STEPS = (1.0, 2.0, 4.0, 8.0, 16.0)
_SD_MIN_SCALE = 0.05


class _Profiler:
    """``phi = (sd/cor per term, beta) -> D`` and its restricted minima."""

    def __init__(self, estimator):
        self.model = estimator.model_
        self.structures = [t.structure for t in self.model.terms]
        self.sizes = [s.n_theta for s in self.structures]
        self.k = int(sum(self.sizes))
        fit = self.model.result
        self.phi_hat = np.concatenate([self._sd_cor(fit.theta), fit.beta])
        self.kinds = np.concatenate(
            [s.parameter_kinds() for s in self.structures] + [np.full(fit.p, "beta")]
        )
        self.d_hat = fit.deviance
        self.scale = self._scales(fit)

    def _sd_cor(self, theta):
        parts = np.split(np.asarray(theta, float), np.cumsum(self.sizes)[:-1]) if self.k else []
        return np.concatenate(
            [s.sd_cor(t, 1.0) for s, t in zip(self.structures, parts, strict=True)] or [np.zeros(0)]
        )

    def _theta(self, phi):
        parts = np.split(phi[: self.k], np.cumsum(self.sizes)[:-1]) if self.k else []
        return np.concatenate(
            [s.theta_from_sd_cor(v, 1.0) for s, v in zip(self.structures, parts, strict=True)]
            or [np.zeros(0)]
        )

    def _scales(self, fit):
        """Approximate standard errors: Wald for beta, the Hessian's for theta."""
        scale = np.sqrt(np.clip(np.diag(fit.beta_cov), 0, None))
        theta_scale = np.full(self.k, _SD_MIN_SCALE)
        if fit.hessian.size:
            try:
                V = 2.0 * np.linalg.inv(fit.hessian)
                theta_scale = np.sqrt(np.clip(np.diag(V)[: self.k], _SD_MIN_SCALE**2, None))
            except np.linalg.LinAlgError:
                pass
        return np.concatenate([theta_scale, scale])

    def deviance(self, phi):
        try:
            theta = self._theta(phi)
        except np.linalg.LinAlgError:
            return np.inf
        return self.model.deviance(theta, phi[self.k :])

    def bounds(self, i):
        kind = self.kinds[i]
        return {"sd": (0.0, np.inf), "cor": (-1.0, 1.0)}.get(kind, (-np.inf, np.inf))

    def restricted(self, i, value, start):
        """``min D`` with ``phi_i = value``, and the minimizer (from ``start``)."""
        free = np.delete(np.arange(self.phi_hat.size), i)
        bounds = [tuple(None if not np.isfinite(b) else b for b in self.bounds(j)) for j in free]

        def objective(x):
            phi = start.copy()
            phi[free], phi[i] = x, value
            return self.deviance(phi)

        x0 = np.delete(start, i)
        result = minimize(objective, x0, method="L-BFGS-B", bounds=bounds,
                          options={"ftol": 1e-12, "gtol": 1e-6, "maxiter": 200})  # fmt: skip
        phi = start.copy()
        phi[free], phi[i] = result.x, value
        return float(result.fun), phi

    def zeta(self, i, value, cache):
        d, phi = self.restricted(i, value, cache["start"])
        cache["start"] = phi
        return np.sign(value - self.phi_hat[i]) * np.sqrt(max(d - self.d_hat, 0.0))

    def end(self, i, side, z):
        """The profile end on ``side`` (-1 or +1): where ``zeta = side z``."""
        lo, hi = self.bounds(i)
        v_hat = self.phi_hat[i]
        cache = {"start": self.phi_hat.copy()}
        previous = v_hat
        for steps in _BRACKET_STEPS:
            v = v_hat + side * steps * self.scale[i]
            v = min(max(v, lo), hi)
            zeta = self.zeta(i, v, cache)
            if side * zeta >= z:
                bracket = (min(previous, v), max(previous, v))
                return brentq(lambda x: self.zeta(i, x, cache) - side * z, *bracket,
                              xtol=1e-6 * self.scale[i])  # fmt: skip
            if v in (lo, hi):
                return v
            previous = v
        return np.nan


def _parameter_names(estimator):
    names = []
    for term in estimator.model_.terms:
        names += term.structure.parameter_names(term.covariate_names, term.name)
    return names + list(estimator.fixed_effect_names_)


def glmm_confint(estimator, method, level):
    """The :meth:`confint` table of a fitted GLMM estimator."""
    if method not in ("wald", "profile"):
        raise ValueError(f"method must be 'wald' or 'profile', got {method!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    names = _parameter_names(estimator)
    z = normal_quantile(level)
    fit = estimator.model_.result
    k = len(names) - fit.p
    lower, upper = np.full(len(names), np.nan), np.full(len(names), np.nan)
    if method == "wald":
        se = np.sqrt(np.diag(fit.beta_cov))
        lower[k:], upper[k:] = fit.beta - z * se, fit.beta + z * se
    else:
        profiler = _Profiler(estimator)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for i in range(len(names)):
                lower[i], upper[i] = profiler.end(i, -1, z), profiler.end(i, +1, z)
    tail = 100 * (1 - level) / 2
    columns = [f"{tail:.3g} %", f"{100 - tail:.3g} %"]
    return pd.DataFrame(np.column_stack([lower, upper]), index=names, columns=columns)
