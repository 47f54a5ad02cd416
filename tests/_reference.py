"""Comparison of ``MixedLinearRegressor`` fits with lme4 reference results.

Shared by ``test_lme4_reference.py`` and ``test_lme4_extra.py``.  A reference
is one JSON file written by R (fields described in ``data/lme4/README.md``).
:func:`assert_matches_lme4` fits the model, compares every quantity within
the tolerances below and fails with the list of all quantities that are off.

Tolerances (from the specification of the lme4 agreement):

========================  ==============================================================
quantity                  passes when
========================  ==============================================================
``loglik``                ``|loglik - ref| <= 1e-4``
``aic``, ``bic``          ``|aic - ref| <= 1e-3``
``beta``                  ``|beta - ref| <= 1e-3 * ref_se``
``se``                    ``|se - ref_se| <= 1e-3 * ref_se``
``varcomp``               sigma^2 and each factor's variances:
                          ``|v - ref| <= 1e-3 * |ref|``, or ``<= 1e-6 * sigma^2`` when
                          ``ref == 0`` (a zero variance, or the 0 covariance of
                          independent terms); a covariance ``c_ij`` on the scale
                          of its variances, ``|c - ref| <= 1e-3 sqrt(v_i v_j)``
                          (a correlation within 1e-3: relative to ``|ref|`` a
                          covariance near 0 would ask for digits that the
                          likelihood, flat in it, does not fix: weighted Hsb82,
                          ML, correlation -0.044, lme4 stops 7e-6 away with a
                          log-likelihood 5e-8 below ours)
``ranef``                 ``|b - ref| <= 1e-3 * max(sd, 1e-3 * sigma)``, ``sd`` the
                          reference standard deviation of that factor's term
``condvar``               ``|v - ref| <= 1e-3 * ref``, or ``<= 1e-6 * sigma^2`` when
                          ``ref == 0``
``fitted``, ``heldout``   ``|yhat - ref| <= 1e-3 * sigma``
========================  ==============================================================

The floor ``1e-3 * sigma`` of the ``ranef`` scale is the standard deviation
of a variance of ``1e-6 * sigma^2``, the ``varcomp`` tolerance for a zero
variance.  Each comparison made in this process is also appended to
:data:`OBSERVED`, so that a script can summarise the agreement.
"""

import json
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from sklearn_mixed import MixedLinearRegressor
from sklearn_mixed.exceptions import PopulationPredictionWarning, SingularFitWarning

TOL_LOGLIK = 1e-4
TOL_IC = 1e-3
TOL_BETA_PER_SE = 1e-3
TOL_REL = 1e-3  # se, variance components, conditional variances
TOL_ZERO_VARIANCE = 1e-6  # times sigma^2, when the reference value is exactly 0
TOL_RANEF_PER_SD = 1e-3
TOL_PREDICTION_PER_SIGMA = 1e-3  # fitted values and held-out predictions

OBSERVED = []
"""Every :class:`Discrepancy` computed in this process, in order."""


@dataclass(frozen=True)
class Discrepancy:
    """One compared number: ``value`` is the error in the units of ``tolerance``."""

    model: str
    quantity: str
    what: str
    value: float
    tolerance: float

    @property
    def ok(self):
        return bool(self.value <= self.tolerance)

    def __str__(self):
        return (
            f"{self.quantity} {self.what}: discrepancy {self.value:.3g} "
            f"> tolerance {self.tolerance:.3g}"
        )


def load_reference(path):
    """The JSON reference at ``path`` as a dict."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def as_list(value):
    """R's jsonlite writes 1-element vectors as scalars: make them lists again."""
    return list(value) if isinstance(value, list) else [value]


def read_csv(path, factors):
    """A data set whose grouping-factor columns are read as strings (the JSON labels)."""
    return pd.read_csv(path, dtype={name: str for name in factors})


