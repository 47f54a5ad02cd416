"""Bad input to MixedLinearRegressor fails with a ValueError naming the problem;
random-slope specifications and label types that are valid give the same model."""

import re

import numpy as np
import pandas as pd
import pytest

from sklearn_mixed import MixedLinearRegressor
from sklearn_mixed.datasets import load_sleepstudy


@pytest.fixture(scope="module")
def sleep():
    df = load_sleepstudy()
    return df, df[["Days"]], df["Reaction"], df["Subject"]


@pytest.fixture(scope="module")
def fitted(sleep):
    df, X, y, g = sleep
    return MixedLinearRegressor().fit(X, y, groups=g)


# ------------------------------------------------------------- X and y
@pytest.mark.parametrize(
    "bad, word", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")]
)
def test_non_finite_X(sleep, bad, word):
    df, X, y, g = sleep
    Xb = X.astype(float)
    Xb.iloc[5, 0] = bad
    with pytest.raises(ValueError, match=f"Input X contains {word}"):
        MixedLinearRegressor().fit(Xb, y, groups=g)
    fitted = MixedLinearRegressor().fit(X, y, groups=g)
    with pytest.raises(ValueError, match=f"Input X contains {word}"):
        fitted.predict(Xb, groups=g)


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_non_finite_y(sleep, bad, word):
    df, X, y, g = sleep
    yb = y.copy()
    yb.iloc[5] = bad
    with pytest.raises(ValueError, match=f"Input y contains {word}"):
        MixedLinearRegressor().fit(X, yb, groups=g)


def test_non_finite_X_through_group_cols(sleep):
    df, X, y, g = sleep
    Xb = df[["Days", "Subject"]].astype({"Days": float})
    Xb.iloc[3, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        MixedLinearRegressor(group_cols=["Subject"]).fit(Xb, y)


# ------------------------------------------------------------ group labels
@pytest.mark.parametrize("kind", ["series_nan", "object_none", "float_nan"])
def test_nan_group_labels_in_fit(sleep, kind):
    df, X, y, g = sleep
    if kind == "series_nan":
        gb, name = g.copy(), "Subject"
        gb.iloc[7] = np.nan
    elif kind == "object_none":
        gb, name = g.to_numpy(dtype=object).copy(), "group"
        gb[7] = None
    else:
        gb, name = pd.factorize(g)[0].astype(float), "group"
        gb[7] = np.nan
    with pytest.raises(ValueError, match=rf"'{name}' has 1 missing labels.*rows \[7\]"):
        MixedLinearRegressor().fit(X, y, groups=gb)


def test_nan_group_labels_in_predict(sleep, fitted):
    df, X, y, g = sleep
    gb = g.copy()
    gb.iloc[[2, 11]] = np.nan
    with pytest.raises(ValueError, match=r"'Subject' has 2 missing labels.*rows \[2, 11\]"):
        fitted.predict(X, groups=gb)


def test_nan_group_labels_in_group_cols(sleep):
    df, X, y, g = sleep
    Xg = df[["Days", "Subject"]].copy()
    Xg.iloc[4, 1] = None
    with pytest.raises(ValueError, match=r"'Subject' has 1 missing labels"):
        MixedLinearRegressor(group_cols=["Subject"]).fit(Xg, y)


def test_nan_in_second_of_two_factors(sleep):
    df, X, y, g = sleep
    G = pd.DataFrame({"Subject": g, "Block": np.where(df["Days"] < 5, "early", "late")})
    G.loc[9, "Block"] = np.nan
    with pytest.raises(ValueError, match=r"'Block' has 1 missing labels"):
        MixedLinearRegressor().fit(X, y, groups=G)


# ------------------------------------------------------------- lengths
@pytest.mark.parametrize("groups_kind", ["series", "frame", "array_2d"])
def test_groups_length_mismatch_in_fit(sleep, groups_kind):
    df, X, y, g = sleep
    short = {
        "series": g.iloc[:-1],
        "frame": df[["Subject"]].iloc[:-3],
        "array_2d": np.column_stack([g, g])[:-2],
    }[groups_kind]
    n = len(short)
    with pytest.raises(ValueError, match=rf"has {n} labels but X has 180 rows"):
        MixedLinearRegressor().fit(X, y, groups=short)


def test_groups_length_mismatch_in_predict(sleep, fitted):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"'Subject' has 10 labels but X has 20 rows"):
        fitted.predict(X.iloc[:20], groups=g.iloc[:10])


