"""Fits from Dask collections equal fits in memory; predict stays lazy.

Most tests run on a ``dask.distributed.LocalCluster`` of 2 worker processes
(the data, the level dictionaries and the reductions cross process
boundaries, pickled, as on a real cluster); a few on Dask's local scheduler.
Skipped when Dask is not installed (``pip install sklearn-mixed[dask]``).
Tolerances: :mod:`_chunked`.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from _chunked import CASES, assert_same_fit, sleepstudy, weighted_sleepstudy

from sklearn_mixed import MixedLinearRegressor, MixedLogisticRegression
from sklearn_mixed.core.memory import ReductionTooLarge, check_reduction, reduction_bytes

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as c:
        yield c


def _frame(data):
    """The case's data as one DataFrame, with the names of its parts."""
    X, y, g, *w = data
    X = pd.DataFrame(X).add_prefix("x") if not hasattr(X, "columns") else X
    g = g.to_frame() if isinstance(g, pd.Series) else g
    parts = {"X": list(X.columns), "y": "y", "g": list(g.columns), "w": "w" if w else None}
    frame = pd.concat([X.reset_index(drop=True), g.reset_index(drop=True)], axis=1)
    frame["y"] = np.asarray(y)
    if w:
        frame["w"] = np.asarray(w[0])
    return frame, parts


def _fit(model, ddf, parts):
    w = None if parts["w"] is None else ddf[parts["w"]]
    return model.fit(ddf[parts["X"]], ddf["y"], groups=ddf[parts["g"]], sample_weight=w)


def _in_memory(model, frame, parts):
    w = None if parts["w"] is None else frame[parts["w"]]
    return model.fit(frame[parts["X"]], frame["y"], groups=frame[parts["g"]], sample_weight=w)


@pytest.mark.parametrize("case", list(CASES))
def test_fit_on_a_cluster_equals_fit_in_memory(client, case):
    """Random intercepts, slopes, crossed, nested, weights: 1e-8 relative."""
    make, load = CASES[case]
    frame, parts = _frame(load())
    frame = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    fitted = _fit(make(), dd.from_pandas(frame, npartitions=5), parts)
    assert_same_fit(fitted, _in_memory(make(), frame, parts))


def test_empty_partitions_and_a_partition_of_one_row(client):
    """Partitions as they come (filters leave some empty); an empty one adds
    nothing, a single row adds its sums."""
    frame, parts = _frame(sleepstudy())
    pieces = [frame[:0], frame[:1], frame[1:90], frame[:0], frame[90:91], frame[91:]]
    ddf = dd.concat([dd.from_pandas(p, npartitions=1) for p in pieces])
    assert ddf.npartitions == len(pieces)
    make = CASES["slopes"][0]
    assert_same_fit(_fit(make(), ddf, parts), _in_memory(make(), frame, parts))


@pytest.mark.filterwarnings("ignore::sklearn_mixed.SingularFitWarning")
def test_labels_of_mixed_types(client):
    """1 and "1" are two levels, as in memory.  (Dask's from_pandas and
    read_parquet turn object columns into text unless told not to.)"""
    frame, parts = _frame(sleepstudy())
    kinds = np.array([1, "1", 2.5, "b", 3, "a"], dtype=object)
    frame["Subject"] = kinds[np.arange(len(frame)) % 6]
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dd.from_pandas(frame, npartitions=4)
    assert ddf["Subject"].dtype == object
    assert_same_fit(
        _fit(MixedLinearRegressor(), ddf, parts), _in_memory(MixedLinearRegressor(), frame, parts)
    )


def test_dask_arrays(client):
    """X, y and groups as Dask arrays, chunked alike."""
    X, y, g = sleepstudy()
    chunks = 37
    model = MixedLinearRegressor(random_slopes=[0]).fit(
        da.from_array(X.to_numpy(), chunks=(chunks, 1)),
        da.from_array(y.to_numpy(), chunks=chunks),
        groups=da.from_array(g.to_numpy(), chunks=chunks),
    )
    reference = MixedLinearRegressor(random_slopes=[0]).fit(X.to_numpy(), y, groups=g.to_numpy())
    assert_same_fit(model, reference)
    mean, std = model.predict(
        da.from_array(X.to_numpy(), chunks=(chunks, 1)),
        groups=da.from_array(g.to_numpy(), chunks=chunks),
        return_std=True,
    )
    assert isinstance(mean, da.Array) and mean.chunks[0][0] == chunks
    expected = reference.predict(X.to_numpy(), groups=g.to_numpy(), return_std=True)
    np.testing.assert_allclose(mean.compute(), expected[0], rtol=1e-9)
    np.testing.assert_allclose(std.compute(), expected[1], rtol=1e-7)


