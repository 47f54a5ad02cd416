"""PIRLS: the conditional modes of a GLMM at ``(theta, beta)``, by reweighted linear fits.

Each Newton step for the modes is the linear mixed model of the working
response with the working weights and ``sigma = 1`` (:mod:`.glmm`), reduced
by :func:`~.reduction.reduce_rows` and solved by
:meth:`~.model.LinearMixedModel.modes` on the same blocked factor as a linear
fit.  A step that does not lower the penalized deviance ``sum d_i + ||u||^2``
is halved (the Newton step of a convex function is a descent direction).
"""

from dataclasses import dataclass

import numpy as np
import scipy.linalg as la

from .model import LinearMixedModel
from .pair_pattern import PairPattern
from .reduction import reduce_rows

__all__ = ["LinearPredictor", "PirlsState", "halved_step", "penalized_deviance", "pirls"]

# PIRLS stops once a step moves eta by less than this (times max(1, |eta|)):
# Newton's quadratic convergence leaves ~ its square (1e-12), and one more
# factor at the final modes gives log|L|^2 there.
_ETA_STEP = 1e-6
_MAX_PIRLS = 100
_MAX_HALVINGS = 12
_GLM_ITERATIONS = 50
# Working weights are floored at this (a fitted probability of 0 or 1).
_TINY_WEIGHT = 1e-300


@dataclass
class PirlsState:
    """The modes at ``(theta, beta)`` and what the criterion needs there."""

    T: list
    beta: np.ndarray
    u: list  # spherical modes per term, (m, k)
    eta: np.ndarray
    mu: np.ndarray
    logdet: float  # log|L|^2 at the weights of eta
    n_iter: int
    model: object = None  # the working LinearMixedModel at eta (None without terms)

    @property
    def u_squared(self):
        return float(sum(np.sum(u * u) for u in self.u))


class LinearPredictor:
    """``eta = X beta + Z Lambda u + o`` on a model's rows, and its working models."""

    def __init__(self, rows):
        self.X = np.asarray(rows.X, dtype=float)
        self.y = np.asarray(rows.y, dtype=float)
        self.terms = tuple(rows.terms)
        n = self.y.shape[0]
        self.offset = np.zeros(n) if rows.offset is None else np.asarray(rows.offset, float)
        self.intercept = rows.intercept
        self._no_columns = np.empty((n, 0))
        self._pattern = None  # PairPattern of the terms, from the first working fit

    def random_part(self, u, T):
        """``Z Lambda u``: per row, its levels' ``b = T u`` times the covariates."""
        out = np.zeros(self.y.shape[0])
        for t, u_t, T_t in zip(self.terms, u, T, strict=True):
            b = u_t @ T_t.T
            if t.n_coef == 1:
                out += t.covariates[:, 0] * b[t.codes, 0]
            else:
                out += np.einsum("ik,ik->i", t.covariates, b[t.codes])
        return out

    def eta(self, beta, u, T):
        return self.offset + self.X @ beta + self.random_part(u, T)

    def working_model(self, family, prior, state, fixed, evaluations="one"):
        """The linear mixed model of the working response at ``state.eta``
        (``fixed``: beta held at ``state.beta``, only the modes free;
        ``evaluations`` as :class:`~.model.LinearMixedModel`'s)."""
        _, W, r = family.working(self.y, state.eta, prior)
        W = np.maximum(W, _TINY_WEIGHT)
        z = state.eta - self.offset + r  # working response
        if fixed:  # z - X beta = Z b + r
            X, intercept, z = self._no_columns, None, z - self.X @ state.beta
        else:
            X, intercept = self.X, self.intercept
        reduction = reduce_rows(
            X, z, self.terms, weights=W, intercept=intercept, pattern=self._pattern
        )
        if self._pattern is None:  # the cells of the pairs of levels: the same every step
            self._pattern = PairPattern.of(self.terms, reduction.counts)
        return LinearMixedModel(
            reduction, self.terms, method="ml", fixed_sigma=1.0, evaluations=evaluations
        )

    def fixed_covariance(self, family, prior, theta, state):
        """The PIRLS (lme4's RX) covariance of beta: ``L_X^-T L_X^-1`` of the
        working model with beta free, uncentred."""
        if not self.terms:
            _, W, _ = family.working(self.y, state.eta, prior)
            return np.linalg.inv(self.X.T @ (self.X * W[:, None]))
        model = self.working_model(family, prior, state, fixed=False)
        cov = model.pieces(theta).unscaled_beta_cov
        return model.reduction.uncentre(np.zeros(self.X.shape[1]), cov)[1]

    def fixed_scale(self, family, prior, theta, state):
        """``C`` with ``C C'`` the PIRLS covariance of beta: beta's unit steps."""
        if self.X.shape[1] == 0:
            return np.zeros((0, 0))
        return np.linalg.cholesky(self.fixed_covariance(family, prior, theta, state))

    def glm_start(self, family, prior):
        """beta of the GLM without random effects (IRLS from R's ``mustart``)."""
        eta = family.linkfun(family.starting_mean(self.y, prior))
        beta = np.zeros(self.X.shape[1])
        for _ in range(_GLM_ITERATIONS):
            _, W, r = family.working(self.y, eta, prior)
            z = eta - self.offset + r
            s = np.sqrt(np.maximum(W, _TINY_WEIGHT))
            new = la.lstsq(self.X * s[:, None], z * s, lapack_driver="gelsy")[0]
            eta_new = self.offset + self.X @ new
            done = np.max(np.abs(eta_new - eta), initial=0.0) < 1e-10 * max(1.0, np.abs(eta).max())
            beta, eta = new, eta_new
            if done:
                break
        return beta


