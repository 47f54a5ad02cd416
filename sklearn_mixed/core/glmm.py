"""The generalized linear mixed model: the linear mixed model reweighted (PIRLS).

``y_i | b ~ family(mu_i)``, ``g(mu) = eta = X beta + Z b + o``, ``b = Lambda u``,
``u ~ N(0, I)`` (Bates et al. 2015; lme4's ``glmer``).  For fixed ``theta``
(and ``beta``) the conditional modes ``u`` minimize the penalized deviance
``sum_i d(y_i, mu_i) + ||u||^2``; Newton's method on it (penalized
iteratively reweighted least squares) is, at each step, the linear mixed
model of the working response ``z = eta - o + (y - mu) / mu'(eta)`` with
prior weights ``W = w mu'^2 / V(mu)`` and ``sigma = 1``: the same reduction
(:mod:`.reduction`) and the same blocked factor (:mod:`.model`) as a linear
fit, at new weights.

The Laplace approximation to ``-2`` log-likelihood at ``(theta, beta)`` is
``log|L|^2 + ||u||^2 + aic(mu)`` at the modes, with ``L L' = Lambda'Z'WZ
Lambda + I`` and ``aic`` the family's ``-2 log p(y | mu)`` with constants
(:mod:`.family`).  For one scalar random-effect term, adaptive Gauss-Hermite
quadrature with ``nagq`` nodes integrates each level's random effect around
its mode (:func:`quadrature_deviance`); as in lme4 it is on the deviance
scale (relative to the saturated model, no constants).

The fit follows lme4's two stages: theta with beta inside PIRLS (lme4's
``nAGQ = 0``), then ``(theta, beta)`` jointly on the Laplace (or AGQ)
criterion, from the first stage's optimum, with ``beta`` measured in units
of its first-stage standard errors.  The covariance of beta is, as lme4
1.1-31's default, ``2 H^-1`` restricted to beta, with ``H`` the
central-difference Hessian of the criterion in ``(theta, beta)``.  PIRLS
is iterated to convergence, and the factor at the final modes gives
``log|L|^2`` (lme4 takes it at the weights of the last step's start).
"""

from dataclasses import dataclass

import numpy as np

from .family import make_family
from .glmm_iterative import ITERATIVE_THETA_FLOOR, fit_glmm_iterative
from .glmm_state import LinearPredictor, PirlsState, pirls
from .laplace_gradient import laplace_gradient
from .layout import ThetaLayout
from .memory import DenseBlockTooLarge
from .optimize import better_outcome, minimize_deviance
from .quadrature import quadrature_deviance, quadrature_gradient
from .solution import InformationCriteria
from .threads import single_blas_thread

__all__ = ["THETA_MAX", "GLMMFit", "GeneralizedLinearMixedModel"]

# Central-difference steps: the gradient where it is not analytic (relative to
# max(1, |x|)), and lme4's Hessian step (deriv12's delta).
_GRADIENT_STEP = 1e-5
_HESSIAN_STEP = 1e-4
# Advice when the working fits' dense block is too large for memory.
_MEMORY_ADVICE = (
    "A GLMM of crossed random intercepts this large can be fitted with "
    "solver='iterative' (conjugate gradients and a stochastic log-determinant, whose "
    "memory grows with the data, not with the square of the levels; see docs/glmm.md); "
    "or reduce the number of levels of the smaller crossed factors."
)
# PIRLS's stopping steps (see glmm_state.pirls).
_TIGHT_ETA_STEP, _LOOSE_ETA_STEP = 1e-6, 1e-4
# Stage 1 only gives stage 2 its start (and beta's scale): its projected
# gradient need only be below this (relative to the deviance).
_STAGE1_GTOL = 1e-6
# Largest |theta| the optimizer may try: a relative standard deviation of 1e4
# on the linear predictor's scale.  The deviance of a (quasi-)separated
# response keeps falling as a variance grows, and beyond ~1e6 the working
# model's fixed-effect block (X'WX less what the random effects absorb)
# cancels to rounding noise, which the optimizer would chase.  A fit that ends
# near this bound is reported as separated (``GLMMFit.separated``).
THETA_MAX = 1e4


