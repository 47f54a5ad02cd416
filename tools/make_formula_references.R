#!/usr/bin/env Rscript
## Generate R/lme4 references for the lme4 formula parser of sklearn_mixed.
##
## Run from the project root:   Rscript tools/make_formula_references.R
## Written with R 4.2.2, lme4 1.1-31, geepack 1.3.9, jsonlite 1.8.4.
##
## Writes:
##   sklearn_mixed/datasets/data/dietox.csv
##       geepack's dietox (861 rows, 72 pigs), rows in R's order, columns
##       Weight, Feed (NA as empty cells), Time, Pig (label), Evit and Cu
##       (as.integer of the factors: 1, 2, 3), Litter (label), Start, CuF (the
##       original Cu labels "Cu000", "Cu035", "Cu175").  Numbers in R's
##       15-digit form when that reads back to the same double, else 17
##       significant digits: the CSV holds geepack's exact values (checked).
##   tests/data/formula/<letter>_<slug>.json
##       one lmer fit per formula (fields below), fitted to the data as read
##       back from dietox.csv (Pig, Litter, CuF factors via stringsAsFactors;
##       Evit, Cu integer), or to lme4's sleepstudy
##   tests/data/formula/model_matrix.json
##       model.matrix(~ rhs, d) for fixed-part-only right-hand sides on dietox
##       (column names, assign, term labels, rows 0-39 and 400-420, 0-based),
##       or R's error; plus "new_rows": the predict-time model matrix
##       (makepredictcall: poly coefs / scale center learned on d) on new data
##   tests/data/formula/README.md
##       provenance and the list of files
##
## lmer JSON fields: name, dataset, formula, REML, lme4_call, X_names,
## X_assign (attr(X, "assign")), X_dropped (columns lme4 dropped for rank
## deficiency: names(attr(X, "col.dropped"))), X (row-major), y, offset, cnms (an array of
## {"group", "names"} in lme4's term order: a JSON object would lose the
## repeated factor of (Time || Pig) and of (0 + Time | Pig) + (1 | Pig)),
## flist_names, logLik, fixef, theta, sigma, singular, messages (lme4's
## convergence messages, if any), fitted, newdata (column vectors, factors as
## text), predict_new (allow.new.levels = TRUE), predict_new_population
## (re.form = NA), note (case-specific remark, else "").
##
## Numbers are written with the shortest of 15, 16 or 17 significant digits
## that reads back to the same double (jsonlite 1.8.4 caps toJSON's digits
## at 15 significant digits, so they are formatted here and inserted
## verbatim).  Re-running gives the same files (apart from the date in the
## README), except case u: see its note.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
  library(geepack)
})

csv_path <- file.path("sklearn_mixed", "datasets", "data", "dietox.csv")
out_dir <- file.path("tests", "data", "formula")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)

## ----------------------------------------------------------- number output
fmt_num <- function(v) {
  stopifnot(is.numeric(v) || is.logical(v))
  v <- as.numeric(v)
  if (any(is.infinite(v) | is.nan(v))) stop("non-finite number")
  s <- rep(NA_character_, length(v))
  ok <- !is.na(v)
  s[ok] <- sprintf("%.15g", v[ok])
  for (dg in 16:17) {
    bad <- ok & as.numeric(s) != v
    bad[is.na(bad)] <- FALSE
    s[bad] <- sprintf(paste0("%.", dg, "g"), v[bad])
  }
  stopifnot(all(as.numeric(s[ok]) == v[ok]))
  s
}
json_verbatim <- function(s) structure(s, class = "json")
json_verbatim_string <- function(s) json_verbatim(toJSON(s, auto_unbox = TRUE))
j_scalar <- function(x) json_verbatim(fmt_num(x))
j_array <- function(x) {
  s <- fmt_num(x)
  s[is.na(s)] <- "null"
  json_verbatim(paste0("[", paste(s, collapse = ","), "]"))
}
j_strings <- function(x) toJSON(as.character(x))   # always an array
j_named <- function(x) lapply(as.list(x), j_scalar)  # named numbers -> object
j_matrix <- function(m) {
  m <- matrix(as.numeric(m), nrow(m))
  rows <- apply(m, 1, function(r) paste0("[", paste(fmt_num(r), collapse = ","), "]"))
  json_verbatim(paste0("[", paste(rows, collapse = ","), "]"))
}
j_frame <- function(df) {
  lapply(df, function(v) if (is.numeric(v)) j_array(v) else j_strings(as.character(v)))
}
write_json_file <- function(x, path) {
  writeLines(toJSON(x, auto_unbox = TRUE, json_verbatim = TRUE, pretty = TRUE,
                    null = "null", na = "null"), path)
}

