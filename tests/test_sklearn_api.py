"""scikit-learn API of MixedLinearRegressor: estimator checks, metadata routing,
the ``group_cols`` path, cloning/pickling, unseen levels and ``return_std``."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    cross_val_predict,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from sklearn_mixed import (
    CrossedEffectsRegressor,
    MixedLinearRegressor,
    PopulationPredictionWarning,
    make_group_scorer,
)
from sklearn_mixed.datasets import load_sleepstudy

KF = KFold(5, shuffle=True, random_state=0)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def sleep():
    df = load_sleepstudy()
    return df, df[["Days"]], df["Reaction"], df["Subject"]


@pytest.fixture(scope="module")
def grouped():
    """Data where the grouping factor explains most of the variance."""
    rng = np.random.default_rng(0)
    n_groups, per = 20, 15
    g = np.repeat([f"g{j:02d}" for j in range(n_groups)], per)
    u = rng.normal(0, 5.0, n_groups)  # random intercepts
    v = rng.normal(0, 1.0, n_groups)  # random slopes on x1
    X = pd.DataFrame({"x1": rng.normal(size=g.size), "x2": rng.normal(size=g.size)})
    y = (
        1.0
        + X["x1"] * (1.0 + np.repeat(v, per))
        - 0.5 * X["x2"]
        + np.repeat(u, per)
        + rng.normal(0, 1.0, g.size)
    )
    return X, y.to_numpy(), pd.Series(g, name="site")


class SpyRegressor(MixedLinearRegressor):
    """Records the groups that ``predict`` receives (clones share the log)."""

    calls = []

    def predict(self, X, groups=None, return_std=False):
        SpyRegressor.calls.append((len(X), None if groups is None else len(groups)))
        return super().predict(X, groups=groups, return_std=return_std)


@pytest.fixture
def spy():
    SpyRegressor.calls = []
    return SpyRegressor


def _assert_predict_got_groups(calls):
    assert calls, "predict was never called"
    assert all(n_groups == n_rows for n_rows, n_groups in calls), calls


# ------------------------------------------------------- estimator checks
# lme4's weights are precision weights (residual variance sigma^2 / w): a row of
# weight 2 is not two copies of the row, as scikit-learn's frequency-weight check
# assumes (the likelihood counts n rows, not sum(w)).
_PRECISION_WEIGHTS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "prior (precision) weights, as lme4's, are not frequency weights"
    ),
}


@parametrize_with_checks(
    [MixedLinearRegressor(), CrossedEffectsRegressor()],
    expected_failed_checks=lambda est: _PRECISION_WEIGHTS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_without_groups_is_linear_regression(grouped):
    X, y, _ = grouped
    m = MixedLinearRegressor().fit(X, y)
    lr = LinearRegression().fit(X, y)
    np.testing.assert_allclose(m.coef_, lr.coef_, rtol=1e-8)
    np.testing.assert_allclose(m.intercept_, lr.intercept_, rtol=1e-8)
    assert m.group_names_ == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no PopulationPredictionWarning
        np.testing.assert_allclose(m.predict(X), lr.predict(X), rtol=1e-8)


def test_default_metadata_requests():
    routing = MixedLinearRegressor().get_metadata_routing()
    for method in ("fit", "predict", "score"):
        assert getattr(routing, method).requests["groups"] is True


# -------------------------------------------------------- metadata routing
def test_pipeline_routes_groups(grouped):
    X, y, g = grouped
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(StandardScaler(), MixedLinearRegressor()).fit(X, y, groups=g)
        with warnings.catch_warnings():
            warnings.simplefilter("error", PopulationPredictionWarning)
            pred = pipe.predict(X, groups=g)
            score = pipe.score(X, y, groups=g)
        with pytest.warns(PopulationPredictionWarning):
            pop = pipe.predict(X)
    final = pipe[-1]
    assert final.group_names_ == ["site"]
    Xs = pipe[0].transform(X)
    np.testing.assert_allclose(pred, final.predict(Xs, groups=g))
    assert score == pytest.approx(r2_score(y, pred))
    assert score > 0.9
    assert r2_score(y, pop) < 0.3  # the groups carry most of the variance


@pytest.mark.parametrize("scoring", [None, "group_r2"])
def test_cross_validate_routes_groups_to_predict(grouped, spy, scoring):
    X, y, g = grouped
    scorer = make_group_scorer(r2_score) if scoring == "group_r2" else None
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(StandardScaler(), spy())
        with warnings.catch_warnings():
            warnings.simplefilter("error", PopulationPredictionWarning)
            res = cross_validate(pipe, X, y, cv=KF, scoring=scorer, params={"groups": g})
    _assert_predict_got_groups(spy.calls)
    assert len(spy.calls) == KF.get_n_splits()
    lr = cross_val_score(LinearRegression(), X, y, cv=KF)
    assert res["test_score"].mean() > 0.9
    assert lr.mean() < 0.3
    # Held-out scores equal scoring each fold's model with the fold's groups.
    for k, (train, test) in enumerate(KF.split(X)):
        m = MixedLinearRegressor().fit(
            StandardScaler().fit(X.iloc[train]).transform(X.iloc[train]),
            y[train],
            groups=g.iloc[train],
        )
        Xt = StandardScaler().fit(X.iloc[train]).transform(X.iloc[test])
        assert res["test_score"][k] == pytest.approx(
            r2_score(y[test], m.predict(Xt, groups=g.iloc[test])), rel=1e-6
        )


def test_builtin_scorer_string_does_not_route_groups(grouped, spy):
    """scikit-learn issue 27977: the "r2" scorer predicts without groups."""
    X, y, g = grouped
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.warns(PopulationPredictionWarning):
            res = cross_validate(spy(), X, y, cv=KF, scoring="r2", params={"groups": g})
    assert all(n_groups is None for _, n_groups in spy.calls)
    assert res["test_score"].mean() < 0.3


@pytest.mark.parametrize("scoring", [None, "group_r2"])
def test_grid_search_routes_groups(grouped, spy, scoring):
    X, y, g = grouped
    scorer = make_group_scorer(r2_score) if scoring == "group_r2" else None
    grid = {"method": ["reml", "ml"], "covariance": ["unstructured", "diagonal"]}
    with sklearn.config_context(enable_metadata_routing=True):
        gs = GridSearchCV(spy(random_slopes=["x1"]), grid, cv=KF, scoring=scorer)
        with warnings.catch_warnings():
            warnings.simplefilter("error", PopulationPredictionWarning)
            gs.fit(X, y, groups=g)
            test_score = gs.score(X, y, groups=g)
    _assert_predict_got_groups(spy.calls)
    assert len(spy.calls) >= 4 * KF.get_n_splits()
    assert gs.best_score_ > 0.9
    assert test_score > 0.9
    assert gs.best_estimator_.group_names_ == ["site"]


def test_grid_search_group_kfold_predicts_unseen_levels(grouped, spy):
    """With GroupKFold every test level is unseen: the CV score is the
    population one (about that of LinearRegression), while KFold's is high."""
    X, y, g = grouped
    with sklearn.config_context(enable_metadata_routing=True):
        gkf = GridSearchCV(
            spy(), {"method": ["reml", "ml"]}, cv=GroupKFold(4), scoring=make_group_scorer(r2_score)
        ).fit(X, y, groups=g)
        kf = GridSearchCV(
            MixedLinearRegressor(),
            {"method": ["reml", "ml"]},
            cv=KF,
            scoring=make_group_scorer(r2_score),
        ).fit(X, y, groups=g)
    _assert_predict_got_groups(spy.calls)
    lr = cross_val_score(LinearRegression(), X, y, cv=GroupKFold(4), groups=g)
    assert gkf.best_score_ == pytest.approx(lr.mean(), abs=0.05)
    assert kf.best_score_ > gkf.best_score_ + 0.5


