"""MixedEffectsRegressor against MERF, GPBoost, a linear mixed model and plain boosting.

Which tree model with random effects for the groups predicts best, and at
what cost?  Every method is fitted on the same simulated training rows and
scored on the same two test sets of each repetition:

- ``seen``: new rows of groups seen in training (the BLUPs are used);
- ``unseen``: rows of groups held out entirely (the population value).

Methods (each on one core: ``--threads`` OpenMP/BLAS threads, default 1,
``n_jobs=1``, GPBoost ``num_threads=1``):

- ``ours-hgb``: ``MixedEffectsRegressor()``, its default estimator
  (``HistGradientBoostingRegressor(early_stopping=True)``), in-sample offset
  (``cv=None``), default ``max_iter=20``, ``tol=1e-4``;
- ``ours-hgb-cv5``: the same with ``cv=5`` (out-of-fold offset);
- ``merf``: ``merf.MERF(RandomForestRegressor(n_estimators=--rf-trees,
  n_jobs=1), max_iterations=20)`` (the MERF paper's setup; no early stop, so
  always 20 EM iterations), ``Z`` = ones (and ``x1`` for the random slope);
  it has one grouping factor only: skipped on the crossed design;
- ``ours-rf``: ``MixedEffectsRegressor`` with the same random forest, so
  that the two EM implementations are compared on the same ``f``;
- ``gpboost``: ``gpboost.GPModel(group_data=...)`` and ``gpboost.train`` with
  the parameters of GPBoost's ``combined_boosting_mixed_effects_example.py``
  (``learning_rate=0.1, max_depth=6, min_data_in_leaf=5``); the number of
  boosting rounds is chosen by ``gpboost.cv`` (4 folds, early stopping after
  5 rounds, at most 1000, ``use_gp_model_for_validation=True``) on the
  training rows.  ``fit s`` is the final ``train``; the CV is reported as
  ``tune s``.  Random slopes: ``group_rand_coef_data`` (uncorrelated with the
  intercept; the simulated ones are uncorrelated);
- ``mixed-linear``: ``MixedLinearRegressor`` (linear in the features, the
  design's random terms, REML);
- ``hgb``: ``HistGradientBoostingRegressor(early_stopping=True)`` without the groups.

Every HistGradientBoosting (alone or inside ``MixedEffectsRegressor``) has
the default parameters and ``random_state`` = the repetition's seed; so do
the random forests.

Designs (``--designs``; the fixed part is the MERF paper's
``m(x) = 2 x1 + x2^2 + 4 1{x3 > 0} + 2 log|x1| x3``, Hajjem, Bellavance and
Larocque 2014, also used by Sigrist 2022, "Gaussian Process Boosting",
JMLR 23):

- ``gpboost``: GPBoost's grouped random intercepts: 500 groups of 10
  training rows (n = 5000), ``m`` scaled to variance 1, ``sigma_b^2 = 1``,
  ``sigma^2 = 1``; features uniform on (-1, 1): x1..x3 and
  ``--noise-features`` irrelevant ones (default 2).  Test: 2 new rows of each
  group (1000) and 100 unseen groups of 10 rows (1000).  The sizes and
  variances are those of GPBoost's example and paper; the distribution and
  number of the features were not checked against the paper;
- ``merf``: MERF-like clusters: 100 clusters of 50 training rows, x1..x3
  standard normal (as MERF's ``MERFDataGenerator``), a random intercept and
  an uncorrelated random slope on x1, ``m`` scaled so that the fixed part
  has variance 4.5, ``Var(b0) = Var(b1) = 2.25``, ``sigma^2 = 1`` (90% of
  the variance explained, half of it by the random effects).  Test: 10 new
  rows of each cluster and 20 unseen clusters of 50 rows;
- ``crossed``: two crossed factors, ``a`` with 200 and ``b`` with 50 levels,
  5000 training rows with uniformly drawn levels, the fixed part of
  ``gpboost``, ``Var(a) = 1``, ``Var(b) = 0.5``, ``sigma^2 = 1``.  Test: 1000
  new rows of seen levels, and 1000 rows of 40 unseen levels of ``a`` (their
  ``b`` levels are seen).  MERF cannot fit crossed factors.

Each design is simulated ``--reps`` times (seeds ``--seed``, ``--seed + 1``,
...); the tables show the mean RMSE over repetitions (sd in brackets), the
median fit time in seconds (``fit`` only, not ``predict``), for
``MixedEffectsRegressor`` the median ``n_iter_`` and how many fits
converged, then the estimated variance components against the truth (mean
over repetitions), and the time ratios ``peer / ours`` (of the medians;
above 1: ours is faster).  The machine may be shared: compare times within
one run.  Warnings and errors are listed at the end.

    OMP_NUM_THREADS=1 python benchmarks/bench_mixed_effects.py --quick   # < 3 minutes
    OMP_NUM_THREADS=1 python benchmarks/bench_mixed_effects.py [--reps 3] [--seed 0]
        [--designs gpboost,merf,crossed] [--methods ours-hgb,merf,...] [--rf-trees 300]

``OMP_NUM_THREADS=1`` matters on a busy 2-core machine: HistGradientBoosting's
OpenMP threads spin-wait and were 40 times slower when the cores were shared.
``--quick``: a fifth of the rows and groups, 1 repetition, 100 trees per
forest.  ``merf`` is skipped with a message when not installed
(``pip install merf``), ``gpboost`` likewise (``pip install gpboost``).
"""

