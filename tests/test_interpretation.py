"""Ranges, intraclass correlations and shrinkage of fitted mixed models.

lme4 reference numbers: ``tests/data/interpretation/lme4_pooling.json``,
written by ``Rscript tools/make_interpretation_references.R`` (R 4.2.2,
lme4 1.1-31) from

- ``lmer(Reaction ~ Days + (Days | Subject), sleepstudy)`` with
  ``lmList(Reaction ~ Days | Subject, sleepstudy)`` (no pooling),
  ``coef(fit)$Subject`` (partial pooling) and ``coef(lm(Reaction ~ Days))``
  (complete pooling);
- ``lmer(Reaction ~ Days + (1 | Subject), sleepstudy)``;
- ``lmer(strength ~ 1 + (1 | batch/cask), Pastes)``;
- ``lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)``;

with the intraclass correlations computed from ``VarCorr(fit)``.
"""

import doctest
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sklearn_mixed import CrossedEffectsRegressor, MixedLinearRegressor, _interpretation
from sklearn_mixed._base import _BaseMixedRegressor
from sklearn_mixed.core import RandomTerm, intraclass, pooling, reduce_rows
from sklearn_mixed.core.pooling import per_level_least_squares, shrinkage_fraction
from sklearn_mixed.datasets import load_pastes, load_penicillin, load_sleepstudy

REFERENCE = json.loads(
    (Path(__file__).parent / "data" / "interpretation" / "lme4_pooling.json").read_text()
)
Z95 = 1.959963984540054  # qnorm(0.975)
Z99 = 2.5758293035489004  # qnorm(0.995)
TOL_REL = 1e-3  # relative, as the lme4 variance components


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def sleep():
    return load_sleepstudy()


@pytest.fixture(scope="module")
def sleep_corr(sleep):
    return MixedLinearRegressor(random_slopes=["Days"]).fit(
        sleep[["Days"]], sleep["Reaction"], groups=sleep["Subject"]
    )


@pytest.fixture(scope="module")
def sleep_int(sleep):
    return MixedLinearRegressor().fit(sleep[["Days"]], sleep["Reaction"], groups=sleep["Subject"])


@pytest.fixture(scope="module")
def pastes():
    df = load_pastes().rename(columns={"sample": "batch:cask"})
    est = MixedLinearRegressor().fit(df[[]], df["strength"], groups=df[["batch", "batch:cask"]])
    return df, est


@pytest.fixture(scope="module")
def penicillin():
    df = load_penicillin()
    return MixedLinearRegressor().fit(df[[]], df["diameter"], groups=df[["plate", "sample"]])


def _reference_frame(block):
    return pd.DataFrame(block["values"], index=block["levels"], columns=block["names"])


# ------------------------------------------------------------------ ranges
def test_ranges_at_95_and_99_use_the_normal_quantiles(sleep_corr):
    table = sleep_corr.effect_ranges(level=(0.95, 0.99))
    assert list(table.columns) == [
        "center",
        "std_dev",
        "lower_95",
        "upper_95",
        "lower_99",
        "upper_99",
    ]
    tau = np.sqrt(np.diag(sleep_corr.random_effects_cov_["Subject"]))
    sigma = np.sqrt(sleep_corr.residual_variance_)
    expected = {
        ("Subject", "(Intercept)"): (sleep_corr.intercept_, tau[0]),
        ("Subject", "Days"): (sleep_corr.coef_[0], tau[1]),
        ("Residual", "observations"): (0.0, sigma),
    }
    assert list(table.index) == list(expected)
    for key, (center, sd) in expected.items():
        row = table.loc[key]
        assert row.center == pytest.approx(center, rel=1e-12)
        assert row.std_dev == pytest.approx(sd, rel=1e-12)
        for z, pct in [(Z95, "95"), (Z99, "99")]:
            assert row[f"lower_{pct}"] == pytest.approx(center - z * sd, rel=1e-12)
            assert row[f"upper_{pct}"] == pytest.approx(center + z * sd, rel=1e-12)


def test_one_level_keeps_lower_and_upper(sleep_corr):
    one = sleep_corr.effect_ranges(0.95)
    both = sleep_corr.effect_ranges((0.95, 0.99))
    assert list(one.columns) == ["center", "std_dev", "lower", "upper"]
    np.testing.assert_array_equal(one["lower"], both["lower_95"])
    np.testing.assert_array_equal(one["upper"], both["upper_95"])


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, (0.95, 2.0), (), "0.95", True])
def test_bad_levels_are_rejected(sleep_corr, level):
    with pytest.raises(ValueError, match="level"):
        sleep_corr.effect_ranges(level)


