"""Speed benchmark: sklearn-mixed against mixedlm, statsmodels MixedLM and lme4 on big data.

Data sets (the simulated ones come from a fixed seed and have unbalanced,
log-normal or power-law group sizes):

  insteval      lme4's InstEval, y ~ service + (1|s) + (1|d) + (1|dept), ML
                (73,421 rows; lme4 1.1-31 logLik -118860.88)
  one-factor    n = 1e6, 1e5 groups, y ~ x1 + ... + x5 + (1 + x1 | g), REML
  two-crossed   n = 1e6, 1e4 x 1e3 levels, y ~ x1 + x2 + (1|a) + (1|b), REML
  recommender   n = 1e7, 1e6 users x 1e5 items (power-law item popularity),
                y ~ x1 + x2 + (1|user) + (1|item), REML; sklearn-mixed's
                CrossedEffectsRegressor(solver="iterative"), mixedlm with the
                timeout, statsmodels and lme4 not attempted (see --try-all)
  sleepstudy    Reaction ~ Days + (Days | Subject), REML, 180 rows

Each (package, data set) runs in its own subprocess, with the data written
once to a temporary directory (.npy columns; a CSV for R).  The time is the
median of ``--repeat`` fits in that process, data loading excluded; for
mixedlm, statsmodels and lme4 the formula parsing is included, as a user pays
it.  lme4 is timed by R's ``system.time`` inside one ``Rscript`` (start-up and
CSV reading excluded).  The peak memory is the subprocess's high-water RSS
(VmHWM), so it includes the interpreter, the imports and the data; the "idle
MB" column is the RSS of that process after its imports, before loading data.

    python benchmarks/bench_speed.py --sizes small            # smoke run, ~1 minute
    python benchmarks/bench_speed.py --only insteval,sleepstudy
    python benchmarks/bench_speed.py --sizes full --markdown  # everything (hours)

Ratios "peer / sklearn-mixed" > 1 mean sklearn-mixed is faster.  The machine
may be shared and noisy: compare the ratios of one run, not times across runs.
"""

import argparse
import json
import os
import platform
import queue
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

PEERS = ("sklearn-mixed", "mixedlm", "statsmodels", "lme4")
INSTEVAL_DEFAULT = "/work/shared/data/insteval.csv"
SEED = 20240611
MARK = "@@"  # prefix of the worker's protocol lines on stdout

# key: title, response, features, factors, random slopes, REML?, formula,
#      full and small simulation sizes (None: real data), default repeats
DATASETS = {
    "insteval": dict(
        title="InstEval (1|s)+(1|d)+(1|dept) ML",
        y="y",
        features=["service"],
        factors=["s", "d", "dept"],
        slopes=None,
        reml=False,
        formula="y ~ service + (1 | s) + (1 | d) + (1 | dept)",
        repeat=3,
    ),
    "one-factor": dict(
        title="one factor (1+x1|g) REML",
        y="y",
        features=["x1", "x2", "x3", "x4", "x5"],
        factors=["g"],
        slopes=["x1"],
        reml=True,
        formula="y ~ x1 + x2 + x3 + x4 + x5 + (1 + x1 | g)",
        repeat=3,
        full=dict(n=1_000_000, groups=100_000),
        small=dict(n=10_000, groups=1_000),
    ),
    "two-crossed": dict(
        title="two crossed (1|a)+(1|b) REML",
        y="y",
        features=["x1", "x2"],
        factors=["a", "b"],
        slopes=None,
        reml=True,
        formula="y ~ x1 + x2 + (1 | a) + (1 | b)",
        repeat=3,
        full=dict(n=1_000_000, a=10_000, b=1_000),
        small=dict(n=10_000, a=100, b=10),
    ),
    "recommender": dict(
        title="recommender (1|user)+(1|item) REML",
        y="y",
        features=["x1", "x2"],
        factors=["user", "item"],
        slopes=None,
        reml=True,
        formula="y ~ x1 + x2 + (1 | user) + (1 | item)",
        repeat=3,
        full=dict(n=10_000_000, user=1_000_000, item=100_000),
        small=dict(n=100_000, user=10_000, item=1_000),
    ),
    "sleepstudy": dict(
        title="sleepstudy (Days|Subject) REML",
        y="Reaction",
        features=["Days"],
        factors=["Subject"],
        slopes=["Days"],
        reml=True,
        formula="Reaction ~ Days + (Days | Subject)",
        repeat=50,
    ),
}

