"""The displays of ``sklearn_mixed.inspection`` draw what they compute, headless.

Each test asserts on the artists drawn (points, segments, tick labels,
arrows, lines) against the fitted model's attributes and, where R gives the
same numbers, against R:

- the caterpillar intervals against lme4's ``ranef(fit, condVar = TRUE)`` of
  ``lmer(Reaction ~ Days + (Days | Subject), sleepstudy)`` (the stored
  reference ``tests/data/lme4/ref/sleep_corr_reml.json``: ``values`` and
  ``condvar_diag``), 95% intervals ``mode +- qnorm(0.975) * sqrt(condvar)``;
- the residuals against the same reference's ``fitted``;
- the Q-Q plotting positions and quartile lines against R 4.2.2's
  ``qqnorm``/``qqline`` (numbers below, printed by ``qqnorm(x, plot.it =
  FALSE)`` and ``quantile(x, c(.25, .75))``).
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _reference import load_reference
from scipy.stats import norm

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402

from sklearn_mixed import MixedLinearRegressor  # noqa: E402
from sklearn_mixed.datasets import load_dyestuff, load_penicillin, load_sleepstudy  # noqa: E402
from sklearn_mixed.inspection import (  # noqa: E402
    CaterpillarDisplay,
    RandomEffectsQQDisplay,
    ResidualsDisplay,
    ShrinkageDisplay,
)

REF = Path(__file__).parent / "data" / "lme4" / "ref"
Z95 = norm.ppf(0.975)

# R 4.2.2, lme4 1.1-31:
#   fit <- lmer(Yield ~ 1 + (1 | Batch), Dyestuff)
#   qqnorm(ranef(fit)$Batch[, 1], plot.it = FALSE)       # levels A..F
DYESTUFF_QQ_X = [
    -0.2018934791,
    0.2018934791,
    0.6433454054,
    -0.6433454054,
    1.2815515655,
    -1.2815515655,
]
DYESTUFF_QQ_Y = [
    -17.6068513669,
    0.3912633637,
    28.5622255507,
    -23.0845384588,
    56.7331877377,
    -44.9952868265,
]
#   fit2 <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy); r <- residuals(fit2)
#   head(qqnorm(r, plot.it = FALSE)$x); quantile(r, c(.25, .75))
SLEEP_RESIDUAL_QQ_X_HEAD = [
    -0.2175525253,
    -0.9132499267,
    -1.9599639845,
    0.3928308136,
    1.4013443963,
    2.3939797998,
]
SLEEP_RESIDUAL_QUARTILES = [-11.85917884, 11.85929132]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def sleep():
    df = load_sleepstudy()
    X, y, groups = df[["Days"]], df["Reaction"], df["Subject"]
    model = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=groups)
    return model, X, y, groups


@pytest.fixture(scope="module")
def dyestuff():
    df = load_dyestuff()
    return MixedLinearRegressor().fit(df[[]], df["Yield"], groups=df["Batch"])


@pytest.fixture(scope="module")
def penicillin():
    df = load_penicillin()
    return MixedLinearRegressor().fit(df[[]], df["diameter"], groups=df[["plate", "sample"]])


def _segments(collection):
    return np.array([segment for segment in collection.get_segments()])


def _tick_labels(ax):
    return [label.get_text() for label in ax.get_yticklabels()]


# ------------------------------------------------------------------ caterpillar
@pytest.mark.parametrize("term", ["(Intercept)", "Days"])
def test_caterpillar_draws_ordered_modes_and_intervals(sleep, term):
    model = sleep[0]
    disp = CaterpillarDisplay.from_estimator(model, term=term)
    column = list(model.random_effects_["Subject"].columns).index(term)
    modes = model.random_effects_["Subject"][term].sort_values(kind="stable")
    sd = np.sqrt(model.random_effects_conditional_cov_["Subject"][:, column, column])
    sd = pd.Series(sd, index=model.random_effects_["Subject"].index)[modes.index]

    points = disp.points_.get_offsets()
    assert len(points) == 18 == len(disp.levels_)
    np.testing.assert_allclose(points[:, 0], modes.to_numpy())
    np.testing.assert_array_equal(points[:, 1], np.arange(18))
    assert _tick_labels(disp.ax_) == [str(level) for level in modes.index]
    segments = _segments(disp.intervals_)
    assert segments.shape == (18, 2, 2)
    np.testing.assert_allclose(segments[:, 0, 0], modes - Z95 * sd)
    np.testing.assert_allclose(segments[:, 1, 0], modes + Z95 * sd)
    np.testing.assert_array_equal(segments[:, :, 1], np.repeat(np.arange(18.0), 2).reshape(18, 2))
    assert disp.zero_line_.get_xdata()[0] == 0


def test_caterpillar_intervals_match_lme4_condvar(sleep):
    """95% intervals of lme4's ranef(fit, condVar = TRUE) for (Days | Subject), by REML."""
    ref = load_reference(REF / "sleep_corr_reml.json")["ranef"]["Subject"]
    values, condvar = np.array(ref["values"]), np.array(ref["condvar_diag"])
    for column, term in enumerate(ref["names"]):
        disp = CaterpillarDisplay.from_estimator(sleep[0], term=term, order=False)
        assert disp.levels_.tolist() == ref["levels"]
        lme4_sd = np.sqrt(condvar[:, column])
        scale = values[:, column].std()
        segments = _segments(disp.intervals_)
        # the lme4 agreement of the modes and conditional variances, 1e-3 relative
        np.testing.assert_allclose(
            segments[:, 0, 0], values[:, column] - Z95 * lme4_sd, rtol=0, atol=1e-3 * scale
        )
        np.testing.assert_allclose(
            segments[:, 1, 0], values[:, column] + Z95 * lme4_sd, rtol=0, atol=1e-3 * scale
        )


