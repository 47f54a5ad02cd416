"""Dask collections: fit in two passes over the partitions, predict lazily.

A fit on Dask collections (``X``, ``y``, ``groups``, ``sample_weight``
with the same row partitions) makes two passes over the data, each a tree
of tasks that Dask runs where the partitions are (the local scheduler, or
the ``dask.distributed`` client when one is active):

1. **Levels.**  Each partition's distinct labels per grouping factor and its
   number of rows, merged pairwise; the client sorts the levels as ``fit``
   does.  Before the second pass the size of the reduced system is known
   (:func:`~sklearn_mixed.core.memory.check_reduction`): a system larger
   than the memory that will hold it is refused here.
2. **Cross-products.**  Each partition is coded against those levels and
   reduced (:meth:`~._stream.RowStream.reduce_chunk`) on a worker; the
   reductions are added pairwise (a tree reduction) and the sum comes back.

The optimization then runs on the client, on the reduction only: no further
pass.  ``predict`` maps the fitted estimator over the partitions and returns
a lazy collection (as dask-ml's ``ParallelPostFit``); ``score`` is one more
pass of sums.  Dask is optional: nothing here imports it before a Dask
collection is seen.
"""

import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_array, column_or_1d

from ._design import chunk_weights, drop_zero_weights, encode_labels, select_rows
from ._groups import validate_groups
from .core.memory import available_memory, check_reduction

__all__ = [
    "fit_partitions",
    "is_dask_collection",
    "lazy_predict",
    "partition_score",
    "refuse_dask",
]

# Partial results merged per task of the trees (Dask's ``split_every``): two,
# as each holds a whole reduction in memory.
_FAN_IN = 2


def is_dask_collection(*objects):
    """Whether any of ``objects`` is a Dask collection (without importing Dask)."""
    dask = sys.modules.get("dask")
    return dask is not None and any(o is not None and dask.is_dask_collection(o) for o in objects)


def refuse_dask(objects, what):
    """A ``TypeError`` for Dask input to a method that works in memory only."""
    objects = objects if isinstance(objects, tuple) else (objects,)
    if is_dask_collection(*objects):
        raise TypeError(
            f"{what} works on data in memory only, and got a Dask collection. Compute it "
            "first (.compute()), or fit MixedLinearRegressor or CrossedEffectsRegressor "
            "with fit, which reads Dask collections where the partitions are."
        )


# ------------------------------------------------------------------ partitions
def _require_dask(obj, what):
    """A ``TypeError`` unless ``obj`` (``what``: "y", "groups", ...) is a Dask collection."""
    if not is_dask_collection(obj):
        raise TypeError(
            f"{what} is a {type(obj).__name__} while X is a Dask collection: pass X, y, "
            "groups and sample_weight all as Dask collections with the same partitions "
            "(for example columns of one Dask DataFrame), or all in memory."
        )


def _blocks(obj, what):
    """The row partitions of a Dask collection as Delayed objects (None: Nones)."""
    if obj is None:
        return None
    _require_dask(obj, what)
    import dask.array as da

    if isinstance(obj, da.Array):
        if obj.ndim == 2:
            return list(obj.rechunk({1: -1}).to_delayed()[:, 0])
        return list(obj.to_delayed().ravel())
    return list(obj.to_delayed())


def partitions(X, y=None, groups=None, sample_weight=None):
    """One Delayed ``(x, y, groups, weights)`` per row partition, checked aligned.

    Dask DataFrames and Series are joined into one frame first: each alone
    is optimized on its own (a Parquet read of fewer columns may merge
    partitions), so that only their join is partitioned alike.
    """
    import dask

    given = [X, y, groups, sample_weight]
    joined = _joined(given)
    if joined is not None:
        return [dask.delayed(_split)(part, joined[1]) for part in joined[0].to_delayed()]
    parts = [_blocks(X, "X")]
    for obj, what in ((y, "y"), (groups, "groups"), (sample_weight, "sample_weight")):
        blocks = _blocks(obj, what)
        if blocks is not None and len(blocks) != len(parts[0]):
            raise ValueError(
                f"X has {len(parts[0])} partitions and {what} {len(blocks)}: they must be "
                "partitioned alike (take them from one Dask DataFrame, or rechunk)"
            )
        parts.append([None] * len(parts[0]) if blocks is None else blocks)
    return [dask.delayed(tuple)(list(p)) for p in zip(*parts, strict=True)]


