"""Residual plots and normal Q-Q plots of residuals and of conditional modes."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._common import (
    axes_and_figure,
    check_factor,
    check_term,
    normal_scores,
    quartile_line,
)

__all__ = ["RandomEffectsQQDisplay", "ResidualsDisplay"]

KINDS = ("residuals_vs_fitted", "qq")


class ResidualsDisplay:
    """Residuals against fitted values, or the normal Q-Q plot of the residuals.

    The residuals are ``y - predict(X, groups)``: with the groups, the
    conditional residuals of lme4's ``residuals(fit)`` (observation minus
    fixed part minus the level's random effects).  ``kind="residuals_vs_fitted"``
    plots them against the fitted values with a horizontal line at 0 (lme4's
    ``plot(fit)``): a trend or a funnel shows a missing term or a variance
    that changes with the mean.  ``kind="qq"`` plots the sorted residuals
    against standard normal quantiles at R's plotting positions (R's
    ``qqnorm``) with the line through the quartiles (R's ``qqline``).

    Parameters
    ----------
    fitted : array-like of shape (n_samples,)
        Predictions.
    residuals : array-like of shape (n_samples,)
        Observations minus predictions.
    kind : {"residuals_vs_fitted", "qq"}, default="residuals_vs_fitted"

    Attributes
    ----------
    fitted_, residuals_ : ndarray of shape (n_samples,)
        Fitted values and residuals, in data order.
    theoretical_quantiles_ : ndarray of shape (n_samples,)
        Standard normal quantiles at ``ppoints(n_samples)``, increasing.
    sample_quantiles_ : ndarray of shape (n_samples,)
        The residuals sorted, paired with ``theoretical_quantiles_``.
    points_ : matplotlib PathCollection
        The points drawn (after :meth:`plot`).
    line_ : matplotlib Line2D
        The zero line (``"residuals_vs_fitted"``) or the quartile line (``"qq"``).
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> from sklearn_mixed import MixedLinearRegressor
    >>> from sklearn_mixed.datasets import load_sleepstudy
    >>> from sklearn_mixed.inspection import ResidualsDisplay
    >>> df = load_sleepstudy()
    >>> X, y, groups = df[["Days"]], df["Reaction"], df["Subject"]
    >>> model = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=groups)
    >>> disp = ResidualsDisplay.from_estimator(model, X, y, groups=groups)
    >>> print(f"{disp.residuals_.min():.1f} {disp.residuals_.max():.1f}")
    -101.2 132.5
    >>> qq = ResidualsDisplay.from_estimator(model, X, y, groups=groups, kind="qq")
    >>> print(f"{qq.theoretical_quantiles_[0]:.3f} {qq.sample_quantiles_[0]:.1f}")
    -2.773 -101.2
    >>> import matplotlib.pyplot as plt
    >>> plt.close("all")  # or plt.show()
    """

    def __init__(self, fitted, residuals, *, kind="residuals_vs_fitted"):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS!r}, got {kind!r}.")
        self.fitted_ = np.asarray(fitted, dtype=float).ravel()
        self.residuals_ = np.asarray(residuals, dtype=float).ravel()
        if self.fitted_.shape != self.residuals_.shape:
            raise ValueError(
                f"fitted and residuals must have the same length, got {self.fitted_.size} "
                f"and {self.residuals_.size}."
            )
        self.sample_quantiles_ = np.sort(self.residuals_)
        self.theoretical_quantiles_ = normal_scores(self.residuals_.size)
        self.kind = kind

    @classmethod
    def from_estimator(cls, estimator, X, y, groups=None, kind="residuals_vs_fitted", ax=None):
        """Draw the residuals ``y - estimator.predict(X, groups=groups)``.

        Parameters
        ----------
        estimator : fitted MixedLinearRegressor or CrossedEffectsRegressor
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like, default=None
            Grouping factors as in ``predict``; without them (and without
            ``group_cols``) the residuals are those of the population
            prediction, and ``predict`` warns.
        kind : {"residuals_vs_fitted", "qq"}, default="residuals_vs_fitted"
        ax : matplotlib Axes, default=None
            Axes to draw into; a new figure when ``None``.

        Returns
        -------
        display : ResidualsDisplay
        """
        check_is_fitted(estimator)
        if kind not in KINDS:  # before predicting
            raise ValueError(f"kind must be one of {KINDS!r}, got {kind!r}.")
        fitted = estimator.predict(X, groups=groups)
        y = np.asarray(y, dtype=float).ravel()
        if y.shape != fitted.shape:
            raise ValueError(f"y has {y.size} values for {fitted.size} rows of X.")
        return cls(fitted, y - fitted, kind=kind).plot(ax=ax)

    def plot(self, ax=None, *, point_kwargs=None, line_kwargs=None):
        """Draw the residuals.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw into; a new figure when ``None``.
        point_kwargs, line_kwargs : dict, default=None
            Keyword arguments of ``ax.scatter`` (the points) and of the line
            (``ax.axhline`` or ``ax.axline``), overriding the defaults.

        Returns
        -------
        display : ResidualsDisplay
            ``self``, with the artists, ``ax_`` and ``figure_`` set.
        """
        ax, figure = axes_and_figure(ax, type(self).__name__)
        point_style = {"s": 10, "alpha": 0.7, **(point_kwargs or {})}
        line_style = {"color": "0.4", "linestyle": "--", "linewidth": 1, **(line_kwargs or {})}
        if self.kind == "residuals_vs_fitted":
            self.points_ = ax.scatter(self.fitted_, self.residuals_, **point_style)
            self.line_ = ax.axhline(0.0, **line_style)
            ax.set_xlabel("fitted values")
            ax.set_ylabel("residuals")
        else:
            self.points_ = ax.scatter(
                self.theoretical_quantiles_, self.sample_quantiles_, **point_style
            )
            intercept, slope = quartile_line(self.residuals_)
            self.line_ = ax.axline((0.0, intercept), slope=slope, **line_style)
            ax.set_xlabel("standard normal quantiles")
            ax.set_ylabel("residuals (sorted)")
        self.ax_, self.figure_ = ax, figure
        return self


class RandomEffectsQQDisplay:
    """Normal Q-Q plot of one factor's conditional modes.

    The model assumes a factor's random effects are normal; this plots the
    conditional modes of one term (raw, in the units of the term: lme4's
    ``ranef``, not standardized) sorted against standard normal quantiles at
    R's plotting positions, as R's ``qqnorm(ranef(fit)$g[, term])``, with the
    line through the quartiles (R's ``qqline``).  Points far off the line
    at the ends point to heavy tails or outlying levels.  The modes are
    shrunk towards 0, so their spread is smaller than the estimated standard
    deviation of the random effects.

    Parameters
    ----------
    levels : array-like of shape (n_levels,)
        Level labels.
    modes : array-like of shape (n_levels,)
        Conditional modes of the term, one per level.
    factor : str, default=None
        Name of the grouping factor, for the labels.
    term : str, default="(Intercept)"
        Name of the term, for the labels.

    Attributes
    ----------
    levels_ : ndarray of shape (n_levels,)
        Level labels, sorted by their mode.
    modes_ : ndarray of shape (n_levels,)
        Conditional modes, increasing.
    theoretical_quantiles_ : ndarray of shape (n_levels,)
        Standard normal quantiles at ``ppoints(n_levels)``, increasing.
    points_ : matplotlib PathCollection
        The points (after :meth:`plot`).
    line_ : matplotlib Line2D
        The line through the quartiles.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    CaterpillarDisplay : The same modes with their prediction intervals.

    Examples
    --------
    >>> from sklearn_mixed import MixedLinearRegressor
    >>> from sklearn_mixed.datasets import load_dyestuff
    >>> from sklearn_mixed.inspection import RandomEffectsQQDisplay
    >>> df = load_dyestuff()
    >>> model = MixedLinearRegressor().fit(df[[]], df["Yield"], groups=df["Batch"])
    >>> disp = RandomEffectsQQDisplay.from_estimator(model)
    >>> disp.levels_.tolist()
    ['F', 'D', 'A', 'B', 'C', 'E']
    >>> disp.theoretical_quantiles_.round(3)
    array([-1.282, -0.643, -0.202,  0.202,  0.643,  1.282])
    >>> import matplotlib.pyplot as plt
    >>> plt.close(disp.figure_)  # or plt.show()
    """

    def __init__(self, levels, modes, *, factor=None, term="(Intercept)"):
        levels, modes = np.asarray(levels), np.asarray(modes, dtype=float)
        if levels.shape != modes.shape or modes.ndim != 1:
            raise ValueError(
                "levels and modes must be 1-D arrays of the same length, got shapes "
                f"{levels.shape} and {modes.shape}."
            )
        rows = np.argsort(modes, kind="stable")
        self.levels_, self.modes_ = levels[rows], modes[rows]
        self.theoretical_quantiles_ = normal_scores(modes.size)
        self.factor = factor
        self.term = term

    @classmethod
    def from_estimator(cls, estimator, factor=None, term="(Intercept)", ax=None):
        """Draw the Q-Q plot of a fitted mixed model's conditional modes.

        Parameters
        ----------
        estimator : fitted MixedLinearRegressor or CrossedEffectsRegressor
        factor : str, default=None
            Grouping factor; ``None`` for the model's only factor (required
            when it has several).
        term : str, default="(Intercept)"
            ``"(Intercept)"`` or the name of a random slope of ``factor``.
        ax : matplotlib Axes, default=None
            Axes to draw into; a new figure when ``None``.

        Returns
        -------
        display : RandomEffectsQQDisplay
        """
        factor = check_factor(estimator, factor)
        column = check_term(estimator, factor, term)
        table = estimator.random_effects_[factor]
        display = cls(
            table.index.to_numpy(), table.iloc[:, column].to_numpy(), factor=factor, term=term
        )
        return display.plot(ax=ax)

    def plot(self, ax=None, *, point_kwargs=None, line_kwargs=None):
        """Draw the Q-Q plot.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw into; a new figure when ``None``.
        point_kwargs, line_kwargs : dict, default=None
            Keyword arguments of ``ax.scatter`` (the points) and ``ax.axline``
            (the quartile line), overriding the defaults.

        Returns
        -------
        display : RandomEffectsQQDisplay
            ``self``, with the artists, ``ax_`` and ``figure_`` set.
        """
        ax, figure = axes_and_figure(ax, type(self).__name__)
        point_style = {"s": 16, "color": "black", "zorder": 3, **(point_kwargs or {})}
        self.points_ = ax.scatter(self.theoretical_quantiles_, self.modes_, **point_style)
        intercept, slope = quartile_line(self.modes_)
        line_style = {"color": "tab:blue", "linestyle": "--", "linewidth": 1, **(line_kwargs or {})}
        self.line_ = ax.axline((0.0, intercept), slope=slope, **line_style)
        ax.set_xlabel("standard normal quantiles")
        ax.set_ylabel(f"conditional mode of {self.term}")
        if self.factor is not None:
            ax.set_title(f"{self.factor}: {self.term}")
        self.ax_, self.figure_ = ax, figure
        return self
