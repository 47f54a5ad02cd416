"""CrossedEffectsRegressor: the scikit-learn contract, equality of its exact fits
with MixedLinearRegressor's, lme4's Penicillin, variance shares, nesting,
routing, bad input and the choice and adapter of the iterative solver."""

import doctest
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_mixed import (
    CrossedEffectsRegressor,
    MixedLinearRegressor,
    PopulationPredictionWarning,
    _crossed,
    make_group_scorer,
)
from sklearn_mixed.core import LinearMixedModel, RandomTerm
from sklearn_mixed.core import iterative as core_iterative
from sklearn_mixed.datasets import load_pastes, load_penicillin

KF = KFold(5, shuffle=True, random_state=0)
REF = Path(__file__).parent / "data" / "lme4" / "ref"


# ---------------------------------------------------------------- data
@pytest.fixture(scope="module")
def penicillin():
    df = load_penicillin()
    return df[[]], df["diameter"], df[["plate", "sample"]]


@pytest.fixture(scope="module")
def pastes():
    """lme4's Pastes, strength ~ 1 + (1 | batch/cask): batch and batch:cask."""
    df = load_pastes()
    groups = pd.DataFrame({"batch": df["batch"], "batch:cask": df["sample"]})
    return df[[]], df["strength"], groups


@pytest.fixture(scope="module")
def three_factors():
    """Three crossed factors with real variances and one fixed-effect feature."""
    rng = np.random.default_rng(7)
    n, sizes, sds = 400, {"site": 12, "rater": 8, "day": 5}, {"site": 2.0, "rater": 1.0, "day": 1.5}
    groups = pd.DataFrame({f: rng.integers(0, m, n) for f, m in sizes.items()})
    groups = groups.apply(lambda col: col.map(lambda j, name=col.name: f"{name}{j:02d}"))
    X = pd.DataFrame({"x": rng.normal(size=n)})
    y = 3.0 + 0.8 * X["x"] + rng.normal(0, 1.0, n)
    for f, m in sizes.items():
        effect = rng.normal(0, sds[f], m)
        y += effect[groups[f].str[-2:].astype(int)]
    return X, y, groups


