"""``anova`` and ``information_criteria`` against lme4's ``anova``.

References in ``data/lmertest/anova_*.json``, written by
``tools/make_lmertest_references.R`` (R 4.2.2, lme4 1.1-31) from the CSV files
of ``sklearn_mixed/datasets/data``; each file holds its R call, e.g.
``anova(lmer(Reaction ~ Days + (1 | Subject), sleepstudy),
lmer(Reaction ~ Days + (Days | Subject), sleepstudy))``, and one row per model
in lme4's order, named ``m0``, ``m1``, ... in the order of the call.
"""

import doctest
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sklearn_mixed import (
    CrossedEffectsRegressor,
    MixedLinearRegressor,
    anova,
    information_criteria,
    model_comparison,
)
from sklearn_mixed.datasets import load_penicillin, load_sleepstudy

DATA = Path(__file__).parent / "data" / "lmertest"
TOL_REL = 1e-6  # logLik, AIC, BIC, deviance, Chisq
# p of a chi-square statistic matching to 1e-6: relative error about Chisq / 2 x 1e-6
TOL_P_REL = 1e-4


@pytest.fixture(scope="module")
def sleep():
    return load_sleepstudy()


def _fit(sleep, features=("Days",), slopes=None, method="reml", y=None):
    model = MixedLinearRegressor(random_slopes=slopes, method=method)
    target = sleep["Reaction"] if y is None else y
    return model.fit(sleep[list(features)], target, groups=sleep["Subject"])


@pytest.fixture(scope="module")
def null_model(sleep):
    """lmer(Reaction ~ 1 + (1 | Subject), sleepstudy)"""
    return _fit(sleep, features=())


@pytest.fixture(scope="module")
def intercept_model(sleep):
    """lmer(Reaction ~ Days + (1 | Subject), sleepstudy)"""
    return _fit(sleep)


@pytest.fixture(scope="module")
def slope_model(sleep):
    """lmer(Reaction ~ Days + (Days | Subject), sleepstudy)"""
    return _fit(sleep, slopes=["Days"])


def _reference(name):
    return json.loads((DATA / f"anova_{name}.json").read_text())


def _assert_matches(table, reference):
    rows = reference["rows"]
    assert table.index.tolist() == [row["model"] for row in rows]
    for (_, got), row in zip(table.iterrows(), rows, strict=True):
        assert got["npar"] == row["npar"]
        for column in ["AIC", "BIC", "logLik", "deviance"]:
            assert got[column] == pytest.approx(row[column], rel=TOL_REL), column
        if row["Chisq"] is None:
            assert np.isnan(got["Chisq"]) and np.isnan(got["Pr(>Chisq)"])
            continue
        assert got["Df"] == row["Df"]
        assert got["Chisq"] == pytest.approx(row["Chisq"], rel=TOL_REL)
        assert got["Pr(>Chisq)"] == pytest.approx(row["p"], rel=TOL_P_REL)


# ------------------------------------------------------------ against lme4
def test_random_slope_refit_by_ml_matches_lme4(intercept_model, slope_model):
    """anova(m0, m1): both REML fits are refitted by ML, as lme4 does."""
    table = anova(intercept_model, slope_model, names=["m0", "m1"])
    _assert_matches(table, _reference("sleep_random_refit"))
    assert table.attrs["refitted"] == ["m0", "m1"]
    assert "50:50" in table.attrs["note"]
    # the refits leave the estimators as they were fitted (REML)
    assert intercept_model.method == "reml"
    assert intercept_model.log_likelihood_ == pytest.approx(-893.2325427, rel=1e-8)


def test_random_slope_without_refit_matches_lme4(intercept_model, slope_model):
    """anova(m0, m1, refit = FALSE): REML criteria of models with the same fixed effects."""
    table = anova(intercept_model, slope_model, refit=False, names=["m0", "m1"])
    _assert_matches(table, _reference("sleep_random_norefit"))
    assert table.attrs["refitted"] == []


def test_fixed_effect_comparison_matches_lme4(null_model, intercept_model):
    """anova(lmer(Reaction ~ 1 + (1 | Subject)), lmer(Reaction ~ Days + (1 | Subject)))."""
    table = anova(null_model, intercept_model, names=["m0", "m1"])
    _assert_matches(table, _reference("sleep_fixed"))


def test_three_models_are_sorted_by_npar_as_lme4(null_model, intercept_model, slope_model):
    """anova(m0 = Days + (Days | S), m1 = 1 + (1 | S), m2 = Days + (1 | S)): rows by npar."""
    table = anova(slope_model, null_model, intercept_model, names=["m0", "m1", "m2"])
    _assert_matches(table, _reference("sleep_chain"))


