"""The fitted model object (``model_``), the random-effects specification and weights.

Identities: the public deviance function at the optimum is the fitted
deviance; refits by the other criterion equal fresh fits; a known sigma equal
to the ML estimate leaves the ML fit unchanged; the ``random_effects``
specification reproduces ``random_slopes``/``covariance``; permuting rows and
relabelling levels change nothing, with weights too.
"""

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.model_selection import GroupKFold, cross_validate

from sklearn_mixed import CrossedEffectsRegressor, MixedLinearRegressor, make_group_scorer
from sklearn_mixed.datasets import load_penicillin, load_sleepstudy


@pytest.fixture(scope="module")
def sleep():
    df = load_sleepstudy()
    w = np.random.default_rng(0).uniform(0.3, 3.0, len(df))
    return df[["Days"]], df["Reaction"], df["Subject"], w


def _fit(sleep, weighted=False, **params):
    X, y, g, w = sleep
    return MixedLinearRegressor(**params).fit(X, y, groups=g, sample_weight=w if weighted else None)


# ------------------------------------------------------------ the model object
@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize("weighted", [False, True])
def test_deviance_function_at_the_optimum_is_the_fitted_deviance(sleep, method, weighted):
    est = _fit(sleep, weighted, random_slopes=["Days"], method=method)
    model = est.model_
    assert model.deviance(est.theta_) == pytest.approx(est.deviance_, rel=1e-12)
    assert model.objective(est.theta_) == model.deviance(est.theta_)
    # the optimum: moving theta raises the deviance
    for step in np.eye(3) * 1e-3:
        assert model.deviance(est.theta_ + step) > est.deviance_


def test_refit_by_ml_is_an_ml_fit(sleep):
    reml = _fit(sleep, True, random_slopes=["Days"])
    ml = _fit(sleep, True, random_slopes=["Days"], method="ml")
    refit = reml.model_.refit("ml")
    assert refit.result.log_likelihood == pytest.approx(ml.log_likelihood_, abs=1e-8)
    np.testing.assert_allclose(refit.theta, ml.theta_, rtol=1e-5)
    assert refit.reduction is reml.model_.reduction  # no new pass over the rows


def test_known_sigma_at_the_ml_estimate_keeps_the_ml_fit(sleep):
    """At sigma fixed to its ML estimate the deviance, minimized over theta, has
    the same optimum (the profiled and the unprofiled deviance touch there)."""
    ml = _fit(sleep, True, random_slopes=["Days"], method="ml")
    sigma = np.sqrt(ml.residual_variance_)
    fixed = _fit(sleep, True, random_slopes=["Days"], method="ml", fixed_sigma=sigma)
    assert fixed.log_likelihood_ == pytest.approx(ml.log_likelihood_, abs=1e-7)
    np.testing.assert_allclose(fixed.theta_, ml.theta_, rtol=1e-4)
    assert fixed.residual_variance_ == sigma**2
    assert fixed.model_.result.n_params == ml.model_.result.n_params - 1


def test_pieces_give_the_deviance_at_any_sigma(sleep):
    est = _fit(sleep, True, random_slopes=["Days"], method="ml")
    pieces = est.model_.pieces(est.theta_)
    n = est.n_obs_
    w = sleep[3]
    sigma2 = est.residual_variance_
    value = pieces.logdet_Z + pieces.pwrss / sigma2 + n * np.log(2 * np.pi * sigma2)
    assert value - np.log(w).sum() == pytest.approx(est.deviance_, rel=1e-12)


# ------------------------------------------------------------ specification
@pytest.mark.parametrize(
    ("spec", "classic"),
    [
        ({"Subject": ["1", "Days"]}, {"random_slopes": ["Days"]}),
        ({"Subject": [["(Intercept)"], ["Days"]]},
         {"random_slopes": ["Days"], "covariance": "diagonal"}),
        ({"Subject": "1"}, {}),
    ],
)  # fmt: skip
def test_random_effects_spec_reproduces_the_short_forms(sleep, spec, classic):
    a = _fit(sleep, True, random_effects=spec)
    b = _fit(sleep, True, **classic)
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, abs=1e-10)
    np.testing.assert_allclose(a.theta_, b.theta_, rtol=1e-8)


