"""Confidence intervals of a fitted mixed model, as lme4's ``confint.merMod``.

Three methods, for lme4's parameters (``oldNames = FALSE``): per grouping
factor the standard deviations ``sd_<term>|<factor>`` and correlations
``cor_<term2>.<term1>|<factor>`` of its random effects, the residual standard
deviation ``sigma``, then the fixed effects by name.

- ``"wald"``: ``beta +- z SE(beta)``; NaN for the variance parameters.
- ``"profile"``: profile-likelihood intervals (:mod:`sklearn_mixed.core.profile`).
- ``"bootstrap"``: parametric bootstrap percentile intervals: responses
  simulated from the fitted model, refitted by the same criterion.
"""

import sys
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import norm
from sklearn.utils.validation import check_is_fitted

from ._interpretation import normal_quantile
from .core.influence import model_rows
from .core.profile import VarianceParameters, profile_intervals

__all__ = ["confint", "parameter_names"]

METHODS = ("wald", "profile", "bootstrap")
# Default relative tolerance of a bootstrap refit when the estimator's tol is None.
_REFIT_TOL = 1e-10


def parameter_names(estimator):
    """lme4's names (``confint(fit, oldNames = FALSE)``) of a fitted model's parameters.

    Parameters
    ----------
    estimator : fitted MixedLinearRegressor or CrossedEffectsRegressor

    Returns
    -------
    names : list of str
        Per grouping factor (in the order of ``group_names_``) its standard
        deviations and correlations in the order of its ``theta`` (column by
        column of the lower triangle), then ``"sigma"``, then the fixed effects.

    Examples
    --------
    >>> from sklearn_mixed import MixedLinearRegressor
    >>> from sklearn_mixed.datasets import load_sleepstudy
    >>> from sklearn_mixed.inference import parameter_names
    >>> df = load_sleepstudy()
    >>> model = MixedLinearRegressor(random_slopes=["Days"])
    >>> model = model.fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
    >>> parameter_names(model)  # doctest: +NORMALIZE_WHITESPACE
    ['sd_(Intercept)|Subject', 'cor_Days.(Intercept)|Subject', 'sd_Days|Subject',
     'sigma', '(Intercept)', 'Days']
    """
    check_is_fitted(estimator)
    names = []
    for term in estimator.model_.terms:
        names += term.structure.parameter_names(term.covariate_names, term.name)
    return names + ["sigma"] + list(estimator.fixed_effect_names_)


def confint(
    estimator,
    method="wald",
    level=0.95,
    *,
    n_boot=1000,
    random_state=None,
    n_jobs=None,
    progress=False,
):
    """Confidence intervals of a fitted model's parameters, as lme4's ``confint``.

    Parameters
    ----------
    estimator : fitted MixedLinearRegressor or CrossedEffectsRegressor
    method : {"wald", "profile", "bootstrap"}, default="wald"
        ``"wald"``: ``beta +- z SE`` for the fixed effects, NaN for the
        variance parameters (lme4's ``method = "Wald"``).  ``"profile"``:
        profile-likelihood intervals (lme4's default ``"profile"``); as lme4,
        the maximum-likelihood deviance is profiled even for a REML fit (lme4
        calls ``refitML``).  An end the profile does not reach within a
        parameter's range is that bound (0 for a standard deviation, +-1 for
        a correlation).  ``"bootstrap"``: parametric bootstrap percentile
        intervals (lme4's ``method = "boot", boot.type = "perc"``):
        responses simulated from the fitted model (new random effects and
        residuals) and refitted by the same criterion (REML or ML).
    level : float, default=0.95
        Confidence level.
    n_boot : int, default=1000
        Bootstrap replicates (``"bootstrap"`` only; lme4's ``nsim``).
    random_state : int, numpy Generator or RandomState, default=None
        Seed of the bootstrap.  Each replicate draws from its own stream of
        one ``SeedSequence``, so results do not depend on ``n_jobs``.
    n_jobs : int, default=None
        Parallel bootstrap refits (joblib; ``None`` is 1, ``-1`` all cores).
    progress : bool, default=False
        Print a progress bar of the bootstrap to stderr.

    Returns
    -------
    intervals : DataFrame
        Indexed by the parameter names of :func:`parameter_names`, with
        columns named as R's (``"2.5 %"``, ``"97.5 %"`` for ``level=0.95``).

    Examples
    --------
    >>> from sklearn_mixed import MixedLinearRegressor
    >>> from sklearn_mixed.datasets import load_dyestuff
    >>> from sklearn_mixed.inference import confint
    >>> df = load_dyestuff()
    >>> model = MixedLinearRegressor().fit(df[[]], df["Yield"], groups=df["Batch"])
    >>> confint(model, method="profile").round(2)
                            2.5 %   97.5 %
    sd_(Intercept)|Batch    12.20    84.06
    sigma                   38.23    67.66
    (Intercept)           1486.45  1568.55
    """
    check_is_fitted(estimator)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if method != "wald" and getattr(estimator, "approximate_", False):
        raise ValueError(
            f"method={method!r} needs an exact fit, but this model was fitted by the "
            "approximate iterative solver (solver_='iterative'). Use method='wald' (fixed "
            "effects only), or refit with solver='exact' if the design allows it."
        )
    names = parameter_names(estimator)
    if method == "wald":
        lower, upper = _wald(estimator, level, len(names))
    elif method == "profile":
        lower, upper = _profile(estimator, level)
    else:
        lower, upper = _bootstrap(estimator, level, n_boot, random_state, n_jobs, progress)
    return pd.DataFrame(
        np.column_stack([lower, upper]), index=names, columns=_percent_labels(level)
    )


