"""The one data reduction: rows -> cross-products, additive over chunks.

Identities checked against direct products of the design matrices (``Z``
built densely), and the chunk property the streaming and distributed fits
rely on: the reduction of a union of rows is the sum of the chunks'
reductions, whatever their centres.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_mixed.core import RandomTerm, fit_lmm, reduce_rows
from sklearn_mixed.core.grouping import term_model_matrix
from sklearn_mixed.core.model import LinearMixedModel
from sklearn_mixed.core.pair_pattern import PairPattern
from sklearn_mixed.core.rows import ModelRows


def _data(seed, n=300, weighted=True):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(5.0, 2.0, n), rng.uniform(size=n) * 1e3])
    a = rng.integers(0, 12, n)
    b = rng.integers(0, 7, n)
    z = rng.normal(size=n)
    terms = [
        RandomTerm("a", a, np.arange(12), np.column_stack([np.ones(n), z]), ("(Intercept)", "z")),
        RandomTerm("b", b, np.arange(7), np.ones((n, 1)), ("(Intercept)",)),
    ]
    y = X @ [10.0, 2.0, 0.01] + rng.normal(size=12)[a] + 0.5 * z * rng.normal(size=12)[a]
    y = y + rng.normal(size=7)[b] + rng.normal(size=n)
    w = rng.uniform(0.2, 3.0, n) if weighted else None
    return X, y, terms, w


def _dense_cross_products(X, y, terms, w):
    """``[Z, X, y]'W[Z, X, y]`` from dense matrices."""
    W = np.diag(np.ones(len(y)) if w is None else w)
    M = np.column_stack([term_model_matrix(t).toarray() for t in terms] + [X, y])
    return M.T @ W @ M


@pytest.mark.parametrize("weighted", [False, True])
def test_reduction_is_the_cross_products(weighted):
    """Uncentred (no intercept declared): every block equals the dense product.
    Tolerance: rounding of sums of 300 products of values up to 1e3."""
    X, y, terms, w = _data(1, weighted=weighted)
    red = reduce_rows(X, y, terms, weights=w)
    G = _dense_cross_products(X, y, terms, w)
    q1, q2 = 24, 7
    Z1 = G[:q1, :q1].reshape(12, 2, 12, 2)
    np.testing.assert_allclose(red.terms[0].A, Z1[np.arange(12), :, np.arange(12), :], rtol=1e-12)
    np.testing.assert_allclose(red.pairs[(0, 1)].toarray(), G[:q1, q1 : q1 + q2], rtol=1e-12,
                               atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(red.terms[0].ZX.reshape(q1, 3), G[:q1, q1 + q2 : -1], rtol=1e-12)
    np.testing.assert_allclose(red.terms[1].Zy, G[q1 : q1 + q2, -1:], rtol=1e-12)
    np.testing.assert_allclose(red.XX, G[q1 + q2 : -1, q1 + q2 : -1], rtol=1e-12)
    assert red.yy == pytest.approx(G[-1, -1], rel=1e-12)
    assert red.sum_log_w == pytest.approx(0.0 if w is None else np.log(w).sum())


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(1, 299), min_size=1, max_size=4, unique=True),
       seed=st.integers(0, 1000), weighted=st.booleans())  # fmt: skip
def test_reductions_of_chunks_add_up(cuts, seed, weighted):
    """Centred reductions of chunks (each about its own mean) sum to the
    reduction of all rows (about the overall mean); the model fitted on the sum
    is the model fitted on the whole (relative error of the sums: rounding)."""
    X, y, terms, w = _data(seed, weighted=weighted)
    whole = reduce_rows(X, y, terms, weights=w, intercept=0)
    edges = [0, *sorted(cuts), len(y)]
    total = None
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        rows = slice(lo, hi)
        part = reduce_rows(X[rows], y[rows], [t.subset(rows) for t in terms],
                           weights=None if w is None else w[rows], intercept=0)  # fmt: skip
        total = part if total is None else total + part
    np.testing.assert_allclose(total.shift_X, whole.shift_X, rtol=1e-12)
    np.testing.assert_allclose(total.XX, whole.XX, rtol=1e-9, atol=1e-8 * np.abs(whole.XX).max())
    np.testing.assert_allclose(total.Xy, whole.Xy, rtol=1e-9, atol=1e-8 * np.abs(whole.Xy).max())
    for s, t in zip(total.terms, whole.terms, strict=True):
        np.testing.assert_allclose(s.ZX, t.ZX, rtol=1e-9, atol=1e-8 * np.abs(t.ZX).max())
        # rounding of the sums is relative to the summed terms' size, not to an
        # entry that cancels to ~1e-4 of it
        np.testing.assert_allclose(s.A, t.A, rtol=1e-12, atol=1e-12 * np.abs(t.A).max())
    a = LinearMixedModel(total, terms).fit().result
    b = LinearMixedModel(whole, terms).fit().result
    assert a.log_likelihood == pytest.approx(b.log_likelihood, abs=1e-7)
    np.testing.assert_allclose(a.beta, b.beta, rtol=1e-6)