import argparse
import logging
import os
import time
import warnings
from collections import Counter

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.metrics import root_mean_squared_error
from threadpoolctl import threadpool_limits

from sklearn_mixed import MixedEffectsRegressor, MixedLinearRegressor

DESIGNS = ["gpboost", "merf", "crossed"]
METHODS = ["ours-hgb", "ours-hgb-cv5", "merf", "ours-rf", "gpboost", "mixed-linear", "hgb"]
LABELS = {
    "ours-hgb": "MixedEffectsRegressor(HGB)",
    "ours-hgb-cv5": "MixedEffectsRegressor(HGB, cv=5)",
    "merf": "merf.MERF(RF)",
    "ours-rf": "MixedEffectsRegressor(RF)",
    "gpboost": "GPBoost",
    "mixed-linear": "MixedLinearRegressor",
    "hgb": "HGB, no groups",
}
GPBOOST_PARAMS = {"objective": "regression_l2", "learning_rate": 0.1, "max_depth": 6,
                  "min_data_in_leaf": 5, "verbose": -1, "num_threads": 1}  # fmt: skip


# ------------------------------------------------------------------ data
def fixed_part(x):
    """The MERF paper's m(x) = 2 x1 + x2^2 + 4 1{x3 > 0} + 2 log|x1| x3."""
    x1, x2, x3 = x[:, 0], x[:, 1], x[:, 2]
    return 2 * x1 + x2**2 + 4 * (x3 > 0) + 2 * np.log(np.abs(x1)) * x3


def _scale(draw, variance):
    """The factor that gives ``fixed_part`` of ``draw``'s features ``variance``
    (from a fixed large sample: the same in every repetition)."""
    sample = draw(np.random.default_rng(12345), 1_000_000)
    return np.sqrt(variance) / fixed_part(sample).std()


class Data:
    """One simulated repetition: training rows and the two test sets."""

    def __init__(self, X, y, groups, n_train, n_seen, slopes, truth, description):
        n = len(y)
        parts = {"train": np.arange(n_train), "seen": np.arange(n_train, n_train + n_seen),
                 "unseen": np.arange(n_train + n_seen, n)}  # fmt: skip
        self.parts = {
            k: (X.iloc[i].reset_index(drop=True), y[i], groups.iloc[i].reset_index(drop=True))
            for k, i in parts.items()
        }
        self.slopes, self.truth, self.description = slopes, truth, description

    def get(self, part):
        return self.parts[part]