def test_a_term_without_a_fixed_effect_centers_at_0(sleep):
    """y ~ 0 + Days + (1 | Subject): the random intercept has no fixed intercept."""
    est = MixedLinearRegressor(fit_intercept=False).fit(
        sleep[["Days"]], sleep["Reaction"], groups=sleep["Subject"]
    )
    table = est.effect_ranges(0.99)
    row = table.loc[("Subject", "(Intercept)")]
    assert row.center == 0.0
    assert row.upper == pytest.approx(Z99 * row.std_dev, rel=1e-12)


def test_summary_prints_the_95_and_99_ranges(sleep_corr):
    text = sleep_corr.summary()
    assert "z = 1.96 for 95%, 2.58 for 99%" in text
    assert (
        "95% of Subject (Intercept) values lie in 251.4 +- 48.49 = [202.9, 299.9]; "
        "99% in [187.7, 315.1]"
    ) in text
    assert "95% of Subject Days values lie in 10.47 +- 11.61 = [-1.14, 22.07]; 99% in" in text
    assert "within +- 50.16 of that group's own mean" in text
    assert "; 99% within +- 65.92" in text


# ------------------------------------------------------------------ ICC
@pytest.mark.parametrize("name", ["sleep_corr", "sleep_int", "pastes", "penicillin"])
def test_intraclass_correlation_matches_lme4(name, request):
    fitted = request.getfixturevalue(name)
    est = fitted[1] if isinstance(fitted, tuple) else fitted
    ref = REFERENCE[name]["icc"]
    # lme4 calls the inner factor of batch/cask "cask:batch"; ours is "batch:cask"
    factors = [{"cask:batch": "batch:cask"}.get(f, f) for f in np.atleast_1d(ref["factor"])]
    table = est.intraclass_correlation().loc[factors]
    for column in ["variance", "icc", "icc_same_level"]:
        np.testing.assert_allclose(table[column], np.atleast_1d(ref[column]), rtol=TOL_REL)


def test_intraclass_correlation_formula_on_nested_factors(pastes):
    """(1 | batch/cask): same cask means same batch, so its correlation adds both."""
    _, est = pastes
    tau2_batch = est.random_effects_cov_["batch"][0, 0]
    tau2_cask = est.random_effects_cov_["batch:cask"][0, 0]
    total = tau2_batch + tau2_cask + est.residual_variance_
    table = est.intraclass_correlation()
    assert table.index.name == "factor" and list(table.index) == ["batch", "batch:cask"]
    assert table.loc["batch", "icc"] == pytest.approx(tau2_batch / total, rel=1e-12)
    assert table.loc["batch", "icc_same_level"] == pytest.approx(tau2_batch / total, rel=1e-12)
    assert table.loc["batch:cask", "icc"] == pytest.approx(tau2_cask / total, rel=1e-12)
    assert table.loc["batch:cask", "icc_same_level"] == pytest.approx(
        (tau2_cask + tau2_batch) / total, rel=1e-12
    )
    text = est.summary()
    assert "Intraclass correlation:" in text and "Same level" in text
    assert "batch:cask  0.783       0.937" in text


def test_intraclass_correlation_of_crossed_factors_is_the_variance_share():
    df = load_penicillin()
    est = CrossedEffectsRegressor().fit(df[[]], df["diameter"], groups=df[["plate", "sample"]])
    icc = est.intraclass_correlation()
    shares = est.variance_shares_["share"]
    np.testing.assert_allclose(icc["icc"], shares.loc[["plate", "sample"]], rtol=1e-12)
    np.testing.assert_array_equal(icc["icc"], icc["icc_same_level"])  # crossed, not nested
    assert "Same level" not in est.summary()


def test_intraclass_correlation_with_slopes_is_at_x_0(sleep_corr):
    tau2 = sleep_corr.random_effects_cov_["Subject"][0, 0]
    icc = sleep_corr.intraclass_correlation().loc["Subject", "icc"]
    assert icc == pytest.approx(tau2 / (tau2 + sleep_corr.residual_variance_), rel=1e-12)
    assert "Intraclass correlation (at x = 0: slopes vary by group):" in sleep_corr.summary()


# ------------------------------------------------------------------ shrinkage
def test_shrinkage_columns_and_index(sleep_corr):
    table = sleep_corr.shrinkage()
    terms = ["(Intercept)", "Days"]
    expected = [("n_obs", "")] + [
        (q, t)
        for q in ["no_pooling", "complete_pooling", "partial_pooling", "shrinkage"]
        for t in terms
    ]
    assert list(table.columns) == expected
    assert table.columns.names == ["quantity", "term"]
    assert table.index.name == "Subject"
    assert list(table.index) == list(sleep_corr.random_effects_["Subject"].index)
    assert (table[("n_obs", "")] == 10).all()
    assert table[("n_obs", "")].dtype == np.int64