def _check_theta(theta):
    """Raise ``LinAlgError`` beyond :data:`THETA_MAX`: the optimizer's
    objective wrapper maps it to a failed evaluation, and its line search
    backs off."""
    if theta.size and np.max(np.abs(theta)) > THETA_MAX:
        raise np.linalg.LinAlgError(f"|theta| beyond {THETA_MAX:g}: a separated response")


def _central_differences(f, x, model):
    """Central-difference gradient of ``f``, each pair from the same PIRLS start."""
    warm = model._warm
    grad = np.empty_like(x)
    for i in range(x.size):
        h = _GRADIENT_STEP * max(1.0, abs(x[i]))
        e = np.zeros_like(x)
        e[i] = h
        grad[i] = (f(x + e) - f(x - e)) / (2.0 * h)
        model._warm = warm
    return grad


def _second_differences(f, x, h, reset):
    """lme4's ``deriv12`` Hessian of ``f`` at ``x`` (``reset()`` before each value)."""
    d = x.size

    def at(step):
        reset()
        return f(x + step)

    f0 = at(np.zeros(d))
    E = np.eye(d) * h
    H = np.empty((d, d))
    plus = [at(E[i]) for i in range(d)]
    minus = [at(-E[i]) for i in range(d)]
    for i in range(d):
        H[i, i] = (plus[i] - 2.0 * f0 + minus[i]) / h**2
        for j in range(i):
            H[i, j] = H[j, i] = (
                at(E[i] + E[j]) - at(E[i] - E[j]) - at(-E[i] + E[j]) + at(-E[i] - E[j])
            ) / (4.0 * h**2)
    return H


@dataclass
class GLMMFit(InformationCriteria):
    """A fitted GLMM: estimates, their covariances and the criterion at the optimum."""

    family: str
    nagq: int
    n: int
    p: int
    theta: np.ndarray
    beta: np.ndarray
    beta_cov: np.ndarray
    b: list  # conditional modes per term, (m, k)
    conditional_cov: list  # Var(b | y) per term, (m, k, k)
    term_cov: list  # T T' per term
    deviance: float  # the criterion: -2 log-likelihood (Laplace / AGQ)
    n_iter: int
    n_evaluations: int
    converged: bool
    message: str
    singular: bool
    hessian: np.ndarray  # of the criterion in (theta, beta)
    hessian_used: bool  # False: beta_cov from the PIRLS factor (H not positive definite)
    solver: str = "exact"
    deviance_se: float = 0.0  # Monte Carlo error of the deviance (iterative solver)
    separated: bool = False  # theta ran to THETA_MAX: effects run off to infinity

    @property
    def n_params(self):
        """Fixed effects and covariance parameters (no residual variance)."""
        return self.p + self.theta.size