def _group_layout(n_groups, per_group, seen_per_group, n_new):
    """The group of each row: training rows, then new rows of the same groups,
    then ``n_new`` unseen groups of ``per_group`` rows; and the three parts."""
    train_g = np.repeat(np.arange(n_groups), per_group)
    seen_g = np.repeat(np.arange(n_groups), seen_per_group)
    new_g = np.repeat(np.arange(n_groups, n_groups + n_new), per_group)
    return np.concatenate([train_g, seen_g, new_g]), train_g, seen_g, new_g


def simulate_gpboost(rng, size, noise_features):
    """500 groups x 10 rows, random intercepts, m scaled to variance 1."""
    n_groups, per_group, seen_per_group, n_new = 500 // size, 10, 2, 100 // size
    p = 3 + noise_features

    def draw(r, n):
        return r.uniform(-1, 1, (n, p))

    scale = _scale(draw, 1.0)
    g, train_g, seen_g, new_g = _group_layout(n_groups, per_group, seen_per_group, n_new)
    x = draw(rng, len(g))
    b = rng.normal(0, 1.0, n_groups + n_new)
    y = scale * fixed_part(x) + b[g] + rng.normal(0, 1.0, len(g))
    X = pd.DataFrame(x, columns=[f"x{j}" for j in range(1, p + 1)])
    groups = pd.DataFrame({"group": g})
    description = (f"{n_groups} groups x {per_group} training rows (n={len(train_g)}), "
                   f"{p} features U(-1,1) (x1..x3 used), var(m)=1, var(b)=1, sigma^2=1; "
                   f"test: {len(seen_g)} rows of seen groups, {len(new_g)} rows of "
                   f"{n_new} unseen groups")  # fmt: skip
    truth = {"sigma^2": 1.0, "var(group)": 1.0}
    return Data(X, y, groups, len(train_g), len(seen_g), [], truth, description)


def simulate_merf(rng, size):
    """100 clusters x 50 rows, random intercept and slope on x1 (MERF-like)."""
    n_clusters, per_cluster, seen_per_cluster, n_new = 100 // size, 50, 10, 20 // size
    if size > 1:
        per_cluster, seen_per_cluster = 30, 6

    def draw(r, n):
        return r.normal(0, 1, (n, 3))

    scale = _scale(draw, 4.5)
    g, train_g, seen_g, new_g = _group_layout(n_clusters, per_cluster, seen_per_cluster, n_new)
    x = draw(rng, len(g))
    b0 = rng.normal(0, 1.5, n_clusters + n_new)
    b1 = rng.normal(0, 1.5, n_clusters + n_new)
    y = scale * fixed_part(x) + b0[g] + b1[g] * x[:, 0] + rng.normal(0, 1.0, len(g))
    X = pd.DataFrame(x, columns=["x1", "x2", "x3"])
    groups = pd.DataFrame({"cluster": g})
    description = (f"{n_clusters} clusters x {per_cluster} training rows (n={len(train_g)}), "
                   "x1..x3 N(0,1), var(m)=4.5, random intercept var 2.25 and slope on x1 "
                   f"var 2.25, sigma^2=1; test: {len(seen_g)} rows of seen clusters, "
                   f"{len(new_g)} rows of {n_new} unseen clusters")  # fmt: skip
    truth = {"sigma^2": 1.0, "var(cluster)": 2.25, "var(cluster:x1)": 2.25}
    return Data(X, y, groups, len(train_g), len(seen_g), ["x1"], truth, description)