def test_group_scorer_loss_sign(grouped):
    X, y, g = grouped
    m = MixedLinearRegressor().fit(X, y, groups=g)
    scorer = make_group_scorer(mean_squared_error, greater_is_better=False)
    assert scorer(m, X, y, groups=g) == pytest.approx(
        -mean_squared_error(y, m.predict(X, groups=g))
    )


# ------------------------------------------------------- group_cols path
def test_group_cols_equals_explicit_groups(sleep):
    df, X, y, g = sleep
    explicit = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=g)
    cols = MixedLinearRegressor(random_slopes=["Days"], group_cols=["Subject"])
    cols.fit(df[["Days", "Subject"]], y)
    assert cols.n_features_in_ == 1
    assert list(cols.feature_names_in_) == ["Days"]
    assert cols.group_names_ == ["Subject"]
    np.testing.assert_allclose(
        cols.predict(df[["Subject", "Days"]].iloc[::7]),  # column order irrelevant
        explicit.predict(X.iloc[::7], groups=g.iloc[::7]),
    )
    # group_cols given as a single string
    s = MixedLinearRegressor(random_slopes=["Days"], group_cols="Subject")
    s.fit(df[["Days", "Subject"]], y)
    np.testing.assert_allclose(s.predict(df[["Days", "Subject"]]), explicit.predict(X, groups=g))


