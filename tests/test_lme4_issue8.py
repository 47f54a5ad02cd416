"""Agreement with lme4 1.1-31, lmerTest 3.1-3 and metafor 3.8-1 beyond the classic models.

References in ``data/lme4_issue8`` (``tools/make_issue8_references.R``, R
4.2.2; each JSON holds its R ``call``): prior weights (``lmer(..., weights =
w)``) on crossed, nested, random-slope and singular models; random terms
without an intercept, on covariates that are not fixed effects, on
categorical covariates, and a model without fixed effects; rank-deficient
fixed effects; ``predict(re.form = ...)``; ``hatvalues``, ``cooks.distance``,
``rstudent``, ``influence(fit, groups)``; the deviance function
``as.function(fit)``; lmerTest's type III ``anova(fit)``; random-effects
meta-analysis (metafor's ``rma``) with a known residual variance.  The
tolerances of the fits are those of ``_reference.py``; others are given
where they are used.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _reference import OBSERVED, as_list, compare_with_lme4

from sklearn_mixed import MixedLinearRegressor, lmer
from sklearn_mixed.exceptions import SingularFitWarning

DATA = Path(__file__).parent / "data" / "lme4_issue8"
# Quantities derived from the fit (leverage, Cook's distance, influence refits)
# move with the optimum: lme4 stops within about 1e-5 (relative) of it, and the
# derived quantities inherit that; 1e-3 is the tolerance of the variance
# components and standard errors (_reference.TOL_REL).
TOL_DERIVED = 1e-3
# The deviance at a given theta is the same formula on the same numbers: only
# rounding differs (the cross-products are summed in another order).
TOL_DEVIANCE_AT_THETA = 1e-9


def _load(name):
    with open(DATA / name, encoding="utf-8") as f:
        return json.load(f)


def _frame(ref):
    groups = as_list(ref["columns"]["groups"])
    return pd.read_csv(DATA / f"{ref['dataset']}.csv", dtype={g: str for g in groups})


def _model_files():
    """References fitted through the estimator's parameters (not the formula door)."""
    skip = ("anova_", "metafor_", "influence_", "reform_", "catrandom_ergostool")
    return sorted(p.name for p in DATA.glob("*.json") if not p.name.startswith(skip))


def _fit_inputs(ref):
    df = _frame(ref)
    columns = ref["columns"]
    X = df[as_list(columns["X"])] if columns["X"] else df[[]]
    weights = df[columns["weights"]].to_numpy() if columns.get("weights") else None
    params = {
        "random_effects": ref["random_effects"],
        "fixed_features": as_list(ref["fixed_features"]),
        "fit_intercept": ref["fit_intercept"],
    }
    return df, X, df[columns["y"]], df[as_list(columns["groups"])], weights, params


def _assert_within(actual, expected, atol, what):
    """``|actual - expected| <= atol`` elementwise (``atol`` broadcast)."""
    err = np.abs(np.asarray(actual, dtype=float) - np.asarray(expected, dtype=float))
    bad = err > np.broadcast_to(atol, err.shape)
    assert not bad.any(), f"{what}: {int(bad.sum())} off, largest error {err.max():.3g}"


def test_references_are_present():
    assert len(list(DATA.glob("*.json"))) == 44
    assert len(_model_files()) == 30


@pytest.mark.parametrize("name", _model_files())
def test_matches_lme4(name):
    """``lmer(<formula>, <data>, weights, REML)`` as the JSON's ``call`` says: every
    quantity of ``_reference.compare_with_lme4`` within its tolerance."""
    ref = _load(name)
    df, X, y, groups, weights, params = _fit_inputs(ref)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="fixed-effect model matrix is rank deficient")
        found, model = compare_with_lme4(
            ref, X, y, groups, sample_weight=weights, return_model=True, **params
        )
    failures = [d for d in found if not d.ok]
    assert not failures, "differs from lme4:\n" + "\n".join(map(str, failures))
    assert model.aliased_features_ == as_list(ref["dropped"])
    _compare_row_diagnostics(ref, model)
    _compare_deviance_function(ref, model)


