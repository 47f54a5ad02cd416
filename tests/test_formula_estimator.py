"""The formula estimators as scikit-learn estimators on raw data.

``LmerRegressor``, ``GlmerClassifier`` and ``GlmerRegressor`` take the lme4
formula as parameter and the raw DataFrame as ``X``: checked here against
the array estimators they wrap (same model, same numbers: tolerances 1e-10,
the two run the same code), with scikit-learn's meta-estimators without
metadata routing, and with ``check_estimator``.  The lme4 agreement of the
formulas is in ``test_formula_lme4.py``; the fits without groups (the
``NoGroupsWarning`` / error) are here too.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_predict, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_mixed import (
    CaterpillarDisplay,
    GlmerClassifier,
    GlmerRegressor,
    LmerRegressor,
    MixedLinearRegressor,
    MixedLogisticRegression,
    MixedPoissonRegressor,
    NoGroupsWarning,
    anova,
    from_formula,
    glmer,
    lmer,
)
from sklearn_mixed.datasets import load_contraception, load_dietox, load_sleepstudy

# The check's data: a target that depends on every column, a formula that reads x0
# (and groups by round(x1)); its training R² is below the check's bar.
_ONE_COLUMN = {"check_regressors_train": "the formula reads x0 only; the check's target "
               "depends on every column"}  # fmt: skip
# As for MixedLogisticRegression: a saturated design's ML estimate diverges, the
# weighted and repeated fits stop at different points.
_SATURATED = {"check_sample_weight_equivalence_on_dense_data": "saturated design diverges"}


@parametrize_with_checks(
    [
        LmerRegressor("y ~ x0 + (1 | round(x1))"),
        GlmerClassifier("y ~ x0 + (1 | round(x1))"),
        GlmerRegressor("y ~ x0 + (1 | round(x1))"),
    ],
    expected_failed_checks=lambda est: (
        _SATURATED if isinstance(est, GlmerClassifier) else _ONE_COLUMN
    ),
)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular fits of the check's random data
        check(estimator)


@pytest.fixture(scope="module")
def pigs():
    df = load_dietox().drop(columns="Feed")
    return df


QUADRATIC = "Weight ~ Time + I(Time^2) + (Time | Pig)"
FORMULAS = [
    QUADRATIC,
    "log(Weight) ~ Time * CuF + (1 | Pig)",
    "Weight ~ poly(Time, 2) + factor(Evit) + (1 | Litter) + (1 | Pig)",
    "Weight ~ Time + offset(Start) + (log(Time) | Pig)",
    "sqrt(Weight) ~ scale(Time) + (Time || Pig)",
]


@pytest.fixture(scope="module")
def fits(pigs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {f: LmerRegressor(f).fit(pigs) for f in FORMULAS}


@pytest.mark.parametrize("formula", FORMULAS)
def test_predict_on_the_training_data_is_the_fitted_values(pigs, fits, formula):
    model = fits[formula]
    response = model.design_.response(pigs).to_numpy()
    np.testing.assert_allclose(model.predict(pigs), response - model.residuals(),
                               rtol=1e-10, atol=1e-10)  # fmt: skip
    assert model.score(pigs) == pytest.approx(
        1 - np.sum(model.residuals() ** 2) / np.sum((response - response.mean()) ** 2)
    )


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_predict_on_rows_of_new_data(pigs, fits, data):
    """Any rows, in any order, without the response; unseen pigs get the
    population prediction (lme4's allow.new.levels = TRUE)."""
    formula = data.draw(st.sampled_from(FORMULAS))
    model = fits[formula]
    rows = data.draw(st.lists(st.integers(0, len(pigs) - 1), min_size=1, max_size=30))
    new = pigs.iloc[rows].drop(columns="Weight")
    full = model.predict(pigs)
    np.testing.assert_allclose(model.predict(new), full[rows], rtol=1e-12)
    unseen = new.assign(Pig="a new pig", Litter="a new litter")
    population = model.predict(new, random_effects=[])
    np.testing.assert_allclose(model.predict(unseen), population, rtol=1e-12)
    no_groups = new.drop(columns=["Pig", "Litter"])
    np.testing.assert_allclose(model.predict(no_groups, random_effects=[]), population)


def test_same_model_as_the_array_estimator(pigs, fits):
    model = fits["log(Weight) ~ Time * CuF + (1 | Pig)"]
    X = pd.get_dummies(pigs["CuF"], drop_first=True, dtype=float).add_prefix("CuF")
    X.insert(0, "Time", pigs["Time"].astype(float))
    X["Time:CuFCu035"] = X["Time"] * X["CuFCu035"]
    X["Time:CuFCu175"] = X["Time"] * X["CuFCu175"]
    array = MixedLinearRegressor().fit(X, np.log(pigs["Weight"]), groups=pigs["Pig"])
    np.testing.assert_allclose(model.coef_, array.coef_, rtol=1e-8)
    assert model.log_likelihood_ == pytest.approx(array.log_likelihood_, abs=1e-8)
    assert model.fixed_effect_names_ == ["(Intercept)"] + list(X.columns)


def test_errors_on_new_data(fits, pigs):
    model = fits["log(Weight) ~ Time * CuF + (1 | Pig)"]
    with pytest.raises(ValueError, match=r"'CuF' has level\(s\) \['Cu999'\] not seen"):
        model.predict(pigs.head(3).assign(CuF="Cu999"))
    with pytest.raises(ValueError, match=r"grouping column\(s\) \['Pig'\].*random_effects"):
        model.predict(pigs.head(3).drop(columns="Pig"))
    with pytest.raises(ValueError, match=r"\['Time'\].*not found"):
        model.predict(pigs.head(3).drop(columns="Time"))
    with pytest.raises(ValueError, match=r"used by the formula.*\{'Time': 3\}"):
        model.predict(pigs.head(3).assign(Time=np.nan))


def test_y_from_X_or_given(pigs, fits):
    model = fits[QUADRATIC]
    same = LmerRegressor(QUADRATIC).fit(pigs, pigs["Weight"])
    np.testing.assert_allclose(same.coef_, model.coef_, rtol=1e-10)
    without = LmerRegressor(QUADRATIC).fit(pigs.drop(columns="Weight"), pigs["Weight"])
    np.testing.assert_allclose(without.coef_, model.coef_, rtol=1e-10)
    with pytest.raises(ValueError, match="y differs from the formula's response 'log"):
        LmerRegressor("log(Weight) ~ Time + (1 | Pig)").fit(pigs, pigs["Weight"])
    with pytest.raises(ValueError, match="requires y to be passed"):
        LmerRegressor(QUADRATIC).fit(pigs.drop(columns="Weight"))
    with pytest.raises(ValueError, match="Unknown label type"):
        LmerRegressor("CuF ~ Time + (1 | Pig)").fit(pigs)


def test_attributes_and_reading_methods_are_the_inner_ones(fits):
    model = fits[QUADRATIC]
    inner = model.estimator_
    assert model.fixed_effect_names_ == ["(Intercept)", "Time", "I(Time^2)"]
    pd.testing.assert_frame_equal(model.variance_components_, inner.variance_components_)
    assert model.summary() == inner.summary()
    assert "fixed_effects_" in dir(model)
    assert list(model.feature_names_in_) == ["Weight", "Time", "Pig", "Evit", "Cu", "Litter",
                                             "Start", "CuF"]  # fmt: skip
    assert model.n_features_in_ == 8
    with pytest.raises(AttributeError):
        LmerRegressor(QUADRATIC).fixed_effects_  # noqa: B018
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smaller = lmer("Weight ~ Time + (Time | Pig)", load_dietox())
    table = anova(smaller, model)
    assert list(table.index) == ["model 1", "model 2"]
    assert table["Pr(>Chisq)"].iloc[1] < 1e-10  # the curvature is real
    display = CaterpillarDisplay.from_estimator(model)
    assert display is not None


# ------------------------------------------------------------ scikit-learn tools


def test_grid_search_over_formulas_with_group_kfold(pigs):
    """Routing off (scikit-learn's default): the groups are columns of X."""
    assert not sklearn.get_config()["enable_metadata_routing"]
    grid = {"formula": ["Weight ~ Time + (1 | Pig)", QUADRATIC]}
    search = GridSearchCV(LmerRegressor(QUADRATIC), grid, cv=GroupKFold(4),
                          scoring="neg_root_mean_squared_error")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(pigs, pigs["Weight"], groups=pigs["Pig"])
    assert search.best_params_ == {"formula": QUADRATIC}
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] > scores[0]  # the quadratic curve predicts new pigs better
    new = pigs.tail(5).drop(columns="Weight")
    np.testing.assert_allclose(search.predict(new), search.best_estimator_.predict(new))


