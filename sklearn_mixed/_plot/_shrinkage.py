"""Shrinkage plot: no-pooling estimates pulled towards the population by the mixed model."""

import numpy as np

from ._common import axes_and_figure, check_factor

__all__ = ["ShrinkageDisplay"]


class ShrinkageDisplay:
    """No-pooling versus partial-pooling (mixed-model) estimates, level by level.

    For each level of a grouping factor, an arrow goes from its *no-pooling*
    estimate (least squares on that level's rows alone) to its
    *partial-pooling* estimate (fixed effects plus the level's conditional
    modes).  The mixed model pulls each level towards the population
    (fixed-effect) value, the more so the less the level's data say.  With
    one term the levels are rows, ordered by their no-pooling estimate, and
    the arrows horizontal, a vertical line marking the population value;
    with two terms (an intercept and a slope) each level is a point in the
    (intercept, slope) plane and the population point is marked, as in the
    classic shrinkage plot of ``Reaction ~ Days + (Days | Subject)``.

    Levels without a no-pooling estimate (too few rows, or a constant slope
    feature: not identifiable on their own) are not drawn; the legend says
    how many.  The numbers come from the estimator's ``shrinkage(factor)``.

    Parameters
    ----------
    levels : array-like of shape (n_levels,)
        Level labels, in the order drawn (bottom to top with one term).
    no_pooling : array-like of shape (n_levels, n_terms)
        No-pooling estimates; rows with a NaN are skipped.
    partial_pooling : array-like of shape (n_levels, n_terms)
        Partial-pooling estimates.
    population : array-like of shape (n_terms,)
        Population (fixed-effect) values of the terms.
    terms : list of str
        One or two term names (``"(Intercept)"``, slopes).
    factor : str, default=None
        Name of the grouping factor, for the labels.

    Attributes
    ----------
    levels_ : ndarray of shape (n_drawn,)
        Labels of the levels drawn (with a no-pooling estimate).
    no_pooling_, partial_pooling_ : ndarray of shape (n_drawn, n_terms)
        Start and end of each arrow.
    population_ : ndarray of shape (n_terms,)
    terms_ : list of str
    skipped_levels_ : ndarray
        Labels of the levels without a no-pooling estimate, not drawn.
    arrows_ : list of matplotlib Annotation
        One arrow per level drawn (after :meth:`plot`).
    no_pooling_points_, partial_pooling_points_ : matplotlib PathCollection
    population_line_ : matplotlib Artist
        The population value: a vertical line (one term) or a marker (two).
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> from sklearn_mixed import MixedLinearRegressor
    >>> from sklearn_mixed.datasets import load_sleepstudy
    >>> from sklearn_mixed.inspection import ShrinkageDisplay
    >>> df = load_sleepstudy()
    >>> model = MixedLinearRegressor(random_slopes=["Days"])
    >>> model = model.fit(df[["Days"]], df["Reaction"], groups=df["Subject"])
    >>> disp = ShrinkageDisplay.from_estimator(model)
    >>> disp.terms_, len(disp.arrows_)
    (['(Intercept)', 'Days'], 18)
    >>> disp.population_.round(2)
    array([251.41,  10.47])
    >>> import matplotlib.pyplot as plt
    >>> plt.close(disp.figure_)  # or plt.show()
    """

    def __init__(self, levels, no_pooling, partial_pooling, population, *, terms, factor=None):
        terms = list(terms)
        levels = np.asarray(levels)
        no_pooling = np.asarray(no_pooling, dtype=float).reshape(len(levels), -1)
        partial_pooling = np.asarray(partial_pooling, dtype=float).reshape(len(levels), -1)
        population = np.asarray(population, dtype=float).ravel()
        if not (
            len(terms) in (1, 2)
            and no_pooling.shape == partial_pooling.shape
            and no_pooling.shape[1] == population.size == len(terms)
        ):
            raise ValueError(
                "expected one or two terms and estimates of shape (n_levels, n_terms), got "
                f"terms={terms!r}, no_pooling {no_pooling.shape}, partial_pooling "
                f"{partial_pooling.shape}, population {population.shape}."
            )
        identifiable = ~np.isnan(no_pooling).any(axis=1)
        self.levels_ = levels[identifiable]
        self.no_pooling_ = no_pooling[identifiable]
        self.partial_pooling_ = partial_pooling[identifiable]
        self.skipped_levels_ = levels[~identifiable]
        self.population_ = population
        self.terms_ = terms
        self.factor = factor

    @classmethod
    def from_estimator(cls, estimator, factor=None, terms=None, ax=None):
        """Draw the shrinkage of a fitted mixed model's factor.

        Parameters
        ----------
        estimator : fitted MixedLinearRegressor or CrossedEffectsRegressor
            With a ``shrinkage(factor)`` method.
        factor : str, default=None
            Grouping factor; ``None`` for the model's only factor (required
            when it has several).
        terms : str or list of one or two str, default=None
            Terms to draw; ``None``: the intercept and the first random slope
            when the factor has one (2-D), the intercept alone otherwise.
        ax : matplotlib Axes, default=None
            Axes to draw into; a new figure when ``None``.

        Returns
        -------
        display : ShrinkageDisplay
        """
        factor = check_factor(estimator, factor)
        table = estimator.shrinkage(factor)
        terms = _check_terms(terms, list(table["partial_pooling"].columns), factor)
        no_pooling = table["no_pooling"][terms].to_numpy(dtype=float)
        partial_pooling = table["partial_pooling"][terms].to_numpy(dtype=float)
        fixed = estimator.fixed_effects_["estimate"]
        # a term without a fixed effect (the intercept with fit_intercept=False) has mean 0
        population = [float(fixed.get(term, 0.0)) for term in terms]
        rows = np.arange(len(table))
        if len(terms) == 1:  # rows ordered by the no-pooling estimate, NaN last
            rows = np.argsort(no_pooling[:, 0], kind="stable")
        display = cls(
            table.index.to_numpy()[rows],
            no_pooling[rows],
            partial_pooling[rows],
            population,
            terms=terms,
            factor=factor,
        )
        return display.plot(ax=ax)

    def plot(self, ax=None):
        """Draw the arrows from the no-pooling to the partial-pooling estimates.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw into; a new figure when ``None``.

        Returns
        -------
        display : ShrinkageDisplay
            ``self``, with the artists, ``ax_`` and ``figure_`` set.
        """
        ax, figure = axes_and_figure(ax, type(self).__name__)
        if len(self.terms_) == 1:
            start, end = self._plot_one_term(ax)
        else:
            start, end = self.no_pooling_, self.partial_pooling_
            self.population_line_ = ax.scatter(
                *self.population_,
                marker="X",
                s=120,
                color="tab:red",
                zorder=4,
                label="population (fixed effects)",
            )
            ax.set_xlabel(self.terms_[0])
            ax.set_ylabel(self.terms_[1])
        self.no_pooling_points_ = ax.scatter(
            start[:, 0],
            start[:, 1],
            facecolors="none",
            edgecolors="tab:orange",
            label=f"no pooling ({len(self.levels_)} levels)",
        )
        self.partial_pooling_points_ = ax.scatter(
            end[:, 0], end[:, 1], color="tab:blue", s=18, zorder=3, label="partial pooling"
        )
        arrow = {"arrowstyle": "->", "color": "0.4", "shrinkA": 0, "shrinkB": 3}
        self.arrows_ = [
            ax.annotate("", xy=tuple(b), xytext=tuple(a), arrowprops=arrow)
            for a, b in zip(start, end, strict=True)
        ]
        ax.legend(title=self._legend_title(), fontsize="small", title_fontsize="small")
        self.ax_, self.figure_ = ax, figure
        return self

    def _plot_one_term(self, ax):
        """Levels as rows (y) and estimates along x: the arrows' start and end points."""
        rows = np.arange(len(self.levels_), dtype=float)
        self.population_line_ = ax.axvline(
            self.population_[0],
            color="tab:red",
            linestyle="--",
            linewidth=1,
            label="population (fixed effect)",
        )
        ax.set_yticks(rows, labels=[str(label) for label in self.levels_])
        if len(rows) > 30:
            ax.tick_params(axis="y", labelsize="x-small")
        ax.set_xlabel(self.terms_[0])
        if self.factor is not None:
            ax.set_ylabel(str(self.factor))
        start = np.column_stack([self.no_pooling_[:, 0], rows])
        end = np.column_stack([self.partial_pooling_[:, 0], rows])
        return start, end

    def _legend_title(self):
        title = "" if self.factor is None else f"{self.factor}"
        n_skipped = len(self.skipped_levels_)
        if n_skipped:
            title += (
                f"\n{n_skipped} level(s) without a no-pooling estimate (not identifiable) not drawn"
            )
        return title.strip() or None


def _check_terms(terms, available, factor):
    """One or two of ``factor``'s terms; by default the intercept and its first slope."""
    if terms is None:
        return available[:2]
    terms = [terms] if isinstance(terms, str) else list(terms)
    unknown = [term for term in terms if term not in available]
    if unknown or len(terms) not in (1, 2):
        raise ValueError(
            f"terms must be one or two of grouping factor {factor!r}'s random-effect terms "
            f"{available!r}, got {terms!r}."
        )
    return terms