# Peers not attempted on a data set unless --try-all, and why.
NOT_ATTEMPTED = {
    ("recommender", "statsmodels"): (
        "not attempted: crossed factors need one all-data group with a dense "
        "n x 1.1e6 variance-component design (80 TB at full size)"
    ),
    ("recommender", "lme4"): (
        "not attempted: a 1e7-row CSV and a sparse Cholesky of the 1.1e6-level "
        "crossed Z'Z, far beyond the timeout (--try-all to run it)"
    ),
}


# ---------------------------------------------------------------- data sets
def _skewed_codes(rng, n, levels, weights):
    """Codes 0..k-1 of ``n`` draws from ``levels`` levels with the given weights;
    levels never drawn are dropped (as lme4 drops unused factor levels)."""
    codes = rng.choice(levels, size=n, p=weights / weights.sum())
    _, codes = np.unique(codes, return_inverse=True)
    return codes.astype(np.int64)


def _lognormal_codes(rng, n, levels, sigma=1.0):
    return _skewed_codes(rng, n, levels, rng.lognormal(0.0, sigma, levels))


def simulate(key, size):
    """Columns (dict of arrays) of a simulated data set."""
    rng = np.random.default_rng([SEED, list(DATASETS).index(key)])
    if key == "one-factor":
        n = size["n"]
        g = _lognormal_codes(rng, n, size["groups"])
        x = rng.standard_normal((n, 5))
        sd, corr = np.array([1.0, 0.5]), 0.3
        cov = np.outer(sd, sd) * np.array([[1, corr], [corr, 1]])
        b = rng.multivariate_normal(np.zeros(2), cov, size=g.max() + 1)
        beta = np.array([0.5, -0.3, 0.2, 0.1, -0.1])
        y = 1.0 + x @ beta + b[g, 0] + b[g, 1] * x[:, 0] + rng.standard_normal(n)
        cols = {f"x{j + 1}": x[:, j] for j in range(5)}
        return {"y": y, **cols, "g": g}
    n = size["n"]
    if key == "two-crossed":
        a = _lognormal_codes(rng, n, size["a"])
        b = _lognormal_codes(rng, n, size["b"])
        sd_a, sd_b = 0.8, 0.5
    else:  # recommender: log-normal user activity, power-law item popularity
        a = _lognormal_codes(rng, n, size["user"], sigma=1.2)
        popularity = np.arange(1, size["item"] + 1, dtype=float) ** -0.9
        b = _skewed_codes(rng, n, size["item"], rng.permutation(popularity))
        sd_a, sd_b = 0.5, 0.8
    x = rng.standard_normal((n, 2))
    u = sd_a * rng.standard_normal(a.max() + 1)
    v = sd_b * rng.standard_normal(b.max() + 1)
    y = 3.0 + x @ np.array([0.4, -0.2]) + u[a] + v[b] + rng.standard_normal(n)
    names = DATASETS[key]["factors"]
    return {"y": y, "x1": x[:, 0], "x2": x[:, 1], names[0]: a, names[1]: b}


def load_real(key, insteval_path, small):
    import pandas as pd

    if key == "sleepstudy":
        from sklearn_mixed.datasets import load_sleepstudy

        df = load_sleepstudy()
        return {
            "Reaction": df["Reaction"].to_numpy(float),
            "Days": df["Days"].to_numpy(float),
            "Subject": df["Subject"].to_numpy(str),
        }
    factors = {"s": str, "d": str, "dept": str}
    df = pd.read_csv(insteval_path, dtype=factors)
    if small:  # a fixed 5% of the rows for the smoke run
        df = df.sample(frac=0.05, random_state=SEED)
    return {
        "y": df["y"].to_numpy(float),
        "service": df["service"].to_numpy(float),
        **{f: df[f].to_numpy(str) for f in factors},
    }


def write_data(key, cols, directory, with_csv):
    directory.mkdir(parents=True)
    for name, values in cols.items():
        np.save(directory / f"{name}.npy", values, allow_pickle=False)
    if with_csv:
        import pandas as pd

        pd.DataFrame(cols).to_csv(directory / "data.csv", index=False)
    n = len(next(iter(cols.values())))
    levels = {f: int(len(np.unique(cols[f]))) for f in DATASETS[key]["factors"]}
    return n, levels