def _joined(given):
    """The Dask DataFrames and Series of ``given`` as one frame (their columns
    renamed by role) and its layout for :func:`_split`; None for arrays."""
    import dask.array as da
    import dask.dataframe as dd

    present = [o for o in given if o is not None]
    arrays = [isinstance(o, da.Array) for o in present]
    if any(arrays) and not all(arrays):
        raise TypeError(
            "pass X, y, groups and sample_weight all as Dask DataFrames and Series, or all as "
            "Dask arrays with the same row chunks, not a mix"
        )
    if any(arrays):
        return None
    for obj, what in zip(given, ("X", "y", "groups", "sample_weight"), strict=True):
        if obj is not None:
            _require_dask(obj, what)
    layout, pieces = [], []
    for role, obj in enumerate(given):
        if obj is None:
            layout.append(None)
            continue
        series = isinstance(obj, dd.Series)
        names = None if series else list(obj.columns)
        frame = obj.to_frame() if series else obj
        renamed = [f"{role}/{i}" for i in range(len(frame.columns))]
        layout.append((renamed, names, obj.name if series else None))
        pieces.append(frame.rename(columns=dict(zip(frame.columns, renamed, strict=True))))
    if len(pieces) == 1:
        return pieces[0], layout
    return dd.concat(pieces, axis=1, ignore_unknown_divisions=True), layout


def _split(frame, layout):
    """The partition of the joined frame back into ``(x, y, groups, weights)``."""
    out = []
    for role in layout:
        if role is None:
            out.append(None)
            continue
        renamed, names, series_name = role
        part = frame[renamed]
        if names is None:
            out.append(part.iloc[:, 0].rename(series_name))
        else:
            out.append(part.set_axis(names, axis=1))
    return tuple(out)


def _tree(parts, merge):
    """The pairwise merge of Delayed ``parts`` (a tree of depth log2 of their number)."""
    import dask

    while len(parts) > 1:
        parts = [
            dask.delayed(merge)(*parts[i : i + _FAN_IN]) if i + 1 < len(parts) else parts[i]
            for i in range(0, len(parts), _FAN_IN)
        ]
    return parts[0]


def factor_names(groups):
    """The grouping factors' names, as ``fit`` names those of an empty
    collection alike (the columns, the Series' name, or the defaults)."""
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(groups, da.Array):
        empty = np.empty((0, *groups.shape[1:]))
    elif isinstance(groups, dd.Series):
        empty = pd.Series([], name=groups.name, dtype=object)
    else:
        empty = pd.DataFrame(columns=groups.columns)
    return validate_groups(empty, 0)[0]


# ------------------------------------------------------------ on the workers
def _levels_of(groups):
    """``(rows, distinct labels per factor)`` of a partition of the groups."""
    n = len(groups)
    _, labels = validate_groups(groups, n)
    return n, [pd.unique(np.asarray(lab)) for lab in labels]


def _levels_of_weighted(part):
    """:func:`_levels_of` the rows of positive weight of a partition
    ``(x, y, groups, weights)``: rows of weight 0 are left out, levels too."""
    _, _, groups, w = part
    return _levels_of(select_rows(groups, chunk_weights(np.asarray(w), len(groups)) > 0))


def _merge_levels(*parts):
    n = sum(p[0] for p in parts)
    merged = [pd.unique(np.concatenate([p[1][i] for p in parts])) for i in range(len(parts[0][1]))]
    return n, merged