def test_group_cols_cross_val_predict(sleep):
    df, X, y, g = sleep
    Xg = df[["Days", "Subject"]]
    pred = cross_val_predict(MixedLinearRegressor(group_cols=["Subject"]), Xg, y, cv=KF)
    expected = np.empty(len(y))
    for train, test in KF.split(Xg):
        m = MixedLinearRegressor().fit(X.iloc[train], y.iloc[train], groups=g.iloc[train])
        expected[test] = m.predict(X.iloc[test], groups=g.iloc[test])
    np.testing.assert_allclose(pred, expected)
    lr = cross_val_predict(LinearRegression(), X, y, cv=KF)
    assert r2_score(y, pred) > r2_score(y, lr) + 0.3


def test_group_cols_builtin_scorer_without_routing(sleep):
    df, X, y, g = sleep
    assert not sklearn.get_config()["enable_metadata_routing"]
    Xg = df[["Days", "Subject"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", PopulationPredictionWarning)
        mixed = cross_val_score(
            MixedLinearRegressor(group_cols=["Subject"]),
            Xg,
            y,
            cv=KF,
            scoring="neg_mean_squared_error",
        )
    lr = cross_val_score(LinearRegression(), X, y, cv=KF, scoring="neg_mean_squared_error")
    assert mixed.mean() > 2 * lr.mean()  # MSE less than half of OLS's


def test_group_cols_grid_search_predict(sleep):
    df, X, y, g = sleep
    Xg = df[["Days", "Subject"]]
    gs = GridSearchCV(
        MixedLinearRegressor(group_cols=["Subject"]),
        {"method": ["reml", "ml"]},
        cv=KF,
        scoring="r2",
    ).fit(Xg, y)
    best = MixedLinearRegressor(**gs.best_params_).fit(X, y, groups=g)
    np.testing.assert_allclose(gs.predict(Xg), best.predict(X, groups=g))
    assert gs.best_score_ > 0.6


def test_group_cols_grid_search_group_kfold_without_routing(sleep):
    """Without routing, GridSearchCV.fit(groups=...) goes to the splitter only."""
    df, X, y, g = sleep
    assert not sklearn.get_config()["enable_metadata_routing"]
    gs = GridSearchCV(
        MixedLinearRegressor(group_cols=["Subject"]), {"method": ["reml", "ml"]}, cv=GroupKFold(3)
    )
    gs.fit(df[["Days", "Subject"]], y, groups=g)
    assert gs.best_estimator_.group_names_ == ["Subject"]
    # every held-out subject is unseen: the CV score is the population one
    lr = cross_val_score(LinearRegression(), X, y, cv=GroupKFold(3), groups=g)
    assert gs.best_score_ == pytest.approx(lr.mean(), abs=0.02)


def _recipe_preprocessor():
    """The documented recipe: scale the features, pass the grouping column
    through under its own name, in a DataFrame."""
    return ColumnTransformer(
        [("num", StandardScaler(), ["Days"])],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")


def test_column_transformer_recipe(sleep):
    df, X, y, g = sleep
    ct = _recipe_preprocessor()
    pipe = make_pipeline(ct, MixedLinearRegressor(random_slopes=["Days"], group_cols=["Subject"]))
    Xg = df[["Days", "Subject"]]
    pipe.fit(Xg, y)
    final = pipe[-1]
    assert final.group_names_ == ["Subject"]
    assert final.random_slope_names_ == {"Subject": ["Days"]}
    # same model as scaling by hand and passing groups explicitly
    Xs = (X - X.mean()) / X.std(ddof=0)
    explicit = MixedLinearRegressor(random_slopes=["Days"]).fit(Xs, y, groups=g)
    np.testing.assert_allclose(pipe.predict(Xg), explicit.predict(Xs, groups=g), rtol=1e-6)
    assert final.log_likelihood_ == pytest.approx(explicit.log_likelihood_, rel=1e-9)
    # and works with CV and a built-in scorer
    with warnings.catch_warnings():
        warnings.simplefilter("error", PopulationPredictionWarning)
        scores = cross_val_score(pipe, Xg, y, cv=KF, scoring="r2")
    assert scores.mean() > 0.6


@pytest.mark.filterwarnings("ignore::sklearn_mixed.SingularFitWarning")
@pytest.mark.parametrize("fold", range(5))
@pytest.mark.parametrize("method", ["ml", "reml"])
def test_fit_invariant_to_feature_scale(sleep, fold, method):
    """Rescaling Days by 1/s leaves the ML log-likelihood unchanged and shifts
    the REML criterion by the Jacobian log(s) (one rescaled fixed effect).

    Fold 2 (ML) and fold 3 (REML) once stopped at a spurious boundary point
    theta = (., ., 0), where the deviance is stationary by symmetry."""
    df, X, y, g = sleep
    train = list(KF.split(X))[fold][0]
    kw = dict(random_slopes=["Days"], method=method)
    a = MixedLinearRegressor(**kw).fit(X.iloc[train], y.iloc[train], groups=g.iloc[train])
    s = X.iloc[train].std().iloc[0]
    b = MixedLinearRegressor(**kw).fit(X.iloc[train] / s, y.iloc[train], groups=g.iloc[train])
    jacobian = np.log(s) if method == "reml" else 0.0
    assert b.log_likelihood_ - a.log_likelihood_ == pytest.approx(jacobian, abs=1e-4)
    assert not a.singular_ and not b.singular_
    assert a.coef_[0] == pytest.approx(b.coef_[0] / s, rel=1e-4)


# ---------------------------------------------------- clone / params / pickle
def test_clone_get_set_params_round_trip(sleep):
    df, X, y, g = sleep
    params = dict(
        random_slopes={"Subject": ["Days"]},
        covariance={"Subject": "diagonal"},
        method="ml",
        fit_intercept=False,
        group_cols=["Subject"],
        new_groups="error",
        max_iter=123,
        tol=1e-7,
    )
    m = MixedLinearRegressor(**params)
    assert {k: m.get_params()[k] for k in params} == params
    c = clone(m)
    assert c.get_params() == m.get_params()
    assert c is not m
    m2 = MixedLinearRegressor().set_params(**params)
    assert m2.get_params() == m.get_params()
    fitted = MixedLinearRegressor().fit(X, y, groups=g)
    refit = clone(fitted)
    with pytest.raises(NotFittedError):
        check_is_fitted(refit)
    assert refit.get_params() == fitted.get_params()


def test_pickle_round_trip(sleep):
    df, X, y, g = sleep
    m = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=g)
    m2 = pickle.loads(pickle.dumps(m))
    Xq = pd.DataFrame({"Days": [0, 3, 9]})
    gq = pd.Series(["308", "999", "372"], name="Subject")
    for a, b in zip(
        m.predict(Xq, groups=gq, return_std=True),
        m2.predict(Xq, groups=gq, return_std=True),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m.predict(X, groups=g), m2.predict(X, groups=g))
    pd.testing.assert_frame_equal(m.random_effects_["Subject"], m2.random_effects_["Subject"])


# ------------------------------------------------------------ unseen levels
def test_unseen_levels_population_vs_error(sleep):
    df, X, y, g = sleep
    Xq = pd.DataFrame({"Days": [1, 2, 5]})
    gq = pd.Series(["308", "new1", "new2"], name="Subject")
    pop = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=g)
    pred = pop.predict(Xq, groups=gq)
    fixed = Xq.to_numpy() @ pop.coef_ + pop.intercept_
    b = pop.random_effects_["Subject"].loc["308"].to_numpy()
    assert pred[0] == pytest.approx(fixed[0] + b[0] + b[1] * 1)
    np.testing.assert_allclose(pred[1:], fixed[1:])

    err = MixedLinearRegressor(random_slopes=["Days"], new_groups="error").fit(X, y, groups=g)
    with pytest.raises(ValueError, match=r"'Subject'.*2 level.*'new1', 'new2'"):
        err.predict(Xq, groups=gq)
    np.testing.assert_allclose(err.predict(X, groups=g), pop.predict(X, groups=g))


@pytest.fixture(scope="module")
def crossed(grouped):
    """``grouped`` plus a crossed factor "rater" with a real effect."""
    X, y, g = grouped
    rng = np.random.default_rng(1)
    rater = rng.choice(["a", "b", "c", "d", "e"], len(g))
    effect = dict(zip("abcde", [-3.0, -1.0, 0.0, 2.0, 4.0], strict=True))
    y = y + np.array([effect[r] for r in rater])
    return X, y, pd.DataFrame({"site": g, "rater": rater})


def test_unseen_level_in_one_of_two_crossed_factors(crossed):
    X, y, G = crossed
    m = MixedLinearRegressor().fit(X, y, groups=G)
    assert not m.singular_
    Gq = pd.DataFrame({"rater": ["a", "zz"], "site": ["new", "g03"]})  # columns reordered
    pred = m.predict(X.iloc[:2], groups=Gq)
    fixed = X.iloc[:2].to_numpy() @ m.coef_ + m.intercept_
    re = m.random_effects_
    assert pred[0] == pytest.approx(fixed[0] + re["rater"].loc["a"].iloc[0])
    assert pred[1] == pytest.approx(fixed[1] + re["site"].loc["g03"].iloc[0])


def test_predict_without_groups_warns_and_is_population(sleep):
    df, X, y, g = sleep
    m = MixedLinearRegressor().fit(X, y, groups=g)
    with pytest.warns(PopulationPredictionWarning, match="Subject"):
        pred = m.predict(X)
    np.testing.assert_allclose(pred, X.to_numpy() @ m.coef_ + m.intercept_)


def test_fitted_without_groups_predict_with_groups_raises(sleep):
    df, X, y, g = sleep
    m = MixedLinearRegressor().fit(X, y)
    with pytest.raises(ValueError, match="fitted without groups"):
        m.predict(X, groups=g)
    with pytest.raises(ValueError, match="fitted without groups"):
        m.score(X, y, groups=g)


def test_score_is_r2_with_groups_and_weights(sleep):
    df, X, y, g = sleep
    m = MixedLinearRegressor().fit(X, y, groups=g)
    w = np.linspace(0.5, 2.0, len(y))
    pred = m.predict(X, groups=g)
    assert m.score(X, y, groups=g) == pytest.approx(r2_score(y, pred))
    assert m.score(X, y, groups=g, sample_weight=w) == pytest.approx(
        r2_score(y, pred, sample_weight=w)
    )
    assert m.score(X, y, groups=g, sample_weight=w) != pytest.approx(m.score(X, y, groups=g))


# ---------------------------------------------------------------- return_std
def test_return_std_shape_and_ordering(sleep):
    df, X, y, g = sleep
    m = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=g)
    Xq = pd.DataFrame({"Days": [0, 4, 9, 0, 4, 9]})
    gq = pd.Series(["308", "308", "308", "new", "new", "new"], name="Subject")
    mean, std = m.predict(Xq, groups=gq, return_std=True)
    assert mean.shape == std.shape == (6,)
    assert np.all(std > 0) and np.all(np.isfinite(std))
    np.testing.assert_allclose(mean, m.predict(Xq, groups=gq))
    assert np.all(std[3:] > std[:3])  # unseen level: more uncertainty
    assert np.all(std >= np.sqrt(m.residual_variance_))


