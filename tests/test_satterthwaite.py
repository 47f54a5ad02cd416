"""Satterthwaite t-tests of the fixed effects against lmerTest.

References in ``data/lmertest/satterthwaite_*.json``, written by
``tools/make_lmertest_references.R`` (R 4.2.2, lme4 1.1-31, lmerTest 3.1-3):
``coef(summary(lmerTest::lmer(formula, data, REML = reml)))``, the R call in
each file (e.g. ``summary(lmerTest::lmer(Reaction ~ Days + (Days | Subject),
sleepstudy))``).  The numerical derivatives of
:mod:`sklearn_mixed.core.satterthwaite` are checked on functions with known
derivatives.
"""

import doctest
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sklearn_mixed import CrossedEffectsRegressor, MixedLinearRegressor, _fixed_tests
from sklearn_mixed.core.satterthwaite import (
    numerical_hessian,
    numerical_jacobian,
    satterthwaite_components,
    satterthwaite_df,
    unprofiled_deviance,
    varpar_covariance,
)
from sklearn_mixed.datasets import load_hsb82, load_penicillin, load_sleepstudy

DATA = Path(__file__).parent / "data" / "lmertest"
TOL_DF = 1e-3  # relative, df of our fit (our optimum is not lme4's to the last digit)
# log(p), relative: a p-value of 1e-111 (t = 67) moves by 0.4% for a change of
# 2e-5 in df, the distance between lme4's optimum and ours; log(p) by 2e-5
TOL_LOG_P = 1e-4
TOL_DF_SAME_ESTIMATES = 1e-6  # relative, df at lme4's theta and sigma: the numerics


def _sleep(**params):
    df = load_sleepstudy()
    return MixedLinearRegressor(**params).fit(df[["Days"]], df["Reaction"], groups=df["Subject"])


def _hsb82():
    df = load_hsb82()
    model = MixedLinearRegressor(random_slopes=["ses"])
    return model.fit(df[["ses"]], df["mAch"], groups=df["school"])


def _ergostool():
    df = pd.read_csv(Path(__file__).parent / "data" / "lme4_extra" / "ergostool.csv")
    df["Subject"] = df["Subject"].astype(str)
    features = ["TypeT2", "TypeT3", "TypeT4"]
    return MixedLinearRegressor().fit(df[features], df["effort"], groups=df["Subject"])


def _penicillin():
    df = load_penicillin()
    return CrossedEffectsRegressor().fit(df[[]], df["diameter"], groups=df[["plate", "sample"]])


MODELS = {
    "sleep_corr_reml": lambda: _sleep(random_slopes=["Days"]),
    "sleep_corr_ml": lambda: _sleep(random_slopes=["Days"], method="ml"),
    "sleep_uncorr_reml": lambda: _sleep(random_slopes=["Days"], covariance="diagonal"),
    "hsb82_corr_reml": _hsb82,
    "ergostool_reml": _ergostool,
    "penicillin_reml": _penicillin,
}


def _reference(name):
    return json.loads((DATA / f"satterthwaite_{name}.json").read_text())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_matches_lmertest(name):
    """df and Pr(>|t|) of coef(summary(lmerTest::lmer(...))), the call in the JSON."""
    ref = _reference(name)
    tests = MODELS[name]().fixed_effects_tests()
    assert tests.index.tolist() == ref["names"]
    assert list(tests.columns) == ["estimate", "std_error", "df", "t_value", "p_value"]
    np.testing.assert_allclose(tests["df"], ref["df"], rtol=TOL_DF)
    np.testing.assert_allclose(np.log(tests["p_value"]), np.log(ref["p"]), rtol=TOL_LOG_P)
    np.testing.assert_allclose(tests["t_value"], ref["t"], rtol=1e-4)
    if name.startswith("sleep") and name.endswith("reml"):
        # the p-values themselves to 1e-3 on sleepstudy's REML fits.  Elsewhere
        # p moves by 1-2.4e-3 between lme4's optimum and ours, whose criteria
        # are lower (penicillin REML by 8e-9, sleepstudy ML by 3e-8): the
        # numerics agree at lme4's estimates (the test below).
        np.testing.assert_allclose(tests["p_value"], ref["p"], rtol=1e-3)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_numerics_match_lmertest_at_lme4_estimates(name):
    """At lme4's own theta and sigma, the Hessian and Jacobian give lmerTest's df.

    (Our terms are in lme4's order, by decreasing number of levels, here.)
    """
    ref = _reference(name)
    model = MODELS[name]()
    components = satterthwaite_components(model.model_, np.array(ref["theta"]), ref["sigma"])
    df = components.df(np.eye(model.model_.p))
    np.testing.assert_allclose(df, ref["df"], rtol=TOL_DF_SAME_ESTIMATES)
    p_value = 2.0 * stats.t.sf(np.abs(ref["t"]), df)
    np.testing.assert_allclose(p_value, ref["p"], rtol=1e-4)
    se = np.sqrt(np.diag(components.beta_cov))
    np.testing.assert_allclose(se, ref["se"], rtol=1e-6)


def test_residual_df_is_a_plain_t_test():
    model = _sleep(random_slopes=["Days"])
    tests = model.fixed_effects_tests(ddf="residual")
    assert tests["df"].tolist() == [178.0, 178.0]
    expected = 2.0 * stats.t.sf(np.abs(tests["t_value"]), 178)
    np.testing.assert_allclose(tests["p_value"], expected, rtol=1e-12)
    satterthwaite = model.fixed_effects_tests()
    np.testing.assert_array_equal(tests["t_value"], satterthwaite["t_value"])


