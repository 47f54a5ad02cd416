#!/usr/bin/env Rscript
## Generate lme4 reference results on real data sets (not those in
## /work/shared/lme4) for the sklearn_mixed test suite.
##
## Run from the project root:   Rscript tools/make_lme4_references.R
##
## Writes, under tests/data/lme4_extra/:
##   <dataset>.csv          response, fixed-effect model-matrix columns (R's
##                          names, no intercept) and grouping factors as strings
##                          (nested factors also as "<outer>:<inner>" labels);
##                          one file per data set, shared by its models.
##   <id>_reml.json         lmer(..., REML = TRUE) results
##   <id>_ml.json           lmer(..., REML = FALSE) results
##   README.md              provenance, one line per file
##
## The JSON format is the one of /work/shared/lme4/ref (see its README), plus
## "columns" (CSV column names: y, X, groups), "random_slopes" (factor -> X
## columns with a random slope) and "covariance" (factor -> "unstructured" or
## "diagonal").  jsonlite with digits = NA (full precision) and auto_unbox, so
## 1-element vectors are scalars as in the shared files; the three new fields
## always hold JSON arrays for their lists.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

out_dir <- file.path("tests", "data", "lme4_extra")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)

lme4_version <- as.character(packageVersion("lme4"))
r_version <- paste(R.version$major, R.version$minor, sep = ".")

## ---------------------------------------------------------------- data sets
## Each data set: loader (plain data.frame, R's row and level order kept),
## source string, response, fixed-effect RHS, grouping factors (name -> the
## columns whose ":"-joined labels make it).
datasets <- list(
  exam = list(
    load = function() as.data.frame(mlmRev::Exam),
    source = "mlmRev::Exam",
    y = "normexam", fixed = ~ standLRT,
    groups = list(school = "school")),
  machines = list(
    load = function() as.data.frame(nlme::Machines),
    source = "nlme::Machines",
    y = "score", fixed = ~ Machine,
    groups = list(Worker = "Worker", "Worker:Machine" = c("Worker", "Machine"))),
  oxboys = list(
    load = function() as.data.frame(nlme::Oxboys),
    source = "nlme::Oxboys",
    y = "height", fixed = ~ age,
    groups = list(Subject = "Subject")),
  ergostool = list(
    load = function() as.data.frame(nlme::ergoStool),
    source = "nlme::ergoStool",
    y = "effort", fixed = ~ Type,
    groups = list(Subject = "Subject")),
  scotssec = list(
    load = function() as.data.frame(mlmRev::ScotsSec),
    source = "mlmRev::ScotsSec",
    y = "attain", fixed = ~ verbal + sex,
    groups = list(primary = "primary", second = "second")),
  hsb82 = list(
    load = function() as.data.frame(mlmRev::Hsb82),
    source = "mlmRev::Hsb82",
    y = "mAch", fixed = ~ ses,
    groups = list(school = "school"))
)

## ------------------------------------------------------------------- models
## unseen: the factor (as lme4 names it) whose levels are held out entirely.
models <- list(
  list(id = "exam_corr", dataset = "exam",
       formula = "normexam ~ standLRT + (standLRT | school)",
       random_slopes = list(school = "standLRT"),
       covariance = list(school = "unstructured"), unseen = "school"),
  list(id = "exam_uncorr", dataset = "exam",
       formula = "normexam ~ standLRT + (1 | school) + (0 + standLRT | school)",
       random_slopes = list(school = "standLRT"),
       covariance = list(school = "diagonal"), unseen = "school"),
  list(id = "machines_nested", dataset = "machines",
       formula = "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)",
       random_slopes = list(Worker = character(0), "Worker:Machine" = character(0)),
       covariance = list(Worker = "unstructured", "Worker:Machine" = "unstructured"),
       unseen = "Worker:Machine"),
  list(id = "oxboys_corr", dataset = "oxboys",
       formula = "height ~ age + (age | Subject)",
       random_slopes = list(Subject = "age"),
       covariance = list(Subject = "unstructured"), unseen = "Subject"),
  list(id = "ergostool", dataset = "ergostool",
       formula = "effort ~ Type + (1 | Subject)",
       random_slopes = list(Subject = character(0)),
       covariance = list(Subject = "unstructured"), unseen = "Subject"),
  list(id = "scotssec_crossed", dataset = "scotssec",
       formula = "attain ~ verbal + sex + (1 | primary) + (1 | second)",
       random_slopes = list(primary = character(0), second = character(0)),
       covariance = list(primary = "unstructured", second = "unstructured"),
       unseen = "primary"),
  list(id = "hsb82_corr", dataset = "hsb82",
       formula = "mAch ~ ses + (1 + ses | school)",
       random_slopes = list(school = "ses"),
       covariance = list(school = "unstructured"), unseen = "school"),
  list(id = "hsb82_uncorr", dataset = "hsb82",
       formula = "mAch ~ ses + (1 | school) + (0 + ses | school)",
       random_slopes = list(school = "ses"),
       covariance = list(school = "diagonal"), unseen = "school")
)