# ------------------------------------------------------- estimator checks
@parametrize_with_checks(
    [CrossedEffectsRegressor(), CrossedEffectsRegressor(solver="exact")],
    # lme4's prior weights are precision weights, not frequency weights
    expected_failed_checks=lambda est: {
        "check_sample_weight_equivalence_on_dense_data": "precision weights, as lme4's"
    },
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_docstring_example_runs():
    result = doctest.testmod(_crossed, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
    assert "Examples\n    --------" in CrossedEffectsRegressor.__doc__


def test_default_metadata_requests():
    routing = CrossedEffectsRegressor().get_metadata_routing()
    for method in ("fit", "predict", "score"):
        assert getattr(routing, method).requests["groups"] is True
    assert routing.predict.requests["return_std"] is True
    cols = CrossedEffectsRegressor(group_cols=["a"]).get_metadata_routing()
    assert cols.fit.requests["groups"] is False


def test_clone_get_set_params_round_trip():
    params = dict(
        method="ml",
        fit_intercept=False,
        group_cols=["a", "b"],
        new_groups="error",
        solver="exact",
        max_iter=50,
        tol=1e-8,
        random_state=3,
    )
    m = CrossedEffectsRegressor(**params)
    assert {k: m.get_params()[k] for k in params} == params
    assert clone(m).get_params() == m.get_params()
    assert CrossedEffectsRegressor().set_params(**params).get_params() == m.get_params()


# --------------------------------------- exact fits equal MixedLinearRegressor's
def _assert_same_fit(a, b, X, groups):
    """Every fitted quantity of ``a`` and ``b`` within 1e-8."""
    close = dict(rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(a.intercept_, b.intercept_, **close)
    np.testing.assert_allclose(a.coef_, b.coef_, **close)
    np.testing.assert_allclose(a.fixed_effects_cov_, b.fixed_effects_cov_, **close)
    np.testing.assert_allclose(a.theta_, b.theta_, **close)
    np.testing.assert_allclose(a.residual_variance_, b.residual_variance_, **close)
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, rel=1e-8, abs=1e-8)
    assert a.aic_ == pytest.approx(b.aic_, rel=1e-8) and a.bic_ == pytest.approx(b.bic_, rel=1e-8)
    pd.testing.assert_frame_equal(a.variance_components_, b.variance_components_, rtol=1e-8)
    assert a.group_names_ == b.group_names_ and a.n_groups_ == b.n_groups_
    assert a.nested_ == b.nested_ and a.singular_ == b.singular_
    for f in a.group_names_:
        pd.testing.assert_frame_equal(a.random_effects_[f], b.random_effects_[f], rtol=1e-8)
        np.testing.assert_allclose(a.random_effects_cov_[f], b.random_effects_cov_[f], **close)
        np.testing.assert_allclose(
            a.random_effects_conditional_cov_[f], b.random_effects_conditional_cov_[f], **close
        )
    for x, y in zip(
        a.predict(X, groups=groups, return_std=True),
        b.predict(X, groups=groups, return_std=True),
        strict=True,
    ):
        np.testing.assert_allclose(x, y, **close)


@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize("data", ["penicillin", "pastes", "three_factors"])
def test_exact_fit_equals_mixed_linear_regressor(request, data, method):
    X, y, groups = request.getfixturevalue(data)
    crossed = CrossedEffectsRegressor(method=method).fit(X, y, groups=groups)
    mixed = MixedLinearRegressor(method=method).fit(X, y, groups=groups)
    assert crossed.solver_ == "exact" and not crossed.approximate_
    _assert_same_fit(crossed, mixed, X, groups)


def test_without_groups_equals_mixed_linear_regressor(three_factors):
    X, y, _ = three_factors
    crossed = CrossedEffectsRegressor().fit(X, y)
    mixed = MixedLinearRegressor().fit(X, y)
    np.testing.assert_allclose(crossed.coef_, mixed.coef_, rtol=1e-12)
    assert crossed.group_names_ == [] and crossed.solver_ == "exact"
    assert list(crossed.variance_shares_.index) == ["Residual"]
    assert crossed.variance_shares_.loc["Residual", "share"] == 1.0


@pytest.mark.parametrize("criterion", ["reml", "ml"])
def test_penicillin_matches_lme4(penicillin, criterion):
    """``lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)``, lme4 1.1-31."""
    ref = pd.read_json(REF / f"penicillin_{criterion}.json", typ="series")
    X, y, groups = penicillin
    model = CrossedEffectsRegressor(method=criterion).fit(X, y, groups=groups)
    assert model.log_likelihood_ == pytest.approx(ref["loglik"], abs=1e-4)
    assert model.residual_variance_ == pytest.approx(ref["sigma"] ** 2, rel=1e-3)
    for factor in ("plate", "sample"):
        expected = ref["varcorr"][factor]["cov"][0][0]
        assert model.random_effects_cov_[factor][0, 0] == pytest.approx(expected, rel=1e-3)
        assert model.variance_shares_.loc[factor, "variance"] == pytest.approx(expected, rel=1e-3)
    assert model.intercept_ == pytest.approx(ref["fixef"]["(Intercept)"], abs=1e-3)


# ------------------------------------------------------------- reporting
def test_variance_shares_sum_to_one_and_match_components(three_factors):
    X, y, groups = three_factors
    model = CrossedEffectsRegressor().fit(X, y, groups=groups)
    shares = model.variance_shares_
    assert list(shares.index) == ["site", "rater", "day", "Residual"]
    assert list(shares.columns) == ["variance", "std_dev", "share"]
    assert shares["share"].sum() == pytest.approx(1.0, abs=1e-12)
    components = model.variance_components_["variance"].droplevel("term")
    np.testing.assert_allclose(shares["variance"], components.loc[shares.index], rtol=1e-12)
    np.testing.assert_allclose(shares["std_dev"] ** 2, shares["variance"], rtol=1e-12)
    np.testing.assert_allclose(shares["share"], shares["variance"] / shares["variance"].sum())
    assert model.n_groups_ == {"site": 12, "rater": 8, "day": 5}


def test_summary_has_variance_shares(penicillin):
    X, y, groups = penicillin
    text = CrossedEffectsRegressor().fit(X, y, groups=groups).summary()
    assert "REML criterion at convergence: 330.8606" in text  # lme4
    assert "Variance shares:" in text
    lines = text.splitlines()
    assert any(line.split()[:2] == ["plate", "24"] and line.endswith("15.1%") for line in lines)
    assert any(line.split()[:2] == ["sample", "6"] and line.endswith("78.5%") for line in lines)
    assert any(line.split()[:1] == ["Residual"] and line.endswith("6.4%") for line in lines)


def test_nesting_detected_on_pastes(pastes):
    X, y, groups = pastes
    model = CrossedEffectsRegressor().fit(X, y, groups=groups)
    assert model.nested_ == [("batch:cask", "batch")]
    assert model.n_groups_ == {"batch": 10, "batch:cask": 30}
    assert "(batch:cask is nested in batch)" in model.summary()
    # cask alone (a, b, c in every batch) is crossed with batch, as in lme4
    crossed_groups = pd.DataFrame({"batch": groups["batch"], "cask": load_pastes()["cask"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cask variance may be 0
        crossed = CrossedEffectsRegressor().fit(X, y, groups=crossed_groups)
    assert crossed.nested_ == []


# --------------------------------------------------------------- routing
def test_cross_validate_routes_groups(three_factors):
    X, y, groups = three_factors
    scorer = make_group_scorer(r2_score)
    with sklearn.config_context(enable_metadata_routing=True):
        with warnings.catch_warnings():
            warnings.simplefilter("error", PopulationPredictionWarning)
            res = cross_validate(
                CrossedEffectsRegressor(), X, y, cv=KF, scoring=scorer, params={"groups": groups}
            )
    for k, (train, test) in enumerate(KF.split(X)):
        m = MixedLinearRegressor().fit(X.iloc[train], y.iloc[train], groups=groups.iloc[train])
        pred = m.predict(X.iloc[test], groups=groups.iloc[test])
        assert res["test_score"][k] == pytest.approx(r2_score(y.iloc[test], pred), rel=1e-8)
    assert res["test_score"].mean() > 0.5


def test_grid_search_over_method_routes_groups(three_factors):
    X, y, groups = three_factors
    with sklearn.config_context(enable_metadata_routing=True):
        with warnings.catch_warnings():
            warnings.simplefilter("error", PopulationPredictionWarning)
            gs = GridSearchCV(
                CrossedEffectsRegressor(),
                {"method": ["reml", "ml"]},
                cv=KF,
                scoring=make_group_scorer(r2_score),
            ).fit(X, y, groups=groups)
            score = gs.score(X, y, groups=groups)
    assert gs.best_estimator_.group_names_ == ["site", "rater", "day"]
    best = gs.best_estimator_
    assert score == pytest.approx(r2_score(y, best.predict(X, groups=groups)))
    assert score > 0.5


def test_group_cols_equals_explicit_groups(three_factors):
    X, y, groups = three_factors
    data = pd.concat([groups, X], axis=1)
    cols = CrossedEffectsRegressor(group_cols=list(groups.columns)).fit(data, y)
    explicit = CrossedEffectsRegressor().fit(X, y, groups=groups)
    assert cols.n_features_in_ == 1 and cols.group_names_ == list(groups.columns)
    np.testing.assert_allclose(cols.predict(data), explicit.predict(X, groups=groups))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PopulationPredictionWarning)
        assert cols.score(data, y) == pytest.approx(explicit.score(X, y, groups=groups))


# ------------------------------------------------------------- bad input
def test_one_dimensional_groups_are_one_factor(penicillin):
    X, y, groups = penicillin
    series = CrossedEffectsRegressor().fit(X, y, groups=groups["sample"])
    array = CrossedEffectsRegressor().fit(X, y, groups=groups["sample"].to_numpy())
    assert series.group_names_ == ["sample"] and array.group_names_ == ["group"]
    np.testing.assert_allclose(series.theta_, array.theta_)
    assert list(series.variance_shares_.index) == ["sample", "Residual"]


def test_single_level_factor_is_named(penicillin):
    X, y, groups = penicillin
    bad = groups.assign(lab="only")
    with pytest.raises(ValueError, match=r"'lab' has a single level"):
        CrossedEffectsRegressor().fit(X, y, groups=bad)


@pytest.mark.parametrize("param, value", [("solver", "cholmod"), ("tol", -1.0), ("max_iter", 0)])
def test_invalid_parameters(penicillin, param, value):
    X, y, groups = penicillin
    with pytest.raises(InvalidParameterError, match=rf"'{param}' parameter"):
        CrossedEffectsRegressor(**{param: value}).fit(X, y, groups=groups)


# ------------------------------------------------- the choice of solver
def test_choose_solver_threshold():
    limit = _crossed.ITERATIVE_THRESHOLD
    assert _crossed.choose_solver("auto", []) == "exact"
    assert _crossed.choose_solver("iterative", []) == "exact"  # no random effects
    assert _crossed.choose_solver("auto", [10**6]) == "exact"  # one factor: closed form
    assert _crossed.choose_solver("auto", [10**6, limit]) == "exact"
    assert _crossed.choose_solver("auto", [10**6, limit // 2, limit // 2 + 1]) == "iterative"
    assert _crossed.choose_solver("auto", [limit + 1, 10**6]) == "iterative"
    assert _crossed.choose_solver("exact", [10**6, 10**6]) == "exact"
    assert _crossed.choose_solver("iterative", [20, 5]) == "iterative"


@dataclass
class _RequiredResult:
    beta: np.ndarray
    b: list
    sigma2: float
    variances: np.ndarray
    n_iter: int
    converged: bool


@dataclass
class _FullResult(_RequiredResult):
    log_likelihood: float
    beta_cov: np.ndarray
    conditional_var: list
    message: str


def _stub_solver(calls, full):
    """A stand-in for ``fit_crossed_iterative``: the exact fit of the same
    reduction, in its result format (user order)."""

    def solve(reduction, *, method, tol, max_iter, random_state):
        calls.append(dict(method=method, tol=tol, max_iter=max_iter, random_state=random_state))
        terms = [
            RandomTerm(f"f{i}", np.zeros(1, int), np.arange(t.n_levels), np.ones((1, 1)),
                       ("(Intercept)",))
            for i, t in enumerate(reduction.terms)
        ]  # fmt: skip
        fit = LinearMixedModel(reduction, terms, method=method).fit().result
        required = dict(
            beta=fit.beta,
            b=[b[:, 0] for b in fit.b],
            sigma2=fit.sigma2,
            variances=np.array([c[0, 0] for c in fit.term_cov]),
            n_iter=17,
            converged=True,
        )
        if not full:
            return _RequiredResult(**required)
        return _FullResult(
            **required,
            log_likelihood=fit.log_likelihood,
            beta_cov=fit.beta_cov,
            conditional_var=[c[:, 0, 0] for c in fit.conditional_cov],
            message="stub",
        )

    return solve


@pytest.mark.parametrize("full", [False, True])
def test_iterative_adapter(monkeypatch, three_factors, full):
    X, y, groups = three_factors
    calls = []
    monkeypatch.setattr(core_iterative, "fit_crossed_iterative", _stub_solver(calls, full))
    approx = CrossedEffectsRegressor(solver="iterative", method="ml", random_state=5)
    approx.fit(X, y, groups=groups)
    exact = CrossedEffectsRegressor(method="ml").fit(X, y, groups=groups)
    expected_call = dict(method="ml", tol=_crossed.ITERATIVE_TOL, max_iter=500, random_state=5)
    assert calls == [expected_call]
    assert approx.solver_ == "iterative" and approx.approximate_
    assert exact.solver_ == "exact" and not exact.approximate_
    assert approx.n_iter_ == 17 and approx.converged_ and not approx.singular_
    np.testing.assert_allclose(approx.coef_, exact.coef_, rtol=1e-12)
    np.testing.assert_allclose(approx.theta_, exact.theta_, rtol=1e-10)
    pd.testing.assert_frame_equal(approx.variance_shares_, exact.variance_shares_, rtol=1e-10)
    for f in exact.group_names_:
        pd.testing.assert_frame_equal(approx.random_effects_[f], exact.random_effects_[f])
    np.testing.assert_allclose(approx.predict(X, groups=groups), exact.predict(X, groups=groups))
    text = approx.summary()
    assert "(CrossedEffectsRegressor, approximate)" in text
    assert "Iterative solver converged in 17 iterations." in text
    assert "Variance shares:" in text
    if full:
        _assert_same_fit(approx, exact, X, groups)
    else:
        assert np.isnan(approx.log_likelihood_) and np.isnan(approx.aic_)
        assert "log-likelihood, AIC and BIC not computed" in text
        assert np.all(np.isnan(approx.fixed_effects_["std_error"]))


def test_auto_switches_to_iterative_above_threshold(monkeypatch, penicillin):
    X, y, groups = penicillin
    calls = []
    monkeypatch.setattr(core_iterative, "fit_crossed_iterative", _stub_solver(calls, True))
    monkeypatch.setattr(_crossed, "ITERATIVE_THRESHOLD", 5)  # sample: 6 levels > 5
    model = CrossedEffectsRegressor(tol=1e-4).fit(X, y, groups=groups)
    assert model.solver_ == "iterative" and len(calls) == 1 and calls[0]["tol"] == 1e-4
    monkeypatch.setattr(_crossed, "ITERATIVE_THRESHOLD", 6)
    assert CrossedEffectsRegressor().fit(X, y, groups=groups).solver_ == "exact"
    assert len(calls) == 1


def test_iterative_solver_approximates_exact_fit(three_factors):
    X, y, groups = three_factors
    approx = CrossedEffectsRegressor(solver="iterative", random_state=0).fit(X, y, groups=groups)
    exact = CrossedEffectsRegressor(solver="exact").fit(X, y, groups=groups)
    assert approx.approximate_ and approx.converged_
    sigma = np.sqrt(exact.residual_variance_)
    assert abs(approx.coef_[0] - exact.coef_[0]) < 0.05 * exact.fixed_effects_.iloc[1, 1] + 1e-3
    np.testing.assert_allclose(
        approx.variance_shares_["share"], exact.variance_shares_["share"], atol=0.02
    )
    np.testing.assert_allclose(
        approx.predict(X, groups=groups), exact.predict(X, groups=groups), atol=0.05 * sigma
    )