def test_caterpillar_level_and_order_options(sleep):
    model = sleep[0]
    disp = CaterpillarDisplay.from_estimator(model, level=0.5, order=False)
    table = model.random_effects_["Subject"]
    assert _tick_labels(disp.ax_) == [str(level) for level in table.index]
    sd = np.sqrt(model.random_effects_conditional_cov_["Subject"][:, 0, 0])
    half_width = (disp.upper_ - disp.lower_) / 2
    np.testing.assert_allclose(half_width, norm.ppf(0.75) * sd)
    assert "50% prediction interval" in disp.ax_.get_xlabel()


# -------------------------------------------------------------------- residuals
def test_residuals_vs_fitted_match_lme4(sleep):
    model, X, y, groups = sleep
    disp = ResidualsDisplay.from_estimator(model, X, y, groups=groups)
    lme4_fitted = np.array(load_reference(REF / "sleep_corr_reml.json")["fitted"])
    points = disp.points_.get_offsets()
    assert len(points) == len(y)
    np.testing.assert_allclose(points[:, 0], lme4_fitted, rtol=0, atol=1e-3 * 25.59)
    np.testing.assert_allclose(points[:, 1], y - lme4_fitted, rtol=0, atol=1e-3 * 25.59)
    np.testing.assert_allclose(points[:, 1], y - points[:, 0])
    assert disp.line_.get_ydata()[0] == 0
    assert disp.ax_.get_xlabel() == "fitted values"


def test_residuals_qq_matches_r_qqnorm(sleep):
    model, X, y, groups = sleep
    disp = ResidualsDisplay.from_estimator(model, X, y, groups=groups, kind="qq")
    points = disp.points_.get_offsets()
    assert np.all(np.diff(points[:, 0]) > 0) and np.all(np.diff(points[:, 1]) >= 0)
    # R's qqnorm gives each observation the normal score of its rank
    ranks = np.argsort(np.argsort(disp.residuals_, kind="stable"), kind="stable")
    np.testing.assert_allclose(points[ranks[:6], 0], SLEEP_RESIDUAL_QQ_X_HEAD, atol=1e-9)
    # qqline: through the quartiles of the residuals and of the normal
    (x0, y0), slope = disp.line_.get_xy1(), disp.line_.get_slope()
    quartile_line = y0 + slope * (norm.ppf([0.25, 0.75]) - x0)
    np.testing.assert_allclose(quartile_line, SLEEP_RESIDUAL_QUARTILES, rtol=0, atol=1e-2)


def test_residuals_without_groups_are_population_residuals(sleep):
    model, X, y, _ = sleep
    with pytest.warns(UserWarning, match="population"):
        disp = ResidualsDisplay.from_estimator(model, X, y)
    population = model.intercept_ + model.coef_[0] * X["Days"].to_numpy()
    np.testing.assert_allclose(disp.fitted_, population)


def test_residuals_errors(sleep):
    model, X, y, groups = sleep
    with pytest.raises(ValueError, match="kind must be one of"):
        ResidualsDisplay.from_estimator(model, X, y, groups=groups, kind="scale_location")
    with pytest.raises(ValueError, match="y has 179 values for 180 rows"):
        ResidualsDisplay.from_estimator(model, X, y[:-1], groups=groups)