def simulate_crossed(rng, size, noise_features):
    """a (200 levels) x b (50 levels) crossed random intercepts."""
    n_a, n_b, n_new_a = 200 // size, 50 // size, 40 // size
    n_train, n_seen, n_unseen = 5000 // size, 1000 // size, 1000 // size
    p = 3 + noise_features

    def draw(r, n):
        return r.uniform(-1, 1, (n, p))

    scale = _scale(draw, 1.0)
    n_known = n_train + n_seen
    a = np.concatenate([rng.integers(0, n_a, n_known), rng.integers(n_a, n_a + n_new_a, n_unseen)])
    b = rng.integers(0, n_b, n_known + n_unseen)
    x = draw(rng, len(a))
    effect_a, effect_b = rng.normal(0, 1.0, n_a + n_new_a), rng.normal(0, np.sqrt(0.5), n_b)
    y = scale * fixed_part(x) + effect_a[a] + effect_b[b] + rng.normal(0, 1.0, len(a))
    X = pd.DataFrame(x, columns=[f"x{j}" for j in range(1, p + 1)])
    groups = pd.DataFrame({"a": a, "b": b})
    description = (f"a {n_a} x b {n_b} crossed levels, n={n_train} training rows, "
                   f"{p} features U(-1,1), var(m)=1, var(a)=1, var(b)=0.5, sigma^2=1; "
                   f"test: {n_seen} rows of seen levels, {n_unseen} rows of {n_new_a} "
                   "unseen levels of a (seen b)")  # fmt: skip
    truth = {"sigma^2": 1.0, "var(a)": 1.0, "var(b)": 0.5}
    return Data(X, y, groups, n_train, n_seen, [], truth, description)


# --------------------------------------------------------------- methods
class Fitted:
    """What a method's fit left: a predict function and diagnostics."""

    def __init__(self, predict, n_iter=None, converged=None, variances=None, tune_seconds=None):
        self.predict, self.n_iter, self.converged = predict, n_iter, converged
        self.variances, self.tune_seconds = variances or {}, tune_seconds


def _ours_variances(model, data):
    out = {"sigma^2": float(model.residual_variance_)}
    cov = model.random_effects_cov_
    for name in data.get("train")[2].columns:
        out[f"var({name})"] = float(cov[name][0, 0])
        for k, slope in enumerate(data.slopes, start=1):
            out[f"var({name}:{slope})"] = float(cov[name][k, k])
    return out


def fit_ours(data, estimator, seed, cv=None):
    X, y, g = data.get("train")
    slopes = data.slopes or None
    model = MixedEffectsRegressor(estimator, random_slopes=slopes, cv=cv, random_state=seed)
    start = time.perf_counter()
    model.fit(X, y, groups=g)
    seconds = time.perf_counter() - start
    fitted = Fitted(lambda X, g: model.predict(X, groups=g), model.n_iter_, model.converged_,
                    _ours_variances(model, data))  # fmt: skip
    return fitted, seconds


def fit_mixed_linear(data, seed):
    X, y, g = data.get("train")
    model = MixedLinearRegressor(random_slopes=data.slopes or None)
    start = time.perf_counter()
    model.fit(X, y, groups=g)
    seconds = time.perf_counter() - start
    variances = _ours_variances(model, data)
    return Fitted(lambda X, g: model.predict(X, groups=g), variances=variances), seconds


def fit_hgb(data, seed):
    X, y, _ = data.get("train")
    model = HistGradientBoostingRegressor(early_stopping=True, random_state=seed)
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    return Fitted(lambda X, g: model.predict(X)), seconds


def _design_z(X, slopes):
    return np.column_stack([np.ones(len(X))] + [X[s].to_numpy(float) for s in slopes])


