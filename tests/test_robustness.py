"""Inputs that used to give a wrong answer or a raw error: a correct answer or a clear error.

- a response the fixed effects fit exactly (constant, all zeros, a line);
- a large constant added to y, or to a covariate, with an intercept;
- as many random effects as observations (lme4's check.nobs.vs.nRE);
- an exact solver whose dense block the machine cannot hold;
- prior weights of 0 (rows left out) and weights that are all equal.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sklearn_mixed import CrossedEffectsRegressor, MixedLinearRegressor
from sklearn_mixed.core.memory import DenseBlockTooLarge, check_dense_block
from sklearn_mixed.datasets import load_penicillin, load_sleepstudy
from sklearn_mixed.exceptions import ExactFitWarning


@pytest.fixture(scope="module")
def sleep():
    df = load_sleepstudy()
    return df[["Days"]], df["Reaction"], df["Subject"]


# ------------------------------------------------------------ exact fits
@pytest.mark.parametrize("response", ["constant", "zeros", "line"])
@pytest.mark.parametrize("slopes", [None, ["Days"]])
def test_response_fitted_exactly_by_the_fixed_effects(sleep, response, slopes):
    """lme4 returns sigma ~ 1e-17 with convergence warnings; the exact answer is
    sigma = 0, all variance components 0 and an unbounded likelihood."""
    X, y, g = sleep
    values = {"constant": 5.0, "zeros": 0.0, "line": 3.0 + 2.0 * X["Days"]}[response]
    y = pd.Series(np.broadcast_to(values, y.shape).astype(float), index=y.index)
    with pytest.warns(ExactFitWarning, match="fit the response exactly"):
        model = MixedLinearRegressor(random_slopes=slopes).fit(X, y, groups=g)
    assert model.residual_variance_ == 0.0 and model.log_likelihood_ == np.inf
    assert model.singular_ and model.converged_
    assert all(np.all(c == 0.0) for c in model.random_effects_cov_.values())
    expected = {"constant": (5.0, 0.0), "zeros": (0.0, 0.0), "line": (3.0, 2.0)}[response]
    # exact up to rounding of the cross-products (values of order 10)
    np.testing.assert_allclose([model.intercept_, model.coef_[0]], expected, atol=1e-10)
    np.testing.assert_allclose(model.predict(X, groups=g), y, atol=1e-9)


def test_constant_response_with_the_crossed_solver():
    df = load_penicillin()
    with pytest.warns(ExactFitWarning):
        model = CrossedEffectsRegressor(solver="exact").fit(
            df[[]], np.zeros(len(df)), groups=df[["plate", "sample"]]
        )
    assert model.residual_variance_ == 0.0


# ------------------------------------------------------------ shifts
@pytest.mark.parametrize("shift", [1e6, 1e8, -1e8])
@pytest.mark.parametrize("slopes", [None, ["Days"]])
def test_invariant_to_shifting_y(sleep, shift, slopes):
    """Only the intercept moves (by the shift): the sums are centred before the
    products.  Tolerances: the shifted data carry |shift| eps ~ 2e-8 of absolute
    rounding, which moves theta and the log-likelihood by far less than 1e-7."""
    X, y, g = sleep
    ref = MixedLinearRegressor(random_slopes=slopes).fit(X, y, groups=g)
    model = MixedLinearRegressor(random_slopes=slopes).fit(X, y + shift, groups=g)
    np.testing.assert_allclose(model.theta_, ref.theta_, rtol=1e-7, atol=1e-9)
    assert model.log_likelihood_ == pytest.approx(ref.log_likelihood_, abs=1e-7)
    assert model.intercept_ - shift == pytest.approx(ref.intercept_, abs=1e-6)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-7)
    np.testing.assert_allclose(model.fixed_effects_cov_, ref.fixed_effects_cov_, rtol=1e-6)


@pytest.mark.parametrize("shift", [1e6, 1e8])
def test_invariant_to_shifting_a_fixed_covariate(sleep, shift):
    """``Days + shift`` as a fixed effect only (random intercepts): the slope and
    the variance components are unchanged, the intercept absorbs ``shift x slope``."""
    X, y, g = sleep
    ref = MixedLinearRegressor().fit(X, y, groups=g)
    model = MixedLinearRegressor().fit(X + shift, y, groups=g)
    np.testing.assert_allclose(model.theta_, ref.theta_, rtol=1e-7)
    assert model.log_likelihood_ == pytest.approx(ref.log_likelihood_, abs=1e-7)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-7)
    assert model.intercept_ + shift * model.coef_[0] == pytest.approx(ref.intercept_, abs=1e-4)
    np.testing.assert_allclose(model.predict(X + shift, groups=g), ref.predict(X, groups=g))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shift=st.floats(-1e9, 1e9), scale=st.floats(1e-3, 1e3))
def test_affine_response_changes_only_location_and_scale(sleep, shift, scale):
    """``a y + b``: theta is unchanged, sigma and the coefficients scale by ``a``."""
    X, y, g = sleep
    ref = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=g)
    model = MixedLinearRegressor(random_slopes=["Days"]).fit(X, scale * y + shift, groups=g)
    # the optimizer's relative tolerance on the deviance (1e-10) bounds theta's change
    np.testing.assert_allclose(model.theta_, ref.theta_, rtol=1e-5, atol=1e-7)
    assert model.residual_variance_ == pytest.approx(scale**2 * ref.residual_variance_, rel=1e-6)
    assert model.coef_[0] == pytest.approx(scale * ref.coef_[0], rel=1e-6)


# ------------------------------------------------------------ identifiability
def test_as_many_random_effects_as_observations_is_refused(sleep):
    """``(1 + Days | Subject)`` with 2 rows per subject: 36 observations, 36 random
    effects; lme4 stops with "number of observations (=36) <= number of random
    effects (=36) for term (Days | Subject)"."""
    X, y, g = sleep
    keep = (X["Days"] < 2).to_numpy()
    with pytest.raises(ValueError, match=r"observations \(=36\) <= number of random effects"):
        MixedLinearRegressor(random_slopes=["Days"]).fit(X[keep], y[keep], groups=g[keep])
    MixedLinearRegressor().fit(X[keep], y[keep], groups=g[keep])  # 18 effects: fine