# ------------------------------------------------------------ random-effects Q-Q
def test_random_effects_qq_matches_r_qqnorm(dyestuff):
    disp = RandomEffectsQQDisplay.from_estimator(dyestuff)
    points = disp.points_.get_offsets()
    assert len(points) == 6
    by_level = pd.DataFrame(points, index=disp.levels_, columns=["x", "y"]).loc[list("ABCDEF")]
    np.testing.assert_allclose(by_level["x"], DYESTUFF_QQ_X, atol=1e-9)
    # conditional modes within the lme4 agreement (1e-3 of the batch sd, 37.7)
    np.testing.assert_allclose(by_level["y"], DYESTUFF_QQ_Y, rtol=0, atol=0.04)
    (x0, y0), slope = disp.line_.get_xy1(), disp.line_.get_slope()
    q25, q75 = np.quantile(disp.modes_, [0.25, 0.75])
    np.testing.assert_allclose(y0 + slope * (norm.ppf([0.25, 0.75]) - x0), [q25, q75])


def test_random_effects_qq_of_a_slope(sleep):
    model = sleep[0]
    disp = RandomEffectsQQDisplay.from_estimator(model, term="Days")
    np.testing.assert_allclose(
        disp.points_.get_offsets()[:, 1], np.sort(model.random_effects_["Subject"]["Days"])
    )
    assert disp.ax_.get_ylabel() == "conditional mode of Days"


# --------------------------------------------------------------------- shrinkage
def test_shrinkage_2d_arrows_go_from_no_pooling_to_partial_pooling(sleep):
    model = sleep[0]
    disp = ShrinkageDisplay.from_estimator(model)
    table = model.shrinkage("Subject")
    assert disp.terms_ == ["(Intercept)", "Days"]
    arrows = [text for text in disp.ax_.texts if isinstance(text, Annotation)]
    assert len(arrows) == len(disp.arrows_) == 18
    starts = np.array([arrow.xyann for arrow in disp.arrows_])
    ends = np.array([arrow.xy for arrow in disp.arrows_])
    np.testing.assert_allclose(starts, table["no_pooling"].to_numpy())
    np.testing.assert_allclose(ends, table["partial_pooling"].to_numpy())
    np.testing.assert_allclose(disp.no_pooling_points_.get_offsets(), starts)
    np.testing.assert_allclose(disp.partial_pooling_points_.get_offsets(), ends)
    np.testing.assert_allclose(
        disp.population_line_.get_offsets()[0], [model.intercept_, model.coef_[0]]
    )
    assert (disp.ax_.get_xlabel(), disp.ax_.get_ylabel()) == ("(Intercept)", "Days")


def test_shrinkage_1d_rows_ordered_by_no_pooling(sleep):
    model = sleep[0]
    disp = ShrinkageDisplay.from_estimator(model, terms="(Intercept)")
    no_pooling = model.shrinkage("Subject")["no_pooling"]["(Intercept)"].sort_values()
    assert _tick_labels(disp.ax_) == [str(level) for level in no_pooling.index]
    starts = np.array([arrow.xyann for arrow in disp.arrows_])
    ends = np.array([arrow.xy for arrow in disp.arrows_])
    np.testing.assert_allclose(starts[:, 0], no_pooling.to_numpy())
    np.testing.assert_array_equal(starts[:, 1], ends[:, 1])  # horizontal arrows
    np.testing.assert_array_equal(starts[:, 1], np.arange(18))
    assert disp.population_line_.get_xdata()[0] == pytest.approx(model.intercept_)


def test_shrinkage_skips_levels_without_no_pooling_estimate():
    df = load_sleepstudy()
    # subject 308 keeps one row: no own slope (nor intercept and slope jointly)
    df = df[(df["Subject"] != "308") | (df["Days"] == 0)]
    model = MixedLinearRegressor(random_slopes=["Days"])
    model.fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
    table = model.shrinkage("Subject")
    identifiable = table["no_pooling"].notna().all(axis=1)
    assert identifiable.sum() == 17
    disp = ShrinkageDisplay.from_estimator(model)
    assert len(disp.arrows_) == len(disp.no_pooling_points_.get_offsets()) == 17
    assert disp.skipped_levels_.tolist() == ["308"]
    assert (
        "1 level(s) without a no-pooling estimate" in disp.ax_.get_legend().get_title().get_text()
    )
    one_term = ShrinkageDisplay.from_estimator(model, terms=["(Intercept)"])
    assert len(one_term.arrows_) == table["no_pooling"]["(Intercept)"].notna().sum()