# ------------------------------------------------------------------ workers
def _proc_status_mb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _emit(**event):
    print(MARK + json.dumps(event), flush=True)


def _load_frame(directory, spec):
    import pandas as pd

    cols = [spec["y"], *spec["features"], *spec["factors"]]
    return pd.DataFrame({c: np.load(directory / f"{c}.npy", allow_pickle=False) for c in cols})


class _Skip(Exception):
    """The estimator cannot run this benchmark (yet)."""


def _sklearn_mixed_fitter(key, spec, df):
    X, y, groups = df[spec["features"]], df[spec["y"]], df[spec["factors"]]
    if key == "recommender":
        try:
            from sklearn_mixed import CrossedEffectsRegressor
        except ImportError:
            return "skipped: sklearn_mixed.CrossedEffectsRegressor does not exist yet"
        try:
            model = CrossedEffectsRegressor(solver="iterative")
        except TypeError as exc:
            return f"skipped: CrossedEffectsRegressor(solver='iterative') fails: {exc}"
    else:
        from sklearn_mixed import MixedLinearRegressor

        model = MixedLinearRegressor(
            random_slopes=spec["slopes"], method="reml" if spec["reml"] else "ml"
        )

    def fit():
        try:
            model.fit(X, y, groups=groups)
            fit.approximate = bool(getattr(model, "approximate_", False))
        except (NotImplementedError, ValueError, TypeError) as exc:
            if key == "recommender" and ("solver" in str(exc) or "iterative" in str(exc)):
                raise _Skip(
                    f"skipped: CrossedEffectsRegressor(solver='iterative').fit: {exc}"
                ) from exc
            raise
        return getattr(model, "log_likelihood_", float("nan"))

    return fit


def _mixedlm_fitter(key, spec, df):
    import mixedlm

    def fit():
        return float(mixedlm.lmer(spec["formula"], df, REML=spec["reml"]).logLik().value)

    return fit


def _statsmodels_fitter(key, spec, df):
    import statsmodels.formula.api as smf

    fixed = f"{spec['y']} ~ " + " + ".join(spec["features"])
    factors = spec["factors"]

    def model():
        if len(factors) > 1:  # crossed: variance components of one all-data group
            vc = {f: f"0 + C({f})" for f in factors}
            return smf.mixedlm(fixed, df, groups=np.ones(len(df)), vc_formula=vc)
        re_formula = "~" + " + ".join(spec["slopes"]) if spec["slopes"] else "1"
        return smf.mixedlm(fixed, df, groups=df[factors[0]], re_formula=re_formula)

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(model().fit(reml=spec["reml"]).llf)

    return fit


FITTERS = {
    "sklearn-mixed": _sklearn_mixed_fitter,
    "mixedlm": _mixedlm_fitter,
    "statsmodels": _statsmodels_fitter,
}


def run_worker(package, key, directory, repeat):
    """Fit ``repeat`` times, reporting each fit on stdout (protocol lines)."""
    import pandas  # noqa: F401  (the imports a user pays, before the baseline)

    if package == "sklearn-mixed":
        import sklearn_mixed  # noqa: F401
    elif package == "mixedlm":
        import mixedlm  # noqa: F401
    elif package == "statsmodels":
        import statsmodels.formula.api  # noqa: F401
    _emit(event="baseline", rss_mb=_proc_status_mb("VmRSS"))
    spec = DATASETS[key]
    df = _load_frame(Path(directory), spec)
    fit = FITTERS[package](key, spec, df)
    if isinstance(fit, str):
        _emit(event="skip", reason=fit)
        return
    _emit(event="ready")
    loglik = float("nan")
    for i in range(repeat):
        start = time.perf_counter()
        try:
            loglik = fit()
        except _Skip as exc:
            _emit(event="skip", reason=str(exc))
            return
        _emit(event="fit", i=i, seconds=time.perf_counter() - start)
    _emit(
        event="done",
        loglik=loglik,
        peak_mb=_proc_status_mb("VmHWM"),
        approximate=getattr(fit, "approximate", False),
    )