def _compare_row_diagnostics(ref, model):
    """lme4's ``hatvalues``, ``cooks.distance``, ``rstudent`` and Pearson residuals."""
    if "hatvalues" not in ref:
        return
    sigma = ref["sigma"]
    np.testing.assert_allclose(model.leverage(), ref["hatvalues"], rtol=TOL_DERIVED, atol=1e-6)
    if "pearson_residuals" in ref:
        np.testing.assert_allclose(
            model.residuals("pearson"), ref["pearson_residuals"], rtol=0, atol=1e-3 * sigma
        )
    # studentized residuals are O(1): an absolute tolerance
    np.testing.assert_allclose(
        model.studentized_residuals(), ref["rstudent"], rtol=0, atol=TOL_DERIVED
    )
    # Cook's distances near 0 (a residual near 0) carry no relative precision:
    # on the scale of the largest
    cooks = np.asarray(ref["cooks_distance"], dtype=float)
    np.testing.assert_allclose(
        model.cooks_distance(), cooks, rtol=0, atol=TOL_DERIVED * cooks.max()
    )


def _compare_deviance_function(ref, model):
    """``as.function(fit)(theta)``: the profiled deviance at lme4's thetas."""
    for point in ref.get("deviance_at_theta", []):
        theta = np.atleast_1d(np.asarray(point["theta"], dtype=float))
        value = model.model_.deviance(theta)
        assert value == pytest.approx(point["value"], rel=TOL_DEVIANCE_AT_THETA)


def test_lme4_refuses_as_many_random_effects_as_observations():
    """``(1 | Subject) + (0 + Type | Subject)`` on ergoStool: 36 observations, 36
    random effects; lme4 stops (check.nobs.vs.nRE) and so does the estimator."""
    ref = _load("catrandom_ergostool_reml.json")
    assert "number of observations (=36) <= number of random effects (=36)" in ref["lme4_error"]
    df, X, y, groups, weights, params = _fit_inputs(ref)
    with pytest.raises(ValueError, match=r"observations \(=36\) <= number of random effects"):
        MixedLinearRegressor(**params).fit(X, y, groups=groups)


def test_rank_deficient_predictions_on_new_data_match_lme4():
    ref = _load("rankdef_sleep_reml.json")
    df, X, y, groups, weights, params = _fit_inputs(ref)
    with pytest.warns(UserWarning, match=r"dropping 2 columns.*\['D2', 'cc'\]"):
        model = MixedLinearRegressor(**params).fit(X, y, groups=groups)
    held = ref["heldout_predictions"]
    rows = as_list(held["rows"]) if "rows" in held else list(range(20))
    new_groups = groups.iloc[rows].copy()
    new_groups.iloc[:10, 0] = "999"
    pred = model.predict(X.iloc[rows], groups=new_groups)
    expected = as_list(held["predict"]) if isinstance(held, dict) else held
    np.testing.assert_allclose(pred, expected, rtol=0, atol=1e-3 * ref["sigma"])


