"""MixedEffectsRegressor: any regressor for the features, random effects around it."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import BayesianRidge, LinearRegression
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from sklearn_mixed import MixedEffectsRegressor, MixedLinearRegressor
from sklearn_mixed.datasets import load_hsb82


@pytest.fixture(autouse=True)
def _one_openmp_thread():
    """HistGradientBoosting on a few thousand rows gains nothing from threads,
    and OpenMP's spin-waiting on a shared 2-core machine made it 40x slower
    (0.3 s against 12 s per fit, measured while another process ran)."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def _hsb82():
    d = load_hsb82()
    X = d[["ses"]].assign(
        catholic=(d["sector"] != "Public").astype(float),
        minority=(d["minrty"] == "Yes").astype(float),
    )
    return X, d["mAch"], d["school"]


def _nonlinear(seed=0, n=3000, n_groups=60, sd=1.0):
    """MERF's and GPBoost's simulation shape: a nonlinear f(X) plus a grouped
    random intercept plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 3))
    groups = rng.integers(0, n_groups, n)
    f = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + 0.5 * X[:, 2] * (X[:, 0] > 0)
    y = f + sd * rng.normal(size=n_groups)[groups] + 0.5 * rng.normal(size=n)
    return X, y, groups


def test_linear_regression_converges_to_the_ml_fit():
    """With LinearRegression as f, backfitting is block Gauss-Seidel on
    Henderson's equations and its fixed point is the ML fit (module docstring).
    hsb82 is unbalanced and ses is correlated with the schools, so this takes
    tens of iterations.  Tolerances: the criterion converges to tol=1e-13
    relative; near the optimum the parameters' error is about the square root
    of the criterion's (linear convergence, quadratic criterion), hence 1e-5."""
    X, y, g = _hsb82()
    ref = MixedLinearRegressor(random_slopes=["ses"], method="ml").fit(X, y, groups=g)
    model = MixedEffectsRegressor(
        LinearRegression(), random_slopes=["ses"], tol=1e-13, max_iter=1000
    ).fit(X, y, groups=g)
    assert model.converged_ and model.n_iter_ > 5
    np.testing.assert_allclose(model.log_likelihood_, ref.log_likelihood_, rtol=1e-10)
    np.testing.assert_allclose(
        model.random_effects_cov_["school"], ref.random_effects_cov_["school"], rtol=1e-4
    )
    np.testing.assert_allclose(model.residual_variance_, ref.residual_variance_, rtol=1e-6)
    np.testing.assert_allclose(model.estimator_.coef_, ref.coef_, rtol=1e-4)
    intercept = model.estimator_.intercept_ + model.random_model_.intercept_
    np.testing.assert_allclose(intercept, ref.intercept_, rtol=1e-5)
    np.testing.assert_allclose(
        model.predict(X, groups=g), ref.predict(X, groups=g), atol=1e-3 * y.std()
    )
    # the objective's history falls to the ML criterion
    assert np.all(np.diff(model.objective_) <= 1e-8 * abs(model.objective_[-1]))
    np.testing.assert_allclose(model.objective_[-1], -2 * ref.log_likelihood_, rtol=1e-10)


def test_linear_regression_with_crossed_factors():
    """Two crossed factors whose levels are correlated with the feature: the
    fixed point is MixedLinearRegressor's ML fit of (1|a) + (1|b)."""
    rng = np.random.default_rng(3)
    n = 1500
    a, b = rng.integers(0, 40, n), rng.integers(0, 15, n)
    x = rng.normal(size=n) + 0.1 * a  # the feature moves with a's levels
    y = 1 + 2 * x + rng.normal(size=40)[a] + 0.7 * rng.normal(size=15)[b] + rng.normal(size=n)
    X, G = pd.DataFrame({"x": x}), pd.DataFrame({"a": a, "b": b})
    ref = MixedLinearRegressor(method="ml").fit(X, y, groups=G)
    model = MixedEffectsRegressor(LinearRegression(), tol=1e-13, max_iter=2000).fit(X, y, groups=G)
    assert model.converged_
    np.testing.assert_allclose(model.log_likelihood_, ref.log_likelihood_, rtol=1e-10)
    for name in ("a", "b"):
        np.testing.assert_allclose(
            model.random_effects_cov_[name], ref.random_effects_cov_[name], rtol=1e-4
        )
    np.testing.assert_allclose(model.estimator_.coef_, ref.coef_, rtol=1e-4)


