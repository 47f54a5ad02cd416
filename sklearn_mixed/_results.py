"""Tables and the printed report of a fitted mixed model."""

import numpy as np
import pandas as pd

from ._interpretation import (
    effect_ranges,
    intraclass_correlation,
    level_label,
    normal_quantile,
)
from .core.structures import covariance_to_sd_corr

__all__ = [
    "effect_ranges",
    "fixed_effects_table",
    "summary_report",
    "variance_components_table",
    "variance_shares_table",
    "zero_variance_terms",
]

# Coverage levels of the ranges printed by ``summary()``.
SUMMARY_LEVELS = (0.95, 0.99)


def fixed_effects_table(names, beta, beta_cov):
    """Estimate, standard error and t value per fixed effect."""
    se = np.sqrt(np.diag(beta_cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = beta / se
    return pd.DataFrame(
        {"estimate": beta, "std_error": se, "t_value": t}, index=pd.Index(names, name="term")
    )


def variance_components_table(term_labels, term_cov, sigma2):
    """Variance and standard deviation per (factor, term), then the residual.

    ``term_labels``: per term, the factor's name and the names of its covariates.
    """
    rows = []
    for (factor, covariates), cov in zip(term_labels, term_cov, strict=True):
        for name, var in zip(covariates, np.diag(cov), strict=True):
            rows.append((factor, name, float(var)))
    rows.append(("Residual", "", float(sigma2)))
    variance = np.array([r[2] for r in rows])
    index = pd.MultiIndex.from_tuples([r[:2] for r in rows], names=["factor", "term"])
    return pd.DataFrame(
        {"variance": variance, "std_dev": np.sqrt(np.clip(variance, 0.0, None))}, index=index
    )


def variance_shares_table(group_names, term_cov, sigma2):
    """Random-intercept variance of each factor and the residual variance, with
    each one's share of their total (the shares sum to 1)."""
    variance = np.array([float(cov[0, 0]) for cov in term_cov] + [float(sigma2)])
    total = variance.sum()
    return pd.DataFrame(
        {
            "variance": variance,
            "std_dev": np.sqrt(np.clip(variance, 0.0, None)),
            "share": variance / total if total > 0 else np.full(variance.size, np.nan),
        },
        index=pd.Index(list(group_names) + ["Residual"], name="factor"),
    )


def zero_variance_terms(terms, term_cov, sigma2, tol=1e-10):
    """``factor term`` labels whose estimated variance is (numerically) 0.

    ``terms`` with ``name`` and ``covariate_names``, ``term_cov`` their
    covariance matrices: relative to the largest variance (and at least 1).
    """
    variances = [np.diag(cov) for cov in term_cov]
    scale = max([float(sigma2), 1.0] + [float(v.max()) for v in variances if v.size])
    return [
        f"{t.name} {name}"
        for t, v in zip(terms, variances, strict=True)
        for name, value in zip(t.covariate_names, v, strict=True)
        if value <= tol * scale
    ]


def format_random_effects(est):
    """lme4's variance-component table; no correlations for diagonal terms."""
    width = max([len("Residual")] + [len(f) for f in est.group_names_])
    names_width = max([len("Name")] + [len(c) for df in est.random_effects_.values() for c in df])
    lines = [
        f" {'Groups':<{width}} {'Name':<{names_width}} {'Variance':>10} {'Std.Dev.':>10}  Corr"
    ]
    for term in est.model_.terms:
        factor = term.name
        cov = est.random_effects_cov_[factor]
        sd, corr = covariance_to_sd_corr(cov)
        for i, name in enumerate(term.covariate_names):
            label = factor if i == 0 else ""
            pairs = [j for j in range(i) if term.structure.correlated(i, j)]
            first = min(pairs, default=i)
            corr_txt = " ".join(
                f"{corr[i, j]:5.2f}" if term.structure.correlated(i, j) else " " * 5
                for j in range(first, i)
            )
            row = f" {label:<{width}} {name:<{names_width}} {cov[i, i]:10.4g} {sd[i]:10.4g}"
            lines.append(f"{row}  {corr_txt}".rstrip())
    sigma2 = getattr(est, "residual_variance_", None)  # GLMMs have no residual variance
    if sigma2 is not None:
        lines.append(
            f" {'Residual':<{width}} {'':<{names_width}} {sigma2:10.4g} {np.sqrt(sigma2):10.4g}"
        )
    return lines


def _format_ranges(est, levels=SUMMARY_LEVELS):
    """One line per term: the first level's range in words, then the others' bounds."""
    z = [normal_quantile(level) for level in levels]
    pct = [f"{level_label(level)}%" for level in levels]
    zs = ", ".join(f"{zi:.2f} for {p}" for zi, p in zip(z, pct, strict=True))
    lines = [f"Ranges (center +- z x std. dev.; z = {zs}):"]
    for (factor, term), row in effect_ranges(est, levels).iterrows():
        if factor == "Residual":
            width = [f"+- {zi * row.std_dev:.4g}" for zi in z]
            extra = "".join(f"; {p} within {w}" for p, w in zip(pct[1:], width[1:], strict=True))
            lines.append(
                f" {pct[0]} of one group's observations lie within {width[0]} of that "
                f"group's own mean (fixed part plus random effects){extra}"
            )
            continue
        bounds = [
            f"[{row[f'lower_{level_label(v)}']:.4g}, {row[f'upper_{level_label(v)}']:.4g}]"
            for v in levels
        ]
        extra = "".join(f"; {p} in {b}" for p, b in zip(pct[1:], bounds[1:], strict=True))
        lines.append(
            f" {pct[0]} of {factor} {term} values lie in {row.center:.4g} +- "
            f"{z[0] * row.std_dev:.4g} = {bounds[0]}{extra}"
        )
    return lines


def _format_intraclass_correlation(est):
    """ICC per factor; the same-level column only when some factor is nested."""
    icc = intraclass_correlation(est)
    nested = not np.allclose(icc["icc"], icc["icc_same_level"], rtol=0, atol=1e-12)
    slopes = any(est.random_slope_names_.values())
    width = max(len("Factor"), *(len(str(f)) for f in icc.index))
    title = "Intraclass correlation" + (" (at x = 0: slopes vary by group)" if slopes else "")
    header = f" {'Factor':<{width}} {'ICC':>6}" + ("  Same level" if nested else "")
    lines = [f"{title}:", header]
    for factor, row in icc.iterrows():
        same = f"  {row.icc_same_level:10.3f}" if nested else ""
        lines.append(f" {factor:<{width}} {row.icc:6.3f}{same}")
    return lines


def _format_variance_shares(est):
    """Each factor's levels, variance and share of the total variance."""
    shares = est.variance_shares_
    width = max(len("Factor"), *(len(str(f)) for f in shares.index))
    lines = [
        "Variance shares:",
        f" {'Factor':<{width}} {'Levels':>7} {'Variance':>10} {'Std.Dev.':>10} {'Share':>7}",
    ]
    for factor, row in shares.iterrows():
        levels = str(est.n_groups_[factor]) if factor in est.n_groups_ else ""
        lines.append(
            f" {factor:<{width}} {levels:>7} {row.variance:10.4g} {row.std_dev:10.4g} "
            f"{100 * row.share:6.1f}%"
        )
    return lines


def _header(est):
    """Title, criterion and information criteria (not computed by approximate fits)."""
    crit = "REML" if est.method == "reml" else "maximum likelihood"
    if getattr(est, "approximate_", False):
        lines = [f"Linear mixed model fit by {crit} ({type(est).__name__}, approximate)"]
        if not np.isfinite(est.log_likelihood_):
            return lines + ["Iterative solver: log-likelihood, AIC and BIC not computed"]
    else:
        lines = [f"Linear mixed model fit by {crit} ({type(est).__name__})"]
    if est.method == "reml":
        lines.append(f"REML criterion at convergence: {est.deviance_:.4f}")
    lines.append(
        f"log-likelihood: {est.log_likelihood_:.4f}   AIC: {est.aic_:.4f}   BIC: {est.bic_:.4f}"
    )
    se = getattr(est, "log_likelihood_se_", 0.0)
    if getattr(est, "approximate_", False) and se > 0:
        lines.append(f"(a stochastic Lanczos estimate, standard error {se:.2g})")
    return lines


def summary_report(est):
    """lme4-style text summary of a fitted mixed-model regressor."""
    lines = _header(est)
    if est.group_names_:
        lines += ["", "Random effects:"] + format_random_effects(est)
        groups = ", ".join(f"{g}, {n}" for g, n in est.n_groups_.items())
        lines.append(f"Number of obs: {est.n_obs_}, groups:  {groups}")
        for inner, outer in est.nested_:
            lines.append(f" ({inner} is nested in {outer})")
        if getattr(est, "variance_shares_", None) is not None:
            lines += [""] + _format_variance_shares(est)
    else:
        lines.append(
            f"No grouping factors; residual std. dev. {np.sqrt(est.residual_variance_):.4g}"
        )
    lines += ["", "Fixed effects:"]
    fe = est.fixed_effects_.rename(
        columns={"estimate": "Estimate", "std_error": "Std. Error", "t_value": "t value"}
    ).rename_axis(None)
    table = fe.to_string(float_format=lambda v: f"{v:.4f}")
    lines += ["  " + line.rstrip() for line in table.splitlines()]
    if est.group_names_:
        lines += [""] + _format_ranges(est)
        lines += [""] + _format_intraclass_correlation(est)
    status = "converged" if est.converged_ else "did NOT converge"
    solver = "Iterative solver" if getattr(est, "solver_", None) == "iterative" else "Optimizer"
    plural = "" if est.n_iter_ == 1 else "s"
    lines += ["", f"{solver} {status} in {est.n_iter_} iteration{plural}."]
    if est.singular_:
        lines.append("boundary (singular) fit: see SingularFitWarning")
    return "\n".join(lines)