## ------------------------------------------------------------ dietox.csv
data(dietox, package = "geepack")
orig <- dietox
csv <- data.frame(
  Weight = orig$Weight, Feed = orig$Feed, Time = orig$Time,
  Pig = as.character(orig$Pig), Evit = as.integer(orig$Evit),
  Cu = as.integer(orig$Cu), Litter = as.character(orig$Litter),
  Start = orig$Start, CuF = as.character(orig$Cu),
  stringsAsFactors = FALSE)
num <- vapply(csv, is.numeric, logical(1))
csv_txt <- csv
csv_txt[num] <- lapply(csv[num], function(v) {
  s <- if (is.integer(v)) as.character(v) else fmt_num(v)
  s[is.na(v)] <- ""                    # Feed's NA as an empty cell
  s
})
write.csv(csv_txt, csv_path, row.names = FALSE, quote = which(!num), na = "")
cat(sprintf("wrote %s (%d rows)\n", csv_path, nrow(csv)))

## read back: the data of every dietox fit below
back <- read.csv(csv_path, stringsAsFactors = TRUE,
                 colClasses = c(Pig = "character", Litter = "character",
                                CuF = "character"))
for (cn in c("Pig", "Litter", "CuF")) back[[cn]] <- factor(back[[cn]])
stopifnot(
  nrow(back) == 861, identical(names(back), names(csv)),
  identical(back$Weight, orig$Weight), identical(back$Start, orig$Start),
  identical(is.na(back$Feed), is.na(orig$Feed)),
  all(back$Feed == orig$Feed, na.rm = TRUE),
  identical(back$Time, orig$Time), is.integer(back$Evit), is.integer(back$Cu),
  identical(as.character(back$Pig), as.character(orig$Pig)),
  identical(as.character(back$Litter), as.character(orig$Litter)),
  identical(as.character(back$CuF), as.character(orig$Cu)),
  identical(back$Cu, as.integer(orig$Cu)), identical(back$Evit, as.integer(orig$Evit)))
d <- back[, c("Weight", "Time", "Pig", "Evit", "Cu", "Litter", "Start", "CuF")]

data("sleepstudy", package = "lme4")
ss <- sleepstudy

