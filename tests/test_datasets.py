"""Tests for the bundled data sets in ``sklearn_mixed.datasets``."""

import doctest

import numpy as np
import pandas as pd
import pytest

import sklearn_mixed.datasets as datasets
from sklearn_mixed.datasets import (
    load_dyestuff,
    load_dyestuff2,
    load_hsb82,
    load_pastes,
    load_penicillin,
    load_sleepstudy,
)

# loader -> (shape, column names in order, factor (string) columns)
CASES = {
    load_sleepstudy: ((180, 3), ["Reaction", "Days", "Subject"], ["Subject"]),
    load_dyestuff: ((30, 2), ["Batch", "Yield"], ["Batch"]),
    load_dyestuff2: ((30, 2), ["Batch", "Yield"], ["Batch"]),
    load_penicillin: ((144, 3), ["diameter", "plate", "sample"], ["plate", "sample"]),
    load_pastes: ((60, 4), ["strength", "batch", "cask", "sample"], ["batch", "cask", "sample"]),
    load_hsb82: (
        (7185, 8),
        ["school", "minrty", "sx", "ses", "mAch", "meanses", "sector", "cses"],
        ["school", "minrty", "sx", "sector"],
    ),
}

LOADERS = pytest.mark.parametrize("loader", list(CASES), ids=lambda f: f.__name__)


@LOADERS
def test_shape_and_columns(loader):
    shape, columns, _ = CASES[loader]
    df = loader()
    assert isinstance(df, pd.DataFrame)
    assert df.shape == shape
    assert list(df.columns) == columns
    assert isinstance(df.index, pd.RangeIndex)


@LOADERS
def test_factor_columns_are_strings(loader):
    _, columns, factors = CASES[loader]
    df = loader()
    for col in factors:
        assert pd.api.types.is_string_dtype(df[col].dtype), col
        assert all(isinstance(v, str) for v in df[col]), col
    for col in set(columns) - set(factors):
        assert pd.api.types.is_numeric_dtype(df[col].dtype), col
        assert np.isfinite(df[col].to_numpy(dtype=float)).all(), col


@LOADERS
def test_no_missing_values(loader):
    assert not loader().isna().any().any()


@LOADERS
def test_fresh_copy_each_call(loader):
    df = loader()
    df.iloc[0, 0] = df.iloc[1, 0]
    df["extra"] = 0
    _, columns, _ = CASES[loader]
    assert list(loader().columns) == columns
    pd.testing.assert_frame_equal(loader(), loader())


def test_sleepstudy_levels():
    df = load_sleepstudy()
    assert df["Subject"].nunique() == 18
    assert (df.groupby("Subject").size() == 10).all()
    assert df["Subject"].iloc[0] == "308"
    assert sorted(df["Days"].unique()) == list(range(10))


def test_dyestuff_levels():
    for df in (load_dyestuff(), load_dyestuff2()):
        assert sorted(df["Batch"].unique()) == list("ABCDEF")
        assert (df.groupby("Batch").size() == 5).all()


def test_penicillin_crossed_design():
    df = load_penicillin()
    assert df["plate"].nunique() == 24
    assert df["sample"].nunique() == 6
    # fully crossed: every sample exactly once on every plate
    counts = pd.crosstab(df["plate"], df["sample"])
    assert counts.shape == (24, 6)
    assert (counts.to_numpy() == 1).all()


def test_pastes_nested_label():
    df = load_pastes()
    assert (df["sample"] == df["batch"] + ":" + df["cask"]).all()
    assert df["batch"].nunique() == 10
    assert sorted(df["cask"].unique()) == ["a", "b", "c"]
    assert df["sample"].nunique() == 30
    assert (df.groupby("sample").size() == 2).all()


def test_hsb82_levels_and_derived_columns():
    df = load_hsb82()
    assert len(df) == 7185
    assert df["school"].nunique() == 160
    assert set(df["minrty"]) == {"No", "Yes"}
    assert set(df["sx"]) == {"Male", "Female"}
    assert set(df["sector"]) == {"Public", "Catholic"}
    # school-level variables are constant within school
    assert (df.groupby("school")["sector"].nunique() == 1).all()
    school_mean = df.groupby("school")["ses"].transform("mean")
    np.testing.assert_allclose(df["meanses"], school_mean, atol=1e-10)
    np.testing.assert_allclose(df["cses"], df["ses"] - df["meanses"], atol=1e-10)


def test_docstring_examples():
    result = doctest.testmod(datasets, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
