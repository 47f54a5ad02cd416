#!/usr/bin/env Rscript
## Generate the lme4 / lmerTest / metafor references of issue 8 (prior
## weights, general random terms, rank-deficient fixed effects, re.form
## predictions, lmerTest type III anova, per-group deletion influence and
## known residual variance) for the sklearn_mixed test suite.
##
## Run from the project root:   Rscript tools/make_issue8_references.R
##
## Writes, under tests/data/lme4_issue8/:
##   <dataset>.csv     one file per data set variant, shared by its models;
##                     response, numeric model-matrix columns (R's names),
##                     grouping factors as strings (nested factors also as
##                     the "<outer>:<inner>" label), the prior-weight column
##                     "w" where a weighted model uses it; "_raw" variants
##                     hold factors as strings for designs rebuilt from the
##                     formula (lmerTest anova).
##   <id>_reml.json    REML = TRUE results
##   <id>_ml.json      REML = FALSE results
##   README.md         provenance, one line per file, field descriptions
##
## Deterministic: fixed seeds, no timings in the output, so re-running gives
## the same files.  jsonlite with digits = NA (full precision), auto_unbox
## (1-element vectors of the base fields are scalars as in the shared lme4
## files; the lists of the issue-8 fields are always JSON arrays).

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

out_dir <- file.path("tests", "data", "lme4_issue8")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)

pkg_version <- function(p) as.character(packageVersion(p))
lme4_version <- pkg_version("lme4")
r_version <- paste(R.version$major, R.version$minor, sep = ".")
WEIGHT_SEED <- 20261202L

## ================================================================ helpers

unorder <- function(d) {
  ## nlme / mlmRev grouping factors are ordered factors: keep their level
  ## order, drop the ordering (as tools/make_lme4_references.R does)
  d[] <- lapply(d, function(v)
    if (is.ordered(v)) factor(as.character(v), levels = levels(v)) else v)
  d
}

add_weights <- function(d) {
  set.seed(WEIGHT_SEED)
  d$w <- round(runif(nrow(d), 0.25, 4), 3)
  d
}

labels_of <- function(d, cols)
  do.call(paste, c(lapply(cols, function(cc) as.character(d[[cc]])), sep = ":"))

## factor of strings with levels in C-locale (code point) order, the order a
## Python reader sorting the strings gets
c_factor <- function(x) {
  x <- as.character(x)
  factor(x, levels = sort(unique(x), method = "radix"))
}

## numbers as R's 15-digit form when it reads back to the same double, else
## 17 significant digits (exact round trip either way)
num_text <- function(v) {
  s <- as.character(v)
  bad <- !is.na(v) & as.numeric(s) != v
  s[bad] <- sprintf("%.17g", v[bad])
  s
}

csv_registry <- list()
write_csv_file <- function(stem, csv, source, note) {
  path <- file.path(out_dir, paste0(stem, ".csv"))
  num <- vapply(csv, is.numeric, logical(1))
  txt <- csv
  txt[num] <- lapply(csv[num], num_text)
  txt[!num] <- lapply(csv[!num], as.character)
  write.csv(txt, path, row.names = FALSE, quote = which(!num))
  ## the fits use exactly the values written: check the round trip
  back <- read.csv(path, colClasses = "character", check.names = FALSE)
  stopifnot(identical(names(back), names(csv)), nrow(back) == nrow(csv))
  for (cn in names(csv)[num]) stopifnot(identical(as.numeric(back[[cn]]), as.numeric(csv[[cn]])))
  for (cn in names(csv)[!num]) stopifnot(identical(back[[cn]], as.character(csv[[cn]])))
  csv_registry[[stem]] <<- list(source = source, columns = names(csv), nrow = nrow(csv),
                                note = note)
  cat(sprintf("wrote %s (%d rows)\n", path, nrow(csv)))
  invisible(path)
}

## diagonal of lme4's conditional variances, levels x terms
condvar_diag <- function(re_f) {
  pv <- attr(re_f, "postVar")
  one <- function(a) matrix(apply(a, 3L, function(m) diag(as.matrix(m))),
                            nrow = dim(a)[3L], byrow = dim(a)[1L] > 1L)
  if (is.list(pv)) do.call(cbind, lapply(pv, one)) else one(pv)
}

named_list <- function(v) if (length(v)) as.list(v) else setNames(list(), character(0))

## lme4 factor name -> CSV column name; lme4 names nested terms
## (1 | batch/cask) "cask:batch" with levels "a:A", the CSV column is
## "batch:cask" with labels "A:a"
map_factor <- function(nm, fmap) if (nm %in% names(fmap)) fmap[[nm]] else nm
map_levels <- function(nm, levels, fmap) {
  if (!(nm %in% names(fmap))) return(levels)
  from <- strsplit(nm, ":", fixed = TRUE)[[1]]
  to <- strsplit(fmap[[nm]], ":", fixed = TRUE)[[1]]
  perm <- match(to, from)
  vapply(strsplit(levels, ":", fixed = TRUE),
         function(p) paste(p[perm], collapse = ":"), character(1))
}
## VarCorr names: "cask:batch" or "Subject.1" (second term of Subject)
map_vc_name <- function(nm, fmap) {
  if (nm %in% names(fmap)) return(fmap[[nm]])
  base <- sub("\\.[0-9]+$", "", nm)
  if (base != nm && base %in% names(fmap)) paste0(fmap[[base]], substring(nm, nchar(base) + 1L))
  else nm
}

## lmer / lmerTest::lmer with warnings and messages collected; the formula is
## put into the call itself (so update() inside influence() finds it), data
## is the symbol `dat` of a local environment.
fit_lmer <- function(formula, data, reml, weights = NULL, fun = "lme4", control = NULL) {
  env <- new.env(parent = globalenv())
  env$dat <- data
  f <- if (fun == "lmerTest") quote(lmerTest::lmer) else quote(lme4::lmer)
  args <- list(formula = as.formula(formula, env = env), data = quote(dat), REML = reml)
  if (!is.null(weights)) args$weights <- as.name(weights)
  if (!is.null(control)) args$control <- str2lang(control)
  cl <- as.call(c(list(f), args))
  warns <- character(0)
  msgs <- character(0)
  fit <- withCallingHandlers(
    eval(cl, env),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { msgs <<- c(msgs, conditionMessage(m)); invokeRestart("muffleMessage") })
  ## lme4's convergence / boundary messages not already signalled
  conv <- trimws(fit@optinfo$conv$lme4$messages)
  warns <- unique(trimws(warns))
  msgs <- unique(trimws(msgs))
  warns <- c(warns, setdiff(conv, c(warns, msgs)))
  list(fit = fit, warnings = warns, messages = msgs, error = NULL, control = control)
}

