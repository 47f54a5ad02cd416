"""MixedEffectsEncoder: conditional modes as features, cross-fitted.

Identities against the package's own models (the encoding of a level is its
conditional mode), the cross-fitting's purpose (no leakage of a row's target
through its own level's encoding), and scikit-learn's transformer contract.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_mixed import (
    CrossedEffectsRegressor,
    MixedEffectsEncoder,
    MixedLinearRegressor,
    MixedLogisticRegression,
)


def _crossed(seed=0, n=1200):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"user": rng.integers(0, 80, n), "item": rng.integers(0, 25, n)})
    X = X.astype(str)
    u, i = rng.normal(size=80), 0.5 * rng.normal(size=25)
    y = 1.0 + u[X["user"].astype(int)] + i[X["item"].astype(int)] + rng.normal(size=n)
    return X, pd.Series(y, name="y")


def test_full_data_encoding_is_the_conditional_modes():
    """transform after fit: each level's mode of CrossedEffectsRegressor (and of
    MixedLinearRegressor, the same model) on the same rows, to rounding."""
    X, y = _crossed()
    encoder = MixedEffectsEncoder(return_std=True, return_counts=True).fit(X, y)
    crossed = CrossedEffectsRegressor().fit(np.empty((len(y), 0)), y, groups=X)
    mixed = MixedLinearRegressor().fit(np.empty((len(y), 0)), y, groups=X)
    out = encoder.transform(X)
    for j, name in enumerate(X.columns):
        modes = crossed.random_effects_[name].iloc[:, 0]
        expected = modes.reindex(X[name]).to_numpy()
        np.testing.assert_allclose(out[:, 3 * j], expected, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out[:, 3 * j], mixed.random_effects_[name].iloc[:, 0]
                                   .reindex(X[name]).to_numpy(), rtol=1e-7, atol=1e-9)  # fmt: skip
        sd = np.sqrt(crossed.random_effects_conditional_cov_[name][:, 0, 0])
        np.testing.assert_allclose(out[:, 3 * j + 1], pd.Series(sd, modes.index)
                                   .reindex(X[name]).to_numpy(), rtol=1e-10)  # fmt: skip
        np.testing.assert_array_equal(out[:, 3 * j + 2], X[name].map(X[name].value_counts()))
    assert encoder.intercept_ == pytest.approx(crossed.intercept_, rel=1e-12)
    assert list(encoder.get_feature_names_out()) == [
        "user_mode", "user_sd", "user_count", "item_mode", "item_sd", "item_count",
    ]  # fmt: skip


def test_unseen_levels_get_the_population_value():
    X, y = _crossed()
    encoder = MixedEffectsEncoder(return_std=True, return_counts=True).fit(X, y)
    out = encoder.transform(pd.DataFrame({"user": ["new"], "item": ["0"]}))
    prior_sd = np.sqrt(encoder.model_.random_effects_cov_["user"][0, 0])
    assert out[0, 0] == 0.0 and out[0, 1] == pytest.approx(prior_sd) and out[0, 2] == 0.0
    assert out[0, 3] != 0.0


def test_binary_target_uses_the_logistic_glmm():
    X, y = _crossed(1)
    event = (y > y.median()).map({True: "yes", False: "no"})
    encoder = MixedEffectsEncoder().fit(X, event)
    assert encoder.target_type_ == "binary" and list(encoder.classes_) == ["no", "yes"]
    glmm = MixedLogisticRegression().fit(np.empty((len(y), 0)), (event == "yes").astype(int),
                                         groups=X)  # fmt: skip
    expected = glmm.random_effects_["user"].iloc[:, 0].reindex(X["user"]).to_numpy()
    np.testing.assert_allclose(encoder.transform(X)[:, 0], expected, rtol=1e-8, atol=1e-10)


def test_cross_fitting_prevents_leakage():
    """A pure-noise column of 1000 levels of ~3 rows.  Here the full fit
    estimates a spurious variance for it (sd 0.08), so a row encoded by a model
    that saw it (fit then transform) carries its own noise: the encoded column
    correlates 0.49 with the rows' noise.  Cross-fitted, no row sees itself:
    correlation within 0.1 of 0 (5.5 standard errors 1 / sqrt(3000))."""
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame({"noise": rng.integers(0, 1000, n).astype(str),
                      "signal": rng.integers(0, 20, n).astype(str)})  # fmt: skip
    effect = rng.normal(size=20)
    noise = rng.normal(size=n)
    y = effect[X["signal"].astype(int)] + noise
    encoder = MixedEffectsEncoder().fit(X, y)
    assert encoder.model_.random_effects_cov_["noise"][0, 0] > 0.05**2  # spurious variance
    leaked = encoder.transform(X)[:, 0]
    crossed = MixedEffectsEncoder(random_state=0).fit_transform(X, y)[:, 0]
    assert np.corrcoef(leaked, noise)[0, 1] > 0.3
    assert abs(np.corrcoef(crossed, noise)[0, 1]) < 0.1


def test_cross_fitting_gives_a_noise_column_no_downstream_importance():
    """The same pure-noise column of 1000 levels, encoded for a downstream
    LinearRegression.  Naively (fit, then transform the training rows) the
    encoding carries each row's own noise and the model leans on it: its
    permutation importance (the drop in R^2 when shuffled) was 0.35 on the
    training rows.  Cross-fitted (fit_transform), 0.0002; the signal column's
    importance is about 0.5 either way.  Bounds: 0.2 and 0.01."""
    from sklearn.inspection import permutation_importance

    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame({"noise": rng.integers(0, 1000, n).astype(str),
                      "signal": rng.integers(0, 20, n).astype(str)})  # fmt: skip
    y = rng.normal(size=20)[X["signal"].astype(int)] + rng.normal(size=n)

    def importance(encoded):
        downstream = LinearRegression().fit(encoded, y)
        result = permutation_importance(downstream, encoded, y, n_repeats=10, random_state=0)
        return result.importances_mean

    naive = importance(MixedEffectsEncoder().fit(X, y).transform(X))
    crossed = importance(MixedEffectsEncoder(random_state=0).fit_transform(X, y))
    assert naive[0] > 0.2 and crossed[0] < 0.01
    assert crossed[1] > 0.3 and naive[1] > 0.3


def test_columns_without_levels_to_shrink_are_encoded_zero():
    """One level, or one level per row (an id): nothing to estimate a variance
    from; the column is left out of the model and encoded 0."""
    X, y = _crossed()
    X = X.assign(const="a", row_id=np.arange(len(y)).astype(str))
    encoder = MixedEffectsEncoder().fit(X, y)
    assert encoder.encoded_features_ == ["user", "item"]
    out = encoder.transform(X)
    np.testing.assert_array_equal(out[:, 2:], 0.0)


def test_missing_labels_are_refused():
    X, y = _crossed()
    X.loc[3, "user"] = None
    with pytest.raises(ValueError, match="missing labels"):
        MixedEffectsEncoder().fit(X, y)


def test_in_a_column_transformer_with_pandas_output():
    X, y = _crossed()
    X = X.assign(x=np.random.default_rng(0).normal(size=len(y)))
    pre = ColumnTransformer([("groups", MixedEffectsEncoder(random_state=0), ["user", "item"])],
                            remainder="passthrough").set_output(transform="pandas")  # fmt: skip
    model = make_pipeline(pre, LinearRegression()).fit(X, y)
    out = pre.transform(X)
    assert list(out.columns) == ["groups__user_mode", "groups__item_mode", "remainder__x"]
    assert model.score(X, y) > 0.4


# fit_transform cross-fits by design (each fold encoded by a model fitted on the
# others, as TargetEncoder), so it differs from transform after fit; these checks
# compare the two.  TargetEncoder passes them only because on the check data (a
# binary target separated by every column) its shrunk means are 0 and 1 in every
# fold; the logistic GLMM's modes of separated levels are as large as the bound
# on theta allows, which differs between folds.
_CROSS_FITTING = "fit_transform cross-fits: it differs from fit().transform() by design"
_EXPECTED_FAILED = {
    "check_transformer_general": _CROSS_FITTING,
    "check_transformer_general(readonly_memmap=True)": _CROSS_FITTING,
    "check_transformer_data_not_an_array": _CROSS_FITTING,
}


@parametrize_with_checks(
    [MixedEffectsEncoder(cv=3)], expected_failed_checks=lambda est: _EXPECTED_FAILED
)
def test_sklearn_compatible_encoder(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


def test_multiclass_target_is_one_logistic_glmm_per_class():
    """Three classes: each class's modes are those of MixedLogisticRegression
    fitted to its indicator (one-vs-rest), named <column>_<class>_mode."""
    rng = np.random.default_rng(5)
    n = 900
    X = pd.DataFrame({"store": rng.integers(0, 30, n).astype(str)})
    effect = rng.normal(size=(30, 3))[X["store"].astype(int)]
    y = np.array(["a", "b", "c"])[np.argmax(effect + rng.gumbel(size=(n, 3)), axis=1)]
    encoder = MixedEffectsEncoder(return_counts=True, random_state=0).fit(X, y)
    assert encoder.target_type_ == "multiclass"
    assert encoder.get_feature_names_out().tolist() == [
        "store_a_mode", "store_b_mode", "store_c_mode", "store_count"
    ]  # fmt: skip
    out = encoder.transform(X)
    for k, cls in enumerate(["a", "b", "c"]):
        ref = MixedLogisticRegression().fit(np.empty((n, 0)), (y == cls).astype(int), groups=X)
        modes = ref.random_effects_["store"].iloc[:, 0]
        np.testing.assert_allclose(out[:, k], modes.loc[X["store"]].to_numpy(), atol=1e-6)
        assert encoder.intercept_[k] == pytest.approx(ref.intercept_, abs=1e-6)
    np.testing.assert_array_equal(out[:, 3], X["store"].map(X["store"].value_counts()))
    cross = encoder.fit_transform(X, y)
    assert cross.shape == (n, 4) and not np.allclose(cross[:, :3], out[:, :3])


def test_a_splitter_passed_as_cv_is_used_as_given():
    """shuffle and random_state apply to an integer cv only: a KFold passed in
    is neither modified nor reseeded, so a seeded splitter reproduces."""
    from sklearn.model_selection import KFold

    X, y = _crossed(n=600)
    plain = KFold(4)
    MixedEffectsEncoder(cv=plain).fit_transform(X, y)
    assert plain.shuffle is False and plain.random_state is None
    seeded = KFold(4, shuffle=True, random_state=3)
    first = MixedEffectsEncoder(cv=seeded).fit_transform(X, y)
    np.testing.assert_array_equal(first, MixedEffectsEncoder(cv=seeded).fit_transform(X, y))


def test_a_column_without_variance_is_encoded_zero_in_every_fold():
    """A column whose variance the fit on all rows estimates as 0 is encoded 0
    by transform; fit_transform leaves it out of the fold models too (the
    same encoding, and no GLMM fit at a variance on its bound per fold)."""
    rng = np.random.default_rng(2)
    n = 2000
    X = pd.DataFrame({"a": rng.integers(0, 100, n).astype(str),
                      "flat": rng.integers(0, 14, n).astype(str)})  # fmt: skip
    y = rng.normal(size=100)[X["a"].astype(int)] + rng.normal(size=n)
    encoder = MixedEffectsEncoder(random_state=0).fit(X, y)
    assert encoder.model_.random_effects_cov_["flat"][0, 0] == 0.0  # this draw: REML at 0
    np.testing.assert_array_equal(encoder.transform(X)[:, 1], 0.0)
    np.testing.assert_array_equal(encoder.fit_transform(X, y)[:, 1], 0.0)


def test_folds_that_do_not_cover_every_row_once_are_refused():
    """A ShuffleSplit leaves rows in no test fold: fit_transform would have no
    cross-fitted encoding for them (once: uninitialized memory)."""
    from sklearn.model_selection import ShuffleSplit

    X, y = _crossed(n=300)
    with pytest.raises(ValueError, match="exactly one test fold"):
        MixedEffectsEncoder(cv=ShuffleSplit(2, test_size=0.2, random_state=0)).fit_transform(X, y)


def test_refitting_resets_the_target_attributes():
    """classes_ of a binary fit does not survive a continuous refit; with no
    column to encode, intercept_ is the population value on the linear
    predictor's scale (the logit of the share for a binary target)."""
    X, y = _crossed(n=300)
    binary = (y > y.median()).to_numpy()
    encoder = MixedEffectsEncoder().fit(X, binary)
    assert hasattr(encoder, "classes_")
    encoder.fit(X, y)
    assert not hasattr(encoder, "classes_")
    flat = pd.DataFrame({"a": ["u"] * 300})
    share = binary.mean()
    assert MixedEffectsEncoder().fit(flat, binary).intercept_ == pytest.approx(
        np.log(share / (1 - share))
    )
    assert MixedEffectsEncoder().fit(flat, y).intercept_ == pytest.approx(y.mean())
