"""A projected BFGS method for the few covariance parameters of a small model.

For a model whose deviance costs tens of microseconds (sleepstudy), the
bookkeeping of a general-purpose optimizer costs more than the evaluations.
This is the textbook quasi-Newton method for simple bounds ``x >= l``
(Bertsekas 1982; Nocedal and Wright 2006, ch. 6 and 16.7) in a few lines of
numpy:

* the *active set* holds the coordinates at their bound whose gradient pushes
  outwards; the search direction is ``-H g`` on the others (``H`` the BFGS
  approximation of the inverse Hessian) and 0 on it;
* a backtracking line search along the projected path
  ``x(t) = max(l, x + t d)`` accepts the first point with sufficient decrease
  (Armijo), shrinking ``t`` by safeguarded quadratic interpolation, and
  doubling an accepted step while ``f`` is concave along it (BFGS learns no
  curvature there);
* ``H`` is updated with ``s = x_+ - x``, ``y = g_+ - g`` when ``s'y > 0``
  (scaled by ``s'y / y'y`` before the first update).

It stops when the projected gradient is below ``gtol max(1, |f|)``: near the
optimum the error in ``x`` is about the gradient over the curvature, and the
curvature of a deviance grows with it, so the test is scale-free where a test
on the reduction of ``f`` alone stops early on flat valleys.  When no step
decreases ``f`` any more (its rounding noise is reached) with a gradient below
``sqrt(gtol) max(1, |f|)`` it has converged as far as ``f`` allows.
"""

import numpy as np
from scipy.optimize import OptimizeResult

__all__ = ["projected_bfgs"]

_ARMIJO = 1e-4
_MAX_BACKTRACKS = 40
# Predicted decreases below this times max(1, |f|) are rounding noise.
_ROUNDING = 1e2 * np.finfo(float).eps
# Longest first trial step (max-norm): theta is on the scale of 1 (T = I).
# Where |x| is larger, steps up to |x| (a doubling): a deviance that keeps
# falling as a variance grows (a separated GLMM) is crossed in log(|x|) steps.
_MAX_STEP = 2.0


def _max_step(x):
    return max(_MAX_STEP, float(np.max(np.abs(x))) if x.size else 0.0)


def _projected_gradient(x, g, lower):
    """``g`` with the coordinates held at their bound set to 0."""
    return np.where((x <= lower) & (g > 0.0), 0.0, g)


def _direction(H, g, pg):
    """Quasi-Newton step on the free coordinates F, or steepest descent if uphill.

    The model's Hessian is ``B = H^-1``; with the active coordinates A held,
    the step is ``-(B_FF)^-1 g_F``, and ``(B_FF)^-1`` is the Schur complement
    ``H_FF - H_FA H_AA^-1 H_AF`` of ``H`` (not ``H_FF``, which would keep the
    curvature coupling to the held coordinates).
    """
    free = pg != 0.0
    d = np.zeros_like(g)
    if free.all():
        d = -(H @ g)
    elif free.any():
        active = ~free
        H_FA = H[np.ix_(free, active)]
        reduced = H[np.ix_(free, free)] - H_FA @ np.linalg.solve(H[np.ix_(active, active)], H_FA.T)
        d[free] = -(reduced @ g[free])
    if g @ d >= 0.0:
        return -pg, True
    return d, False


def _line_search(fun_and_grad, x, f, g, d, lower, t):
    """First point on the projected path with sufficient decrease, or None."""
    n_evaluations = 0
    for _ in range(_MAX_BACKTRACKS):
        x_new = np.maximum(x + t * d, lower)
        f_new, g_new = fun_and_grad(x_new)
        n_evaluations += 1
        decrease = g @ (x_new - x)
        if f_new < f and f_new <= f + _ARMIJO * decrease:
            return x_new, f_new, g_new, n_evaluations
        # minimizer of the quadratic through f, its slope and f_new, kept in [0.1, 0.5] t
        curvature = f_new - f - decrease
        shrink = -0.5 * decrease / curvature if curvature > 0 else 0.5
        t *= min(0.5, max(0.1, shrink))
    return None, f, g, n_evaluations


