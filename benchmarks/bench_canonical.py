"""Time the canonical models: sklearn-mixed against lme4 and statsmodels MixedLM.

Each model is fitted several times in-process by each package (lme4 inside one
``Rscript`` run, timed by R itself, so R's start-up is not counted); the
table shows the median wall time of one fit, the log-likelihood each package
reports, and the ratios of the medians.  Peers that are not installed are
skipped (statsmodels: ``pip install -e ".[benchmark]"``; lme4: R with lme4 and
jsonlite, e.g. Debian's ``r-cran-lme4 r-cran-jsonlite``).

    python benchmarks/bench_canonical.py [--repeat 7]

The machine is shared and noisy: compare the ratios of one run, not the times
of different runs.
"""

import argparse
import json
import shutil
import subprocess
import tempfile
import time
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from sklearn_mixed import MixedLinearRegressor
from sklearn_mixed.datasets import load_hsb82, load_pastes, load_penicillin, load_sleepstudy

# name: (loader, y, fixed features, groups, random slopes, covariance, lme4 formula)
MODELS = {
    "sleepstudy (1|Subject)": (
        load_sleepstudy, "Reaction", ["Days"], ["Subject"], None, "unstructured",
        "Reaction ~ Days + (1 | Subject)",
    ),
    "sleepstudy (Days|Subject)": (
        load_sleepstudy, "Reaction", ["Days"], ["Subject"], ["Days"], "unstructured",
        "Reaction ~ Days + (Days | Subject)",
    ),
    "penicillin (1|plate)+(1|sample)": (
        load_penicillin, "diameter", [], ["plate", "sample"], None, "unstructured",
        "diameter ~ 1 + (1 | plate) + (1 | sample)",
    ),
    "pastes (1|batch/cask)": (
        load_pastes, "strength", [], ["batch", "sample"], None, "unstructured",
        "strength ~ 1 + (1 | batch/cask)",
    ),
    "hsb82 (1+ses|school)": (
        load_hsb82, "mAch", ["ses"], ["school"], ["ses"], "unstructured",
        "mAch ~ ses + (1 + ses | school)",
    ),
    "hsb82 (1|school)+(0+ses|school)": (
        load_hsb82, "mAch", ["ses"], ["school"], ["ses"], "diagonal",
        "mAch ~ ses + (1 | school) + (0 + ses | school)",
    ),
}  # fmt: skip

R_SCRIPT = r"""
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
jobs <- fromJSON(args[1], simplifyVector = FALSE)
repeats <- as.integer(args[2])
out <- list()
for (job in jobs) {
  d <- read.csv(job$csv, stringsAsFactors = TRUE)
  for (f in job$factors) d[[f]] <- factor(d[[f]])
  form <- as.formula(job$formula)
  fit <- lmer(form, d)
  times <- sapply(seq_len(repeats), function(i) system.time(lmer(form, d))[["elapsed"]])
  out[[job$name]] <- list(seconds = median(times), loglik = as.numeric(logLik(fit)))
}
cat(toJSON(out, auto_unbox = TRUE, digits = NA))
"""


def _median_seconds(fit, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def time_sklearn_mixed(spec, repeat):
    loader, y, features, factors, slopes, covariance, _ = spec
    df = loader()
    model = MixedLinearRegressor(random_slopes=slopes, covariance=covariance)

    def fit():
        return model.fit(df[features], df[y], groups=df[factors]).log_likelihood_

    return _median_seconds(fit, repeat)


def _statsmodels_model(spec, df):
    import statsmodels.formula.api as smf

    _, y, features, factors, slopes, covariance, _ = spec
    rhs = " + ".join(features) or "1"
    if len(factors) == 2:  # crossed (penicillin) or nested (pastes): variance components
        if factors == ["batch", "sample"]:
            vc = {"cask": "0 + C(sample)"}
            return smf.mixedlm(f"{y} ~ {rhs}", df, groups=df["batch"], vc_formula=vc)
        vc = {f: f"0 + C({f})" for f in factors}
        return smf.mixedlm(f"{y} ~ {rhs}", df, groups=np.ones(len(df)), vc_formula=vc)
    re_formula = "~" + " + ".join(slopes) if slopes else "1"
    if covariance == "diagonal":
        vc = {"slope": "0 + " + slopes[0]}
        return smf.mixedlm(f"{y} ~ {rhs}", df, groups=df[factors[0]], vc_formula=vc)
    return smf.mixedlm(f"{y} ~ {rhs}", df, groups=df[factors[0]], re_formula=re_formula)


def time_statsmodels(spec, repeat):
    try:
        import statsmodels  # noqa: F401
    except ImportError:
        return None
    df = spec[0]()

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _statsmodels_model(spec, df).fit(reml=True).llf

    return _median_seconds(fit, repeat)


def time_lme4(repeat):
    """``{model: (median seconds, loglik)}`` from one Rscript run, or {}."""
    if shutil.which("Rscript") is None:
        return {}
    data_dir = resources.files("sklearn_mixed.datasets") / "data"
    csv = {
        load_sleepstudy: "sleepstudy.csv",
        load_penicillin: "penicillin.csv",
        load_pastes: "pastes.csv",
        load_hsb82: "hsb82.csv",
    }
    jobs = [
        {
            "name": name,
            "csv": str(data_dir / csv[spec[0]]),
            "formula": spec[6],
            "factors": spec[3] + (["cask"] if spec[0] is load_pastes else []),
        }
        for name, spec in MODELS.items()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        script, job_file = Path(tmp) / "bench.R", Path(tmp) / "jobs.json"
        script.write_text(R_SCRIPT)
        job_file.write_text(json.dumps(jobs))
        run = subprocess.run(
            ["Rscript", str(script), str(job_file), str(repeat)],
            capture_output=True,
            text=True,
            check=False,
        )
    if run.returncode != 0:
        print("lme4 skipped: Rscript failed:", run.stderr.strip()[-500:])
        return {}
    return {k: (v["seconds"], v["loglik"]) for k, v in json.loads(run.stdout).items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="fits per package and model")
    args = parser.parse_args()
    lme4 = time_lme4(args.repeat)
    rows = []
    for name, spec in MODELS.items():
        ours, ours_ll = time_sklearn_mixed(spec, args.repeat)
        sm = time_statsmodels(spec, args.repeat)
        lm = lme4.get(name)
        rows.append(
            {
                "model (REML)": name,
                "sklearn-mixed ms": 1e3 * ours,
                "lme4 ms": 1e3 * lm[0] if lm else np.nan,
                "statsmodels ms": 1e3 * sm[0] if sm else np.nan,
                "lme4 / ours": lm[0] / ours if lm else np.nan,
                "statsmodels / ours": sm[0] / ours if sm else np.nan,
                "loglik ours": ours_ll,
                "loglik lme4": lm[1] if lm else np.nan,
                "loglik statsmodels": sm[1] if sm else np.nan,
            }
        )
    table = pd.DataFrame(rows).set_index("model (REML)")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"median of {args.repeat} fits; ratios > 1: sklearn-mixed is faster")
        print(table.to_string(float_format=lambda v: f"{v:.4f}" if abs(v) < 100 else f"{v:.2f}"))
    return table


if __name__ == "__main__":
    main()