R_WORKER = r"""
status_mb <- function(field) {
  line <- grep(paste0("^", field, ":"), readLines("/proc/self/status"), value = TRUE)
  as.numeric(strsplit(trimws(line), " +")[[1]][2]) / 1024
}
emit <- function(x) {
  cat("@@", jsonlite::toJSON(x, auto_unbox = TRUE, digits = NA), "\n", sep = "")
  flush(stdout())
}
suppressMessages({library(lme4); library(jsonlite)})
emit(list(event = "baseline", rss_mb = status_mb("VmRSS"),
          version = paste("R", getRversion(), "lme4", packageVersion("lme4"))))
args <- commandArgs(trailingOnly = TRUE)
job <- fromJSON(args[1])
d <- read.csv(job$csv)
for (f in job$factors) d[[f]] <- factor(d[[f]])
form <- as.formula(job$formula)
emit(list(event = "ready"))
for (i in seq_len(job$repeat_)) {
  secs <- system.time(fit <- suppressWarnings(lmer(form, d, REML = job$reml)))[["elapsed"]]
  emit(list(event = "fit", i = i - 1, seconds = secs))
}
emit(list(event = "done", loglik = as.numeric(logLik(fit)), peak_mb = status_mb("VmHWM")))
"""


# ------------------------------------------------------------ the parent side
def _limit_memory(limit_bytes):
    def apply():
        if limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


def run_peer(package, key, directory, repeat, timeout, memory_limit, tmp):
    """Run one (package, data set) subprocess; return a result dict."""
    spec = DATASETS[key]
    if package == "lme4":
        job = {
            "csv": str(directory / "data.csv"),
            "factors": spec["factors"],
            "formula": spec["formula"],
            "reml": spec["reml"],
            "repeat_": repeat,
        }
        script = Path(tmp) / "bench_speed.R"
        script.write_text(R_WORKER)
        cmd = ["Rscript", "--vanilla", str(script), json.dumps(job)]
    else:
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            package,
            key,
            str(directory),
            str(repeat),
        ]
    stderr = tempfile.TemporaryFile(mode="w+", dir=tmp)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        start_new_session=True,
        preexec_fn=_limit_memory(memory_limit),
    )
    events = queue.Queue()

    def read():
        for line in proc.stdout:
            if line.startswith(MARK):
                events.put(json.loads(line[len(MARK) :]))
        events.put(None)

    threading.Thread(target=read, daemon=True).start()
    result = {"times": [], "status": "failed"}
    while True:
        try:
            event = events.get(timeout=timeout)
        except queue.Empty:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            result["status"] = "timeout"
            break
        if event is None:
            proc.wait()
            if result["status"] != "failed":
                break
            stderr.seek(0)
            tail = [ln for ln in stderr.read().strip().splitlines() if ln.strip()]
            rc = proc.returncode
            why = f"killed by signal {-rc}" if rc < 0 else (tail[-1] if tail else f"exit {rc}")
            result["reason"] = why[:200]
            break
        kind = event["event"]
        if kind == "baseline":
            result["idle_mb"] = event["rss_mb"]
            if "version" in event:
                result["version"] = event["version"]
        elif kind == "fit":
            result["times"].append(event["seconds"])
        elif kind == "skip":
            result.update(status="skipped", reason=event["reason"])
        elif kind == "done":
            result.update(
                status="ok",
                loglik=event["loglik"],
                peak_mb=event["peak_mb"],
                approximate=event.get("approximate", False),
            )
            result["seconds"] = float(np.median(result["times"]))
    if proc.poll() is None:
        proc.wait()
    stderr.close()
    return result


def machine_info():
    import scipy
    from threadpoolctl import threadpool_info

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
        ram = f"{int(mem) / 1024**2:.1f} GB RAM"
    except OSError:
        ram = "RAM unknown"
    blas = "; ".join(
        f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
        for p in threadpool_info()
    )
    lines = [
        f"machine: {cpu}, {os.cpu_count()} cores, {ram}, {platform.platform()}",
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"BLAS: {blas or 'none found'}",
    ]
    versions = []
    for module, name in (
        ("sklearn_mixed", "sklearn-mixed"),
        ("mixedlm", "mixedlm"),
        ("statsmodels", "statsmodels"),
    ):
        try:
            versions.append(f"{name} {__import__(module).__version__}")
        except ImportError:
            versions.append(f"{name} not installed")
    lines.append("packages: " + ", ".join(versions))
    return lines


