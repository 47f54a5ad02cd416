"""The GLMM estimators in scikit-learn and on their own: estimator checks, routing,
scorers, pickling, invariances, the analytic gradient, marginal means and bad input."""

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
import sklearn
from scipy.special import expit
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, PoissonRegressor
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, cross_validate
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_mixed import (
    MixedLogisticRegression,
    MixedPoissonRegressor,
    anova,
    make_group_scorer,
)
from sklearn_mixed.core import ModelRows, RandomTerm
from sklearn_mixed.core.glmm import GeneralizedLinearMixedModel
from sklearn_mixed.core.laplace_gradient import laplace_gradient
from sklearn_mixed.core.quadrature import quadrature_gradient

# The saturated fit of the check's data (as many fixed effects as rows of positive
# weight) has its maximum likelihood at infinity: the weighted and the repeated
# fits stop at different points of the divergence.
_SATURATED = {
    "check_sample_weight_equivalence_on_dense_data": (
        "unpenalized maximum likelihood of a saturated design diverges"
    ),
}


@parametrize_with_checks(
    [MixedLogisticRegression(), MixedPoissonRegressor()],
    expected_failed_checks=lambda est: _SATURATED,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def _binary(n_groups=40, per=25, seed=0, slope_sd=0.0):
    rng = np.random.default_rng(seed)
    g = np.repeat([f"g{j:02d}" for j in range(n_groups)], per)
    x = rng.normal(size=g.size)
    z = rng.normal(size=g.size)
    b = rng.normal(0, 1.2, n_groups)
    s = rng.normal(0, slope_sd, n_groups)
    codes = np.repeat(np.arange(n_groups), per)
    eta = -0.3 + 0.8 * x - 0.5 * z + b[codes] + s[codes] * x
    y = rng.random(g.size) < expit(eta)
    return pd.DataFrame({"x": x, "z": z}), np.where(y, "yes", "no"), pd.Series(g, name="g")


@pytest.fixture(scope="module")
def binary():
    return _binary()


# ------------------------------------------------------------- scikit-learn
def test_classes_labels_and_probabilities(binary):
    X, y, g = binary
    clf = MixedLogisticRegression().fit(X, y, groups=g)
    assert list(clf.classes_) == ["no", "yes"]
    proba = clf.predict_proba(X, groups=g)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, 1], expit(clf.decision_function(X, groups=g)))
    assert set(clf.predict(X, groups=g)) <= {"no", "yes"}
    assert clf.score(X, y, groups=g) > 0.7
    np.testing.assert_allclose(clf.predict_log_proba(X, groups=g), np.log(proba))


def test_without_groups_is_logistic_regression(binary):
    X, y, _ = binary
    mixed = MixedLogisticRegression().fit(X, y)
    plain = LogisticRegression(C=np.inf, tol=1e-12, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(mixed.coef_, plain.coef_[0], rtol=1e-6)
    assert mixed.intercept_ == pytest.approx(plain.intercept_[0], rel=1e-6)


def test_poisson_without_groups_is_poisson_regression():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = rng.poisson(np.exp(0.2 + X @ [0.3, -0.4]))
    mixed = MixedPoissonRegressor().fit(X, y)
    plain = PoissonRegressor(alpha=0, tol=1e-12, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(mixed.coef_, plain.coef_, rtol=1e-6)


def test_random_effects_beat_plain_logistic_in_group_cv(binary):
    """Group shrinkage pays on seen groups: KFold over rows, log loss of the
    probabilities with the groups routed to predict_proba."""
    X, y, g = binary
    scorer = make_group_scorer(log_loss, greater_is_better=False, response_method="predict_proba")
    with sklearn.config_context(enable_metadata_routing=True):
        mixed = cross_validate(
            MixedLogisticRegression(),
            X,
            y,
            scoring=scorer,
            cv=KFold(5, shuffle=True, random_state=0),
            params={"groups": g},
        )
    plain = cross_validate(LogisticRegression(), X, y, scoring="neg_log_loss",
                           cv=KFold(5, shuffle=True, random_state=0))  # fmt: skip
    assert mixed["test_score"].mean() > plain["test_score"].mean() + 0.02


def test_group_cols_in_grid_search_with_roc_auc(binary):
    X, y, g = binary
    data = X.assign(g=g)
    search = GridSearchCV(
        MixedLogisticRegression(group_cols=["g"]),
        {"new_groups": ["population", "marginal"]},
        scoring="roc_auc",
        cv=GroupKFold(3),
    )
    search.fit(data, y, groups=g)  # GroupKFold: every test level unseen
    assert search.best_score_ > 0.65
    scorer = make_group_scorer(roc_auc_score, response_method="predict_proba")
    model = MixedLogisticRegression().fit(X, y, groups=g)
    assert scorer(model, X, y, groups=g) == pytest.approx(
        roc_auc_score(y, model.predict_proba(X, groups=g)[:, 1])
    )


def test_pickle_and_clone(binary):
    X, y, g = binary
    clf = MixedLogisticRegression(random_slopes=["x"]).fit(X, y, groups=g)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X, groups=g), clf.predict_proba(X, groups=g))
    assert clone(clf).get_params() == clf.get_params()


