"""Property-based tests (hypothesis) of the numerical core.

Random small designs: the blocked deviance equals a dense one written here;
theta <-> T; level codes; nesting detection on nestings built by construction.
"""

import numpy as np
import scipy.linalg as la
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sklearn_mixed.core.cholesky import blocked_cholesky, relative_factor_matrix
from sklearn_mixed.core.crossprod import blocked_cross_products
from sklearn_mixed.core.deviance import Criterion, profiled_deviance, solve_coefficients
from sklearn_mixed.core.grouping import (
    RandomTerm,
    encode_factor,
    is_nested_in,
    nesting_pairs,
    term_model_matrix,
)
from sklearn_mixed.core.layout import elimination_order
from sklearn_mixed.core.reduction import reduce_rows
from sklearn_mixed.core.rows import intercept_column
from sklearn_mixed.core.structures import covariance_to_sd_corr, make_structure

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STRUCTURES = ["unstructured", "diagonal"]


# ------------------------------------------------------------------ dense reference
def dense_deviances(X, y, terms, Ts):
    """ML and REML profiled deviance (Bates et al. 2015, eq. 34 and 41), densely."""
    n, p = X.shape
    Z = np.hstack([term_model_matrix(t).toarray() for t in terms])
    Lam = la.block_diag(*[np.kron(np.eye(t.n_levels), T) for t, T in zip(terms, Ts, strict=True)])
    ZL = Z @ Lam
    q = ZL.shape[1]
    MZ = ZL.T @ ZL + np.eye(q)
    A = np.block([[MZ, ZL.T @ X], [X.T @ ZL, X.T @ X]])
    sol = np.linalg.solve(A, np.concatenate([ZL.T @ y, X.T @ y]))
    u, beta = sol[:q], sol[q:]
    r = y - X @ beta - ZL @ u
    r2 = r @ r + u @ u
    logdet_Z = np.linalg.slogdet(MZ)[1]
    RX = X.T @ X - X.T @ ZL @ np.linalg.solve(MZ, ZL.T @ X)
    logdet_X = np.linalg.slogdet(RX)[1] if p else 0.0
    ml = logdet_Z + n * (1 + np.log(2 * np.pi * r2 / n))
    reml = logdet_Z + logdet_X + (n - p) * (1 + np.log(2 * np.pi * r2 / (n - p)))
    return ml, reml, beta


def relative_factor(theta, k, structure):
    return make_structure(structure, k).relative_factor(theta)


@st.composite
def thetas_for(draw, k, structure):
    lower = make_structure(structure, k).lower_bounds()
    vals = []
    for lo in lower:
        if np.isfinite(lo):
            vals.append(draw(st.floats(0.05, 3.0)))
        else:
            vals.append(draw(st.floats(-2.0, 2.0)))
    return np.array(vals)


@st.composite
def designs(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    counts = draw(st.lists(st.integers(1, 4), min_size=2, max_size=6))
    m1 = len(counts)
    codes1 = rng.permutation(np.repeat(np.arange(m1), counts))
    n = codes1.size
    p = draw(st.integers(0, 2))
    if n <= p + 1:
        extra = p + 2 - n
        codes1 = np.concatenate([codes1, rng.integers(0, m1, size=extra)])
        n = codes1.size
    specs = [(codes1, draw(st.integers(1, 3)), draw(st.sampled_from(STRUCTURES)))]
    if draw(st.booleans()):
        m2 = draw(st.integers(2, min(4, n)))
        codes2 = rng.integers(0, m2, size=n)
        codes2[rng.choice(n, size=m2, replace=False)] = np.arange(m2)
        specs.append((codes2, draw(st.integers(1, 2)), draw(st.sampled_from(STRUCTURES))))
    terms, Ts = [], []
    for i, (codes, k, structure) in enumerate(specs):
        cov = np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(k - 1)])
        names = ("(Intercept)",) + tuple(f"z{j}" for j in range(1, k))
        m = int(codes.max()) + 1
        terms.append(RandomTerm(f"t{i}", codes, np.arange(m), cov, names, structure))
        Ts.append(relative_factor(draw(thetas_for(k, structure)), k, structure))
    if len(terms) == 2 and draw(st.booleans()):
        terms, Ts = terms[::-1], Ts[::-1]  # either term may be eliminated in closed form
    X = (
        np.column_stack([np.ones(n)] + [rng.normal(size=n) for _ in range(p - 1)])
        if p
        else (np.zeros((n, 0)))
    )
    y = rng.normal(size=n) * draw(st.floats(0.1, 10.0)) + draw(st.floats(-50, 50))
    return X, y, terms, Ts