@dataclass(frozen=True)
class _Plan:
    """What a worker needs to reduce a partition: the coding, the features."""

    stream: object  # RowStream with the levels known (closed)
    n_features: int
    feature_names: list | None  # of a DataFrame X


def _chunk(x, y, g, w, plan):
    """One partition's features, response, labels and positive weights, checked."""
    if hasattr(x, "columns"):
        if plan.feature_names is not None and [str(c) for c in x.columns] != plan.feature_names:
            raise ValueError("a partition of X has other columns than X: the partitions differ")
        x = x.to_numpy() if len(x.columns) else np.empty((len(x), 0))
    X = check_array(
        x, dtype=np.float64, ensure_min_samples=0, ensure_min_features=0, input_name="X"
    )
    if X.shape[1] != plan.n_features:
        raise ValueError(f"a partition of X has {X.shape[1]} columns, X has {plan.n_features}")
    n = X.shape[0]
    y = column_or_1d(check_array(y, ensure_2d=False, dtype=np.float64, ensure_min_samples=0,
                                 input_name="y"))  # fmt: skip
    if y.shape[0] != n:
        raise ValueError(f"a partition of X has {n} rows and the same partition of y {len(y)}")
    w = None if w is None else chunk_weights(np.asarray(w), n)
    X, y, g, w = drop_zero_weights(X, y, g, w)  # as fit in memory
    labels = []
    if g is not None:
        labels = validate_groups(g, X.shape[0], expected_names=plan.stream.factor_names)[1]
    return X, y, labels, w


def _reduce_partition(part, plan):
    """The reduction of one partition (None when it has no rows)."""
    X, y, labels, w = _chunk(*part, plan)
    if X.shape[0] == 0:
        return None
    return plan.stream.reduce_chunk(X, y, labels, w)


def _add(*parts):
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


# ------------------------------------------------------------------ the fit
def fit_partitions(parts, groups, weighted, make_stream, n_features, feature_names):
    """The levels pass, the size check and the reduction pass.

    ``make_stream(factor_names, levels)`` gives the :class:`~._stream.RowStream`
    of the model with those levels; returns it with the reduction of all
    partitions added.  With prior weights (``weighted``) the level pass reads
    them too: levels of rows of weight 0 only are not levels of the model.
    """
    import dask

    names, levels = [], None
    if groups is not None:
        names = factor_names(groups)
        if weighted:
            blocks = [dask.delayed(_levels_of_weighted)(p) for p in parts]
        else:  # the grouping columns alone (a Parquet read of those columns only)
            blocks = [dask.delayed(_levels_of)(b) for b in _blocks(groups, "groups")]
        n, uniques = dask.compute(_tree(blocks, _merge_levels))[0]
        levels = [encode_labels(u)[1] for u in uniques]
    stream = make_stream(names, levels)
    if levels is not None:
        sizes = [(len(lev), len(stream.specs[name].covariates))
                 for name, lev in zip(names, levels, strict=True)]  # fmt: skip
        check_reduction(n, len(stream.columns), sizes, _memory_limit())
    plan = dask.delayed(_Plan(stream, n_features, feature_names), pure=False, traverse=False)
    reduced = [dask.delayed(_reduce_partition)(p, plan) for p in parts]
    stream.add_reduction(dask.compute(_tree(reduced, _add))[0])
    return stream


def _memory_limit():
    """Bytes the reduced system may take: the client's free memory and, with a
    ``dask.distributed`` client, the smallest worker's memory limit."""
    limits = [available_memory()]
    if "distributed" in sys.modules:
        from distributed import get_client

        try:
            workers = get_client().scheduler_info()["workers"].values()
        except ValueError:  # no client: the local scheduler
            workers = []
        limits += [w.get("memory_limit") or None for w in workers]
    limits = [m for m in limits if m]
    return min(limits) if limits else None


