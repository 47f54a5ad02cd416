"""summary(), variance-component tables, the 95% ranges and the fit warnings."""

import html
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_mixed import (
    MixedLinearRegressor,
    MixedLogisticRegression,
    SingularFitWarning,
    anova,
    information_criteria,
)
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


# ------------------------------------------------- tables print whole at any width
NARROW = ("display.width", 40, "display.max_columns", 3, "display.max_rows", 1)


def _assert_prints_whole(table):
    """Every column name, every row label and every value's row show in print()."""
    with pd.option_context(*NARROW):
        text = str(table)
        assert repr(table) == text
        notebook = table._repr_html_()
    assert "..." not in text
    lines = text.splitlines()
    for column in table.columns:
        assert str(column) in text
        assert html.escape(str(column)) in notebook
    for label in table.index:
        assert any(line.startswith(str(label)) for line in lines), (label, text)
    assert text == table.to_string()


@pytest.fixture(scope="module")
def sleep_models():
    df = load_sleepstudy()
    X, y, subject = df[["Days"]], df["Reaction"], df["Subject"]
    m0 = MixedLinearRegressor().fit(X, y, groups=subject)
    m1 = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=subject)
    return m0, m1


@pytest.fixture(scope="module")
def binary_models():
    rng = np.random.default_rng(0)
    g = np.repeat([f"g{j:02d}" for j in range(30)], 20)
    x, z = rng.normal(size=g.size), rng.normal(size=g.size)
    b = rng.normal(0, 1.0, 30)[np.repeat(np.arange(30), 20)]
    y = (rng.random(g.size) < 1 / (1 + np.exp(-(0.8 * x - 0.5 * z + b)))).astype(int)
    X, groups = pd.DataFrame({"x": x, "z": z}), pd.Series(g, name="g")
    small = MixedLogisticRegression(fixed_features=["x"]).fit(X, y, groups=groups)
    large = MixedLogisticRegression().fit(X, y, groups=groups)
    return small, large


def test_anova_of_lmms_prints_whole(sleep_models):
    table = anova(*sleep_models, names=["intercept", "slope"])
    _assert_prints_whole(table)
    assert len(table.columns) == 8 and list(table.index) == ["intercept", "slope"]
    # still a DataFrame to compute with
    assert isinstance(table, pd.DataFrame)
    assert table.loc["slope", "Df"] == 2
    assert (table["npar"] == [4, 6]).all()
    pd.testing.assert_series_equal(table["AIC"], -2 * table["logLik"] + 2 * table["npar"],
                                   check_names=False)  # fmt: skip
    _assert_prints_whole(table.round(2))  # derived tables print whole too
    assert type(pd.DataFrame(table)) is pd.DataFrame


def test_anova_of_glmms_prints_whole(binary_models):
    table = anova(*binary_models, names=["x", "x + z"])
    _assert_prints_whole(table)
    assert list(table.columns)[-1] == "Pr(>Chisq)"
    assert table.loc["x + z", "Df"] == 1


def test_f_tests_and_criteria_print_whole(sleep_models):
    for table in (
        anova(sleep_models[1]),
        sleep_models[1].fixed_effects_tests(),
        information_criteria(*sleep_models),
    ):
        _assert_prints_whole(table)


@pytest.mark.parametrize("which", ["lmm", "glmm"])
def test_summary_prints_whole(sleep_models, binary_models, which):
    model = sleep_models[1] if which == "lmm" else binary_models[1]
    with pd.option_context(*NARROW):
        narrow = model.summary()
    assert narrow == model.summary()  # independent of the display options
    assert "..." not in narrow
    columns = ["Estimate", "Std. Error", "t value"] if which == "lmm" else ["z value", "Pr(>|z|)"]
    for column in columns:
        assert column in narrow
    for name in model.fixed_effect_names_:
        assert re.search(rf"^\s+{re.escape(name)}\s+-?\d", narrow, flags=re.M), name
