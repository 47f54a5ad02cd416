"""Approximate REML / ML for large crossed random intercepts (``solver="iterative"``).

The exact solver (:mod:`.cholesky`) holds a dense block of the size of every
factor but the largest; past about ``1e4`` such levels (users x items) it no
longer fits.  This module fits

```text
y = X beta + sum_f Z_f b_f + eps,   b_f ~ N(0, sigma_f^2 I_{m_f}),   eps ~ N(0, sigma^2 I_n)
```

(random intercepts only, any number of crossed or nested factors) without
factoring anything larger than ``p x p``:

1. **One pass over the data** (:class:`_Design`): level counts, ``Z_f'X``,
   ``Z_f'y``, ``X'X``, ``X'y``, ``y'y`` and, for each pair of factors, the sparse
   cross-tabulation of counts ``Z_f'Z_g``.  Nothing afterwards is of size ``n``
   except one residual per outer iteration.

2. **Henderson's mixed-model equations** at given variance ratios
   ``lambda_f = sigma^2 / sigma_f^2``::

       [ X'X   X'Z         ] [beta]   [X'y]
       [ Z'X   Z'Z + Lambda] [ b  ] = [Z'y]

   The factor with the most levels has a diagonal block and is eliminated
   exactly; the Schur complement ``S`` on the other factors and ``X`` is never
   formed: its products go through the sparse cross-tabulations.  ``S`` is
   solved by preconditioned conjugate gradients, with the block-Jacobi
   preconditioner (exact diagonal of each factor's block, dense ``p x p``
   fixed-effects block), many right-hand sides at once (Pandolfi,
   Papaspiliopoulos and Zanella 2024 study this preconditioner for crossed
   designs; Kundig and Sigrist 2025 compare preconditioners for CG and
   stochastic Lanczos quadrature in this setting).

3. **Variance components** solve the REML (or ML) score equations.  In the
   log-variances ``psi = log(sigma_1^2, ..., sigma_F^2, sigma^2)``, with
   ``tau_f = tr(C^ff)`` the trace of factor ``f``'s block of the inverse of
   the coefficient matrix ``C`` above (of ``Z'Z + Lambda`` alone for ML)::

       score_f = (||b_f||^2 / sigma_f^2 - (m_f - lambda_f tau_f)) / 2
       score_e = (e'e / sigma^2 - (n - p - sum_f (m_f - lambda_f tau_f))) / 2

   (Henderson's REML equations; ``m_f - lambda_f tau_f`` is factor ``f``'s
   effective number of parameters).  The traces are estimated by Hutchinson's
   estimator with Rademacher probes, each one CG solve, with control variates
   that remove most of its variance (:class:`_TraceEstimator`).  The probes are
   drawn once (``random_state``) and kept, so the estimated score is a smooth
   deterministic function of ``psi`` (a sample-average approximation) and
   warm-started CG solves stay cheap.  Newton steps use the average-information
   matrix (Gilmour, Thompson and Cullis 1995), from ``F + 1`` more solves, and
   start from a method of moments in ``O(n)`` (the U-statistics of Gao and Owen
   2017, extended to any number of factors).  Probes are doubled until the
   Monte Carlo standard error of every log variance component (at its upper
   95% confidence bound) is below ``mc_tol``; a factor with no more levels
   than probes gets its trace exactly.

4. **At the final variance components** (:mod:`.iterative_likelihood`): lme4's
   profiled (RE)ML criterion, whose log-determinant is estimated by deflated
   stochastic Lanczos quadrature on the preconditioned ``S`` (the
   preconditioner's log-determinant is exact), and approximate conditional
   variances ``Var(b_j | y)`` from the preconditioner, corrected along each
   factor's constant vector.

The result is **approximate**: the variance components differ from the exact
REML (or ML) estimates by the Monte Carlo error of the traces (estimated in
``IterativeFit.mc_se``; ``mc_tol = 2e-3`` by default, so that a 1% difference
is five standard errors) and by the convergence tolerances.  The fixed
effects, their covariance and the conditional modes are the exact solutions of
Henderson's equations at those variance components, up to the CG tolerance.
The log-likelihood is a stochastic estimate with a Monte Carlo standard error
(``IterativeFit.log_likelihood_se``, kept below ``0.02``).  Variance
components that REML puts at 0 are detected (``singular``) when their ratio
to ``sigma^2`` falls below ``1e-10``.

Measured (``tests/test_core_iterative.py``, ``tests/test_iterative_likelihood.py``
and scratch benchmarks): on crossed, three-factor, nested and
mostly-single-observation designs of ``2e4``-``4e4`` rows, variance components
within ``3e-3`` (relative) of the exact REML/ML fit, predictions within ``1e-4
sd(y)``, log-likelihoods within ``0.01``; for ``n = 1e6`` (``1e4 x 1e3`` levels)
within ``1e-5``, 16 times faster than the exact solver; ``n = 1e7`` with ``1e6``
users x ``1e5`` items in about 30 s and 1.9 GB on two cores, plus about 20% for the
log-likelihood and the conditional variances.  Convergence of CG
is slower for deep nesting (``a/b/c``: about 25 iterations instead of 6-10),
as Pandolfi et al. (2024) predict; backfitting (Ghosh, Hastie and Owen 2022)
is the Gauss-Seidel alternative to the CG solves.

References
----------
Gao, K. and Owen, A. B. (2017). Efficient moment calculations for variance
components in large unbalanced crossed random effects models. *Electronic
Journal of Statistics* 11(1), 1235-1296.

Ghosh, S., Hastie, T. and Owen, A. B. (2022). Backfitting for large scale
crossed random effects regressions. *Annals of Statistics* 50(1), 560-583.

Gilmour, A. R., Thompson, R. and Cullis, B. R. (1995). Average information
REML: an efficient algorithm for variance parameter estimation in linear mixed
models. *Biometrics* 51(4), 1440-1450.

Hutchinson, M. F. (1990). A stochastic estimator of the trace of the influence
matrix for Laplacian smoothing splines. *Communications in Statistics -
Simulation and Computation* 19(2), 433-450.

Kundig, P. and Sigrist, F. (2025). Scalable Krylov subspace methods for
generalized mixed effects models with crossed random effects.
arXiv:2505.09552.

Pandolfi, A., Papaspiliopoulos, O. and Zanella, G. (2024). Conjugate gradient
methods for high-dimensional GLMMs. arXiv:2411.04729.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from .iterative_likelihood import conditional_variances, log_likelihood, penalized_rss
from .iterative_result import IterativeFit, _in_user_order, _user_variances
from .iterative_system import (
    _Design,
    _full_rhs,
    _SchurSystem,
    _split_solution,
    solve_mixed_model_equations,
)
from .iterative_traces import (
    _average_information,
    _average_information_rhs,
    _extend_warm,
    _moment_start,
    _newton_step,
    _Probes,
    _TraceEstimator,
)
from .solution import LMMFit

__all__ = [
    "IterativeFit",
    "fit_crossed_iterative",
    "fit_iterative_model",
    "solve_mixed_model_equations",
]

_INITIAL_PROBES = 8  # per factor; doubled while the Monte Carlo error is too large
_SCORE_TOL = 1e-10  # CG tolerance of the solution (||b||^2 enters the score)
_PROBE_TOL = 1e-4  # probes: the quadratic forms' error is quadratic in the residual
_BASIS_TOL = 1e-4  # deflation directions: variational forms or control-variate weights
_AI_TOL = 1e-3  # the average information only steers Newton's steps
_AI_REFRESH = 0.02  # recompute the average information after steps larger than this
_MAX_STEP = 1.0  # largest change of a log variance in one Newton step
_SMALL_RATIO = 1e-3  # sigma_f^2 / sigma^2 below this may step freely towards 0
_ZERO_RATIO = 1e-10  # sigma_f^2 / sigma^2 below this (and falling): a zero variance


# ----------------------------------------------------------------------------- the fit


def fit_crossed_iterative(
    reduction,
    *,
    method="reml",
    tol=1e-4,
    max_iter=50,
    mc_tol=2e-3,
    n_probes=None,
    max_probes=256,
    cg_tol=1e-8,
    compute_beta_cov=True,
    compute_log_likelihood=True,
    start=None,
    random_state=None,
):
    """Approximate REML or ML fit of crossed (or nested) random intercepts.

    ``y = X beta + sum_f Z_f b_f + eps``: conjugate gradients on Henderson's
    equations, stochastic (Hutchinson) traces in the score equations, Newton
    steps with the average information; see the module docstring.

    Parameters
    ----------
    reduction : Reduction
        The data reduction (:mod:`.reduction`) of a model whose terms are all
        random intercepts, with full-rank fixed columns; levels without
        observations get a conditional mode of 0.  The fixed effects (and
        their covariance) are those of its columns as given, not centred.
    method : {"reml", "ml"}
    tol : float
        Convergence: largest Newton step on the log variances.
    max_iter : int
        Maximum number of outer (Newton) iterations.
    mc_tol : float
        Target Monte Carlo standard error of the log variance components;
        probes are doubled until it is met (or ``max_probes``).
    n_probes : int, optional
        Fixed number of probes per factor (disables the adaptive rule).
    max_probes : int
    cg_tol : float
        Relative residual of the final solve for ``beta`` and ``b``.
    compute_beta_cov : bool
        Whether to compute ``beta_cov`` (``p`` more solves).
    compute_log_likelihood : bool
        Whether to estimate ``log_likelihood`` (stochastic Lanczos quadrature).
    start : array of shape (F + 1,), optional
        Starting ``(sigma_1^2, ..., sigma_F^2, sigma^2)``; default the moments.
    random_state : None, int or numpy Generator
        Seed of the probes: fixes the (otherwise random) Monte Carlo error.

    Returns
    -------
    IterativeFit
    """
    if method not in ("reml", "ml"):
        raise ValueError(f"method must be 'reml' or 'ml', got {method!r}")
    t0 = time.perf_counter()
    d = _Design(reduction)
    if d.n <= d.p:
        raise ValueError("more fixed effects than observations")
    rng = np.random.default_rng(random_state)
    run = _Run(
        d=d,
        traces=_TraceEstimator(d, _Probes(d.m, rng)),
        rhs=_full_rhs(d),
        dof=d.n - d.p if method == "reml" else d.n,
        rng=rng,
        options=_Options(
            method=method,
            tol=tol,
            mc_tol=mc_tol,
            adaptive=n_probes is None,
            max_probes=max_probes,
            cg_tol=cg_tol,
            compute_beta_cov=compute_beta_cov,
            compute_log_likelihood=compute_log_likelihood,
        ),
    )
    state = _start(reduction, d, start, n_probes)
    for n_iter in range(1, max_iter + 1):
        state.n_iter = n_iter
        if _iterate(run, state):
            break
    return _finish(run, state, t0, reduction)


@dataclass
class _Options:
    """The caller's settings of the fit."""

    method: str
    tol: float
    mc_tol: float
    adaptive: bool  # probes doubled until mc_tol is met
    max_probes: int
    cg_tol: float
    compute_beta_cov: bool
    compute_log_likelihood: bool