## as fit_lmer; if lme4 refuses the model with its default control and the
## spec names a fallback control, record lme4's error and fit with that one
fit_spec <- function(spec, data, reml) {
  fun <- if (is.null(spec$fun)) "lme4" else spec$fun
  r <- tryCatch(fit_lmer(spec$formula, data, reml, weights = spec$weights, fun = fun),
                error = function(e) e)
  if (!inherits(r, "error")) return(r)
  if (is.null(spec$fallback_control)) stop(r)
  cat(sprintf("  lme4 error with default control: %s\n  refitting with control = %s\n",
              conditionMessage(r), spec$fallback_control))
  f1 <- fit_lmer(spec$formula, data, reml, weights = spec$weights, fun = fun,
                 control = spec$fallback_control)
  f1$error <- conditionMessage(r)
  f1
}

## the base fields of /work/shared/lme4/ref plus the issue-8 bookkeeping
base_fields <- function(f1, spec, reml) {
  fit <- f1$fit
  fmap <- spec$fmap
  fe <- fixef(fit)
  fe_all <- fixef(fit, add.dropped = TRUE)
  dropped <- as.character(names(fe_all)[is.na(fe_all)])
  fse <- if (length(fe)) setNames(sqrt(diag(as.matrix(vcov(fit)))), names(fe)) else numeric(0)

  vc <- VarCorr(fit)
  varcorr <- lapply(names(vc), function(nm) {
    a <- vc[[nm]]
    list(names = colnames(a), cov = unname(matrix(as.numeric(a), nrow(a))))
  })
  names(varcorr) <- vapply(names(vc), map_vc_name, character(1), fmap = fmap)

  re <- ranef(fit, condVar = TRUE)
  ranef_out <- lapply(names(re), function(f) {
    r <- re[[f]]
    list(levels = map_levels(f, rownames(r), fmap), names = colnames(r),
         values = unname(as.matrix(r)), condvar_diag = condvar_diag(r))
  })
  names(ranef_out) <- vapply(names(re), map_factor, character(1), fmap = fmap)

  ## random terms: one block of covariate names per lme4 term
  cnms <- getME(fit, "cnms")
  fac <- vapply(names(cnms), map_factor, character(1), fmap = fmap)
  csv_cols <- csv_registry[[spec$dataset]]$columns
  groups <- unique(fac)
  groups <- groups[order(match(groups, csv_cols))]
  stopifnot(all(groups %in% csv_cols))
  random_effects <- lapply(groups, function(g) unname(lapply(cnms[fac == g], I)))
  names(random_effects) <- groups

  fixed_features <- as.character(setdiff(names(fe_all), "(Intercept)"))
  rand_cov <- as.character(setdiff(unique(unlist(cnms)), "(Intercept)"))
  X <- as.character(if (isTRUE(spec$raw)) spec$raw_X else unique(c(fixed_features, rand_cov)))
  stopifnot(all(X %in% csv_cols), all(rand_cov %in% csv_cols))

  ll <- as.numeric(logLik(fit))
  list(
    id = spec$id, dataset = spec$dataset, formula = spec$formula, reml = reml,
    lme4 = lme4_version, call = spec_call(spec, reml, f1$control),
    fixef = named_list(fe),
    fixef_se = named_list(fse),
    fixef_all = named_list(fe_all),
    dropped = I(dropped),
    sigma = sigma(fit),
    theta = unname(getME(fit, "theta")),
    varcorr = varcorr,
    loglik = ll,
    ## lme4 fits ML when there are no fixed effects (isREML() is FALSE; the
    ## REML criterion is then the deviance) and its REMLcrit() of such a fit
    ## adds an uninitialised ldRX2: use the deviance
    deviance_or_reml = if (reml && isREML(fit)) unname(REMLcrit(fit))
                       else unname(deviance(fit, REML = FALSE)),
    aic = AIC(fit), bic = BIC(fit),
    singular = isSingular(fit),
    nobs = nobs(fit),
    ranef = ranef_out,
    fitted = unname(fitted(fit)),
    columns = list(y = spec$y, X = I(X), groups = I(groups),
                   weights = if (is.null(spec$weights)) NULL else spec$weights),
    fixed_features = I(fixed_features),
    fit_intercept = "(Intercept)" %in% names(fe_all),
    random_effects = random_effects,
    lme4_warnings = I(f1$warnings),
    lme4_messages = I(f1$messages),
    lme4_isREML = isREML(fit),
    lme4_error = f1$error,
    lme4_control = f1$control)
}

spec_call <- function(spec, reml, control = NULL) {
  fun <- if (identical(spec$fun, "lmerTest")) "lmerTest::lmer" else "lmer"
  sprintf("%s(%s, data = %s%s, REML = %s%s)", fun, spec$formula, spec$data_name,
          if (is.null(spec$weights)) "" else sprintf(", weights = %s", spec$weights),
          if (reml) "TRUE" else "FALSE",
          if (is.null(control)) "" else sprintf(", control = %s", control))
}

write_json_file <- function(x, path)
  writeLines(toJSON(x, digits = NA, auto_unbox = TRUE, null = "null", na = "null"), path)

## check the CSV's model-matrix columns are R's (numerically identical)
check_csv_design <- function(spec, data, csv) {
  if (isTRUE(spec$raw)) return(invisible())
  mm <- model.matrix(nobars(as.formula(spec$formula)), data)
  for (cn in setdiff(colnames(mm), "(Intercept)"))
    stopifnot(cn %in% names(csv), isTRUE(all.equal(unname(mm[, cn]), csv[[cn]], tolerance = 0)))
}

## extras ------------------------------------------------------------------
extra_diagnostics <- function(fit) list(
  hatvalues = unname(hatvalues(fit)),
  cooks_distance = unname(cooks.distance(fit)),
  rstudent = unname(rstudent(fit)),
  pearson_residuals = unname(residuals(fit, type = "pearson")))

deviance_at_theta <- function(fit, thetas) {
  dev <- as.function(fit)
  lapply(thetas, function(th) list(theta = I(unname(th)), value = dev(unname(th))))
}

matrix_to_cols <- function(m) {
  ## {column name: {row name: value}} of a coefficient / anova table
  out <- lapply(rownames(m), function(r) as.list(m[r, , drop = TRUE]))
  names(out) <- rownames(m)
  out
}

## ============================================================== data sets
## Each entry: fit data (R factors, R row order), the CSV written, source.
data_sets <- list()
add_data <- function(stem, data, csv, source, note) {
  write_csv_file(stem, csv, source, note)
  data_sets[[stem]] <<- data
}

## sleepstudy (+ w) ---------------------------------------------------------
d <- add_weights(as.data.frame(lme4::sleepstudy))
add_data("sleepstudy", d,
         data.frame(Reaction = d$Reaction, Days = d$Days, Subject = as.character(d$Subject),
                    w = d$w),
         "lme4::sleepstudy", "`w` = weights (seed 20261202)")

## sleepstudy, rank-deficient design ---------------------------------------
d <- as.data.frame(lme4::sleepstudy)
grp <- rep(c("a", "b", "c"), 60)
d$D2 <- 2 * d$Days + 1
d$a <- as.numeric(grp == "a")
d$b <- as.numeric(grp == "b")
d$cc <- as.numeric(grp == "c")
add_data("sleepstudy_rankdef", d,
         data.frame(Reaction = d$Reaction, Days = d$Days, D2 = d$D2, a = d$a, b = d$b,
                    cc = d$cc, Subject = as.character(d$Subject)),
         "lme4::sleepstudy",
         "`D2 = 2 * Days + 1`; `a`, `b`, `cc`: 0/1 columns of `grp = rep(c(\"a\", \"b\", \"c\"), 60)`")