def test_cross_val_predict_and_pipeline(pigs):
    model = LmerRegressor("Weight ~ Time + I(Time^2) + (1 | Pig)")
    held_out = cross_val_predict(model, pigs, pigs["Weight"], cv=GroupKFold(3),
                                 groups=pigs["Pig"])  # fmt: skip
    in_sample = lmer("Weight ~ Time + I(Time^2) + (1 | Pig)", pigs).predict(pigs)
    rmse = lambda p: np.sqrt(np.mean((pigs["Weight"] - p) ** 2))  # noqa: E731
    assert rmse(in_sample) < rmse(held_out)  # new pigs: population predictions
    weeks = FunctionTransformer(lambda d: d.assign(Week=d["Time"] - 1))
    pipe = make_pipeline(weeks, LmerRegressor("Weight ~ Week + I(Week^2) + (Week | Pig)"))
    pipe.fit(pigs)
    np.testing.assert_allclose(
        pipe.predict(pigs), lmer(QUADRATIC, pigs).predict(pigs), rtol=1e-6
    )  # fmt: skip  (shifting time is a reparametrization)


def test_from_formula_groups_work_with_group_splitters(pigs):
    fm = from_formula(QUADRATIC, pigs)
    assert isinstance(fm.groups, pd.Series) and fm.groups.name == "Pig"
    folds = list(GroupKFold(3).split(fm.X, fm.y, groups=fm.groups))
    assert len(folds) == 3
    nested = from_formula("Weight ~ Time + (1 | Litter/Pig)", pigs)
    assert list(nested.groups.columns) == ["Litter", "Litter:Pig"]
    assert len(list(GroupKFold(3).split(nested.X, groups=nested.groups["Litter"]))) == 3


