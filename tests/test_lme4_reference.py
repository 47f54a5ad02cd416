"""Agreement of ``MixedLinearRegressor`` with lme4 on its classic data sets.

The references in ``data/lme4/ref`` were computed with R 4.2.2 and lme4
1.1-31 (default ``lmer`` settings) on the CSV files in ``data/lme4/data``;
both were copied from the project's shared lme4 reference set (see
``data/lme4/README.md``).  Every model is fitted by REML
(``method="reml"``, lme4's ``REML = TRUE``) and ML (``method="ml"``,
``REML = FALSE``) and compared in log-likelihood, AIC/BIC, fixed effects and
their standard errors, variance components, singularity, conditional modes
and variances, fitted values and held-out predictions, with the tolerances
of ``_reference.py``.
"""

from pathlib import Path

import pytest
from _reference import assert_matches_lme4, load_reference, read_csv

DATA = Path(__file__).parent / "data" / "lme4"
MODEL_IDS = [
    "sleep_int",
    "sleep_corr",
    "sleep_uncorr",
    "dyestuff",
    "dyestuff2",
    "penicillin",
    "pastes",
]
CRITERIA = pytest.mark.parametrize("criterion", ["reml", "ml"])


def reference(model_id, criterion):
    ref = load_reference(DATA / "ref" / f"{model_id}_{criterion}.json")
    assert ref["reml"] == (criterion == "reml")
    return ref


def data(name, factors):
    return read_csv(DATA / "data" / f"{name}.csv", factors)


def test_every_reference_is_tested():
    files = {path.stem for path in (DATA / "ref").glob("*.json")}
    assert files == {f"{m}_{c}" for m in MODEL_IDS for c in ("reml", "ml")}


@CRITERIA
def test_sleep_int(criterion):
    """``lmer(Reaction ~ Days + (1 | Subject), sleepstudy, REML = TRUE)`` (and ``FALSE``)."""
    df = data("sleepstudy", ["Subject"])
    assert_matches_lme4(
        reference("sleep_int", criterion), df[["Days"]], df["Reaction"], df["Subject"]
    )


@CRITERIA
def test_sleep_corr(criterion):
    """``lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = TRUE)`` (and ``FALSE``)."""
    df = data("sleepstudy", ["Subject"])
    assert_matches_lme4(
        reference("sleep_corr", criterion),
        df[["Days"]],
        df["Reaction"],
        df["Subject"],
        random_slopes=["Days"],
    )


@CRITERIA
def test_sleep_uncorr(criterion):
    """``lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), sleepstudy, REML = TRUE)``
    (and ``FALSE``).

    lme4 reports the two independent terms as the factors ``Subject`` and
    ``Subject.1``: they are compared with the diagonal of our ``Subject``.
    """
    df = data("sleepstudy", ["Subject"])
    assert_matches_lme4(
        reference("sleep_uncorr", criterion),
        df[["Days"]],
        df["Reaction"],
        df["Subject"],
        random_slopes=["Days"],
        covariance="diagonal",
    )


@CRITERIA
def test_dyestuff(criterion):
    """``lmer(Yield ~ 1 + (1 | Batch), Dyestuff, REML = TRUE)`` (and ``FALSE``)."""
    df = data("dyestuff", ["Batch"])
    assert_matches_lme4(reference("dyestuff", criterion), df[[]], df["Yield"], df["Batch"])


@CRITERIA
def test_dyestuff2(criterion):
    """``lmer(Yield ~ 1 + (1 | Batch), Dyestuff2, REML = TRUE)`` (and ``FALSE``).

    A singular fit: the batch variance is 0, and a ``SingularFitWarning`` is expected.
    """
    df = data("dyestuff2", ["Batch"])
    assert_matches_lme4(reference("dyestuff2", criterion), df[[]], df["Yield"], df["Batch"])


@CRITERIA
def test_penicillin(criterion):
    """``lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin, REML = TRUE)`` (and
    ``FALSE``): crossed factors."""
    df = data("penicillin", ["plate", "sample"])
    assert_matches_lme4(
        reference("penicillin", criterion), df[[]], df["diameter"], df[["plate", "sample"]]
    )


@CRITERIA
def test_pastes(criterion):
    """``lmer(strength ~ 1 + (1 | batch) + (1 | batch:cask), Pastes, REML = TRUE)`` (and
    ``FALSE``): nested factors.

    The CSV's ``sample`` column is the label ``"<batch>:<cask>"``, renamed
    ``batch:cask`` as lme4 names that factor.
    """
    df = data("pastes", ["batch", "cask", "sample"]).rename(columns={"sample": "batch:cask"})
    assert_matches_lme4(
        reference("pastes", criterion), df[[]], df["strength"], df[["batch", "batch:cask"]]
    )