## Penicillin (+ w) ----------------------------------------------------------
d <- add_weights(as.data.frame(lme4::Penicillin))
add_data("penicillin", d,
         data.frame(diameter = d$diameter, plate = as.character(d$plate),
                    sample = as.character(d$sample), w = d$w),
         "lme4::Penicillin", "`w` = weights (seed 20261202)")

## Pastes (+ w) --------------------------------------------------------------
d <- add_weights(as.data.frame(lme4::Pastes))
csv <- data.frame(strength = d$strength, batch = as.character(d$batch),
                  cask = as.character(d$cask), check.names = FALSE)
csv[["batch:cask"]] <- labels_of(d, c("batch", "cask"))
csv$w <- d$w
stopifnot(identical(csv[["batch:cask"]], as.character(d$sample)))
add_data("pastes", d, csv, "lme4::Pastes",
         "`batch:cask` = `\"<batch>:<cask>\"` (lme4's `sample`); `w` = weights (seed 20261202)")

## Dyestuff, Dyestuff2 (+ w) -------------------------------------------------
d <- as.data.frame(lme4::Dyestuff)
add_data("dyestuff", d, data.frame(Yield = d$Yield, Batch = as.character(d$Batch)),
         "lme4::Dyestuff", "")
d <- add_weights(as.data.frame(lme4::Dyestuff2))
add_data("dyestuff2", d,
         data.frame(Yield = d$Yield, Batch = as.character(d$Batch), w = d$w),
         "lme4::Dyestuff2", "`w` = weights (seed 20261202)")

## Hsb82 (+ w) and its first 40 schools --------------------------------------
d <- add_weights(unorder(as.data.frame(mlmRev::Hsb82)))
add_data("hsb82", d,
         data.frame(mAch = d$mAch, ses = d$ses, school = as.character(d$school), w = d$w),
         "mlmRev::Hsb82", "`w` = weights (seed 20261202)")
h <- unorder(as.data.frame(mlmRev::Hsb82))
schools40 <- sort(unique(as.character(h$school)), method = "radix")[1:40]
h <- h[as.character(h$school) %in% schools40, , drop = FALSE]
h$school <- droplevels(h$school)
rownames(h) <- NULL
add_data("hsb82_40", h,
         data.frame(mAch = h$mAch, ses = h$ses, school = as.character(h$school)),
         "mlmRev::Hsb82",
         sprintf("rows of the first 40 schools in sorted (C-locale) label order, %s to %s; R row order",
                 schools40[1], schools40[40]))

## ScotsSec (+ w; sex as R codes it: sexF) and raw ---------------------------
d <- add_weights(as.data.frame(mlmRev::ScotsSec))
mm <- model.matrix(~ verbal + sex, d)
add_data("scotssec", d,
         data.frame(attain = d$attain, verbal = d$verbal, sexF = unname(mm[, "sexF"]),
                    primary = as.character(d$primary), second = as.character(d$second),
                    w = d$w),
         "mlmRev::ScotsSec", "`sexF` = R's treatment coding of `sex` (levels M, F); `w` = weights (seed 20261202)")
s <- as.data.frame(mlmRev::ScotsSec)
s_raw <- data.frame(attain = s$attain, verbal = s$verbal, sex = as.character(s$sex),
                    social = as.character(s$social), primary = as.character(s$primary),
                    second = as.character(s$second))
s_fit <- s_raw
for (cn in c("sex", "social", "primary", "second")) s_fit[[cn]] <- c_factor(s_fit[[cn]])
add_data("scotssec_raw", s_fit, s_raw, "mlmRev::ScotsSec",
         "raw: `sex`, `social` (numeric codes as labels, an unordered factor) as strings")

## Machines (+ w): MachineA/B/C columns, Worker:Machine label ----------------
d <- add_weights(unorder(as.data.frame(nlme::Machines)))
mm <- model.matrix(~ 0 + Machine, d)
csv <- data.frame(score = d$score, MachineA = unname(mm[, "MachineA"]),
                  MachineB = unname(mm[, "MachineB"]), MachineC = unname(mm[, "MachineC"]),
                  Worker = as.character(d$Worker), check.names = FALSE)
csv[["Worker:Machine"]] <- labels_of(d, c("Worker", "Machine"))
csv$w <- d$w
add_data("machines", d, csv, "nlme::Machines",
         "`MachineA/B/C` = 0/1 indicators; `Worker:Machine` = `\"<Worker>:<Machine>\"`; `w` = weights (seed 20261202)")

## Oxboys: age2 = age^2 ------------------------------------------------------
d <- unorder(as.data.frame(nlme::Oxboys))
d$age2 <- d$age^2
add_data("oxboys", d,
         data.frame(height = d$height, age = d$age, age2 = d$age2,
                    Subject = as.character(d$Subject)),
         "nlme::Oxboys", "`age2 = age^2`")

## ergoStool: TypeT1..T4 indicators, and raw ---------------------------------
d <- unorder(as.data.frame(nlme::ergoStool))
stopifnot(!is.ordered(d$Type))
mm <- model.matrix(~ 0 + Type, d)
csv <- data.frame(effort = d$effort)
for (cn in colnames(mm)) csv[[cn]] <- unname(mm[, cn])
csv$Subject <- as.character(d$Subject)
add_data("ergostool", d, csv, "nlme::ergoStool", "`TypeT1..TypeT4` = 0/1 indicators of `Type`")
e_raw <- data.frame(effort = d$effort, Type = as.character(d$Type),
                    Subject = as.character(d$Subject))
e_fit <- e_raw
for (cn in c("Type", "Subject")) e_fit[[cn]] <- c_factor(e_fit[[cn]])
add_data("ergostool_raw", e_fit, e_raw, "nlme::ergoStool", "raw: `Type` as strings")

## cake (raw): ftemp unordered factor, recipe:replicate label ------------------
ck <- as.data.frame(lme4::cake)
c_raw <- data.frame(angle = ck$angle, recipe = as.character(ck$recipe),
                    ftemp = as.character(ck$temp), replicate = as.character(ck$replicate),
                    check.names = FALSE)
c_raw[["recipe:replicate"]] <- labels_of(ck, c("recipe", "replicate"))
c_fit <- c_raw
for (cn in c("recipe", "ftemp", "replicate", "recipe:replicate")) c_fit[[cn]] <- c_factor(c_fit[[cn]])
stopifnot(identical(levels(c_fit$ftemp), c("175", "185", "195", "205", "215", "225")))
add_data("cake_raw", c_fit, c_raw, "lme4::cake",
         "raw: `ftemp = factor(as.character(temp))` (levels 175..225), `recipe`, `replicate` as strings; `recipe:replicate` = `\"<recipe>:<replicate>\"`")

## Exam (raw) ----------------------------------------------------------------
ex <- as.data.frame(mlmRev::Exam)
x_raw <- data.frame(normexam = ex$normexam, standLRT = ex$standLRT, sex = as.character(ex$sex),
                    schgend = as.character(ex$schgend), school = as.character(ex$school))