def peer_available(package):
    if package == "lme4":
        if shutil.which("Rscript") is None:
            return "skipped: Rscript not on PATH"
        check = subprocess.run(
            ["Rscript", "-e", "suppressMessages({library(lme4); library(jsonlite)})"],
            capture_output=True,
            text=True,
            check=False,
        )
        return None if check.returncode == 0 else "skipped: R lacks lme4 or jsonlite"
    module = {"sklearn-mixed": "sklearn_mixed", "mixedlm": "mixedlm", "statsmodels": "statsmodels"}
    try:
        __import__(module[package])
    except ImportError:
        return f"skipped: {package} not installed"
    return None


def _fmt(v, digits=2):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, str):
        return v
    return f"{v:.{digits}f}"


def _fmt_seconds(v):
    return "" if v is None else (f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}")


def print_table(header, rows, markdown):
    if markdown:
        for i, row in enumerate([header, *rows]):
            print("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
            if i == 0:
                print("|" + "|".join(" --- " for _ in header) + "|")
        return
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument("--sizes", choices=["small", "full"], default="full")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="fits per package and data set (default 3, sleepstudy 50; "
        "with --sizes small 1 and 10)",
    )
    parser.add_argument(
        "--only", default=None, help="comma-separated data sets: " + ",".join(DATASETS)
    )
    parser.add_argument(
        "--peers", default=",".join(PEERS), help="comma-separated, of " + ",".join(PEERS)
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per fit before a peer is killed (default 900; 10 with --sizes small)",
    )
    parser.add_argument(
        "--memory-limit",
        type=float,
        default=None,
        help="address-space limit of each subprocess in GB (default 75%% of RAM)",
    )
    parser.add_argument("--insteval", default=INSTEVAL_DEFAULT, help="path of InstEval as CSV")
    parser.add_argument(
        "--try-all",
        action="store_true",
        help="also run the peers not attempted on the recommender data",
    )
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = parser.parse_args()

    small = args.sizes == "small"
    timeout = args.timeout or (10.0 if small else 900.0)
    keys = args.only.split(",") if args.only else list(DATASETS)
    peers = args.peers.split(",")
    for name, allowed in ((keys, DATASETS), (peers, PEERS)):
        unknown = set(name) - set(allowed)
        if unknown:
            parser.error(f"unknown: {', '.join(sorted(unknown))}; choose from {', '.join(allowed)}")
    peers = [p for p in PEERS if p in peers]  # sklearn-mixed first
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    memory_limit = int((args.memory_limit * 1024**3) if args.memory_limit else 0.75 * ram)

    for line in machine_info():
        print(line)
    print(
        f"sizes: {args.sizes}; timeout {timeout:.0f} s per fit; memory limit "
        f"{memory_limit / 1024**3:.1f} GB per subprocess; the times are medians of in-process fits"
    )
    unavailable = {p: peer_available(p) for p in peers}
    started = time.perf_counter()
    results, info = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench_speed_") as tmp:
        for key in keys:
            spec = DATASETS[key]
            if key == "insteval" and not Path(args.insteval).is_file():
                print(f"{key}: skipped, no {args.insteval} (pass --insteval PATH)")
                continue
            if "full" in spec:
                size = spec["small" if small else "full"]
                cols = simulate(key, size)
            else:
                cols = load_real(key, args.insteval, small)
            directory = Path(tmp) / key
            needs_csv = (
                "lme4" in peers
                and not unavailable.get("lme4")
                and (args.try_all or (key, "lme4") not in NOT_ATTEMPTED)
            )
            n, levels = write_data(key, cols, directory, needs_csv)
            del cols
            repeat = args.repeat or (
                spec["repeat"] if not small else 10 if key == "sleepstudy" else 1
            )
            info[key] = (n, levels, repeat)
            print(
                f"{key}: n = {n:,}, levels "
                + ", ".join(f"{f} {k:,}" for f, k in levels.items())
                + f"; {repeat} fits",
                flush=True,
            )
            for package in peers:
                if unavailable[package]:
                    res = {"status": "skipped", "reason": unavailable[package]}
                elif (key, package) in NOT_ATTEMPTED and not args.try_all:
                    res = {"status": "skipped", "reason": NOT_ATTEMPTED[(key, package)]}
                else:
                    t0 = time.perf_counter()
                    res = run_peer(package, key, directory, repeat, timeout, memory_limit, tmp)
                    res["wall"] = time.perf_counter() - t0
                results[key, package] = res
                print(
                    f"  {package}: {res['status']}"
                    + (
                        f" {res['seconds']:.3f} s, loglik {res['loglik']:.4f}"
                        if res["status"] == "ok"
                        else ""
                    )
                    + (f" ({res['reason']})" if res.get("reason") else "")
                    + (f" [{res['wall']:.0f} s wall]" if "wall" in res else ""),
                    flush=True,
                )
            shutil.rmtree(directory)
    elapsed = time.perf_counter() - started
    report(results, info, keys, peers, timeout, args.markdown)
    print(f"\ntotal run time {elapsed / 60:.1f} min")


