"""sklearn-mixed: linear mixed-effects models as scikit-learn estimators.

Exact REML/ML fits of lme4's linear mixed models (random intercepts, crossed
and nested factors, correlated or independent random slopes) on Henderson's
mixed-model equations, usable in Pipelines, GridSearchCV and cross-validation
with the grouping factors passed as arrays.
"""

from . import datasets
from ._crossed import CrossedEffectsRegressor
from ._mixed import MixedLinearRegressor
from .exceptions import PopulationPredictionWarning, SingularFitWarning
from .scoring import make_group_scorer

__version__ = "0.1.0"

__all__ = [
    "CrossedEffectsRegressor",
    "MixedLinearRegressor",
    "PopulationPredictionWarning",
    "SingularFitWarning",
    "datasets",
    "make_group_scorer",
    "__version__",
]
