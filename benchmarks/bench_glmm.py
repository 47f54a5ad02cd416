"""Time GLMM fits: sklearn-mixed against lme4's glmer and gpboost.

Models (Bernoulli and binomial unless noted), each fitted ``--repeat`` times
by sklearn-mixed (median wall time of one fit, estimator on a DataFrame) and
by lme4 in one ``Rscript`` (``system.time`` of ``glmer``; R's start-up and
reading excluded; fewer repeats for the slow ones):

- ``verbagg_id``: lme4's VerbAgg, ``r2 ~ Anger + Gender + btype + situ + (1 | id)``
- ``verbagg_crossed``: the same ``+ (1 | item)`` (316 x 24 crossed levels, 7584 rows)
- ``contraception``: mlmRev's ``use ~ age + I(age^2) + urban + livch + (urban | district)``
- ``cbpp``: ``prop ~ period + (1 | herd)``, ``weights = size``; and ``nAGQ = 25``
- ``poisson``: the simulated crossed Poisson of the tests, ``offset = log(exposure)``
- ``insteval``: lme4's InstEval, ``y >= 4 ~ service + (1 | s) + (1 | d) + (1 | dept)``
  (73421 rows; lme4 needs minutes)

For each: both times, the ratio ``lme4 / sklearn-mixed`` (above 1: faster)
and both log-likelihoods (ours should not be lower).  gpboost (``pip install
gpboost``; C++, its own Laplace approximation, OpenMP on both cores) fits the
models with random intercepts only (the Bernoulli ones, Poisson with its
offset) when installed; it computes no standard errors in ``fit`` (ours and
lme4's fits include the Hessian for them).

    python benchmarks/bench_glmm.py [--repeat 5] [--only verbagg_crossed,insteval]

Data: ``tests/data/glmer`` and ``/work/shared/data/insteval.csv``
(``--insteval PATH``; skipped with a message when missing).
"""

import argparse
import json
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from sklearn_mixed import MixedLogisticRegression, MixedPoissonRegressor

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "glmer"
VERBAGG = ["Anger", "GenderM", "btypescold", "btypeshout", "situself"]
CONTRA = ["age", "I(age^2)", "urbanY", "livch1", "livch2", "livch3+"]

# name: (csv, response, features, groups, slopes, weights, offset, nagq, family,
#        R formula, R extra arguments, lme4 repeats)
MODELS = {
    "verbagg_id": (
        "verbagg.csv",
        "r2",
        VERBAGG,
        ["id"],
        None,
        None,
        None,
        1,
        "binomial",
        "r2 ~ Anger + Gender + btype + situ + (1 | id)",
        "",
        3,
    ),
    "verbagg_crossed": (
        "verbagg.csv",
        "r2",
        VERBAGG,
        ["id", "item"],
        None,
        None,
        None,
        1,
        "binomial",
        "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
        "",
        3,
    ),
    "contraception": (
        "contraception.csv",
        "use",
        CONTRA,
        ["district"],
        {"district": ["urbanY"]},
        None,
        None,
        1,
        "binomial",
        "use ~ age + I(age^2) + urban + livch + (urban | district)",
        "",
        3,
    ),
    "cbpp": (
        "cbpp.csv",
        "prop",
        ["period2", "period3", "period4"],
        ["herd"],
        None,
        "size",
        None,
        1,
        "binomial",
        "prop ~ period + (1 | herd)",
        ", weights = size",
        5,
    ),
    "cbpp_agq25": (
        "cbpp.csv",
        "prop",
        ["period2", "period3", "period4"],
        ["herd"],
        None,
        "size",
        None,
        25,
        "binomial",
        "prop ~ period + (1 | herd)",
        ", weights = size, nAGQ = 25",
        5,
    ),
    "poisson": (
        "poisson_sim.csv",
        "y",
        ["x"],
        ["a", "b"],
        None,
        None,
        "log_exposure",
        1,
        "poisson",
        "y ~ x + (1 | a) + (1 | b)",
        ", offset = log(exposure)",
        3,
    ),
    "insteval": (
        "insteval",
        "y4",
        ["service"],
        ["s", "d", "dept"],
        None,
        None,
        None,
        1,
        "binomial",
        "y4 ~ service + (1 | s) + (1 | d) + (1 | dept)",
        "",
        1,
    ),
}


# Numeric columns that the lme4 formulas use as factors.
R_FACTORS = {"cbpp": ["period"], "cbpp_agq25": ["period"]}


def load(name, insteval):
    csv, _, _, groups, *_ = MODELS[name]
    if csv == "insteval":
        if not Path(insteval).exists():
            return None
        df = pd.read_csv(insteval, dtype={g: str for g in groups})
        df["y4"] = (df["y"] >= 4).astype(int)
        return df
    df = pd.read_csv(DATA / csv, dtype={g: str for g in groups})
    return df