def fit_merf(data, seed, trees):
    from merf import MERF  # its __init__ sets up logging at level INFO

    logging.getLogger("merf").setLevel(logging.WARNING)

    X, y, g = data.get("train")
    if g.shape[1] != 1:
        raise NotImplementedError("merf has one grouping factor only (no crossed factors)")
    forest = RandomForestRegressor(n_estimators=trees, n_jobs=1, random_state=seed)
    model = MERF(fixed_effects_model=forest, max_iterations=20)
    clusters = pd.Series(g.iloc[:, 0].to_numpy())
    Z = _design_z(X, data.slopes)
    start = time.perf_counter()
    model.fit(X.to_numpy(), Z, clusters, y)
    seconds = time.perf_counter() - start

    def predict(X, g):
        clusters = pd.Series(g.iloc[:, 0].to_numpy())
        return model.predict(X.to_numpy(), _design_z(X, data.slopes), clusters)

    name = g.columns[0]
    D = model.D_hat_history[-1]
    variances = {"sigma^2": float(model.sigma2_hat_history[-1]), f"var({name})": float(D[0, 0])}
    for k, slope in enumerate(data.slopes, start=1):
        variances[f"var({name}:{slope})"] = float(D[k, k])
    return Fitted(predict, n_iter=len(model.gll_history), variances=variances), seconds


def _gpboost_model(gpb, X, g, slopes):
    options = {"group_data": g.to_numpy(), "num_parallel_threads": 1}
    if slopes:
        options["group_rand_coef_data"] = X[slopes].to_numpy(float)
        options["ind_effect_group_rand_coef"] = [1] * len(slopes)
    return gpb.GPModel(**options)


def fit_gpboost(data, seed):
    import gpboost as gpb

    X, y, g = data.get("train")
    start = time.perf_counter()
    cv = gpb.cv(params=GPBOOST_PARAMS, train_set=gpb.Dataset(X.to_numpy(), y),
                gp_model=_gpboost_model(gpb, X, g, data.slopes), num_boost_round=1000,
                early_stopping_rounds=5, nfold=4, seed=seed, metric="l2",
                use_gp_model_for_validation=True, verbose_eval=False)  # fmt: skip
    rounds = len(cv["l2-mean"])  # the history is cut at the best round
    tune = time.perf_counter() - start
    gp_model = _gpboost_model(gpb, X, g, data.slopes)
    start = time.perf_counter()
    booster = gpb.train(params=GPBOOST_PARAMS, train_set=gpb.Dataset(X.to_numpy(), y),
                        gp_model=gp_model, num_boost_round=rounds, verbose_eval=False)  # fmt: skip
    seconds = time.perf_counter() - start

    def predict(X, g):
        options = {"group_data_pred": g.to_numpy()}
        if data.slopes:
            options["group_rand_coef_data_pred"] = X[data.slopes].to_numpy(float)
        pred = booster.predict(data=X.to_numpy(), pred_latent=True, **options)
        return pred["fixed_effect"] + pred["random_effect_mean"]

    pars = np.asarray(gp_model.get_cov_pars(), dtype=float).ravel()
    names = ["sigma^2"] + [f"var({c})" for c in g.columns]
    names += [f"var({g.columns[0]}:{s})" for s in data.slopes]
    variances = dict(zip(names, pars, strict=False))
    return Fitted(predict, n_iter=rounds, variances=variances, tune_seconds=tune), seconds


def fit(method, data, seed, args):
    if method == "ours-hgb":
        return fit_ours(data, None, seed)
    if method == "ours-hgb-cv5":
        return fit_ours(data, None, seed, cv=5)
    if method == "ours-rf":
        forest = RandomForestRegressor(n_estimators=args.rf_trees, n_jobs=1, random_state=seed)
        return fit_ours(data, forest, seed)
    if method == "merf":
        return fit_merf(data, seed, args.rf_trees)
    if method == "gpboost":
        return fit_gpboost(data, seed)
    if method == "mixed-linear":
        return fit_mixed_linear(data, seed)
    if method == "hgb":
        return fit_hgb(data, seed)
    raise ValueError(method)


def available(method):
    """None, or why the method cannot run here."""
    module = {"merf": "merf", "gpboost": "gpboost"}.get(method)
    if module is None:
        return None
    try:
        __import__(module)
    except Exception as exc:  # an incompatible install fails in many ways
        return f"{module} not importable ({type(exc).__name__}: {exc}); pip install {module}"
    return None