## ---------------------------------------------------------------- helpers
group_labels <- function(d, cols) {
  if (length(cols) == 1L) as.character(d[[cols]])
  else do.call(paste, c(lapply(cols, function(cc) as.character(d[[cc]])), sep = ":"))
}

fixed_matrix <- function(d, fixed) {
  X <- model.matrix(fixed, d)
  X[, colnames(X) != "(Intercept)", drop = FALSE]
}

## diagonal of lme4's conditional variances, levels x terms
condvar_diag <- function(re_f) {
  pv <- attr(re_f, "postVar")
  one <- function(a) matrix(apply(a, 3L, function(m) diag(as.matrix(m))),
                            nrow = dim(a)[3L], byrow = dim(a)[1L] > 1L)
  if (is.list(pv)) do.call(cbind, lapply(pv, one)) else one(pv)
}

## lmer with warnings/messages collected (and printed)
fit_lmer <- function(formula, data, reml, what) {
  msgs <- character(0)
  t0 <- proc.time()[["elapsed"]]
  fit <- withCallingHandlers(
    lmer(formula, data = data, REML = reml),
    warning = function(w) { msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { msgs <<- c(msgs, conditionMessage(m)); invokeRestart("muffleMessage") })
  secs <- proc.time()[["elapsed"]] - t0
  conv <- fit@optinfo$conv$lme4$messages
  allm <- unique(c(msgs, conv))
  if (length(allm))
    cat(sprintf("  [%s] lme4 says: %s\n", what, paste(trimws(allm), collapse = " | ")))
  list(fit = fit, seconds = secs, messages = allm)
}

write_json_file <- function(x, path) {
  writeLines(toJSON(x, digits = NA, auto_unbox = TRUE, null = "null"), path)
}

## ------------------------------------------------------------- data + CSV
data_cache <- list()
csv_info <- list()
for (dn in names(datasets)) {
  spec <- datasets[[dn]]
  d <- spec$load()
  ## nlme / Hsb82 grouping factors are *ordered* factors: keep their level
  ## order but drop the ordering (predict(newdata=) on an ordered grouping
  ## factor with many levels fails in lme4 on contr.poly; fits are unaffected)
  d[] <- lapply(d, function(v)
    if (is.ordered(v)) factor(as.character(v), levels = levels(v)) else v)
  data_cache[[dn]] <- d
  X <- fixed_matrix(d, spec$fixed)
  out <- data.frame(d[[spec$y]], check.names = FALSE)
  names(out) <- spec$y
  for (cn in colnames(X)) out[[cn]] <- unname(X[, cn])
  for (g in names(spec$groups)) out[[g]] <- group_labels(d, spec$groups[[g]])
  path <- file.path(out_dir, paste0(dn, ".csv"))
  ## numbers: R's 15-digit form when it reads back to the same double,
  ## else 17 significant digits (exact round trip either way)
  num <- vapply(out, is.numeric, logical(1))
  out_txt <- out
  out_txt[num] <- lapply(out[num], function(v) {
    s <- as.character(v)
    bad <- as.numeric(s) != v
    s[bad] <- sprintf("%.17g", v[bad])
    s
  })
  write.csv(out_txt, path, row.names = FALSE, quote = which(!num))
  csv_info[[dn]] <- list(X = colnames(X), groups = names(spec$groups), nrow = nrow(out))
  cat(sprintf("wrote %s (%d rows)\n", path, nrow(out)))
}

## ------------------------------------------------------------------ fits
readme_lines <- character(0)
for (m in models) {
  spec <- datasets[[m$dataset]]
  d <- data_cache[[m$dataset]]
  fml <- as.formula(m$formula)

  ## held-out design: same for every model and criterion of a data set
  fac <- group_labels(d, spec$groups[[m$unseen]])
  levs <- unique(fac)
  set.seed(sum(utf8ToInt(m$dataset)))
  unseen <- sample(levs, max(1L, round(length(levs) / 10)))
  n <- nrow(d)
  test1 <- sort(unique(c(seq(10L, n, by = 10L), which(fac %in% unseen))))
  train <- d[-test1, , drop = FALSE]
  test <- d[test1, , drop = FALSE]

  for (reml in c(TRUE, FALSE)) {
    crit <- if (reml) "reml" else "ml"
    tag <- sprintf("%s_%s", m$id, crit)
    cat(sprintf("fitting %s\n", tag))
    f1 <- fit_lmer(fml, d, reml, tag)
    fit <- f1$fit

    vc <- VarCorr(fit)
    varcorr <- lapply(names(vc), function(nm) {
      a <- vc[[nm]]
      list(names = colnames(a), cov = unname(matrix(as.numeric(a), nrow(a))))
    })
    names(varcorr) <- names(vc)

    re <- ranef(fit, condVar = TRUE)
    ranef_out <- lapply(names(re), function(f) {
      r <- re[[f]]
      list(levels = rownames(r), names = colnames(r),
           values = unname(as.matrix(r)), condvar_diag = condvar_diag(r))
    })
    names(ranef_out) <- names(re)

    ll <- as.numeric(logLik(fit))
    f2 <- fit_lmer(fml, train, reml, paste(tag, "heldout refit"))
    heldout <- list(
      test_rows = test1 - 1L,
      unseen_levels_of = m$unseen,
      unseen_levels = unseen,
      predict = unname(predict(f2$fit, newdata = test, allow.new.levels = TRUE)),
      predict_population = unname(predict(f2$fit, newdata = test, re.form = NA)))

    res <- list(
      id = m$id, dataset = m$dataset, formula = m$formula, reml = reml,
      lme4 = lme4_version, lme4_seconds = f1$seconds,
      fixef = as.list(fixef(fit)),
      fixef_se = as.list(setNames(sqrt(diag(as.matrix(vcov(fit)))), names(fixef(fit)))),
      sigma = sigma(fit),
      theta = unname(getME(fit, "theta")),
      varcorr = varcorr,
      loglik = ll,
      deviance_or_reml = if (reml) unname(REMLcrit(fit)) else unname(deviance(fit)),
      aic = AIC(fit), bic = BIC(fit),
      singular = isSingular(fit),
      nobs = nobs(fit),
      ranef = ranef_out,
      fitted = unname(fitted(fit)),
      heldout = heldout,
      columns = list(y = spec$y, X = I(csv_info[[m$dataset]]$X),
                     groups = I(names(m$covariance))),
      random_slopes = lapply(m$random_slopes, I),
      covariance = m$covariance)
    path <- file.path(out_dir, paste0(tag, ".json"))
    write_json_file(res, path)
    cat(sprintf("  wrote %s: loglik = %.10g, singular = %s, %.3f s\n",
                path, ll, isSingular(fit), f1$seconds))
    readme_lines <- c(readme_lines, sprintf(
      "| `%s.json` | R %s, lme4 %s | `%s` | `lmer(%s, REML = %s)` |",
      tag, r_version, lme4_version, spec$source,
      gsub("|", "\\|", m$formula, fixed = TRUE), reml))
  }
}

## ---------------------------------------------------------------- README
csv_lines <- vapply(names(datasets), function(dn) sprintf(
  "| `%s.csv` | R %s (`%s`) | `%s` | response `%s`; X: %s; groups: %s (%d rows, R's row order) |",
  dn, r_version, {
    pkg <- sub("::.*", "", datasets[[dn]]$source)
    paste(pkg, as.character(packageVersion(pkg)))
  },
  datasets[[dn]]$source, datasets[[dn]]$y,
  paste0("`", csv_info[[dn]]$X, "`", collapse = ", "),
  paste0("`", csv_info[[dn]]$groups, "`", collapse = ", "),
  csv_info[[dn]]$nrow), character(1))

readme <- c(
  "# lme4 reference results on extra real data sets",
  "",
  sprintf("Generated by `Rscript tools/make_lme4_references.R` (run from the project root) with %s, lme4 %s, Matrix %s, nlme %s, mlmRev %s, jsonlite %s; default `lmer` settings.",
          R.version.string, lme4_version, packageVersion("Matrix"), packageVersion("nlme"),
          packageVersion("mlmRev"), packageVersion("jsonlite")),
  "",
  "JSON fields are those of `/work/shared/lme4/ref` (see its README; full precision, 1-element vectors as scalars), plus:",
  "- `columns`: `y` (response), `X` (fixed-effect model-matrix columns as R's `model.matrix` names them, no intercept), `groups` (grouping-factor columns) of `<dataset>.csv`.",
  "- `random_slopes`: grouping factor -> list of `X` columns with a random slope (the random intercept is always present).",
  "- `covariance`: grouping factor -> `\"unstructured\"` (one correlated lme4 term) or `\"diagonal\"` (independent `(1 | g) + (0 + x | g)` terms).",
  "- `heldout`: every 10th row plus all rows of ~10% randomly chosen levels of `unseen_levels_of` (same rows for every model of a data set).",
  "",
  "CSV files hold the grouping factors as strings; nested factors also as the label `\"<outer>:<inner>\"`. The level order of R (e.g. nlme's ordered factors, kept as plain factors with the same level order) is in each JSON's `ranef[...]$levels`. Numbers read back to R's exact doubles (15 significant digits, or 17 where needed).",
  "",
  "| file | R / package versions | source | content |",
  "| --- | --- | --- | --- |",
  csv_lines,
  readme_lines)
writeLines(readme, file.path(out_dir, "README.md"))
cat("wrote", file.path(out_dir, "README.md"), "\n")
