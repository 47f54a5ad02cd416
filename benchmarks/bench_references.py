"""Time every lme4 reference model: sklearn-mixed against lme4 and mixedlm, REML and ML.

The 18 models of the test suite's lme4 references (the shared sleepstudy,
Dyestuff, Penicillin and Pastes models, the extra Exam, Machines, Oxboys,
ergoStool, ScotsSec and Hsb82 ones, a weighted sleepstudy fit, plus mlmRev's
egsingle and lme4's InstEval), each by REML and by ML: 36 fits.  Each
package fits each model ``--repeat`` times and the median wall time of one
fit is reported, with the ratios ``peer / sklearn-mixed`` (above 1:
sklearn-mixed is faster).  sklearn-mixed and mixedlm alternate fit by fit in
this process; lme4 runs in one ``Rscript`` (timed by R's ``system.time``:
start-up and reading excluded).  sklearn-mixed fits the estimator on a
DataFrame (its input validation included), the peers parse the formula.

``--busy`` keeps the other core busy (a process multiplying matrices on one
BLAS thread) during the whole run, as on a shared machine.

    python benchmarks/bench_references.py [--repeat 7] [--busy] [--only sleep,exam]

Data: the test suite's CSV files (``tests/data``); egsingle is exported by R
(mlmRev) into a temporary directory and InstEval read from
``/work/shared/data/insteval.csv`` (``--insteval PATH``); a model whose data
are missing is skipped with a message.  Peers that are not installed are
skipped (mixedlm: ``pip install mixedlm``; lme4: R with lme4, mlmRev and
jsonlite).
"""

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from sklearn_mixed import MixedLinearRegressor

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests" / "data"

# name: (csv, y, features, groups, random_effects, weights, lme4 formula)
MODELS = {
    "sleep_int": ("lme4/data/sleepstudy.csv", "Reaction", ["Days"], ["Subject"],
                  None, None, "Reaction ~ Days + (1 | Subject)"),
    "sleep_corr": ("lme4/data/sleepstudy.csv", "Reaction", ["Days"], ["Subject"],
                   {"Subject": ["1", "Days"]}, None, "Reaction ~ Days + (Days | Subject)"),
    "sleep_uncorr": ("lme4/data/sleepstudy.csv", "Reaction", ["Days"], ["Subject"],
                     {"Subject": [["1"], ["Days"]]}, None,
                     "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"),
    "sleep_weighted": ("lme4_issue8/sleepstudy.csv", "Reaction", ["Days"], ["Subject"],
                       {"Subject": ["1", "Days"]}, "w", "Reaction ~ Days + (Days | Subject)"),
    "dyestuff": ("lme4/data/dyestuff.csv", "Yield", [], ["Batch"], None, None,
                 "Yield ~ 1 + (1 | Batch)"),
    "dyestuff2": ("lme4/data/dyestuff2.csv", "Yield", [], ["Batch"], None, None,
                  "Yield ~ 1 + (1 | Batch)"),
    "penicillin": ("lme4/data/penicillin.csv", "diameter", [], ["plate", "sample"], None, None,
                   "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    "pastes": ("lme4/data/pastes.csv", "strength", [], ["batch", "sample"], None, None,
               "strength ~ 1 + (1 | batch) + (1 | sample)"),
    "exam_corr": ("lme4_extra/exam.csv", "normexam", ["standLRT"], ["school"],
                  {"school": ["1", "standLRT"]}, None, "normexam ~ standLRT + (standLRT | school)"),
    "exam_uncorr": ("lme4_extra/exam.csv", "normexam", ["standLRT"], ["school"],
                    {"school": [["1"], ["standLRT"]]}, None,
                    "normexam ~ standLRT + (1 | school) + (0 + standLRT | school)"),
    "machines": ("lme4_extra/machines.csv", "score", ["MachineB", "MachineC"],
                 ["Worker", "Worker:Machine"], None, None,
                 "score ~ MachineB + MachineC + (1 | Worker) + (1 | WorkerMachine)"),
    "oxboys": ("lme4_extra/oxboys.csv", "height", ["age"], ["Subject"],
               {"Subject": ["1", "age"]}, None, "height ~ age + (age | Subject)"),
    "ergostool": ("lme4_extra/ergostool.csv", "effort", ["TypeT2", "TypeT3", "TypeT4"],
                  ["Subject"], None, None, "effort ~ TypeT2 + TypeT3 + TypeT4 + (1 | Subject)"),
    "scotssec": ("lme4_extra/scotssec.csv", "attain", ["verbal", "sexF"], ["primary", "second"],
                 None, None, "attain ~ verbal + sexF + (1 | primary) + (1 | second)"),
    "hsb82_corr": ("lme4_extra/hsb82.csv", "mAch", ["ses"], ["school"],
                   {"school": ["1", "ses"]}, None, "mAch ~ ses + (1 + ses | school)"),
    "hsb82_uncorr": ("lme4_extra/hsb82.csv", "mAch", ["ses"], ["school"],
                     {"school": [["1"], ["ses"]]}, None,
                     "mAch ~ ses + (1 | school) + (0 + ses | school)"),
    "egsingle": ("egsingle", "math", ["year"], ["childid", "schoolid"],
                 {"childid": ["1", "year"], "schoolid": ["1", "year"]}, None,
                 "math ~ year + (year | childid) + (year | schoolid)"),
    "insteval": ("insteval", "y", ["service"], ["s", "d", "dept"], None, None,
                 "y ~ service + (1 | s) + (1 | d) + (1 | dept)"),
}  # fmt: skip

