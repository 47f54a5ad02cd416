"""Diagnostic plots of fitted mixed models, in scikit-learn's Display style.

Each display has a ``from_estimator`` classmethod that computes what to draw
from a fitted :class:`~sklearn_mixed.MixedLinearRegressor` (or
:class:`~sklearn_mixed.CrossedEffectsRegressor`) and draws it, into ``ax=``
or a new figure; the numbers drawn stay on the display (``levels_``,
``modes_``, ...), the matplotlib artists too (``points_``, ``ax_``,
``figure_``), and ``plot(ax=...)`` draws them again.

- :class:`CaterpillarDisplay`: a factor's conditional modes with prediction
  intervals (lme4's ``dotplot(ranef(fit, condVar = TRUE))``);
- :class:`ShrinkageDisplay`: no-pooling estimates shrunk to the mixed
  model's (partial-pooling) estimates, by level;
- :class:`ResidualsDisplay`: residuals against fitted values, or their normal
  Q-Q plot;
- :class:`RandomEffectsQQDisplay`: normal Q-Q plot of a factor's conditional
  modes.

matplotlib is an optional dependency: ``pip install "sklearn-mixed[plot]"``.
It is imported when a display draws, so this module imports without it.
"""

from ._plot._caterpillar import CaterpillarDisplay
from ._plot._qq import RandomEffectsQQDisplay, ResidualsDisplay
from ._plot._shrinkage import ShrinkageDisplay

__all__ = [
    "CaterpillarDisplay",
    "RandomEffectsQQDisplay",
    "ResidualsDisplay",
    "ShrinkageDisplay",
]