def test_poisson_offset_is_routed():
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(30), 20)
    x = rng.normal(size=(g.size, 1))
    exposure = rng.uniform(0.5, 3, g.size)
    y = rng.poisson(exposure * np.exp(0.1 + 0.5 * x[:, 0] + rng.normal(0, 0.5, 30)[g]))
    with sklearn.config_context(enable_metadata_routing=True):
        folds = KFold(3, shuffle=True, random_state=0)
        cv = cross_validate(MixedPoissonRegressor(), x, y, cv=folds,
                            params={"groups": g, "offset": np.log(exposure)})  # fmt: skip
    assert np.all(cv["test_score"] > 0.3)


# ------------------------------------------------------------- invariances
def test_row_order_and_level_labels_do_not_matter(binary):
    X, y, g = binary
    base = MixedLogisticRegression().fit(X, y, groups=g)
    perm = np.random.default_rng(5).permutation(len(y))
    renamed = g.map(lambda s: "level " + s[::-1])
    other = MixedLogisticRegression().fit(X.iloc[perm], y[perm], groups=renamed.iloc[perm])
    assert other.log_likelihood_ == pytest.approx(base.log_likelihood_, abs=1e-7)
    np.testing.assert_allclose(other.coef_, base.coef_, atol=1e-6)
    np.testing.assert_allclose(
        other.predict_proba(X, groups=renamed), base.predict_proba(X, groups=g), atol=1e-6
    )


def test_swapping_labels_negates_the_fixed_effects(binary):
    X, y, g = binary
    a = MixedLogisticRegression().fit(X, y, groups=g)
    b = MixedLogisticRegression().fit(X, np.where(y == "yes", "a", "b"), groups=g)
    np.testing.assert_allclose(a.coef_, -b.coef_, atol=1e-6)
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, abs=1e-7)


def test_integer_weights_equal_repeated_rows(binary):
    X, y, g = binary
    w = np.random.default_rng(3).integers(1, 4, len(y))
    rep = np.repeat(np.arange(len(y)), w)
    weighted = MixedLogisticRegression().fit(X, y, groups=g, sample_weight=w)
    repeated = MixedLogisticRegression().fit(X.iloc[rep], y[rep], groups=g.iloc[rep])
    assert weighted.log_likelihood_ == pytest.approx(repeated.log_likelihood_, abs=1e-6)
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, atol=1e-5)


def test_nagq_one_is_the_laplace_fit(binary):
    X, y, g = binary
    laplace = MixedLogisticRegression().fit(X, y, groups=g)
    agq = MixedLogisticRegression(nagq=9).fit(X, y, groups=g)
    assert laplace.model_.deviance(laplace.theta_, laplace.model_.result.beta) == pytest.approx(
        laplace.deviance_
    )
    assert abs(agq.log_likelihood_ - laplace.log_likelihood_) < 1.0
    assert agq.summary().count("Adaptive Gauss-Hermite") == 1


