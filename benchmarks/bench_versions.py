"""Two versions of sklearn-mixed in the same run: fits and profile intervals, with lme4.

Times this checkout against another one (``--other PATH``, e.g. a
``git worktree`` of an earlier commit) on the lme4 reference models of
``bench_references.py`` that both versions accept, and ``confint("profile")``
of sleepstudy, Dyestuff and Penicillin against lme4's
``confint(fit, method = "profile")``.  Each version runs in its own
subprocess (they share the package name), the two alternating round by round
(``--rounds``), so that both see the same machine; each subprocess times
``--repeat`` fits per model and reports the median, and the table shows the
median over rounds and the ratio ``other / this`` (above 1: this checkout is
faster).

    python benchmarks/bench_versions.py --other /tmp/before [--rounds 3] [--busy]

A model the other version cannot fit (prior weights, say) is reported as
such.  lme4 (``Rscript`` with lme4 and jsonlite) times ``confint`` in R with
``system.time``; skipped if R is missing.
"""

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from bench_references import MODELS, _busy_loop, _csv_path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# confint("profile") models: (name in MODELS, lme4 data set)
PROFILES = {"sleep_corr": "sleepstudy", "dyestuff": "Dyestuff", "penicillin": "Penicillin"}

WORKER = r"""
import json, sys, time, warnings
import numpy as np
sys.path.insert(0, sys.argv[1])  # the version under test first
sys.path.insert(1, sys.argv[2])  # bench_references
warnings.simplefilter("ignore")
from bench_references import MODELS, _load
from sklearn_mixed import MixedLinearRegressor
jobs = json.loads(sys.argv[3])
repeat = int(sys.argv[4])

def old_style(random_effects):
    # random_slopes / covariance for a version without random_effects
    if random_effects is None:
        return {}
    diagonal = any(isinstance(terms[0], list) for terms in random_effects.values())
    slopes = {
        factor: [c for t in terms for c in (t if isinstance(t, list) else [t]) if c != "1"]
        for factor, terms in random_effects.items()
    }
    return {"random_slopes": slopes, "covariance": "diagonal" if diagonal else "unstructured"}

out = {}
for job in jobs:
    spec = MODELS[job["model"]]
    df = _load(job["csv"], spec)
    _, y, features, groups, random_effects, weights, _ = spec
    params = {"method": job["method"]}
    try:
        model = MixedLinearRegressor(random_effects=random_effects, **params)
    except TypeError:
        model = MixedLinearRegressor(**old_style(random_effects), **params)
    kwargs = {} if weights is None else {"sample_weight": df[weights].to_numpy()}
    X, target, g = df[features], df[y], df[groups]
    try:
        model.fit(X, target, groups=g, **kwargs)
        if job["task"] == "profile":
            run = lambda: model.confint("profile")
        else:
            run = lambda: model.fit(X, target, groups=g, **kwargs)
        run()
        times = []
        for _ in range(repeat if job["task"] == "fit" else max(1, repeat // 3)):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        out[job["key"]] = {"seconds": float(np.median(times)), "loglik": model.log_likelihood_}
    except Exception as error:  # the other version may not support the model
        out[job["key"]] = {"error": f"{type(error).__name__}: {str(error)[:80]}"}
print(json.dumps(out))
"""

R_PROFILE = r"""
suppressMessages({library(lme4); library(jsonlite)})
repeats <- as.integer(commandArgs(trailingOnly = TRUE)[1])
fits <- list(
  sleep_corr = lmer(Reaction ~ Days + (Days | Subject), sleepstudy),
  dyestuff = lmer(Yield ~ 1 + (1 | Batch), Dyestuff),
  penicillin = lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin))
out <- list()
for (name in names(fits)) {
  f <- fits[[name]]
  times <- sapply(seq_len(repeats), function(i)
    system.time(suppressMessages(suppressWarnings(confint(f, method = "profile"))))[["elapsed"]])
  out[[name]] <- median(times)
}
cat(toJSON(out, auto_unbox = TRUE, digits = NA))
"""


def _jobs(tmp):
    jobs = []
    for name, spec in MODELS.items():
        if name == "insteval":
            continue
        path = _csv_path(spec[0], tmp, "")
        if path is None:
            continue
        for method in ("reml", "ml"):
            jobs.append({"key": f"{name} {method.upper()}", "model": name, "csv": str(path),
                         "method": method, "task": "fit"})  # fmt: skip
    for name in PROFILES:
        path = _csv_path(MODELS[name][0], tmp, "")
        jobs.append({"key": f"{name} confint(profile)", "model": name, "csv": str(path),
                     "method": "reml", "task": "profile"})  # fmt: skip
    return jobs


def _run_version(path, jobs, repeat, script):
    run = subprocess.run(
        [sys.executable, str(script), str(path), str(HERE), json.dumps(jobs), str(repeat)],
        capture_output=True, text=True, check=False, cwd=tempfile.gettempdir(),
    )  # fmt: skip
    if run.returncode != 0:
        raise RuntimeError(f"worker for {path} failed: {run.stderr.strip()[-800:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def _lme4_profiles(repeat, tmp):
    if shutil.which("Rscript") is None:
        print("lme4 skipped: no Rscript")
        return {}
    script = Path(tmp) / "profile.R"
    script.write_text(R_PROFILE)
    run = subprocess.run(["Rscript", str(script), str(repeat)], capture_output=True, text=True,
                         check=False)  # fmt: skip
    if run.returncode != 0:
        print("lme4 skipped:", run.stderr.strip()[-300:])
        return {}
    return json.loads(run.stdout)


def _median(results, key):
    values = [r[key]["seconds"] for r in results if "seconds" in r.get(key, {})]
    return float(np.median(values)) if values else np.nan


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, help="root of the other checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=9, help="fits per model per round")
    parser.add_argument("--busy", action="store_true", help="keep the other core busy")
    args = parser.parse_args()
    load = None
    if args.busy:
        load = multiprocessing.Process(target=_busy_loop, daemon=True)
        load.start()
    print(f"{os.cpu_count()} cores, busy={args.busy}, rounds={args.rounds}, repeat={args.repeat}")
    with tempfile.TemporaryDirectory() as tmp:
        jobs = _jobs(tmp)
        script = Path(tmp) / "worker.py"
        script.write_text(WORKER)
        this, other = [], []
        for _ in range(args.rounds):
            this.append(_run_version(ROOT, jobs, args.repeat, script))
            other.append(_run_version(Path(args.other), jobs, args.repeat, script))
        lme4 = _lme4_profiles(max(1, args.repeat // 3), tmp)
    if load is not None:
        load.terminate()
    rows = []
    for job in jobs:
        key = job["key"]
        t_this, t_other = _median(this, key), _median(other, key)
        error = other[0][key].get("error", "")
        row = {"this ms": 1e3 * t_this, "other ms": 1e3 * t_other,
               "other / this": t_other / t_this, "note": error}  # fmt: skip
        if job["task"] == "profile" and job["model"] in lme4:
            row["lme4 ms"] = 1e3 * lme4[job["model"]]
            row["lme4 / this"] = lme4[job["model"]] / t_this
        rows.append(pd.Series(row, name=key))
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string())
    both = table["other / this"].dropna()
    print(f"\nother / this over {both.size} tasks: median {both.median():.2f}, "
          f"min {both.min():.2f} ({both.idxmin()}), max {both.max():.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