x_fit <- x_raw
for (cn in c("sex", "schgend", "school")) x_fit[[cn]] <- c_factor(x_fit[[cn]])
add_data("exam_raw", x_fit, x_raw, "mlmRev::Exam", "raw: `sex`, `schgend` as strings")

## ================================================================== models
## fmap: lme4 factor name -> CSV column (nested terms only).
## data_name: how the README / "call" names the data.
models <- list(
  ## ---- A. prior weights
  list(id = "weighted_sleep_corr", dataset = "sleepstudy", data_name = "sleepstudy",
       y = "Reaction", formula = "Reaction ~ Days + (Days | Subject)", weights = "w",
       extras = function(fit, reml) c(extra_diagnostics(fit), list(
         deviance_at_theta = deviance_at_theta(fit, list(
           getME(fit, "theta"), 1.3 * getME(fit, "theta"), c(1, 0, 1))))),
       extra_note = "hatvalues, cooks_distance, rstudent, pearson_residuals, deviance_at_theta"),
  list(id = "weighted_sleep_uncorr", dataset = "sleepstudy", data_name = "sleepstudy",
       y = "Reaction", formula = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
       weights = "w"),
  list(id = "weighted_penicillin", dataset = "penicillin", data_name = "Penicillin",
       y = "diameter", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", weights = "w",
       extras = function(fit, reml) extra_diagnostics(fit),
       extra_note = "hatvalues, cooks_distance, rstudent, pearson_residuals"),
  list(id = "weighted_pastes", dataset = "pastes", data_name = "Pastes",
       y = "strength", formula = "strength ~ 1 + (1 | batch/cask)", weights = "w",
       fmap = c("cask:batch" = "batch:cask")),
  list(id = "weighted_dyestuff2", dataset = "dyestuff2", data_name = "Dyestuff2",
       y = "Yield", formula = "Yield ~ 1 + (1 | Batch)", weights = "w"),
  list(id = "weighted_hsb82", dataset = "hsb82", data_name = "mlmRev::Hsb82",
       y = "mAch", formula = "mAch ~ ses + (1 + ses | school)", weights = "w",
       extras = function(fit, reml) extra_diagnostics(fit),
       extra_note = "hatvalues, cooks_distance, rstudent, pearson_residuals"),
  list(id = "weighted_scotssec", dataset = "scotssec", data_name = "mlmRev::ScotsSec",
       y = "attain", formula = "attain ~ verbal + sex + (1 | primary) + (1 | second)",
       weights = "w"),
  list(id = "weighted_machines", dataset = "machines", data_name = "nlme::Machines",
       y = "score", formula = "score ~ Machine + (1 | Worker/Machine)", weights = "w",
       fmap = c("Machine:Worker" = "Worker:Machine")),

  ## ---- B. general random terms
  list(id = "nointercept_sleep", dataset = "sleepstudy", data_name = "sleepstudy",
       y = "Reaction", formula = "Reaction ~ Days + (0 + Days | Subject)",
       extras = function(fit, reml) list(deviance_at_theta = deviance_at_theta(fit, list(
         getME(fit, "theta"), 1.3 * getME(fit, "theta"), c(0.5)))),
       extra_note = "deviance_at_theta"),
  list(id = "nonfixed_sleep", dataset = "sleepstudy", data_name = "sleepstudy",
       y = "Reaction", formula = "Reaction ~ 1 + (1 + Days | Subject)"),
  list(id = "twoslopes_oxboys", dataset = "oxboys", data_name = "nlme::Oxboys",
       y = "height", formula = "height ~ age + (0 + age + age2 | Subject)"),
  list(id = "catrandom_ergostool", dataset = "ergostool", data_name = "nlme::ergoStool",
       y = "effort", formula = "effort ~ 1 + (1 | Subject) + (0 + Type | Subject)",
       ## 36 observations, 36 Type effects: lme4 refuses this with its default
       ## check; recorded as lme4_error, then fitted with the check off
       fallback_control = "lmerControl(check.nobs.vs.nRE = \"ignore\")",
       extra_note = "lme4_error (default control refuses the model), fit with `check.nobs.vs.nRE = \"ignore\"`"),
  list(id = "catrandom_machines", dataset = "machines", data_name = "nlme::Machines",
       y = "score", formula = "score ~ Machine + (0 + Machine | Worker)"),
  list(id = "nofixed_dyestuff", dataset = "dyestuff", data_name = "Dyestuff",
       y = "Yield", formula = "Yield ~ 0 + (1 | Batch)"),
  list(id = "devfun_penicillin", dataset = "penicillin", data_name = "Penicillin",
       y = "diameter", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)",
       extras = function(fit, reml) list(deviance_at_theta = deviance_at_theta(fit, list(
         getME(fit, "theta"), c(1, 1), c(0.5, 2), c(0, 3)))),
       extra_note = "deviance_at_theta"),

  ## ---- C. rank-deficient fixed effects
  list(id = "rankdef_sleep", dataset = "sleepstudy_rankdef", data_name = "sleepstudy",
       y = "Reaction", formula = "Reaction ~ Days + D2 + a + b + cc + (1 | Subject)",
       extras = function(fit, reml) {
         nd <- data_sets[["sleepstudy_rankdef"]][1:20, , drop = FALSE]
         nd$Subject <- as.character(nd$Subject)
         nd$Subject[1:10] <- "999"
         list(heldout_predictions = list(
           rows = I(0:19), new_level_rows = I(0:9), new_level = "999",
           predict = unname(predict(fit, newdata = nd, allow.new.levels = TRUE))))
       },
       extra_note = "heldout_predictions"),

  ## ---- D. re.form predictions
  list(id = "reform_sleep_corr", dataset = "sleepstudy", data_name = "sleepstudy",
       y = "Reaction", formula = "Reaction ~ Days + (Days | Subject)", reml = TRUE,
       re_forms = list(list("NA", NA, setNames(list(), character(0))),
                       list("~(1 | Subject)", ~(1 | Subject), list(Subject = I("(Intercept)")))),
       extra_note = "re_form"),
  list(id = "reform_sleep_uncorr", dataset = "sleepstudy", data_name = "sleepstudy",
       y = "Reaction", formula = "Reaction ~ Days + (Days || Subject)", reml = TRUE,
       re_forms = list(list("NA", NA, setNames(list(), character(0))),
                       list("~(1 | Subject)", ~(1 | Subject), list(Subject = I("(Intercept)"))),
                       list("~(0 + Days | Subject)", ~(0 + Days | Subject), list(Subject = I("Days")))),
       extra_note = "re_form"),
  list(id = "reform_penicillin", dataset = "penicillin", data_name = "Penicillin",
       y = "diameter", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", reml = TRUE,
       re_forms = list(list("~(1 | plate)", ~(1 | plate), list(plate = I("(Intercept)"))),
                       list("~(1 | sample)", ~(1 | sample), list(sample = I("(Intercept)"))),
                       list("NA", NA, setNames(list(), character(0)))),
       extra_note = "re_form"),

  ## ---- E. lmerTest type III anova (raw designs)
  list(id = "anova_cake", dataset = "cake_raw", data_name = "cake",
       y = "angle", formula = "angle ~ recipe * ftemp + (1 | recipe:replicate)", reml = TRUE,
       fun = "lmerTest", raw = TRUE, raw_X = c("recipe", "ftemp"),
       categorical = c("recipe", "ftemp"), extra_note = "anova, satterthwaite, model_matrix_columns"),
  list(id = "anova_exam", dataset = "exam_raw", data_name = "mlmRev::Exam",
       y = "normexam", formula = "normexam ~ standLRT * sex + schgend + (1 | school)", reml = TRUE,
       fun = "lmerTest", raw = TRUE, raw_X = c("standLRT", "sex", "schgend"),
       categorical = c("sex", "schgend"), extra_note = "anova, satterthwaite, model_matrix_columns"),
  list(id = "anova_ergostool", dataset = "ergostool_raw", data_name = "nlme::ergoStool",
       y = "effort", formula = "effort ~ Type + (1 | Subject)", reml = TRUE,
       fun = "lmerTest", raw = TRUE, raw_X = c("Type"),
       categorical = c("Type"), extra_note = "anova, satterthwaite, model_matrix_columns"),
  list(id = "anova_scotssec", dataset = "scotssec_raw", data_name = "mlmRev::ScotsSec",
       y = "attain", formula = "attain ~ verbal * sex + social + (1 | primary) + (1 | second)",
       reml = TRUE, fun = "lmerTest", raw = TRUE, raw_X = c("verbal", "sex", "social"),
       categorical = c("sex", "social"), extra_note = "anova, satterthwaite, model_matrix_columns"),

  ## ---- F. per-group deletion influence
  list(id = "influence_sleep", dataset = "sleepstudy", data_name = "sleepstudy",
       y = "Reaction", formula = "Reaction ~ Days + (Days | Subject)", reml = TRUE,
       influence_groups = "Subject",
       extra_note = "influence, hatvalues, cooks_distance, rstudent"),
  list(id = "influence_hsb82_40", dataset = "hsb82_40", data_name = "Hsb82 (first 40 schools)",
       y = "mAch", formula = "mAch ~ ses + (1 | school)", reml = TRUE,
       influence_groups = "school",
       extra_note = "influence, hatvalues, cooks_distance, rstudent")
)

