#!/usr/bin/env Rscript
## lme4 confidence-interval references for tests/test_confint.py.
##
## Run from the project root:   Rscript tools/make_confint_references.R
##
## Writes tests/data/lme4_confint/<id>.json, one per model, and README.md.
## Each JSON holds the model (data set of sklearn_mixed.datasets, response,
## fixed-effect columns, grouping factors, random slopes, covariance
## structure, REML), and under "intervals" one entry per call
## confint(fit, method = ..., level = ..., oldNames = FALSE): the call, the
## parameter names (rownames) and the lower and upper ends (null for NA).
## "exact_fixed" holds, for the fixed effects, the ends of the exact ML
## profile (uniroot on the deviance of refits with the fixed effect as an
## offset), to separate lme4's spline interpolation from other differences;
## "exact_sd" (Dyestuff) the same for the sd of the random intercept.
## jsonlite with digits = NA (full precision).

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

out_dir <- file.path("tests", "data", "lme4_confint")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
lme4_version <- as.character(packageVersion("lme4"))
r_version <- R.version.string

models <- list(
  list(id = "sleepstudy_reml", data = "sleepstudy", df = lme4::sleepstudy,
       formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE,
       y = "Reaction", X = list("Days"), groups = list("Subject"),
       random_slopes = list(Subject = list("Days")),
       covariance = list(Subject = "unstructured"),
       calls = list(list(method = "profile", level = 0.95),
                    list(method = "Wald", level = 0.95),
                    list(method = "profile", level = 0.9))),
  list(id = "sleepstudy_diag_ml", data = "sleepstudy", df = lme4::sleepstudy,
       formula = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", REML = FALSE,
       y = "Reaction", X = list("Days"), groups = list("Subject"),
       random_slopes = list(Subject = list("Days")),
       covariance = list(Subject = "diagonal"),
       calls = list(list(method = "profile", level = 0.95),
                    list(method = "Wald", level = 0.95))),
  list(id = "penicillin_reml", data = "penicillin", df = lme4::Penicillin,
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", REML = TRUE,
       y = "diameter", X = list(), groups = list("plate", "sample"),
       random_slopes = setNames(list(), character(0)),
       covariance = list(plate = "unstructured", sample = "unstructured"),
       calls = list(list(method = "profile", level = 0.95))),
  list(id = "dyestuff_reml", data = "dyestuff", df = lme4::Dyestuff,
       formula = "Yield ~ 1 + (1 | Batch)", REML = TRUE,
       y = "Yield", X = list(), groups = list("Batch"),
       random_slopes = setNames(list(), character(0)),
       covariance = list(Batch = "unstructured"),
       calls = list(list(method = "profile", level = 0.95),
                    list(method = "profile", level = 0.9))),
  list(id = "dyestuff2_reml", data = "dyestuff2", df = lme4::Dyestuff2,
       formula = "Yield ~ 1 + (1 | Batch)", REML = TRUE,
       y = "Yield", X = list(), groups = list("Batch"),
       random_slopes = setNames(list(), character(0)),
       covariance = list(Batch = "unstructured"),
       calls = list(list(method = "profile", level = 0.95)))
)

interval_entry <- function(fit, call) {
  ci <- suppressMessages(suppressWarnings(
    confint(fit, method = call$method, level = call$level, oldNames = FALSE)))
  list(call = sprintf("confint(fit, method = \"%s\", level = %s, oldNames = FALSE)",
                      call$method, call$level),
       method = call$method, level = call$level,
       names = as.list(rownames(ci)), columns = as.list(colnames(ci)),
       lower = as.list(unname(ci[, 1])), upper = as.list(unname(ci[, 2])))
}

## Exact ML profile of each fixed effect: zeta(b) from refits with x_j b as
## an offset, and its crossings of -+z by uniroot.
exact_fixed_ends <- function(fit, level) {
  ml <- refitML(fit)
  d0 <- deviance(ml)
  X <- getME(ml, "X")
  beta <- fixef(ml)
  se <- sqrt(diag(as.matrix(vcov(ml))))
  z <- qnorm(0.5 + level / 2)
  data <- model.frame(ml)
  re_part <- paste0("(", sapply(findbars(formula(ml)), deparse), ")", collapse = " + ")
  y_name <- as.character(formula(ml)[[2]])
  ends <- list()
  for (j in seq_along(beta)) {
    zeta <- function(b) {
      d <- data
      d$.off <- X[, j] * b
      others <- X[, -j, drop = FALSE]
      d$.others <- others
      rhs <- if (ncol(others)) "0 + .others" else "0"
      f <- as.formula(paste(y_name, "~", rhs, "+", re_part, "+ offset(.off)"))
      g <- suppressMessages(suppressWarnings(lmer(f, d, REML = FALSE)))
      sign(b - beta[j]) * sqrt(max(deviance(g) - d0, 0))
    }
    lo <- uniroot(function(b) zeta(b) + z, beta[j] - c(3, 0.5) * z * se[j], tol = 1e-10)$root
    hi <- uniroot(function(b) zeta(b) - z, beta[j] + c(0.5, 3) * z * se[j], tol = 1e-10)$root
    ends[[names(beta)[j]]] <- list(lower = lo, upper = hi)
  }
  list(level = level, ends = ends)
}

