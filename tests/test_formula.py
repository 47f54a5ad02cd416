"""lme4 formulas: ``from_formula`` and ``lmer``.

The formulas are read into a configured ``MixedLinearRegressor`` and its
``X``, ``y`` and ``groups``; fits through them are compared with the lme4
1.1-31 references of ``data/lme4`` and ``data/lme4_extra`` (R 4.2.2, default
``lmer`` settings; the R call is in each test's docstring and in the
references' README files), with the tolerances of ``_reference.py``.
"""

import doctest
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _reference import (
    TOL_BETA_PER_SE,
    TOL_LOGLIK,
    TOL_REL,
    assert_matches_lme4,
    load_reference,
    read_csv,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_mixed import FormulaModel, MixedLinearRegressor, formula, from_formula, lmer
from sklearn_mixed.datasets import load_pastes, load_penicillin, load_sleepstudy

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def sleep():
    df = load_sleepstudy()
    df["x2"] = df["Days"].astype(float) ** 2
    df["block"] = (df["Days"] % 3).map({0: "a", 1: "b", 2: "c"})
    return df


def group_names(groups):
    """One factor is a named Series (for group splitters), several a DataFrame."""
    return [groups.name] if isinstance(groups, pd.Series) else list(groups.columns)


def structure(fm):
    """What the formula configured: estimator parameters, X and groups columns."""
    params = fm.estimator.get_params()
    return (
        params["fit_intercept"],
        list(fm.X.columns),
        group_names(fm.groups),
        params["random_slopes"],
        params["covariance"],
    )


# ---------------------------------------------------------------- parsing

S, U, D = "Subject", "unstructured", "diagonal"
SLEEP_FORMS = [
    ("Reaction ~ Days + (1 | Subject)", True, ["Days"], {S: []}, {S: U}),
    ("Reaction ~ Days + (Days | Subject)", True, ["Days"], {S: ["Days"]}, {S: U}),
    ("Reaction ~ Days + (1 + Days | Subject)", True, ["Days"], {S: ["Days"]}, {S: U}),
    (
        "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
        True,
        ["Days"],
        {S: ["Days"]},
        {S: D},
    ),
    (
        "Reaction ~ Days + (1 | Subject) + (Days - 1 | Subject)",
        True,
        ["Days"],
        {S: ["Days"]},
        {S: D},
    ),
    ("Reaction ~ Days + (Days || Subject)", True, ["Days"], {S: ["Days"]}, {S: D}),
    (
        "Reaction ~ Days + x2 + (Days + x2 | Subject)",
        True,
        ["Days", "x2"],
        {S: ["Days", "x2"]},
        {S: U},
    ),
    (
        "Reaction ~ Days + x2 + (Days + x2 || Subject)",
        True,
        ["Days", "x2"],
        {S: ["Days", "x2"]},
        {S: D},
    ),
    ("Reaction ~ 1 + (1 | Subject)", True, [], {S: []}, {S: U}),
    ("Reaction ~ 0 + Days + (1 | Subject)", False, ["Days"], {S: []}, {S: U}),
    ("Reaction ~ Days - 1 + (1 | Subject)", False, ["Days"], {S: []}, {S: U}),
    ("Reaction ~ -1 + Days + (1 | Subject)", False, ["Days"], {S: []}, {S: U}),
    ("Reaction ~ Days*x2 + (1 | Subject)", True, ["Days", "x2", "Days:x2"], {S: []}, {S: U}),
    ("Reaction ~ Days:x2 + Days + (1 | Subject)", True, ["Days", "Days:x2"], {S: []}, {S: U}),
    ("Reaction ~ Days*x2 - Days:x2 + (1 | Subject)", True, ["Days", "x2"], {S: []}, {S: U}),
    ("Reaction ~ Days + ((1 | Subject))", True, ["Days"], {S: []}, {S: U}),
    (
        "Reaction ~ block + Days + (1 | Subject)",
        True,
        ["blockb", "blockc", "Days"],
        {S: []},
        {S: U},
    ),
    (
        "Reaction ~ 0 + block + (1 | Subject)",
        False,
        ["blocka", "blockb", "blockc"],
        {S: []},
        {S: U},
    ),
    (
        "Reaction ~ Days + block + (block | Subject)",
        True,
        ["Days", "blockb", "blockc"],
        {S: ["blockb", "blockc"]},
        {S: U},
    ),
]


@pytest.mark.parametrize(("text", "intercept", "columns", "slopes", "cov"), SLEEP_FORMS)
def test_sleepstudy_forms(sleep, text, intercept, columns, slopes, cov):
    fm = from_formula(text, sleep)
    assert structure(fm) == (intercept, columns, ["Subject"], slopes, cov)
    assert fm.estimator.get_params()["method"] == "reml"
    assert fm.y.name == "Reaction" and fm.y.dtype == float
    assert fm.X.index.equals(sleep.index) and fm.groups.index.equals(sleep.index)


def test_term_order_is_rs(sleep):
    """R's model.matrix: main effects first, categorical coded where it appears."""
    fm = from_formula("Reaction ~ block + Days + (1 | Subject)", sleep)
    assert list(fm.X.columns) == ["blockb", "blockc", "Days"]


def test_column_values(sleep):
    fm = from_formula("Reaction ~ Days*x2 + block + (1 | Subject)", sleep)
    days, x2 = sleep["Days"].to_numpy(float), sleep["x2"].to_numpy()
    np.testing.assert_array_equal(fm.X["Days:x2"], days * x2)
    np.testing.assert_array_equal(fm.X["blockb"], (sleep["block"] == "b").astype(float))
    np.testing.assert_array_equal(fm.X["blockc"], (sleep["block"] == "c").astype(float))
    assert all(pd.api.types.is_float_dtype(t) for t in fm.X.dtypes)
    pd.testing.assert_series_equal(fm.groups, sleep["Subject"])


def test_categorical_and_bool_levels(sleep):
    """Category dtype: the categories' order (unused ones dropped); bool: ``xTRUE`` as R."""
    df = sleep.assign(
        level=pd.Categorical(
            np.where(sleep["Days"] > 4, "hi", "lo"), categories=["unused", "lo", "hi"]
        ),
        late=sleep["Days"] > 4,
    )
    assert list(from_formula("Reaction ~ level + (1 | Subject)", df).X.columns) == ["levelhi"]
    fm = from_formula("Reaction ~ late + (1 | Subject)", df)
    assert list(fm.X.columns) == ["lateTRUE"]
    np.testing.assert_array_equal(fm.X["lateTRUE"], (sleep["Days"] > 4).astype(float))


def test_crossed_and_nested_groups():
    pen = load_penicillin()
    fm = from_formula("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    assert structure(fm) == (
        True,
        [],
        ["plate", "sample"],
        {"plate": [], "sample": []},
        {"plate": U, "sample": U},
    )
    pastes = load_pastes()
    nested = from_formula("strength ~ 1 + (1 | batch/cask)", pastes)
    expanded = from_formula("strength ~ (1 | batch) + (1 | batch:cask)", pastes)
    assert structure(nested) == structure(expanded)
    assert list(nested.groups.columns) == ["batch", "batch:cask"]
    combined = pastes["batch"] + ":" + pastes["cask"]
    np.testing.assert_array_equal(nested.groups["batch:cask"], combined)
    pd.testing.assert_frame_equal(nested.groups, expanded.groups)


def test_three_level_nesting_and_backticks(sleep):
    df = sleep.rename(columns={"Days": "day count"}).assign(half=sleep["Days"] > 4)
    fm = from_formula("Reaction ~ `day count` + (1 | Subject/half/block)", df)
    assert list(fm.groups.columns) == ["Subject", "Subject:half", "Subject:half:block"]
    assert fm.groups["Subject:half:block"].iloc[0] == "308:False:a"
    assert list(fm.X.columns) == ["`day count`"]  # R's model.matrix name


def test_estimator_params_pass_through(sleep):
    fm = from_formula("Reaction ~ Days + (1 | Subject)", sleep, method="ml", max_iter=7)
    assert fm.estimator.get_params()["max_iter"] == 7
    assert fm.estimator.get_params()["method"] == "ml"
    assert isinstance(fm, FormulaModel) and isinstance(fm.estimator, MixedLinearRegressor)
    assert not hasattr(fm.estimator, "coef_")  # unfitted
    assert "Reaction ~ Days + (1 | Subject)" in repr(fm)


# ---------------------------------------------------------------- errors

ERRORS = [
    ("Reaction ~ Days + (1 | Subject) + (1 | Subject)", r"'1' appears in two terms"),
    ("Reaction ~ Days + (Days || Subject) + (1 | Subject)", r"appears in two terms"),
    ("Reaction ~ 1 + (1 | Subject/block) + (1 | Subject)", r"'Subject'.*appears in two terms"),
    ("Reaction ~ Days + (Days | Subject) + (0 + Days | Subject)", r"'Days' appears in two"),
    ("Reaction ~ Days + (0 | Subject)", r"no covariate"),
    ("Reaction ~ Days + (Days * 2 | Subject)", r"'2' cannot be a term.*supported"),
    ("Reaction ~ Days + (Days | log(Subject))", r"'Subject' is categorical"),
    ("Reaction ~ Days + (log(Days) | Subject)", r"'log\(Days\)' is not finite.*18 rows"),
    ("Reaction ~ Days + (1 | Subject*block)", r"grouping factor"),
    ("Reaction ~ Days + 1 | Subject", r"in parentheses"),
    ("Reaction ~ Days - (1 | Subject)", r"in parentheses"),
    ("Reaction ~ Days + (1 | | Subject)", r"unexpected '\|'"),
    ("Reaction ~ Days + (1 | )", r"unexpected '\)'"),
    ("Reaction ~ Days", r"no random-effect term"),
    ("~ Days + (1 | Subject)", r"response of .* is not in the data"),
    ("Reaction ~ Days ~ x2 + (1 | Subject)", r"response ~ terms"),
    ("Reaction ~ Days + (1 | Subject) +", r"expected more at the end"),
    ("Reaction ~ Days**2 + (1 | Subject)", r"R writes powers as x\^2"),
    ("Reaction ~ np.log(Days) + (1 | Subject)", r"unknown function 'np.log'.*log\(x\)"),
    ("Reaction ~ C(block) + (1 | Subject)", r"unknown function 'C'.*contrasts="),
    ("Reaction ~ Days + x2 * 2 + (1 | Subject)", r"'2' cannot be a term"),
    ("Reaction ~ Days + . + (1 | Subject)", r"all other columns"),
    ("Reaction ~ poly(Days, 10) + (1 | Subject)", r"degree must be less than"),
    ("Reaction ~ Days + I(Days + block) + (1 | Subject)", r"'block' is categorical"),
    ("Reaction ~ Dayz + (1 | Subjekt)", r"\['Dayz', 'Subjekt'\].*available columns.*'Days'"),
    ("block ~ Days + (1 | Subject)", r"response 'block' must be numeric"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_unsupported_syntax_is_a_clear_error(sleep, text, message):
    with pytest.raises(ValueError, match=message):
        from_formula(text, sleep)


def test_random_errors_say_what_is_supported(sleep):
    with pytest.raises(ValueError, match=re.escape("(0 + f | g) with f categorical")):
        from_formula("Reaction ~ Days + (Days * 2 | Subject)", sleep)


# lme4 terms beyond a random intercept with correlated or independent slopes:
# (formula, the estimator's random_effects, fixed_features); lme4 agreement in
# test_lme4_issue8.py
GENERAL = [
    ("Reaction ~ Days + (0 + Days | Subject)", {"Subject": [["Days"]]}, None),
    ("Reaction ~ Days + (Days - 1 | Subject)", {"Subject": [["Days"]]}, None),
    ("Reaction ~ 1 + (1 + Days | Subject)", {"Subject": [["1", "Days"]]}, []),
    (
        "Reaction ~ Days + x2 + (Days | Subject) + (0 + x2 | Subject)",
        {"Subject": [["1", "Days"], ["x2"]]},
        None,
    ),
    (
        "Reaction ~ Days + x2 + (1 | Subject) + (0 + Days + x2 | Subject)",
        {"Subject": [["1"], ["Days", "x2"]]},
        None,
    ),
    ("Reaction ~ Days + (x2 | Subject)", {"Subject": [["1", "x2"]]}, ["Days"]),
    (
        "Reaction ~ block + (0 + block | Subject) + (1 | Subject)",
        {"Subject": [["blocka", "blockb", "blockc"], ["1"]]},
        ["blockb", "blockc"],
    ),
    (
        "Reaction ~ block + (block || Subject)",
        {"Subject": [["1"], ["blocka", "blockb", "blockc"]]},
        ["blockb", "blockc"],
    ),
]


@pytest.mark.parametrize(("text", "random_effects", "fixed"), GENERAL)
def test_general_random_terms_fit(sleep, text, random_effects, fixed):
    fm = from_formula(text, sleep)
    params = fm.estimator.get_params()
    assert params["random_effects"] == random_effects
    assert params["fixed_features"] == fixed
    model = fm.fit()
    assert np.isfinite(model.log_likelihood_) and model.converged_


def test_categorical_interaction_in_the_fixed_part(sleep):
    """R's coding: block:Days without Days' main effect has a slope per level."""
    fm = from_formula("Reaction ~ block:Days + (1 | Subject)", sleep)
    assert list(fm.X.columns) == ["blocka:Days", "blockb:Days", "blockc:Days"]
    fm = from_formula("Reaction ~ block * Days + (1 | Subject)", sleep)
    assert list(fm.X.columns) == ["blockb", "blockc", "Days", "blockb:Days", "blockc:Days"]


def test_no_fixed_effects(sleep):
    """lme4's ``y ~ 0 + (1 | g)``."""
    model = lmer("Reaction ~ 0 + (1 | Subject)", sleep)
    assert model.fixed_effect_names_ == [] and model.intercept_ == 0.0


def test_missing_values_are_an_error(sleep):
    df = sleep.copy()
    df.loc[[3, 7], "Days"] = np.nan
    df.loc[[5], "Subject"] = None
    with pytest.raises(ValueError, match=r"\{'Days': 2, 'Subject': 1\}.*dropna"):
        from_formula("Reaction ~ Days + (1 | Subject)", df)
    # an unused column with missing values is fine
    fm = from_formula("Reaction ~ x2 + (1 | block)", df)
    assert len(fm.y) == len(df)


def test_parameters_set_by_the_formula_are_refused(sleep):
    with pytest.raises(ValueError, match=r"\['covariance', 'fit_intercept'\] are set by"):
        from_formula("Reaction ~ Days + (1 | Subject)", sleep, covariance=D, fit_intercept=0)
    with pytest.raises(ValueError, match="REML=True or REML=False"):
        lmer("Reaction ~ Days + (1 | Subject)", sleep, method="ml")


def test_bad_arguments(sleep):
    with pytest.raises(TypeError, match="formula must be a string"):
        from_formula(None, sleep)
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        from_formula("Reaction ~ Days + (1 | Subject)", sleep.to_numpy())
    with pytest.raises(ValueError, match="single level"):
        from_formula("Reaction ~ one + (1 | Subject)", sleep.assign(one="a"))


# ---------------------------------------------------------------- new data


def test_design_of_new_data(sleep):
    fm = from_formula("Reaction ~ Days + block + (Days | Subject/block)", sleep)
    rows = sleep.sample(20, random_state=0)
    X, groups = fm.design(rows.drop(columns="Reaction"))
    pd.testing.assert_frame_equal(X, fm.X.loc[rows.index])
    pd.testing.assert_frame_equal(groups, fm.groups.loc[rows.index])
    with pytest.raises(ValueError, match=r"'block' has level\(s\) \['z'\] not seen"):
        fm.design(rows.assign(block="z"))
    with pytest.raises(ValueError, match=r"\['block'\].*not found in data"):
        fm.design(rows.drop(columns="block"))


# ---------------------------------------------------------------- R's functions


def test_r_functions_are_computed_as_r(sleep):
    """``I(x^2)`` is a square (not XOR), ``log``, ``sqrt``; the response may be transformed."""
    fm = from_formula("log(Reaction) ~ I(Days^2) + log1p(Days) + sqrt(x2) + (1 | Subject)",
                      sleep)  # fmt: skip
    assert list(fm.X.columns) == ["I(Days^2)", "log1p(Days)", "sqrt(x2)"]
    np.testing.assert_array_equal(fm.X["I(Days^2)"], sleep["Days"] ** 2.0)
    np.testing.assert_allclose(fm.X["log1p(Days)"], np.log1p(sleep["Days"]))
    np.testing.assert_allclose(fm.y, np.log(sleep["Reaction"]))
    assert fm.y.name == "log(Reaction)"
    X, _ = fm.design(sleep.head(3).drop(columns="Reaction"))
    pd.testing.assert_frame_equal(X, fm.X.head(3))
    shifted = sleep.set_axis(sleep.index * 10 + 5)  # rows keep their labels
    X = from_formula("Reaction ~ I(Days^2) + (Days | Subject)", shifted).X
    assert X.index.equals(shifted.index)


def test_no_python_evaluation(sleep):
    """Formulas are read, never evaluated as Python: no code runs."""
    for text in ("Reaction ~ __import__('os') + (1 | Subject)",
                 "Reaction ~ Days.__class__ + (1 | Subject)"):  # fmt: skip
        with pytest.raises(ValueError):
            from_formula(text, sleep)


# ---------------------------------------------------------------- lme4 references


def lme4_data(name, factors):
    return read_csv(DATA / "lme4" / "data" / f"{name}.csv", factors)


def extra_data(name, factors):
    return read_csv(DATA / "lme4_extra" / f"{name}.csv", factors)


def machines():
    """nlme's Machines, with the factor ``Machine`` from the CSV's ``Worker:Machine`` label."""
    df = extra_data("machines", ["Worker", "Worker:Machine"])
    return df.assign(Machine=df["Worker:Machine"].str.split(":").str[1])


def ergostool():
    """nlme's ergoStool, with the factor ``Type`` (T1...T4) from the CSV's dummy columns."""
    df = extra_data("ergostool", ["Subject"])
    dummies = df[["TypeT2", "TypeT3", "TypeT4"]].to_numpy()
    return df.assign(Type=np.array(["T1", "T2", "T3", "T4"])[dummies @ [1, 2, 3]])


def scotssec():
    """mlmRev's ScotsSec, with the factor ``sex`` (levels M, F as in R) from ``sexF``."""
    df = extra_data("scotssec", ["primary", "second"])
    sex = pd.Categorical(np.where(df["sexF"] == 1, "F", "M"), categories=["M", "F"])
    return df.assign(sex=sex)


# (reference file, formula, data): the R calls are the references' "formula" fields
LME4_CASES = [
    ("lme4/ref/sleep_corr", "Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    ("lme4/ref/sleep_uncorr", "Reaction ~ Days + (Days || Subject)", "sleepstudy"),
    ("lme4/ref/penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin"),
    ("lme4/ref/pastes", "strength ~ 1 + (1 | batch/cask)", "pastes"),
    ("lme4_extra/hsb82_corr", "mAch ~ ses + (1 + ses | school)", "hsb82"),
    ("lme4_extra/hsb82_uncorr", "mAch ~ ses + (1 | school) + (0 + ses | school)", "hsb82"),
    ("lme4_extra/machines_nested", "score ~ Machine + (1 | Worker/Machine)", "machines"),
    ("lme4_extra/ergostool", "effort ~ Type + (1 | Subject)", "ergostool"),
    ("lme4_extra/scotssec_crossed", "attain ~ verbal + sex + (1|primary) + (1|second)", "scotssec"),
]
LOADERS = {
    "sleepstudy": lambda: lme4_data("sleepstudy", ["Subject"]),
    "penicillin": lambda: lme4_data("penicillin", ["plate", "sample"]),
    "pastes": lambda: lme4_data("pastes", ["batch", "cask", "sample"]),
    "hsb82": lambda: extra_data("hsb82", ["school"]),
    "machines": machines,
    "ergostool": ergostool,
    "scotssec": scotssec,
}


@pytest.mark.parametrize("criterion", ["reml", "ml"])
@pytest.mark.parametrize(
    ("ref_file", "text", "dataset"), LME4_CASES, ids=[c[0].split("/")[-1] for c in LME4_CASES]
)
def test_lmer_reproduces_lme4(ref_file, text, dataset, criterion):
    """``lmer(<text>, <dataset>, REML = <criterion == "reml">)``, lme4 1.1-31 on R 4.2.2.

    The formula's estimator, X, y and groups pass every check of
    ``_reference.py``; ``lmer`` itself matches the log-likelihood, fixed
    effects and their standard errors (named as lme4 names them).
    """
    ref = load_reference(DATA / f"{ref_file}_{criterion}.json")
    df = LOADERS[dataset]()
    fm = from_formula(text, df, method=criterion)
    params = {k: v for k, v in fm.estimator.get_params().items() if k != "method"}
    assert_matches_lme4(ref, fm.X, fm.y, fm.groups, **params)

    model = lmer(text, df, REML=criterion == "reml")
    assert abs(model.log_likelihood_ - ref["loglik"]) <= TOL_LOGLIK
    fixed = model.fixed_effects_
    assert list(fixed.index) == list(ref["fixef"])
    for name, beta in ref["fixef"].items():
        se = ref["fixef_se"][name]
        assert abs(fixed.loc[name, "estimate"] - beta) <= TOL_BETA_PER_SE * se
        assert abs(fixed.loc[name, "std_error"] - se) <= TOL_REL * se


# ---------------------------------------------------------------- whitespace and order


def _spaced(draw, pieces):
    """Join ``pieces`` with 0 to 2 spaces (or a tab) between them."""
    gaps = draw(st.lists(st.sampled_from(["", " ", "  ", "\t"]), min_size=len(pieces)))
    return "".join(p + g for p, g in zip(pieces, gaps, strict=False)).strip()


@st.composite
def variants(draw, response, fixed, random):
    """A formula with its fixed terms, random terms and slopes in a drawn order.

    ``random`` is a list of ``(effects, bar, factor)``.
    """
    fixed = draw(st.permutations(fixed))
    terms = []
    for effects, bar, factor in draw(st.permutations(random)):
        effects = draw(st.permutations(effects))
        inner = [p for e in effects for p in ("+", *e.split())][1:]
        terms.append(["(", *inner, bar, *factor.split(), ")"])
    summands = [f.split() for f in fixed] + terms
    summands = draw(st.permutations(summands))
    pieces = [response, "~"] + [p for s in summands for p in ("+", *s)][1:]
    return _spaced(draw, pieces)


def canonical(fm):
    """The model up to the order of terms: interaction labels as sets of variables."""

    def name(column):
        return ":".join(sorted(column.split(":")))

    params = fm.estimator.get_params()
    X = fm.X.rename(columns=name)
    return (
        params["fit_intercept"],
        X[sorted(X.columns)],
        pd.DataFrame(fm.groups)[sorted(group_names(fm.groups))],
        {f: sorted(s) for f, s in params["random_slopes"].items()},
        params["covariance"],
    )


VARIANT_CASES = [
    (
        "Reaction ~ Days + x2 + Days : x2 + block + (1 + Days + x2 | Subject) + (1 | block)",
        (
            "Reaction",
            ["Days", "x2", "Days : x2", "block"],
            [(["1", "Days", "x2"], "|", "Subject"), (["1"], "|", "block")],
        ),
    ),
    (
        "Reaction ~ Days + x2 + (1 | Subject) + (0 + Days | Subject) + (0 + x2 | Subject)",
        (
            "Reaction",
            ["Days", "x2"],
            [
                (["1"], "|", "Subject"),
                (["0", "Days"], "|", "Subject"),
                (["0", "x2"], "|", "Subject"),
            ],
        ),
    ),
    (
        "Reaction ~ 0 + Days + x2 + (Days + x2 || Subject / block)",
        ("Reaction", ["0", "Days", "x2"], [(["Days", "x2"], "||", "Subject / block")]),
    ),
]


@pytest.mark.parametrize(("reference", "parts"), VARIANT_CASES, ids=["corr", "diag", "nested"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_whitespace_and_order_do_not_matter(sleep, reference, parts, data):
    expected = canonical(from_formula(reference, sleep))
    text = data.draw(variants(*parts))
    got = canonical(from_formula(text, sleep))
    for ours, theirs in zip(got, expected, strict=True):
        if isinstance(ours, pd.DataFrame):
            pd.testing.assert_frame_equal(ours, theirs)
        else:
            assert ours == theirs, text


# ---------------------------------------------------------------- docstrings


def test_docstring_examples():
    result = doctest.testmod(formula, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