## ==================================================================== fits
json_registry <- list()
summary_lines <- character(0)

for (spec in models) {
  if (is.null(spec$fmap)) spec$fmap <- character(0)
  crits <- if (is.null(spec$reml)) c(TRUE, FALSE) else spec$reml
  d <- data_sets[[spec$dataset]]
  ## the CSV's numeric model-matrix columns are R's
  if (!isTRUE(spec$raw)) {
    csv_back <- read.csv(file.path(out_dir, paste0(spec$dataset, ".csv")), check.names = FALSE,
                         colClasses = "character")
    csv_num <- lapply(csv_back, function(v) suppressWarnings(as.numeric(v)))
    check_csv_design(spec, d, csv_num)
  }
  for (reml in crits) {
    crit <- if (reml) "reml" else "ml"
    tag <- sprintf("%s_%s", spec$id, crit)
    cat(sprintf("fitting %s\n", tag))
    f1 <- fit_spec(spec, d, reml)
    fit <- f1$fit
    res <- base_fields(f1, spec, reml)

    if (!is.null(spec$extras)) res <- c(res, spec$extras(fit, reml))

    if (!is.null(spec$re_forms)) {
      res$re_form <- lapply(spec$re_forms, function(rf) list(
        re_form = rf[[1]], random_effects = rf[[3]],
        predict = unname(predict(fit, re.form = rf[[2]]))))
    }

    if (identical(spec$fun, "lmerTest")) {
      stopifnot(inherits(fit, "lmerModLmerTest"))
      tab <- anova(fit, type = 3, ddf = "Satterthwaite")
      stopifnot(identical(colnames(tab),
                          c("Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)")))
      co <- coef(summary(fit, ddf = "Satterthwaite"))
      X <- model.matrix(fit)
      res$raw <- TRUE
      res$categorical <- I(spec$categorical)
      res$levels <- lapply(setNames(spec$categorical, spec$categorical),
                           function(cn) I(levels(d[[cn]])))
      res$anova <- matrix_to_cols(as.matrix(as.data.frame(tab)))
      res$satterthwaite <- matrix_to_cols(co)
      res$model_matrix_ncol <- ncol(X)
      res$model_matrix_columns <- I(colnames(X))
    }

    if (!is.null(spec$influence_groups)) {
      infl <- influence(fit, groups = spec$influence_groups, data = d)
      nm <- names(infl)
      infl_part <- function(prefix) infl[[nm[startsWith(nm, prefix)][2L]]]
      vc_del <- infl_part("var.cov.comps")
      fe_del <- infl_part("fixed.effects")
      res$influence <- list(
        groups = spec$influence_groups,
        deleted = I(as.character(infl$deleted)),
        fixef_names = I(colnames(fe_del)),
        fixed_effects_deleted = unname(fe_del),
        var_cov_comps_names = I(colnames(vc_del)),
        var_cov_comps = unname(infl$var.cov.comps),
        var_cov_comps_deleted = unname(vc_del),
        vcov_deleted = unname(lapply(infl_part("vcov"), function(m) unname(as.matrix(m)))),
        converged = I(unname(infl$converged)),
        function_evals = I(unname(infl$function.evals)),
        cooks_distance = I(unname(cooks.distance(infl))),
        dfbetas = unname(dfbetas(infl)))
      res$hatvalues <- unname(hatvalues(fit))
      res$cooks_distance <- unname(cooks.distance(fit))
      res$rstudent <- unname(rstudent(fit))
    }

    path <- file.path(out_dir, paste0(tag, ".json"))
    write_json_file(res, path)
    notes <- c(if (reml && !isREML(fit)) "lme4 fitted ML (isREML FALSE: no fixed effects)",
               if (!is.null(f1$error)) paste("default-control error:", f1$error),
               if (isSingular(fit)) "singular", f1$warnings, f1$messages,
               if (length(res$dropped)) paste("dropped:", paste(res$dropped, collapse = ", ")))
    summary_lines <- c(summary_lines, sprintf("%s: loglik %.10g%s", tag, res$loglik,
                                              if (length(notes)) paste0(" [", paste(notes, collapse = " | "), "]") else ""))
    cat("  ", tail(summary_lines, 1), "\n")
    json_registry[[tag]] <- list(
      dataset = spec$dataset, source = csv_registry[[spec$dataset]]$source,
      call = if (!is.null(spec$influence_groups))
        sprintf("%s; influence(fit, groups = \"%s\")", spec_call(spec, reml), spec$influence_groups)
      else if (identical(spec$fun, "lmerTest"))
        sprintf("fit <- %s; anova(fit); summary(fit)$coefficients", spec_call(spec, reml))
      else spec_call(spec, reml, f1$control),
      extra = if (is.null(spec$extra_note)) "" else spec$extra_note,
      versions = if (identical(spec$fun, "lmerTest"))
        sprintf("R %s, lme4 %s, lmerTest %s", r_version, lme4_version, pkg_version("lmerTest"))
      else sprintf("R %s, lme4 %s", r_version, lme4_version))
  }
}