# ------------------------------------------------------------ the GLMM twins


@pytest.fixture(scope="module")
def contraception():
    return load_contraception()


def test_glmer_classifier_is_the_array_estimator(contraception):
    df = contraception
    formula = "use ~ age + I(age^2) + urban + (1 | district)"
    model = GlmerClassifier(formula).fit(df)
    X = pd.DataFrame({"age": df["age"], "I(age^2)": df["age"] ** 2,
                      "urbanY": (df["urban"] == "Y").astype(float)})  # fmt: skip
    array = MixedLogisticRegression().fit(X, df["use"], groups=df["district"])
    np.testing.assert_allclose(model.coef_, array.coef_, rtol=1e-8)
    np.testing.assert_allclose(model.predict_proba(df.head(20)),
                               array.predict_proba(X.head(20), groups=df["district"].head(20)),
                               rtol=1e-8)  # fmt: skip
    assert list(model.classes_) == ["N", "Y"]
    assert model.score(df) == pytest.approx(np.mean(model.predict(df) == df["use"]))
    assert glmer(formula, df).log_likelihood_ == pytest.approx(model.log_likelihood_)


def test_cbind_response_is_proportions_with_trials():
    """lme4's cbind(incidence, size - incidence) ~ period + (1 | herd)."""
    cbpp = pd.DataFrame({
        "herd": [str(h) for h in range(1, 9) for _ in range(2)],
        "period": ["1", "2"] * 8,
        "incidence": [2, 3, 4, 0, 3, 1, 1, 2, 0, 2, 1, 1, 5, 3, 0, 1],
        "size": [14, 12, 9, 5, 22, 18, 21, 16, 8, 16, 10, 9, 20, 16, 10, 9],
    })  # fmt: skip
    counts = GlmerClassifier("cbind(incidence, size - incidence) ~ period + (1 | herd)")
    counts.fit(cbpp)
    prop = GlmerClassifier("prop ~ period + (1 | herd)")
    prop.fit(cbpp.assign(prop=cbpp["incidence"] / cbpp["size"]), sample_weight=cbpp["size"])
    np.testing.assert_allclose(counts.coef_, prop.coef_, rtol=1e-10)
    assert counts.log_likelihood_ == pytest.approx(prop.log_likelihood_, abs=1e-10)