# ------------------------------------------------------------------ predict
def _predict_frame(frame, layout, estimator, options):
    """Predictions of a partition of the joined frame, on its index."""
    x, _, g, _ = _split(frame, layout)
    if len(frame) == 0:  # an empty partition (a filter's)
        out = (np.empty(0), np.empty(0)) if options.get("return_std") else np.empty(0)
    else:
        out = estimator.predict(x, groups=g, **options)
    if options.get("return_std"):
        return pd.DataFrame({"mean": out[0], "std": out[1]}, index=frame.index)
    return pd.Series(out, index=frame.index)


def _predict_part(part, estimator, options):
    """Predictions of a partition of arrays ``(x, y, groups, weights)``."""
    if len(part[0]) == 0:
        return np.empty((0, 2)) if options.get("return_std") else np.empty(0)
    out = estimator.predict(part[0], groups=part[2], **options)
    return np.column_stack(out) if options.get("return_std") else out


def lazy_predict(estimator, X, groups, options):
    """``estimator.predict`` mapped over the partitions: a Dask Series (a Dask
    DataFrame ``X``) or array, computed when asked; with ``return_std`` a
    pair of them."""
    import dask
    import dask.array as da

    if not is_dask_collection(X):
        raise TypeError("predict got Dask groups and X in memory: pass X as a Dask collection")
    model = dask.delayed(estimator, pure=False, traverse=False)
    joined = _joined([X, None, groups, None])
    if joined is not None:
        std = options.get("return_std")
        meta = pd.DataFrame({"mean": [], "std": []}) if std else pd.Series([], dtype=float)
        frame, layout = joined
        out = frame.map_partitions(_predict_frame, layout, model, options, meta=meta)
        return (out["mean"], out["std"]) if std else out
    parts = partitions(X, None, groups)
    rows = X.chunks[0]
    pieces = [
        da.from_delayed(dask.delayed(_predict_part)(p, model, options),
                        shape=(m, 2) if options.get("return_std") else (m,), dtype=float)
        for p, m in zip(parts, rows, strict=True)
    ]  # fmt: skip
    out = da.concatenate(pieces)
    return (out[:, 0], out[:, 1]) if options.get("return_std") else out


def _score_part(part, estimator):
    """One partition's ``(sum w, weighted mean of y, sum w (y - mean)^2,
    sum w (y - mu)^2)`` for the weighted R^2."""
    x, y, g, w = part
    if len(x) == 0:
        return np.zeros(4)
    mu = np.asarray(estimator.predict(x, groups=g), dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float).ravel()
    sw = w.sum()
    mean = w @ y / sw if sw > 0 else 0.0
    return np.array([sw, mean, w @ (y - mean) ** 2, w @ (y - mu) ** 2])


def _merge_moments(*parts):
    """Sums of the union of partitions: the spread about the common mean by the
    update of Chan, Golub and LeVeque (no cancellation for a large mean)."""
    sw, mean, m2, ss_res = parts[0]
    for wb, mb, m2b, rb in parts[1:]:
        total = sw + wb
        if wb > 0:
            delta = mb - mean
            m2 += m2b + delta**2 * sw * wb / total
            mean += delta * wb / total
        sw, ss_res = total, ss_res + rb
    return np.array([sw, mean, m2, ss_res])


def partition_score(estimator, X, y, groups, sample_weight):
    """The R^2 of ``estimator.predict`` on Dask collections, in one pass
    (scikit-learn's ``r2_score``, 0 for a constant response not fitted exactly)."""
    import dask

    model = dask.delayed(estimator, pure=False, traverse=False)
    sums = [dask.delayed(_score_part)(p, model) for p in partitions(X, y, groups, sample_weight)]
    _, _, ss_tot, ss_res = dask.compute(_tree(sums, _merge_moments))[0]
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else 0.0
    return float(1.0 - ss_res / ss_tot)