@dataclass
class _Run:
    """What stays fixed during the iteration: data, probes, right-hand side, options."""

    d: _Design
    traces: _TraceEstimator
    rhs: tuple  # Henderson's right-hand side (Z_1'y, [Z_2'y, ..., X'y])
    dof: int  # n - p (REML) or n (ML)
    rng: np.random.Generator
    options: _Options


@dataclass
class _State:
    """The Newton iteration in ``psi = log(sigma_1^2, ..., sigma_F^2, sigma^2)``.

    Internal factor order; ``counts`` and ``exact`` are the probes per factor
    and whether its trace is computed exactly, ``frozen`` the variances set
    to 0; the warm starts carry the CG solutions from one iteration to the
    next and ``H`` the last average information (in psi).
    """

    psi: np.ndarray
    counts: np.ndarray
    exact: np.ndarray
    frozen: np.ndarray
    start: np.ndarray
    mc_se: np.ndarray
    warm_y: object = None
    warm_t: object = None
    warm_ai: object = None
    layout: object = None
    H: object = None
    last_step: float = np.inf
    products: int = 0
    iterations: int = 0
    n_iter: int = 0
    converged: bool = False
    message: str = "maximum number of iterations reached"
    history: list = field(default_factory=list)


def _start(reduction, d, start, n_probes):
    """Initial state: the moment estimates (or ``start``) and the first probes."""
    F = d.F
    if start is None:
        variances = _moment_start(reduction, d)
    else:
        start = np.asarray(start, dtype=float)
        if start.shape != (F + 1,) or np.any(start <= 0):
            raise ValueError(f"start must hold {F + 1} positive variances")
        variances = np.concatenate([start[:F][d.order], start[F:]])
    counts = np.full(F, _INITIAL_PROBES if n_probes is None else int(n_probes))
    return _State(
        psi=np.log(variances),
        counts=counts,
        exact=np.array([d.m[f] <= counts[f] for f in range(F)]),
        frozen=np.zeros(F, dtype=bool),
        start=variances.copy(),
        mc_se=np.full(F + 1, np.inf),
    )