def test_pooling_matches_lmlist_lm_and_coef(sleep_corr):
    """No pooling is lmList's per-subject fit; complete pooling lm's; partial pooling coef."""
    ref = REFERENCE["sleep_corr"]
    table = sleep_corr.shrinkage("Subject")
    no_pool = _reference_frame(ref["no_pooling"])
    np.testing.assert_allclose(table["no_pooling"].loc[no_pool.index], no_pool, rtol=1e-10)
    complete = np.array([ref["complete_pooling"][t] for t in no_pool.columns])
    np.testing.assert_allclose(table["complete_pooling"], np.tile(complete, (18, 1)), rtol=1e-10)
    partial = _reference_frame(ref["partial_pooling"])
    # fixed effect within 1e-3 of its standard error plus the mode within 1e-3 sd
    tau = np.sqrt(np.diag(sleep_corr.random_effects_cov_["Subject"]))
    se = sleep_corr.fixed_effects_["std_error"].to_numpy()
    error = np.abs(table["partial_pooling"].loc[partial.index] - partial)
    assert (error <= TOL_REL * (tau + se)).all(axis=None)


def test_shrinkage_of_a_balanced_random_intercept(sleep_int):
    """sigma^2/n_j / (tau^2 + sigma^2/n_j) for every subject, n_j = 10; lme4's no pooling."""
    table = sleep_int.shrinkage()
    tau2 = sleep_int.random_effects_cov_["Subject"][0, 0]
    sigma2 = sleep_int.residual_variance_
    expected = (sigma2 / 10) / (tau2 + sigma2 / 10)
    np.testing.assert_allclose(table[("shrinkage", "(Intercept)")], expected, rtol=1e-8)
    ref = REFERENCE["sleep_int"]
    no_pool = _reference_frame(ref["no_pooling"])
    sigma = np.sqrt(sigma2)
    error = np.abs(table["no_pooling"].loc[no_pool.index] - no_pool)
    assert (error <= TOL_REL * sigma).all(axis=None)
    partial = _reference_frame(ref["partial_pooling"])
    error = np.abs(table["partial_pooling"].loc[partial.index] - partial)
    assert (error <= TOL_REL * sigma).all(axis=None)


def test_shrinkage_identity_holds_unbalanced(sleep):
    """The identity needs no balance: s_j = sigma^2 / (sigma^2 + n_j tau^2)."""
    rng = np.random.default_rng(0)
    df = sleep.iloc[np.sort(rng.choice(len(sleep), 120, replace=False))]
    est = MixedLinearRegressor().fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
    table = est.shrinkage()
    n = table[("n_obs", "")].to_numpy()
    assert len(set(n)) > 1
    tau2 = est.random_effects_cov_["Subject"][0, 0]
    sigma2 = est.residual_variance_
    np.testing.assert_allclose(
        table[("shrinkage", "(Intercept)")], sigma2 / (sigma2 + n * tau2), rtol=1e-8
    )
    mean_residual = (df["Reaction"] - est.coef_[0] * df["Days"]).groupby(df["Subject"]).mean()
    np.testing.assert_allclose(
        table[("no_pooling", "(Intercept)")], mean_residual.loc[table.index], rtol=1e-12
    )


@pytest.mark.parametrize("factor", ["batch", "batch:cask"])
def test_shrinkage_of_nested_factors(pastes, factor):
    """Each factor's own estimate holds the other factor at its modes (as in R)."""
    df, est = pastes
    table = est.shrinkage(factor)
    assert table.index.name == factor
    tau2 = est.random_effects_cov_[factor][0, 0]
    sigma2 = est.residual_variance_
    n = table[("n_obs", "")].to_numpy()
    np.testing.assert_allclose(
        table[("shrinkage", "(Intercept)")], sigma2 / (sigma2 + n * tau2), rtol=1e-8
    )
    block = {"batch": "no_pooling_batch", "batch:cask": "no_pooling_cask"}[factor]
    no_pool = _reference_frame(REFERENCE["pastes"][block])
    error = np.abs(table["no_pooling"].loc[no_pool.index] - no_pool)
    assert (error <= TOL_REL * np.sqrt(sigma2)).all(axis=None)
    complete = REFERENCE["pastes"]["complete_pooling"]["(Intercept)"]
    np.testing.assert_allclose(table[("complete_pooling", "(Intercept)")], complete, rtol=1e-12)