def report(results, info, keys, peers, timeout, markdown):
    print()
    header = [
        "data set",
        "package",
        "median s",
        "fits",
        "peak MB",
        "idle MB",
        "loglik",
        "loglik - ours",
        "time / sklearn-mixed",
    ]
    rows, ratio_rows, notes = [], [], []
    for key in keys:
        if key not in info:
            continue
        n, levels, _ = info[key]
        title = f"{DATASETS[key]['title']}, n={n:,}"
        ours = results.get((key, "sklearn-mixed"), {})
        ours_ok = ours.get("status") == "ok"
        ratio_row = [
            title,
            _fmt_seconds(ours.get("seconds")) if ours_ok else ours.get("status", ""),
        ]
        for package in peers:
            res = results[key, package]
            status = res["status"]
            if status == "ok":
                ratio = res["seconds"] / ours["seconds"] if ours_ok else None
                delta = res["loglik"] - ours["loglik"] if ours_ok else None
                rows.append(
                    [
                        title,
                        package,
                        _fmt_seconds(res["seconds"]),
                        str(len(res["times"])),
                        _fmt(res["peak_mb"], 0),
                        _fmt(res.get("idle_mb"), 0),
                        _fmt(res["loglik"], 4) or "n/a",
                        _fmt(delta, 4),
                        _fmt(ratio, 2),
                    ]
                )
                if res.get("approximate"):
                    rows[-1][1] += " (approximate)"
                    notes.append(
                        f"{key} / {package}: approximate fit (iterative solver); its "
                        "log-likelihood is a stochastic (Lanczos) estimate"
                    )
                cell = _fmt(ratio, 2)
            else:
                if status == "timeout":
                    text = f"> {timeout:.0f} s (timeout, {len(res['times'])} fits done)"
                    cell = f"> {timeout / ours['seconds']:.0f}" if ours_ok else "timeout"
                elif status == "skipped":
                    text, cell = "skipped", "skipped"
                elif "MemoryError" in res.get("reason", ""):
                    text, cell = "out of memory", "out of memory"
                else:
                    text, cell = "failed", "failed"
                rows.append(
                    [title, package, text, "", "", _fmt(res.get("idle_mb"), 0), "", "", cell]
                )
                if res.get("reason"):
                    notes.append(f"{key} / {package}: {status}: {res['reason']}")
            if package != "sklearn-mixed":
                ratio_row.append(cell)
        ratio_rows.append(ratio_row)
    print_table(header, rows, markdown)
    others = [p for p in peers if p != "sklearn-mixed"]
    if others:
        print("\ntime ratios, peer / sklearn-mixed (> 1: sklearn-mixed is faster)\n")
        print_table(
            ["data set", "sklearn-mixed s", *(f"{p} / sklearn-mixed" for p in others)],
            ratio_rows,
            markdown,
        )
    print(
        "\npeak MB: high-water RSS of the package's own subprocess (interpreter, imports, data "
        "and fits); idle MB: its RSS after the imports, before loading the data.  "
        "InstEval reference: lme4 1.1-31 logLik -118860.88 (ML)."
    )
    r_versions = {res["version"] for res in results.values() if "version" in res}
    if r_versions:
        print("lme4: " + ", ".join(sorted(r_versions)) + " (timed inside R by system.time)")
    if notes:
        print()
        for note in notes:
            print(("- " if markdown else "") + note)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _, _, package, key, directory, repeat = sys.argv
        run_worker(package, key, directory, int(repeat))
    else:
        main()
