"""Confidence intervals against lme4's ``confint.merMod``.

References: ``tests/data/lme4_confint/*.json``, written by
``Rscript tools/make_confint_references.R`` with lme4 1.1-31:
``confint(lmer(<formula>, <data>, REML = <REML>), method = "profile" | "Wald",
level = <level>, oldNames = FALSE)``, and the fixed effects' ends of the exact
ML profile (``uniroot`` on offset refits, ``exact_fixed``).

lme4 interpolates the profile with splines, so its ends carry an
interpolation error (Dyestuff2's intercept: 7e-4, Dyestuff's sd: 2e-3 against
the exact profile); ours are roots of the exact profile, compared with lme4's
within ``1e-3 max(1, |ref|)`` and with the exact ends computed in R
(``exact_fixed``, ``exact_sd``) within ``1e-6 max(1, |ref|)``.
"""

import doctest
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from joblib import parallel_config

from sklearn_mixed import CrossedEffectsRegressor, MixedLinearRegressor, datasets, inference
from sklearn_mixed.core import Diagonal, LinearMixedModel, Unstructured
from sklearn_mixed.core.profile import VarianceParameters

DATA = Path(__file__).parent / "data" / "lme4_confint"
REFERENCES = sorted(p.stem for p in DATA.glob("*.json"))
TOL_LME4 = 1e-3  # times max(1, |ref|): lme4's spline interpolation of the profile
TOL_EXACT = 1e-6  # times max(1, |ref|): the exact profile, computed in R by uniroot


def _load(name):
    return json.loads((DATA / f"{name}.json").read_text())


_FITTED = {}


