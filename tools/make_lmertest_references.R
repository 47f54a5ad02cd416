#!/usr/bin/env Rscript
## Generate the references of tests/test_model_comparison.py (lme4's anova)
## and tests/test_satterthwaite.py (lmerTest's Satterthwaite t-tests).
##
## Run from the project root:   Rscript tools/make_lmertest_references.R
##
## The models are fitted to the CSV files the Python tests read
## (sklearn_mixed/datasets/data/ and tests/data/lme4_extra/), grouping
## columns read as factors of strings.  Writes under tests/data/lmertest/:
##   anova_<id>.json        anova(m0, m1, refit = ...): one entry per row, in
##                          lme4's order (by npar): npar, AIC, BIC, logLik,
##                          deviance, Chisq, Df, p (NA -> null)
##   satterthwaite_<id>.json  coef(summary(lmerTest::lmer(...))): per fixed
##                          effect estimate, se, df, t, p (Pr(>|t|)), as
##                          arrays (also of length 1); theta and sigma
##   README.md              provenance, one line per file
## jsonlite with digits = NA (full precision).

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})

out_dir <- file.path("tests", "data", "lmertest")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
versions <- sprintf("R %s.%s, lme4 %s, lmerTest %s", R.version$major, R.version$minor,
                    packageVersion("lme4"), packageVersion("lmerTest"))

read_data <- function(path, factors) {
  df <- read.csv(path, colClasses = setNames(rep("character", length(factors)), factors))
  for (f in factors) df[[f]] <- factor(df[[f]])
  df
}
pkg_data <- file.path("sklearn_mixed", "datasets", "data")
sleep <- read_data(file.path(pkg_data, "sleepstudy.csv"), "Subject")
penicillin <- read_data(file.path(pkg_data, "penicillin.csv"), c("plate", "sample"))
hsb82 <- read_data(file.path(pkg_data, "hsb82.csv"), "school")
ergo <- read_data(file.path("tests", "data", "lme4_extra", "ergostool.csv"), "Subject")

provenance <- character()
write_ref <- function(name, value, call) {
  value$call <- call
  value$provenance <- versions
  write(toJSON(value, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE),
        file.path(out_dir, paste0(name, ".json")))
  provenance[[length(provenance) + 1]] <<- sprintf("| `%s.json` | `%s` |", name,
                                                    gsub("|", "\\|", call, fixed = TRUE))
}

## ------------------------------------------------------------------ anova
anova_ref <- function(id, data, formulas, refit, call) {
  fits <- lapply(formulas, function(f) lme4::lmer(as.formula(f), data = data))
  names(fits) <- paste0("m", seq_along(fits) - 1)
  tab <- suppressMessages(do.call(anova, c(unname(fits), list(refit = refit,
                                           model.names = names(fits)))))
  rows <- lapply(seq_len(nrow(tab)), function(i) list(
    model = rownames(tab)[i], formula = formulas[[match(rownames(tab)[i], names(fits))]],
    npar = tab$npar[i], AIC = tab$AIC[i], BIC = tab$BIC[i], logLik = tab$logLik[i],
    deviance = tab$deviance[i], Chisq = tab$Chisq[i], Df = tab$Df[i],
    p = tab[["Pr(>Chisq)"]][i]))
  write_ref(paste0("anova_", id), list(refit = refit, rows = rows), call)
}

sleep_int <- "Reaction ~ Days + (1 | Subject)"
sleep_corr <- "Reaction ~ Days + (Days | Subject)"
anova_ref("sleep_random_refit", sleep, list(sleep_int, sleep_corr), TRUE,
          "anova(lmer(Reaction ~ Days + (1 | Subject), sleepstudy), lmer(Reaction ~ Days + (Days | Subject), sleepstudy))")
anova_ref("sleep_random_norefit", sleep, list(sleep_int, sleep_corr), FALSE,
          "anova(lmer(Reaction ~ Days + (1 | Subject), sleepstudy), lmer(Reaction ~ Days + (Days | Subject), sleepstudy), refit = FALSE)")
## A fixed-effect comparison the estimators can express (a random slope is
## always a fixed-effect column too, so Reaction ~ 1 + (Days | Subject) is not).
sleep_null <- "Reaction ~ 1 + (1 | Subject)"
anova_ref("sleep_fixed", sleep, list(sleep_null, sleep_int), TRUE,
          "anova(lmer(Reaction ~ 1 + (1 | Subject), sleepstudy), lmer(Reaction ~ Days + (1 | Subject), sleepstudy))")
anova_ref("sleep_chain", sleep, list(sleep_corr, sleep_null, sleep_int), TRUE,
          "anova(lmer(Reaction ~ Days + (Days | Subject), sleepstudy), lmer(Reaction ~ 1 + (1 | Subject), sleepstudy), lmer(Reaction ~ Days + (1 | Subject), sleepstudy))")
anova_ref("penicillin_crossed", penicillin,
          list("diameter ~ 1 + (1 | plate)", "diameter ~ 1 + (1 | plate) + (1 | sample)"), TRUE,
          "anova(lmer(diameter ~ 1 + (1 | plate), Penicillin), lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin))")

## ---------------------------------------------------------- Satterthwaite
satterthwaite_ref <- function(id, formula, data, reml, call) {
  fit <- lmerTest::lmer(as.formula(formula), data = data, REML = reml)
  stopifnot(inherits(fit, "lmerModLmerTest"))
  co <- coef(summary(fit, ddf = "Satterthwaite"))
  write_ref(paste0("satterthwaite_", id), list(
    formula = formula, reml = reml, names = I(rownames(co)),
    estimate = I(unname(co[, "Estimate"])), se = I(unname(co[, "Std. Error"])),
    df = I(unname(co[, "df"])), t = I(unname(co[, "t value"])),
    p = I(unname(co[, "Pr(>|t|)"])), theta = I(unname(getME(fit, "theta"))),
    sigma = sigma(fit)), call)
}

satterthwaite_ref("sleep_corr_reml", sleep_corr, sleep, TRUE,
                  "summary(lmerTest::lmer(Reaction ~ Days + (Days | Subject), sleepstudy))")
satterthwaite_ref("sleep_corr_ml", sleep_corr, sleep, FALSE,
                  "summary(lmerTest::lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE))")
satterthwaite_ref("sleep_uncorr_reml", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
                  sleep, TRUE,
                  "summary(lmerTest::lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), sleepstudy))")
satterthwaite_ref("hsb82_corr_reml", "mAch ~ ses + (1 + ses | school)", hsb82, TRUE,
                  "summary(lmerTest::lmer(mAch ~ ses + (1 + ses | school), mlmRev::Hsb82))")
satterthwaite_ref("ergostool_reml", "effort ~ TypeT2 + TypeT3 + TypeT4 + (1 | Subject)", ergo, TRUE,
                  "summary(lmerTest::lmer(effort ~ Type + (1 | Subject), nlme::ergoStool))")
satterthwaite_ref("penicillin_reml", "diameter ~ 1 + (1 | plate) + (1 | sample)", penicillin, TRUE,
                  "summary(lmerTest::lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin))")

writeLines(c(
  "# lme4 anova and lmerTest references",
  "",
  "Written by `Rscript tools/make_lmertest_references.R` (run from the project root) with",
  paste0(versions, ", default `lmer` settings, on the CSV files of"),
  "`sklearn_mixed/datasets/data/` and `tests/data/lme4_extra/ergostool.csv`.",
  "Read by `tests/test_model_comparison.py` and `tests/test_satterthwaite.py`.",
  "",
  "| file | R call |", "| --- | --- |", unlist(provenance)),
  file.path(out_dir, "README.md"))