def test_predict_is_lazy_and_equals_predict_in_memory(client):
    """A Dask DataFrame in, a lazy Dask Series out, aligned with the input
    (assign it back); group_cols read from the partitions; score in one pass."""
    frame, parts = _frame(sleepstudy())
    ddf = dd.from_pandas(frame, npartitions=3)
    cols = parts["X"] + parts["g"]
    model = MixedLinearRegressor(random_slopes=["Days"], group_cols=parts["g"])
    model.fit(ddf[cols], ddf["y"])
    pred = model.predict(ddf[cols])
    assert dask.is_dask_collection(pred)
    reference = MixedLinearRegressor(random_slopes=["Days"], group_cols=parts["g"])
    reference.fit(frame[cols], frame["y"])
    np.testing.assert_allclose(pred.compute().to_numpy(), reference.predict(frame[cols]),
                               rtol=1e-9)  # fmt: skip
    assigned = ddf.assign(pred=pred).compute()
    np.testing.assert_allclose(assigned["pred"], reference.predict(frame[cols]), rtol=1e-9)
    # an unseen subject: the population prediction, as in memory
    new = frame[cols].assign(Subject="new subject")
    np.testing.assert_allclose(
        model.predict(dd.from_pandas(new, npartitions=2)).compute(), reference.predict(new),
        rtol=1e-9,
    )  # fmt: skip
    assert model.score(ddf[cols], ddf["y"]) == pytest.approx(
        reference.score(frame[cols], frame["y"]), rel=1e-12
    )


def test_local_scheduler_and_progress_bar(capsys):
    """Without a cluster Dask's local scheduler runs the passes; its progress
    bar reports them."""
    from dask.diagnostics import ProgressBar

    frame, parts = _frame(sleepstudy())
    make = CASES["slopes"][0]
    with dask.config.set(scheduler="threads"), ProgressBar():
        fitted = _fit(make(), dd.from_pandas(frame, npartitions=4), parts)
    assert "Completed" in capsys.readouterr().out
    assert_same_fit(fitted, _in_memory(make(), frame, parts))


def test_partial_fit_after_a_dask_fit_adds_new_levels(client):
    frame, parts = _frame(sleepstudy())
    first = frame["Subject"].isin(pd.unique(frame["Subject"])[:12])
    make = CASES["slopes"][0]
    model = _fit(make(), dd.from_pandas(frame[first], npartitions=3), parts)
    rest = frame[~first]
    model.partial_fit(rest[parts["X"]], rest["y"], groups=rest[parts["g"]])
    assert_same_fit(model, _in_memory(make(), frame, parts))


def test_a_reduced_system_too_large_is_refused_before_the_pass(monkeypatch):
    """The level pass gives the sizes; a reduction that cannot be held is
    refused with the sizes and what fits, before any partition is reduced."""
    from sklearn_mixed import _dask

    frame, parts = _frame(CASES["crossed"][1]())
    from sklearn_mixed.core import memory

    monkeypatch.setattr(_dask, "_memory_limit", lambda: 10_000)
    monkeypatch.setattr(memory, "_ALWAYS_AVAILABLE", 0)  # else any 64 MiB fit
    calls = []
    monkeypatch.setattr(_dask, "_reduce_partition", lambda *a: calls.append(a))
    with dask.config.set(scheduler="synchronous"):
        with pytest.raises(ReductionTooLarge, match="levels needs up to .* fewer levels"):
            _fit(CASES["crossed"][0](), dd.from_pandas(frame, npartitions=2), parts)
    assert calls == []