def test_groups_bad_dimension(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"1-D or 2-D.*\(180, 1, 1\)"):
        MixedLinearRegressor().fit(X, y, groups=np.zeros((180, 1, 1)))


# ------------------------------------------------------- unknown names
def test_unknown_group_cols(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"group_cols \['Subj'\] not found"):
        MixedLinearRegressor(group_cols=["Subj"]).fit(df[["Days", "Subject"]], y)
    fitted = MixedLinearRegressor(group_cols=["Subject"]).fit(df[["Days", "Subject"]], y)
    with pytest.raises(ValueError, match=r"group_cols \['Subject'\] not found"):
        fitted.predict(df[["Days"]])


def test_group_cols_needs_dataframe(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"group_cols=\['Subject'\] needs X as a pandas DataFrame"):
        MixedLinearRegressor(group_cols=["Subject"]).fit(df[["Days", "Subject"]].to_numpy(), y)


def test_group_cols_and_groups_together(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"both as the `groups` argument and through group_cols"):
        MixedLinearRegressor(group_cols="Subject").fit(df[["Days", "Subject"]], y, groups=g)


def test_unknown_random_slope_name(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"random slope feature 'Day' is not a feature.*'Days'"):
        MixedLinearRegressor(random_slopes=["Day"]).fit(X, y, groups=g)


def test_random_slope_name_on_numpy_X(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"'Days' is not a feature of X.*\['x0'\]"):
        MixedLinearRegressor(random_slopes=["Days"]).fit(X.to_numpy(), y, groups=g)


def test_random_slope_index_out_of_range(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"index 3 is out of range for 1 features"):
        MixedLinearRegressor(random_slopes=[3]).fit(X, y, groups=g)


def test_random_slope_repeated_feature(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"'Subject' repeat a feature"):
        MixedLinearRegressor(random_slopes=["Days", 0]).fit(X, y, groups=g)


def test_random_slopes_dict_key_not_a_factor(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"random_slopes names grouping factor\(s\) \['Subj'\]"):
        MixedLinearRegressor(random_slopes={"Subj": ["Days"]}).fit(X, y, groups=g)


def test_covariance_dict_key_not_a_factor(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"covariance names grouping factor\(s\) \['Subj'\]"):
        MixedLinearRegressor(random_slopes=["Days"], covariance={"Subj": "diagonal"}).fit(
            X, y, groups=g
        )


def test_covariance_dict_bad_value(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"covariance must be one of.*'Subject': 'diag'"):
        MixedLinearRegressor(covariance={"Subject": "diag"}).fit(X, y, groups=g)


# ------------------------------------------------------- factor structure
def test_single_level_factor(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"'Site' has a single level"):
        MixedLinearRegressor().fit(X, y, groups=pd.Series("A", index=X.index, name="Site"))
    with pytest.raises(ValueError, match=r"'Site' has a single level"):
        MixedLinearRegressor().fit(X, y, groups=pd.DataFrame({"Subject": g, "Site": "A"}))


def test_factor_with_one_level_per_row(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"'group' has 180 levels for 180 observations"):
        MixedLinearRegressor().fit(X, y, groups=np.arange(180))


def test_duplicate_factor_names(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"names must be unique.*'Subject', 'Subject'"):
        MixedLinearRegressor().fit(X, y, groups=pd.concat([g, g], axis=1))


def test_groups_without_columns(sleep):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match="groups has no columns"):
        MixedLinearRegressor().fit(X, y, groups=pd.DataFrame(index=X.index))