R_SCRIPT = r"""
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
jobs <- fromJSON(args[1], simplifyVector = FALSE)
repeats <- as.integer(args[2])
out <- list()
for (job in jobs) {
  d <- read.csv(job$csv, stringsAsFactors = FALSE)
  for (f in job$factors) d[[f]] <- factor(d[[f]])
  form <- as.formula(job$formula)
  w <- if (is.null(job$weights)) NULL else d[[job$weights]]
  fit <- function() {
    if (is.null(w)) lmer(form, d, REML = job$reml) else lmer(form, d, REML = job$reml, weights = w)
  }
  f <- suppressMessages(suppressWarnings(fit()))
  times <- sapply(seq_len(repeats), function(i)
    system.time(suppressMessages(suppressWarnings(fit())))[["elapsed"]])
  out[[job$name]] <- list(seconds = median(times), loglik = as.numeric(logLik(f)))
}
cat(toJSON(out, auto_unbox = TRUE, digits = NA))
"""

EXPORT_EGSINGLE = r"""
suppressMessages(library(mlmRev))
d <- as.data.frame(egsingle)[, c("math", "year", "childid", "schoolid")]
write.csv(d, commandArgs(trailingOnly = TRUE)[1], row.names = FALSE)
"""


def _csv_path(source, tmp, insteval):
    """Where a model's data are, or None (with a message)."""
    if source == "insteval":
        return Path(insteval) if Path(insteval).exists() else None
    if source == "egsingle":
        path = Path(tmp) / "egsingle.csv"
        if not path.exists() and shutil.which("Rscript"):
            script = Path(tmp) / "export.R"
            script.write_text(EXPORT_EGSINGLE)
            subprocess.run(["Rscript", str(script), str(path)], check=False, capture_output=True)
        return path if path.exists() else None
    return TESTS / source


def _load(path, spec):
    _, y, features, groups, _, weights, _ = spec
    df = pd.read_csv(path, dtype={g: str for g in groups})
    if "Worker:Machine" in groups:  # lme4 and mixedlm get the nested factor as a column
        df["WorkerMachine"] = df["Worker:Machine"]
    return df


def _ours(df, spec, reml):
    _, y, features, groups, random_effects, weights, _ = spec
    model = MixedLinearRegressor(random_effects=random_effects, method="reml" if reml else "ml")
    X, target, g = df[features], df[y], df[groups]
    w = None if weights is None else df[weights].to_numpy()

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(X, target, groups=g, sample_weight=w).log_likelihood_

    return fit


def _mixedlm(df, spec, reml):
    try:
        import mixedlm
    except ImportError:
        return None
    formula, weights = spec[6], spec[5]
    w = None if weights is None else df[weights].to_numpy(dtype=float)

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(mixedlm.lmer(formula, df, REML=reml, weights=w).logLik().value)

    return fit


def _timed(fit):
    start = time.perf_counter()
    value = fit()
    return time.perf_counter() - start, value