def test_reduction_bytes_bound():
    """The bound counts every array of the reduction: a reduction of random
    rows takes no more."""
    rng = np.random.default_rng(0)
    from sklearn_mixed.core import RandomTerm, reduce_rows

    n, p = 5000, 3
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    terms = [
        RandomTerm("a", rng.integers(0, 300, n), np.arange(300), np.ones((n, 1)), ("1",)),
        RandomTerm("b", rng.integers(0, 40, n), np.arange(40), np.column_stack([np.ones(n),
                   X[:, 1]]), ("1", "x")),
    ]  # fmt: skip
    red = reduce_rows(X, rng.normal(size=n), terms, weights=rng.uniform(1, 2, n), intercept=0)
    used = red.XX.nbytes + red.Xy.nbytes
    for t in red.terms:
        used += sum(getattr(t, a).nbytes for a in ("A", "ZX", "Zy", "level_w", "level_y",
                                                    "level_yy", "level_n"))  # fmt: skip
    for key in red.pairs:
        for M in (red.pairs[key], red.counts[key]):
            used += M.data.nbytes + M.indices.nbytes + M.indptr.nbytes
    bound = reduction_bytes(n, p, [(300, 1), (40, 2)])
    assert used <= bound <= 4 * used
    check_reduction(n, p, [(300, 1), (40, 2)], available=10 * bound)
    with pytest.raises(ReductionTooLarge, match="1,000,000 x 10,000 levels needs up to"):
        check_reduction(10**9, p, [(10**6, 1), (10**4, 1)], available=24 * 2**30)


def test_inputs_must_be_partitioned_alike(client):
    frame, parts = _frame(sleepstudy())
    ddf = dd.from_pandas(frame, npartitions=3)
    with pytest.raises(TypeError, match="all as Dask collections"):
        MixedLinearRegressor().fit(ddf[parts["X"]], frame["y"], groups=ddf["Subject"])
    # DataFrames are joined (aligned on their divisions) before being partitioned
    other = dd.from_pandas(frame, npartitions=2)
    assert_same_fit(
        MixedLinearRegressor().fit(ddf[parts["X"]], other["y"], groups=ddf["Subject"]),
        _in_memory(MixedLinearRegressor(), frame, parts),
    )
    X, y = frame[parts["X"]].to_numpy(), frame["y"].to_numpy()
    with pytest.raises(ValueError, match="partitioned alike"):
        MixedLinearRegressor().fit(
            da.from_array(X, chunks=(60, 1)), da.from_array(y, chunks=50),
            groups=da.from_array(frame["Subject"].to_numpy(), chunks=60),
        )  # fmt: skip


def test_missing_labels_and_bad_values_are_reported_from_the_workers(client):
    frame, parts = _frame(sleepstudy())
    bad = frame.assign(Subject=frame["Subject"].where(frame.index != 17))
    with pytest.raises(ValueError, match="missing labels"):
        _fit(MixedLinearRegressor(), dd.from_pandas(bad, npartitions=3), parts)
    bad = frame.assign(Days=frame["Days"].where(frame.index != 5))
    with pytest.raises(ValueError, match="NaN"):
        _fit(MixedLinearRegressor(), dd.from_pandas(bad, npartitions=3), parts)


def test_glmm_estimators_refuse_dask_collections():
    frame, parts = _frame(sleepstudy())
    ddf = dd.from_pandas(frame.assign(y=(frame["y"] > 300).astype(int)), npartitions=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TypeError, match="Dask"):
            MixedLogisticRegression().fit(ddf[parts["X"]], ddf["y"], groups=ddf["Subject"])


def test_fit_from_parquet(client, tmp_path):
    """The recipe of the docs: columns of one read_parquet, each projected on
    its own by Dask's optimizer (which may merge partitions differently for
    fewer columns); several files and row groups."""
    frame, parts = _frame(sleepstudy())
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[rows].to_parquet(tmp_path / f"part-{i}.parquet", row_group_size=25)
    ddf = dd.read_parquet(tmp_path)
    make = CASES["slopes"][0]
    model = make().fit(ddf[parts["X"]], ddf["y"], groups=ddf[parts["g"]])
    reference = _in_memory(make(), frame, parts)
    assert_same_fit(model, reference)
    pred = model.predict(ddf[parts["X"]], groups=ddf[parts["g"]]).compute()
    expected = reference.predict(frame[parts["X"]], groups=frame[parts["g"]])
    np.testing.assert_allclose(pred.to_numpy(), expected, rtol=1e-9)
    with pytest.raises(TypeError, match="all as Dask collections"):
        model.predict(ddf[parts["X"]], groups=frame[parts["g"]])