def _model(seed=0, family="binomial"):
    """A GLMM with a correlated random slope on ``g`` and a crossed intercept on ``h``."""
    X, y, g = _binary(n_groups=25, per=12, seed=seed, slope_sd=0.5)
    codes, levels = pd.factorize(g, sort=True)
    covariates = np.column_stack([np.ones(len(y)), X["x"]])
    slope = RandomTerm("g", codes, np.asarray(levels), covariates, ("(Intercept)", "x"))
    h = np.random.default_rng(seed).integers(0, 7, len(y))
    crossed = RandomTerm("h", h, np.arange(7), np.ones((len(y), 1)), ("(Intercept)",))
    design = np.column_stack([np.ones(len(y)), X.to_numpy()])
    response = (y == "yes").astype(float)
    if family == "poisson":
        response = np.random.default_rng(seed).poisson(np.exp(0.3 * X["x"].to_numpy()))
    rows = ModelRows(design, np.asarray(response, float), (slope, crossed), None, None, 0)
    return GeneralizedLinearMixedModel(rows, family)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
@pytest.mark.parametrize("beta_fixed", [True, False])
@pytest.mark.parametrize("factor", ["dense", "blocked"])
def test_laplace_gradient_matches_central_differences(family, beta_fixed, factor, monkeypatch):
    """Both factors of the working fit (penalized_system); tolerance 1e-5
    relative: central differences with h = 1e-5 have error ~h^2 |D'''| plus
    rounding ~1e-13 |D| / h."""
    if factor == "blocked":  # no working fit is dense: g eliminated, h dense
        monkeypatch.setattr("sklearn_mixed.core.model.DENSE_SIZE_LIMIT", 0)
    model = _model(family=family)
    theta = np.array([0.8, 0.2, 0.4, 0.6])
    beta = np.array([-0.2, 0.7, -0.4]) if beta_fixed else None
    state = model.pirls(theta, beta)
    assert state.model.penalized_system(theta)[0] == factor
    grad = laplace_gradient(model.predictor, model.family, model.prior, state, theta,
                            model.layout, beta_fixed)  # fmt: skip
    x = np.concatenate([theta, beta]) if beta_fixed else theta
    k = theta.size
    fd = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = 1e-5
        up = model.deviance(x[:k] + e[:k], None if beta is None else x[k:] + e[k:])
        down = model.deviance(x[:k] - e[:k], None if beta is None else x[k:] - e[k:])
        fd[i] = (up - down) / 2e-5
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5)


def test_marginal_probability_integrates_the_random_effect():
    """For a level not seen, new_groups="marginal" is E[expit(eta + b)], b ~ N(0,
    sigma^2) (checked by Monte Carlo to 3e-3, 4 standard errors of 2e5 draws),
    which lies between expit(eta) and 1/2."""
    X, y, g = _binary()
    model = MixedLogisticRegression(new_groups="marginal").fit(X, y, groups=g)
    X_new = pd.DataFrame({"x": [2.0, -1.5], "z": [0.0, 0.5]})
    unseen = pd.Series(["new", "new"], name="g")
    p = model.predict_proba(X_new, groups=unseen)[:, 1]
    eta = model.decision_function(X_new, groups=unseen)
    sd = np.sqrt(model.random_effects_cov_["g"][0, 0])
    draws = np.random.default_rng(0).normal(0, sd, 200_000)
    mc = expit(eta[:, None] + draws[None, :]).mean(axis=1)
    np.testing.assert_allclose(p, mc, atol=3e-3)
    assert np.all(np.abs(p - 0.5) < np.abs(expit(eta) - 0.5))
    # seen levels use their modes whatever new_groups says
    seen = g.iloc[:2].to_numpy()
    conditional = copy.deepcopy(model).set_params(new_groups="population")
    np.testing.assert_allclose(
        model.predict_proba(X_new, groups=seen), conditional.predict_proba(X_new, groups=seen)
    )


def test_poisson_marginal_mean_is_lognormal():
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(30), 15)
    y = rng.poisson(np.exp(0.5 + rng.normal(0, 0.6, 30)[g]))
    model = MixedPoissonRegressor(new_groups="marginal").fit(np.zeros((g.size, 0)), y, groups=g)
    mean = model.predict(np.zeros((1, 0)), groups=[999])
    var = model.random_effects_cov_[model.group_names_[0]][0, 0]
    assert mean[0] == pytest.approx(np.exp(model.intercept_ + var / 2), rel=1e-12)