def test_reductions_of_different_models_do_not_add():
    X, y, terms, w = _data(2)
    a = reduce_rows(X, y, terms, intercept=0)
    b = reduce_rows(X[:, :2], y, terms, intercept=0)
    with pytest.raises(ValueError, match="different models"):
        a + b


def test_centred_fit_equals_uncentred_fit():
    """Centring is a change of basis of the fixed columns: the same model."""
    X, y, terms, w = _data(3)
    centred = LinearMixedModel(reduce_rows(X, y, terms, weights=w, intercept=0), terms).fit()
    plain = LinearMixedModel(reduce_rows(X, y, terms, weights=w), terms).fit()
    assert centred.result.log_likelihood == pytest.approx(plain.result.log_likelihood, abs=1e-8)
    np.testing.assert_allclose(centred.result.beta, plain.result.beta, rtol=1e-7)
    np.testing.assert_allclose(centred.result.beta_cov, plain.result.beta_cov, rtol=1e-6)


def test_offset_is_the_response_minus_the_offset():
    X, y, terms, w = _data(4)
    offset = np.linspace(-3.0, 3.0, len(y))
    with_offset = fit_lmm(X, y, terms, weights=w, offset=offset).result
    moved = fit_lmm(X, y - offset, terms, weights=w).result
    assert with_offset.log_likelihood == pytest.approx(moved.log_likelihood, abs=1e-9)


def test_fixed_coefficient_equals_the_offset_refit():
    """``with_fixed_coefficient(j, v)`` (algebra on the reduction) is the model refitted
    on the rows with ``x_j v`` moved to an offset and column j dropped."""
    X, y, terms, w = _data(5)
    model = fit_lmm(X, y, terms, weights=w, method="ml")
    for j, v in [(1, 1.9), (2, 0.02), (0, 10.5)]:
        fixed = model.with_fixed_coefficient(j, v).fit()
        rows = ModelRows(np.delete(X, j, axis=1), y - v * X[:, j], tuple(terms), w)
        refit = LinearMixedModel(rows.reduce(), terms, method="ml").fit()
        assert fixed.result.deviance == pytest.approx(refit.result.deviance, abs=1e-7)


def test_pair_pattern_gives_the_same_reduction():
    """Reducing with the pair cells of an earlier reduction (PIRLS's new weights)
    gives the same tables: scalar pairs by one bincount on the known cells, pairs
    with a slope term as before.  Tolerance: rounding of the sums."""
    X, y, terms, w = _data(3)
    b2 = RandomTerm("c", np.arange(len(y)) % 5, np.arange(5), np.ones((len(y), 1)), ("1",))
    terms = terms + [b2]
    pattern = PairPattern.of(terms, reduce_rows(X, y, terms).counts)
    new_w = np.random.default_rng(4).uniform(0.1, 2.0, len(y))
    direct = reduce_rows(X, y, terms, weights=new_w)
    reused = reduce_rows(X, y, terms, weights=new_w, pattern=pattern)
    for key in direct.pairs:
        np.testing.assert_allclose(reused.pairs[key].toarray(), direct.pairs[key].toarray(),
                                   rtol=1e-12, atol=1e-12)  # fmt: skip
        np.testing.assert_array_equal(reused.counts[key].toarray(), direct.counts[key].toarray())


def _assert_same_reduction(a, b, rtol=1e-12):
    """Equal sums (rounding of differently ordered sums: ``rtol`` of the largest)."""
    for name in ("XX", "Xy", "shift_X"):
        x, y = getattr(a, name), getattr(b, name)
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * max(np.abs(y).max(), 1.0))
    assert (a.n, a.intercept) == (b.n, b.intercept)
    for s, t in zip(a.terms, b.terms, strict=True):
        for name in ("A", "ZX", "Zy", "level_w", "level_y", "level_yy", "level_n"):
            x, y = getattr(s, name), getattr(t, name)
            np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * max(np.abs(y).max(), 1.0))
        assert s.intercept == t.intercept
    for key in b.pairs:
        x, y = a.pairs[key].toarray(), b.pairs[key].toarray()
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * np.abs(y).max())
        np.testing.assert_array_equal(a.counts[key].toarray(), b.counts[key].toarray())