def _iterate(run, st):
    """One average-information Newton iteration; True when the fit has converged."""
    d, F = run.d, run.d.F
    variances = np.exp(st.psi)
    lam = variances[F] / variances[:F]
    sysX = _SchurSystem(d, lam, with_x=True)
    b, ee = _solution_at(run, st, sysX)
    # traces (ML: of Z'Z + Lambda alone) and the average information
    sysT = sysX if run.options.method == "reml" else _SchurSystem(d, lam, with_x=False)
    tau, tau_se = _traces_and_information(run, st, sysX, sysT, (b, ee, variances, lam))
    # Henderson's REML (ML) equations in psi; m_f - lambda_f tau_f is factor
    # f's effective number of parameters
    edf = np.asarray(d.m, dtype=float) - lam * tau
    g = np.empty(F + 1)
    for f in range(F):
        g[f] = 0.5 * (b[f] @ b[f] / variances[f] - edf[f])
    g[F] = 0.5 * (ee / variances[F] - (run.dof - edf.sum()))
    step, biggest, sens_upper, mc_upper = _capped_step(st, g, lam, tau_se)
    st.history.append(
        {
            "variances": _user_variances(d, variances),
            "step": biggest,
            "mc_se": float(np.max(st.mc_se)),
            "probes": st.counts.copy(),
            "exact": st.exact.copy(),
            "cg_products": st.products,
        }
    )
    return _advance(run, st, step, biggest, sens_upper, mc_upper)


