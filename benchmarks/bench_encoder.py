"""Feed high-cardinality categorical columns to HistGradientBoosting: which encoding predicts best?

Each method is a scikit-learn pipeline fitted on the same training rows and
scored on the same test rows (one split of each scenario, shared by all
methods):

- ``mee``: ``MixedEffectsEncoder(random_state=0)`` on the grouping columns
  (crossed random intercepts, cross-fitted in ``fit_transform``), the numeric
  columns passed through, then ``HistGradientBoostingRegressor`` /
  ``HistGradientBoostingClassifier``;
- ``mee-std``: the same with ``return_std=True, return_counts=True``;
- ``te``: scikit-learn's ``TargetEncoder`` the same way, with the folds of
  ``TargetEncoder(random_state=0)`` (``cv=KFold(5, shuffle=True,
  random_state=0)``, ``StratifiedKFold`` for a binary target: scikit-learn
  1.9 deprecates ``random_state``), the folds ``MixedEffectsEncoder`` uses;
- ``native``: HistGradientBoosting's native categorical support after an
  ``OrdinalEncoder`` (unknown levels -> NaN, HGB's missing bin).  Native
  support needs at most ``max_bins = 255`` levels: a column with more levels
  (in the whole data set) is given to HGB as its ordinal codes, a numeric
  feature (the table names those columns);
- ``native-top``: native support for every grouping column, each cut to its
  254 most frequent levels plus one "infrequent" level
  (``OrdinalEncoder(max_categories=255)``);
- ``onehot``: ``OneHotEncoder(handle_unknown="ignore")`` (sparse) and
  ``Ridge()`` / ``LogisticRegression(max_iter=1000)``; InstEval's few-level
  columns (service, studage, lectage) are one-hot encoded too, the
  simulation's numeric features standardized (so the linear model cannot
  fit their nonlinear effect);
- ``numeric``: HGB on the numeric columns alone (what the grouping columns add).

Every HGB has ``max_iter=200``, no early stopping, ``random_state=0``; the
target encoders are told the target type (InstEval's ``y`` in 1..5 would be
"multiclass" to ``TargetEncoder``'s ``"auto"``).

Data sets, each as a regression and as a classification:

- ``insteval``: lme4's InstEval (``--insteval PATH``; 73421 rows, students
  ``s``, instructors ``d``, departments ``dept`` as grouping columns;
  ``service``, ``studage``, ``lectage`` numeric (ordinal) for the HGB
  methods).  Targets ``y`` (1..5) and ``y >= 4``;
- ``simulated``: users x items (``--users``, ``--items``, ``--rows``),
  log-normal user activity, power-law item popularity, crossed random
  intercepts (sd 1 for users, 0.5 for items) plus a standardized Friedman #1
  function of five uniform features (sd 1, nonlinear, with an interaction);
  regression: ``+ N(0, 1)`` noise; classification: Bernoulli with the
  logistic of the same linear predictor.

Scenarios: ``seen`` is a random 80/20 split of the rows (most test levels
were seen in training); ``unseen`` is a ``GroupShuffleSplit`` (20% of the
groups) on students (InstEval) or users (simulation), so every test row's
student/user is a level never seen in training.  ``--splits N`` repeats
each scenario on N splits (mean, and sd in brackets).  Metrics: RMSE;
ROC AUC and log-loss; the wall time of ``fit`` + ``predict`` (the machine
is shared: compare times within one run).  Warnings and errors are listed
after the tables.

Threads: everything runs with ``--threads`` (default 1) OpenMP and BLAS
threads (threadpoolctl).  On a 2-core machine shared with other work, HGB's
two OpenMP threads were 10 to 50 times slower than one (a 15000-row HGB fit:
0.7 s with one thread, 9 to 35 s with two), which made its times noise.

    python benchmarks/bench_encoder.py --quick            # < 3 minutes
    python benchmarks/bench_encoder.py [--seed 0] [--splits 1] [--only insteval,simulated]
        [--methods mee,te,native,onehot] [--tasks regression,classification] [--threads 1]

``--quick``: InstEval cut to a random tenth of its students (all their
rows), the simulation to 500 users x 200 items x 20000 rows.
"""