def test_return_std_by_hand_without_slopes(crossed):
    X, y, G = crossed
    m = MixedLinearRegressor().fit(X, y, groups=G)
    assert not m.singular_
    Xq = X.iloc[:4]
    Gq = pd.DataFrame({"site": ["g00", "g05", "new", "new"], "rater": ["a", "zz", "b", "zz"]})
    _, std = m.predict(Xq, groups=Gq, return_std=True)

    design = np.column_stack([np.ones(len(Xq)), Xq.to_numpy()])
    expected = np.empty(len(Xq))
    for i in range(len(Xq)):
        var = m.residual_variance_ + design[i] @ m.fixed_effects_cov_ @ design[i]
        for name in ("site", "rater"):
            level = Gq[name].iloc[i]
            levels = list(m.random_effects_[name].index)
            if level in levels:
                var += m.random_effects_conditional_cov_[name][levels.index(level)][0, 0]
            else:
                var += m.random_effects_cov_[name][0, 0]
        expected[i] = np.sqrt(var)
    np.testing.assert_allclose(std, expected, rtol=1e-12)


def test_return_std_without_groups_fit(grouped):
    X, y, _ = grouped
    m = MixedLinearRegressor().fit(X, y)
    _, std = m.predict(X.iloc[:3], return_std=True)
    design = np.column_stack([np.ones(3), X.iloc[:3].to_numpy()])
    expected = np.sqrt(
        m.residual_variance_ + np.einsum("ij,jk,ik->i", design, m.fixed_effects_cov_, design)
    )
    np.testing.assert_allclose(std, expected)