def _solution_at(run, st, sysX):
    """Modes and ``e'e`` at the variances; tight, as ``||b_f||^2`` enters the score directly."""
    rhs_y = sysX.reduce(*run.rhs)
    x_y, _, its = sysX.solve(rhs_y, st.warm_y, tol=_SCORE_TOL)
    st.iterations += its
    st.warm_y = x_y
    beta, b = _split_solution(sysX, run.rhs[0], x_y)
    return b, run.d.residual_sum_of_squares(beta, b)


def _traces_and_information(run, st, sysX, sysT, at):
    """``tau`` and its standard errors; refreshes the average information ``st.H``.

    ``at = (b, e'e, variances, lambda)``.  The average information only steers
    the steps: it is recomputed while they are large.
    """
    b, ee, variances, lam = at
    rhs_t, layout = run.traces.rhs(sysT, st.counts, st.exact)
    x0 = None
    if st.warm_t is not None:
        x0 = st.warm_t if layout == st.layout else _extend_warm(st.warm_t, st.layout, layout)
    tol_t = np.concatenate(
        [np.full(k, _PROBE_TOL if kind == "probe" else _BASIS_TOL) for _, kind, k in layout]
    )
    ai = None
    if st.H is None or st.last_step > _AI_REFRESH:
        c1_ai, cS_ai, ww = _average_information_rhs(run.d, b, ee, variances, lam)
        ai = (c1_ai, sysX.reduce(c1_ai, cS_ai), ww)
    x_t, r_t = _trace_solves(st, sysX, sysT, (rhs_t, x0, tol_t), ai)
    st.warm_t, st.layout = x_t, layout
    tau, tau_se = run.traces.estimate(sysT, rhs_t, layout, x_t, r_t)
    if ai is not None:
        AI = _average_information(ai[0], ai[1], st.warm_ai, sysX, ai[2], variances)
        st.H = variances[:, None] * AI * variances[None, :]
    return tau, tau_se