@SETTINGS
@given(designs())
def test_blocked_deviance_equals_dense(design):
    X, y, terms, Ts = design
    n, p = X.shape
    # centred on the intercept column, as fit_lmm reduces (y has a mean up to 50)
    reduction = reduce_rows(X, y, terms, intercept=intercept_column(X))
    closed, dense = elimination_order(reduction, dense_limit=0)  # nesting chains closed
    cp = blocked_cross_products(reduction, closed, dense)
    Lambda_dense = relative_factor_matrix(
        [Ts[i] for i in dense], [terms[i].n_levels for i in dense]
    )
    factor = blocked_cholesky(cp, [Ts[i] for i in closed], Lambda_dense)
    ml, reml, beta = dense_deviances(X, y, terms, Ts)
    # a deviance near 0 is a difference of large terms: relative and absolute
    ml_got = profiled_deviance(factor, Criterion(n, p, reml=False))
    reml_got = profiled_deviance(factor, Criterion(n, p, reml=True))
    np.testing.assert_allclose(ml_got, ml, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(reml_got, reml, rtol=1e-9, atol=1e-9)
    got_beta = reduction.uncentre(solve_coefficients(factor, p)[0])
    np.testing.assert_allclose(got_beta, beta, rtol=1e-7, atol=1e-9 * np.abs(y).max())


@SETTINGS
@given(designs())
def test_term_model_matrix_rows(design):
    """Row i of Z_t times b (levels x k, flattened) is z_i' b_{g(i)}."""
    _, _, terms, _ = design
    rng = np.random.default_rng(0)
    for t in terms:
        Z = term_model_matrix(t)
        assert Z.shape == (len(t.codes), t.n_levels * t.n_coef)
        b = rng.normal(size=(t.n_levels, t.n_coef))
        np.testing.assert_allclose(
            Z @ b.ravel(), np.einsum("ik,ik->i", t.covariates, b[t.codes]), rtol=1e-12, atol=1e-12
        )
        assert np.all(np.diff(Z.indptr) <= t.n_coef)


# ----------------------------------------------------------------------- theta <-> T
@SETTINGS
@given(
    st.integers(1, 5),
    st.sampled_from(STRUCTURES),
    st.data(),
)
def test_theta_T_round_trip(k, structure, data):
    s = make_structure(structure, k)
    d = s.n_theta
    assert d == (k if structure == "diagonal" else k * (k + 1) // 2)
    theta = np.array(data.draw(st.lists(st.floats(-1e6, 1e6), min_size=d, max_size=d)))
    T = relative_factor(theta, k, structure)
    assert T.shape == (k, k)
    assert np.all(np.triu(T, 1) == 0), "T is lower triangular"
    if structure == "diagonal":
        assert np.array_equal(T, np.diag(theta))
    else:
        # lme4's order: the lower triangle column by column
        back = np.concatenate([T[j:, j] for j in range(k)])
        assert np.array_equal(back, theta)
    # the start is T = I; lower bounds are 0 exactly on the diagonal of T
    assert np.array_equal(relative_factor(s.start(), k, structure), np.eye(k))
    lower = s.lower_bounds()
    on_diag = relative_factor(np.isfinite(lower).astype(float), k, structure)
    assert np.array_equal(on_diag, np.eye(k))
    assert np.all(lower[np.isfinite(lower)] == 0.0)


def test_theta_order_is_lme4s():
    assert np.array_equal(
        relative_factor([1.0, 2.0, 3.0], 2, "unstructured"), [[1.0, 0.0], [2.0, 3.0]]
    )
    assert np.array_equal(
        relative_factor(np.arange(1.0, 7.0), 3, "unstructured"),
        [[1.0, 0, 0], [2.0, 4.0, 0], [3.0, 5.0, 6.0]],
    )


@SETTINGS
@given(st.integers(1, 4), st.sampled_from(STRUCTURES), st.data())
def test_sd_corr_reconstruct_covariance(k, structure, data):
    theta = data.draw(thetas_for(k, structure))
    T = relative_factor(theta, k, structure)
    cov = T @ T.T
    sd, corr = covariance_to_sd_corr(cov)
    np.testing.assert_allclose(sd[:, None] * corr * sd[None, :], cov, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.diag(corr), 1.0)
    assert np.all(np.abs(corr) <= 1 + 1e-12)


# ------------------------------------------------------------------- encode_factor
homogeneous_labels = st.one_of(
    st.lists(st.integers(-5, 5), min_size=1, max_size=30),
    st.lists(st.text("abcXY01", max_size=3), min_size=1, max_size=30),
    st.lists(st.floats(-3, 3, allow_nan=False).map(lambda v: round(v, 1)), min_size=1, max_size=30),
)


def _check_codes(labels, codes, levels):
    m = len(levels)
    assert codes.shape == labels.shape
    assert codes.dtype == np.intp
    assert set(np.unique(codes)) == set(range(m)), "every level is used"


@SETTINGS
@given(homogeneous_labels, st.randoms(use_true_random=False))
def test_encode_factor_reconstructs_labels(values, rnd):
    labels = np.array(values, dtype=object if isinstance(values[0], str) else None)
    codes, levels = encode_factor(labels)
    _check_codes(labels, codes, levels)
    assert np.array_equal(levels[codes], labels)
    assert len(set(levels.tolist())) == len(levels), "levels are unique"
    assert all(a < b for a, b in zip(levels[:-1], levels[1:], strict=True)), "levels are sorted"
    # row order does not change the levels, codes follow the rows
    perm = np.arange(len(labels))
    rnd.shuffle(perm)
    codes_p, levels_p = encode_factor(labels[perm])
    assert np.array_equal(levels_p, levels)
    assert np.array_equal(codes_p, codes[perm])


@SETTINGS
@given(
    st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=40),
    st.sampled_from([np.int64, np.int32, np.uint16]),
    st.integers(0, 3),
)
def test_encode_factor_integers_equals_numpy_unique(values, dtype, spread):
    """Integer labels (the O(n) table path when their range is compact, the
    sort otherwise) encode exactly as ``numpy.unique``."""
    info = np.iinfo(dtype)
    labels = (np.array(values) // 10 ** (spread * 4)).clip(info.min, info.max).astype(dtype)
    codes, levels = encode_factor(labels)
    expected_levels, expected_codes = np.unique(labels, return_inverse=True)
    assert np.array_equal(levels, expected_levels) and levels.dtype == labels.dtype
    assert np.array_equal(codes, expected_codes) and codes.dtype == np.intp


mixed_labels = st.lists(
    st.one_of(st.integers(0, 3), st.text("01ab", min_size=1, max_size=2)), min_size=1, max_size=30
)


@SETTINGS
@given(mixed_labels)
def test_encode_factor_mixed_types_keeps_distinct_labels_apart(values):
    """Object labels of mixed types: equal labels share a code, distinct labels do not."""
    labels = np.empty(len(values), dtype=object)
    labels[:] = values
    codes, levels = encode_factor(labels)
    _check_codes(labels, codes, levels)
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            same = type(values[i]) is type(values[j]) and values[i] == values[j]
            assert (codes[i] == codes[j]) == same, (values[i], values[j])


# ------------------------------------------------------------------------ nesting
@st.composite
def nested_factors(draw):
    """(inner codes, outer codes, inner->outer map) with inner nested by construction."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    per_outer = draw(st.lists(st.integers(1, 4), min_size=1, max_size=5))
    outer_perm = rng.permutation(len(per_outer))  # outer labels in any order
    inner_to_outer = np.repeat(outer_perm, per_outer)
    m_inner = inner_to_outer.size
    inner_perm = rng.permutation(m_inner)  # inner labels not sorted by outer
    inner_to_outer = inner_to_outer[np.argsort(inner_perm)]
    reps = rng.integers(1, 4, size=m_inner)
    inner = rng.permutation(np.repeat(np.arange(m_inner), reps))
    return inner, inner_to_outer[inner], per_outer


def factor_reduction(*codes_list):
    """The reduction of random intercepts on the given level codes (y = 0, no X)."""
    n = len(codes_list[0])
    one = np.ones((n, 1))
    terms = [
        RandomTerm(f"f{i}", codes, np.arange(codes.max() + 1), one, ("(Intercept)",))
        for i, codes in enumerate(codes_list)
    ]
    return reduce_rows(np.zeros((n, 0)), np.zeros(n), terms)


@SETTINGS
@given(nested_factors())
def test_is_nested_in_detects_constructed_nesting(case):
    inner, outer, per_outer = case
    assert is_nested_in(inner, outer)
    # outer is nested in inner only when the two partitions coincide
    assert is_nested_in(outer, inner) == all(c == 1 for c in per_outer)
    # the same from the reduction's cross-tabulation (what elimination_order reads)
    reduction = factor_reduction(inner, outer)
    assert reduction.nested(0, 1)
    assert reduction.nested(1, 0) == all(c == 1 for c in per_outer)
    pairs = nesting_pairs(["inner", "outer"], reduction)
    m_inner, m_outer = inner.max() + 1, outer.max() + 1
    assert (("inner", "outer") in pairs) == (m_inner > m_outer)
    assert ("outer", "inner") not in pairs
    # any factor is nested in a constant one and in itself
    assert is_nested_in(inner, np.zeros_like(inner))
    assert is_nested_in(inner, inner)


@SETTINGS
@given(nested_factors(), st.data())
def test_is_nested_in_rejects_a_crossing_level(case, data):
    inner, outer, per_outer = case
    if len(per_outer) < 2:
        return
    # one more observation of some inner level, in a different outer level
    i = data.draw(st.integers(0, len(inner) - 1))
    other = (outer[i] + data.draw(st.integers(1, len(per_outer) - 1))) % len(per_outer)
    at = data.draw(st.integers(0, len(inner)))
    inner2 = np.insert(inner, at, inner[i])
    outer2 = np.insert(outer, at, other)
    assert not is_nested_in(inner2, outer2)
    reduction = factor_reduction(inner2, outer2)
    assert not reduction.nested(0, 1)
    assert ("inner", "outer") not in nesting_pairs(["inner", "outer"], reduction)
