"""Caterpillar plot: one factor's conditional modes with their prediction intervals."""

import numbers

import numpy as np

from .._interpretation import normal_quantile
from ._common import axes_and_figure, check_factor, check_term, import_pyplot

__all__ = ["CaterpillarDisplay"]

# A figure the display creates is sized to its rows: ROW_HEIGHT inches per
# level drawn plus margins for the axis label and ticks (BOTTOM and TOP
# inches), between matplotlib's default height and MAX_HEIGHT (18 levels give
# the default 4.8 inches).
ROW_HEIGHT = 0.2
BOTTOM, TOP = 0.75, 0.45
MAX_HEIGHT = 15.0
# Tick labels shrink only when a row is narrower than LABEL_SPACING times
# their size, and no further than MIN_LABEL_SIZE points.
LABEL_SPACING = 1.15
MIN_LABEL_SIZE = 4.0


class CaterpillarDisplay:
    """Conditional modes of one factor's term with their prediction intervals.

    The caterpillar plot of lme4's ``dotplot(ranef(fit, condVar = TRUE))``:
    one row per level of the grouping factor, its conditional mode ``b_j``
    (the BLUP, a deviation from the fixed effect) as a point and the
    interval ``b_j +- z sqrt(Var(b_j | y))`` as a horizontal segment, with
    ``z`` the normal quantile of ``level`` (1.96 for 95%).  Levels whose
    interval excludes the dotted zero line differ from the population.

    Create it with :meth:`from_estimator`; the constructor takes the
    numbers to draw, and :meth:`plot` draws them.  A figure the display
    creates grows with the number of levels drawn (up to 15 inches high;
    tick labels get smaller only when the rows are too narrow for them);
    for a factor with many levels, ``n_extremes=k`` draws only the ``k``
    levels with the smallest and the ``k`` with the largest modes.

    Parameters
    ----------
    levels : array-like of shape (n_levels,)
        Level labels, in the order drawn (bottom to top).
    modes : array-like of shape (n_levels,)
        Conditional modes of the term, one per level.
    std_errors : array-like of shape (n_levels,)
        Conditional standard deviations ``sqrt(Var(b_j | y))`` (lme4's
        ``condsd``).
    level : float, default=0.95
        Coverage of the prediction intervals.
    factor : str, default=None
        Name of the grouping factor, for the axis label.
    term : str, default="(Intercept)"
        Name of the term, for the axis label.

    Attributes
    ----------
    levels_ : ndarray of shape (n_levels,)
        Level labels, bottom to top (the y tick labels).
    modes_ : ndarray of shape (n_levels,)
        Conditional modes, in the order of ``levels_``.
    std_errors_ : ndarray of shape (n_levels,)
        Conditional standard deviations, in the order of ``levels_``.
    lower_, upper_ : ndarray of shape (n_levels,)
        Ends of the intervals, ``modes_ -+ z std_errors_``.
    drawn_indices_ : ndarray of int
        Positions in ``levels_`` of the levels drawn, bottom to top: all of
        them, or the ``2 n_extremes`` extremes (after :meth:`plot`).
    points_ : matplotlib PathCollection
        The modes (after :meth:`plot`).
    intervals_ : matplotlib LineCollection
        The intervals, one horizontal segment per level drawn.
    zero_line_ : matplotlib Line2D
        The vertical line at 0 (the population value).
    gap_line_ : matplotlib Line2D or None
        With ``n_extremes`` and the levels in the order of their modes, the
        dashed line between the smallest and the largest ones (where the
        levels not drawn lie); ``None`` otherwise.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    RandomEffectsQQDisplay : Normal Q-Q plot of the same modes.

    Examples
    --------
    >>> from sklearn_mixed import MixedLinearRegressor
    >>> from sklearn_mixed.datasets import load_sleepstudy
    >>> from sklearn_mixed.inspection import CaterpillarDisplay
    >>> df = load_sleepstudy()
    >>> model = MixedLinearRegressor(random_slopes=["Days"])
    >>> model = model.fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
    >>> disp = CaterpillarDisplay.from_estimator(model, term="Days")
    >>> disp.levels_[-3:].tolist()  # the subjects slowed down most by lack of sleep
    ['350', '337', '308']
    >>> print(f"{disp.modes_[-1]:.2f} [{disp.lower_[-1]:.2f}, {disp.upper_[-1]:.2f}]")
    9.20 [4.68, 13.72]
    >>> import matplotlib.pyplot as plt
    >>> plt.close(disp.figure_)  # or plt.show()

    Only the 3 subjects with the smallest and the 3 with the largest modes:

    >>> disp = CaterpillarDisplay.from_estimator(model, term="Days", n_extremes=3)
    >>> [label.get_text() for label in disp.ax_.get_yticklabels()]
    ['335', '309', '310', '350', '337', '308']
    >>> plt.close(disp.figure_)
    """

    def __init__(self, levels, modes, std_errors, *, level=0.95, factor=None, term="(Intercept)"):
        self.levels_ = np.asarray(levels)
        self.modes_ = np.asarray(modes, dtype=float)
        self.std_errors_ = np.asarray(std_errors, dtype=float)
        if not self.levels_.shape == self.modes_.shape == self.std_errors_.shape:
            raise ValueError(
                "levels, modes and std_errors must be 1-D arrays of the same length, got "
                f"shapes {self.levels_.shape}, {self.modes_.shape} and "
                f"{self.std_errors_.shape}."
            )
        z = normal_quantile(level)
        self.lower_ = self.modes_ - z * self.std_errors_
        self.upper_ = self.modes_ + z * self.std_errors_
        self.level = level
        self.factor = factor
        self.term = term

    @classmethod
    def from_estimator(
        cls,
        estimator,
        factor=None,
        term="(Intercept)",
        level=0.95,
        ax=None,
        order=True,
        n_extremes=None,
    ):
        """Draw the conditional modes of a fitted mixed model's factor and term.

        Parameters
        ----------
        estimator : fitted MixedLinearRegressor or CrossedEffectsRegressor
        factor : str, default=None
            Grouping factor; ``None`` for the model's only factor (required
            when it has several).
        term : str, default="(Intercept)"
            ``"(Intercept)"`` or the name of a random slope of ``factor``.
        level : float, default=0.95
            Coverage of the prediction intervals.
        ax : matplotlib Axes, default=None
            Axes to draw into; a new figure when ``None``.
        order : bool, default=True
            Sort the levels by their mode (smallest at the bottom); otherwise
            keep the model's level order.
        n_extremes : int, default=None
            Draw only the ``n_extremes`` levels with the smallest and the
            ``n_extremes`` with the largest modes (``2 n_extremes`` rows,
            labelled with their levels); ``None`` draws every level, as does
            a value of at least half the number of levels.

        Returns
        -------
        display : CaterpillarDisplay
        """
        factor = check_factor(estimator, factor)
        column = check_term(estimator, factor, term)
        table = estimator.random_effects_[factor]
        modes = table.iloc[:, column].to_numpy()
        variances = estimator.random_effects_conditional_cov_[factor][:, column, column]
        rows = np.argsort(modes, kind="stable") if order else np.arange(len(modes))
        display = cls(
            table.index.to_numpy()[rows],
            modes[rows],
            np.sqrt(variances[rows]),
            level=level,
            factor=factor,
            term=term,
        )
        return display.plot(ax=ax, n_extremes=n_extremes)

    def plot(self, ax=None, *, n_extremes=None, point_kwargs=None, interval_kwargs=None):
        """Draw the modes and intervals.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw into; a new figure when ``None``, its height grown
            with the number of levels drawn.
        n_extremes : int, default=None
            Draw only the ``n_extremes`` levels with the smallest and the
            ``n_extremes`` with the largest modes, in the order of
            ``levels_``; ``None`` draws every level, as does a value of at
            least half the number of levels.
        point_kwargs, interval_kwargs : dict, default=None
            Keyword arguments of ``ax.scatter`` (the modes) and ``ax.hlines``
            (the intervals), overriding the defaults.

        Returns
        -------
        display : CaterpillarDisplay
            ``self``, with the artists, ``ax_`` and ``figure_`` set.
        """
        drawn = self._levels_to_draw(n_extremes)
        name = type(self).__name__
        figsize = None if ax is not None else _figure_size(len(drawn), name)
        ax, figure = axes_and_figure(ax, name, figsize)
        if figsize is not None and figsize[1] > _default_height(name):
            # margins of fixed size: the default fractions waste inches of a tall figure
            figure.subplots_adjust(bottom=BOTTOM / figsize[1], top=1.0 - TOP / figsize[1])
        rows = np.arange(len(drawn))
        self.zero_line_ = ax.axvline(0.0, color="0.5", linestyle=":", linewidth=1)
        interval_style = {"color": "tab:blue", "linewidth": 1.5, **(interval_kwargs or {})}
        self.intervals_ = ax.hlines(rows, self.lower_[drawn], self.upper_[drawn], **interval_style)
        point_style = {"color": "black", "s": 14, "zorder": 3, **(point_kwargs or {})}
        self.points_ = ax.scatter(self.modes_[drawn], rows, **point_style)
        ax.set_yticks(rows, labels=[str(label) for label in self.levels_[drawn]])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        _fit_tick_labels(ax, len(rows))
        ax.set_xlabel(f"conditional mode of {self.term} ({self.level:.0%} prediction interval)")
        factor = "" if self.factor is None else str(self.factor)
        self.gap_line_ = None
        if len(drawn) < len(self.levels_):
            k = len(drawn) // 2
            shown = f"{k} smallest and {k} largest modes of {len(self.levels_)} levels"
            factor = f"{factor} ({shown})".strip()
            modes = self.modes_[drawn]
            if modes[:k].max() <= modes[k:].min():  # drawn in the order of the modes
                self.gap_line_ = ax.axhline(k - 0.5, color="0.5", linestyle="--", linewidth=0.8)
        if factor:
            ax.set_ylabel(factor)
        self.drawn_indices_ = drawn
        self.ax_, self.figure_ = ax, figure
        return self

    def _levels_to_draw(self, n_extremes):
        """Positions in ``levels_`` of the levels to draw, in their order."""
        n = len(self.levels_)
        if n_extremes is None:
            return np.arange(n)
        if (
            isinstance(n_extremes, bool)
            or not isinstance(n_extremes, numbers.Integral)
            or n_extremes < 1
        ):
            raise ValueError(
                "n_extremes must be a positive integer (the number of levels drawn at each "
                f"end) or None (every level), got {n_extremes!r}."
            )
        if 2 * n_extremes >= n:
            return np.arange(n)
        by_mode = np.argsort(self.modes_, kind="stable")
        return np.sort(np.concatenate([by_mode[:n_extremes], by_mode[-n_extremes:]]))


def _default_height(display_name):
    return import_pyplot(display_name).rcParams["figure.figsize"][1]


def _figure_size(n_rows, display_name):
    """matplotlib's default width; a height of ``ROW_HEIGHT`` per row plus the margins,
    between the default height and ``MAX_HEIGHT``."""
    width, height = import_pyplot(display_name).rcParams["figure.figsize"]
    wanted = ROW_HEIGHT * n_rows + BOTTOM + TOP
    return width, float(np.clip(wanted, height, max(height, MAX_HEIGHT)))


def _fit_tick_labels(ax, n_rows):
    """Shrink the y tick labels when a row is narrower than ``LABEL_SPACING`` times them."""
    labels = ax.get_yticklabels()
    if not labels:
        return
    height = ax.get_position().height * ax.figure.get_figheight() * 72.0  # points
    row = height / (n_rows + 0.4)  # the y limits span n_rows + 0.4 rows
    size = labels[0].get_fontsize()
    if row < LABEL_SPACING * size:
        ax.tick_params(axis="y", labelsize=max(row / LABEL_SPACING, MIN_LABEL_SIZE))