def _trace_solves(st, sysX, sysT, traces, ai):
    """Probe solves ``(x_t, r_t)``, with the average information's (``st.warm_ai``).

    ``traces = (rhs, x0, tol)``.  REML: one block, same system.
    """
    rhs_t, x0, tol_t = traces
    k_t = rhs_t.shape[1]
    if ai is not None and sysT is sysX:
        rhs_ai = ai[1]
        x0b = None
        if x0 is not None:
            warm_ai = np.zeros_like(rhs_ai) if st.warm_ai is None else st.warm_ai
            x0b = np.concatenate([x0, warm_ai], 1)
        tolb = np.concatenate([tol_t, np.full(rhs_ai.shape[1], _AI_TOL)])
        xb, rb, its = sysX.solve(np.concatenate([rhs_t, rhs_ai], axis=1), x0b, tol=tolb)
        st.iterations += its
        x_t, r_t, st.warm_ai = xb[:, :k_t], rb[:, :k_t], xb[:, k_t:]
    else:
        x_t, r_t, its = sysT.solve(rhs_t, x0, tol=tol_t)
        st.iterations += its
        if ai is not None:
            st.warm_ai, _, its = sysX.solve(ai[1], st.warm_ai, tol=_AI_TOL)
            st.iterations += its
        if sysT is not sysX:
            st.products += sysT.n_products
    st.products += sysX.n_products
    return x_t, r_t


def _capped_step(st, g, lam, tau_se):
    """Newton's step, capped at ``_MAX_STEP`` except a small variance heading
    for 0 (where the score in log scale vanishes and Newton's steps grow).

    Updates ``st.mc_se`` and ``st.last_step``; returns ``(step, largest
    uncapped step, sens_upper, mc_upper)``.
    """
    F = lam.size
    step, st.mc_se, sens_upper, mc_upper = _newton_step(st.H, g, lam, st.frozen, tau_se, st.counts)
    biggest = st.last_step = float(np.max(np.abs(step)))
    vanishing = np.zeros(F + 1, dtype=bool)
    vanishing[:F] = (st.psi[:F] - st.psi[F] < np.log(_SMALL_RATIO)) & (step[:F] < 0)
    largest = np.max(np.abs(step[~vanishing]))
    if largest > _MAX_STEP:
        step[~vanishing] *= _MAX_STEP / largest
    return step, biggest, sens_upper, mc_upper


def _advance(run, st, step, biggest, sens_upper, mc_upper):
    """Take the step, freeze zero variances, add probes; True when converged."""
    F, opts = run.d.F, run.options
    # boundary: a variance ratio below 1e-10 that keeps falling is set to 0
    ratio = st.psi[:F] + step[:F] - st.psi[F]
    newly = (~st.frozen) & (ratio < np.log(_ZERO_RATIO)) & (step[:F] < 0)
    if np.any(newly):
        st.frozen |= newly
        st.psi[:F][newly] = st.psi[F] + np.log(_ZERO_RATIO)
        return False
    st.psi = st.psi + step
    if opts.adaptive and np.max(mc_upper) > opts.mc_tol and _more_probes(run, st, sens_upper):
        return False
    if biggest < opts.tol:
        st.converged = True
        st.message = "converged"
        if np.max(mc_upper) > opts.mc_tol:
            st.message += f"; Monte Carlo error above mc_tol with {opts.max_probes} probes"
        return True
    return False