## Exact ML profile of the sd of a model with one random intercept: lme4's
## devfun2 (the ML deviance in (sd, sigma), beta profiled out) minimized over
## sigma by optimize, its signed root's crossings of -+z by uniroot.
exact_sd_ends <- function(fit, level) {
  dd <- lme4:::devfun2(fit)
  base <- attr(dd, "basedev")
  opt <- attr(dd, "optimum")
  z <- qnorm(0.5 + level / 2)
  prof <- function(s) {
    optimize(function(sig) dd(c(s, sig)), opt[2] * c(0.2, 5), tol = 1e-12)$objective
  }
  zeta <- function(s) sign(s - opt[1]) * sqrt(max(prof(s) - base, 0))
  list(level = level, name = names(getME(fit, "theta")),
       lower = uniroot(function(s) zeta(s) + z, c(1e-3, opt[1]), tol = 1e-12)$root,
       upper = uniroot(function(s) zeta(s) - z, opt[1] * c(1, 10), tol = 1e-12)$root)
}

readme <- c(
  "# lme4 confint references",
  "",
  sprintf("Generated by `Rscript tools/make_confint_references.R` (run from the project root) with %s, lme4 %s, jsonlite %s.",
          r_version, lme4_version, as.character(packageVersion("jsonlite"))),
  "",
  "Each JSON: the model (`data`: the `sklearn_mixed.datasets` loader's data set, `y`, `X`, `groups`, `random_slopes`, `covariance`, `REML`), `intervals` (one entry per `confint(fit, method, level, oldNames = FALSE)` call: `names`, `lower`, `upper`, null for NA) `exact_fixed` (the fixed effects' exact ML-profile ends by `uniroot` on offset refits, level 0.95) and, for Dyestuff, `exact_sd` (the sd's exact ML-profile ends: lme4's `devfun2` minimized over sigma by `optimize`, then `uniroot`).",
  "",
  "| file | model |",
  "| --- | --- |")

for (m in models) {
  fit <- lmer(as.formula(m$formula), m$df, REML = m$REML)
  out <- list(
    id = m$id, data = m$data, formula = m$formula, REML = m$REML,
    y = m$y, X = m$X, groups = m$groups, random_slopes = m$random_slopes,
    covariance = m$covariance,
    lme4_version = lme4_version, r_version = r_version,
    provenance = sprintf("lmer(%s, %s, REML = %s); confint(fit, ..., oldNames = FALSE); lme4 %s, %s",
                         m$formula, m$data, m$REML, lme4_version, r_version),
    intervals = lapply(m$calls, function(call) interval_entry(fit, call)),
    exact_fixed = exact_fixed_ends(fit, 0.95))
  if (m$id == "dyestuff_reml") out$exact_sd <- exact_sd_ends(fit, 0.95)
  writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
             file.path(out_dir, paste0(m$id, ".json")))
  ## Exact ML profile of the sd of a model with one random intercept: lme4's
## devfun2 (the ML deviance in (sd, sigma), beta profiled out) minimized over
## sigma by optimize, its signed root's crossings of -+z by uniroot.
exact_sd_ends <- function(fit, level) {
  dd <- lme4:::devfun2(fit)
  base <- attr(dd, "basedev")
  opt <- attr(dd, "optimum")
  z <- qnorm(0.5 + level / 2)
  prof <- function(s) {
    optimize(function(sig) dd(c(s, sig)), opt[2] * c(0.2, 5), tol = 1e-12)$objective
  }
  zeta <- function(s) sign(s - opt[1]) * sqrt(max(prof(s) - base, 0))
  list(level = level, name = names(getME(fit, "theta")),
       lower = uniroot(function(s) zeta(s) + z, c(1e-3, opt[1]), tol = 1e-12)$root,
       upper = uniroot(function(s) zeta(s) - z, opt[1] * c(1, 10), tol = 1e-12)$root)
}

readme <- c(readme, sprintf("| `%s.json` | `lmer(%s, REML = %s)` |", m$id, m$formula, m$REML))
}
writeLines(readme, file.path(out_dir, "README.md"))