def _fitted(name):
    """The reference's model, fitted once per test session."""
    if name not in _FITTED:
        ref = _load(name)
        df = getattr(datasets, f"load_{ref['data']}")()
        slopes = ref["random_slopes"] or None
        model = MixedLinearRegressor(
            random_slopes=slopes,
            covariance=ref["covariance"] if slopes else "unstructured",
            method="reml" if ref["REML"] else "ml",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Dyestuff2: a singular fit
            model.fit(df[ref["X"]], df[ref["y"]], groups=df[ref["groups"]])
        _FITTED[name] = model
    return _FITTED[name]


_INTERVALS = {}


def _confint(name, method, level):
    """``confint`` of the reference's model, computed once per session."""
    key = (name, method, level)
    if key not in _INTERVALS:
        _INTERVALS[key] = _fitted(name).confint(method, level=level)
    return _INTERVALS[key]


def _assert_ends_close(ours, lower, upper, tol):
    ref = np.column_stack([lower, upper]).astype(float)
    got = ours.to_numpy()
    both_nan = np.isnan(ref) & np.isnan(got)
    error = np.where(both_nan, 0.0, np.abs(got - ref) / np.maximum(1.0, np.abs(ref)))
    bad = ~(error <= tol)
    assert not bad.any(), f"off by {error[bad]} (relative to max(1, |ref|)):\n{ours[bad.any(1)]}"


@pytest.mark.parametrize("name", REFERENCES)
def test_intervals_match_lme4(name):
    for entry in _load(name)["intervals"]:
        method = {"profile": "profile", "Wald": "wald"}[entry["method"]]
        ours = _confint(name, method, entry["level"])
        assert list(ours.index) == entry["names"], entry["call"]
        assert list(ours.columns) == entry["columns"], entry["call"]
        lower = [np.nan if v is None else v for v in entry["lower"]]
        upper = [np.nan if v is None else v for v in entry["upper"]]
        _assert_ends_close(ours, lower, upper, TOL_LME4)


@pytest.mark.parametrize("name", REFERENCES)
def test_fixed_effect_ends_match_exact_profile(name):
    exact = _load(name)["exact_fixed"]
    fixed = list(exact["ends"])
    ours = _confint(name, "profile", exact["level"]).loc[fixed]
    lower = [exact["ends"][f]["lower"] for f in fixed]
    upper = [exact["ends"][f]["upper"] for f in fixed]
    _assert_ends_close(ours, lower, upper, TOL_EXACT)


def test_sd_ends_match_exact_profile():
    """Dyestuff: lme4's spline puts the sd's lower end 2e-3 from the exact profile
    (12.19854 against 12.19651, lme4's devfun2 minimized over sigma in R)."""
    exact = _load("dyestuff_reml")["exact_sd"]
    ours = _confint("dyestuff_reml", "profile", exact["level"]).loc["sd_(Intercept)|Batch"]
    _assert_ends_close(ours.to_frame().T, [exact["lower"]], [exact["upper"]], TOL_EXACT)


def test_singular_fit_lower_end_of_sd_is_zero():
    """Dyestuff2: the profile of the sd does not reach -z above 0 (lme4: 0)."""
    ours = _confint("dyestuff2_reml", "profile", 0.95)
    assert ours.loc["sd_(Intercept)|Batch", "2.5 %"] == 0.0
    assert ours.loc["sd_(Intercept)|Batch", "97.5 %"] > 0.0


def test_wald_is_beta_plus_minus_z_se():
    model = _fitted("sleepstudy_reml")
    ours = model.confint("wald", level=0.9)
    table = model.fixed_effects_
    z = 1.6448536269514722
    np.testing.assert_allclose(ours["5 %"].iloc[-2:], table["estimate"] - z * table["std_error"])
    np.testing.assert_allclose(ours["95 %"].iloc[-2:], table["estimate"] + z * table["std_error"])
    assert ours.iloc[:4].isna().all().all()


@pytest.mark.parametrize(
    "level, labels",
    [(0.95, ["2.5 %", "97.5 %"]), (0.9, ["5 %", "95 %"]), (0.99, ["0.5 %", "99.5 %"]),
     (0.999, ["0.05 %", "99.95 %"]), (0.5, ["25 %", "75 %"])],
)  # fmt: skip
def test_column_labels_are_r_percentages(level, labels):
    assert inference._percent_labels(level) == labels


def test_variance_parameters_round_trip():
    """theta -> (sd, cor, sigma) -> theta for a 3 x 3 unstructured and a diagonal term."""
    parameters = VarianceParameters([Unstructured(3), Diagonal(2)])
    theta = np.array([1.2, -0.4, 0.3, 0.8, 0.5, 0.6, 0.7, 0.2])
    omega = parameters.from_theta(theta, 2.5)
    T = Unstructured(3).relative_factor(theta[:6])
    cov = 2.5**2 * T @ T.T
    sd = np.sqrt(np.diag(cov))
    assert list(parameters.kinds) == ["sd", "cor", "cor", "sd", "cor", "sd", "sd", "sd", "sigma"]
    np.testing.assert_allclose(omega[[0, 3, 5]], sd)
    np.testing.assert_allclose(omega[1], cov[1, 0] / (sd[0] * sd[1]))
    np.testing.assert_allclose(omega[6:], [2.5 * 0.7, 2.5 * 0.2, 2.5])
    back, sigma = parameters.to_theta(omega)
    np.testing.assert_allclose(back, theta)
    assert sigma == 2.5


def _dyestuff():
    df = datasets.load_dyestuff()
    return MixedLinearRegressor().fit(df[[]], df["Yield"], groups=df["Batch"])


def test_bootstrap_percentile_intervals_bracket_the_profile_region():
    """Dyestuff, 200 replicates: ends of sigma and the intercept within a third of
    the profile interval's width of the profile's ends (lme4's boot with
    nsim = 1000 gives sigma [35.1, 62.6], intercept [1490, 1568])."""
    model = _dyestuff()
    boot = model.confint("bootstrap", n_boot=200, random_state=0)
    profile = model.confint("profile")
    rows = ["sigma", "(Intercept)"]
    width = (profile["97.5 %"] - profile["2.5 %"]).loc[rows]
    assert ((boot - profile).loc[rows].abs().max(axis=1) < width / 3).all(), (boot, profile)
    sd = boot.loc["sd_(Intercept)|Batch"]
    assert 0.0 <= sd["2.5 %"] < model.variance_components_["std_dev"].iloc[0] < sd["97.5 %"]


def test_bootstrap_is_reproducible_and_independent_of_n_jobs():
    """The same replicates on 1 or 2 workers (threads here: starting worker
    processes would cost seconds, and the seeding does not depend on the backend)."""
    model = _dyestuff()
    first = model.confint("bootstrap", n_boot=24, random_state=7)
    with parallel_config(backend="threading"):
        again = model.confint("bootstrap", n_boot=24, random_state=7, n_jobs=2)
    other = model.confint("bootstrap", n_boot=24, random_state=8)
    np.testing.assert_array_equal(first.to_numpy(), again.to_numpy())
    assert not np.allclose(first.to_numpy(), other.to_numpy())


def test_bootstrap_reports_failed_refits(monkeypatch, capsys):
    refit = LinearMixedModel.refit
    calls = []

    def failing_every_third(self, *args, **kwargs):
        calls.append(1)
        if len(calls) % 3 == 0:
            raise np.linalg.LinAlgError("simulated failure")
        return refit(self, *args, **kwargs)

    monkeypatch.setattr(LinearMixedModel, "refit", failing_every_third)
    with pytest.warns(UserWarning, match="10 of 30 bootstrap refits failed"):
        ours = _dyestuff().confint("bootstrap", n_boot=30, random_state=0, progress=True)
    assert np.isfinite(ours.to_numpy()).all()
    assert "30/30" in capsys.readouterr().err


def test_percentile_interval_interpolates_on_the_normal_scale():
    """boot.ci(type = "perc") on 1..99: rank (R + 1) a = 2.5 lies between 2 and 3."""
    values = np.arange(1.0, 100.0)
    lower, upper = inference._percentile_interval(values, (0.025, 0.975))
    assert 2.0 < lower < 3.0 and 97.0 < upper < 98.0
    assert inference._percentile_interval(values, (0.05, 0.95)) == [5.0, 95.0]


def test_iterative_fit_allows_only_wald():
    df = datasets.load_penicillin()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CrossedEffectsRegressor(solver="iterative", random_state=0)
        model.fit(df[[]], df["diameter"], groups=df[["plate", "sample"]])
    assert np.isfinite(model.confint("wald").loc["(Intercept)"]).all()
    for method in ("profile", "bootstrap"):
        with pytest.raises(ValueError, match="approximate iterative solver"):
            model.confint(method)


def test_docstring_examples():
    """The Examples of :mod:`sklearn_mixed.inference` and of the ``confint`` method."""
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(inference) + finder.find(MixedLinearRegressor.confint, "confint")
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 3
    assert result.failed == 0


def test_invalid_arguments():
    model = _dyestuff()
    with pytest.raises(ValueError, match="method must be one of"):
        model.confint("boot")
    with pytest.raises(ValueError, match="level must be in"):
        model.confint(level=95)
    with pytest.raises(ValueError, match="n_boot must be at least 2"):
        model.confint("bootstrap", n_boot=1)
    df = datasets.load_sleepstudy()
    plain = MixedLinearRegressor().fit(df[["Days"]], df["Reaction"])
    with pytest.raises(ValueError, match="fitted without groups"):
        plain.confint("profile")