def _percent_labels(level):
    """R's column names: ``format(100 * a, digits = 3)`` of both tails, ``"%"`` appended."""
    tails = [50.0 * (1.0 - level), 50.0 * (1.0 + level)]
    texts = [f"{t:.3g}" for t in tails]
    decimals = max(len(s.split(".")[1]) if "." in s else 0 for s in texts)
    return [f"{t:.{decimals}f} %" for t in tails]


def _wald(estimator, level, n_params):
    """``beta +- z SE`` in the fixed-effect rows, NaN elsewhere."""
    z = normal_quantile(level)
    beta = estimator.model_.result.beta
    se = np.sqrt(np.diag(estimator.fixed_effects_cov_))
    lower, upper = np.full(n_params, np.nan), np.full(n_params, np.nan)
    lower[n_params - beta.size :] = beta - z * se
    upper[n_params - beta.size :] = beta + z * se
    return lower, upper


def _profile(estimator, level):
    model = estimator.model_
    if not model.terms:
        raise ValueError(
            "method='profile' profiles the random-effects parameters, but this model was "
            "fitted without groups; use method='wald' or 'bootstrap'."
        )
    result = profile_intervals(model, level)
    return result.lower, result.upper


# ------------------------------------------------------------------ bootstrap
def _bootstrap(estimator, level, n_boot, random_state, n_jobs, progress):
    """Percentile intervals of ``n_boot`` parametric bootstrap refits."""
    if int(n_boot) < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot!r}")
    model = estimator.model_
    model_rows(model, "the parametric bootstrap")
    simulator = _SimulationModel.from_model(model)
    seeds = _seed_sequence(random_state).spawn(int(n_boot))
    batch_size = max(1, len(seeds) // 40)
    batches = [seeds[i : i + batch_size] for i in range(0, len(seeds), batch_size)]
    jobs = (delayed(_refit_batch)(batch, model, simulator) for batch in batches)
    estimates, converged, done = [], [], 0
    for batch_estimates, batch_converged in Parallel(n_jobs=n_jobs, return_as="generator")(jobs):
        estimates.append(batch_estimates)
        converged.append(batch_converged)
        done += len(batch_converged)
        if progress:
            _print_progress(done, len(seeds))
    estimates, converged = np.vstack(estimates), np.concatenate(converged)
    _warn_about_replicates(estimates, converged)
    alpha = 0.5 - level / 2.0
    return np.array(
        [
            _percentile_interval(estimates[:, j], (alpha, 1.0 - alpha))
            for j in range(estimates.shape[1])
        ]
    ).T


def _seed_sequence(random_state):
    """One SeedSequence from an int, a Generator, a RandomState or None."""
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return np.random.SeedSequence(random_state)
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(random_state.integers(2**63))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(random_state.randint(2**31))
    raise ValueError(
        f"random_state must be None, an int, a numpy Generator or RandomState, got {random_state!r}"
    )


class _SimulationModel:
    """The fitted model as a generator of responses: ``X beta + Z b + eps``."""

    def __init__(self, beta, factors, sigma, parameters):
        self.beta, self.factors, self.sigma = beta, factors, sigma
        self.parameters = parameters

    @classmethod
    def from_model(cls, model):
        fit = model.result
        parameters = VarianceParameters(model.layout.structures)
        return cls(fit.beta, fit.T, np.sqrt(fit.sigma2), parameters)

    def simulate(self, rows, rng):
        """``y* = X beta + sum_t Z_t b_t* + eps*``: per level ``b* = sigma T u``,
        ``u ~ N(0, I)``, and ``eps*_i ~ N(0, sigma^2 / w_i)``."""
        y = rows.X @ self.beta
        for term, T in zip(rows.terms, self.factors, strict=True):
            b = self.sigma * rng.standard_normal((term.n_levels, term.n_coef)) @ T.T
            y += np.einsum("ik,ik->i", term.covariates, b[term.codes])
        noise = self.sigma * rng.standard_normal(rows.n)
        if rows.weights is not None:
            noise /= np.sqrt(rows.weights)
        if rows.offset is not None:
            y += rows.offset
        return y + noise

    def estimates(self, fit):
        """lme4's parameters ``(sd, cor, ..., sigma, beta)`` of a refit."""
        omega = self.parameters.from_theta(fit.theta, np.sqrt(fit.sigma2))
        return np.concatenate([omega, fit.beta])


def _refit_batch(seeds, model, simulator):
    """Estimates (NaN rows for failed refits) and convergence of each replicate.

    Each replicate reduces its simulated response and refits the model by the
    same criterion, from the fitted theta.
    """
    rows = model.data
    n_params = simulator.parameters.size + simulator.beta.size
    estimates = np.full((len(seeds), n_params), np.nan)
    converged = np.zeros(len(seeds), dtype=bool)
    with model.threads():
        for r, seed in enumerate(seeds):
            y = simulator.simulate(rows, np.random.default_rng(seed))
            try:
                fit = model.refit(reduction=rows.reduce(y), tol=_REFIT_TOL).result
            except (np.linalg.LinAlgError, ValueError, FloatingPointError):
                continue  # a failed refit stays NaN, counted in the warning
            estimates[r], converged[r] = simulator.estimates(fit), fit.converged
    return estimates, converged


def _warn_about_replicates(estimates, converged):
    failed = np.isnan(estimates).all(axis=1)
    not_converged = ~converged & ~failed
    if failed.any() or not_converged.any():
        warnings.warn(
            f"{failed.sum()} of {len(failed)} bootstrap refits failed (excluded from the "
            f"intervals) and {not_converged.sum()} did not converge (kept, as lme4's bootMer "
            "keeps them). Many of either suggest a model too complex for the data; "
            "consider simplifying the random effects.",
            UserWarning,
            stacklevel=4,
        )


def _percentile_interval(values, tails):
    """Percentile ends as ``boot.ci(type = "perc")``: the order statistics of rank
    ``(R + 1) a``, interpolated on the normal quantile scale between ranks."""
    t = np.sort(values[np.isfinite(values)])
    R = t.size
    ends = []
    for a in tails:
        rank = (R + 1) * a
        k = int(np.floor(rank))
        if R == 0:
            ends.append(np.nan)
        elif k <= 0 or k >= R:  # beyond the extremes: the extreme order statistic
            ends.append(t[0] if k <= 0 else t[-1])
        elif rank - k < 1e-9:  # an integer rank: that order statistic
            ends.append(t[k - 1])
        else:  # between ranks k and k + 1 (1-based), linear in Phi^-1(rank / (R + 1))
            q_a, q_k, q_k1 = norm.ppf([a, k / (R + 1), (k + 1) / (R + 1)])
            ends.append(t[k - 1] + (q_a - q_k) / (q_k1 - q_k) * (t[k] - t[k - 1]))
    return ends


def _print_progress(done, total, width=40):
    filled = int(width * done / total)
    bar = "#" * filled + "." * (width - filled)
    sys.stderr.write(f"\rbootstrap [{bar}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()