# ------------------------------------------------------------------ re.form
@pytest.mark.parametrize(
    "name", ["reform_sleep_corr_reml.json", "reform_sleep_uncorr_reml.json",
             "reform_penicillin_reml.json"],
)  # fmt: skip
def test_predictions_from_some_random_effects_match_re_form(name):
    ref = _load(name)
    df, X, y, groups, weights, params = _fit_inputs(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        model = MixedLinearRegressor(**params).fit(X, y, groups=groups)
    for case in ref["re_form"]:
        chosen = {f: as_list(c) for f, c in case["random_effects"].items()}
        pred = model.predict(X, groups=groups, random_effects=chosen)
        np.testing.assert_allclose(
            pred, case["predict"], rtol=0, atol=1e-3 * ref["sigma"], err_msg=case["re_form"]
        )
        # a factor left out of groups is the same as leaving its effects out
        if (
            chosen
            and set(chosen) != set(groups.columns)
            and all(set(c) == set(model.random_effects_[f].columns) for f, c in chosen.items())
        ):
            np.testing.assert_allclose(model.predict(X, groups=groups[list(chosen)]), pred)


# ------------------------------------------------------------------ influence
@pytest.mark.parametrize("name", ["influence_sleep_reml.json", "influence_hsb82_40_reml.json"])
def test_group_deletion_matches_lme4_influence(name):
    """lme4's ``influence(fit, groups)``: refits without each group; Cook's distance
    and dfbetas from them; and the row diagnostics of the full fit."""
    ref = _load(name)
    df, X, y, groups, weights, params = _fit_inputs(ref)
    model = MixedLinearRegressor(**params).fit(X, y, groups=groups)
    infl_ref = ref["influence"]
    infl = model.influence(groups=infl_ref["groups"])
    deleted = [str(g) for g in as_list(infl_ref["deleted"])]
    assert [str(g) for g in infl.fixed_effects_deleted.index] == deleted
    se = np.sqrt(np.diag(model.fixed_effects_cov_))
    beta = np.asarray(infl_ref["fixed_effects_deleted"], dtype=float)
    err = np.abs(infl.fixed_effects_deleted.to_numpy() - beta) / se
    assert err.max() < 1e-3, err.max()  # as the fixed effects: 1e-3 of their SE
    comps = np.asarray(infl_ref["var_cov_comps_deleted"], dtype=float)
    assert list(infl.var_cov_comps_deleted.columns) == as_list(infl_ref["var_cov_comps_names"])
    scale = np.abs(comps).max(axis=0)
    _assert_within(infl.var_cov_comps_deleted, comps, TOL_DERIVED * scale, "var_cov_comps")
    cooks = np.asarray(infl_ref["cooks_distance"], dtype=float)
    np.testing.assert_allclose(
        infl.cooks_distance().to_numpy(), cooks, rtol=TOL_DERIVED, atol=1e-6 * cooks.max()
    )
    # dfbetas are changes in standard errors: an absolute tolerance
    dfbetas = np.asarray(infl_ref["dfbetas"], dtype=float)
    np.testing.assert_allclose(infl.dfbetas().to_numpy(), dfbetas, rtol=0, atol=TOL_DERIVED)
    _compare_row_diagnostics(ref, model)


# ------------------------------------------------------------------ anova
@pytest.mark.parametrize(
    "name", ["anova_cake_reml.json", "anova_exam_reml.json", "anova_ergostool_reml.json",
             "anova_scotssec_reml.json"],
)  # fmt: skip
def test_type3_anova_matches_lmertest(name):
    """lmerTest's ``anova(lmer(formula, data))``: type III F tests with
    Satterthwaite's denominator df, from the formula door's type III hypotheses."""
    ref = _load(name)
    categorical = as_list(ref["categorical"])
    groups = as_list(ref["columns"]["groups"])
    df = pd.read_csv(DATA / f"{ref['dataset']}.csv", dtype={c: str for c in categorical + groups})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ScotsSec's singular second
        model = lmer(ref["formula"], df)
    assert ["(Intercept)"] + list(model.coef_.shape and model.fixed_effect_names_[1:]) == as_list(
        ref["model_matrix_columns"]
    )
    assert model.log_likelihood_ == pytest.approx(ref["loglik"], abs=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a boundary fit's Hessian
        table = model.anova()
    expected = pd.DataFrame(ref["anova"]).T
    assert list(table.index) == list(expected.index)
    np.testing.assert_array_equal(table["NumDF"], expected["NumDF"])
    for column in ["DenDF", "F value", "Sum Sq", "Mean Sq"]:
        np.testing.assert_allclose(
            table[column], expected[column], rtol=TOL_DERIVED, err_msg=column
        )
    np.testing.assert_allclose(
        np.log(table["Pr(>F)"]), np.log(expected["Pr(>F)"].astype(float)), rtol=1e-3
    )


# ------------------------------------------------------------------ meta-analysis
@pytest.mark.parametrize(
    "name", ["metafor_bcg_reml.json", "metafor_bcg_ml.json", "metafor_bcg_ablat_reml.json"]
)
def test_known_residual_variance_matches_metafor(name):
    """``rma(yi, vi, method)`` as an LMM: one observation per trial, prior weights
    ``1 / vi`` and ``sigma = 1`` known.  metafor's REML log-likelihood adds
    ``log|X'X| / 2``; ``loglik_lme4_convention`` removes it."""
    ref = _load(name)
    df = pd.read_csv(DATA / "bcg.csv", dtype={"trial": str})
    features = as_list(ref["columns"]["X"])
    model = MixedLinearRegressor(method="reml" if ref["reml"] else "ml", fixed_sigma=1.0)
    model.fit(df[features] if features else df[[]], df["yi"], groups=df["trial"],
              sample_weight=1.0 / df["vi"])  # fmt: skip
    assert model.random_effects_cov_["trial"][0, 0] == pytest.approx(ref["tau2"], rel=1e-4)
    beta = np.array(list(ref["beta"].values()))
    se = np.array(list(ref["se"].values()))
    _assert_within(model.fixed_effects_["estimate"], beta, 1e-4 * se, "beta")
    np.testing.assert_allclose(model.fixed_effects_["std_error"], se, rtol=1e-4)
    loglik = ref.get("loglik_lme4_convention", ref["loglik"])
    assert model.log_likelihood_ == pytest.approx(loglik, abs=1e-4)
    assert model.residual_variance_ == 1.0


def test_agreement_is_recorded():
    assert any(d.model.startswith("weighted_") for d in OBSERVED)
