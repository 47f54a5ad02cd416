"""lme4 formulas end to end: sklearn-mixed's LmerRegressor against lme4 and mixedlm.

Every formula of ``tests/data/formula`` (25+ lme4 formulas on dietox and
sleepstudy: ``I(Time^2)``, ``log(Weight)``, ``poly``, ``scale``, ``factor``,
``offset``, interactions with text columns, ``(log(Time) | Pig)``, R's
``contrasts``), fitted from the raw DataFrame by

- sklearn-mixed: ``LmerRegressor(formula).fit(df)`` (reading the formula and
  coding the data included), median of ``--repeat`` fits;
- lme4 1.1-31: ``lmer(formula, d)`` in one ``Rscript`` (``system.time``, R's
  start-up and reading of the CSV excluded), median of the same repeats;
- mixedlm (``pip install mixedlm``, the Rust port of lme4), ``mixedlm.lmer``,
  when installed.

For each formula: the times, the ratios ``peer / ours`` (above 1: we are
faster) and each fit's log-likelihood minus the lme4 reference of the test
suite (``logLik`` of the JSON file): a difference beyond ~1e-4 means a
different model (a column computed differently, a term lost) or a worse
optimum; an error is printed as such.

    python benchmarks/bench_formula.py [--repeat 5] [--only a_quadratic_slope,g_poly2]
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

from sklearn_mixed import LmerRegressor
from sklearn_mixed.datasets import load_dietox, load_sleepstudy

ROOT = Path(__file__).resolve().parents[1]
REFS = ROOT / "tests" / "data" / "formula"


def references(only):
    out = []
    for path in sorted(REFS.glob("*.json")):
        if path.name == "model_matrix.json" or (only and path.stem not in only):
            continue
        out.append(json.loads(path.read_text()))
    return out


def data(name):
    if name == "sleepstudy":
        return load_sleepstudy()
    return load_dietox().drop(columns="Feed")


def time_ours(ref, df, repeat):
    times, model = [], None
    method = "reml" if ref["REML"] else "ml"
    for _ in range(repeat):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = LmerRegressor(ref["formula"], method=method,
                                  contrasts=ref.get("contrasts")).fit(df)  # fmt: skip
        times.append(time.perf_counter() - start)
    return float(np.median(times)), model.log_likelihood_


def time_mixedlm(ref, df, repeat):
    try:
        import mixedlm
    except ImportError:
        return None
    times, fit = [], None
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = mixedlm.lmer(ref["formula"], df, REML=ref["REML"],
                                   contrasts=ref.get("contrasts"))  # fmt: skip
            times.append(time.perf_counter() - start)
        return float(np.median(times)), float(fit.logLik().value)
    except Exception as exc:  # a peer's failure is a result
        return f"error: {type(exc).__name__}: {str(exc)[:60]}"


R_SCRIPT = """
suppressPackageStartupMessages({{ library(lme4); library(jsonlite) }})
d <- read.csv("{csv}", stringsAsFactors = TRUE,
              colClasses = c(Pig = "character", Litter = "character", CuF = "character"))
for (cn in c("Pig", "Litter", "CuF")) d[[cn]] <- factor(d[[cn]])
data("sleepstudy", package = "lme4")
cases <- fromJSON("{cases}", simplifyVector = FALSE)
out <- list()
for (cs in cases) {{
  dat <- if (cs$dataset == "dietox") d else sleepstudy
  contr <- if (is.null(cs$contrasts)) NULL else cs$contrasts
  times <- c()
  for (i in seq_len({repeat})) {{
    t <- system.time(f <- suppressMessages(suppressWarnings(
      lmer(as.formula(cs$formula), dat, REML = cs$REML, contrasts = contr))))
    times <- c(times, t[["elapsed"]])
  }}
  out[[cs$name]] <- list(time = median(times), logLik = as.numeric(logLik(f)))
}}
cat(toJSON(out, digits = NA, auto_unbox = TRUE))
"""


def time_lme4(refs, repeat, tmp):
    if shutil.which("Rscript") is None:
        return {}
    csv = Path(tmp) / "dietox.csv"
    load_dietox().to_csv(csv, index=False)
    cases = Path(tmp) / "cases.json"
    keys = ("name", "dataset", "formula", "REML", "contrasts")
    cases.write_text(json.dumps([{k: r[k] for k in keys if k in r} for r in refs]))
    script = R_SCRIPT.format(csv=csv, cases=cases, repeat=repeat)
    out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=False)
    if out.returncode:
        print(f"lme4 failed: {out.stderr.strip()[-400:]}")
        return {}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    refs = references([n for n in args.only.split(",") if n])
    with tempfile.TemporaryDirectory() as tmp:
        lme4 = time_lme4(refs, args.repeat, tmp)
    heads = ("ours s", "lme4 s", "lme4/ours", "mixedlm s", "mxl/ours", "dLL ours", "dLL lme4",
             "dLL mixedlm")  # fmt: skip
    print(f"{'formula':<34}" + " ".join(h.rjust(10) for h in heads))
    ratios = {"lme4": [], "mixedlm": []}
    for ref in refs:
        df = data(ref["dataset"])
        ours, ll = time_ours(ref, df, args.repeat)
        cells = [f"{ref['name'][:33]:<34}", f"{ours:10.4f}"]
        peers = {"lme4": lme4.get(ref["name"]), "mixedlm": time_mixedlm(ref, df, args.repeat)}
        lls = [ll]
        for name, peer in peers.items():
            if isinstance(peer, dict):
                peer = (peer["time"], peer["logLik"])
            if isinstance(peer, tuple):
                cells += [f"{peer[0]:10.4f}", f"{peer[0] / ours:10.1f}"]
                ratios[name].append(peer[0] / ours)
                lls.append(peer[1])
            else:
                cells += ["-".rjust(10)] * 2
                lls.append(peer)
        for value in lls:
            good = isinstance(value, float)
            cells.append(f"{value - ref['logLik']:10.1e}" if good else "-".rjust(10))
        errors = [v for v in lls if isinstance(v, str)]
        print(" ".join(cells) + (f"  mixedlm {errors[0]}" if errors else ""), flush=True)
    for name, values in ratios.items():
        if values:
            print(f"median {name}/ours over {len(values)} formulas: {np.median(values):.1f} "
                  f"(min {min(values):.1f}, max {max(values):.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
