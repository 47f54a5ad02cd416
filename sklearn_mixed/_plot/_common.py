"""What the displays share: matplotlib on demand, the factor and term checks, normal quantiles."""

import numpy as np
from scipy.stats import norm
from sklearn.utils.validation import check_is_fitted

INSTALL_HINT = 'pip install "sklearn-mixed[plot]"'


def import_pyplot(display_name):
    """``matplotlib.pyplot``, imported when a display draws (an optional dependency)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{display_name} needs matplotlib, an optional dependency of sklearn-mixed; "
            f"install it with {INSTALL_HINT} (or pip install matplotlib)."
        ) from exc
    return plt


def axes_and_figure(ax, display_name, figsize=None):
    """``(ax, figure)``: the given axes and their figure, or a new figure's axes
    (of size ``figsize``, matplotlib's default when ``None``)."""
    plt = import_pyplot(display_name)
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax, ax.figure


def check_factor(estimator, factor):
    """The grouping factor to draw: ``factor``, or the model's only one when ``None``."""
    check_is_fitted(estimator)
    names = list(estimator.group_names_)
    if not names:
        raise ValueError(
            "the model was fitted without grouping factors, so it has no random effects "
            "to plot; fit it with groups=..."
        )
    if factor is None:
        if len(names) > 1:
            raise ValueError(
                f"the model has {len(names)} grouping factors {names!r}; pass factor= one of them."
            )
        return names[0]
    if factor not in names:
        raise ValueError(f"unknown grouping factor {factor!r}; the model's factors are {names!r}.")
    return factor


def check_term(estimator, factor, term):
    """Column index of ``term`` (``"(Intercept)"`` or a slope) in ``factor``'s random effects."""
    terms = list(estimator.random_effects_[factor].columns)
    if term not in terms:
        raise ValueError(
            f"unknown term {term!r} for grouping factor {factor!r}; its random-effect terms "
            f"are {terms!r}."
        )
    return terms.index(term)


def normal_scores(n):
    """Standard normal quantiles at R's plotting positions ``ppoints(n)``, as ``qqnorm``:
    ``(i - a) / (n + 1 - 2a)`` for ``i = 1..n``, ``a = 3/8`` if ``n <= 10`` else ``1/2``."""
    a = 3.0 / 8.0 if n <= 10 else 0.5
    return norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))


def quartile_line(sample):
    """``(intercept, slope)`` of R's ``qqline``: the line through the first and third
    quartiles of the sample against those of the standard normal."""
    q_sample = np.quantile(sample, [0.25, 0.75])
    q_normal = norm.ppf([0.25, 0.75])
    slope = (q_sample[1] - q_sample[0]) / (q_normal[1] - q_normal[0])
    return q_sample[0] - slope * q_normal[0], slope
