"""Data and comparisons shared by the tests of fits from chunks (partial_fit)
and from Dask collections: the same models as fit on the rows in memory.

Tolerance: the issue's 1e-8 relative on every estimate.  The sums of chunks
differ from those of all rows by rounding (~1e-15 relative) and the
optimizer, started from the same moments, follows the same path.
"""

import numpy as np
import pandas as pd
import pytest

from sklearn_mixed import CrossedEffectsRegressor, MixedLinearRegressor
from sklearn_mixed.datasets import load_pastes, load_penicillin, load_sleepstudy

RTOL = 1e-8


def sleepstudy():
    df = load_sleepstudy()
    return df[["Days"]], df["Reaction"], df["Subject"]


def weighted_sleepstudy():
    X, y, g = sleepstudy()
    w = pd.Series(np.random.default_rng(3).uniform(0.2, 3.0, len(y)), index=y.index)
    return X, y, g, w


def penicillin():
    df = load_penicillin()
    return np.empty((len(df), 0)), df["diameter"], df[["plate", "sample"]]


def pastes():
    df = load_pastes()
    groups = pd.DataFrame({"batch": df["batch"], "cask": df["batch"] + ":" + df["cask"]})
    return np.empty((len(df), 0)), df["strength"], groups


CASES = {
    "slopes": (lambda: MixedLinearRegressor(random_slopes=["Days"]), sleepstudy),
    "diagonal": (
        lambda: MixedLinearRegressor(random_slopes=["Days"], covariance="diagonal", method="ml"),
        sleepstudy,
    ),
    "weights": (lambda: MixedLinearRegressor(random_slopes=["Days"]), weighted_sleepstudy),
    "crossed": (lambda: CrossedEffectsRegressor(), penicillin),
    "nested": (lambda: MixedLinearRegressor(), pastes),
}


def take(obj, rows):
    if obj is None:
        return None
    return obj.iloc[rows] if hasattr(obj, "iloc") else obj[rows]


def assert_same_fit(a, b, rtol=RTOL):
    """Every estimate of two fits of the same model, to ``rtol``."""
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, rel=rtol)
    np.testing.assert_allclose(a.theta_, b.theta_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(
        a.coef_, b.coef_, rtol=rtol, atol=rtol * np.abs(b.coef_).max(initial=1)
    )
    assert a.intercept_ == pytest.approx(b.intercept_, rel=rtol)
    assert a.residual_variance_ == pytest.approx(b.residual_variance_, rel=rtol)
    np.testing.assert_allclose(a.fixed_effects_cov_, b.fixed_effects_cov_, rtol=1e3 * rtol)
    assert a.n_obs_ == b.n_obs_ and a.n_groups_ == b.n_groups_
    for name, modes in b.random_effects_.items():
        got = a.random_effects_[name]
        assert list(got.index) == list(modes.index)
        scale = np.abs(modes.to_numpy()).max()
        np.testing.assert_allclose(got.to_numpy(), modes.to_numpy(), atol=rtol * scale)