def _more_probes(run, st, sens_upper):
    """Double the probes of the factors whose trace error matters; True if any changed."""
    d, opts = run.d, run.options
    grow = (np.max(np.abs(sens_upper), axis=0) > opts.mc_tol / np.sqrt(d.F)) & ~st.exact
    grow &= ~st.frozen
    if not np.any(grow):
        grow = ~st.exact & ~st.frozen
    new_counts = np.where(grow, np.minimum(2 * st.counts, opts.max_probes), st.counts)
    new_exact = st.exact | (grow & (np.asarray(d.m) <= new_counts))
    if np.any(new_counts != st.counts) or np.any(new_exact != st.exact):
        st.counts, st.exact = new_counts, new_exact
        return True
    return False


def _finish(run, st, t0, reduction):
    """The final solution, log-likelihood and conditional variances; the result."""
    d, F, opts = run.d, run.d.F, run.options
    internal = np.exp(st.psi)
    internal[:F][st.frozen] = 0.0
    beta, b, beta_cov, cxx, sysX = _final_solution(run, st, internal)
    loglik, se, cond, extra = _likelihood_and_variances(run, st, sysX, (beta, b, cxx), internal)
    variances, mc_user, probes_user, exact_user = _in_user_order(
        d, internal, st.mc_se, st.counts, st.exact
    )
    if beta_cov is None:
        beta = reduction.uncentre(beta)
    else:
        beta, beta_cov = reduction.uncentre(beta, beta_cov)
    return IterativeFit(
        method=opts.method,
        n=d.n,
        p=d.p,
        beta=beta,
        b=d.to_user(b),
        sigma2=float(internal[F]),
        variances=variances,
        beta_cov=beta_cov,
        n_iter=st.n_iter,
        converged=st.converged,
        message=st.message,
        singular=bool(np.any(st.frozen)),
        mc_se=mc_user,
        n_probes=probes_user,
        log_likelihood=loglik,
        log_likelihood_se=se,
        conditional_var=cond,
        diagnostics={
            "cg_products": st.products,
            "cg_iterations": st.iterations,
            "exact_traces": exact_user,
            "history": st.history,
            "start": _user_variances(d, st.start),
            **extra,
            "seconds": time.perf_counter() - t0,
        },
    )


def _likelihood_and_variances(run, st, sysX, solution, variances):
    """``(log_likelihood, its se, conditional variances, diagnostics)`` at the end.

    ``solution = (beta, b, (C^-1)_XX)`` at the final variance components;
    the conditional variances are in the user's order, ``sigma_f^2`` for
    levels without observations.
    """
    d, opts = run.d, run.options
    beta, b, cxx = solution
    loglik, se, extra = None, np.nan, {}
    t1 = time.perf_counter()
    if opts.compute_log_likelihood:
        pwrss = penalized_rss(d, sysX.lam, beta, b)
        ll = log_likelihood(d, sysX, cxx, pwrss, opts.method, run.rng)
        loglik, se = ll.value, ll.se
        extra["log_likelihood"] = {
            "n_probes": ll.n_probes,
            "lanczos_steps": ll.lanczos_steps,
            "cg_products": ll.cg_products,
            "seconds": time.perf_counter() - t1,
        }
    t1, products = time.perf_counter(), sysX.n_products
    cond = conditional_variances(d, sysX, variances[d.F], st.frozen)
    extra["conditional_var"] = {
        "cg_products": sysX.n_products - products,
        "seconds": time.perf_counter() - t1,
    }
    return loglik, se, d.to_user(cond, fill=variances[: d.F]), extra


