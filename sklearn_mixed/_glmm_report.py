"""The printed report of a fitted GLMM, laid out as lme4's ``summary(glmer(...))``."""

from ._results import format_random_effects

__all__ = ["summary_report"]


def _header(est):
    fit = est.model_.result
    approximation = (
        "Laplace Approximation"
        if fit.nagq == 1
        else f"Adaptive Gauss-Hermite Quadrature, nAGQ = {fit.nagq}"
    )
    if fit.solver == "iterative":
        approximation += "; iterative solver"
    family = est.model_.family
    values = (est.aic_, est.bic_, est.log_likelihood_, est.deviance_)
    lines = [
        f"Generalized linear mixed model fit by maximum likelihood ({approximation}) "
        f"[{type(est).__name__}]",
        f" Family: {family.name}  ( {family.link} )",
        f" {'AIC':>10} {'BIC':>10} {'logLik':>10} {'deviance':>10}",
        " " + " ".join(f"{v:10.4f}" for v in values),
    ]
    if fit.deviance_se > 0:
        lines.append(f" (log-determinant by stochastic Lanczos quadrature, logLik standard "
                     f"error {est.log_likelihood_se_:.2g})")  # fmt: skip
    return lines


def _fixed_effects(est):
    table = est.fixed_effects_.rename(
        columns={"estimate": "Estimate", "std_error": "Std. Error", "z_value": "z value",
                 "p_value": "Pr(>|z|)"}
    ).rename_axis(None)  # fmt: skip
    formats = {"Pr(>|z|)": lambda v: f"{v:.3g}"}
    text = table.to_string(formatters=formats, float_format=lambda v: f"{v:.4f}", line_width=None)
    return ["  " + line.rstrip() for line in text.splitlines()]


def summary_report(est):
    """lme4-style text summary of a fitted GLMM estimator."""
    lines = _header(est)
    if est.group_names_:
        lines += ["", "Random effects:"] + format_random_effects(est)
        groups = "; ".join(f"{g}, {n}" for g, n in est.n_groups_.items())
        lines.append(f"Number of obs: {est.n_obs_}, groups:  {groups}")
        for inner, outer in est.nested_:
            lines.append(f" ({inner} is nested in {outer})")
    else:
        lines.append(f"No grouping factors (a GLM); number of obs: {est.n_obs_}")
    lines += ["", "Fixed effects:"] + _fixed_effects(est)
    status = "converged" if est.converged_ else "did NOT converge"
    plural = "" if est.n_iter_ == 1 else "s"
    lines += ["", f"Optimizer {status} in {est.n_iter_} iteration{plural}."]
    if est.singular_:
        lines.append("boundary (singular) fit: see SingularFitWarning")
    fit = est.model_.result
    if fit.solver == "iterative":
        lines.append("standard errors and conditional variances approximate (iterative solver)")
    elif not fit.hessian_used and est.group_names_:
        lines.append("standard errors from the PIRLS factor (Hessian not positive definite)")
    return "\n".join(lines)