import argparse
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss, roc_auc_score, root_mean_squared_error
from sklearn.model_selection import GroupShuffleSplit, KFold, ShuffleSplit, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder
from threadpoolctl import threadpool_limits

from sklearn_mixed import MixedEffectsEncoder

MAX_BINS = 255  # HGB's default max_bins: the most levels native categorical support takes
METHODS = ["mee", "mee-std", "te", "native", "native-top", "onehot", "numeric"]


# ------------------------------------------------------------------ data
def load_insteval(path, quick, seed):
    """``(name, X, targets, groups, numeric, onehot_numeric, unseen_column)`` or None."""
    if not Path(path).exists():
        print(f"insteval skipped: {path} not found (--insteval PATH)")
        return None
    groups = ["s", "d", "dept"]
    df = pd.read_csv(path, dtype={g: str for g in groups})
    if quick:
        students = df["s"].unique()
        keep = np.random.default_rng(seed).choice(students, len(students) // 10, replace=False)
        df = df[df["s"].isin(keep)].reset_index(drop=True)
    numeric = ["service", "studage", "lectage"]
    targets = {
        "regression": df["y"].to_numpy(float),
        "classification": (df["y"] >= 4).to_numpy(int),
    }
    return "insteval", df[groups + numeric], targets, groups, numeric, True, "s"


def simulate(n_users, n_items, n_rows, seed):
    """Users x items with crossed random intercepts and a nonlinear fixed part."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 0.75, n_users)
    popularity = 1.0 / rng.permutation(np.arange(1, n_items + 1))
    user = rng.choice(n_users, n_rows, p=activity / activity.sum())
    item = rng.choice(n_items, n_rows, p=popularity / popularity.sum())
    x = rng.uniform(size=(n_rows, 5))
    friedman = (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2
                + 10 * x[:, 3] + 5 * x[:, 4])  # fmt: skip
    fixed = (friedman - friedman.mean()) / friedman.std()
    eta = fixed + rng.normal(0, 1.0, n_users)[user] + rng.normal(0, 0.5, n_items)[item]
    numeric = [f"x{j}" for j in range(1, 6)]
    X = pd.DataFrame(x, columns=numeric)
    X.insert(0, "item", pd.Series(item).map("i{}".format))
    X.insert(0, "user", pd.Series(user).map("u{}".format))
    targets = {
        "regression": eta + rng.normal(0, 1.0, n_rows),
        "classification": (rng.uniform(size=n_rows) < 1 / (1 + np.exp(-eta))).astype(int),
    }
    return "simulated", X, targets, ["user", "item"], numeric, False, "user"


# --------------------------------------------------------------- methods
def _hgb(task, **kwargs):
    cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    return cls(max_iter=200, early_stopping=False, random_state=0, **kwargs)


def build(method, task, groups, numeric, onehot_numeric, n_levels):
    """The pipeline of one method, and a note on what it did with the columns."""
    target_type = "continuous" if task == "regression" else "binary"
    if method in ("mee", "mee-std", "te"):
        if method == "te":
            # = TargetEncoder(random_state=0), whose shuffle and random_state
            # scikit-learn 1.9 deprecates in favour of a splitter
            splitter = KFold if task == "regression" else StratifiedKFold
            cv = splitter(5, shuffle=True, random_state=0)
            encoder = TargetEncoder(target_type=target_type, cv=cv)
        else:
            std = method == "mee-std"
            encoder = MixedEffectsEncoder(target_type=target_type, random_state=0,
                                          return_std=std, return_counts=std)  # fmt: skip
        columns = ColumnTransformer([("enc", encoder, groups), ("num", "passthrough", numeric)])
        return make_pipeline(columns, _hgb(task)), ""
    if method in ("native", "native-top"):
        unknown = dict(handle_unknown="use_encoded_value", unknown_value=np.nan)
        if method == "native-top":
            native, codes = list(groups), []
            unknown["max_categories"] = MAX_BINS
        else:
            native = [g for g in groups if n_levels[g] <= MAX_BINS]
            codes = [g for g in groups if n_levels[g] > MAX_BINS]
        parts = [("cat", OrdinalEncoder(**unknown), native)]
        if codes:
            parts.append(("codes", OrdinalEncoder(**unknown), codes))
        parts.append(("num", "passthrough", numeric))
        mask = [True] * len(native) + [False] * (len(codes) + len(numeric))
        note = f"codes as numeric: {','.join(codes)}" if codes else ""
        if method == "native-top":
            cut = [g for g in groups if n_levels[g] > MAX_BINS]
            note = f"cut to {MAX_BINS - 1} + 1 levels: {','.join(cut)}" if cut else ""
        return make_pipeline(ColumnTransformer(parts), _hgb(task, categorical_features=mask)), note
    if method == "onehot":
        hot = groups + numeric if onehot_numeric else groups
        parts = [("hot", OneHotEncoder(handle_unknown="ignore"), hot)]
        if not onehot_numeric:
            parts.append(("num", StandardScaler(), numeric))
        linear = Ridge() if task == "regression" else LogisticRegression(max_iter=1000)
        return make_pipeline(ColumnTransformer(parts, sparse_threshold=1.0), linear), ""
    if method == "numeric":
        return make_pipeline(ColumnTransformer([("num", "passthrough", numeric)]), _hgb(task)), ""
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


LABELS = {
    "mee": "MixedEffectsEncoder + HGB",
    "mee-std": "MixedEffectsEncoder(std,counts) + HGB",
    "te": "TargetEncoder + HGB",
    "native": "HGB native categorical",
    "native-top": "HGB native, top levels",
    "numeric": "HGB numeric only",
}


def label(method, task):
    if method == "onehot":
        return "one-hot + " + ("Ridge" if task == "regression" else "LogisticRegression")
    return LABELS[method]


# ------------------------------------------------------------ evaluation
def run_one(model, task, X, y, train, test, caught):
    """Fit on ``train``, score on ``test``: ``(metrics, seconds)``."""
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        start = time.perf_counter()
        model.fit(X.iloc[train], y[train])
        if task == "regression":
            pred = model.predict(X.iloc[test])
        else:
            pred = model.predict_proba(X.iloc[test])[:, 1]
        seconds = time.perf_counter() - start
    for w in log:
        caught[(w.category.__name__, str(w.message).splitlines()[0][:160])] += 1
    if task == "regression":
        return {"RMSE": root_mean_squared_error(y[test], pred)}, seconds
    return {"AUC": roc_auc_score(y[test], pred), "logloss": log_loss(y[test], pred)}, seconds


def _cell(values):
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return f"{values[0]:.4f}"
    return f"{values.mean():.4f} ({values.std(ddof=1):.4f})"


def _time_cell(values):
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return f"{values[0]:.1f}"
    return f"{values.mean():.1f} ({values.std(ddof=1):.1f})"


def describe_splits(X, groups, splits):
    """Per scenario (its first split): sizes, and the share of test rows whose level
    was unseen in training."""
    for scenario, folds in splits.items():
        train, test = folds[0]
        unseen = []
        for g in groups:
            new = ~X[g].iloc[test].isin(set(X[g].iloc[train]))
            unseen.append(f"{g} {100 * new.mean():.1f}%")
        print(f"  {scenario:6s} (split 1): train {len(train)} rows, test {len(test)} rows; "
              f"test rows with a level unseen in training: {', '.join(unseen)}")  # fmt: skip


def evaluate(dataset, tasks, methods, n_splits, seed, errors, caught):
    name, X, targets, groups, numeric, onehot_numeric, unseen_column = dataset
    n_levels = X[groups].nunique()
    splits = {
        "seen": list(ShuffleSplit(n_splits, test_size=0.2, random_state=seed).split(X)),
        "unseen": list(
            GroupShuffleSplit(n_splits, test_size=0.2, random_state=seed).split(
                X, groups=X[unseen_column]
            )
        ),
    }
    levels = ", ".join(f"{g} {n_levels[g]}" for g in groups)
    print(f"\n== {name}: {len(X)} rows; levels: {levels}; numeric: {', '.join(numeric)}")
    print(f"  unseen scenario: GroupShuffleSplit on {unseen_column!r}; {n_splits} split(s) each")
    describe_splits(X, groups, splits)
    tables = {}
    for task in tasks:
        y = targets[task]
        rows = []
        for method in methods:
            model, note = build(method, task, groups, numeric, onehot_numeric, n_levels)
            row = {"method": label(method, task)}
            for scenario, folds in splits.items():
                scores, seconds = [], []
                for train, test in folds:
                    try:
                        metrics, secs = run_one(model, task, X, y, train, test,
                                                caught[(name, task, method)])  # fmt: skip
                    except Exception as exc:  # a failing method is reported, not fatal
                        message = f"{type(exc).__name__}: {exc}"
                        errors.append((name, task, method, scenario, message))
                        metrics, secs = None, np.nan
                        break
                    scores.append(metrics)
                    seconds.append(secs)
                if not scores:
                    keys = ["RMSE"] if task == "regression" else ["AUC", "logloss"]
                    row.update({f"{scenario} {k}": "error" for k in keys})
                    row[f"{scenario} s"] = "-"
                    continue
                for key in scores[0]:
                    row[f"{scenario} {key}"] = _cell([s[key] for s in scores])
                row[f"{scenario} s"] = _time_cell(seconds)
            row["note"] = note
            rows.append(row)
            print(f"  .. {task} {method} done", flush=True)
        table = pd.DataFrame(rows).set_index("method")
        if not table["note"].astype(bool).any():
            table = table.drop(columns="note")
        tables[(name, task)] = table
        y_test = y[splits["seen"][0][1]]
        if task == "regression":
            ref = f"sd of y on the seen test rows {y_test.std():.4f}"
        else:
            p = y[splits["seen"][0][0]].mean()
            ref = (f"share of y = 1 {y.mean():.3f}; log-loss of the training share "
                   f"{log_loss(y_test, np.full(len(y_test), p)):.4f}")  # fmt: skip
        print(f"\n{name}, {task} ({len(X)} rows; {levels}); {ref}")
        with pd.option_context("display.width", 250, "display.max_columns", 20):
            print(table.to_string())
    return tables


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--insteval", default="/work/shared/data/insteval.csv")
    parser.add_argument("--quick", action="store_true", help="smaller data: < 3 minutes")
    parser.add_argument("--seed", type=int, default=0, help="simulation, subsample and splits")
    parser.add_argument("--splits", type=int, default=1, help="splits per scenario")
    parser.add_argument("--only", default="insteval,simulated", help="data sets")
    parser.add_argument("--tasks", default="regression,classification")
    parser.add_argument("--methods", default=",".join(METHODS), help=",".join(METHODS))
    parser.add_argument("--threads", type=int, default=1, help="OpenMP and BLAS threads")
    parser.add_argument("--users", type=int, default=None, help="default 2000 (--quick 500)")
    parser.add_argument("--items", type=int, default=None, help="default 500 (--quick 200)")
    parser.add_argument("--rows", type=int, default=None, help="default 100000 (--quick 20000)")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {METHODS}")
    tasks = [t for t in args.tasks.split(",") if t]
    only = [d for d in args.only.split(",") if d]
    users = args.users or (500 if args.quick else 2000)
    items = args.items or (200 if args.quick else 500)
    n_rows = args.rows or (20_000 if args.quick else 100_000)

    threadpool_limits(args.threads)
    print(f"{args.threads} OpenMP/BLAS thread(s); seed {args.seed}")
    errors, caught = [], {}
    for name in only:
        if name == "insteval":
            dataset = load_insteval(args.insteval, args.quick, args.seed)
        elif name == "simulated":
            dataset = simulate(users, items, n_rows, args.seed)
        else:
            parser.error(f"unknown data set {name!r}")
        if dataset is None:
            continue
        for task in tasks:
            for method in methods:
                caught[(name, task, method)] = Counter()
        start = time.perf_counter()
        evaluate(dataset, tasks, methods, args.splits, args.seed, errors, caught)
        print(f"({name}: {time.perf_counter() - start:.0f} s)")

    print("\nwarnings (count, data set, task, method, category: first line of the message):")
    listed = False
    for (name, task, method), counter in caught.items():
        for (category, message), count in counter.most_common():
            print(f"  {count:4d}  {name} {task} {method}  {category}: {message}")
            listed = True
    if not listed:
        print("  none")
    if errors:
        print("\nerrors:")
        for name, task, method, scenario, message in errors:
            print(f"  {name} {task} {method} {scenario}: {message[:300]}")


if __name__ == "__main__":
    main()