def test_glmer_regressor_offsets_from_the_formula():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"g": rng.integers(0, 25, 500).astype(str), "x": rng.normal(size=500),
                       "t": rng.uniform(1, 4, 500)})  # fmt: skip
    b = rng.normal(scale=0.4, size=25)[df["g"].astype(int)]
    df["y"] = rng.poisson(df["t"] * np.exp(0.2 + 0.5 * df["x"] + b))
    model = GlmerRegressor("y ~ x + offset(log(t)) + (1 | g)").fit(df)
    array = MixedPoissonRegressor().fit(df[["x"]], df["y"], groups=df["g"],
                                        offset=np.log(df["t"]))  # fmt: skip
    np.testing.assert_allclose(model.coef_, array.coef_, rtol=1e-8)
    head = df.head(9)
    expected = array.predict(head[["x"]], groups=head["g"], offset=np.log(head["t"]))
    np.testing.assert_allclose(model.predict(head), expected, rtol=1e-8)
    with pytest.raises(ValueError, match="Poisson family only"):
        GlmerClassifier("I(y > 2) ~ x + offset(log(t)) + (1 | g)").fit(df)


# ------------------------------------------------------------ fits without groups


def test_configured_random_effects_without_groups_is_an_error():
    df = load_sleepstudy()
    X, y, g = df[["Days"]], df["Reaction"], df["Subject"]
    for estimator in (MixedLinearRegressor(random_slopes=["Days"]),
                      MixedLinearRegressor(covariance={"Subject": "diagonal"}),
                      MixedLogisticRegression(random_effects={"Subject": [["1"]]})):  # fmt: skip
        target = y if isinstance(estimator, MixedLinearRegressor) else y > 300
        with pytest.raises(ValueError, match="no groups.*set_fit_request.*group_cols"):
            cross_validate(estimator, X, target, groups=g, cv=GroupKFold(3),
                           error_score="raise")  # fmt: skip


def test_default_estimator_without_groups_warns(pigs):
    df = load_sleepstudy()
    with pytest.warns(NoGroupsWarning, match="no groups.*enable_metadata_routing"):
        cross_validate(MixedLinearRegressor(), df[["Days"]], df["Reaction"],
                       groups=df["Subject"], cv=GroupKFold(3))  # fmt: skip
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("error", NoGroupsWarning)
        est = MixedLinearRegressor().set_fit_request(groups=True)
        cross_validate(
            est, df[["Days"]], df["Reaction"], cv=GroupKFold(3), params={"groups": df["Subject"]}
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoGroupsWarning)
        MixedLinearRegressor(group_cols=["Subject"]).fit(df[["Days", "Subject"]], df["Reaction"])


# ------------------------------------------------------------ more of R's meaning


