#!/usr/bin/env Rscript
## lme4 reference numbers for tests/test_interpretation.py: intraclass
## correlations from VarCorr, and no / complete / partial pooling per level.
##
## Run from the project root:   Rscript tools/make_interpretation_references.R
## Writes tests/data/interpretation/lme4_pooling.json (R 4.2, lme4 1.1-31).
##
## Definitions (those of sklearn_mixed._interpretation):
##   icc_f            = tau_f^2 / (sum_g tau_g^2 + sigma^2), tau^2 the intercept variances
##   icc_same_level_f = the same with tau_f^2 plus the variances of the factors f is nested in
##   no pooling       = fixed effect + per-level least squares of
##                      y - X beta - (other factors' Z b) on the factor's covariates
##                      (lmList(Reaction ~ Days | Subject) for (Days | Subject))
##   complete pooling = coef(lm(y ~ fixed part))
##   partial pooling  = coef(fit)[[factor]]

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

out <- file.path("tests", "data", "interpretation", "lme4_pooling.json")
dir.create(dirname(out), recursive = TRUE, showWarnings = FALSE)

intercept_variances <- function(fit) {
  vc <- VarCorr(fit)
  sapply(vc, function(m) m[1, 1])
}

icc_table <- function(fit, nested_in = list()) {
  tau2 <- intercept_variances(fit)
  total <- sum(tau2) + sigma(fit)^2
  same <- sapply(names(tau2), function(f) sum(tau2[c(f, nested_in[[f]])]) / total)
  list(factor = names(tau2), variance = unname(tau2),
       icc = unname(tau2 / total), icc_same_level = unname(same))
}

by_level <- function(m) list(levels = rownames(m), names = I(colnames(m)), values = unname(as.matrix(m)))

## sleepstudy, (Days | Subject): no pooling is lmList's per-subject regression
fm_corr <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
sleep_corr <- list(
  call = "lmer(Reaction ~ Days + (Days | Subject), sleepstudy); lmList(Reaction ~ Days | Subject, sleepstudy)",
  icc = icc_table(fm_corr),
  no_pooling = by_level(coef(lmList(Reaction ~ Days | Subject, sleepstudy))),
  partial_pooling = by_level(coef(fm_corr)$Subject),
  complete_pooling = as.list(coef(lm(Reaction ~ Days, sleepstudy))))

## sleepstudy, (1 | Subject): no pooling is the subject mean of Reaction - Days * beta_Days
fm_int <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy)
own <- tapply(sleepstudy$Reaction - fixef(fm_int)[["Days"]] * sleepstudy$Days,
              sleepstudy$Subject, mean)
sleep_int <- list(
  call = "lmer(Reaction ~ Days + (1 | Subject), sleepstudy)",
  icc = icc_table(fm_int),
  no_pooling = by_level(matrix(own, dimnames = list(names(own), "(Intercept)"))),
  partial_pooling = by_level(coef(fm_int)$Subject[, "(Intercept)", drop = FALSE]),
  complete_pooling = as.list(coef(lm(Reaction ~ Days, sleepstudy))))

## Pastes, (1 | batch/cask): each factor's levels given the other factor's modes
fm_pastes <- lmer(strength ~ 1 + (1 | batch/cask), Pastes)
re <- ranef(fm_pastes)
cask <- paste(Pastes$batch, Pastes$cask, sep = ":")
b_batch <- re$batch[as.character(Pastes$batch), 1]
b_cask <- re[["cask:batch"]][paste(Pastes$cask, Pastes$batch, sep = ":"), 1]
r <- Pastes$strength - fixef(fm_pastes)[[1]]
own_batch <- fixef(fm_pastes)[[1]] + tapply(r - b_cask, Pastes$batch, mean)
own_cask <- fixef(fm_pastes)[[1]] + tapply(r - b_batch, cask, mean)
pastes <- list(
  call = "lmer(strength ~ 1 + (1 | batch/cask), Pastes); factor names batch and batch:cask",
  icc = icc_table(fm_pastes, nested_in = list("cask:batch" = "batch")),
  no_pooling_batch = by_level(matrix(own_batch, dimnames = list(names(own_batch), "(Intercept)"))),
  no_pooling_cask = by_level(matrix(own_cask, dimnames = list(names(own_cask), "(Intercept)"))),
  complete_pooling = as.list(coef(lm(strength ~ 1, Pastes))))

## Penicillin, (1 | plate) + (1 | sample), crossed
fm_pen <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)
penicillin <- list(
  call = "lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)",
  icc = icc_table(fm_pen))

provenance <- sprintf("Rscript tools/make_interpretation_references.R; R %s.%s, lme4 %s",
                      R.version$major, R.version$minor, packageVersion("lme4"))
write(toJSON(list(provenance = provenance, sleep_corr = sleep_corr, sleep_int = sleep_int,
                  pastes = pastes, penicillin = penicillin),
             digits = NA, auto_unbox = TRUE, pretty = TRUE), out)
cat("wrote", out, "\n")
