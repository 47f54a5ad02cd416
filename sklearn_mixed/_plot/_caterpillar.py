"""Caterpillar plot: one factor's conditional modes with their prediction intervals."""

import numpy as np

from .._interpretation import normal_quantile
from ._common import axes_and_figure, check_factor, check_term

__all__ = ["CaterpillarDisplay"]


class CaterpillarDisplay:
    """Conditional modes of one factor's term with their prediction intervals.

    The caterpillar plot of lme4's ``dotplot(ranef(fit, condVar = TRUE))``:
    one row per level of the grouping factor, its conditional mode ``b_j``
    (the BLUP, a deviation from the fixed effect) as a point and the
    interval ``b_j +- z sqrt(Var(b_j | y))`` as a horizontal segment, with
    ``z`` the normal quantile of ``level`` (1.96 for 95%).  Levels whose
    interval excludes the dotted zero line differ from the population.

    Create it with :meth:`from_estimator`; the constructor takes the
    numbers to draw, and :meth:`plot` draws them.

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
    points_ : matplotlib PathCollection
        The modes (after :meth:`plot`).
    intervals_ : matplotlib LineCollection
        The intervals, one horizontal segment per level.
    zero_line_ : matplotlib Line2D
        The vertical line at 0 (the population value).
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
        cls, estimator, factor=None, term="(Intercept)", level=0.95, ax=None, order=True
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
        return display.plot(ax=ax)

    def plot(self, ax=None, *, point_kwargs=None, interval_kwargs=None):
        """Draw the modes and intervals.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw into; a new figure when ``None``.
        point_kwargs, interval_kwargs : dict, default=None
            Keyword arguments of ``ax.scatter`` (the modes) and ``ax.hlines``
            (the intervals), overriding the defaults.

        Returns
        -------
        display : CaterpillarDisplay
            ``self``, with the artists, ``ax_`` and ``figure_`` set.
        """
        ax, figure = axes_and_figure(ax, type(self).__name__)
        rows = np.arange(len(self.levels_))
        self.zero_line_ = ax.axvline(0.0, color="0.5", linestyle=":", linewidth=1)
        interval_style = {"color": "tab:blue", "linewidth": 1.5, **(interval_kwargs or {})}
        self.intervals_ = ax.hlines(rows, self.lower_, self.upper_, **interval_style)
        point_style = {"color": "black", "s": 14, "zorder": 3, **(point_kwargs or {})}
        self.points_ = ax.scatter(self.modes_, rows, **point_style)
        ax.set_yticks(rows, labels=[str(label) for label in self.levels_])
        if len(rows) > 30:
            ax.tick_params(axis="y", labelsize="x-small")
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_xlabel(f"conditional mode of {self.term} ({self.level:.0%} prediction interval)")
        if self.factor is not None:
            ax.set_ylabel(str(self.factor))
        self.ax_, self.figure_ = ax, figure
        return self