def test_label_type_mismatch_warns(sleep):
    """Fitted on integer labels, predicting with their string forms matches no
    level: the population prediction comes with a warning naming the types."""
    df, X, y, g = sleep
    g_int = g.astype(int)
    est = MixedLinearRegressor().fit(X, y, groups=g_int)
    with pytest.warns(PopulationPredictionWarning, match="integer.*string"):
        est.predict(X.head(3), groups=g.head(3).rename(g_int.name))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.predict(X.head(3), groups=g_int.head(3))  # seen: no warning
        est.predict(X.head(3), groups=pd.Series([9001, 9002, 9003], name=g_int.name))


def test_group_cols_with_group_kfold_and_routing(sleep):
    """With group_cols the estimator does not request `groups`, so a routed
    GroupKFold consumes them alone and the model reads its groups from X."""
    df, X, y, g = sleep
    ct = _recipe_preprocessor()
    pipe = make_pipeline(ct, MixedLinearRegressor(group_cols=["Subject"], random_slopes=["Days"]))
    data = df[["Days", "Subject"]]
    with sklearn.config_context(enable_metadata_routing=True):
        gs = GridSearchCV(
            pipe, {"mixedlinearregressor__method": ["ml", "reml"]}, cv=GroupKFold(3)
        ).fit(data, y, groups=g)
        assert (
            MixedLinearRegressor(group_cols=["Subject"])
            .get_metadata_routing()
            .fit.requests["groups"]
            is False
        )
    seen = gs.predict(data.head(10))
    scaled = gs.best_estimator_[0].transform(data).drop(columns="Subject")
    method = gs.best_params_["mixedlinearregressor__method"]
    direct = MixedLinearRegressor(random_slopes=["Days"], method=method).fit(scaled, y, groups=g)
    np.testing.assert_allclose(seen, direct.predict(scaled.head(10), groups=g.head(10)))