def test_covariate_not_a_fixed_effect(sleep):
    """lme4's ``y ~ 1 + (1 + Days | Subject)``: Days only varies by subject."""
    est = _fit(sleep, random_effects={"Subject": ["1", "Days"]}, fixed_features=[])
    assert est.fixed_effect_names_ == ["(Intercept)"] and est.coef_.tolist() == [0.0]
    assert est.random_slope_names_ == {"Subject": ["Days"]}
    X, _, g, _ = sleep
    b = est.random_effects_["Subject"].loc[g.to_numpy()].to_numpy()
    expected = est.intercept_ + b[:, 0] + b[:, 1] * X["Days"].to_numpy()
    np.testing.assert_allclose(est.predict(X, groups=g), expected)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"random_effects": {"Nope": ["1"]}}, "not among the groups"),
        ({"random_effects": {"Subject": ["1"]}, "random_slopes": {"Subject": ["Days"]}},
         "both in random_effects and in random_slopes"),
        ({"random_effects": {"Subject": [["1", "Days"], ["Days"]]}}, "repeat the covariate"),
        ({"random_effects": {"Subject": [[]]}}, "empty term"),
        ({"random_effects": {"Subject": ["Dayz"]}}, "not a feature of X"),
        ({"fixed_features": ["Dayz"]}, "not a feature of X"),
    ],
)  # fmt: skip
def test_bad_specifications_are_clear_errors(sleep, params, message):
    with pytest.raises(ValueError, match=message):
        _fit(sleep, **params)


# ------------------------------------------------------------ predict subsets
def test_predicting_with_some_random_effects(sleep):
    X, y, g, w = sleep
    est = _fit(sleep, random_slopes=["Days"])
    full = est.predict(X, groups=g)
    none = est.predict(X, groups=g, random_effects=[])
    with pytest.warns(UserWarning, match="population"):
        population = est.predict(X)
    np.testing.assert_allclose(none, population)
    b = est.random_effects_["Subject"].loc[g.to_numpy()].to_numpy()
    intercepts = est.predict(X, groups=g, random_effects={"Subject": ["(Intercept)"]})
    np.testing.assert_allclose(intercepts, none + b[:, 0])
    np.testing.assert_allclose(full, none + b[:, 0] + b[:, 1] * X["Days"].to_numpy())
    mean, std = est.predict(X, groups=g, random_effects=[], return_std=True)
    _, std_pop = est.predict(X, groups=g.map(lambda s: "new " + s), return_std=True)
    np.testing.assert_allclose(std, std_pop)  # population: the factor's Sigma
    with pytest.raises(ValueError, match="not a fitted grouping factor"):
        est.predict(X, groups=g, random_effects=["Nope"])


def test_groups_with_some_factors_use_those():
    df = load_penicillin()
    est = MixedLinearRegressor().fit(df[[]], df["diameter"], groups=df[["plate", "sample"]])
    only_plate = est.predict(df[[]], groups=df[["plate"]])
    expected = est.predict(df[[]], groups=df[["plate", "sample"]], random_effects=["plate"])
    np.testing.assert_allclose(only_plate, expected)


# ------------------------------------------------------------ invariances
def test_permuting_rows_and_relabelling_levels_change_nothing(sleep):
    X, y, g, w = sleep
    ref = _fit(sleep, True, random_slopes=["Days"])
    order = np.random.default_rng(1).permutation(len(y))
    relabelled = g.map(lambda s: f"subject {int(s) * 7 % 101}")
    est = MixedLinearRegressor(random_slopes=["Days"]).fit(
        X.iloc[order], y.iloc[order], groups=relabelled.iloc[order], sample_weight=w[order]
    )
    assert est.log_likelihood_ == pytest.approx(ref.log_likelihood_, abs=1e-8)
    np.testing.assert_allclose(est.theta_, ref.theta_, rtol=1e-6)
    np.testing.assert_allclose(est.predict(X, groups=relabelled), ref.predict(X, groups=g),
                               rtol=1e-8)  # fmt: skip


# ------------------------------------------------------------ weights
def test_crossed_estimator_with_weights_equals_the_mixed_one():
    df = load_penicillin()
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(df))
    groups = df[["plate", "sample"]]
    a = CrossedEffectsRegressor().fit(df[[]], df["diameter"], groups=groups, sample_weight=w)
    b = MixedLinearRegressor().fit(df[[]], df["diameter"], groups=groups, sample_weight=w)
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, abs=1e-10)
    approx = CrossedEffectsRegressor(solver="iterative", random_state=0)
    approx.fit(df[[]], df["diameter"], groups=groups, sample_weight=w)
    # the iterative solver's documented accuracy: variance components within 1%
    np.testing.assert_allclose(approx.variance_shares_["variance"],
                               a.variance_shares_["variance"], rtol=1e-2)  # fmt: skip
    assert approx.log_likelihood_ == pytest.approx(a.log_likelihood_, abs=0.05)