def test_linear_model_without_groups_has_residual_df():
    """Without random effects, REML's Satterthwaite df is exactly n - p
    (A = sigma^2 / (2 (n - p)), dV/dsigma = 2 V / sigma), and the test is
    ordinary least squares' (scipy's linregress)."""
    df = load_sleepstudy()
    model = MixedLinearRegressor().fit(df[["Days"]], df["Reaction"])
    tests = model.fixed_effects_tests()
    np.testing.assert_allclose(tests["df"], [178.0, 178.0], rtol=1e-6)
    ols = stats.linregress(df["Days"], df["Reaction"])
    assert tests.loc["Days", "std_error"] == pytest.approx(ols.stderr, rel=1e-9)
    assert tests.loc["Days", "p_value"] == pytest.approx(ols.pvalue, rel=1e-5)


def test_approximate_iterative_fit_is_rejected():
    df = load_penicillin()
    model = CrossedEffectsRegressor(solver="iterative", random_state=0)
    model.fit(df[[]], df["diameter"], groups=df[["plate", "sample"]])
    assert model.approximate_
    with pytest.raises(ValueError, match="approximate iterative fit"):
        model.fixed_effects_tests()


def test_a_hessian_that_is_not_positive_definite_warns():
    with pytest.warns(UserWarning, match="1 eigenvalue.*-1.0e-03.*boundary"):
        _fixed_tests._warn_about_hessian(np.array([-1e-3, 2.0]))


def test_unknown_ddf_is_an_error():
    with pytest.raises(ValueError, match="ddf must be"):
        _sleep().fixed_effects_tests(ddf="kenward-roger")


def test_unprofiled_deviance_at_sigma_hat_is_the_fitted_deviance():
    """d(theta, sigma) at sigma^2 = r^2 / nu is the profiled deviance of the fit."""
    for method in ["reml", "ml"]:
        model = _sleep(random_slopes=["Days"], method=method)
        pieces = model.model_.pieces(model.theta_)
        value = unprofiled_deviance(pieces, np.sqrt(model.residual_variance_), model.model_)
        assert value == pytest.approx(model.deviance_, rel=1e-12)
        # the model's columns are centred: Var(beta) of the uncentred ones by J V J'
        J = np.array([[1.0, -model.model_.reduction.shift_X[1]], [0.0, 1.0]])
        np.testing.assert_allclose(
            model.residual_variance_ * J @ pieces.unscaled_beta_cov @ J.T,
            model.fixed_effects_cov_,
            rtol=1e-10,
        )


# ----------------------------------------------------------- numerics
def _cubic(x):
    return x[0] ** 2 * x[1] ** 3 + np.exp(x[0]) + 3.0 * x[1]


def test_numerical_hessian_of_a_known_function():
    x = np.array([0.7, 1.3])
    exact = np.array(
        [
            [2.0 * x[1] ** 3 + np.exp(x[0]), 6.0 * x[0] * x[1] ** 2],
            [6.0 * x[0] * x[1] ** 2, 6.0 * x[0] ** 2 * x[1]],
        ]
    )
    np.testing.assert_allclose(numerical_hessian(_cubic, x), exact, rtol=1e-8)


def test_numerical_hessian_at_zero_uses_an_absolute_step():
    x = np.array([0.0, 2.0])
    H = numerical_hessian(_cubic, x)
    # steps of 1e-4 (numDeriv's eps) leave rounding noise of ~1e-7 relative
    assert H[0, 0] == pytest.approx(2.0 * 8.0 + 1.0, rel=1e-6)
    assert H[0, 1] == pytest.approx(0.0, abs=1e-7)


def test_numerical_jacobian_of_a_matrix_function():
    def f(x):
        return np.array([[x[0] * x[1], np.sin(x[0])], [x[1] ** 2, 1.0]])

    x = np.array([0.4, -1.5])
    J = numerical_jacobian(f, x)
    assert J.shape == (2, 2, 2)
    np.testing.assert_allclose(J[0], [[x[1], np.cos(x[0])], [0.0, 0.0]], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(J[1], [[x[0], 0.0], [2.0 * x[1], 0.0]], rtol=1e-9, atol=1e-12)


def test_varpar_covariance_drops_non_positive_directions():
    H = np.diag([4.0, 0.0, -1.0])
    A, eigenvalues = varpar_covariance(H)
    np.testing.assert_allclose(A, np.diag([0.5, 0.0, 0.0]))
    np.testing.assert_allclose(eigenvalues, [-1.0, 0.0, 4.0])


def test_satterthwaite_df_of_a_chi_square_variance():
    """V = sigma^2 / n with Var(sigma^2 estimate) = 2 sigma^4 / nu gives df = nu."""
    sigma2, n, nu = 3.0, 10.0, 7.0
    V = np.array([[sigma2 / n]])
    jacobians = np.array([[[1.0 / n]]])  # dV / d(sigma^2)
    A = np.array([[2.0 * sigma2**2 / nu]])
    assert satterthwaite_df(np.eye(1), V, jacobians, A)[0] == pytest.approx(nu, rel=1e-12)


def test_docstring_example():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(MixedLinearRegressor.fixed_effects_tests, "fixed_effects_tests"):
        runner.run(test)
    assert runner.tries > 0 and runner.failures == 0