# ------------------------------------------------------------ memory
def test_dense_block_is_refused_before_allocating():
    with pytest.raises(DenseBlockTooLarge, match=r"150,001 x 150,001.*GiB.*solver='iterative'"):
        check_dense_block(150_001, "Use CrossedEffectsRegressor(solver='iterative').",
                          available=24 * 2**30)  # fmt: skip
    check_dense_block(10_000, "", available=24 * 2**30)  # 3.2 GB: fine


@pytest.mark.parametrize(
    "estimator", [MixedLinearRegressor(), CrossedEffectsRegressor(solver="exact")]
)
def test_huge_crossed_design_is_refused_at_once(estimator):
    """Two crossed factors of 150,000 and 200,000 levels: the exact solver's dense
    block (168 GiB) is refused with the memory it needs, not attempted."""
    rng = np.random.default_rng(0)
    n = 400_000
    a = np.concatenate([np.arange(150_000), rng.integers(0, 150_000, n - 150_000)])
    b = np.concatenate([np.arange(200_000), rng.integers(0, 200_000, n - 200_000)])
    groups = np.column_stack([a, b])
    y = rng.normal(size=n)
    with pytest.raises(MemoryError, match=r"150,00\d x 150,00\d.*(GiB|TiB).*iterative"):
        estimator.fit(np.empty((n, 0)), y, groups=groups)


# ------------------------------------------------------------ weights
def test_zero_weights_are_rows_left_out(sleep):
    X, y, g = sleep
    w = np.ones(len(y))
    w[[0, 5, 77]] = 0.0
    keep = w > 0
    model = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=g, sample_weight=w)
    ref = MixedLinearRegressor(random_slopes=["Days"]).fit(X[keep], y[keep], groups=g[keep])
    assert model.n_obs_ == 177
    assert model.log_likelihood_ == pytest.approx(ref.log_likelihood_, abs=1e-9)
    np.testing.assert_allclose(model.predict(X, groups=g), ref.predict(X, groups=g), rtol=1e-9)


@pytest.mark.parametrize("c", [0.5, 3.0])
def test_equal_weights_rescale_sigma_only(sleep, c):
    """``w = c`` for every row is the same distribution of y with ``sigma_w^2 = c
    sigma^2`` and ``theta_w = theta / sqrt(c)``: the coefficients and the
    log-likelihood (whose ``-log|W| / 2`` balances the larger sigma) do not move."""
    X, y, g = sleep
    ref = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = MixedLinearRegressor(random_slopes=["Days"]).fit(
            X, y, groups=g, sample_weight=np.full(len(y), c)
        )
    assert model.residual_variance_ == pytest.approx(c * ref.residual_variance_, rel=1e-7)
    np.testing.assert_allclose(model.theta_, ref.theta_ / np.sqrt(c), rtol=1e-5)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-7)
    assert model.log_likelihood_ == pytest.approx(ref.log_likelihood_, abs=1e-6)


def test_negative_weights_are_an_error(sleep):
    X, y, g = sleep
    with pytest.raises(ValueError, match="[Nn]egative"):
        MixedLinearRegressor().fit(X, y, groups=g, sample_weight=-np.ones(len(y)))