# ------------------------------------------------------- inference, anova
def test_wald_and_profile_intervals(binary):
    X, y, g = binary
    model = MixedLogisticRegression().fit(X, y, groups=g)
    wald = model.confint()
    profile = model.confint(method="profile")
    assert list(profile.index) == ["sd_(Intercept)|g", "(Intercept)", "x", "z"]
    assert np.isnan(wald.iloc[0]).all()
    # profile and Wald agree for well-determined fixed effects, to ~10% of a width
    width = wald["97.5 %"] - wald["2.5 %"]
    np.testing.assert_array_less(np.abs(profile.iloc[1:] - wald.iloc[1:]).max(axis=1),
                                 0.1 * width.iloc[1:])  # fmt: skip
    sd = np.sqrt(model.random_effects_cov_["g"][0, 0])
    assert profile.iloc[0, 0] < sd < profile.iloc[0, 1]
    # the profile ends are where the deviance rose by 1.96^2
    fit = model.model_.result
    lo = profile.loc["x", "2.5 %"]
    restricted = _restricted_deviance(model, 1, lo)
    assert restricted - fit.deviance == pytest.approx(1.959964**2, abs=2e-3)


def _restricted_deviance(model, j, value):
    from scipy.optimize import minimize

    fit = model.model_.result
    k = fit.theta.size

    def objective(x):
        beta = np.insert(x[k:], j, value)
        return model.model_.deviance(np.abs(x[:k]), beta)

    x0 = np.concatenate([fit.theta, np.delete(fit.beta, j)])
    return minimize(objective, x0, method="Nelder-Mead",
                    options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000}).fun  # fmt: skip


def test_anova_between_nested_glmms(binary):
    X, y, g = binary
    small = MixedLogisticRegression(fixed_features=["x"]).fit(X, y, groups=g)
    large = MixedLogisticRegression().fit(X, y, groups=g)
    table = anova(small, large, names=["x", "x + z"])
    chisq = 2 * (large.log_likelihood_ - small.log_likelihood_)
    assert table.loc["x + z", "Chisq"] == pytest.approx(chisq)
    assert table.loc["x + z", "Df"] == 1
    assert table.attrs["refitted"] == []


# ------------------------------------------------------------------ bad input
def test_bad_input_is_refused_clearly(binary):
    X, y, g = binary
    with pytest.raises(ValueError, match="Only binary classification"):
        MixedLogisticRegression().fit(X, np.arange(len(y)) % 3, groups=g)
    with pytest.raises(ValueError, match="counts"):
        MixedPoissonRegressor().fit(X, -np.ones(len(y)), groups=g)
    with pytest.raises(ValueError, match="single scalar random"):
        MixedLogisticRegression(nagq=5, random_slopes=["x"]).fit(X, y, groups=g)
    with pytest.raises(ValueError, match="offset has 3 values"):
        MixedPoissonRegressor().fit(X, np.ones(len(y)), groups=g, offset=np.zeros(3))
    model = MixedLogisticRegression(new_groups="error").fit(X, y, groups=g)
    with pytest.raises(ValueError, match="not seen in fit"):
        model.predict(X.iloc[:2], groups=["g00", "unseen"])


def test_observation_level_random_effect_is_allowed():
    """An overdispersed Poisson with one level per row (lme4's (1 | obs)): no
    residual variance to confound it with, so it is fitted, not refused."""
    rng = np.random.default_rng(6)
    n = 200
    y = rng.poisson(np.exp(1.0 + rng.normal(0, 0.7, n)))
    obs = np.arange(n)
    model = MixedPoissonRegressor().fit(np.zeros((n, 0)), y, groups=obs)
    sd = np.sqrt(model.random_effects_cov_[model.group_names_[0]][0, 0])
    assert 0.4 < sd < 1.0


