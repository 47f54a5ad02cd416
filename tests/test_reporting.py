"""summary(), variance-component tables, the 95% ranges and the fit warnings."""

import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_mixed import MixedLinearRegressor, SingularFitWarning
from sklearn_mixed._results import effect_ranges
from sklearn_mixed.datasets import load_dyestuff2, load_pastes, load_sleepstudy


@pytest.fixture(scope="module")
def sleep_fit():
    df = load_sleepstudy()
    return MixedLinearRegressor(random_slopes=["Days"]).fit(
        df[["Days"]], df["Reaction"], groups=df["Subject"]
    )


def test_summary_reports_what_lme4_prints(sleep_fit):
    """lmer(Reaction ~ Days + (Days | Subject), sleepstudy): REML criterion
    1743.6, Subject sd 24.74 and 5.92 with correlation 0.07, residual sd 25.59,
    fixed effects 251.41 (6.82) and 10.47 (1.55), 18 subjects."""
    text = sleep_fit.summary()
    assert "REML criterion at convergence: 1743.628" in text
    assert re.search(r"Subject\s+\(Intercept\)\s+612\.1\s+24\.74", text)
    assert re.search(r"Days\s+35\.07\s+5\.922\s+0\.07", text)
    assert re.search(r"Residual\s+654\.9\s+25\.59", text)
    assert re.search(r"\(Intercept\)\s+251\.4051\s+6\.8246\s+36\.8383", text)
    assert "Number of obs: 180, groups:  Subject, 18" in text
    assert "AIC: 1755.6283" in text and "BIC: 1774.7860" in text
    # the ranges: a +- 1.96 tau for the intercepts, +- 1.96 sigma within a subject
    assert "95% of Subject (Intercept) values lie in 251.4 +- 48.49 = [202.9, 299.9]" in text
    assert "within +- 50.16 of that group's own mean" in text


def test_effect_ranges_are_center_plus_minus_z_sd(sleep_fit):
    table = effect_ranges(sleep_fit, level=0.99)
    tau = np.sqrt(np.diag(sleep_fit.random_effects_cov_["Subject"]))
    row = table.loc[("Subject", "(Intercept)")]
    assert row.center == pytest.approx(sleep_fit.intercept_)
    assert row.lower == pytest.approx(sleep_fit.intercept_ - 2.5758293 * tau[0])
    slope = table.loc[("Subject", "Days")]
    assert slope.upper == pytest.approx(sleep_fit.coef_[0] + 2.5758293 * tau[1])
    resid = table.loc[("Residual", "observations")]
    assert resid.std_dev == pytest.approx(np.sqrt(sleep_fit.residual_variance_))


def test_variance_components_table(sleep_fit):
    vc = sleep_fit.variance_components_
    assert list(vc.index) == [("Subject", "(Intercept)"), ("Subject", "Days"), ("Residual", "")]
    np.testing.assert_allclose(
        vc["variance"].to_numpy()[:2], np.diag(sleep_fit.random_effects_cov_["Subject"])
    )
    np.testing.assert_allclose(vc["std_dev"] ** 2, vc["variance"])


def test_nested_factors_are_reported():
    df = load_pastes().rename(columns={"sample": "batch:cask"})
    est = MixedLinearRegressor().fit(df[[]], df["strength"], groups=df[["batch", "batch:cask"]])
    assert est.nested_ == [("batch:cask", "batch")]
    assert "(batch:cask is nested in batch)" in est.summary()
    assert est.n_groups_ == {"batch": 10, "batch:cask": 30}


def test_singular_fit_warning_names_the_term():
    """lmer(Yield ~ 1 + (1 | Batch), Dyestuff2): isSingular is TRUE."""
    df = load_dyestuff2()
    with pytest.warns(SingularFitWarning, match=r"Batch \(Intercept\)"):
        est = MixedLinearRegressor().fit(df[[]], df["Yield"], groups=df["Batch"])
    assert est.singular_
    assert "boundary (singular) fit" in est.summary()


def test_convergence_warning_says_what_to_do():
    df = load_sleepstudy()
    # random intercepts: the moment start of slopes models is the optimum on
    # this balanced design (one iteration), that of intercepts is not
    with pytest.warns(ConvergenceWarning, match="Increase max_iter"):
        est = MixedLinearRegressor(max_iter=1).fit(
            df[["Days"]], df["Reaction"], groups=df["Subject"]
        )
    assert not est.converged_
    assert "did NOT converge" in est.summary()


def test_converged_fit_is_silent(sleep_fit):
    df = load_sleepstudy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = MixedLinearRegressor(random_slopes=["Days"]).fit(
            df[["Days"]], df["Reaction"], groups=df["Subject"]
        )
    assert est.converged_ and not est.singular_ and est.n_iter_ >= 1


def test_summary_without_groups():
    df = load_sleepstudy()
    est = MixedLinearRegressor().fit(df[["Days"]], df["Reaction"])
    text = est.summary()
    assert "No grouping factors" in text and "Random effects" not in text