## ------------------------------------------------------------------ cases
cases <- list(
  list(id = "a", slug = "quadratic_slope", formula = "Weight ~ Time + I(Time^2) + (Time | Pig)"),
  list(id = "b", slug = "quadratic_slope_ml", formula = "Weight ~ Time + I(Time^2) + (Time | Pig)", REML = FALSE),
  list(id = "c", slug = "log_response", formula = "log(Weight) ~ Time + (1 | Pig)"),
  list(id = "d", slug = "time_star_cuf", formula = "Weight ~ Time * CuF + (1 | Pig)"),
  list(id = "e", slug = "factor_cu", formula = "Weight ~ factor(Cu) + Time + (1 | Pig)"),
  list(id = "f", slug = "log_time_slope", formula = "Weight ~ Time + (log(Time) | Pig)"),
  list(id = "g", slug = "poly2", formula = "Weight ~ poly(Time, 2) + (1 | Pig)"),
  list(id = "h", slug = "poly3_star_cuf", formula = "Weight ~ poly(Time, 3) * CuF + (Time | Pig)"),
  list(id = "i", slug = "zero_plus_one", formula = "Weight ~ 0 + Time + 1 + (1 | Pig)"),
  list(id = "j", slug = "minus_one", formula = "Weight ~ -1 + Time + (1 | Pig)"),
  list(id = "k", slug = "log_log_litter_pig", formula = "log(Weight) ~ log(Time) + factor(Evit) + (1 | Litter) + (1 | Pig)"),
  list(id = "l", slug = "offset_start", formula = "Weight ~ Time + offset(Start) + (1 | Pig)"),
  list(id = "m", slug = "scale_uncorrelated", formula = "Weight ~ scale(Time) + I(Time/10):CuF + (Time || Pig)"),
  list(id = "n", slug = "sqrt_exp_abs", formula = "sqrt(Weight) ~ exp(Time/10) + abs(Time - 6) + (1 | Pig)"),
  list(id = "o", slug = "cuf_plus_time_in_cuf", formula = "Weight ~ CuF + Time:CuF + (1 | Pig)"),
  list(id = "p", slug = "poly2_raw", formula = "Weight ~ poly(Time, 2, raw = TRUE) + (1 | Pig)"),
  list(id = "q", slug = "interactions_squared", formula = "Weight ~ (Time + CuF + factor(Evit))^2 + (1 | Pig)"),
  list(id = "r", slug = "cuf_slash_time", formula = "Weight ~ CuF/Time + (1 | Pig)"),
  list(id = "s", slug = "litter_slash_pig", formula = "Weight ~ Time + I(Time^2) + (1 | Litter/Pig)"),
  list(id = "t", slug = "separate_slope_intercept", formula = "log(Weight) ~ Time + I(Time^2) + (0 + Time | Pig) + (1 | Pig)"),
  list(id = "u", slug = "cuf_by_litter", formula = "Weight ~ Time + (1 | Pig) + (0 + CuF | Litter)",
       note = paste(
         "Not bit-reproducible: near the singular boundary lme4's deviance differs in",
         "the last bits between R processes (reference BLAS, one thread), and the",
         "optimizer stops either at theta[7] = 0 (singular, logLik -2399.97204233) or",
         "at theta[7] = 0.0039 (not singular, logLik -2399.97204385); fixef, sigma and",
         "fitted agree to about 1e-6 relative, the other thetas to about 3e-4:",
         "compare loosely.")),
  list(id = "v", slug = "sleep_quadratic_slope", formula = "Reaction ~ Days + I(Days^2) + (Days | Subject)", dataset = "sleepstudy"),
  list(id = "w", slug = "sleep_log_poly2", formula = "log(Reaction) ~ poly(Days, 2) + (1 | Subject)", dataset = "sleepstudy"),
  list(id = "x", slug = "sleep_log1p_uncorrelated", formula = "Reaction ~ log1p(Days) + (log1p(Days) || Subject)", dataset = "sleepstudy"),
  list(id = "y", slug = "cubic_offset_half_start", formula = "Weight ~ Time + I(Time^2) + I(Time^3) + offset(0.5 * Start) + (Time | Pig)"),
  list(id = "z", slug = "ordered_factor", formula = "Weight ~ Time + ordered(Evit) + (1 | Pig)"),
  list(id = "za", slug = "contr_sum", formula = "Weight ~ Time * CuF + (1 | Pig)",
       contrasts = list(CuF = "contr.sum"), anova = TRUE),
  list(id = "zc", slug = "ordered_interaction", formula = "Weight ~ Time * ordered(Evit) + (1 | Pig)",
       anova = TRUE),
  list(id = "zd", slug = "contr_sas_interaction", formula = "Weight ~ Time * CuF + (1 | Pig)",
       contrasts = list(CuF = "contr.SAS"), anova = TRUE),
  list(id = "ze", slug = "treatment_interaction", formula = "Weight ~ Time * CuF + (1 | Pig)",
       anova = TRUE),
  list(id = "zb", slug = "contr_helmert_relevel",
       formula = "Weight ~ factor(Evit) + relevel(CuF, ref = \"Cu035\") + Time + (Time | Pig)",
       contrasts = list(`factor(Evit)` = "contr.helmert"))
)

## new data: first 6 rows of two seen groups, plus the first group's 6 rows
## relabelled "unseen" (Litter too when the formula uses it; dietox: Time +
## 0.5 on those rows)
make_new <- function(dataset, vars) {
  if (dataset == "dietox") {
    dat <- d; g <- "Pig"; seen <- c("4601", tail(levels(d$Pig), 1))
  } else {
    dat <- ss; g <- "Subject"; seen <- c("308", "372")
  }
  first <- levels(dat[[g]])[1]
  pick <- function(lab) head(which(as.character(dat[[g]]) == lab), 6)
  rows <- c(pick(seen[1]), pick(seen[2]), pick(first))
  cols <- unique(c(vars, g))
  new <- dat[rows, cols, drop = FALSE]
  new[] <- lapply(new, function(v) if (is.factor(v)) as.character(v) else v)
  rownames(new) <- NULL
  un <- 13:18
  new[[g]][un] <- "unseen"
  if ("Litter" %in% cols) new$Litter[un] <- "unseen"
  if (dataset == "dietox") new$Time[un] <- new$Time[un] + 0.5
  ## covariates that are factors in the data stay factors with the data's levels
  ## (relevel() in a formula needs a factor at predict time too)
  for (v in setdiff(cols, c(g, "Litter"))) {
    if (is.factor(dat[[v]])) new[[v]] <- factor(new[[v]], levels = levels(dat[[v]]))
  }
  list(new = new, rows = rows - 1L)
}