class GeneralizedLinearMixedModel:
    """A GLMM on its rows; see the module docstring.

    Parameters
    ----------
    rows : ModelRows
        ``X`` (full rank; an all-ones column is the intercept), the response
        (0/1 or proportions for the binomial family, counts for Poisson), the
        random terms, the prior weights (binomial: numbers of trials) and
        the offset.
    family : {"binomial", "poisson"} or Family
    nagq : int, default=1
        Quadrature nodes: 1 is the Laplace approximation; more needs a single
        scalar random-effect term.
    solver : {"exact", "iterative"}, default="exact"
        ``"iterative"``: the approximate fit of crossed random intercepts too
        large for the exact factor (:mod:`.glmm_iterative`).
    """

    def __init__(self, rows, family, *, nagq=1, solver="exact"):
        self.data = rows  # ModelRows, as LinearMixedModel.data
        self.family = make_family(family)
        self.terms = tuple(rows.terms)
        self.nagq = int(nagq)
        n = rows.n
        self.prior = np.ones(n) if rows.weights is None else np.asarray(rows.weights, float)
        self.family.validate(rows.y, self.prior)
        if self.nagq < 1:
            raise ValueError(f"nagq must be at least 1, got {nagq}")
        if self.nagq > 1 and (len(self.terms) != 1 or self.terms[0].n_coef != 1):
            raise ValueError(
                "adaptive Gauss-Hermite quadrature (nagq > 1) needs a single scalar random "
                "effect term, such as one random intercept (as lme4's glmer)"
            )
        if solver not in ("exact", "iterative"):
            raise ValueError(f"solver must be 'exact' or 'iterative', got {solver!r}")
        if solver == "iterative" and self.nagq > 1:
            raise ValueError("quadrature (nagq > 1) needs solver='exact'")
        self.solver = solver
        self.predictor = LinearPredictor(rows)
        self.layout = ThetaLayout([t.structure for t in self.terms])
        self.n, self.p = n, rows.X.shape[1]
        self.theta = self.beta = None
        self.optimizer = None
        self._result = None
        self._warm = None  # (beta, u) of the last evaluation: PIRLS's next start
        self._analytic = False  # whether the last gradient was analytic

    # ----------------------------------------------------------- criterion
    def pirls(self, theta, beta=None, start=None):
        """The :class:`PirlsState` at ``theta`` (and ``beta``; None: beta in PIRLS)."""
        theta = np.asarray(theta, dtype=float)
        if start is None:
            start = self._warm if self._warm is not None else self._glm_start()
        # the modes to ~1e-8 where the gradient is analytic, ~1e-12 where the
        # criterion itself is differentiated
        eta_step = _LOOSE_ETA_STEP if self._analytic else _TIGHT_ETA_STEP
        state = pirls(self.predictor, self.family, self.prior, self.layout.factors(theta),
                      theta, beta, start, eta_step)  # fmt: skip
        self._warm = (state.beta, state.u)
        return state

    def criterion(self, state, laplace=False):
        """``-2`` log-likelihood at a PIRLS state: Laplace, or AGQ if ``nagq > 1``
        (and not ``laplace``)."""
        if self.nagq > 1 and not laplace:
            return quadrature_deviance(self.predictor, self.family, self.prior, state, self.nagq)
        y, prior = self.data.y, self.prior
        return (
            state.logdet
            + state.u_squared
            + self.family.minus_two_log_likelihood(y, state.mu, prior)
        )

    def deviance(self, theta, beta=None):
        """The criterion at ``(theta, beta)``; ``beta=None``: at PIRLS's beta (stage 1)."""
        return self.criterion(self.pirls(theta, beta))

    def value_and_gradient(self, theta, beta=None, laplace=False):
        """The criterion and its gradient in theta (and beta, if given): the
        Laplace criterion's analytic gradient (:mod:`.laplace_gradient`) where
        the working fit's factor gives it, the quadrature's at fixed nodes
        (:func:`~.quadrature.quadrature_gradient`, beta given), else central
        differences.  ``laplace``: the Laplace criterion whatever ``nagq``."""
        theta = np.asarray(theta, dtype=float)
        state = self.pirls(theta, beta)
        laplace = laplace or self.nagq == 1
        value = self.criterion(state, laplace)
        if laplace:
            grad = laplace_gradient(self.predictor, self.family, self.prior, state, theta,
                                    self.layout, beta is not None)  # fmt: skip
        elif beta is not None:
            grad = quadrature_gradient(self.predictor, self.family, self.prior, state, self.nagq)
        else:
            grad = None
        self._analytic = grad is not None
        if grad is None:
            k = theta.size
            x = theta if beta is None else np.concatenate([theta, beta])
            grad = _central_differences(
                lambda v: self.criterion(
                    self.pirls(v[:k], None if beta is None else v[k:]), laplace
                ),  # fmt: skip
                x,
                self,
            )
        return value, grad

    def _working_start(self):
        """Stage 1's start: theta of the linear mixed model of the GLM's working
        response (sigma = 1, ML; the first step of penalized quasi-likelihood),
        a close start in a few linear fits; lme4's ``T = I`` if that fit fails."""
        beta, u = self._glm_start()
        self._warm = (beta, u)  # also the first PIRLS's start
        T = self.layout.factors(self.layout.start)
        eta = self.predictor.eta(beta, u, T)
        state = PirlsState(T, beta, u, eta, self.family.linkinv(eta), 0.0, 0)
        model = self.predictor.working_model(self.family, self.prior, state, fixed=False,
                                             evaluations="many")  # fmt: skip
        try:
            theta = model.fit().theta
        except (np.linalg.LinAlgError, ValueError):
            return self.layout.start.copy()
        return theta if np.all(np.isfinite(theta)) else self.layout.start.copy()

    def _laplace_stage1(self):
        """Stage 1's objective: the Laplace criterion of theta with beta in PIRLS
        (the start of stage 2, also for quadrature, as lme4's nAGQ = 0 stage)."""

        def value(theta):
            _check_theta(theta)
            return self.criterion(self.pirls(theta), laplace=True)

        def value_and_gradient(theta):
            _check_theta(theta)
            return self.value_and_gradient(theta, laplace=True)

        return value, value_and_gradient

    # ------------------------------------------------------------------ fit
    def _glm_start(self):
        """``(beta, u = 0)`` of the GLM without random effects (R's ``glm.fit``)."""
        beta = self.predictor.glm_start(self.family, self.prior)
        return beta, [np.zeros((t.n_levels, t.n_coef)) for t in self.terms]

    def fit(self, *, max_iter=500, tol=1e-10, start=None):
        """Both stages and the Hessian; sets :attr:`theta`, :attr:`beta` and :attr:`result`.

        On one BLAS thread (:mod:`.threads`): the working fits are many small
        factorizations.
        """
        with single_blas_thread():
            try:
                return self._fit(max_iter, tol, start)
            except DenseBlockTooLarge as exc:  # raised by the first working fit's plan
                raise DenseBlockTooLarge(exc.needs, _MEMORY_ADVICE) from None

    def _fit(self, max_iter, tol, start):
        self._warm = None
        if self.solver == "iterative" and self.terms:
            return self._fit_iterative(max_iter)
        if not self.terms:
            state = self.pirls(np.zeros(0))
            self.theta, self.beta, self.optimizer = np.zeros(0), state.beta, None
            self._result = self._solution(state, state.n_iter, state.n_iter, True, "IRLS")
            return self
        theta0 = self._working_start() if start is None else np.asarray(start, float)
        theta0 = np.clip(theta0, -0.5 * THETA_MAX, 0.5 * THETA_MAX)  # a start inside the bound
        n_levels = [t.n_levels for t in self.terms]
        value1, value_and_gradient1 = self._laplace_stage1()
        stage1 = minimize_deviance(
            value1, theta0, self.layout.lower, value_and_gradient=value_and_gradient1,
            max_iter=max_iter, tol=tol, projected=True, gtol=_STAGE1_GTOL,
            scale=self.layout.inverse_hessian_guess(theta0, n_levels),
        )  # fmt: skip
        theta1, k = stage1.theta, stage1.theta.size
        state1 = self.pirls(theta1)
        beta1 = state1.beta
        # stage 2 in (theta, gamma), beta = beta1 + C gamma: gamma in standard errors
        C = self.predictor.fixed_scale(self.family, self.prior, theta1, state1)
        joint, joint_gradient = self._joint(beta1, C, k)
        lower = np.concatenate([self.layout.lower, np.full(self.p, -np.inf)])
        x0 = np.concatenate([theta1, np.zeros(self.p)])
        scale = np.concatenate([self.layout.inverse_hessian_guess(theta1, n_levels),
                                np.full(self.p, 0.5)])  # fmt: skip
        stage2 = minimize_deviance(
            joint, x0, lower, value_and_gradient=joint_gradient, max_iter=max_iter, tol=tol,
            projected=True, scale=scale,
        )  # fmt: skip
        H = self._safe_hessian(joint, joint_gradient, stage2.theta, C)
        escaped = self._escape_saddle(joint, joint_gradient, stage2, H, C,
                                      dict(max_iter=max_iter, tol=tol, scale=scale))  # fmt: skip
        if escaped is not None:
            stage2 = escaped
            H = self._safe_hessian(joint, joint_gradient, stage2.theta, C)
        x = stage2.theta
        self.theta, self.beta = x[:k], beta1 + C @ x[k:]
        self.optimizer = stage2
        state = self.pirls(self.theta, self.beta, start=(self.beta, self._warm[1]))
        n_iter = stage1.n_iter + stage2.n_iter
        n_eval = stage1.n_evaluations + stage2.n_evaluations
        self._result = self._solution(state, n_iter, n_eval, stage2.converged,
                                      stage2.message, H)  # fmt: skip
        return self

    def _fit_iterative(self, max_iter):
        """The approximate fit of :mod:`.glmm_iterative` as a :class:`GLMMFit`."""
        theta, beta, b, beta_cov, cond, deviance, se, outcome = fit_glmm_iterative(
            self, max_iter=max_iter
        )
        self.theta, self.beta, self.optimizer = theta, beta, outcome
        p = self.p
        self._result = GLMMFit(
            family=self.family.name, nagq=1, n=self.n, p=p, theta=theta, beta=beta,
            beta_cov=np.zeros((p, p)) if beta_cov is None else beta_cov,
            b=[b_t[:, None] for b_t in b],
            conditional_cov=[v[:, None, None] for v in cond],
            term_cov=[np.array([[t * t]]) for t in theta], deviance=float(deviance),
            n_iter=int(outcome.nit), n_evaluations=int(outcome.nfev),
            converged=bool(outcome.success), message=str(outcome.message),
            singular=bool(np.any(theta <= 1.01 * ITERATIVE_THETA_FLOOR)),
            hessian=np.empty((0, 0)), hessian_used=False, solver="iterative",
            deviance_se=float(se),
        )  # fmt: skip
        return self

    def _joint(self, beta1, C, k):
        """The stage-2 criterion of ``x = (theta, gamma)`` and its gradient."""

        def joint(x):
            _check_theta(x[:k])
            return self.deviance(x[:k], beta1 + C @ x[k:])

        def joint_gradient(x):
            _check_theta(x[:k])
            value, grad = self.value_and_gradient(x[:k], beta1 + C @ x[k:])
            return value, np.concatenate([grad[:k], C.T @ grad[k:]])

        return joint, joint_gradient

    def _safe_hessian(self, joint, joint_gradient, x, C):
        """:meth:`_hessian`, or None where a step fails (beyond THETA_MAX, or a
        singular working fit); PIRLS's warm start is kept either way."""
        warm = self._warm
        try:
            return self._hessian(joint, joint_gradient, x, C)
        except np.linalg.LinAlgError:
            self._warm = warm
            return None

    def _escape_saddle(self, joint, joint_gradient, stage2, H, C, options):
        """A lower optimum off a saddle point of stage 2, or None.

        A gradient method stops at any stationary point; lme4's derivative-free
        optimizer can step off a saddle.  One arises by symmetry: a binary
        response separated by two levels of equal size has ``beta = 0``
        stationary, while the optimum puts the intercept at one level's
        outcome.  Where the Hessian (in ``(theta, gamma)``, gamma in standard
        errors) has a negative eigenvalue, stage 2 restarts one unit along its
        eigenvector each way, and the lower deviance is kept.
        """
        if H is None or not H.size or not np.all(np.isfinite(H)):
            return None
        k = stage2.theta.size - self.p
        J = np.eye(stage2.theta.size)
        J[k:, k:] = C  # d beta / d gamma
        eigenvalues, vectors = np.linalg.eigh(J.T @ H @ J)
        if eigenvalues[0] >= -1e-6 * max(1.0, abs(eigenvalues[-1])):
            return None
        lower = np.concatenate([self.layout.lower, np.full(self.p, -np.inf)])
        best = stage2
        for sign in (1.0, -1.0):
            start = np.maximum(stage2.theta + sign * vectors[:, 0], lower)
            outcome = minimize_deviance(joint, start, lower, value_and_gradient=joint_gradient,
                                        projected=True, **options)  # fmt: skip
            best = better_outcome(best, outcome, options["tol"])
        if best.deviance < stage2.deviance - options["tol"] * max(1.0, abs(stage2.deviance)):
            return best
        return None

    def _hessian(self, joint, joint_gradient, x, C):
        """The Hessian of the criterion in ``(theta, beta)`` at the optimum ``x``.

        Forward differences (step 1e-4, lme4's) of the analytic gradient, or
        lme4's central differences of the criterion where there is none, in
        ``(theta, gamma)`` (``beta = beta1 + C gamma``: a step means the same
        in every direction); then
        ``H_beta = C^-T H_gamma C^-1``.
        """
        warm = self._warm
        h, d = _HESSIAN_STEP, x.size
        analytic = self._analytic
        H = np.empty((d, d))
        if analytic:  # forward differences of the gradient: d evaluations, error O(h)
            g0 = joint_gradient(x)[1]
            for i in range(d):
                e = np.zeros(d)
                e[i] = h
                self._warm = warm
                H[:, i] = (joint_gradient(x + e)[1] - g0) / h
            H = 0.5 * (H + H.T)
        else:
            H = _second_differences(joint, x, h, lambda: setattr(self, "_warm", warm))
        self._warm = warm
        J = np.eye(d)
        J[d - self.p :, d - self.p :] = np.linalg.inv(C)
        return J.T @ H @ J

    # ------------------------------------------------------------- solution
    def _solution(self, state, n_iter, n_eval, converged, message, H=None):
        T = self.layout.factors(self.theta)
        working = self.predictor.working_model(self.family, self.prior, state, fixed=True)
        lmm = working.solution(self.theta) if self.terms else None
        beta_cov, used = self._beta_covariance(H, state)
        return GLMMFit(
            family=self.family.name,
            nagq=self.nagq,
            n=self.n,
            p=self.p,
            theta=self.theta.copy(),
            beta=self.beta.copy(),
            beta_cov=beta_cov,
            b=[u @ Tj.T for u, Tj in zip(state.u, T, strict=True)],  # b = T u per level
            conditional_cov=[] if lmm is None else list(lmm.conditional_cov),
            term_cov=[Tj @ Tj.T for Tj in T],
            deviance=float(self.criterion(state)),
            n_iter=n_iter,
            n_evaluations=n_eval,
            converged=bool(converged),
            message=message,
            singular=bool(self.terms) and self.layout.singular(self.theta),
            hessian=np.empty((0, 0)) if H is None else H,
            hessian_used=used,
            separated=bool(self.terms) and bool(np.max(np.abs(self.theta)) >= 0.1 * THETA_MAX),
        )

    def _beta_covariance(self, H, state):
        """``2 inv(H)`` on beta, as lme4; the PIRLS (RX) covariance where H is not
        positive definite (lme4 warns and does the same)."""
        if H is not None and H.size:
            try:
                np.linalg.cholesky(H)
                V = 2.0 * np.linalg.inv(H)
                V = V[-self.p :, -self.p :] if self.p else np.zeros((0, 0))
                return 0.5 * (V + V.T), True
            except np.linalg.LinAlgError:
                pass
        cov = self.predictor.fixed_covariance(self.family, self.prior, self.theta, state)
        return cov, False

    @property
    def result(self):
        """The :class:`GLMMFit` (None before :meth:`fit`)."""
        return self._result