def time_python(df, spec, reml, repeat):
    """Medians ``(ours, ours loglik, mixedlm, mixedlm loglik)``, alternating fit by fit."""
    ours, peer = _ours(df, spec, reml), _mixedlm(df, spec, reml)
    for _ in range(2):  # warm-up: imports, caches, the first allocations
        ours(), peer() if peer else None
    t_ours, t_peer, ll_ours, ll_peer = [], [], np.nan, np.nan
    for _ in range(repeat):
        dt, ll_ours = _timed(ours)
        t_ours.append(dt)
        if peer is not None:
            dt, ll_peer = _timed(peer)
            t_peer.append(dt)
    peer_time = float(np.median(t_peer)) if t_peer else np.nan
    return float(np.median(t_ours)), ll_ours, peer_time, ll_peer


def time_lme4(jobs, repeat, tmp):
    if shutil.which("Rscript") is None or not jobs:
        return {}
    script, job_file = Path(tmp) / "bench.R", Path(tmp) / "jobs.json"
    script.write_text(R_SCRIPT)
    job_file.write_text(json.dumps(jobs))
    run = subprocess.run(["Rscript", str(script), str(job_file), str(repeat)],
                         capture_output=True, text=True, check=False)  # fmt: skip
    if run.returncode != 0:
        print("lme4 skipped: Rscript failed:", run.stderr.strip()[-500:])
        return {}
    return json.loads(run.stdout)


def _busy_loop():  # pragma: no cover - a load generator
    from threadpoolctl import threadpool_limits

    A = np.random.default_rng(0).normal(size=(400, 400))
    with threadpool_limits(1):
        while True:
            A = np.tanh(A @ A.T / 400.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="fits per package, model, criterion")
    parser.add_argument("--busy", action="store_true", help="keep the other core busy")
    parser.add_argument("--only", default="", help="comma-separated model names")
    parser.add_argument("--insteval", default="/work/shared/data/insteval.csv")
    args = parser.parse_args()
    names = [n for n in MODELS if not args.only or n in args.only.split(",")]
    load = None
    if args.busy:
        load = multiprocessing.Process(target=_busy_loop, daemon=True)
        load.start()
    print(f"{os.cpu_count()} cores, busy={args.busy}, repeat={args.repeat}")
    rows, jobs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            spec = MODELS[name]
            path = _csv_path(spec[0], tmp, args.insteval)
            if path is None:
                print(f"{name}: skipped, data not available")
                continue
            df = _load(path, spec)
            r_csv = Path(tmp) / f"{name}.csv"  # what R reads: the columns the formula names
            df.drop(columns=[c for c in df.columns if ":" in c]).to_csv(r_csv, index=False)
            for reml in (True, False):
                ours, ll, peer, peer_ll = time_python(df, spec, reml, args.repeat)
                rows.append({"model": name, "criterion": "REML" if reml else "ML",
                             "sklearn-mixed ms": 1e3 * ours, "mixedlm ms": 1e3 * peer,
                             "loglik": ll, "mixedlm - ours": peer_ll - ll})  # fmt: skip
                factors = (
                    spec[3] if "Worker:Machine" not in spec[3] else ["Worker", "WorkerMachine"]
                )
                jobs.append({"name": f"{name} {'REML' if reml else 'ML'}", "csv": str(r_csv),
                             "formula": spec[6], "factors": factors, "reml": reml,
                             "weights": spec[5]})  # fmt: skip
        lme4 = time_lme4(jobs, args.repeat, tmp)
    if load is not None:
        load.terminate()
    for row in rows:
        result = lme4.get(f"{row['model']} {row['criterion']}")
        row["lme4 ms"] = 1e3 * result["seconds"] if result else np.nan
        row["lme4 - ours"] = result["loglik"] - row["loglik"] if result else np.nan
        row["mixedlm / ours"] = row["mixedlm ms"] / row["sklearn-mixed ms"]
        row["lme4 / ours"] = row["lme4 ms"] / row["sklearn-mixed ms"]
    table = pd.DataFrame(rows).set_index(["model", "criterion"])
    columns = ["sklearn-mixed ms", "mixedlm ms", "lme4 ms", "mixedlm / ours", "lme4 / ours",
               "loglik", "mixedlm - ours", "lme4 - ours"]  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table[columns].round(4).to_string())
    behind = table[(table["mixedlm / ours"] < 1) | (table["lme4 / ours"] < 1)]
    print(f"\n{len(table)} fits; behind a peer: {len(behind)}")
    if len(behind):
        print(behind[columns[:5]].round(3).to_string())


if __name__ == "__main__":
    main()
