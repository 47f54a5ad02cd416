"""Tables and the printed report of a fitted mixed model."""

import numpy as np
import pandas as pd
from scipy.stats import norm

from .core.covariance import covariance_to_sd_corr

__all__ = [
    "effect_ranges",
    "fixed_effects_table",
    "summary_report",
    "variance_components_table",
    "variance_shares_table",
    "zero_variance_terms",
]


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


def zero_variance_terms(components, tol=1e-10):
    """``factor/term`` labels whose estimated variance is (numerically) 0."""
    comp = components.drop(index="Residual", level="factor")
    scale = max(float(components["variance"].max()), 1.0)
    return [f"{f} {t}" for (f, t), v in comp["variance"].items() if v <= tol * scale]


def _term_center(est, term):
    """The population value around which a group's coefficient varies."""
    if term == "(Intercept)":
        return est.intercept_
    idx = list(est._feature_names()).index(term)
    return float(est.coef_[idx])


def effect_ranges(est, level=0.95):
    """Where ``level`` of the groups' coefficients (and observations) lie.

    For each factor and term, the population value ``a`` (fixed effect) and
    the standard deviation ``tau`` of the groups around it:
    ``a +- z tau`` holds ``level`` of the group coefficients.  The last row is
    the residual: ``level`` of one group's observations lie within
    ``+- z sigma`` of that group's own mean.
    """
    z = norm.ppf(0.5 + level / 2.0)
    rows = []
    for (factor, term), sd in est.variance_components_["std_dev"].items():
        center = 0.0 if factor == "Residual" else _term_center(est, term)
        rows.append((factor, term or "observations", center, sd, center - z * sd, center + z * sd))
    table = pd.DataFrame(rows, columns=["factor", "term", "center", "std_dev", "lower", "upper"])
    return table.set_index(["factor", "term"])


def _format_random_effects(est):
    """lme4's variance-component table; no correlations for diagonal terms."""
    width = max([len("Residual")] + [len(f) for f in est.group_names_])
    names_width = max([len("Name")] + [len(c) for df in est.random_effects_.values() for c in df])
    lines = [
        f" {'Groups':<{width}} {'Name':<{names_width}} {'Variance':>10} {'Std.Dev.':>10}  Corr"
    ]
    for factor in est.group_names_:
        cov = est.random_effects_cov_[factor]
        sd, corr = covariance_to_sd_corr(cov)
        correlated = est.covariance_structures_[factor] == "unstructured"
        for i, name in enumerate(est.random_effects_[factor].columns):
            label = factor if i == 0 else ""
            corr_txt = " ".join(f"{corr[i, j]:5.2f}" for j in range(i)) if correlated else ""
            row = f" {label:<{width}} {name:<{names_width}} {cov[i, i]:10.4g} {sd[i]:10.4g}"
            lines.append(f"{row}  {corr_txt}".rstrip())
    sigma2 = est.residual_variance_
    lines.append(
        f" {'Residual':<{width}} {'':<{names_width}} {sigma2:10.4g} {np.sqrt(sigma2):10.4g}"
    )
    return lines


def _format_ranges(est, level=0.95):
    z = norm.ppf(0.5 + level / 2.0)
    pct = f"{100 * level:g}%"
    lines = [f"{pct} ranges (center +- {z:.2f} x std. dev.):"]
    for (factor, term), row in effect_ranges(est, level).iterrows():
        if factor == "Residual":
            lines.append(
                f" {pct} of one group's observations lie within +- {z * row.std_dev:.4g} "
                "of that group's own mean (its fixed part plus its random effects)"
            )
        else:
            lines.append(
                f" {pct} of {factor} {term} values lie in {row.center:.4g} +- "
                f"{z * row.std_dev:.4g} = [{row.lower:.4g}, {row.upper:.4g}]"
            )
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
        lines += ["", "Random effects:"] + _format_random_effects(est)
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
    status = "converged" if est.converged_ else "did NOT converge"
    solver = "Iterative solver" if getattr(est, "solver_", None) == "iterative" else "Optimizer"
    lines += ["", f"{solver} {status} in {est.n_iter_} iterations."]
    if est.singular_:
        lines.append("boundary (singular) fit: see SingularFitWarning")
    return "\n".join(lines)
