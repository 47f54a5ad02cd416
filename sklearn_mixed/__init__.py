"""sklearn-mixed: mixed-effects models as scikit-learn estimators.

Exact REML/ML fits of lme4's linear mixed models (random intercepts, crossed
and nested factors, correlated or independent random slopes) on Henderson's
mixed-model equations, and its generalized linear mixed models (logistic and
Poisson, Laplace and adaptive Gauss-Hermite), usable in Pipelines, GridSearchCV and cross-validation
with the grouping factors passed as arrays.
"""

from . import datasets, inference
from ._crossed import CrossedEffectsRegressor
from ._encoder import MixedEffectsEncoder
from ._formula_estimators import LmerRegressor
from ._formula_glmer import GlmerClassifier, GlmerRegressor
from ._glmer import glmer
from ._influence import GroupInfluence
from ._mixed import MixedLinearRegressor
from ._mixed_effects import MixedEffectsRegressor
from ._mixed_glm import MixedLogisticRegression, MixedPoissonRegressor
from .exceptions import (
    ExactFitWarning,
    NoGroupsWarning,
    NotYetFittedWarning,
    PopulationPredictionWarning,
    SingularFitWarning,
)
from .formula import FormulaModel, from_formula, lmer
from .inspection import (
    CaterpillarDisplay,
    RandomEffectsQQDisplay,
    ResidualsDisplay,
    ShrinkageDisplay,
)
from .model_comparison import anova, information_criteria
from .scoring import make_group_scorer

__version__ = "0.1.0"

__all__ = [
    "CaterpillarDisplay",
    "CrossedEffectsRegressor",
    "ExactFitWarning",
    "FormulaModel",
    "GlmerClassifier",
    "GlmerRegressor",
    "GroupInfluence",
    "LmerRegressor",
    "NoGroupsWarning",
    "NotYetFittedWarning",
    "MixedEffectsEncoder",
    "MixedEffectsRegressor",
    "MixedLinearRegressor",
    "MixedLogisticRegression",
    "MixedPoissonRegressor",
    "PopulationPredictionWarning",
    "RandomEffectsQQDisplay",
    "ResidualsDisplay",
    "ShrinkageDisplay",
    "SingularFitWarning",
    "anova",
    "datasets",
    "from_formula",
    "glmer",
    "inference",
    "information_criteria",
    "lmer",
    "make_group_scorer",
    "__version__",
]