def test_a_model_fitted_in_memory_predicts_dask_collections(client):
    """Only the solution travels to the workers (not the training rows); the
    options of predict (return_std, random_effects) apply as in memory."""
    frame, parts = _frame(sleepstudy())
    model = _in_memory(CASES["slopes"][0](), frame, parts)
    ddf = dd.from_pandas(frame, npartitions=3)
    X, g = ddf[parts["X"]], ddf[parts["g"]]
    mean, std = model.predict(X, groups=g, return_std=True, random_effects=["Subject"])
    expected = model.predict(frame[parts["X"]], groups=frame[parts["g"]], return_std=True,
                             random_effects=["Subject"])  # fmt: skip
    np.testing.assert_allclose(mean.compute(), expected[0], rtol=1e-12)
    np.testing.assert_allclose(std.compute(), expected[1], rtol=1e-12)
    population = model.predict(X, groups=g, random_effects=[]).compute()
    np.testing.assert_allclose(population, model.predict(frame[parts["X"]], groups=frame[
        parts["g"]], random_effects=[]), rtol=1e-12)  # fmt: skip
    assert model.model_.data is not None  # the estimator itself keeps its rows


def test_levels_of_rows_of_weight_zero_only_are_left_out(client):
    """As in memory: rows of weight 0 are absent, and so are levels they alone
    have; a Dask collection without any row of positive weight is refused."""
    frame, parts = _frame(weighted_sleepstudy())
    frame.loc[frame["Subject"] == frame["Subject"].iloc[0], "w"] = 0.0
    make = CASES["weights"][0]
    fitted = _fit(make(), dd.from_pandas(frame, npartitions=4), parts)
    reference = _in_memory(make(), frame, parts)
    assert fitted.n_groups_ == reference.n_groups_ == {"Subject": 17}
    assert_same_fit(fitted, reference)
    with pytest.raises(ValueError, match="no rows with positive weight"):
        _fit(make(), dd.from_pandas(frame.assign(w=0.0), npartitions=2), parts)


def test_predict_and_score_with_empty_partitions(client):
    frame, parts = _frame(sleepstudy())
    reference = _in_memory(CASES["slopes"][0](), frame, parts)
    pieces = [frame[:0], frame[:90], frame[:0], frame[90:]]
    ddf = dd.concat([dd.from_pandas(p, npartitions=1) for p in pieces])
    X, g = ddf[parts["X"]], ddf[parts["g"]]
    expected = reference.predict(frame[parts["X"]], groups=frame[parts["g"]], return_std=True)
    mean, std = reference.predict(X, groups=g, return_std=True)
    np.testing.assert_allclose(mean.compute(), expected[0], rtol=1e-12)
    np.testing.assert_allclose(std.compute(), expected[1], rtol=1e-12)
    assert reference.score(X, ddf["y"], groups=g) == pytest.approx(
        reference.score(frame[parts["X"]], frame["y"], groups=frame[parts["g"]]), rel=1e-12
    )


def test_mixed_collections_and_partial_fit_on_dask_are_refused(client):
    frame, parts = _frame(sleepstudy())
    ddf = dd.from_pandas(frame, npartitions=3)
    groups = da.from_array(frame["Subject"].to_numpy(), chunks=60)
    model = _in_memory(MixedLinearRegressor(), frame, parts)
    with pytest.raises(TypeError, match="not a mix"):
        model.predict(ddf[parts["X"]], groups=groups)
    with pytest.raises(TypeError, match="not a mix"):
        MixedLinearRegressor().fit(ddf[parts["X"]], ddf["y"], groups=groups)
    with pytest.raises(TypeError, match="partial_fit works on data in memory"):
        MixedLinearRegressor().partial_fit(ddf[parts["X"]], ddf["y"], groups=ddf["Subject"])