def test_weights_are_routed_in_cross_validation(sleep):
    X, y, g, w = sleep
    scorer = make_group_scorer(sklearn.metrics.r2_score)
    with sklearn.config_context(enable_metadata_routing=True):
        est = MixedLinearRegressor(random_slopes=["Days"]).set_fit_request(sample_weight=True)
        scorer = scorer.set_score_request(sample_weight=False)
        cv = cross_validate(est, X, y, cv=GroupKFold(3), scoring=scorer,
                            params={"groups": g, "sample_weight": w})  # fmt: skip
    folds = list(GroupKFold(3).split(X, y, g))
    train, test = folds[0]
    manual = MixedLinearRegressor(random_slopes=["Days"]).fit(
        X.iloc[train], y.iloc[train], groups=g.iloc[train], sample_weight=w[train]
    )
    assert cv["test_score"][0] == pytest.approx(
        manual.score(X.iloc[test], y.iloc[test], groups=g.iloc[test]), rel=1e-12
    )


def test_weighted_score(sleep):
    X, y, g, w = sleep
    est = _fit(sleep, True)
    expected = sklearn.metrics.r2_score(y, est.predict(X, groups=g), sample_weight=w)
    assert est.score(X, y, groups=g, sample_weight=w) == pytest.approx(expected)
    assert isinstance(est.fixed_effects_, pd.DataFrame)


def _simulated_design(kind, rng):
    """(X, y, groups, random_slopes) of a design that takes the given kernel."""
    n = 600
    x = rng.normal(size=n)
    m = 12 if kind == "small" else 120
    a = rng.integers(0, m, n)
    b = a // 6 if kind == "nested" else rng.integers(0, 40 if kind != "small" else 5, n)
    c = rng.integers(0, 5, n)
    y = 1.0 + 0.5 * x + rng.normal(size=m)[a] + rng.normal(size=40)[b] + rng.normal(size=n)
    groups = pd.DataFrame({"a": a.astype(str), "b": b.astype(str), "c": c.astype(str)})
    slopes = {"a": ["x"], "b": ["x"]}
    if kind == "one term":
        groups, slopes = groups[["a"]], ["x"]
    elif kind == "blocked":  # dense terms of different sizes: the general blocked factor
        slopes = {"a": ["x"], "b": [], "c": ["x"]}
    else:
        groups = groups[["a", "b"]]
    return pd.DataFrame({"x": x}), pd.Series(y), groups, slopes


@pytest.mark.parametrize("kind", ["small", "one term", "nested", "crossed", "blocked"])
def test_deviance_at_known_sigma_and_its_gradient(kind):
    """``value_and_gradient_at_sigma`` (what the profiles use): the criterion with
    sigma not profiled out, and its derivatives in theta and sigma equal central
    differences (rel. 1e-5: differences of step 1e-6), for every kernel."""
    rng = np.random.default_rng(1)
    X, y, groups, slopes = _simulated_design(kind, rng)
    model = MixedLinearRegressor(random_slopes=slopes, method="ml").fit(X, y, groups=groups)
    model = model.model_
    plans = {"small": None, "one term": ([0], []), "blocked": ([0], [1, 2])}
    assert model.plan == plans.get(kind, ([0], [1]))  # (eliminated, dense) terms
    theta, sigma = model.theta * 1.1 + 0.01, 0.9 * np.sqrt(model.result.sigma2)

    def deviance(t, s):  # the ML deviance at (t, s): log|L_Z|^2 + r^2 / s^2 + n log(2 pi s^2)
        logdet_Z, _, pwrss = model.log_determinants(t)
        return logdet_Z + pwrss / s**2 + model.n * np.log(2 * np.pi * s**2)

    value, d_theta, d_sigma = model.value_and_gradient_at_sigma(theta, sigma)
    assert value == pytest.approx(deviance(theta, sigma), rel=1e-12)
    h = 1e-6
    for i in range(theta.size):
        e = np.eye(theta.size)[i] * h
        fd = (deviance(theta + e, sigma) - deviance(theta - e, sigma)) / (2 * h)
        assert d_theta[i] == pytest.approx(fd, rel=1e-5, abs=1e-5)
    fd = (deviance(theta, sigma + h) - deviance(theta, sigma - h)) / (2 * h)
    assert d_sigma == pytest.approx(fd, rel=1e-5)
    assert model.criterion.fixed_sigma is None  # the model's own criterion is restored
    assert model.deviance(model.theta) == pytest.approx(model.result.deviance, rel=1e-12)