def penalized_deviance(predictor, family, prior, eta, u):
    mu = family.linkinv(eta)
    return float(np.sum(family.unit_deviance(predictor.y, mu, prior))) + sum(
        float(np.sum(v * v)) for v in u
    )


def _newton_step(predictor, family, prior, state, theta, fixed):
    """``(beta, u, log|L|^2, working model)``: the working fit at ``state`` (its
    log|L|^2 is at ``state.eta``'s weights)."""
    if not predictor.terms:
        _, W, r = family.working(predictor.y, state.eta, prior)
        z = state.eta - predictor.offset + r
        s = np.sqrt(np.maximum(W, _TINY_WEIGHT))
        beta = la.lstsq(predictor.X * s[:, None], z * s, lapack_driver="gelsy")[0]
        return beta, [], 0.0, None
    model = predictor.working_model(family, prior, state, fixed)
    beta, u, logdet = model.modes(theta)
    return (state.beta if fixed else beta), u, logdet, model


def halved_step(current, proposal, pdev, evaluate):
    """The Newton step from ``current`` toward ``proposal`` (each ``(beta, list of
    arrays)``), halved until the penalized deviance does not rise: ``(point,
    its deviance, what else evaluate returned)``, or None after
    ``_MAX_HALVINGS`` halvings.  ``evaluate(beta, parts) -> (deviance, extra)``."""
    step = 1.0
    for _ in range(_MAX_HALVINGS):
        beta = current[0] + step * (proposal[0] - current[0])
        parts = [a + step * (b - a) for a, b in zip(current[1], proposal[1], strict=True)]
        value, extra = evaluate(beta, parts)
        if value <= pdev + 1e-12 * abs(pdev):
            return (beta, parts), value, extra
        step *= 0.5
    return None


def pirls(predictor, family, prior, T, theta, beta, start, eta_step=_ETA_STEP):
    """Penalized IRLS for the modes at ``theta`` (and ``beta``, or beta too if None).

    Parameters
    ----------
    predictor : LinearPredictor
    family : Family
    prior : ndarray of shape (n,)
        Prior weights.
    T : list of ndarray
        Relative factors per term at ``theta``.
    theta : ndarray
    beta : ndarray or None
        Fixed effects held fixed; None: estimated with the modes.
    start : (ndarray, list of ndarray)
        ``(beta, u)`` to start from.
    eta_step : float
        Stop after a step that moved ``eta`` by less than this (relative to
        ``max(1, |eta|)``), with one more factor at the final modes.  Newton's
        quadratic convergence leaves about its square: 1e-6 gives the modes to
        ~1e-12 (needed where the criterion is differentiated numerically),
        1e-4 to ~1e-8 (enough with analytic gradients).

    Returns
    -------
    PirlsState
    """
    fixed = beta is not None
    beta_cur = np.asarray(beta if fixed else start[0], dtype=float)
    u_cur = [np.array(v, dtype=float) for v in start[1]]
    eta = predictor.eta(beta_cur, u_cur, T)
    state = PirlsState(T, beta_cur, u_cur, eta, None, 0.0, 0)
    pdev = penalized_deviance(predictor, family, prior, eta, u_cur)
    settled = False
    for it in range(1, _MAX_PIRLS + 1):
        beta_new, u_new, logdet, model = _newton_step(predictor, family, prior, state, theta, fixed)
        state.logdet, state.n_iter, state.model = logdet, it, model
        if settled:
            break

        def evaluate(b_try, u_try):
            eta_try = predictor.eta(b_try, u_try, T)
            return penalized_deviance(predictor, family, prior, eta_try, u_try), eta_try

        accepted = halved_step((state.beta, state.u), (beta_new, u_new), pdev, evaluate)
        if accepted is None:  # no descent along the Newton direction: the modes, to rounding
            break
        (b_try, u_try), pdev_try, eta_try = accepted
        moved = np.max(np.abs(eta_try - state.eta), initial=0.0)
        settled = moved <= eta_step * max(1.0, np.max(np.abs(eta_try), initial=0.0))
        state = PirlsState(T, b_try, u_try, eta_try, None, 0.0, it)
        pdev = pdev_try
    state.mu = family.linkinv(state.eta)
    return state