def fit_ours(name, df):
    _, y, features, groups, slopes, weights, offset, nagq, family, *_ = MODELS[name]
    w = None if weights is None else df[weights].to_numpy(float)
    g = df[groups]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if family == "poisson":
            model = MixedPoissonRegressor(nagq=nagq, random_slopes=slopes)
            off = None if offset is None else df[offset].to_numpy(float)
            return model.fit(df[features], df[y], groups=g, sample_weight=w, offset=off)
        model = MixedLogisticRegression(nagq=nagq, random_slopes=slopes)
        if w is not None:
            return model.fit_proportions(df[features], df[y].to_numpy(float), g, w)
        return model.fit(df[features], df[y], groups=g)


def time_ours(name, df, repeat):
    times, model = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        model = fit_ours(name, df)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), model.log_likelihood_


R_SCRIPT = """
suppressPackageStartupMessages({{ library(lme4); library(jsonlite) }})
d <- read.csv("{csv}", stringsAsFactors = FALSE)
for (g in c({groups})) d[[g]] <- as.character(d[[g]])
for (f in c({factors})) d[[f]] <- factor(d[[f]])
times <- c()
for (i in seq_len({repeat})) {{
  t <- system.time(f <- glmer({formula}, d, family = {family}{extra}))
  times <- c(times, t[["elapsed"]])
}}
cat(toJSON(list(time = median(times), logLik = as.numeric(logLik(f))), digits = NA,
           auto_unbox = TRUE))
"""


def time_lme4(name, df, tmp):
    if shutil.which("Rscript") is None:
        return None
    csv, _, _, groups, _, _, _, _, family, formula, extra, repeat = MODELS[name]
    path = Path(tmp) / f"{name}.csv"
    columns = [c for c in df.columns if c != "I(age^2)"]
    df[columns].to_csv(path, index=False)
    # R's factors of the text columns (Gender, btype, urban, livch, period) take
    # sorted levels: the reference levels of the model-matrix columns used here
    script = R_SCRIPT.format(
        csv=path, groups=", ".join(f'"{g}"' for g in groups), repeat=repeat,
        factors=", ".join(f'"{f}"' for f in R_FACTORS.get(name, [])),
        formula=formula, family=family, extra=extra,
    )  # fmt: skip
    out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=False)
    if out.returncode:
        print(f"  lme4 failed on {name}: {out.stderr.strip()[-300:]}")
        return None
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["time"], result["logLik"]


def time_gpboost(name, df, repeat):
    """gpboost's GPModel (Laplace approximation) on the models it fits the same way
    (random intercepts; Bernoulli or Poisson with an offset), or None."""
    try:
        import gpboost as gpb
    except ImportError:
        return None
    _, y, features, groups, slopes, weights, offset, nagq, family, *_ = MODELS[name]
    if slopes or weights or nagq > 1:
        return None
    X = np.column_stack([np.ones(len(df)), df[features].to_numpy(float)])
    likelihood = "bernoulli_logit" if family == "binomial" else "poisson"
    off = None if offset is None else df[offset].to_numpy(float)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        model = gpb.GPModel(group_data=df[groups], likelihood=likelihood)
        model.fit(y=df[y].to_numpy(float), X=X, offset=off)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), -float(model.get_current_neg_log_likelihood())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="")
    parser.add_argument("--insteval", default="/work/shared/data/insteval.csv")
    args = parser.parse_args()
    names = [n for n in MODELS if not args.only or n in args.only.split(",")]
    header = ["model".ljust(17)] + [h.rjust(9) for h in
              ("ours s", "lme4 s", "lme4/ours", "gpboost s", "gpb/ours")]  # fmt: skip
    print(" ".join(header + [h.rjust(14) for h in ("logLik ours", "logLik lme4", "logLik gpb")]))
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            df = load(name, args.insteval)
            if df is None:
                print(f"{name:<17} data not found, skipped")
                continue
            repeat = 1 if name == "insteval" else args.repeat
            ours, ll = time_ours(name, df, repeat)
            gpb = time_gpboost(name, df, repeat)
            lme4 = time_lme4(name, df, tmp)
            cells = [f"{name:<17}", f"{ours:9.3f}"]
            for peer in (lme4, gpb):
                cells += ["-".rjust(9)] * 2 if peer is None else [
                    f"{peer[0]:9.3f}", f"{peer[0] / ours:9.1f}"]  # fmt: skip
            cells.append(f"{ll:14.4f}")
            cells += [f"{'-':>14}" if peer is None else f"{peer[1]:14.4f}" for peer in (lme4, gpb)]
            print(" ".join(cells), flush=True)


if __name__ == "__main__":
    main()
