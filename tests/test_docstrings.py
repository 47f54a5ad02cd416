"""The Examples sections of the public docstrings run and print what they show."""

import doctest
import importlib

import pytest

import sklearn_mixed
from sklearn_mixed import (
    _formula_estimators,
    _formula_glmer,
    _glmer,
    _mixed,
    _reading,
    datasets,
    formula,
    scoring,
)

MODULES = [
    _mixed,
    _reading,
    scoring,
    _formula_estimators,
    _formula_glmer,
    _glmer,
    formula,
    datasets,
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module.__name__} has no examples"
    assert result.failed == 0


def test_public_objects_have_examples():
    for name in ["MixedLinearRegressor", "make_group_scorer", "LmerRegressor", "GlmerClassifier",
                 "GlmerRegressor", "lmer", "glmer"]:  # fmt: skip
        assert "Examples\n    --------" in getattr(sklearn_mixed, name).__doc__


@pytest.mark.parametrize("name", ["_caterpillar", "_qq", "_shrinkage"])
def test_display_examples(name):
    """The displays' examples (sklearn_mixed.inspection) draw headless, on Agg."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    module = importlib.import_module(f"sklearn_mixed._plot.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module.__name__} has no examples"
    assert result.failed == 0
    for display in module.__all__:
        assert "Examples\n    --------" in getattr(sklearn_mixed, display).__doc__
