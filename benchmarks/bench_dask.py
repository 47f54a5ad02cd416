"""Out-of-core and distributed fits from Parquet with Dask: time, memory, agreement.

Writes once a Parquet dataset of ``--rows`` rows (default 1e8): users x items
crossed, a random slope on x1 by item, two fixed features,

    y = 1 + 0.5 x1 - 0.2 x2 + u[user] + a[item] + s[item] x1 + e,

then, each in a fresh process (its peak memory is its own):

1. ``in-memory``: the first ``--subset`` rows (default 1e7) read with
   pandas, fitted in memory by ``MixedLinearRegressor``; the reduction of its
   rows (coded, as the fit holds them) timed alone: rows per second on one
   core.
2. ``dask-subset``: the same rows fitted from the Parquet files on a
   ``LocalCluster`` of 2 workers: the agreement with 1. (issue target 1e-8).
3. ``dask``: all rows, on a ``LocalCluster`` of 1 and of 2 worker processes
   (one thread each): wall time of the fit (level pass + reduction pass +
   the optimization on the client, timed apart), peak resident memory of
   every process (client, each worker), and the reduction's throughput per
   worker core against 1.

Needs ``pip install -e ".[dask,benchmark]"``.  The full 1e8-row run writes
~2 GB to ``--dir`` and takes ~10-20 minutes on 2 cores; ``--rows 2e7`` is a
quick look.  Machines are shared and noisy: times are single runs, ratios
are within one run.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

RANDOM_EFFECTS = {"user": ["1"], "item": ["1", "x1"]}
FEATURES = ["x1", "x2"]
GROUPS = ["user", "item"]


def _peak_gib():
    """Peak resident memory of this process (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ------------------------------------------------------------------ the data
def write_dataset(path, rows, users, items, rows_per_file, seed=0):
    """The Parquet files (one row group each), unless already written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    marker = os.path.join(path, "_written.json")
    spec = {"rows": rows, "users": users, "items": items, "rows_per_file": rows_per_file}
    if os.path.exists(marker):
        with open(marker) as f:
            if json.load(f) == spec:
                return
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    u_eff = rng.normal(size=users)
    a_eff, s_eff = 0.5 * rng.normal(size=items), 0.3 * rng.normal(size=items)
    t0 = time.perf_counter()
    for i, start in enumerate(range(0, rows, rows_per_file)):
        n = min(rows_per_file, rows - start)
        user = rng.integers(0, users, n, dtype=np.int32)
        item = rng.integers(0, items, n, dtype=np.int32)
        x1, x2 = rng.normal(size=n), rng.normal(size=n)
        y = 1 + 0.5 * x1 - 0.2 * x2 + u_eff[user] + a_eff[item] + s_eff[item] * x1
        y += rng.normal(size=n)
        table = pa.table({
            "user": user, "item": item, "x1": x1.astype(np.float32),
            "x2": x2.astype(np.float32), "y": y.astype(np.float32),
        })  # fmt: skip
        pq.write_table(table, os.path.join(path, f"part-{i:05d}.parquet"))
    with open(marker, "w") as f:
        json.dump(spec, f)
    print(f"wrote {rows:.3g} rows to {path} in {time.perf_counter() - t0:.0f} s", flush=True)


def _files(path, rows=None):
    files = sorted(f for f in os.listdir(path) if f.endswith(".parquet"))
    if rows is None:
        return [os.path.join(path, f) for f in files]
    with open(os.path.join(path, "_written.json")) as f:
        per_file = json.load(f)["rows_per_file"]
    return [os.path.join(path, f) for f in files[: max(1, int(float(rows)) // per_file)]]


def _summary(model, seconds, **extra):
    return {
        "seconds": seconds,
        "log_likelihood": model.log_likelihood_,
        "theta": model.theta_.tolist(),
        "beta": [model.intercept_, *model.coef_.tolist()],
        "sigma2": model.residual_variance_,
        "n_obs": model.n_obs_,
        **extra,
    }


# ------------------------------------------------------------------ phases
def phase_in_memory(args):
    from sklearn_mixed import MixedLinearRegressor
    from sklearn_mixed.core import LinearMixedModel

    t0 = time.perf_counter()
    frame = pd.concat([pd.read_parquet(f) for f in _files(args.dir, args.subset)])
    read = time.perf_counter() - t0
    model = MixedLinearRegressor(random_effects=RANDOM_EFFECTS)
    t0 = time.perf_counter()
    model.fit(frame[FEATURES], frame["y"], groups=frame[GROUPS])
    seconds = time.perf_counter() - t0
    # the reduction alone (the model's rows, coded: the kernel), the coding of
    # the labels and columns before it, and the optimization alone
    t0 = time.perf_counter()
    model.model_.data.reduce()
    kernel = time.perf_counter() - t0
    coding = _coding_seconds(frame, model.model_.data)
    t0 = time.perf_counter()
    LinearMixedModel(model.model_.reduction, model.model_.terms).fit()
    solve = time.perf_counter() - t0
    return _summary(model, seconds, solve_seconds=solve, rows=len(frame), read_seconds=read,
                    kernel_seconds=kernel, coding_seconds=coding, peak_gib=_peak_gib())  # fmt: skip


def _coding_seconds(frame, rows):
    """What fit does between the DataFrame and the kernel: float columns, the
    levels (sorted) and codes of each factor, the covariates of the terms."""
    from sklearn_mixed.core import RandomTerm, encode_factor

    t0 = time.perf_counter()
    X = np.column_stack([np.ones(len(frame)), frame[FEATURES].to_numpy(np.float64)])
    frame["y"].to_numpy(np.float64)
    for name, term in zip(GROUPS, rows.terms, strict=True):
        codes, levels = encode_factor(frame[name].to_numpy())
        covariates = np.column_stack([X[:, 0] if c == "(Intercept)" else X[:, 1]
                                      for c in term.covariate_names])  # fmt: skip
        RandomTerm(name, codes, levels, covariates, term.covariate_names)
    return time.perf_counter() - t0


def phase_dask(args):
    import dask.dataframe as dd
    from distributed import Client, LocalCluster, get_task_stream

    from sklearn_mixed import MixedLinearRegressor
    from sklearn_mixed.core import LinearMixedModel

    files = _files(args.dir, args.subset)
    cluster = LocalCluster(n_workers=int(args.workers), threads_per_worker=1, processes=True,
                           dashboard_address=None)  # fmt: skip
    with cluster, Client(cluster) as client:
        ddf = dd.read_parquet(files, columns=GROUPS + FEATURES + ["y"])
        model = MixedLinearRegressor(random_effects=RANDOM_EFFECTS)
        with get_task_stream(client) as stream:
            t0 = time.perf_counter()
            model.fit(ddf[FEATURES], ddf["y"], groups=ddf[GROUPS])
            seconds = time.perf_counter() - t0
        # the passes: from the first task's start to the last task's end, on the workers
        spans = [s for task in stream.data for s in task["startstops"]]
        passes = max(s["stop"] for s in spans) - min(s["start"] for s in spans)
        workers = client.run(_peak_gib)
    t0 = time.perf_counter()
    LinearMixedModel(model.model_.reduction, model.model_.terms).fit()
    solve = time.perf_counter() - t0
    return _summary(model, seconds, solve_seconds=solve, passes_seconds=passes,
                    tasks=len(stream.data), workers=int(args.workers),
                    partitions=ddf.npartitions, client_peak_gib=_peak_gib(),
                    worker_peak_gib=sorted(workers.values()))  # fmt: skip


def _run_phase(args, phase, **options):
    """One phase in a fresh interpreter; its JSON result."""
    cmd = [sys.executable, __file__, "--phase", phase, "--dir", args.dir]
    for key, value in options.items():
        cmd += [f"--{key}", str(value)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _max_rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def main(args):
    rows, subset = int(float(args.rows)), int(float(args.subset))
    users, items = int(float(args.users)), int(float(args.items))
    write_dataset(args.dir, rows, users, items, int(float(args.rows_per_file)))
    print(f"data: {rows:.3g} rows, {users:,} users x {items} items (random "
          f"intercepts, a random slope on x1 by item), Parquet in {args.dir}\n")  # fmt: skip
    mem = _run_phase(args, "in-memory", subset=subset)
    sub = _run_phase(args, "dask", subset=subset, workers=2)
    kernel = mem["rows"] / mem["kernel_seconds"]  # rows/s of one core, reduction only
    coded = mem["rows"] / (mem["kernel_seconds"] + mem["coding_seconds"])
    from_disk = mem["rows"] / (mem["kernel_seconds"] + mem["coding_seconds"] + mem["read_seconds"])
    print(f"{subset:.3g}-row subset, in memory: fit {mem['seconds']:.1f} s (optimization "
          f"{mem['solve_seconds']:.1f} s), peak {mem['peak_gib']:.2f} GiB; rows/s on one core: "
          f"{kernel / 1e6:.2f}M for the reduction alone, {coded / 1e6:.2f}M with the coding "
          f"before it, {from_disk / 1e6:.2f}M with the Parquet read too")  # fmt: skip
    agree = ", ".join(
        f"{name} {_max_rel(sub[key], mem[key]):.1e}"
        for name, key in [("logLik", "log_likelihood"), ("theta", "theta"), ("beta", "beta"),
                          ("sigma^2", "sigma2")]
    )  # fmt: skip
    print(f"  same rows from Parquet with Dask (2 workers): fit {sub['seconds']:.1f} s; largest "
          f"relative difference: {agree}\n")  # fmt: skip
    print(
        "rows/s/core: the two passes over the Parquet files (levels, sums) per worker core; "
        "vs: against the in-memory reduction alone, and with its coding and Parquet read"
    )
    header = f"{'workers':>7} {'fit s':>8} {'passes s':>9} {'optim s*':>8} {'rows/s/core':>12} "
    print(header + f"{'vs alone':>9} {'vs read+coded':>13} {'client GiB':>10} {'worker GiB':>14}")
    results = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        r = results[workers] = _run_phase(args, "dask", workers=workers)
        passes = r["passes_seconds"]
        per_core = r["n_obs"] / passes / workers
        print(f"{workers:>7} {r['seconds']:>8.1f} {passes:>9.1f} {r['solve_seconds']:>8.1f} "
              f"{per_core / 1e6:>11.2f}M {per_core / kernel:>9.2f} {per_core / from_disk:>13.2f} "
              f"{r['client_peak_gib']:>10.2f} "
              f"{' '.join(f'{g:.2f}' for g in r['worker_peak_gib']):>14}", flush=True)  # fmt: skip
    print("* the optimization on the client alone, timed again after the fit")
    if len(results) > 1:
        a, b = min(results), max(results)
        ra, rb = results[a], results[b]
        speedup = ra["passes_seconds"] / rb["passes_seconds"]
        print(f"\npasses over the data, {a} -> {b} workers: {speedup:.2f}x faster; logLik "
              f"equal to {_max_rel(rb['log_likelihood'], ra['log_likelihood']):.1e}")  # fmt: skip
    full = results[max(results)]
    print(f"1e8-row fit vs the subset's: theta {np.round(full['theta'], 4).tolist()} vs "
          f"{np.round(mem['theta'], 4).tolist()}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1e8")
    parser.add_argument("--users", default="1e5")
    parser.add_argument("--items", default="20")
    parser.add_argument("--rows-per-file", default="2e6", dest="rows_per_file")
    parser.add_argument("--subset", default="1e7")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                      "sklearn_mixed_bench_parquet"))  # fmt: skip
    parser.add_argument("--phase", default=None)
    args = parser.parse_args()
    if args.phase is None:
        main(args)
    else:
        phase = {"in-memory": phase_in_memory, "dask": phase_dask}[args.phase]
        if args.phase == "dask" and args.subset == "1e7" and "--subset" not in sys.argv:
            args.subset = None
        print(json.dumps(phase(args)))
