"""The Examples sections of the public docstrings run and print what they show."""

import doctest

import pytest

import sklearn_mixed
from sklearn_mixed import _mixed, scoring

MODULES = [_mixed, scoring]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module.__name__} has no examples"
    assert result.failed == 0


def test_public_objects_have_examples():
    for name in ["MixedLinearRegressor", "make_group_scorer"]:
        assert "Examples\n    --------" in getattr(sklearn_mixed, name).__doc__