@pytest.mark.parametrize("nagq", [2, 5, 15])
def test_quadrature_gradient_matches_central_differences(nagq):
    """The AGQ criterion's gradient with its adaptive nodes moving with the mode
    (exact, not the fixed-node rule); tolerance as the Laplace gradient's."""
    X, y, g = _binary(n_groups=25, per=12, seed=2)
    model = MixedLogisticRegression(nagq=nagq).fit(X, y, groups=g).model_
    theta, beta = model.theta * 1.3, model.beta + 0.2
    state = model.pirls(theta, beta)
    grad = quadrature_gradient(model.predictor, model.family, model.prior, state, nagq)
    x = np.concatenate([theta, beta])
    fd = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = 1e-5
        fd[i] = (model.deviance((x + e)[:1], (x + e)[1:])
                 - model.deviance((x - e)[:1], (x - e)[1:])) / 2e-5  # fmt: skip
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5)


def test_huge_crossed_glmm_is_refused_at_once():
    """Two crossed factors of 150,000 and 200,000 levels: the working fits' dense
    block (168 GiB) is refused with the memory it needs and advice for GLMMs,
    before the first PIRLS step allocates it."""
    rng = np.random.default_rng(0)
    n = 400_000
    a = np.concatenate([np.arange(150_000), rng.integers(0, 150_000, n - 150_000)])
    b = np.concatenate([np.arange(200_000), rng.integers(0, 200_000, n - 200_000)])
    y = rng.random(n) < 0.3
    with pytest.raises(MemoryError, match=r"150,00\d x 150,00\d.*(GiB|TiB).*solver='iterative'"):
        MixedLogisticRegression().fit(np.empty((n, 0)), y, groups=np.column_stack([a, b]))


@pytest.fixture(scope="module")
def crossed_binary():
    rng = np.random.default_rng(11)
    n, ma, mb = 4000, 400, 120
    a, b = rng.integers(0, ma, n), rng.integers(0, mb, n)
    x = rng.normal(size=(n, 1))
    eta = -0.5 + 0.7 * x[:, 0] + rng.normal(0, 0.8, ma)[a] + rng.normal(0, 0.5, mb)[b]
    y = rng.random(n) < expit(eta)
    groups = np.column_stack([a, b])
    exact = MixedLogisticRegression().fit(x, y, groups=groups)
    iterative = MixedLogisticRegression(solver="iterative").fit(x, y, groups=groups)
    return exact, iterative


def test_iterative_glmm_agrees_with_the_exact_fit(crossed_binary):
    """Crossed random intercepts by PCG and stochastic Lanczos quadrature (the
    120-level factor's Schur system, above the dense size of 64, so the
    log-determinant is estimated): the same two-stage Laplace fit within the
    Monte Carlo error of the log-likelihood (reported) and the optimizers'
    tolerance (1e-3 in log theta); standard errors from the PIRLS system
    instead of lme4's Hessian (a few percent)."""
    exact, iterative = crossed_binary
    assert iterative.solver_ == "iterative" and exact.solver_ == "exact"
    assert iterative.log_likelihood_se_ > 0
    tol = 4 * iterative.log_likelihood_se_ + 2e-3
    assert abs(iterative.log_likelihood_ - exact.log_likelihood_) < tol
    se = exact.fixed_effects_["std_error"].to_numpy()
    np.testing.assert_array_less(np.abs(iterative.model_.result.beta - exact.model_.result.beta),
                                 0.05 * se)  # fmt: skip
    np.testing.assert_allclose(iterative.theta_, exact.theta_, rtol=0.02)
    # PIRLS (RX) against lme4's Hessian standard errors: 1-5% apart (4.5% for x here)
    np.testing.assert_allclose(iterative.fixed_effects_["std_error"], se, rtol=0.06)
    for g in exact.group_names_:
        sd = np.sqrt(exact.random_effects_cov_[g][0, 0])
        np.testing.assert_allclose(iterative.random_effects_[g], exact.random_effects_[g],
                                   atol=0.02 * sd)  # fmt: skip
        np.testing.assert_allclose(iterative.random_effects_conditional_cov_[g],
                                   exact.random_effects_conditional_cov_[g], rtol=0.1)  # fmt: skip
    assert "iterative solver" in iterative.summary()


def test_iterative_glmm_refuses_slopes(binary):
    X, y, g = binary
    with pytest.raises(ValueError, match="random intercepts only"):
        MixedLogisticRegression(solver="iterative", random_slopes=["x"]).fit(X, y, groups=g)