def test_ordered_categorical_is_an_ordered_factor(pigs):
    """A pandas ordered categorical is R's ordered factor: polynomial contrasts
    (contr.poly), as ``ordered(Evit)`` (whose lme4 fit is in test_formula_lme4.py)."""
    levels = pd.CategoricalDtype([1, 2, 3], ordered=True)
    df = pigs.assign(EvitO=pigs["Evit"].astype(levels))
    by_dtype = LmerRegressor("Weight ~ Time + EvitO + (1 | Pig)").fit(df)
    by_call = LmerRegressor("Weight ~ Time + ordered(Evit) + (1 | Pig)").fit(df)
    assert by_dtype.fixed_effect_names_ == ["(Intercept)", "Time", "EvitO.L", "EvitO.Q"]
    np.testing.assert_allclose(by_dtype.coef_, by_call.coef_, rtol=1e-10)
    X = by_dtype.design_.features(df)
    np.testing.assert_allclose(X.loc[df["Evit"] == 1, "EvitO.L"], -np.sqrt(0.5))  # contr.poly(3)
    np.testing.assert_allclose(X.loc[df["Evit"] == 2, "EvitO.Q"], -np.sqrt(2 / 3))
    # the same column space: the same ML fit (REML's log|X'V^-1 X| depends on the coding)
    ml = {"method": "ml"}
    unordered = LmerRegressor("Weight ~ Time + factor(Evit) + (1 | Pig)", **ml).fit(df)
    ordered = LmerRegressor("Weight ~ Time + EvitO + (1 | Pig)", **ml).fit(df)
    assert unordered.log_likelihood_ == pytest.approx(ordered.log_likelihood_, abs=1e-7)


def test_lmer_weights_are_prior_weights(pigs):
    w = np.linspace(0.5, 2.0, len(pigs))
    by_name = lmer(QUADRATIC, pigs.assign(w=w), weights="w")
    by_fit = LmerRegressor(QUADRATIC).fit(pigs, sample_weight=w)
    np.testing.assert_allclose(by_name.coef_, by_fit.coef_, rtol=1e-10)
    array = MixedLinearRegressor(random_slopes=["Time"]).fit(
        pigs[["Time"]].assign(**{"I(Time^2)": pigs["Time"] ** 2.0}), pigs["Weight"],
        groups=pigs["Pig"], sample_weight=w)  # fmt: skip
    np.testing.assert_allclose(by_fit.coef_, array.coef_, rtol=1e-8)