# ------------------------------------------------------- rank deficiency
@pytest.mark.parametrize(
    "extra, bad",
    [
        ({"Days2": lambda d: 2 * d["Days"]}, "Days2"),
        ({"Const": lambda d: 1.0}, "Const"),
        ({"Zero": lambda d: 0.0}, "Zero"),
        ({"Half": lambda d: d["Days"] / 2 + 3}, "Half"),
    ],
)
def test_rank_deficient_X_drops_the_aliased_column(sleep, extra, bad):
    """As lme4 (check.rankX = "message+drop.cols"): the column is dropped with a
    warning naming it, and the fit is the one without it."""
    df, X, y, g = sleep
    Xb = X.assign(**extra)
    ref = MixedLinearRegressor().fit(X, y, groups=g)
    with pytest.warns(UserWarning, match=rf"rank deficient so dropping 1 column.*\['{bad}'\]"):
        m = MixedLinearRegressor().fit(Xb, y, groups=g)
    assert m.aliased_features_ == [bad]
    assert m.fixed_effect_names_ == ["(Intercept)", "Days"]
    assert m.coef_[-1] == 0.0
    # the same model: tolerance of the optimizer (relative deviance 1e-10)
    np.testing.assert_allclose(m.log_likelihood_, ref.log_likelihood_, rtol=1e-9)
    np.testing.assert_allclose(m.predict(Xb, groups=g), ref.predict(X, groups=g), rtol=1e-7)
    with pytest.warns(UserWarning, match=rf"dropping 1 column.*\['{bad}'\]"):
        MixedLinearRegressor().fit(Xb, y)  # no groups: the plain linear model too


def test_rank_deficient_numpy_X_names_column(sleep):
    df, X, y, g = sleep
    Xb = np.column_stack([X["Days"], np.ones(len(X))])
    with pytest.warns(UserWarning, match=r"dropping 1 column.*\['x1'\]"):
        m = MixedLinearRegressor().fit(Xb, y, groups=g)
    assert m.aliased_features_ == ["x1"]


def test_dummies_of_every_cell_with_an_intercept_are_aliased():
    """lme4's ``y ~ f:g + (1 | r)`` (e.g. cake's ``temperature:recipe``): 18 cell
    dummies and the intercept, rank 18.  On the Gram matrix the last pivot is
    ~1e-13 of its column's norm (rounding), above lme4's tol^2 = 1e-14: the
    rounding floor of rank.py catches it, as R's QR does (drops the last cell)."""
    rng = np.random.default_rng(0)
    f = np.repeat(list("abcdef"), 45)
    g = np.tile(np.repeat(list("ABC"), 15), 6)
    r = np.tile(np.arange(15).astype(str), 18)
    y = rng.normal(size=270) + np.tile(rng.normal(size=15), 18)
    X = pd.get_dummies(pd.Series(f) + ":" + g, dtype=float)
    with pytest.warns(UserWarning, match=r"dropping 1 column.*\['f:C'\]"):
        m = MixedLinearRegressor().fit(X, y, groups=r)
    ref = MixedLinearRegressor().fit(X.drop(columns="f:C"), y, groups=r)
    np.testing.assert_allclose(m.log_likelihood_, ref.log_likelihood_, rtol=1e-9)


def test_constant_column_without_intercept_is_fine(sleep):
    df, X, y, g = sleep
    m = MixedLinearRegressor(fit_intercept=False).fit(X.assign(Const=1.0), y, groups=g)
    ref = MixedLinearRegressor().fit(X, y, groups=g)
    np.testing.assert_allclose(m.coef_, [ref.coef_[0], ref.intercept_], rtol=1e-6)


# ---------------------------------------------------- predict: factor names
def test_predict_with_other_factor_name(sleep, fitted):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=r"\['Patient'\] do not match.*\['Subject'\]"):
        fitted.predict(X, groups=g.rename("Patient"))


def test_predict_with_other_number_of_factors(sleep, fitted):
    df, X, y, g = sleep
    G = pd.DataFrame({"Subject": g, "Extra": g})
    with pytest.raises(
        ValueError, match=r"fitted with 1 grouping factor\(s\) \['Subject'\], got 2"
    ):
        fitted.predict(X, groups=G)


def test_predict_unnamed_groups_are_positional(sleep, fitted):
    df, X, y, g = sleep
    np.testing.assert_allclose(fitted.predict(X, groups=g.to_numpy()), fitted.predict(X, groups=g))


def test_new_groups_error_names_unseen_levels(sleep):
    df, X, y, g = sleep
    m = MixedLinearRegressor(new_groups="error").fit(X, y, groups=g)
    gq = pd.Series(["999", "308", "abc", "999"], name="Subject")
    with pytest.raises(
        ValueError, match=re.escape("'Subject' has 2 level(s) not seen in fit: ['999', 'abc']")
    ):
        m.predict(X.iloc[:4], groups=gq)