# ------------------------------------------------------------ evaluation
def _mean_sd(values):
    values = np.asarray([v for v in values if v is not None], dtype=float)
    if values.size == 0:
        return "-"
    if values.size == 1:
        return f"{values[0]:.4f}"
    return f"{values.mean():.4f} +- {values.std(ddof=1):.4f}"


def _median(values, digits=1):
    values = [v for v in values if v is not None]
    return f"{np.median(values):.{digits}f}" if values else "-"


def run_design(name, simulate, methods, args, errors, caught):
    records = {m: [] for m in methods}
    description = None
    for rep in range(args.reps):
        seed = args.seed + rep
        data = simulate(np.random.default_rng([DESIGNS.index(name), seed]))
        description = data.description
        for method in methods:
            with warnings.catch_warnings(record=True) as log:
                warnings.simplefilter("always")
                try:
                    with threadpool_limits(args.threads):
                        fitted, seconds = fit(method, data, seed, args)
                        rmse = {
                            part: root_mean_squared_error(data.get(part)[1],
                                                          fitted.predict(*_xg(data, part)))
                            for part in ("seen", "unseen")
                        }  # fmt: skip
                except Exception as exc:  # a failing method is reported, not fatal
                    errors.append((name, method, seed, f"{type(exc).__name__}: {exc}"))
                    continue
            for w in log:
                message = str(w.message).splitlines()[0][:160]
                caught[(name, method, w.category.__name__, message)] += 1
            records[method].append({"rmse": rmse, "seconds": seconds, "fitted": fitted})
            print(f"  .. {name} seed {seed} {method}: RMSE seen {rmse['seen']:.4f}, unseen "
                  f"{rmse['unseen']:.4f}, {seconds:.1f} s", flush=True)  # fmt: skip
    return description, records


def _xg(data, part):
    X, _, g = data.get(part)
    return X, g