def test_shrinkage_term_errors(sleep):
    with pytest.raises(ValueError, match="terms must be one or two of grouping factor 'Subject'"):
        ShrinkageDisplay.from_estimator(sleep[0], terms=["Hours"])
    with pytest.raises(ValueError, match="one or two"):
        ShrinkageDisplay.from_estimator(sleep[0], terms=["(Intercept)", "Days", "Days"])


# --------------------------------------------------------------- shared behaviour
def _draw(display, model, X, y, groups, ax=None):
    if display is ResidualsDisplay:
        return display.from_estimator(model, X, y, groups=groups, ax=ax)
    return display.from_estimator(model, ax=ax)


def _main_artist(disp):
    """The display's data points: the modes, residuals, or partial-pooling estimates."""
    return disp.points_ if hasattr(disp, "points_") else disp.partial_pooling_points_


DISPLAYS = [CaterpillarDisplay, ShrinkageDisplay, ResidualsDisplay, RandomEffectsQQDisplay]


@pytest.mark.parametrize("display", DISPLAYS, ids=lambda d: d.__name__)
def test_ax_is_honoured(sleep, display):
    fig, (left, right) = plt.subplots(1, 2)
    disp = _draw(display, *sleep, ax=right)
    assert disp.ax_ is right and disp.figure_ is fig
    assert _main_artist(disp) in right.collections
    assert len(right.collections) > 0 and len(left.collections) == 0
    assert plt.get_fignums() == [fig.number]


@pytest.mark.parametrize("display", DISPLAYS, ids=lambda d: d.__name__)
def test_a_new_figure_per_display(sleep, display):
    first = _draw(display, *sleep)
    second = _draw(display, *sleep)
    assert first.figure_ is not second.figure_
    assert len(plt.get_fignums()) == 2
    assert first.ax_ in first.figure_.axes


@pytest.mark.parametrize("display", DISPLAYS, ids=lambda d: d.__name__)
def test_plot_redraws_the_same_data(sleep, display):
    disp = _draw(display, *sleep)
    _, ax = plt.subplots()
    offsets = [c.get_offsets().copy() for c in disp.ax_.collections if hasattr(c, "get_offsets")]
    disp.plot(ax=ax)
    assert disp.ax_ is ax
    redrawn = [c.get_offsets() for c in ax.collections if hasattr(c, "get_offsets")]
    for before, after in zip(offsets, redrawn, strict=True):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize(
    "display",
    [CaterpillarDisplay, RandomEffectsQQDisplay, ShrinkageDisplay],
    ids=lambda d: d.__name__,
)
def test_factor_and_term_errors(sleep, penicillin, display):
    with pytest.raises(ValueError, match=r"unknown grouping factor 'Patient'.*\['Subject'\]"):
        display.from_estimator(sleep[0], factor="Patient")
    with pytest.raises(ValueError, match=r"has 2 grouping factors \['plate', 'sample'\]"):
        display.from_estimator(penicillin)
    assert display.from_estimator(penicillin, factor="sample").levels_.size == 6
    no_groups = MixedLinearRegressor().fit(sleep[1], sleep[2])
    with pytest.raises(ValueError, match="fitted without grouping factors"):
        display.from_estimator(no_groups)


@pytest.mark.parametrize("display", [CaterpillarDisplay, RandomEffectsQQDisplay])
def test_unknown_term(sleep, display):
    with pytest.raises(ValueError, match=r"unknown term 'Hours'.*\['\(Intercept\)', 'Days'\]"):
        display.from_estimator(sleep[0], term="Hours")


def _many_levels(n, seed=0):
    rng = np.random.default_rng(seed)
    modes = rng.normal(size=n)
    return [f"school {i:03d}" for i in range(n)], modes, np.full(n, 0.3)


def test_caterpillar_figure_grows_with_the_levels():
    default = plt.rcParams["figure.figsize"]
    heights = []
    for n in (6, 18, 30, 72):
        disp = CaterpillarDisplay(*_many_levels(n), factor="school").plot()
        width, height = disp.figure_.get_size_inches()
        assert width == pytest.approx(default[0])
        heights.append(height)
    assert heights[0] == heights[1] == pytest.approx(default[1])  # few levels: default size
    assert heights[1] < heights[2] < heights[3] <= 15.0
    # 72 levels: every label drawn, and none overlaps the next
    disp = CaterpillarDisplay(*_many_levels(72), factor="school").plot()
    assert len(_tick_labels(disp.ax_)) == 72
    disp.figure_.canvas.draw()
    renderer = disp.figure_.canvas.get_renderer()
    boxes = [label.get_window_extent(renderer) for label in disp.ax_.get_yticklabels()]
    assert all(low.y1 <= high.y0 + 0.5 for low, high in zip(boxes[:-1], boxes[1:], strict=True))