def test_new_groups_error_truncates_long_list(sleep):
    df, X, y, g = sleep
    m = MixedLinearRegressor(new_groups="error").fit(X, y, groups=g)
    gq = pd.Series([f"new{i}" for i in range(12)], name="Subject")
    with pytest.raises(
        ValueError, match=r"12 level\(s\) not seen in fit: \['new0'.*'new9'\] \.\.\."
    ):
        m.predict(X.iloc[:12], groups=gq)


def test_fitted_without_groups_predict_with_groups(sleep):
    df, X, y, g = sleep
    m = MixedLinearRegressor().fit(X, y)
    with pytest.raises(ValueError, match="fitted without groups"):
        m.predict(X, groups=g)


@pytest.mark.parametrize(
    "param, value",
    [("method", "foo"), ("new_groups", "drop"), ("random_slopes", "Days"), ("max_iter", 0)],
)
def test_invalid_parameters(sleep, param, value):
    df, X, y, g = sleep
    with pytest.raises(ValueError, match=rf"'{param}' parameter"):
        MixedLinearRegressor(**{param: value}).fit(X, y, groups=g)


# ------------------------------------------- valid variants give one model
@pytest.fixture(scope="module")
def slope_fits(sleep):
    df, X, y, g = sleep
    Xn = X.to_numpy()
    return {
        "frame_name": MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=g),
        "frame_index": MixedLinearRegressor(random_slopes=[0]).fit(X, y, groups=g),
        "numpy_index": MixedLinearRegressor(random_slopes=[0]).fit(Xn, y, groups=g),
        "numpy_default_name": MixedLinearRegressor(random_slopes=["x0"]).fit(Xn, y, groups=g),
        "dict": MixedLinearRegressor(random_slopes={"Subject": ["Days"]}).fit(X, y, groups=g),
        "tuple": MixedLinearRegressor(random_slopes=("Days",)).fit(X, y, groups=g),
    }


@pytest.mark.parametrize(
    "key", ["frame_index", "numpy_index", "numpy_default_name", "dict", "tuple"]
)
def test_random_slope_specs_agree(sleep, slope_fits, key):
    df, X, y, g = sleep
    ref, m = slope_fits["frame_name"], slope_fits[key]
    expected_name = "x0" if key.startswith("numpy") else "Days"
    assert m.random_slope_names_ == {"Subject": [expected_name]}
    assert list(m.random_effects_["Subject"].columns) == ["(Intercept)", expected_name]
    np.testing.assert_allclose(m.theta_, ref.theta_, rtol=1e-6)
    Xq = X.to_numpy() if key.startswith("numpy") else X
    np.testing.assert_allclose(m.predict(Xq, groups=g), ref.predict(X, groups=g), rtol=1e-8)
    assert ref.log_likelihood_ == pytest.approx(-871.81, abs=0.01)  # lme4


def test_random_slopes_dict_only_on_one_factor(sleep):
    df, X, y, g = sleep
    G = pd.DataFrame({"Subject": g, "Block": np.where(df["Days"] % 2 == 0, "even", "odd")})
    yb = y + np.where(G["Block"] == "odd", 25.0, -25.0)
    m = MixedLinearRegressor(random_slopes={"Subject": ["Days"]}).fit(X, yb, groups=G)
    assert not m.singular_
    assert m.random_slope_names_ == {"Subject": ["Days"], "Block": []}
    assert m.random_effects_cov_["Subject"].shape == (2, 2)
    assert m.random_effects_cov_["Block"].shape == (1, 1)


@pytest.mark.parametrize("to_int", [int, np.int64, lambda s: int(s) * 1000])
def test_string_and_integer_labels_agree(sleep, to_int):
    df, X, y, g = sleep
    gi = g.map(to_int)
    by_str = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=g)
    by_int = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=gi)
    np.testing.assert_allclose(by_int.predict(X, groups=gi), by_str.predict(X, groups=g))
    np.testing.assert_allclose(by_int.theta_, by_str.theta_)
    np.testing.assert_allclose(
        by_int.random_effects_["Subject"].to_numpy(), by_str.random_effects_["Subject"].to_numpy()
    )
    assert by_int.random_effects_["Subject"].index[0] == to_int("308")
    assert by_str.random_effects_["Subject"].index[0] == "308"
    # integer labels given as a plain numpy array / list at predict time
    np.testing.assert_allclose(
        by_int.predict(X, groups=np.asarray(gi)), by_int.predict(X, groups=gi)
    )
    np.testing.assert_allclose(by_int.predict(X, groups=list(gi)), by_int.predict(X, groups=gi))