def _relative(value, ref, sigma2):
    """``(discrepancy, tolerance)`` relative to ``ref``, or to sigma^2 if ``ref`` is 0:
    exactly, or a variance below ``1e-6 sigma^2`` where lme4's optimizer stops
    near the boundary of a singular fit (weighted ScotsSec: 9e-10) instead of on it."""
    if abs(ref) < TOL_ZERO_VARIANCE * sigma2:
        return abs(value - ref) / sigma2, TOL_ZERO_VARIANCE
    return abs(value - ref) / abs(ref), TOL_REL


def reference_covariances(ref, factors, terms):
    """lme4's ``VarCorr`` as one ``k x k`` matrix per factor, in the estimator's term order.

    lme4 reports independent terms of factor ``g`` as the separate factors
    ``g``, ``g.1``, ...; their blocks are put together (0 between blocks).
    """
    varcorr = ref["varcorr"]
    covs, used = {}, set()
    for factor in factors:
        names = list(terms[factor])
        cov = np.zeros((len(names), len(names)))
        pattern = re.compile(re.escape(factor) + r"(\.\d+)?")
        for key, block in varcorr.items():
            if not pattern.fullmatch(key):
                continue
            idx = [names.index(n) for n in as_list(block["names"])]
            cov[np.ix_(idx, idx)] = np.asarray(block["cov"], dtype=float)
            used.add(key)
        covs[factor] = cov
    assert used == set(varcorr), f"lme4 factors {sorted(set(varcorr) - used)} not fitted"
    return covs


def compare_with_lme4(ref, X, y, groups, sample_weight=None, return_model=False, **params):
    """Fit like ``ref`` and return the list of :class:`Discrepancy` for every quantity.

    ``params`` are ``MixedLinearRegressor`` parameters other than ``method``,
    which comes from ``ref["reml"]``; ``sample_weight`` lme4's ``weights``.
    ``return_model=True`` returns ``(discrepancies, fitted model)``.
    Structural mismatches (names, levels, singularity, warnings) fail at once.
    """
    model_id = f"{ref['id']}_{'reml' if ref['reml'] else 'ml'}"
    model = MixedLinearRegressor(method="reml" if ref["reml"] else "ml", **params)
    if ref["singular"]:
        with pytest.warns(SingularFitWarning):
            model.fit(X, y, groups=groups, sample_weight=sample_weight)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error", SingularFitWarning)
            model.fit(X, y, groups=groups, sample_weight=sample_weight)
    assert model.singular_ == ref["singular"]

    out = []

    def add(quantity, what, value, tolerance):
        out.append(Discrepancy(model_id, quantity, what, float(value), tolerance))

    sigma2 = ref["sigma"] ** 2
    sigma = ref["sigma"]

    add("loglik", "", abs(model.log_likelihood_ - ref["loglik"]), TOL_LOGLIK)
    add("aic", "", abs(model.aic_ - ref["aic"]), TOL_IC)
    add("bic", "", abs(model.bic_ - ref["bic"]), TOL_IC)

    fixed = model.fixed_effects_
    assert list(fixed.index) == list(ref["fixef"]), "fixed-effect names differ from lme4's"
    for name, beta in ref["fixef"].items():
        se = ref["fixef_se"][name]
        add("beta", name, abs(fixed.loc[name, "estimate"] - beta) / se, TOL_BETA_PER_SE)
        add("se", name, abs(fixed.loc[name, "std_error"] - se) / se, TOL_REL)

    add("varcomp", "sigma^2", *_relative(model.residual_variance_, sigma2, sigma2))
    terms = {f: list(model.random_effects_[f].columns) for f in model.group_names_}
    ref_cov = reference_covariances(ref, model.group_names_, terms)
    for factor, cov in ref_cov.items():
        ours = model.random_effects_cov_[factor]
        assert ours.shape == cov.shape, f"{factor}: covariance shape {ours.shape}"
        for i, j in zip(*np.triu_indices(len(cov)), strict=True):
            what = f"{factor}[{terms[factor][i]}, {terms[factor][j]}]"
            if i == j or cov[i, j] == 0:
                add("varcomp", what, *_relative(ours[i, j], cov[i, j], sigma2))
            else:  # a covariance on the scale of its variances: a correlation
                scale = np.sqrt(cov[i, i] * cov[j, j])
                add("varcomp", what, abs(ours[i, j] - cov[i, j]) / scale, TOL_REL)

    assert set(ref["ranef"]) == set(model.group_names_), "ranef factors differ from lme4's"
    for factor, rf in ref["ranef"].items():
        levels, names = as_list(rf["levels"]), as_list(rf["names"])
        table = model.random_effects_[factor]
        assert sorted(table.index) == sorted(levels), f"{factor}: levels differ from lme4's"
        assert sorted(table.columns) == sorted(names), f"{factor}: terms differ from lme4's"
        rows = table.index.get_indexer(levels)
        cols = table.columns.get_indexer(names)
        values = table.to_numpy()[np.ix_(rows, cols)]
        condvar = np.diagonal(model.random_effects_conditional_cov_[factor], axis1=1, axis2=2)
        condvar = condvar[np.ix_(rows, cols)]
        ref_values = np.asarray(rf["values"], dtype=float).reshape(len(levels), len(names))
        ref_condvar = np.asarray(rf["condvar_diag"], dtype=float).reshape(len(levels), len(names))
        for t, name in enumerate(names):
            k = cols[t]
            scale = max(np.sqrt(ref_cov[factor][k, k]), 1e-3 * sigma)
            err = np.abs(values[:, t] - ref_values[:, t]) / scale
            i = int(np.argmax(err))
            add("ranef", f"{factor}[{levels[i]!r}, {name}]", err[i], TOL_RANEF_PER_SD)
            pairs = zip(condvar[:, t], ref_condvar[:, t], strict=True)
            rel = [_relative(v, r, sigma2) for v, r in pairs]
            i = int(np.argmax([d / tol for d, tol in rel]))
            add("condvar", f"{factor}[{levels[i]!r}, {name}]", *rel[i])

    fitted = model.predict(X, groups=groups)
    err = np.abs(fitted - np.asarray(ref["fitted"], dtype=float)) / sigma
    add("fitted", f"row {int(np.argmax(err))}", err.max(), TOL_PREDICTION_PER_SIGMA)

    if "heldout" in ref:
        _compare_heldout(ref, model, X, y, groups, sigma, add)
    OBSERVED.extend(out)
    return (out, model) if return_model else out