def report(name, description, records, truth, reps):
    print(f"\n== {name}: {description}; {reps} repetition(s)")
    rows = []
    for method, recs in records.items():
        if not recs:
            continue
        iters = [r["fitted"].n_iter for r in recs]
        conv = [r["fitted"].converged for r in recs]
        rows.append({
            "method": LABELS[method],
            "RMSE seen": _mean_sd([r["rmse"]["seen"] for r in recs]),
            "RMSE unseen": _mean_sd([r["rmse"]["unseen"] for r in recs]),
            "fit s": _median([r["seconds"] for r in recs]),
            "tune s": _median([r["fitted"].tune_seconds for r in recs]),
            "iter": _median(iters, 0) if iters[0] is not None else "-",
            "converged": f"{sum(conv)}/{len(conv)}" if conv[0] is not None else "-",
        })  # fmt: skip
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(pd.DataFrame(rows).set_index("method").to_string())
    print("  (iter: EM iterations for MixedEffectsRegressor and merf, boosting rounds chosen "
          "by CV for GPBoost; tune s: GPBoost's CV)")  # fmt: skip

    rows = [{"method": "truth", **{k: f"{v:.3f}" for k, v in truth.items()}}]
    for method, recs in records.items():
        if recs and recs[0]["fitted"].variances:
            row = {"method": LABELS[method]}
            for key in truth:
                values = [r["fitted"].variances.get(key) for r in recs]
                values = [v for v in values if v is not None]
                row[key] = f"{np.mean(values):.3f}" if values else "-"
            rows.append(row)
    print(f"\n{name}: estimated variance components (mean over repetitions)")
    print(pd.DataFrame(rows).set_index("method").to_string())

    def median_time(method, tune=False):
        recs = records.get(method) or []
        if not recs:
            return None
        return np.median([r["seconds"] + ((r["fitted"].tune_seconds or 0) if tune else 0)
                          for r in recs])  # fmt: skip

    pairs = [("merf", "ours-rf", False), ("merf", "ours-hgb", False),
             ("gpboost", "ours-hgb", False), ("gpboost", "ours-hgb", True),
             ("ours-hgb-cv5", "ours-hgb", False)]  # fmt: skip
    lines = []
    for peer, ours, tune in pairs:
        a, b = median_time(peer, tune), median_time(ours)
        if a is not None and b is not None:
            what = f"{peer}{' (incl. its CV)' if tune else ''} / {ours}"
            lines.append(f"  {what:40s} {a / b:7.2f}   ({a:.1f} s / {b:.1f} s)")
    if lines:
        print(f"\n{name}: time ratios (median fit times; above 1: the second is faster)")
        print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, 1 repetition")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first repetition")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3; quick 1)")
    parser.add_argument("--designs", default=",".join(DESIGNS), help=",".join(DESIGNS))
    parser.add_argument("--methods", default=",".join(METHODS), help=",".join(METHODS))
    parser.add_argument("--rf-trees", type=int, default=None,
                        help="trees per random forest (default 300; quick 100)")  # fmt: skip
    parser.add_argument("--noise-features", type=int, default=2,
                        help="irrelevant features of the gpboost and crossed designs")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="OpenMP and BLAS threads")
    args = parser.parse_args()
    args.reps = args.reps or (1 if args.quick else 3)
    args.rf_trees = args.rf_trees or (100 if args.quick else 300)
    designs = [d for d in args.designs.split(",") if d]
    methods = [m for m in args.methods.split(",") if m]
    for given, known, what in ((designs, DESIGNS, "designs"), (methods, METHODS, "methods")):
        unknown = sorted(set(given) - set(known))
        if unknown:
            parser.error(f"unknown {what} {unknown}; choose from {known}")

    omp = os.environ.get("OMP_NUM_THREADS")
    seeds = f"{args.seed}..{args.seed + args.reps - 1}"
    print(f"{args.threads} OpenMP/BLAS thread(s) (threadpoolctl), OMP_NUM_THREADS={omp}; "
          f"seeds {seeds}; {args.rf_trees} trees per forest")  # fmt: skip
    if omp != "1":
        print("warning: OMP_NUM_THREADS is not 1: on a shared machine HGB's times may be noise")
    versions = []
    for module in ("sklearn_mixed", "sklearn", "merf", "gpboost", "numpy", "pandas"):
        try:
            from importlib.metadata import version

            dist = {"sklearn_mixed": "sklearn-mixed", "sklearn": "scikit-learn"}.get(module, module)
            versions.append(f"{module} {version(dist)}")
        except Exception:
            versions.append(f"{module} absent")
    print("versions: " + ", ".join(versions))
    for method in list(methods):
        reason = available(method)
        if reason:
            print(f"{method} skipped: {reason}")
            methods.remove(method)
    if "merf" in methods and "crossed" in designs:
        print("merf skipped on crossed: MERF fits one grouping factor (Z b per cluster) only")

    size = 5 if args.quick else 1
    simulators = {
        "gpboost": lambda rng: simulate_gpboost(rng, size, args.noise_features),
        "merf": lambda rng: simulate_merf(rng, size),
        "crossed": lambda rng: simulate_crossed(rng, size, args.noise_features),
    }
    errors, caught = [], Counter()
    for name in designs:
        start = time.perf_counter()
        design_methods = [m for m in methods if not (m == "merf" and name == "crossed")]
        description, records = run_design(name, simulators[name], design_methods, args,
                                          errors, caught)  # fmt: skip
        truth = simulators[name](np.random.default_rng(0)).truth
        report(name, description, records, truth, args.reps)
        print(f"({name}: {time.perf_counter() - start:.0f} s)")

    print("\nwarnings (count, design, method, category: first line of the message):")
    for (name, method, category, message), count in caught.most_common():
        print(f"  {count:4d}  {name} {method}  {category}: {message}")
    if not caught:
        print("  none")
    if errors:
        print("\nerrors:")
        for name, method, seed, message in errors:
            print(f"  {name} {method} seed {seed}: {message[:300]}")


if __name__ == "__main__":
    main()