def test_default_factor_names(sleep):
    df, X, y, g = sleep
    one = MixedLinearRegressor().fit(X, y, groups=g.to_numpy())
    assert one.group_names_ == ["group"]
    block = np.where(df["Days"] < 5, 0, 1)
    two = MixedLinearRegressor().fit(
        X, y.to_numpy() + 30 * block, groups=np.column_stack([g.to_numpy(), block])
    )
    assert two.group_names_ == ["group_1", "group_2"]
    assert two.n_groups_ == {"group_1": 18, "group_2": 2}


def test_no_fixed_effects_at_all(sleep):
    """lme4's ``y ~ 0 + (1 | g)`` fits (REML equals ML without fixed effects);
    without groups there is nothing to fit."""
    _, X, y, g = sleep
    reml = MixedLinearRegressor(fit_intercept=False).fit(X[[]], y, groups=g)
    ml = MixedLinearRegressor(fit_intercept=False, method="ml").fit(X[[]], y, groups=g)
    assert reml.fixed_effect_names_ == [] and reml.intercept_ == 0.0
    np.testing.assert_allclose(reml.log_likelihood_, ml.log_likelihood_, rtol=1e-10)
    with pytest.raises(ValueError, match="0 feature"):
        MixedLinearRegressor(fit_intercept=False).fit(X[[]], y)


def test_a_separated_binary_response_matches_lme4():
    """Two levels of 15 rows that separate a binary response (all 0, all 1).

    The Laplace criterion still has an interior optimum (its log-determinant
    grows with theta), found by lme4 1.1-31:
    ``glmer(y ~ 1 + (1 | g), data.frame(y = rep(0:1, each = 15),
    g = factor(rep(c("a", "b"), each = 15))), family = binomial)``:
    theta 74.03, intercept 14.18, modes (-22.39, 0.054), logLik -1.652246.
    The point with beta = 0 and symmetric modes is a saddle (stationary by
    symmetry), where a gradient method stops: the fit steps off it along the
    Hessian's negative curvature.  Once PIRLS's working model became singular
    here (a raw LinAlgError).  The likelihood is flat in theta near the
    optimum, so theta is compared to 2% and the log-likelihood must be at
    least lme4's (to its printed 1e-6)."""
    from sklearn_mixed import MixedLogisticRegression

    y = np.repeat([0, 1], 15)
    groups = np.repeat(["a", "b"], 15)
    model = MixedLogisticRegression().fit(np.empty((30, 0)), y, groups=groups)
    assert model.log_likelihood_ >= -1.652246 - 1e-6
    np.testing.assert_allclose(model.model_.theta, [74.02585], rtol=0.02)
    assert not model.model_.result.separated
    proba = model.predict_proba(np.empty((2, 0)), groups=np.array(["a", "b"]))[:, 1]
    assert proba[0] < 1e-3 and proba[1] > 1 - 1e-3


def test_a_glmm_start_far_out_is_brought_inside_the_bound():
    """A start of theta beyond the bound (core.glmm.THETA_MAX, where the
    working model's fixed-effect block cancels to rounding noise) is clipped
    into it, and the fit reaches the same optimum as from the default start
    (10 rows all 0 and 20 all 1, each set one level; lme4 1.1-31's
    ``glmer(y ~ 1 + (1 | g), family = binomial)`` there: logLik -1.649284)."""
    from sklearn_mixed import MixedLogisticRegression
    from sklearn_mixed.core.glmm import THETA_MAX, GeneralizedLinearMixedModel

    g = np.repeat([0, 1], [10, 20])
    model = MixedLogisticRegression().fit(np.empty((30, 0)), g, groups=g)
    rows = model.model_.data
    far = GeneralizedLinearMixedModel(rows, "binomial").fit(start=np.array([100 * THETA_MAX]))
    assert far.result.deviance <= model.model_.result.deviance + 1e-6
    assert -0.5 * far.result.deviance >= -1.649284 - 1e-6