@pytest.mark.parametrize("weighted", [False, True])
def test_relevel_is_the_reduction_of_relabelled_rows(weighted):
    """Renumbering a term's levels (a permutation into more levels: room for
    levels not seen yet) moves its sums; other terms' pair tables follow."""
    X, y, terms, w = _data(3, weighted=weighted)
    rng = np.random.default_rng(0)
    positions = rng.permutation(15)[:12]  # 12 levels into 15 places
    moved = [
        RandomTerm("a", positions[terms[0].codes], np.arange(15), terms[0].covariates,
                   terms[0].covariate_names),
        terms[1],
    ]  # fmt: skip
    expected = reduce_rows(X, y, moved, weights=w, intercept=0)
    got = reduce_rows(X, y, terms, weights=w, intercept=0).relevel(0, positions, 15)
    _assert_same_reduction(got, expected)
    assert np.all(got.terms[0].level_n[np.setdiff1d(np.arange(15), positions)] == 0)
    with pytest.raises(ValueError, match="own place"):
        got.relevel(1, np.zeros(7, dtype=int), 7)


def test_chunks_with_new_levels_add_up_after_relevel():
    """A later chunk with levels the first did not have: pad the first to all
    levels (zero sums), add; equal to the reduction of all rows."""
    X, y, terms, w = _data(4)
    first = terms[0].codes < 8  # levels 8..11 of term a only in the second chunk
    whole = reduce_rows(X, y, terms, weights=w, intercept=0)
    a_rows = [t.subset(first) for t in terms]
    a_rows[0] = RandomTerm("a", a_rows[0].codes, np.arange(8), a_rows[0].covariates,
                           a_rows[0].covariate_names)  # fmt: skip
    part1 = reduce_rows(X[first], y[first], a_rows, weights=w[first], intercept=0)
    part2 = reduce_rows(X[~first], y[~first], [t.subset(~first) for t in terms],
                        weights=w[~first], intercept=0)  # fmt: skip
    total = part1.relevel(0, np.arange(8), 12) + part2
    _assert_same_reduction(total, whole, rtol=1e-10)


def test_an_empty_chunk_adds_nothing():
    X, y, terms, w = _data(5)
    whole = reduce_rows(X, y, terms, weights=w, intercept=0)
    empty = reduce_rows(X[:0], y[:0], [t.subset(slice(0, 0)) for t in terms], intercept=0)
    assert empty.n == 0
    _assert_same_reduction(whole + empty, whole, rtol=0)
    _assert_same_reduction(empty + whole, whole, rtol=0)


def test_a_slope_that_is_one_in_a_chunk_is_not_an_intercept():
    """The all-ones covariate of a term is read from the data of each chunk; a
    slope equal to 1 in one chunk must not make the sum's term an intercept."""
    X, y, terms, w = _data(6)
    z = terms[0].covariates[:, 1].copy()
    z[:10] = 1.0
    slope = [RandomTerm("a", terms[0].codes, np.arange(12), z[:, None], ("z",))]
    whole = reduce_rows(X, y, slope, intercept=0)
    parts = [
        reduce_rows(X[rows], y[rows], [t.subset(rows) for t in slope], intercept=0)
        for rows in (slice(0, 10), slice(10, None))
    ]
    assert parts[0].terms[0].intercept == 0 and whole.terms[0].intercept is None
    assert (parts[0] + parts[1]).terms[0].intercept is None


def test_sums_of_levels_with_many_rows_keep_their_digits():
    """bincount adds a level's rows one after the other.  After a first row of
    2^30 every later row of 1 + 2^-24 loses its 2^-24 (below half an ulp of the
    running sum): 2^20 rows lose 0.06, 5.8e-11 of the sum.  Summed by blocks of
    2^16 rows only the first block loses (2^16 2^-24 = 0.0039, 3.6e-12): the
    bound 1e-11 lies between the two."""
    import math

    n = 1 << 20
    y = np.full(n, 1.0 + 2.0**-24)
    y[0] = 2.0**30
    term = RandomTerm("g", np.zeros(n, dtype=np.intp), np.arange(1), np.ones((n, 1)), ("1",))
    red = reduce_rows(np.ones((n, 1)), y, [term])
    exact = math.fsum(y)
    assert abs(red.terms[0].Zy[0, 0] - exact) <= 1e-11 * exact
    assert abs(red.terms[0].level_y[0] - exact) <= 1e-11 * exact
