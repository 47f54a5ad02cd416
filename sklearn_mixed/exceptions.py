"""Warnings raised by sklearn-mixed estimators."""

import sys

__all__ = [
    "ExactFitWarning",
    "NoGroupsWarning",
    "NotYetFittedWarning",
    "PopulationPredictionWarning",
    "SingularFitWarning",
]


class SingularFitWarning(UserWarning):
    """A variance component is estimated as 0, or a correlation as +-1.

    The fit is on the boundary of the parameter space (lme4's
    ``isSingular``): the data do not support that random effect.  Consider
    removing the term or using ``covariance="diagonal"``.
    """


class PopulationPredictionWarning(UserWarning):
    """A model fitted with groups was asked to predict without them.

    The prediction is then the population (fixed-effects only) one.
    """


class ExactFitWarning(UserWarning):
    """The fixed effects fit the response exactly (a constant response, say).

    The residual and random-effect variances are then 0 and the likelihood is
    unbounded: the variance components are not estimable from these data.
    """


class NoGroupsWarning(UserWarning):
    """``fit`` received no grouping factors: the model has no random effects.

    The fit is then an ordinary linear (or generalized linear) model, without
    shrinkage.  Usually the groups were meant to be there and were dropped on
    the way: scikit-learn's ``cross_validate``, ``GridSearchCV`` and
    ``Pipeline`` use a ``groups=`` argument for splitting only unless
    metadata routing is enabled.  An estimator configured for random effects
    (``random_slopes``, ``random_effects``, a ``covariance`` dict) raises a
    ``ValueError`` instead of fitting without them.
    """


class NotYetFittedWarning(UserWarning):
    """``partial_fit`` received chunks that cannot identify the model yet.

    A grouping factor with a single level so far, or fewer rows than effects:
    the chunks are reduced and kept, and the model is fitted after the chunk
    that identifies it.  Until then the estimator is not fitted.
    """


def user_stacklevel():
    """The ``stacklevel`` of ``warnings.warn`` that points at the user's call: the
    first frame outside sklearn_mixed and scikit-learn, counted from the caller."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in (
        "sklearn_mixed",
        "sklearn",
    ):
        frame, level = frame.f_back, level + 1
    return level
