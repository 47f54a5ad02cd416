"""The linear mixed model as one object: reduced data, theta -> deviance, fit.

``y = X beta + Z b + eps``, ``b ~ N(0, sigma^2 Lambda Lambda')``,
``eps ~ N(0, sigma^2 W^-1)``.  A :class:`LinearMixedModel` holds, after one
pass over the rows (:mod:`.reduction`), everything the fit and the inference
need: the reduction, the terms' covariance structures (:mod:`.structures`)
and the solver's plan.  It evaluates the profiled deviance at any ``theta``
(:meth:`~LinearMixedModel.deviance`, lme4's ``as.function(fit)``), fits by
REML or ML (:meth:`~LinearMixedModel.fit`), refits by the other criterion or
with a coefficient held fixed without touching the rows again, and gives the
solution at the optimum (:attr:`~LinearMixedModel.result`).  Profiles,
Satterthwaite's degrees of freedom, the bootstrap, anova, influence and the
displays all work on this object (MixedModels.jl's ``LinearMixedModel``).

Three solvers share it: the dense system of a small model (:mod:`.dense`),
the blocked Cholesky factor (:mod:`.cholesky`) and, for huge crossed random
intercepts, the approximate iterative solver (:mod:`.iterative`).
"""

import contextlib
import copy
from dataclasses import replace

import numpy as np
import scipy.linalg as la

from .cholesky import (
    blocked_cholesky,
    relative_factor_matrix,
)
from .crossprod import blocked_cross_products, data_gram
from .dense import DENSE_SIZE_LIMIT, DenseDeviance, augmented_gram
from .deviance import (
    Criterion,
    log_determinants,
    solve_coefficients,
)
from .gradient import blocked_gradients
from .layout import ThetaLayout, elimination_order
from .memory import check_dense_block
from .model_solution import SolutionMixin
from .optimize import NEAR_BOUND, better_outcome, minimize_deviance
from .paired import PAIR_BUDGET, PairedDeviance, paired_size
from .rows import ModelRows, intercept_column
from .single import SingleTermDeviance
from .solution import CriterionPieces
from .start import intercept_moment_start, slope_moment_start
from .threads import single_blas_thread

__all__ = ["LinearMixedModel", "fit_lmm"]

# Below this size of the dense block the fit runs on one BLAS thread (see
# :mod:`.threads`); above it the dense Cholesky itself is large enough to gain.
_SINGLE_THREAD_BELOW = 4000
# One term with a system up to this size is evaluated dense (:mod:`.dense`: one
# small Cholesky beats the batched level-by-level steps of :mod:`.single`).
_ONE_TERM_DENSE_UP_TO = 50
# Up to this many covariance parameters the optimizer is the lean projected BFGS
# of :mod:`.bfgs` (dense quasi-Newton matrix); beyond, L-BFGS-B.
_PROJECTED_BFGS_UP_TO = 50
# Random intercepts use the pair kernel when their pairs of meeting pairs
# number at most this many per eliminated level (measured crossover: ~50-100).
_NEARLY_NESTED = 32
# Advice when the dense block is too large for memory.
_MEMORY_ADVICE = (
    "Crossed random intercepts of this size can be fitted by CrossedEffectsRegressor"
    "(solver='iterative'), whose memory grows with the data, not with the square of "
    "the levels; or reduce the number of levels of the crossed factors."
)


