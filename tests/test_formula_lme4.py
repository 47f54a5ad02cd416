"""lme4 formulas as R reads them: model matrices, fits and predictions against R.

References: ``tests/data/formula/`` (README there), written by
``tools/make_formula_references.R`` with R 4.2.2 and lme4 1.1-31:

- ``model_matrix.json``: ``model.matrix(~ rhs, dietox)`` for fixed parts with
  R's term algebra and functions (names and values of 61 rows), and for
  ``poly`` and ``scale`` on new data (R's ``makepredictcall``: coefficients
  learned on the training data);
- ``<letter>_<slug>.json``: ``lmer(formula, data, REML)`` of the formulas
  lme4 users write on dietox and sleepstudy (the R call in ``lme4_call``):
  fixed-effect design, response, offset, random-effect terms,
  log-likelihood, fixed effects, fitted values and predictions on new rows
  with seen and unseen groups (``allow.new.levels = TRUE``) and without
  random effects (``re.form = NA``); lme4's ``contrasts`` argument where
  the file has ``contrasts``.

Tolerances: model-matrix values are arithmetic, equal to 1e-10 relative
(``poly``'s recurrence against R's QR: ~1e-13); fits use the lme4 agreement
of ``tests/_reference.py`` (log-likelihood 1e-4, fixed effects 1e-3 standard
errors, fitted values and predictions 1e-3 sigma), the same for every case
(case ``u`` ends on the boundary in some R runs and not in others, README;
the stored run is the one with the higher log-likelihood).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _reference import TOL_BETA_PER_SE, TOL_LOGLIK, TOL_PREDICTION_PER_SIGMA

from sklearn_mixed import LmerRegressor
from sklearn_mixed._formula_read import read_formula
from sklearn_mixed.datasets import load_dietox, load_sleepstudy

DATA = Path(__file__).parent / "data" / "formula"
FITS = sorted(p for p in DATA.glob("*.json") if p.name != "model_matrix.json")
MODEL_MATRIX = json.loads((DATA / "model_matrix.json").read_text())


def _dataset(name):
    if name == "sleepstudy":
        return load_sleepstudy()
    return load_dietox().drop(columns=["Feed"])  # the columns R used: no NA


def _matrix(design, data, intercept):
    X = design.features(data)
    if intercept:
        X.insert(0, "(Intercept)", 1.0)
    return X


@pytest.mark.parametrize("case", MODEL_MATRIX["cases"], ids=lambda c: c["rhs"])
def test_model_matrix_is_rs(case):
    data = _dataset("dietox")
    design, params, features = read_formula(f"Weight ~ {case['rhs']} + (1 | Pig)", data)
    pd.testing.assert_frame_equal(features, design.features(data))  # read once, the same
    X = _matrix(design, data, params["fit_intercept"])
    assert list(X.columns) == case["colnames"]
    expected = np.asarray(case["X"], dtype=float)
    got = X.to_numpy()[MODEL_MATRIX["rows"]]
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", MODEL_MATRIX["new_rows"], ids=lambda c: c["rhs"])
def test_transforms_learned_at_fit_apply_to_new_data(case):
    data = _dataset("dietox")
    design, params, _ = read_formula(f"Weight ~ {case['rhs']} + (1 | Pig)", data)
    new = pd.DataFrame(case["newdata"]).assign(Pig="4601")
    X = _matrix(design, new, params["fit_intercept"])
    assert list(X.columns) == case["colnames"]
    np.testing.assert_allclose(X.to_numpy(), np.asarray(case["X"], dtype=float),
                               rtol=1e-10, atol=1e-12)  # fmt: skip


def _fit(ref):
    data = _dataset(ref["dataset"])
    model = LmerRegressor(
        ref["formula"], method="reml" if ref["REML"] else "ml", contrasts=ref.get("contrasts")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular fits (case u) warn, as lme4 messages
        return model.fit(data), data


def _factor_key(name):
    return frozenset(name.split(":"))


@pytest.mark.parametrize("path", FITS, ids=lambda p: p.stem)
def test_lmer_formula_matches_lme4(path):
    ref = json.loads(path.read_text())
    model, data = _fit(ref)
    design = model.design_
    fixed = model.fixed_effect_names_
    assert fixed == ref["X_names"], "fixed-effect columns and names as R's model.matrix"
    X = _matrix(design, data, model.estimator_.fit_intercept)
    np.testing.assert_allclose(X[ref["X_names"]].to_numpy(), np.asarray(ref["X"]), rtol=1e-10,
                               atol=1e-12)  # fmt: skip
    response = design.response(data).to_numpy(dtype=float)
    np.testing.assert_allclose(response, ref["y"], rtol=1e-13)
    offset = design.offset(data)
    np.testing.assert_allclose(0.0 if offset is None else offset, ref["offset"], rtol=1e-13)
    ours = {_factor_key(f): names for f, names in _random_names(model).items()}
    theirs = {}
    for term in ref["cnms"]:
        theirs.setdefault(_factor_key(term["group"]), set()).update(term["names"])
    assert ours == theirs, "random-effect terms as lme4's cnms"

    assert abs(model.log_likelihood_ - ref["logLik"]) <= TOL_LOGLIK
    sigma = ref["sigma"]
    se = model.fixed_effects_["std_error"].to_numpy()
    beta = model.fixed_effects_["estimate"].to_numpy()
    expected = np.array([ref["fixef"][n] for n in fixed])
    assert np.all(np.abs(beta - expected) <= TOL_BETA_PER_SE * se)
    tol = TOL_PREDICTION_PER_SIGMA * sigma
    np.testing.assert_allclose(model.predict(data), ref["fitted"], rtol=0, atol=tol)

    new = pd.DataFrame(ref["newdata"])
    np.testing.assert_allclose(model.predict(new), ref["predict_new"], rtol=0, atol=tol)
    population = model.predict(new.drop(columns=design.parsed.grouping_variables),
                               random_effects=[])  # fmt: skip
    np.testing.assert_allclose(population, ref["predict_new_population"], rtol=0, atol=tol)


def _random_names(model):
    """``{factor: set of covariate names}`` of the fitted model."""
    out = {}
    for (factor, covariate), _ in model.variance_components_.iterrows():
        if factor != "Residual":
            out.setdefault(factor, set()).update([covariate] if isinstance(covariate, str)
                                                 else covariate)  # fmt: skip
    return out


def test_a_local_minimum_on_the_boundary_is_left():
    """``lmer(Y ~ N + V + (V || B), oats)`` (MASS's oats; oats/oats_v_or_b.json):
    from lme4's default start our quasi-Newton search stops at a singular local
    minimum (logLik -282.7983); the second start of a singular fit with a
    correlated block reaches lme4's optimum (every allFit optimizer's)."""
    ref = json.loads((DATA / "oats" / "oats_v_or_b.json").read_text())
    oats = pd.read_csv(DATA / "oats" / "oats.csv", dtype={"B": str, "V": str, "N": str})
    model = LmerRegressor(ref["formula"]).fit(oats)
    assert abs(model.log_likelihood_ - ref["logLik"]) <= TOL_LOGLIK
    assert model.fixed_effect_names_ == list(ref["fixef"])
    se = model.fixed_effects_["std_error"].to_numpy()
    beta = np.array(list(ref["fixef"].values()))
    assert np.all(
        np.abs(model.fixed_effects_["estimate"].to_numpy() - beta) <= TOL_BETA_PER_SE * se
    )


ANOVA = [p for p in FITS if "anova_type3" in json.loads(p.read_text())]


@pytest.mark.parametrize("path", ANOVA, ids=lambda p: p.stem)
def test_type3_tests_match_lmertest_for_every_coding(path):
    """``anova(fit, type = 3)`` of lmerTest 3.1-3 (the file's ``anova_type3``):
    treatment, sum, SAS and polynomial (ordered factor) codings of the same
    terms; lmerTest maps the treatment-coded hypotheses to the coding used.
    F values to 1e-4 relative and denominator df to 1e-3 (the Satterthwaite
    tolerances of test_satterthwaite.py)."""
    ref = json.loads(path.read_text())
    model, _ = _fit(ref)
    table = model.anova()
    expected = ref["anova_type3"]
    assert list(table.index) == expected["terms"]
    np.testing.assert_allclose(table["F value"], expected["F"], rtol=1e-4)
    np.testing.assert_array_equal(table["NumDF"], expected["NumDF"])
    np.testing.assert_allclose(table["DenDF"], expected["DenDF"], rtol=1e-3)