readme_rows <- character(0)
failed <- character(0)
for (cs in cases) {
  dataset <- if (is.null(cs$dataset)) "dietox" else cs$dataset
  REML <- if (is.null(cs$REML)) TRUE else cs$REML
  dname <- if (dataset == "dietox") "d" else "sleepstudy"
  contr <- cs$contrasts  # lme4's contrasts argument, e.g. list(CuF = "contr.sum")
  contr_txt <- if (is.null(contr)) "" else sprintf(", contrasts = list(%s)", paste(
    sprintf("`%s` = \"%s\"", names(contr), unlist(contr)), collapse = ", "))
  call_txt <- sprintf(
    "lmer(%s, data = %s, REML = %s%s, control = lmerControl(check.conv.singular = \"ignore\"))",
    cs$formula, dname, REML, contr_txt)
  dat <- if (dataset == "dietox") d else ss
  warns <- character(0)
  fit <- tryCatch(
    withCallingHandlers(
      lmer(as.formula(cs$formula), data = dat, REML = REML, contrasts = contr,
           control = lmerControl(check.conv.singular = "ignore")),
      warning = function(w) {
        warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")
      },
      message = function(m) {
        warns <<- c(warns, trimws(conditionMessage(m))); invokeRestart("muffleMessage")
      }),
    error = function(e) e)
  if (inherits(fit, "error")) {
    msg <- conditionMessage(fit)
    cat(sprintf("[%s] FAILED: %s\n", cs$id, msg))
    failed <- c(failed, sprintf("- %s. `%s`: R error: %s", cs$id, cs$formula,
                                gsub("\n", " ", msg)))
    next
  }
  X <- getME(fit, "X")
  cnms <- getME(fit, "cnms")
  nd <- make_new(dataset, all.vars(as.formula(cs$formula)))
  new <- nd$new
  p_new <- predict(fit, newdata = new, allow.new.levels = TRUE)
  p_pop <- predict(fit, newdata = new, re.form = NA)
  msgs <- unique(c(warns, fit@optinfo$conv$lme4$messages))
  out <- list(
    name = paste0(cs$id, "_", cs$slug),
    dataset = dataset,
    formula = cs$formula,
    REML = REML,
    lme4_call = call_txt,
    X_names = j_strings(colnames(X)),
    X_assign = j_array(attr(X, "assign")),
    X_dropped = j_strings(names(attr(X, "col.dropped"))),
    X = j_matrix(X),
    y = j_array(getME(fit, "y")),
    offset = j_array(getME(fit, "offset")),
    cnms = lapply(seq_along(cnms), function(i)
      list(group = names(cnms)[i], names = j_strings(cnms[[i]]))),
    flist_names = j_strings(names(getME(fit, "flist"))),
    logLik = j_scalar(as.numeric(logLik(fit))),
    fixef = j_named(fixef(fit)),
    theta = j_array(getME(fit, "theta")),
    sigma = j_scalar(sigma(fit)),
    singular = isSingular(fit),
    messages = j_strings(msgs),
    fitted = j_array(unname(fitted(fit))),
    newdata_rows = j_array(nd$rows),
    newdata = j_frame(new),
    predict_new = j_array(unname(p_new)),
    predict_new_population = j_array(unname(p_pop)),
    note = if (is.null(cs$note)) "" else cs$note
  )
  if (!is.null(contr)) out$contrasts <- lapply(contr, json_verbatim_string)
  if (isTRUE(cs$anova)) {  # lmerTest 3.1-3's type III F tests (Satterthwaite)
    a <- anova(lmerTest::as_lmerModLmerTest(fit), type = 3)
    out$anova_type3 <- list(terms = j_strings(rownames(a)), F = j_array(a[["F value"]]),
                            NumDF = j_array(a[["NumDF"]]), DenDF = j_array(a[["DenDF"]]))
  }
  fname <- paste0(cs$id, "_", cs$slug, ".json")
  write_json_file(out, file.path(out_dir, fname))
  cat(sprintf("[%s] %s  logLik %.6f  p=%d%s\n", cs$id, fname, logLik(fit), ncol(X),
              if (length(msgs)) paste0("  (", paste(msgs, collapse = " | "), ")") else ""))
  note <- c(if (isSingular(fit)) "singular fit", cs$note,
            if (length(msgs)) paste0("messages: ", paste(msgs, collapse = "; ")))
  readme_rows <- c(readme_rows, sprintf(
    "| `%s` | %s | `%s` | %s | %s |", fname, dataset, gsub("|", "\\|", cs$formula, fixed = TRUE),
    REML, paste(note, collapse = "; ")))
}