class LinearMixedModel(SolutionMixin):
    """A linear mixed model on its reduced data; see the module docstring.

    Parameters
    ----------
    reduction : Reduction
        The data, reduced (:func:`~.reduction.reduce_rows`), with full-rank
        fixed columns.
    terms : sequence
        The random-effects terms, in the reduction's order: objects with
        ``name``, ``n_levels``, ``n_coef``, ``structure`` (a
        :class:`~.structures.CovarianceStructure`) and ``covariate_names``,
        such as :class:`~.grouping.RandomTerm`.  May be empty (a linear
        model fitted by the same criterion, in closed form).
    method : {"reml", "ml"}
    fixed_sigma : float, optional
        A known residual standard deviation (sigma is then not estimated).
    solver : {"exact", "iterative"}
        ``"iterative"``: the approximate solver for crossed random intercepts.
    evaluations : {"many", "one"}
        ``"one"``: the model is solved at a single theta (a PIRLS step of a
        GLMM, :mod:`.glmm_state`), so the plan skips set-up that pays off only
        over many evaluations (the pair kernel, precomputed pair products).
    data : object, optional
        The rows the reduction came from (kept for row-level diagnostics:
        influence, the bootstrap); see :class:`~.rows.ModelRows`.
    """

    def __init__(self, reduction, terms, *, method="reml", fixed_sigma=None, solver="exact",
                 evaluations="many", data=None):  # fmt: skip
        if method not in ("reml", "ml"):
            raise ValueError(f"method must be 'reml' or 'ml', got {method!r}")
        if solver == "iterative" and fixed_sigma is not None:
            raise ValueError(
                "the iterative solver estimates sigma; fixed_sigma needs solver='exact'"
            )
        self.reduction = reduction
        self.terms = tuple(terms)
        self.method = method
        self.fixed_sigma = None if fixed_sigma is None else float(fixed_sigma)
        self.solver = solver
        self.evaluations = evaluations
        self.data = data
        self.n, self.p = reduction.n, reduction.p
        self.criterion = Criterion(
            self.n, self.p, method == "reml", reduction.sum_log_w, self.fixed_sigma
        )
        self.layout = ThetaLayout([t.structure for t in self.terms])
        self.theta = None
        self.fit_options = {}
        self.optimizer = None  # OptimizeOutcome of the last fit
        self._result = None  # LMMFit at the optimum, formed on first use
        self._small = self._single = self._paired = self._closed = self._dense = None
        self._cp = self._last_factor = self._last_dense = None
        if self.terms and solver == "exact":
            self._plan()

    # ----------------------------------------------------------------- plan
    def _plan(self):
        sizes = [(t.n_levels, t.n_coef) for t in self.reduction.terms]
        q = sum(m * k for m, k in sizes)
        once = self.evaluations == "one"
        dense = q + self.p + 1 <= DENSE_SIZE_LIMIT
        if len(sizes) == 1 and not (dense and q + self.p + 1 <= _ONE_TERM_DENSE_UP_TO):
            self._single = SingleTermDeviance(
                self.reduction.terms[0], data_gram(self.reduction), self.criterion
            )
            self._closed, self._dense = [0], []
            return
        if dense:
            self._small = DenseDeviance(augmented_gram(self.reduction), sizes, self.criterion)
            return
        self._closed, self._dense = elimination_order(self.reduction)
        q_dense = sum(sizes[f][0] * sizes[f][1] for f in self._dense)
        check_dense_block(q_dense + self.p + 1, _MEMORY_ADVICE)
        if not once and self._pairs_pay(sizes):
            self._paired = PairedDeviance(
                self.reduction, self._closed[0], self._dense, self.criterion
            )

    def _pairs_pay(self, sizes):
        """Whether the pair-list kernel (:mod:`.paired`) fits this plan: one term
        eliminated, dense terms of one size, pairs within budget.  For random
        intercepts only it must also be nearly nested (each eliminated level
        meeting a few dense levels: ScotsSec's pupils' primary and secondary
        schools); where the levels cross densely the blocked factor's Schur
        complement on a precomputed pattern and its trace-formula gradient
        are 2-5 times faster (:mod:`.schur`)."""
        closed, dense = self._closed, self._dense
        if len(closed) != 1 or not dense or len({sizes[f][1] for f in dense}) != 1:
            return False
        size = paired_size(self.reduction, closed[0], dense)
        if all(k == 1 for _, k in sizes):
            return size <= _NEARLY_NESTED * sizes[closed[0]][0]
        return size <= PAIR_BUDGET

    @property
    def cp(self):
        """The blocked cross-products (formed on first use)."""
        if self._cp is None:
            self._cp = blocked_cross_products(
                self.reduction, self._closed, self._dense, precompute=self.evaluations == "many"
            )
        return self._cp

    @property
    def plan(self):
        """``(closed, dense)`` term indices of the blocked factor (None for a small model)."""
        return None if self._closed is None else (list(self._closed), list(self._dense))

    @property
    def is_small(self):
        """Whether the whole system is dense (:mod:`.dense`)."""
        return self._small is not None

    @property
    def dense_size(self):
        """Order of the dense block each evaluation factors."""
        if self._small is not None:
            return self._small.G.shape[0]
        if self._dense is None:
            return self.p + 1
        return sum(self.reduction.terms[f].n_levels * self.reduction.terms[f].n_coef
                   for f in self._dense) + self.p + 1  # fmt: skip

    @property
    def has_gradient(self):
        """Analytic gradient: small problems, or one closed term (the others dense)."""
        return self._small is not None or (self._closed is not None and len(self._closed) == 1)

    def threads(self):
        """Context for many evaluations: one BLAS thread unless the dense block is large."""
        if self.dense_size >= _SINGLE_THREAD_BELOW:
            return contextlib.nullcontext()
        return single_blas_thread()

    def _require_exact(self, what):
        if self.solver != "exact":
            raise ValueError(
                f"{what} needs the exact deviance, but this model uses the approximate "
                "iterative solver; refit with solver='exact' if the design allows it."
            )
        if not self.terms:
            raise ValueError(f"{what} needs random effects; this model has none.")

    # ------------------------------------------------------- theta -> deviance
    def factorize(self, theta):
        """Blocked factor at theta, and ``T`` per term.

        The last one is kept: the optimum is usually the point evaluated last.
        """
        last = self._last_factor
        if last is not None and np.array_equal(last[0], theta):
            return last[1], last[2]
        T = self.layout.factors(theta)
        if self._single is not None:
            factor = self._single.factor(T[0])
        elif self._paired is not None:
            factor = self._paired.factor(T[self._closed[0]], [T[i] for i in self._dense])
        else:
            factor = blocked_cholesky(
                cp=self.cp,
                T_closed=[T[i] for i in self._closed],
                Lambda_dense=self._dense_lambda(T),
            )
        self._last_factor = (np.array(theta, dtype=float), factor, T)
        return factor, T

    def _dense_lambda(self, T):
        return relative_factor_matrix(
            [T[i] for i in self._dense], [self.reduction.terms[i].n_levels for i in self._dense]
        )

    def deviance(self, theta):
        """The profiled deviance at ``theta`` (-2 log-likelihood, or -2 REML criterion).

        lme4's ``as.function(fit)(theta)``; ``theta`` in the model's term order.
        Raises ``numpy.linalg.LinAlgError`` where the system is singular.
        """
        self._require_exact("deviance(theta)")
        theta = np.asarray(theta, dtype=float)
        if self._small is not None:
            return float(self._small.deviance(self.layout.factors(theta)))
        if self._paired is not None:
            T = self.layout.factors(theta)
            return float(self._paired.deviance(T[self._closed[0]], [T[i] for i in self._dense]))
        factor = self.factorize(theta)[0]
        return float(self.criterion.value(*log_determinants(factor, self.p)))

    @property
    def objective(self):
        """``theta -> deviance``: the function the fit minimizes."""
        return self.deviance

    def value_and_gradient(self, theta):
        """Deviance and its analytic gradient (when :attr:`has_gradient`)."""
        theta = np.asarray(theta, dtype=float)
        if self._small is not None:
            value, grads = self._small.value_and_gradient(self.layout.factors(theta))
            return value, self.layout.theta_gradient(grads)
        if self._single is not None:
            value, grad = self._single.value_and_gradient(self.layout.factors(theta)[0])
            return value, self.layout.theta_gradient([grad])
        if self._paired is not None:
            T = self.layout.factors(theta)
            value, grad_1, grads_D = self._paired.value_and_gradient(
                T[self._closed[0]], [T[i] for i in self._dense]
            )
            return value, self._theta_gradient([grad_1] + grads_D)
        factor, T = self.factorize(theta)
        self._last_pieces = log_determinants(factor, self.p)
        value = self.criterion.value(*self._last_pieces)
        sizes = [(t.n_levels, t.n_coef) for t in self.reduction.terms]
        grads = blocked_gradients(
            self.cp, factor, T, (self._closed, self._dense), sizes, self.criterion
        )
        return value, self._theta_gradient(grads)

    def value_and_gradient_at_sigma(self, theta, sigma):
        """The deviance at ``(theta, sigma)`` with ``sigma`` not profiled out, and
        its partial derivatives in ``theta`` and in ``sigma``.

        ``D = log|L_Z|^2 (+ log|L_X|^2) - log|W| + r^2 / sigma^2 + nu log(2 pi
        sigma^2)``, so ``dD/dsigma = 2 (nu - r^2 / sigma^2) / sigma``; the
        theta-gradient is the kernels' adjoint with that criterion.  Profiles
        in lme4's ``(sd, cor, sigma)`` parameters are built on it.
        """
        self._require_exact("value_and_gradient_at_sigma")
        if not self.has_gradient:
            raise ValueError("this model has no analytic gradient (nested chain of terms)")
        known = replace(self.criterion, fixed_sigma=float(sigma))
        kernels = [k for k in (self._small, self._single, self._paired) if k is not None]
        saved = self.criterion
        try:
            for holder in [self] + kernels:
                holder.criterion = known
            value, grad = self.value_and_gradient(theta)
        finally:
            for holder in [self] + kernels:
                holder.criterion = saved
        pwrss = (kernels[0].last_pieces if kernels else self._last_pieces)[2]
        d_sigma = 2.0 * (known.dof - pwrss / sigma**2) / sigma
        return value, grad, d_sigma

    def _theta_gradient(self, grads):
        """dd/dtheta from dd/dT given per term in elimination order."""
        order = self._closed + self._dense
        user = [None] * len(order)
        for pos, term_index in enumerate(order):
            user[term_index] = grads[pos]
        return self.layout.theta_gradient(user)

    def _pivots(self, theta):
        """``(log|L_Z|^2, log|L_X|^2, r^2)`` at ``theta`` and the factor's ``L_X``
        block, from whichever kernel evaluates this model."""
        self._require_exact("the deviance pieces at theta")
        theta = np.asarray(theta, dtype=float)
        T = self.layout.factors(theta)
        if self._small is not None:
            L = self._small.factor(T)[1]
            q = self._small.q
            return self._small.log_determinants(L), L[q:-1, q:-1]
        if self._single is not None:
            logdets, L22 = self._single.log_determinants(T[0])
        elif self._paired is not None:
            closed, dense = self._closed[0], [T[i] for i in self._dense]
            logdets, L22 = self._paired.log_determinants(T[closed], dense)
        else:
            factor = self.factorize(theta)[0]
            logdets, L22 = log_determinants(factor, self.p), factor.L22
        q = L22.shape[0] - self.p - 1
        return logdets, L22[q : q + self.p, q : q + self.p]

    def log_determinants(self, theta):
        """``(log|L_Z|^2, log|L_X|^2, r^2)`` at ``theta``: the deviance at any
        ``sigma`` (profiles in lme4's parameters)."""
        return self._pivots(theta)[0]

    def pieces(self, theta):
        """:class:`CriterionPieces` at ``theta``: the deviance at any ``(theta, sigma)``
        and the unscaled covariance of beta."""
        (logdet_Z, logdet_X, pwrss), L_X = self._pivots(theta)
        L_X_inv = la.solve_triangular(L_X, np.eye(self.p), lower=True)
        return CriterionPieces(float(logdet_Z), float(logdet_X), float(pwrss), L_X_inv.T @ L_X_inv)

    def modes(self, theta):
        """``(beta, u, log|L_Z|^2)`` at ``theta``: the fixed effects (uncentred),
        the spherical modes per term (term order, ``(m, k)`` each) and the
        log-determinant, without the conditional covariances (the inner step of
        PIRLS, :mod:`.glmm`)."""
        self._require_exact("the modes at theta")
        T = self.layout.factors(np.asarray(theta, dtype=float))
        if self._small is not None:
            GL, L = self._small.factor(T)
            self._last_dense = (np.array(theta, dtype=float), GL, L)
            v = la.solve_triangular(L[:-1, :-1], L[-1, :-1], lower=True, trans="T")
            q = self._small.q
            splits = np.cumsum([m * k for m, k in self._small.term_sizes])[:-1]
            u = [part.reshape(m, k) for part, (m, k)
                 in zip(np.split(v[:q], splits), self._small.term_sizes, strict=True)]  # fmt: skip
            return self.reduction.uncentre(v[q:]), u, self._small.log_determinants(L)[0]
        factor = self.factorize(theta)[0]
        beta, u_closed, u_dense = solve_coefficients(factor, self.p)
        u = self._term_order_modes(u_closed, u_dense)
        return self.reduction.uncentre(beta), u, log_determinants(factor, self.p)[0]

    def _term_order_modes(self, u_closed, u_dense):
        """The spherical modes of the blocked factor (closed terms, then the dense
        block) per term in term order, ``(m, k)`` each."""
        rt = self.reduction.terms
        dense_sizes = [rt[i].n_levels * rt[i].n_coef for i in self._dense]
        parts = u_closed + (np.split(u_dense, np.cumsum(dense_sizes)[:-1]) if dense_sizes else [])
        u = [None] * len(rt)
        for term_index, part in zip(self._closed + self._dense, parts, strict=True):
            u[term_index] = part.reshape(rt[term_index].n_levels, rt[term_index].n_coef)
        return u

    def penalized_system(self, theta):
        """The factor of the penalized system at ``theta``, for derivatives of a
        GLMM's Laplace criterion (:mod:`.laplace_gradient`):
        ``("dense", Z'WZ Lambda, L)`` for a small model (``L L'`` the system of
        ``[u; beta]``), ``("blocked", factor, closed, dense)`` for the blocked
        factor (term indices in elimination order), None for the pair kernel."""
        theta = np.asarray(theta, dtype=float)
        if self._small is not None:
            last = self._last_dense
            if last is not None and np.array_equal(last[0], theta):
                GL, L = last[1], last[2]
            else:
                GL, L = self._small.factor(self.layout.factors(theta))
            q = self._small.q
            return "dense", GL[:q, :q], L[:-1, :-1]
        if self._paired is not None or self._closed is None:
            return None
        return "blocked", self.factorize(theta)[0], list(self._closed), list(self._dense)

    def solution(self, theta):
        """The :class:`~.solution.LMMFit` at any ``theta`` (not only the fitted one)."""
        self._require_exact("the solution at theta")
        with self.threads():
            return self._solution(np.asarray(theta, dtype=float))

    @property
    def result(self):
        """The :class:`~.solution.LMMFit` at the fitted theta (None before a fit):
        estimates and variances, formed on first use (a profile's refits only
        need the deviance)."""
        if self._result is None and self.theta is not None and self.optimizer is not None:
            with self.threads():  # small dense products: threads only wait on a busy machine
                self._result = self._solution(self.theta)
        return self._result

    @result.setter
    def result(self, value):
        self._result = value

    # ------------------------------------------------------------------ fit
    def start(self):
        """Starting theta: moments for random intercepts, the levels' own fits
        for slopes, else lme4's ``T = I``."""
        start = None
        rt = self.reduction.terms
        if all(t.n_coef == 1 and t.intercept == 0 for t in rt):
            start = intercept_moment_start(self.reduction)
        else:
            start = slope_moment_start(self.reduction, self.layout, self.method)
        return self.layout.start.copy() if start is None else start

    def fit(self, *, start=None, max_iter=500, tol=1e-10, **iterative_options):
        """Minimize the deviance over theta; sets :attr:`theta` and :attr:`result`.

        Parameters
        ----------
        start : array-like, optional
            Starting theta (default :meth:`start`).
        max_iter : int
        tol : float
            Relative tolerance on the deviance.
        **iterative_options
            Passed to the iterative solver (``random_state``, ...).

        Returns
        -------
        self
        """
        self.fit_options = {"max_iter": max_iter, "tol": tol, **iterative_options}
        if not self.terms:
            return self._closed_form(exact=False)
        if self.fixed_sigma is None and self._fits_exactly():
            return self._closed_form(exact=True)
        if self.solver == "iterative":
            from .iterative import fit_iterative_model

            return fit_iterative_model(self, max_iter=max_iter, tol=tol, **iterative_options)
        with self.threads():
            theta0 = self.start() if start is None else self._feasible(start)
            self.optimizer = self._minimize(theta0, max_iter, tol)
            if start is None and self._stuck_on_boundary(self.optimizer.theta):
                self.optimizer = better_outcome(
                    self.optimizer, self._minimize(2 * theta0, max_iter, tol), tol
                )
            self.theta = self.optimizer.theta
            self._result = None
        return self

    def _minimize(self, theta0, max_iter, tol):
        return minimize_deviance(
            self.deviance,
            theta0,
            self.layout.lower,
            value_and_gradient=self.value_and_gradient if self.has_gradient else None,
            max_iter=max_iter,
            tol=tol,
            projected=self.layout.start.size <= _PROJECTED_BFGS_UP_TO,
            scale=self.layout.inverse_hessian_guess(theta0, [t.n_levels for t in self.terms]),
        )

    def _stuck_on_boundary(self, theta):
        """A singular fit of a model with a correlated block: possibly a local
        minimum on the boundary (lme4's ``(f || g)``, f categorical, on oats
        stops there from the default start), worth one more start."""
        correlated = np.sum(np.isfinite(self.layout.lower)) < theta.size  # off-diagonals
        return correlated and self.layout.singular(theta, tol=NEAR_BOUND)

    def _feasible(self, start):
        start = np.array(start, dtype=float)
        if start.shape != self.layout.start.shape:
            raise ValueError(f"start must have {self.layout.start.size} elements")
        return np.maximum(start, self.layout.lower)

    def refit(self, method=None, *, reduction=None, fixed_sigma="same", start="current", **kw):
        """A new fitted model: another criterion, or other data of the same design.

        Parameters
        ----------
        method : {"reml", "ml"}, optional
            Default: this model's.
        reduction : Reduction, optional
            New reduced data of the same terms (a simulated response, a
            coefficient held fixed); default this model's.
        fixed_sigma : float or None, optional
            Default: this model's.
        start : array-like, "current" or None
            ``"current"``: this model's theta when fitted (warm start).
        **kw
            ``max_iter``, ``tol`` (and the iterative solver's options): default
            those of this model's fit.
        """
        model = LinearMixedModel(
            self.reduction if reduction is None else reduction,
            self.terms,
            method=self.method if method is None else method,
            fixed_sigma=self.fixed_sigma if fixed_sigma == "same" else fixed_sigma,
            solver=self.solver,
            data=self.data if reduction is None else None,
        )
        if isinstance(start, str):
            start = None if self.theta is None or self.solver != "exact" else self.theta
        options = {**self.fit_options, **kw}
        if self.solver != "exact":
            return model.fit(**options)
        return model.fit(start=start, **options)

    def with_fixed_coefficient(self, j, value):
        """The (unfitted) model with fixed effect ``j`` (centred coordinates) held at ``value``."""
        return LinearMixedModel(
            self.reduction.with_fixed_coefficient(j, value),
            self.terms,
            method=self.method,
            fixed_sigma=self.fixed_sigma,
            solver=self.solver,
        )

    # ----------------------------------------------------------- reading
    def without_data(self):
        """A copy holding the solution and the terms only, light to send to
        other processes for prediction: no rows, no reduction, no factor."""
        light = copy.copy(self)
        light._result = self.result
        light.data = light.reduction = None
        light._small = light._single = light._paired = light._dense = None
        light._cp = light._last_factor = light._last_dense = None
        return light

    def factor_at_optimum(self):
        """The factor at the fitted theta: ``("dense", L)`` or ``("blocked", factor)``."""
        self._require_exact("the factor")
        if self._small is not None:
            return "dense", self._small.factor(self.layout.factors(self.theta))[1]
        return "blocked", self.factorize(self.theta)[0]


def fit_lmm(X, y, terms, *, method="reml", weights=None, offset=None, fixed_sigma=None,
            solver="exact", max_iter=500, tol=1e-10, **options):  # fmt: skip
    """Reduce the rows of ``y ~ X + terms`` and fit: a fitted :class:`LinearMixedModel`.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Full-rank fixed-effects model matrix; an all-ones column is the
        intercept (the reduction is then centred).
    y : ndarray of shape (n,)
    terms : list of RandomTerm
        May be empty (a linear model fitted by the same criterion).
    method : {"reml", "ml"}
    weights : ndarray of shape (n,), optional
        Positive prior weights.
    offset : ndarray of shape (n,), optional
    fixed_sigma : float, optional
    solver : {"exact", "iterative"}
    max_iter : int
    tol : float
    **options
        For the iterative solver.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    rows = ModelRows(X, y, tuple(terms), weights, offset, intercept_column(X))
    model = LinearMixedModel(
        rows.reduce(), terms, method=method, fixed_sigma=fixed_sigma, solver=solver, data=rows
    )
    return model.fit(max_iter=max_iter, tol=tol, **options)
