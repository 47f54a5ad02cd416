"""Agreement of ``MixedLinearRegressor`` with lme4 on extra real data sets.

The references in ``data/lme4_extra`` were computed with R 4.2.2 and lme4
1.1.31 (default ``lmer`` settings) by ``tools/make_lme4_references.R``, on
data sets of mlmRev and nlme exported to the CSV files next to them (see
``data/lme4_extra/README.md``).  Each JSON file says how to refit it:
``columns`` (response, features and grouping columns of the CSV),
``random_slopes`` and ``covariance`` per grouping factor.  The checks and
tolerances are those of ``test_lme4_reference.py`` (``_reference.py``).
"""

from pathlib import Path

import pytest
from _reference import as_list, assert_matches_lme4, load_reference, read_csv

DATA = Path(__file__).parent / "data" / "lme4_extra"
REFERENCES = sorted(DATA.glob("*.json"))


def test_references_are_present():
    assert len(REFERENCES) == 16


@pytest.mark.parametrize("path", REFERENCES, ids=lambda path: path.stem)
def test_matches_lme4(path):
    """``lmer(<formula>, REML = <reml>)`` with the JSON's ``formula`` and ``reml``.

    For example ``exam_uncorr_reml.json`` is
    ``lmer(normexam ~ standLRT + (1 | school) + (0 + standLRT | school), Exam, REML = TRUE)``,
    fitted as ``MixedLinearRegressor(random_slopes={"school": ["standLRT"]},
    covariance={"school": "diagonal"})``; lme4 reports its variances as the
    factors ``school`` and ``school.1``.
    """
    ref = load_reference(path)
    columns = ref["columns"]
    features, factors = as_list(columns["X"]), as_list(columns["groups"])
    df = read_csv(DATA / f"{ref['dataset']}.csv", factors)
    assert_matches_lme4(
        ref,
        df[features],
        df[columns["y"]],
        df[factors],
        random_slopes={f: as_list(slopes) for f, slopes in ref["random_slopes"].items()},
        covariance=ref["covariance"],
    )