## ============================================== G. metafor (known variances)
suppressPackageStartupMessages(requireNamespace("metafor"))
bcg <- metafor::escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg,
                       data = metadat::dat.bcg)
b_csv <- data.frame(trial = as.character(bcg$trial), yi = as.numeric(bcg$yi),
                    vi = as.numeric(bcg$vi))
b_csv$w <- 1 / b_csv$vi
b_csv$ablat <- as.numeric(bcg$ablat)
add_data("bcg", b_csv, b_csv, "metadat::dat.bcg (via metafor)",
         "`yi`, `vi` = `escalc(measure = \"RR\", ai = tpos, bi = tneg, ci = cpos, di = cneg)`; `w = 1 / vi`; `trial` = per-row label")
bcg_d <- data_sets[["bcg"]]

metafor_models <- list(
  list(id = "metafor_bcg_reml", method = "REML", mods = NULL,
       call = "rma(yi, vi, data = bcg, method = \"REML\")"),
  list(id = "metafor_bcg_ml", method = "ML", mods = NULL,
       call = "rma(yi, vi, data = bcg, method = \"ML\")"),
  list(id = "metafor_bcg_ablat_reml", method = "REML", mods = "ablat",
       call = "rma(yi, vi, mods = ~ ablat, data = bcg, method = \"REML\")"))