def test_boosting_plus_random_effects_beats_either_alone():
    """A nonlinear f(X) plus group intercepts (sd 1 against noise 0.5): on new
    rows of seen groups, HGB + random effects is more accurate than HGB alone
    (which cannot see the groups) and than the linear mixed model (which
    cannot fit f); on unseen groups it falls back to f(X), as accurate as
    HGB alone (within 5%: both estimate the same f on the same rows)."""
    X, y, g = _nonlinear()
    train, test = np.arange(2000), np.arange(2000, 3000)
    model = MixedEffectsRegressor(random_state=0).fit(X[train], y[train], groups=g[train])
    hgb = HistGradientBoostingRegressor(random_state=0).fit(X[train], y[train])
    lmm = MixedLinearRegressor().fit(X[train], y[train], groups=g[train])

    def rmse(p):
        return np.sqrt(np.mean((p - y[test]) ** 2))

    ours = rmse(model.predict(X[test], groups=g[test]))
    assert ours < 0.8 * rmse(hgb.predict(X[test]))
    assert ours < 0.8 * rmse(lmm.predict(X[test], groups=g[test]))
    assert ours < 0.6  # noise sd 0.5; the group effects estimated from ~33 rows each
    sd = np.sqrt(model.random_effects_cov_["group"][0, 0])
    assert 0.7 < sd < 1.3  # the simulated sd 1, from 60 groups
    # unseen groups: f(X) plus the mixed model's intercept
    unseen = np.full(test.size, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        population = model.predict(X[test], groups=unseen)
    expected = model.estimator_.predict(X[test]) + model.random_model_.intercept_
    np.testing.assert_allclose(population, expected)
    assert rmse(population) < 1.05 * rmse(hgb.predict(X[test]))


def test_out_of_fold_offset_converges_and_gives_honest_variances():
    """cv=5: the mixed model's offset is f's out-of-fold prediction, so the
    residual variance is not eaten by f's fit to its own training noise
    (simulated 0.25: in-sample boosting leaves less)."""
    X, y, g = _nonlinear(seed=1, n=2000)
    f = HistGradientBoostingRegressor(max_iter=50, random_state=0)
    in_sample = MixedEffectsRegressor(f).fit(X, y, groups=g)
    out_of_fold = MixedEffectsRegressor(f, cv=5).fit(X, y, groups=g)
    assert out_of_fold.converged_
    assert in_sample.residual_variance_ < out_of_fold.residual_variance_
    assert 0.2 < out_of_fold.residual_variance_ < 0.35


def test_row_order_and_level_names_do_not_matter():
    """Permuting the rows and relabelling the levels gives the same fit (with
    a deterministic f)."""
    X, y, g = _hsb82()
    kwargs = dict(random_slopes=["ses"], tol=1e-12, max_iter=500)
    model = MixedEffectsRegressor(LinearRegression(), **kwargs).fit(X, y, groups=g)
    perm = np.random.default_rng(0).permutation(len(y))
    relabelled = ("s" + g.astype(str)).iloc[perm].reset_index(drop=True)
    other = MixedEffectsRegressor(LinearRegression(), **kwargs).fit(
        X.iloc[perm].reset_index(drop=True), y.iloc[perm].to_numpy(), groups=relabelled
    )
    np.testing.assert_allclose(other.log_likelihood_, model.log_likelihood_, rtol=1e-10)
    np.testing.assert_allclose(
        other.predict(X.iloc[perm], groups=relabelled),
        model.predict(X, groups=g)[perm],
        atol=1e-6 * y.std(),
    )


def test_early_stopping_keeps_the_best_iteration(capsys):
    X, y, g = _nonlinear(seed=2, n=2000)
    model = MixedEffectsRegressor(
        random_state=0, early_stopping=True, tol=0, max_iter=8, n_iter_no_change=2, verbose=1
    ).fit(X, y, groups=g)
    scores = model.validation_score_
    assert scores.size == model.n_iter_ == model.objective_.size
    assert model.best_iteration_ == int(np.argmax(scores)) + 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == model.n_iter_ and "validation R^2" in lines[-1]
    assert lines[0].startswith("[MixedEffectsRegressor] iteration 1: -2 log-likelihood")


def test_return_std_adds_the_estimators_variance():
    X, y, g = _hsb82()
    plain = MixedEffectsRegressor(LinearRegression(), random_slopes=["ses"]).fit(X, y, groups=g)
    mean, std = plain.predict(X.head(5), groups=g.head(5), return_std=True)
    # a new observation's sd: at least the residual sd, at most the total sd
    assert np.all(std >= np.sqrt(plain.residual_variance_)) and np.all(std < y.std() * 1.5)
    np.testing.assert_allclose(mean, plain.predict(X.head(5), groups=g.head(5)))
    bayes = MixedEffectsRegressor(BayesianRidge(), random_slopes=["ses"]).fit(X, y, groups=g)
    _, std_b = bayes.predict(X.head(5), groups=g.head(5), return_std=True)
    _, std_f = bayes.estimator_.predict(X.head(5), return_std=True)
    _, std_m = bayes.random_model_.predict(X[["ses"]].head(5), groups=g.head(5), return_std=True)
    np.testing.assert_allclose(std_b**2, std_f**2 + std_m**2)


def test_group_cols_and_grid_search():
    """Groups as a column of X (group_cols), tuned by GridSearchCV with group
    folds: no metadata routing needed."""
    X, y, g = _nonlinear(seed=4, n=1200, n_groups=30)
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(g=g)
    search = GridSearchCV(
        MixedEffectsRegressor(group_cols="g", random_state=0, max_iter=4),
        {"estimator": [LinearRegression(), HistGradientBoostingRegressor(max_iter=50)]},
        cv=GroupKFold(3),
    )
    search.fit(frame, y, groups=g)
    assert isinstance(search.best_estimator_.estimator_, HistGradientBoostingRegressor)
    assert search.best_estimator_.feature_names_in_.tolist() == ["a", "b", "c"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(random_slopes=["nope"]), "random_slopes"),
        (dict(group_cols="nope"), "group_cols"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, match):
    X, y, g = _hsb82()
    with pytest.raises(ValueError, match=match):
        MixedEffectsRegressor(LinearRegression(), **kwargs).fit(X, y)


def test_groups_of_the_wrong_length():
    X, y, g = _hsb82()
    with pytest.raises(ValueError, match="rows"):
        MixedEffectsRegressor(LinearRegression()).fit(X, y, groups=g[:10])


def test_an_unfitted_ensemble_is_accepted():
    """scikit-learn's ensembles define __len__ (their fitted members): the
    estimator is tested against None, never by its truth value (once an
    AttributeError on estimators_ for every ensemble)."""
    from sklearn.ensemble import RandomForestRegressor

    X, y, g = _nonlinear(seed=5, n=600, n_groups=20)
    forest = RandomForestRegressor(n_estimators=20, random_state=0)
    model = MixedEffectsRegressor(forest, max_iter=5).fit(X, y, groups=g)
    assert isinstance(model.estimator_, RandomForestRegressor)
    assert model.predict(X[:4], groups=g[:4]).shape == (4,)


@pytest.mark.parametrize(
    "values, stops",
    [
        # a boosted f's criterion wobbling around its limit (seen in a fit)
        ([2040.3, 438.2, 229.3, 223.7, 218.0, 213.9, 236.6, 221.7], True),
        # a random forest's in-sample criterion still climbing (bench, seed 0)
        ([6655.0, 6864.0, 6977.0, 7032.0, 7070.0, 7098.0], False),
        # still falling steadily
        ([100.0, 90.0, 81.0, 73.0, 66.0, 60.0], False),
        # too few values to tell
        ([5.0, 5.0, 5.0, 5.0], False),
    ],
)
def test_the_plateau_rule_tells_a_trend_from_a_wobble(values, stops):
    from sklearn_mixed._mixed_effects import _plateau

    assert _plateau(values, 1e-4, 3) is stops


def test_without_groups_it_is_the_estimator():
    X, y, _ = _hsb82()
    model = MixedEffectsRegressor(LinearRegression()).fit(X, y)
    assert model.random_model_ is None
    np.testing.assert_allclose(model.predict(X), LinearRegression().fit(X, y).predict(X))
    with pytest.raises(AttributeError, match="without groups"):
        model.random_effects_  # noqa: B018


@parametrize_with_checks(
    [
        MixedEffectsRegressor(LinearRegression()),
        MixedEffectsRegressor(HistGradientBoostingRegressor(max_iter=10), max_iter=3),
    ],
    expected_failed_checks=lambda est: (
        # HistGradientBoosting's own: its binning is not repetition-invariant
        # (scikit-learn marks the same check for it)
        {"check_sample_weight_equivalence_on_dense_data": "HistGradientBoosting's binning"}
        if isinstance(est.estimator, HistGradientBoostingRegressor)
        else {}
    ),
)
def test_sklearn_compatible_regressor(estimator, check):
    check(estimator)


def test_cv_splitters_are_used_as_given():
    """A seeded KFold is not reseeded (fit leaves its parameters alone); a
    GroupKFold splits by the grouping factor."""
    from sklearn.model_selection import KFold

    X, y, g = _nonlinear(seed=6, n=600, n_groups=20)
    cv = KFold(3, shuffle=True, random_state=123)
    MixedEffectsRegressor(LinearRegression(), cv=cv, max_iter=2).fit(X, y, groups=g)
    assert cv.random_state == 123
    model = MixedEffectsRegressor(LinearRegression(), cv=GroupKFold(3), max_iter=2)
    assert model.fit(X, y, groups=g).n_iter_ >= 1


def test_random_slopes_by_position():
    """As MixedLinearRegressor: random_slopes=[0] is the first column of X,
    for arrays and DataFrames (with integer column names too)."""
    X, y, g = _hsb82()
    by_name = MixedEffectsRegressor(LinearRegression(), random_slopes=["ses"]).fit(X, y, groups=g)
    for data in (X.to_numpy(), X.set_axis(range(3), axis=1)):
        model = MixedEffectsRegressor(LinearRegression(), random_slopes=[0]).fit(data, y, groups=g)
        np.testing.assert_allclose(model.log_likelihood_, by_name.log_likelihood_, rtol=1e-10)
    with pytest.raises(ValueError, match="position 7"):
        MixedEffectsRegressor(LinearRegression(), random_slopes=[7]).fit(X, y, groups=g)


def test_early_stopping_with_a_tiny_validation_set():
    """One held-out row: R^2 is undefined (NaN) at every iteration; the fit
    keeps its last iteration instead of failing."""
    X, y, g = _nonlinear(seed=7, n=9, n_groups=3)
    model = MixedEffectsRegressor(LinearRegression(), early_stopping=True, tol=0, max_iter=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(
            X,
            y,
            groups=g,
        )
    assert model.n_iter_ >= 1 and model.best_iteration_ == model.n_iter_