def _final_solution(run, st, variances):
    """beta, the modes, Var(beta) and ``(C^-1)_XX`` at the final variance components.

    Returns ``(beta, b, beta_cov, cxx, system)``: ``beta_cov`` None unless
    requested, ``cxx = (C^-1)_XX`` (``p`` solves) None unless needed by
    ``beta_cov`` or the log-likelihood.  A factor whose variance is 0 has
    modes 0.
    """
    d, F, p, opts = run.d, run.d.F, run.d.p, run.options
    lam = np.where(st.frozen, 1.0 / _ZERO_RATIO, variances[F] / np.maximum(variances[:F], 1e-300))
    sysX = _SchurSystem(d, lam, with_x=True)
    c1_y, cS_y = run.rhs
    rhs_y = sysX.reduce(c1_y, cS_y)
    cols, x0 = [rhs_y], [st.warm_y if st.warm_y is not None else np.zeros_like(rhs_y)]
    with_x = p > 0 and (opts.compute_beta_cov or opts.compute_log_likelihood)
    if with_x:
        EX = np.zeros((sysX.size, p))
        sysX.xpart(EX)[:] = np.eye(p)
        cols.append(EX)
        x0.append(np.zeros_like(EX))
    xall, _, its = sysX.solve(
        np.concatenate(cols, axis=1), np.concatenate(x0, axis=1), tol=opts.cg_tol
    )
    st.iterations += its
    st.products += sysX.n_products
    beta, b = _split_solution(sysX, c1_y, xall[:, :1])
    for f in np.flatnonzero(st.frozen):
        b[f] = np.zeros_like(b[f])
    beta_cov = cxx = None
    if with_x:
        C = sysX.xpart(xall[:, 1:])
        cxx = 0.5 * (C + C.T)
        if opts.compute_beta_cov:
            beta_cov = variances[F] * 0.5 * (C + C.T)
    return beta, b, beta_cov, cxx, sysX


def _optional_list(value, n_levels):
    """Per-factor arrays, or NaN arrays when the solver did not compute them."""
    if value is None:
        return [np.full(m, np.nan) for m in n_levels]
    return [np.asarray(v, dtype=float).reshape(m) for v, m in zip(value, n_levels, strict=True)]


def fit_iterative_model(model, *, max_iter=50, tol=1e-4, **options):
    """Fit a :class:`~.model.LinearMixedModel` (random intercepts) iteratively.

    Sets the model's ``theta`` (lme4's ``sigma_f / sigma``) and ``result``
    (an :class:`~.solution.LMMFit`, ``log_likelihood_se`` its Monte Carlo error;
    NaN where the solver computed nothing) and returns the model.
    """
    fit = fit_crossed_iterative(
        model.reduction, method=model.method, tol=tol, max_iter=max_iter, **options
    )
    n_levels = [t.n_levels for t in model.terms]
    variances = np.asarray(fit.variances, dtype=float)
    sigma2 = float(fit.sigma2)
    theta = np.sqrt(np.clip(variances, 0.0, None) / sigma2)
    p = model.p
    beta_cov = getattr(fit, "beta_cov", None)
    beta_cov = np.full((p, p), np.nan) if beta_cov is None else beta_cov
    log_likelihood = getattr(fit, "log_likelihood", None)
    beta = np.asarray(fit.beta, dtype=float)
    model.theta = theta
    model.iterative_fit = fit
    model.result = LMMFit(
        method=model.method,
        n=model.n,
        p=p,
        theta=theta,
        T=[np.array([[t]]) for t in theta],
        beta=beta,
        b=[b[:, None] for b in _optional_list(fit.b, n_levels)],
        sigma2=sigma2,
        beta_cov=beta_cov,
        conditional_cov=[
            v[:, None, None]
            for v in _optional_list(getattr(fit, "conditional_var", None) or None, n_levels)
        ],
        deviance=np.nan if log_likelihood is None else -2.0 * float(log_likelihood),
        n_iter=int(fit.n_iter),
        n_evaluations=int(fit.n_iter),
        converged=bool(fit.converged),
        message=str(getattr(fit, "message", "iterative solver")),
        singular=bool(np.any(theta < 1e-4)),
        term_cov=[np.array([[v]]) for v in variances],
        log_likelihood_se=float(getattr(fit, "log_likelihood_se", np.nan)),
    )
    return model