metafor_ll <- list()
for (mm_spec in metafor_models) {
  cat(sprintf("fitting %s\n", mm_spec$id))
  warns <- character(0)
  res <- withCallingHandlers(
    if (is.null(mm_spec$mods)) metafor::rma(yi, vi, data = bcg_d, method = mm_spec$method)
    else metafor::rma(yi, vi, mods = ~ ablat, data = bcg_d, method = mm_spec$method),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
  reml <- mm_spec$method == "REML"
  ## log-likelihood by hand: N(X beta, diag(vi + tau2)); lme4's convention
  ## (its REML criterion has no log|X'X| term) and with +1/2 log|X'X|
  X <- cbind("(Intercept)" = rep(1, nrow(bcg_d)), if (!is.null(mm_spec$mods)) as.matrix(bcg_d[mm_spec$mods]))
  y <- bcg_d$yi
  k <- length(y)
  p <- ncol(X)
  tau2 <- res$tau2
  W <- 1 / (bcg_d$vi + tau2)
  XtWX <- crossprod(X, W * X)
  beta <- solve(XtWX, crossprod(X, W * y))
  r <- y - X %*% beta
  rss <- sum(W * r^2)
  ld_xtwx <- as.numeric(determinant(XtWX)$modulus)
  ld_xtx <- as.numeric(determinant(crossprod(X))$modulus)
  ll_ml <- -0.5 * (k * log(2 * pi) + sum(log(bcg_d$vi + tau2)) + rss)
  ll_reml_lme4 <- -0.5 * ((k - p) * log(2 * pi) + sum(log(bcg_d$vi + tau2)) + ld_xtwx + rss)
  ll_reml_xtx <- ll_reml_lme4 + 0.5 * ld_xtx
  ll_metafor <- as.numeric(logLik(res))
  ll_lme4 <- if (reml) ll_reml_lme4 else ll_ml
  stopifnot(isTRUE(all.equal(as.numeric(beta), as.numeric(res$beta), tolerance = 1e-8)))
  metafor_ll[[mm_spec$id]] <- c(metafor = ll_metafor, lme4_convention = ll_lme4,
                                with_logdet_XtX = if (reml) ll_reml_xtx else NA,
                                half_logdet_XtX = 0.5 * ld_xtx)
  bnames_r <- colnames(X)
  beta_m <- setNames(as.numeric(res$beta), rownames(res$beta))
  se_m <- setNames(as.numeric(res$se), rownames(res$beta))
  re <- ranef(res)
  out <- list(
    id = mm_spec$id, dataset = "bcg",
    formula = if (is.null(mm_spec$mods)) "yi ~ 1 + (1 | trial), residual variance vi known"
              else "yi ~ ablat + (1 | trial), residual variance vi known",
    reml = reml, lme4 = lme4_version, metafor = pkg_version("metafor"),
    call = mm_spec$call,
    method = mm_spec$method,
    tau2 = res$tau2, se_tau2 = res$se.tau2,
    beta = as.list(beta_m), se = as.list(se_m),
    zval = as.list(setNames(res$zval, names(beta_m))),
    pval = as.list(setNames(res$pval, names(beta_m))),
    ci_lb = as.list(setNames(res$ci.lb, names(beta_m))),
    ci_ub = as.list(setNames(res$ci.ub, names(beta_m))),
    fixef = as.list(setNames(as.numeric(res$beta), bnames_r)),
    fixef_se = as.list(setNames(as.numeric(res$se), bnames_r)),
    fixef_all = as.list(setNames(as.numeric(res$beta), bnames_r)),
    dropped = I(character(0)),
    sigma = 1, theta = sqrt(res$tau2),
    varcorr = list(trial = list(names = "(Intercept)", cov = matrix(res$tau2, 1, 1))),
    loglik = ll_metafor,
    deviance_or_reml = -2 * ll_metafor,
    loglik_lme4_convention = ll_lme4,
    half_logdet_XtX = 0.5 * ld_xtx,
    deviance_metafor = as.numeric(metafor::fitstats(res)["deviance:", 1]),
    aic = AIC(res), bic = BIC(res),
    QE = res$QE, QEp = res$QEp, I2 = res$I2, H2 = res$H2,
    singular = res$tau2 <= 0,
    nobs = res$k,
    ranef = list(trial = list(levels = I(bcg_d$trial), names = "(Intercept)",
                              values = matrix(re$pred, ncol = 1),
                              condvar_diag = matrix(re$se^2, ncol = 1))),
    fitted = unname(as.numeric(fitted(res))),
    columns = list(y = "yi", X = I(if (is.null(mm_spec$mods)) character(0) else mm_spec$mods),
                   groups = I("trial"), weights = "w"),
    known_variance = "vi",
    fixed_features = I(if (is.null(mm_spec$mods)) character(0) else mm_spec$mods),
    fit_intercept = TRUE,
    random_effects = list(trial = list(I("(Intercept)"))),
    lme4_warnings = I(unique(warns)),
    lme4_messages = I(character(0)),
    lme4_isREML = NULL, lme4_error = NULL, lme4_control = NULL)
  tag <- mm_spec$id
  write_json_file(out, file.path(out_dir, paste0(tag, ".json")))
  summary_lines <- c(summary_lines, sprintf("%s: tau2 %.10g, metafor logLik %.10g, lme4-convention %.10g",
                                            tag, res$tau2, ll_metafor, ll_lme4))
  cat("  ", tail(summary_lines, 1), "\n")
  json_registry[[tag]] <- list(dataset = "bcg", source = csv_registry[["bcg"]]$source,
                               call = mm_spec$call, extra = "tau2, beta, se, loglik, loglik_lme4_convention",
                               versions = sprintf("R %s, metafor %s, metadat %s", r_version,
                                                  pkg_version("metafor"), pkg_version("metadat")))
}

## does metafor's REML log-likelihood carry lme4's constants?
reml_ids <- c("metafor_bcg_reml", "metafor_bcg_ablat_reml")
reml_matches_lme4 <- all(vapply(reml_ids, function(i)
  isTRUE(all.equal(metafor_ll[[i]][["metafor"]], metafor_ll[[i]][["lme4_convention"]], tolerance = 1e-8)),
  logical(1)))
reml_matches_xtx <- all(vapply(reml_ids, function(i)
  isTRUE(all.equal(metafor_ll[[i]][["metafor"]], metafor_ll[[i]][["with_logdet_XtX"]], tolerance = 1e-8)),
  logical(1)))
ml_matches <- isTRUE(all.equal(metafor_ll[["metafor_bcg_ml"]][["metafor"]],
                               metafor_ll[["metafor_bcg_ml"]][["lme4_convention"]], tolerance = 1e-8))
ll_finding <- c(
  sprintf("- ML (`metafor_bcg_ml`): metafor's `logLik` %s the plain Gaussian log-likelihood (lme4's ML convention): %.12g vs %.12g.",
          if (ml_matches) "equals" else "does NOT equal",
          metafor_ll[["metafor_bcg_ml"]][["metafor"]], metafor_ll[["metafor_bcg_ml"]][["lme4_convention"]]),
  sprintf("- REML: lme4's REML criterion is `(n-p) log(2 pi) + log|V| + log|X'V^-1 X| + r'V^-1 r` (no `log|X'X|` term; checked on the fits above). metafor's REML `logLik` %s, %s.",
          if (reml_matches_lme4) "equals that convention" else "does NOT equal that convention",
          if (reml_matches_xtx) "it includes the extra constant `+ 1/2 log|X'X|` (metafor's default `REMLf = TRUE`), i.e. metafor = lme4-convention + `half_logdet_XtX`" else "and also not lme4-convention + 1/2 log|X'X|"),
  vapply(reml_ids, function(i) sprintf(
    "  - `%s`: metafor %.12g, lme4 convention %.12g, 1/2 log|X'X| = %.12g.",
    i, metafor_ll[[i]][["metafor"]], metafor_ll[[i]][["lme4_convention"]],
    metafor_ll[[i]][["half_logdet_XtX"]]), character(1)),
  "- `loglik` in these files is metafor's value; `loglik_lme4_convention` is the same fit's log-likelihood with lme4's constants (compare that one to a known-variance lme4-style fit).")

## lme4's own REML / weighted convention, checked on weighted_sleep_corr:
## logLik = Gaussian (restricted) log-likelihood with V = sigma^2 (W^-1 + Z Lambda Lambda' Z')
check_lme4_convention <- function(reml) {
  dd <- data_sets[["sleepstudy"]]
  fit <- fit_lmer("Reaction ~ Days + (Days | Subject)", dd, reml, weights = "w")$fit
  X <- getME(fit, "X"); Z <- as.matrix(getME(fit, "Z")); L <- as.matrix(getME(fit, "Lambda"))
  yy <- getME(fit, "y"); n <- length(yy); p <- ncol(X)
  V <- sigma(fit)^2 * (diag(1 / dd$w) + Z %*% L %*% t(L) %*% t(Z))
  Vi <- solve(V)
  b <- solve(t(X) %*% Vi %*% X, t(X) %*% Vi %*% yy)
  rr <- yy - X %*% b
  val <- -0.5 * ((if (reml) n - p else n) * log(2 * pi) + as.numeric(determinant(V)$modulus) +
                   (if (reml) as.numeric(determinant(t(X) %*% Vi %*% X)$modulus) else 0) +
                   as.numeric(t(rr) %*% Vi %*% rr))
  isTRUE(all.equal(val, as.numeric(logLik(fit)), tolerance = 1e-6))
}
lme4_conv_ok <- c(reml = check_lme4_convention(TRUE), ml = check_lme4_convention(FALSE))
cat("lme4 convention check (weighted sleepstudy):", lme4_conv_ok, "\n")

## ================================================================= README
esc <- function(s) gsub("|", "\\|", s, fixed = TRUE)
csv_lines <- vapply(names(csv_registry), function(stem) {
  ci <- csv_registry[[stem]]
  pkg <- sub("::.*", "", ci$source)
  sprintf("| `%s.csv` | R %s, %s %s | `%s` | %s (%d rows, R's row order)%s |", stem, r_version,
          pkg, pkg_version(pkg), ci$source,
          paste0("`", ci$columns, "`", collapse = ", "), ci$nrow,
          if (nzchar(ci$note)) paste0("; ", ci$note) else "")
}, character(1))
json_lines <- vapply(names(json_registry), function(tag) {
  ji <- json_registry[[tag]]
  sprintf("| `%s.json` | %s | `%s.csv` (`%s`) | `%s` | %s |", tag, ji$versions, ji$dataset,
          ji$source, esc(ji$call), ji$extra)
}, character(1))

readme <- c(
  "# Issue 8 references: weights, general random terms, rank deficiency, re.form, lmerTest anova, influence, known variances",
  "",
  sprintf("Generated by `Rscript tools/make_issue8_references.R` (run from the project root) with %s, lme4 %s, Matrix %s, lmerTest %s, nlme %s, mlmRev %s, metafor %s, metadat %s, jsonlite %s; default `lmer` / `rma` settings. Deterministic (no timings written; weights from a fixed seed): re-running rewrites identical CSV files and, apart from the Penicillin fits, byte-identical JSON files. The crossed Penicillin fits (`weighted_penicillin`, `devfun_penicillin`, `reform_penicillin`) come out of lme4 with differences up to ~2e-9 (relative) between R processes on the same machine (same data and settings, identical within one process: floating-point rounding that depends on the memory layout; the optimum itself is only determined to lme4's optimizer tolerance).",
          R.version.string, lme4_version, pkg_version("Matrix"), pkg_version("lmerTest"),
          pkg_version("nlme"), pkg_version("mlmRev"), pkg_version("metafor"),
          pkg_version("metadat"), pkg_version("jsonlite")),
  "",
  "## Data (CSV)",
  "",
  "Grouping factors are strings; nested factors also as the label `\"<outer>:<inner>\"`; numeric model-matrix columns carry R's names. Numbers read back to R's exact doubles (15 significant digits, or 17 where needed; the script checks the round trip, so the fits use exactly the values in the CSV).",
  sprintf("Prior weights: per data set `set.seed(%d); w <- round(runif(nrow(d), 0.25, 4), 3)` in R's row order. The `*_raw.csv` files hold factors as strings (numbers as numbers) for designs rebuilt from the formula; their R fits use factors with levels in sorted (C-locale) string order, the order a Python reader sorting the labels gets (this differs from the package's level order for `mlmRev::Exam$schgend` (mixed, boys, girls) and `mlmRev::ScotsSec$sex` (M, F)); each JSON lists the levels used.", WEIGHT_SEED),
  "",
  "| file | R / package versions | source | columns |",
  "| --- | --- | --- | --- |",
  csv_lines,
  "",
  "## Results (JSON)",
  "",
  "| file | versions | data | R call | extra fields |",
  "| --- | --- | --- | --- | --- |",
  json_lines,
  "",
  "## Fields",
  "",
  "Base fields as in `/work/shared/lme4/README.md`: `fixef`, `fixef_se` (kept columns, as `fixef(fit)`), `sigma`, `theta`, `varcorr` ({factor: {names, cov}}; a factor with several terms appears as `Subject`, `Subject.1`), `loglik`, `deviance_or_reml`, `aic`, `bic`, `singular` (`isSingular`), `nobs`, `ranef` ({factor: {levels, names, values (levels x terms), condvar_diag}}; several terms of one factor combined, lme4's column names), `fitted`. Factor keys and level labels of nested terms use the CSV column (`batch:cask` / `Worker:Machine`, levels `\"A:a\"`), not lme4's `cask:batch` / `Machine:Worker` naming. Plus, in every file:",
  "- `id`, `dataset` (CSV stem), `formula` (the lme4 formula string), `reml`, `lme4` (version), `call` (the R call).",
  "- `columns`: `y`, `X` (all numeric model-matrix columns passed as features: fixed-effect columns, then covariates used only in random terms; R's names, no intercept; for `raw` files the raw predictor columns of the fixed part), `groups`, `weights` (column name or null).",
  "- `fixed_features`: fixed-effect columns (R's `model.matrix` names without `(Intercept)`, including aliased columns lme4 dropped); `fit_intercept`.",
  "- `random_effects`: {factor column: list of blocks}, one block per lme4 random term (from `getME(fit, \"cnms\")`), `(Intercept)` for an intercept.",
  "- `dropped`: fixed-effect columns lme4 dropped as aliased; `fixef_all`: `fixef(fit, add.dropped = TRUE)` (NA as null).",
  "- `lme4_isREML`: lme4's `isREML(fit)`. lme4 1.1-31 fits `Yield ~ 0 + (1 | Batch)` by ML even with `REML = TRUE` (with no fixed effects REML and ML coincide; `isREML` is FALSE), so `nofixed_dyestuff_reml.json` equals the ML file; its `deviance_or_reml` is `deviance(fit, REML = FALSE)` because `REMLcrit()` of that fit adds lme4's uninitialised `ldRX2` and changes from run to run.",
  "- `lme4_error`, `lme4_control`: null, except when lme4 refuses the model with its default control (`catrandom_ergostool`: 36 observations for 36 `Type` random effects): then `lme4_error` holds lme4's error message and the fit is the one with `control = lme4_control`.",
  "- `lme4_warnings`: warnings of the fit and lme4's convergence messages (`fit@optinfo$conv$lme4$messages`); `lme4_messages`: messages (e.g. `boundary (singular) fit: see help('isSingular')`). Empty lists when none.",
  "",
  "Extra fields:",
  "- `hatvalues`, `cooks_distance`, `rstudent`, `pearson_residuals`: lme4's `hatvalues(fit)`, `cooks.distance(fit)`, `rstudent(fit)`, `residuals(fit, type = \"pearson\")` (for weighted fits they include the prior weights as lme4 computes them).",
  "- `deviance_at_theta`: list of {`theta`, `value` = `as.function(fit)(theta)`} (the REML criterion for REML fits, the deviance for ML fits); the first entry is the fitted theta.",
  "- `heldout_predictions` (rankdef_sleep): `predict(fit, newdata = rows 1-20 (0-based `rows`), allow.new.levels = TRUE)` with `Subject` of the first 10 rows set to `\"999\"` (a new level: random effect 0).",
  "- `re_form`: list of {`re_form` (R formula string, or `NA`), `random_effects` ({factor: covariates kept}; {} for NA), `predict` = `predict(fit, re.form = ...)` on the training data}. Note: for the correlated `(Days | Subject)` model lme4 accepts `~(1 | Subject)` and keeps only the intercept column of the random effects.",
  "- lmerTest files (`anova_*`, fitted with `lmerTest::lmer`): `raw` true, `categorical` (factor columns), `levels` (their levels in R's order, the first is the reference), `anova` = `anova(fit)` (type III, Satterthwaite) as {term: {`Sum Sq`, `Mean Sq`, `NumDF`, `DenDF`, `F value`, `Pr(>F)`}}, `satterthwaite` = `summary(fit)$coefficients` as {coefficient: {`Estimate`, `Std. Error`, `df`, `t value`, `Pr(>|t|)`}}, `model_matrix_ncol`, `model_matrix_columns` (R's fixed-effect model-matrix column names).",
  "- `influence` (influence_*): lme4's `influence(fit, groups = ...)`: `deleted` (levels in order of first appearance, as lme4 orders them), `fixef_names`, `fixed_effects_deleted` (levels x fixef), `var_cov_comps_names`, `var_cov_comps` (full fit), `var_cov_comps_deleted` (levels x components), `vcov_deleted` (one matrix per deleted level), `converged`, `function_evals`, `cooks_distance` = `cooks.distance(infl)` (lme4 scales by `(n - p) / (n p)` with n the number of deleted groups), `dfbetas` = `dfbetas(infl)`; plus `hatvalues`, `cooks_distance`, `rstudent` of the full fit at the top level.",
  "- metafor files (`metafor_bcg_*`): `tau2`, `se_tau2`, `beta`/`se`/`zval`/`pval`/`ci_lb`/`ci_ub` (metafor's names, `intrcpt`), `fixef`/`fixef_se` (the same with lme4's names), `loglik` (= `logLik(res)`), `deviance_or_reml` (= -2 `loglik`, metafor's constants), `varcorr` (tau2), `loglik_lme4_convention`, `half_logdet_XtX`, `deviance_metafor`, `aic`, `bic` (metafor's), `QE`, `QEp`, `I2`, `H2`, `ranef` (`ranef(res)`: `pred`, `se^2`), `fitted` (`fitted(res)`, X beta), `sigma` = 1 and `theta` = tau (the residual variances are the known `vi`, i.e. prior weights `w = 1/vi` with sigma fixed at 1), `known_variance` = `vi`.",
  "",
  "## Log-likelihood constants",
  "",
  sprintf("lme4's `logLik` for a weighted fit is the Gaussian log-likelihood with V = sigma^2 (W^-1 + Z Lambda Lambda' Z') (so it includes the `1/2 sum(log w)` term), and the REML one is the restricted likelihood without a `log|X'X|` term; checked numerically on `weighted_sleep_corr`: REML %s, ML %s.",
          if (lme4_conv_ok[["reml"]]) "matches" else "DOES NOT match",
          if (lme4_conv_ok[["ml"]]) "matches" else "DOES NOT match"),
  "",
  ll_finding,
  "",
  "## Fit notes",
  "",
  paste0("- ", summary_lines))
writeLines(readme, file.path(out_dir, "README.md"))
cat("wrote", file.path(out_dir, "README.md"), "\n")