def test_predict_with_some_factors_needs_only_their_columns(pigs):
    """lme4's re.form = ~(1 | Litter): the Pig column is not needed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LmerRegressor("Weight ~ Time + (1 | Litter) + (1 | Pig)").fit(pigs)
    rows = pigs.head(4)
    litter_only = model.predict(rows.drop(columns="Pig"), random_effects=["Litter"])
    expected = model.predict(rows.assign(Pig="a new pig"))
    np.testing.assert_allclose(litter_only, expected, rtol=1e-12)
    with pytest.raises(ValueError, match=r"grouping column\(s\) \['Litter'\]"):
        model.predict(rows.drop(columns="Litter"), random_effects=["Litter"])


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_row_order_and_labels_do_not_matter(pigs, fits, seed):
    """Permuting the rows and renaming the pigs and litters: the same fit (optimizer
    precision, 1e-6 relative) and the same predictions, row for row."""
    formula = "Weight ~ poly(Time, 2) + factor(Evit) + (1 | Litter) + (1 | Pig)"
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pigs))
    renamed = pigs.iloc[order].assign(
        Pig=lambda d: "p" + d["Pig"], Litter=lambda d: "L" + d["Litter"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LmerRegressor(formula).fit(renamed)
    reference = fits[formula]
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-6, atol=1e-8)
    assert model.log_likelihood_ == pytest.approx(reference.log_likelihood_, abs=1e-7)
    np.testing.assert_allclose(model.predict(renamed), reference.predict(pigs)[order], rtol=1e-6)


def test_categorical_response_models_the_second_category(contraception):
    """R's glmer models P(second level): a categorical response in category order."""
    df = contraception.assign(use=pd.Categorical(contraception["use"], categories=["Y", "N"]))
    model = GlmerClassifier("use ~ age + urban + (1 | district)").fit(df)
    plain = GlmerClassifier("use ~ age + urban + (1 | district)").fit(contraception)
    assert list(model.classes_) == ["Y", "N"] and list(plain.classes_) == ["N", "Y"]
    np.testing.assert_allclose(model.coef_, -plain.coef_, rtol=1e-6)
    np.testing.assert_allclose(model.predict_proba(df.head(5)),
                               plain.predict_proba(df.head(5))[:, ::-1], rtol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(model.predict(df.head(50)), plain.predict(df.head(50)))
    assert model.score(df) == pytest.approx(plain.score(contraception))


def test_r_expressions_on_factors(pigs):
    """``CuF == "Cu175"`` compares labels; ``as.numeric(f)`` is the level code, as R."""
    model = LmerRegressor('Weight ~ Time + I(CuF == "Cu175") + as.numeric(CuF) + (1 | Pig)')
    X = model.fit(pigs).design_.features(pigs)
    np.testing.assert_array_equal(X['I(CuF == "Cu175")TRUE'], pigs["CuF"] == "Cu175")
    np.testing.assert_array_equal(X["as.numeric(CuF)"], pigs["CuF"].map(
        {"Cu000": 1, "Cu035": 2, "Cu175": 3}))  # fmt: skip
    with pytest.raises(ValueError, match=r"unknown function 'C'.*contrasts="):
        LmerRegressor("Weight ~ C(CuF, sum) + (1 | Pig)").fit(pigs)
    with pytest.raises(ValueError, match=r"splines::ns are not supported"):
        LmerRegressor("Weight ~ splines::ns(Time, 3) + (1 | Pig)").fit(pigs)
    ordered = pigs.assign(CuO=pd.Categorical(pigs["CuF"], ordered=True))
    names = LmerRegressor("Weight ~ factor(CuO) + (1 | Pig)").fit(ordered).fixed_effect_names_
    assert names == ["(Intercept)", "factor(CuO).L", "factor(CuO).Q"]  # still ordered, as R


def test_lmer_offset_argument_and_row_selection(pigs):
    """lme4's lmer(..., offset = Start) is + offset(Start); subset= is refused."""
    by_argument = lmer("Weight ~ Time + (1 | Pig)", pigs, offset="Start")
    in_formula = lmer("Weight ~ Time + offset(Start) + (1 | Pig)", pigs)
    np.testing.assert_allclose(by_argument.coef_, in_formula.coef_, rtol=1e-10)
    np.testing.assert_allclose(by_argument.predict(pigs.assign(**{"(offset)": pigs["Start"]})),
                               in_formula.predict(pigs), rtol=1e-10)  # fmt: skip
    with pytest.raises(ValueError, match="select the rows of the data first"):
        lmer("Weight ~ Time + (1 | Pig)", pigs, subset=pigs["Time"] > 2)


# ------------------------------------------------------------ review of the formula door


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(3)
    n = 240
    df = pd.DataFrame({
        "x": rng.normal(size=n), "z": rng.normal(size=n),
        "h": rng.choice(["p", "q"], n), "g": rng.integers(0, 12, n).astype(str),
    })  # fmt: skip
    df["y"] = df["x"] + 0.5 * (df["h"] == "q") + rng.normal(size=n)
    return df


def test_text_levels_in_r_collation(small):
    """R sorts text regardless of case first (en_US): a < b < B, "no" < "Yes"."""
    df = small.assign(cs=np.tile(["a", "b", "B"], len(small) // 3))
    model = LmerRegressor("y ~ cs + (1 | g)").fit(df)
    assert model.fixed_effect_names_ == ["(Intercept)", "csb", "csB"]
    labels = small.assign(lab=np.where(small["y"] > 0.3, "Yes", "no"))
    clf = GlmerClassifier("lab ~ x + (1 | g)").fit(labels)
    assert list(clf.classes_) == ["no", "Yes"]  # glmer models P("Yes")
    assert clf.coef_[0] > 0 and clf.score(labels) == pytest.approx(
        np.mean(clf.predict(labels) == labels["lab"])
    )


def test_contrasts_apply_to_the_fixed_part_only(small):
    """lme4's contrasts argument codes the fixed part; random terms keep R's default."""
    model = LmerRegressor("y ~ h + (h | g)", method="ml", contrasts={"h": "contr.sum"})
    model.fit(small)
    assert model.fixed_effect_names_ == ["(Intercept)", "h1"]
    assert model.random_slope_names_ == {"g": ["hq"]}
    # the same model: ML is invariant to the coding of the fixed part (REML is not)
    default = LmerRegressor("y ~ h + (h | g)", method="ml").fit(small)
    assert model.log_likelihood_ == pytest.approx(default.log_likelihood_, abs=1e-6)


def test_variables_of_a_random_term_in_its_own_order(small):
    model = LmerRegressor("y ~ z * x + (x * z || g)").fit(small)
    assert model.random_slope_names_["g"] == ["x", "z", "x:z"]


def test_transforms_in_offsets_groups_and_counts_are_learned(small):
    """scale() inside offset(), a grouping expression and cbind(): learned at fit."""
    offset = LmerRegressor("y ~ x + offset(scale(z)) + (1 | g)").fit(small)
    z = (small["z"] - small["z"].mean()) / small["z"].std()
    np.testing.assert_allclose(offset.design_.offset(small), z)
    new = small.head(3).assign(z=small["z"].head(3) + 1.0)
    np.testing.assert_allclose(offset.design_.offset(new), z.head(3) + 1.0 / small["z"].std())
    grouped = LmerRegressor("y ~ x + (1 | I(scale(x) > 0))").fit(small)
    assert grouped.n_groups_ == {"I(scale(x) > 0)": 2}


def test_cbind_responses_are_binomial_only(small):
    df = small.assign(s=np.arange(len(small)) % 4, t=4)
    clf = GlmerClassifier("cbind(s, t - s) ~ x + (1 | g)").fit(df)
    with pytest.raises(ValueError, match="no label per row"):
        clf.score(df)
    with pytest.raises(ValueError, match="is read from X: pass y=None"):
        GlmerClassifier("cbind(s, t - s) ~ x + (1 | g)").fit(df, df["s"] > 1)
    with pytest.raises(ValueError, match="binomial: GlmerClassifier"):
        GlmerRegressor("cbind(s, t - s) ~ x + (1 | g)").fit(df)


def test_r_details(small):
    """round() as R (1.85 -> 1.9), logical or inside I(), a missing argument, REML."""
    df = small.assign(r=1.85)
    model = LmerRegressor("y ~ x + round(r, 1) + (1 | g)")
    with pytest.warns(UserWarning, match="rank deficient"):  # round(r, 1) is constant
        model.fit(df)
    np.testing.assert_allclose(model.design_.features(df)["round(r, 1)"], 1.9)
    either = LmerRegressor("y ~ I(x > 1 | z > 1) + (1 | g)").fit(small)
    assert either.fixed_effect_names_ == ["(Intercept)", "I(x > 1 | z > 1)TRUE"]
    with pytest.raises(ValueError, match="argument is missing"):
        LmerRegressor("y ~ log(x,) + (1 | g)").fit(small)
    with pytest.raises(ValueError, match="REML must be True or False"):
        lmer("y ~ x + (1 | g)", small, REML="no")


def test_forwarding_is_for_fitted_attributes_and_reading_methods(small):
    model = LmerRegressor("y ~ x + (1 | g)")
    with pytest.raises(NotFittedError):
        model.score(small)
    model.fit(small)
    assert hasattr(model, "summary") and hasattr(model, "coef_")
    assert not hasattr(model, "random_slopes")  # the inner estimator's parameters
    assert not hasattr(model, "predict_proba")
    clf = GlmerClassifier("I(y > 0) ~ x + (1 | g)").fit(small)
    assert not hasattr(clf, "fit_proportions")  # a fit on arrays, outside the formula


def test_predict_requests_random_effects_when_routing(small):
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(FunctionTransformer(), LmerRegressor("y ~ x + (1 | g)"))
        pipe.fit(small)
        population = pipe.predict(small.drop(columns="g"), random_effects=[])
    expected = LmerRegressor("y ~ x + (1 | g)").fit(small).predict(small, random_effects=[])
    np.testing.assert_allclose(population, expected)


def test_from_formula_takes_contrasts(small):
    fm = from_formula("y ~ h + (1 | g)", small, contrasts={"h": "contr.sum"})
    assert list(fm.X.columns) == ["h1"]