def _extrapolate(fun_and_grad, x, g, lower, x_new, f_new, g_new):
    """Longer steps while ``f`` is concave along the step (its slope steepens).

    There ``s'y < 0``: BFGS cannot learn a curvature and its steps keep the
    length of the first (near a zero variance the deviance is concave in
    theta).  Double the step, up to :func:`_max_step` in max-norm, while ``f``
    decreases and stays concave.
    """
    n_evaluations = 0
    s = x_new - x
    while (g_new - g) @ s < 0.0:
        s = 2.0 * s
        if np.max(np.abs(s)) > _max_step(x):
            break
        x_try = np.maximum(x + s, lower)
        f_try, g_try = fun_and_grad(x_try)
        n_evaluations += 1
        if not f_try < f_new:
            break
        x_new, f_new, g_new, s = x_try, f_try, g_try, x_try - x
    return x_new, f_new, g_new, n_evaluations


def _bfgs_update(H, s, y, first):
    """Inverse-Hessian BFGS update; skipped when the curvature ``s'y`` is not positive."""
    sy = s @ y
    if sy <= 1e-12 * np.sqrt((s @ s) * (y @ y)):
        return H
    if first:
        H = np.eye(s.size) * (sy / (y @ y))
    rho = 1.0 / sy
    Hy = H @ y
    return (
        H
        + (rho * rho * (y @ Hy) + rho) * np.outer(s, s)
        - rho * (np.outer(s, Hy) + np.outer(Hy, s))
    )


def projected_bfgs(fun_and_grad, x0, lower, *, max_iter=500, gtol=1e-9, scale=None):
    """Minimize ``f`` subject to ``x >= lower`` (``-inf`` for unbounded).

    Parameters
    ----------
    fun_and_grad : callable
        ``x -> (f, grad)``.
    x0, lower : ndarray of shape (d,)
    max_iter : int
    gtol : float
        Stop when ``max |projected gradient| <= gtol max(1, |f|)``.
    scale : ndarray of shape (d,), optional
        A guess of the inverse Hessian's diagonal: the first step is
        ``-scale * g`` instead of steepest descent of length up to
        :func:`_max_step`, and the BFGS updates start from it.

    Returns
    -------
    scipy.optimize.OptimizeResult
        With ``x``, ``fun``, ``nit``, ``nfev``, ``success`` and ``message``.
    """
    x = np.maximum(np.asarray(x0, dtype=float), lower)
    f, g = fun_and_grad(x)
    H0 = np.eye(x.size) if scale is None else np.diag(np.asarray(scale, dtype=float))
    H, updated, n_evaluations = H0.copy(), scale is not None, 1
    message, success, nit = "maximum number of iterations reached", False, 0
    while nit < max_iter:
        nit += 1
        pg = _projected_gradient(x, g, lower)
        pg_max, f_scale = np.max(np.abs(pg)), max(1.0, abs(f))
        if pg_max <= gtol * f_scale:
            message, success = "projected gradient below gtol", True
            break
        d, reset = _direction(H, g, pg)
        if reset:
            H, updated = H0.copy(), scale is not None
        if -(g @ d) <= _ROUNDING * f_scale:  # the quadratic model's decrease
            message, success = "predicted decrease at the rounding level of f", True
            break
        t = min(1.0, _max_step(x) / np.max(np.abs(d)))
        x_new, f_new, g_new, count = _line_search(fun_and_grad, x, f, g, d, lower, t)
        n_evaluations += count
        if x_new is not None:
            x_new, f_new, g_new, count = _extrapolate(
                fun_and_grad, x, g, lower, x_new, f_new, g_new
            )
            n_evaluations += count
        if x_new is None:
            success = pg_max <= np.sqrt(gtol) * f_scale
            message = "no decrease at the rounding level of f" if success else "line search failed"
            break
        H = _bfgs_update(H, x_new - x, g_new - g, first=not updated)
        updated = True
        x, f, g = x_new, f_new, g_new
    return OptimizeResult(
        x=x, fun=f, jac=g, nit=nit, nfev=n_evaluations, success=success, message=message
    )