def test_caterpillar_height_is_bounded_and_labels_shrink_only_if_needed():
    size = plt.rcParams["ytick.labelsize"]
    default = matplotlib.font_manager.FontProperties(size=size).get_size_in_points()
    few = CaterpillarDisplay(*_many_levels(72)).plot()
    assert few.ax_.get_yticklabels()[0].get_fontsize() == pytest.approx(default)
    many = CaterpillarDisplay(*_many_levels(400)).plot()
    assert many.figure_.get_size_inches()[1] == pytest.approx(15.0)
    assert many.ax_.get_yticklabels()[0].get_fontsize() < default


def test_caterpillar_keeps_the_size_of_a_given_ax():
    fig, ax = plt.subplots(figsize=(3, 2))
    disp = CaterpillarDisplay(*_many_levels(72)).plot(ax=ax)
    np.testing.assert_allclose(disp.figure_.get_size_inches(), [3, 2])


@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("term", ["(Intercept)", "Days"])
def test_caterpillar_n_extremes_draws_the_extreme_levels(sleep, k, term):
    model = sleep[0]
    disp = CaterpillarDisplay.from_estimator(model, term=term, n_extremes=k)
    modes = model.random_effects_["Subject"][term].sort_values(kind="stable")
    expected = list(modes.index[:k]) + list(modes.index[-k:])
    assert len(disp.points_.get_offsets()) == 2 * k == len(_tick_labels(disp.ax_))
    assert _segments(disp.intervals_).shape == (2 * k, 2, 2)
    assert _tick_labels(disp.ax_) == [str(level) for level in expected]
    np.testing.assert_allclose(disp.points_.get_offsets()[:, 0], modes[expected])
    assert disp.levels_.size == 18  # the display keeps every level
    np.testing.assert_array_equal(disp.levels_[disp.drawn_indices_], expected)
    assert disp.gap_line_.get_ydata()[0] == pytest.approx(k - 0.5)
    assert f"{k} smallest and {k} largest modes of 18 levels" in disp.ax_.get_ylabel()


def test_caterpillar_n_extremes_in_model_order(sleep):
    model = sleep[0]
    disp = CaterpillarDisplay.from_estimator(model, order=False, n_extremes=2)
    modes = model.random_effects_["Subject"]["(Intercept)"]
    extremes = set(modes.nsmallest(2).index) | set(modes.nlargest(2).index)
    assert _tick_labels(disp.ax_) == [str(level) for level in modes.index if level in extremes]


def test_caterpillar_n_extremes_on_plot_and_when_all_fit(sleep):
    disp = CaterpillarDisplay.from_estimator(sleep[0])
    _, ax = plt.subplots()
    disp.plot(ax=ax, n_extremes=4)
    assert len(disp.points_.get_offsets()) == 8
    for k in (9, 50):  # 2k >= 18: every level, no gap
        disp.plot(n_extremes=k)
        assert len(disp.points_.get_offsets()) == 18 and disp.gap_line_ is None
    disp.plot()
    assert len(disp.points_.get_offsets()) == 18


@pytest.mark.parametrize("bad", [0, -2, 2.5, "3", True])
def test_caterpillar_n_extremes_must_be_a_positive_integer(sleep, bad):
    figures = plt.get_fignums()
    with pytest.raises(ValueError, match="n_extremes must be a positive integer"):
        CaterpillarDisplay.from_estimator(sleep[0], n_extremes=bad)
    assert plt.get_fignums() == figures  # refused before drawing


def test_caterpillar_level_must_be_a_probability(sleep):
    with pytest.raises(ValueError, match="level must be in"):
        CaterpillarDisplay.from_estimator(sleep[0], level=95)


def test_unfitted_model_is_refused():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        CaterpillarDisplay.from_estimator(MixedLinearRegressor())


def test_missing_matplotlib_names_the_extra(sleep, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # import fails
    with pytest.raises(ImportError, match=r"CaterpillarDisplay needs matplotlib.*\[plot\]"):
        CaterpillarDisplay.from_estimator(sleep[0])


def test_inspection_imports_without_matplotlib():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import sklearn_mixed.inspection, sklearn_mixed\n"
        "print(sklearn_mixed.CaterpillarDisplay.__name__)"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "CaterpillarDisplay"