def test_crossed_factors_match_lme4():
    """anova(lmer(diameter ~ 1 + (1 | plate)), lmer(diameter ~ 1 + (1 | plate) + (1 | sample)))."""
    pen = load_penicillin()
    plate = CrossedEffectsRegressor().fit(pen[[]], pen["diameter"], groups=pen[["plate"]])
    both = CrossedEffectsRegressor().fit(pen[[]], pen["diameter"], groups=pen[["plate", "sample"]])
    table = anova(plate, both, names=["m0", "m1"])
    _assert_matches(table, _reference("penicillin_crossed"))


# ------------------------------------------------------------------ rules
def test_ml_fits_are_not_refitted(sleep):
    m0 = _fit(sleep, method="ml")
    m1 = _fit(sleep, slopes=["Days"], method="ml")
    table = anova(m0, m1)
    assert table.index.tolist() == ["model 1", "model 2"]
    assert table.attrs["refitted"] == []
    assert table["logLik"].tolist() == [m0.log_likelihood_, m1.log_likelihood_]
    assert table["AIC"].to_numpy() == pytest.approx([m0.aic_, m1.aic_], rel=1e-12)
    assert table["BIC"].to_numpy() == pytest.approx([m0.bic_, m1.bic_], rel=1e-12)


def test_equal_npar_has_no_test(sleep, intercept_model):
    """Df = 0 (same number of parameters): no p-value, as lme4's NA."""
    other = MixedLinearRegressor().fit(
        sleep[["Days"]].assign(Days=sleep["Days"] ** 2), sleep["Reaction"], groups=sleep["Subject"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # not nested, on purpose
        table = anova(intercept_model, other)
    assert table["Df"].iloc[1] == 0
    assert np.isnan(table["Pr(>Chisq)"].iloc[1])


def test_refit_false_rejects_reml_fits_with_different_fixed_effects(null_model, intercept_model):
    with pytest.raises(ValueError, match="REML and their fixed effects differ"):
        anova(null_model, intercept_model, refit=False)


def test_refit_false_rejects_a_mix_of_reml_and_ml(sleep, intercept_model):
    ml = _fit(sleep, slopes=["Days"], method="ml")
    with pytest.raises(ValueError, match="some models were fitted by REML and some by ML"):
        anova(intercept_model, ml, refit=False)


def test_different_response_is_an_error(sleep, intercept_model):
    shifted = _fit(sleep, y=sleep["Reaction"] + 1.0)
    with pytest.raises(ValueError, match="not fitted to the same response"):
        anova(intercept_model, shifted)


def test_different_number_of_rows_is_an_error(sleep, intercept_model):
    half = sleep.iloc[:90]
    smaller = MixedLinearRegressor().fit(half[["Days"]], half["Reaction"], groups=half["Subject"])
    with pytest.raises(ValueError, match="180 observations, 'model 2' has 90"):
        anova(intercept_model, smaller)


def test_models_that_are_not_nested_warn(sleep, intercept_model):
    squared = MixedLinearRegressor(random_slopes=["Days"]).fit(
        sleep[["Days"]] ** 2, sleep["Reaction"], groups=sleep["Subject"]
    )
    with pytest.warns(UserWarning, match="does not look nested"):
        anova(intercept_model, squared)


def test_nested_models_do_not_warn(null_model, intercept_model, slope_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        anova(null_model, intercept_model, slope_model)


def test_bad_arguments(intercept_model, slope_model):
    assert anova(intercept_model).index.tolist() == ["Days"]  # one model: F tests
    with pytest.raises(TypeError, match="argument 2 is a str"):
        anova(intercept_model, "model")
    with pytest.raises(NotFittedError):
        anova(intercept_model, MixedLinearRegressor())
    with pytest.raises(ValueError, match="2 distinct names"):
        anova(intercept_model, slope_model, names=["a", "a"])


# ------------------------------------------------- information_criteria
def test_information_criteria_are_the_fitted_ones(null_model, intercept_model):
    with pytest.warns(UserWarning, match="fixed effects differ"):
        table = information_criteria(null_model, intercept_model, names=["null", "days"])
    assert table.index.tolist() == ["null", "days"]
    assert table["criterion"].tolist() == ["REML", "REML"]
    for name, model in [("null", null_model), ("days", intercept_model)]:
        row = table.loc[name]
        assert row["npar"] == model.model_.p + model.theta_.size + 1
        assert row["logLik"] == model.log_likelihood_
        assert row["AIC"] == pytest.approx(model.aic_, rel=1e-12)
        assert row["BIC"] == pytest.approx(model.bic_, rel=1e-12)
        assert row["deviance"] == pytest.approx(model.deviance_, rel=1e-12)


def test_information_criteria_of_comparable_fits_do_not_warn(intercept_model, slope_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = information_criteria(intercept_model, slope_model)
    assert table["npar"].tolist() == [4, 6]


def test_information_criteria_warn_on_mixed_criteria(sleep, intercept_model):
    ml = _fit(sleep, method="ml")
    with pytest.warns(UserWarning, match="some by ML"):
        information_criteria(intercept_model, ml)


def test_docstring_examples():
    result = doctest.testmod(model_comparison, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