## ------------------------------------------------------- model_matrix.json
rhs_list <- c(
  "Time * CuF", "0 + Time * CuF", "CuF:Time", "0 + CuF:Time", "poly(Time, 3)",
  "poly(Time, 2, raw = TRUE)", "factor(Cu) * factor(Evit)", "factor(Cu):Time + Time",
  "scale(Time) + scale(Weight, scale = FALSE)",
  "I(Time^2) + I((Time - 6)^2) + I(Time * Start)",
  "log(Weight, 2) + log10(Weight) + log2(Time) + exp(-Time)",
  "(Time + CuF + Start)^2", "Time %in% CuF", "CuF / Time", "Time - 1", "+1 + Time",
  "-1 + CuF", "CuF - 1 + Time", "Time:Start:CuF + CuF", "as.numeric(Time > 6)",
  "I(Time > 6)", "pmin(Time, 6)", "factor(Time > 6)", "ordered(Evit)",
  "Time * ordered(Evit)", "0 + ordered(Evit)", "ordered(Cu):Time + ordered(Evit)",
  "relevel(CuF, ref = \"Cu035\")", "Time:relevel(CuF, \"Cu175\")",
  "factor(Cu, levels = c(3, 1, 2))", "factor(CuF, levels = c(\"Cu175\", \"Cu000\", \"Cu035\")) * Time")
mm_rows <- c(0:39, 400:420)   # 0-based
mm_cases <- lapply(rhs_list, function(rhs) {
  f <- as.formula(paste("~", rhs))
  mm <- tryCatch(model.matrix(f, d), error = function(e) e)
  if (inherits(mm, "error")) {
    cat(sprintf("model.matrix(~ %s) FAILED: %s\n", rhs, conditionMessage(mm)))
    return(list(rhs = rhs, ok = FALSE, error = conditionMessage(mm)))
  }
  tt <- terms(f, data = d)
  list(rhs = rhs, ok = TRUE,
       deparsed = paste(deparse(f, width.cutoff = 500L), collapse = ""),
       term_labels = j_strings(attr(tt, "term.labels")),
       intercept = attr(tt, "intercept"),
       colnames = j_strings(colnames(mm)),
       assign = j_array(attr(mm, "assign")),
       nrow = nrow(mm),
       X = j_matrix(mm[mm_rows + 1L, , drop = FALSE]))
})
new_time <- data.frame(Time = c(0.5, 3, 12.5, 20))
new_cases <- lapply(c("poly(Time, 3)", "scale(Time)"), function(rhs) {
  tt <- delete.response(terms(model.frame(as.formula(paste("~", rhs)), d)))
  mm <- model.matrix(tt, model.frame(tt, new_time))
  list(rhs = rhs,
       predvars = paste(deparse(attr(tt, "predvars"), width.cutoff = 500L), collapse = ""),
       newdata = j_frame(new_time),
       colnames = j_strings(colnames(mm)),
       X = j_matrix(mm))
})
mm_out <- list(
  dataset = "dietox",
  call = "model.matrix(~ rhs, d)",
  rows = j_array(mm_rows),
  cases = mm_cases,
  new_rows_call = paste(
    "tt <- delete.response(terms(model.frame(~ rhs, d)));",
    "model.matrix(tt, model.frame(tt, newdata))"),
  new_rows = new_cases)
write_json_file(mm_out, file.path(out_dir, "model_matrix.json"))
cat("wrote model_matrix.json\n")