def _compare_heldout(ref, model, X, y, groups, sigma, add):
    """Refit without the held-out rows and predict them (seen and unseen levels)."""
    held = ref["heldout"]
    test = np.zeros(len(y), dtype=bool)
    test[as_list(held["test_rows"])] = True
    train = clone(model).set_params(new_groups="population")
    with warnings.catch_warnings():
        # lme4's singularity of the refit is not in the reference
        warnings.simplefilter("ignore", SingularFitWarning)
        train.fit(X.iloc[~test], y.iloc[~test], groups=groups.iloc[~test])
    pred = train.predict(X.iloc[test], groups=groups.iloc[test])
    err = np.abs(pred - np.asarray(as_list(held["predict"]), dtype=float)) / sigma
    add("heldout", f"test row {int(np.argmax(err))}", err.max(), TOL_PREDICTION_PER_SIGMA)
    with pytest.warns(PopulationPredictionWarning):
        pred = train.predict(X.iloc[test])
    err = np.abs(pred - np.asarray(as_list(held["predict_population"]), dtype=float)) / sigma
    add(
        "heldout",
        f"population, test row {int(np.argmax(err))}",
        err.max(),
        TOL_PREDICTION_PER_SIGMA,
    )


def assert_matches_lme4(ref, X, y, groups, **params):
    """Fit like ``ref`` and fail listing every quantity outside its tolerance."""
    failures = [d for d in compare_with_lme4(ref, X, y, groups, **params) if not d.ok]
    assert not failures, "differs from lme4:\n" + "\n".join(map(str, failures))
