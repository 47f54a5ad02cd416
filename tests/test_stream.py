"""``partial_fit``: chunks of rows reduced one at a time equal ``fit`` on all.

The reduction is a sum over rows (:mod:`sklearn_mixed.core.reduction`), so
any sequence of chunks gives the sums of the concatenation, up to the order
of the additions (tolerances: :mod:`_chunked`).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from _chunked import CASES, assert_same_fit, sleepstudy, take, weighted_sleepstudy

from sklearn_mixed import MixedLinearRegressor, NotYetFittedWarning, anova


def _fit_in_chunks(estimator, data, edges):
    X, y, g, *w = data
    w = w[0] if w else None
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        rows = np.arange(lo, hi)
        estimator.partial_fit(take(X, rows), take(y, rows), groups=take(g, rows),
                              sample_weight=take(w, rows))  # fmt: skip
    return estimator


@pytest.mark.parametrize("case", list(CASES))
def test_partial_fit_over_uneven_chunks_equals_fit(case):
    make, load = CASES[case]
    data = load()
    X, y, g, *w = data
    n = len(y)
    order = np.random.default_rng(7).permutation(n)  # chunks mix levels: no warnings
    data = tuple(take(obj, order) for obj in data)
    whole = make().fit(*data[:3], sample_weight=data[3] if len(data) > 3 else None)
    edges = [0, n // 2, n // 2 + 3, n - 1, n]  # uneven, one chunk of a single row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotYetFittedWarning)
        streamed = _fit_in_chunks(make(), data, edges)
    assert_same_fit(streamed, whole)


def test_new_levels_in_later_chunks_and_predict_between_calls():
    """Chunks sorted by subject: each brings new levels.  Until two levels are
    seen the model is not identified (a warning, unfitted); after each later
    call it is fitted to the rows so far, and predicts."""
    X, y, g = sleepstudy()
    model = MixedLinearRegressor()
    subjects = pd.unique(g)
    chunk = g == subjects[0]
    with pytest.warns(NotYetFittedWarning, match="single level"):
        model.partial_fit(X[chunk], y[chunk], groups=g[chunk])
    assert not hasattr(model, "coef_")
    seen = chunk.copy()
    for s in subjects[1:]:
        chunk = g == s
        model.partial_fit(X[chunk], y[chunk], groups=g[chunk])
        seen |= chunk
        reference = MixedLinearRegressor().fit(X[seen], y[seen], groups=g[seen])
        assert_same_fit(model, reference)
        # an unseen subject gets the population prediction, as after fit
        np.testing.assert_allclose(model.predict(X, groups=g), reference.predict(X, groups=g),
                                   rtol=1e-9)  # fmt: skip


def test_labels_of_mixed_types():
    """Integers, text and floats as labels of one factor: the same levels, in
    the same order, as fit."""
    X, y, _ = sleepstudy()
    kinds = np.array([1, "1", 2.5, "b", 3, "a"], dtype=object)
    g = pd.Series(kinds[np.arange(len(y)) % 6], name="g")
    whole = MixedLinearRegressor().fit(X, y, groups=g)
    streamed = _fit_in_chunks(MixedLinearRegressor(), (X, y, g), [0, 7, 50, len(y)])
    assert_same_fit(streamed, whole)


def test_partial_fit_continues_fit_and_fit_starts_over():
    X, y, g = sleepstudy()
    half = len(y) // 2
    whole = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=g)
    model = MixedLinearRegressor(random_slopes=["Days"]).fit(X[:half], y[:half], groups=g[:half])
    model.partial_fit(X[half:], y[half:], groups=g[half:])
    assert_same_fit(model, whole)
    model.fit(X[:half], y[:half], groups=g[:half])
    assert model.n_obs_ == half


def test_a_column_aliased_in_the_first_chunk_only():
    """A feature constant in the first chunk (aliased with the intercept there)
    is estimated once later chunks make it vary, as fit on all rows does."""
    X, y, g = sleepstudy()
    X = X.assign(late=np.where(np.arange(len(y)) < 60, 1.0, np.arange(len(y)) % 3))
    order = np.argsort(X["late"].to_numpy() != 1.0, kind="stable")
    X, y, g = X.iloc[order], y.iloc[order], g.iloc[order]
    model = MixedLinearRegressor()
    with pytest.warns(UserWarning, match="rank deficient"):
        model.partial_fit(X[:60], y[:60], groups=g[:60])
    assert model.aliased_features_ == ["late"]
    model.partial_fit(X[60:], y[60:], groups=g[60:])
    assert model.aliased_features_ == []
    assert_same_fit(model, MixedLinearRegressor().fit(X, y, groups=g))


def test_chunks_must_agree_on_columns_and_factors():
    X, y, g = sleepstudy()
    model = MixedLinearRegressor().partial_fit(X, y, groups=g)
    with pytest.raises(ValueError, match="feature names"):
        model.partial_fit(X.assign(z=1.0), y, groups=g)
    with pytest.raises(ValueError, match="grouping factors"):
        model.partial_fit(X, y)
    with pytest.raises(ValueError, match="grouping factor"):
        model.partial_fit(X, y, groups=pd.DataFrame({"Subject": g, "other": g}))


def test_rows_are_not_kept_and_row_diagnostics_say_so():
    """partial_fit keeps the reduced data only: row-level diagnostics refuse
    with the reason; inference on the reduced data works."""
    X, y, g = sleepstudy()
    model = MixedLinearRegressor(random_slopes=["Days"]).partial_fit(X, y, groups=g)
    assert model.model_.data is None
    for call in (model.residuals, model.leverage):
        with pytest.raises(ValueError, match="partial_fit"):
            call()
    with pytest.raises(ValueError, match="partial_fit"):
        model.confint(method="bootstrap", n_boot=10)
    whole = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=g)
    np.testing.assert_allclose(
        model.confint(method="profile").to_numpy(), whole.confint(method="profile").to_numpy(),
        rtol=1e-6,
    )  # fmt: skip


def test_anova_of_models_fitted_from_chunks():
    """Likelihood-ratio tests need only the reduced data: the same table as for
    models fitted in memory (the response is checked by its sums)."""
    X, y, g = sleepstudy()
    small, large = MixedLinearRegressor(), MixedLinearRegressor(random_slopes=["Days"])
    edges = [0, 90, len(y)]
    a = anova(_fit_in_chunks(small, (X, y, g), edges), _fit_in_chunks(large, (X, y, g), edges))
    b = anova(
        MixedLinearRegressor().fit(X, y, groups=g),
        MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=g),
    )
    np.testing.assert_allclose(a["Chisq"].to_numpy()[1], b["Chisq"].to_numpy()[1], rtol=1e-7)
    other = MixedLinearRegressor().fit(X, y + 1.0, groups=g)
    with pytest.raises(ValueError, match="same response"):
        anova(small, other)


def test_a_chunk_of_zero_weight_rows_only():
    """Rows of weight 0 are dropped, so such a chunk adds nothing."""
    X, y, g, w = weighted_sleepstudy()
    model = MixedLinearRegressor().partial_fit(X, y, groups=g, sample_weight=w)
    before = model.log_likelihood_
    model.partial_fit(X[:5], y[:5], groups=g[:5], sample_weight=np.zeros(5))
    assert model.log_likelihood_ == before


def test_empty_first_chunks_and_not_fitted_until_identified():
    """An empty chunk, or one of weight 0 only, adds nothing, first or later;
    until the model is identified the estimator is not fitted (NotFittedError)."""
    from sklearn.exceptions import NotFittedError

    X, y, g = sleepstudy()
    model = MixedLinearRegressor()
    model.partial_fit(X[:5], y[:5], groups=g[:5], sample_weight=np.zeros(5))
    model.partial_fit(X[:0], y[:0], groups=g[:0])
    with pytest.raises(NotFittedError):
        model.predict(X, groups=g)
    with pytest.warns(NotYetFittedWarning):
        model.partial_fit(X[:10], y[:10], groups=g[:10])  # one subject so far
    with pytest.raises(NotFittedError):
        model.predict(X, groups=g)
    model.partial_fit(X[10:], y[10:], groups=g[10:])
    assert_same_fit(model, MixedLinearRegressor().fit(X, y, groups=g))


def test_a_failed_fit_leaves_no_stream_behind():
    """fit starts over: after a fit that fails, partial_fit starts a new stream
    instead of continuing the rows of an earlier fit."""
    X, y, g = sleepstudy()
    model = MixedLinearRegressor().fit(X.assign(z=np.arange(len(y)) % 4), y, groups=g)
    with pytest.raises(ValueError, match="single level"):
        model.fit(X, y, groups=pd.Series("one", index=g.index))
    model.partial_fit(X, y, groups=g)
    assert model.n_obs_ == len(y)
    assert_same_fit(model, MixedLinearRegressor().fit(X, y, groups=g))


def test_anova_warns_about_models_fitted_from_chunks_that_are_not_nested():
    X, y, g = sleepstudy()
    X = X.assign(z=np.arange(len(y)) % 5)
    a = MixedLinearRegressor(fixed_features=["Days"]).partial_fit(X, y, groups=g)
    b = MixedLinearRegressor(fixed_features=["z"], method="ml").partial_fit(X, y, groups=g)
    with pytest.warns(UserWarning, match="not in the larger model"):
        anova(a, b)