## ------------------------------------------------ oats: a local optimum on the boundary
## MASS's oats, lmer(Y ~ N + V + (V || B)): (1 | B) + (0 + V | B), a 3 x 3 block of
## the variety dummies; every optimizer of allFit reaches logLik -282.6301, a fit
## started from lme4's default theta by a quasi-Newton method can stop at a singular
## local minimum (-282.7983).
data("oats", package = "MASS")
dir.create(file.path(out_dir, "oats"), showWarnings = FALSE)
oats_csv <- file.path(out_dir, "oats", "oats.csv")
write.csv(data.frame(B = as.character(oats$B), V = as.character(oats$V),
                     N = as.character(oats$N), Y = oats$Y),
          oats_csv, row.names = FALSE)
od <- read.csv(oats_csv, stringsAsFactors = TRUE)
ofit <- lmer(Y ~ N + V + (V || B), od, control = lmerControl(check.conv.singular = "ignore"))
write_json_file(list(
  name = "oats_v_or_b", formula = "Y ~ N + V + (V || B)", REML = TRUE,
  lme4_call = "lmer(Y ~ N + V + (V || B), oats, REML = TRUE)",
  logLik = j_scalar(as.numeric(logLik(ofit))), fixef = j_named(fixef(ofit)),
  theta = j_array(getME(ofit, "theta")), sigma = j_scalar(sigma(ofit)),
  singular = isSingular(ofit)), file.path(out_dir, "oats", "oats_v_or_b.json"))
cat(sprintf("[oats] logLik %.6f\n", logLik(ofit)))

## ------------------------------------------------------------------ README
vers <- sprintf("R %s.%s, lme4 %s, geepack %s, jsonlite %s", R.version$major,
                R.version$minor, packageVersion("lme4"), packageVersion("geepack"),
                packageVersion("jsonlite"))
readme <- c(
  "# lme4 formula references",
  "",
  sprintf("Generated by `tools/make_formula_references.R` (run `Rscript tools/make_formula_references.R` from the project root) with %s, on %s.",
          vers, format(Sys.Date())),
  "",
  "Data: `dietox` is `sklearn_mixed/datasets/data/dietox.csv` (geepack's `dietox`, written by the same script) read back with `read.csv` (Pig, Litter, CuF as factors; Evit, Cu integer) and restricted to Weight, Time, Pig, Evit, Cu, Litter, Start, CuF (no NA: all 861 rows); `sleepstudy` is lme4's `sleepstudy`.",
  "",
  "Each `<letter>_<slug>.json` holds one `lmer` fit (its exact call in `lme4_call`): the fixed-effects design (`X_names`, `X_assign`, `X_dropped` (columns lme4 dropped as rank deficient), `X` row-major, all rows), `y`, `offset`, `cnms` (array of `{group, names}` in lme4's term order), `flist_names`, `logLik`, `fixef`, `theta`, `sigma`, `singular`, `messages`, `fitted`, and predictions on `newdata` (column vectors; rows `newdata_rows` of the data, 0-based: the first 6 rows of two seen groups, then the first group's 6 rows with the group, and Litter when used, relabelled `\"unseen\"` and, for dietox, Time + 0.5) with `allow.new.levels = TRUE` (`predict_new`) and `re.form = NA` (`predict_new_population`).",
  "",
  "Numbers carry the shortest of 15, 16 or 17 significant digits that reads back to R's double.",
  "",
  "| file | data | formula | REML | note |",
  "| --- | --- | --- | --- | --- |",
  readme_rows,
  "",
  "`model_matrix.json`: `model.matrix(~ rhs, d)` on dietox for fixed-part-only right-hand sides: column names, `assign`, term labels, and the values of rows `rows` (0-based: 0-39 and 400-420), or R's error (`ok: false`); `new_rows`: for `poly(Time, 3)` and `scale(Time)`, the model matrix at Time = 0.5, 3, 12.5, 20 with the predict-time variables learned on d (`makepredictcall`: poly coefficients, scale center/scale).",
  "",
  "`oats/`: MASS's `oats` (`oats.csv`) and `lmer(Y ~ N + V + (V || B), oats)` (`oats_v_or_b.json`: logLik, fixef, theta, sigma): a singular-looking local minimum on the boundary that a quasi-Newton search from lme4's default start can stop at.",
  "",
  "Formulas R rejected (dropped):",
  "",
  if (length(failed)) failed else "- none")
writeLines(readme, file.path(out_dir, "README.md"))
cat("wrote README.md\n")