def test_no_pooling_is_nan_where_not_identifiable(sleep):
    """A subject with one row, and one whose Days are all equal, cannot fit a line."""
    df = sleep[~((sleep["Subject"] == "308") & (sleep["Days"] > 0))]
    df = df[~((df["Subject"] == "309") & ~df["Days"].isin([3]))]
    df = pd.concat([df, df[df["Subject"] == "309"]])  # two rows, both Days = 3
    est = MixedLinearRegressor(random_slopes=["Days"]).fit(
        df[["Days"]], df["Reaction"], groups=df["Subject"]
    )
    table = est.shrinkage()
    assert table.loc["308", ("n_obs", "")] == 1 and table.loc["309", ("n_obs", "")] == 2
    for level in ["308", "309"]:
        assert table.loc[level, ["no_pooling", "shrinkage"]].isna().all()
        assert table.loc[level, "partial_pooling"].notna().all()
    others = table.drop(index=["308", "309"])
    assert others[["no_pooling", "partial_pooling", "complete_pooling"]].notna().all(axis=None)


def test_shrinkage_does_not_depend_on_row_order_or_labels(sleep, sleep_corr):
    reference = sleep_corr.shrinkage()
    rng = np.random.default_rng(1)
    shuffled = sleep.iloc[rng.permutation(len(sleep))]
    relabel = {s: f"s{999 - int(s)}" for s in sleep["Subject"].unique()}  # reverses the order
    groups = shuffled["Subject"].map(relabel).rename("Subject")
    est = MixedLinearRegressor(random_slopes=["Days"]).fit(
        shuffled[["Days"]], shuffled["Reaction"], groups=groups
    )
    table = est.shrinkage()
    assert list(table.index) == sorted(relabel.values())
    table.index = table.index.map({v: k for k, v in relabel.items()})
    pd.testing.assert_frame_equal(
        table.loc[reference.index], reference, check_exact=False, rtol=1e-5
    )


def test_shrinkage_rejects_unknown_factors(sleep_corr, sleep):
    with pytest.raises(ValueError, match="unknown grouping factor 'school'.*Subject"):
        sleep_corr.shrinkage("school")
    plain = MixedLinearRegressor().fit(sleep[["Days"]], sleep["Reaction"])
    with pytest.raises(ValueError, match="without grouping factors"):
        plain.shrinkage()


# ------------------------------------------------------------------ core
def _level_fits(codes, m, z, r):
    """Per-level least squares from the data reduction's per-level sums."""
    term = RandomTerm("g", codes, np.arange(m), z, tuple(f"z{a}" for a in range(z.shape[1])))
    t = reduce_rows(np.zeros((len(r), 0)), r, [term]).terms[0]
    return per_level_least_squares(t.A, t.Zy, t.level_n), t.level_n


def test_per_level_least_squares_equals_a_loop_of_lstsq():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 40, 600)
    z = np.column_stack([np.ones(600), rng.normal(size=600), rng.normal(size=600)])
    r = rng.normal(size=600)
    coef, counts = _level_fits(codes, 41, z, r)
    assert counts[40] == 0 and np.isnan(coef[40]).all()  # an empty level
    for j in range(40):
        rows = codes == j
        expected, *_ = np.linalg.lstsq(z[rows], r[rows], rcond=None)
        np.testing.assert_allclose(coef[j], expected, rtol=1e-9, atol=1e-12)
        assert counts[j] == rows.sum()


def test_per_level_least_squares_flags_collinear_covariates():
    codes = np.array([0, 0, 0, 1, 1, 1])
    x = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    z = np.column_stack([np.ones(6), x, 2 * x + 1])  # third = 2 x second + first
    coef, _ = _level_fits(codes, 2, z, np.arange(6.0))
    assert np.isnan(coef).all()


def test_shrinkage_fraction_is_nan_without_a_distance_to_move():
    result = shrinkage_fraction(np.array([3.0, np.nan, 5.0]), np.array([2.0, 1.0, 4.0]), 3.0)
    assert np.isnan(result[0]) and np.isnan(result[1]) and result[2] == pytest.approx(0.5)


# ------------------------------------------------------------------ examples
@pytest.mark.parametrize("module", [_interpretation, pooling, intraclass], ids=lambda m: m.__name__)
def test_module_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("method", ["effect_ranges", "intraclass_correlation", "shrinkage"])
def test_estimator_method_examples_run(method):
    (test,) = doctest.DocTestFinder().find(getattr(_BaseMixedRegressor, method), method)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert test.examples and runner.failures == 0
