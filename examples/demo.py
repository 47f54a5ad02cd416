"""sklearn-mixed demo: the canonical linear mixed models of lme4 on real data.

Run from the project root (after ``pip install -e ".[tests]"``)::

    python examples/demo.py

Sections:

(a) random intercepts, ``Reaction ~ Days + (1 | Subject)`` on sleepstudy, and how
    to read theta, tau^2, sigma^2 and the 95% ranges;
(b) crossed random intercepts, ``diameter ~ 1 + (1 | plate) + (1 | sample)`` on Penicillin;
(c) nested random intercepts, ``strength ~ 1 + (1 | batch/cask)`` on Pastes;
(d) random intercepts and slopes, ``mAch ~ ses + (1 + ses | school)`` and
    ``(1 | school) + (0 + ses | school)`` on Hsb82;
(e) ``Reaction ~ Days + (Days | Subject)``: prediction intervals for a seen and an
    unseen subject, and 5-fold cross-validation with metadata routing.

Where the lme4 reference results are available (JSON files under
``tests/data/lme4/ref`` and ``tests/data/lme4_extra``), the numbers that lme4 1.1-31
reports are printed next to ours; nothing of lme4's is hardcoded here.
"""

import json
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.metrics import r2_score
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    PredefinedSplit,
    cross_validate,
)

import sklearn_mixed
from sklearn_mixed import (
    LmerRegressor,
    MixedLinearRegressor,
    MixedLogisticRegression,
    PopulationPredictionWarning,
    anova,
    make_group_scorer,
)
from sklearn_mixed.datasets import (
    load_contraception,
    load_dietox,
    load_hsb82,
    load_pastes,
    load_penicillin,
    load_sleepstudy,
)

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIRS = [
    ROOT / "tests" / "data" / "lme4",
    ROOT / "tests" / "data" / "lme4" / "ref",
    ROOT / "tests" / "data" / "lme4_extra",
    ROOT / "tests" / "data" / "lme4_confint",
    ROOT / "tests" / "data" / "lmertest",
]
Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)


def section(title):
    print()
    print("=" * 88)
    print(title)
    print("=" * 88)


def indent(text, prefix="  "):
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def load_reference(ref_id):
    """lme4's results for ``ref_id`` (e.g. ``"sleep_int_reml"``), or None."""
    for directory in REFERENCE_DIRS:
        path = directory / f"{ref_id}.json"
        if path.is_file():
            with path.open(encoding="utf-8") as f:
                return json.load(f)
    return None


def compare_with_lme4(model, ref_id):
    """Print our log-likelihood, sigma and fixed effects next to lme4's."""
    ref = load_reference(ref_id)
    if ref is None:
        print(f"  (lme4 reference {ref_id}.json not found: comparison skipped)")
        return
    ours_fixef = model.fixed_effects_["estimate"]
    fixef_diff = max(abs(ours_fixef[name] - value) for name, value in ref["fixef"].items())
    sigma = np.sqrt(model.residual_variance_)
    crit = "REML log-likelihood" if model.method == "reml" else "log-likelihood"
    print(f"  Comparison with lme4 ({ref['formula']}, REML = {str(ref['reml']).upper()}):")
    print(f"    {'':22}{'sklearn-mixed':>18}{'lme4 1.1-31 reports':>22}{'abs diff':>11}")
    rows = [
        (crit, model.log_likelihood_, ref["loglik"]),
        ("sigma", sigma, ref["sigma"]),
    ]
    for label, ours, theirs in rows:
        print(f"    {label:22}{ours:18.6f}{theirs:22.6f}{abs(ours - theirs):11.1e}")
    print(f"    {'fixed effects':22}{'':18}{'':22}{fixef_diff:11.1e}  (max over coefficients)")


def fit(model, X, y, groups):
    """Fit and report the wall time."""
    start = time.perf_counter()
    model.fit(X, y, groups=groups)
    print(f"  (fitted in {time.perf_counter() - start:.2f} s)")
    return model


# ---------------------------------------------------------------------------------------
def random_intercepts():
    section("(a) Random intercepts: Reaction ~ Days + (1 | Subject)   [sleepstudy]")
    df = load_sleepstudy()
    X, y, subject = df[["Days"]], df["Reaction"], df["Subject"]
    model = fit(MixedLinearRegressor(), X, y, subject)
    print(indent(model.summary()))
    print()
    compare_with_lme4(model, "sleep_int_reml")

    print()
    print("  Reading the fit (the lecture-note notation):")
    print(
        "    y_ij = a + b Days_ij + eta_j + eps_ij,  eta_j ~ N(0, tau^2),  eps_ij ~ N(0, sigma^2)"
    )
    a, b = model.intercept_, model.coef_[0]
    tau2 = model.random_effects_cov_["Subject"][0, 0]
    sigma2 = model.residual_variance_
    tau, sigma = np.sqrt(tau2), np.sqrt(sigma2)
    theta = model.theta_[0]
    ref = load_reference("sleep_int_reml")
    ref_theta = f"   (lme4 1.1-31 reports {ref['theta']:.6f})" if ref else ""
    print(f"    theta = tau / sigma (relative std. dev.)   {theta:10.6f}{ref_theta}")
    print(f"    tau^2   between-subject variance            {tau2:10.2f}   tau   = {tau:.2f} ms")
    print(
        f"    sigma^2 within-subject (residual) variance  {sigma2:10.2f}   sigma = {sigma:.2f} ms"
    )
    print(f"    intraclass correlation tau^2 / (tau^2 + sigma^2) = {tau2 / (tau2 + sigma2):.3f}")
    print(f"    a = {a:.2f} ms (population intercept),  b = {b:.2f} ms per day")
    print()
    print(
        f"    95% of subject intercepts lie in a +- 1.96 tau = {a:.2f} +- {Z95 * tau:.2f}"
        f" = [{a - Z95 * tau:.2f}, {a + Z95 * tau:.2f}] ms"
    )
    j = "308"
    eta = model.random_effects_["Subject"].loc[j, "(Intercept)"]
    lo, hi = a + eta - Z95 * sigma, a + eta + Z95 * sigma
    print(
        f"    Subject {j}: conditional mode eta_j = {eta:+.2f}, intercept a + eta_j = {a + eta:.2f}"
    )
    print(f"    95% of subject {j}'s observations lie in (a + eta_j) +- 1.96 sigma")
    print(
        f"      = {a + eta:.2f} +- {Z95 * sigma:.2f} = [{lo:.2f}, {hi:.2f}] ms at Days = 0,"
        f" shifted by b x Days = {b:.2f} x Days later on."
    )
    inside = np.abs(y - model.predict(X, groups=subject)) <= Z95 * sigma
    print(
        f"    Check: {inside.mean():.1%} of all {len(y)} observations lie within +- 1.96 sigma "
        "of their subject's line."
    )


def crossed():
    section(
        "(b) Crossed random intercepts: diameter ~ 1 + (1 | plate) + (1 | sample)  [Penicillin]"
    )
    df = load_penicillin()
    print('  X = df[[]] (intercept only), groups = df[["plate", "sample"]]')
    model = fit(MixedLinearRegressor(), df[[]], df["diameter"], df[["plate", "sample"]])
    print(indent(model.summary()))
    print()
    compare_with_lme4(model, "penicillin_reml")


def nested():
    section("(c) Nested random intercepts: strength ~ 1 + (1 | batch/cask)  [Pastes]")
    df = load_pastes()
    # lme4 expands (1 | batch/cask) to (1 | batch) + (1 | batch:cask): casks are
    # labelled within their batch, so the second factor is the combined label.
    groups = pd.DataFrame({"batch": df["batch"], "batch:cask": df["batch"] + ":" + df["cask"]})
    print('  groups = batch and the combined label batch:cask (e.g. "A:a"), 10 and 30 levels')
    model = fit(MixedLinearRegressor(), df[[]], df["strength"], groups)
    print(indent(model.summary()))
    print()
    compare_with_lme4(model, "pastes_reml")


def random_slopes():
    section("(d) Random intercepts and slopes: mAch ~ ses + (1 + ses | school)  [Hsb82]")
    df = load_hsb82()
    X, y, school = df[["ses"]], df["mAch"], df["school"]
    print("  Correlated intercept and slope: MixedLinearRegressor(random_slopes=['ses'])")
    corr = fit(MixedLinearRegressor(random_slopes=["ses"]), X, y, school)
    print(indent(corr.summary()))
    print()
    compare_with_lme4(corr, "hsb82_corr_reml")

    print()
    print("  Independent: mAch ~ ses + (1 | school) + (0 + ses | school)")
    print("  MixedLinearRegressor(random_slopes=['ses'], covariance='diagonal')")
    diag = fit(MixedLinearRegressor(random_slopes=["ses"], covariance="diagonal"), X, y, school)
    print(indent(diag.summary()))
    print()
    compare_with_lme4(diag, "hsb82_uncorr_reml")
    # Same fixed effects, nested covariance structures: REML likelihoods are comparable.
    lr = 2 * (corr.log_likelihood_ - diag.log_likelihood_)
    print()
    print(
        f"  REML likelihood ratio, correlated vs independent: {lr:.3f} on 1 df "
        "(the correlation is not needed)"
    )


def prediction_and_cv():
    section("(e) Reaction ~ Days + (Days | Subject): prediction and cross-validation  [sleepstudy]")
    df = load_sleepstudy()
    X, y, subject = df[["Days"]], df["Reaction"], df["Subject"]
    model = fit(MixedLinearRegressor(random_slopes=["Days"]), X, y, subject)
    print(indent(model.summary()))
    print()
    compare_with_lme4(model, "sleep_corr_reml")

    print()
    print("  Prediction with 95% intervals, mean +- 1.96 std from predict(..., return_std=True):")
    print("  subject 308 was seen in fit (its conditional modes are used); 'new' was not")
    print("  (population prediction, with the between-subject variance in the std).")
    new = pd.DataFrame({"Days": [0, 5, 9, 0, 5, 9]})
    who = pd.Series(["308"] * 3 + ["new"] * 3, name="Subject")
    mean, std = model.predict(new, groups=who, return_std=True)
    print(f"    {'Subject':>8}{'Days':>6}{'prediction':>12}{'std':>8}   95% prediction interval")
    for s, d, m, sd in zip(who, new["Days"], mean, std, strict=True):
        print(f"    {s:>8}{d:>6}{m:12.1f}{sd:8.1f}   [{m - Z95 * sd:6.1f}, {m + Z95 * sd:6.1f}]")

    print()
    print("  5-fold cross-validation, groups routed to split, fit and scorer:")
    print("    sklearn.set_config(enable_metadata_routing=True)")
    print("    cross_validate(..., params={'groups': Subject}, scoring={...})")
    print("  'with groups' = make_group_scorer(r2_score): predict(X, groups=groups)")
    print("  'population'  = scoring='r2': scikit-learn's scorers call predict(X) without groups")
    scoring = {"with_groups": make_group_scorer(r2_score), "population": "r2"}
    splitters = {
        "KFold(5, shuffle): subjects seen in fit": KFold(5, shuffle=True, random_state=0),
        "GroupKFold(5): test subjects unseen": GroupKFold(5),
    }
    print()
    print(f"    {'splitter':<40}{'R^2 with groups':>17}{'population':>13}")
    notes = []
    for label, cv in splitters.items():
        with sklearn.config_context(enable_metadata_routing=True):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = cross_validate(
                    MixedLinearRegressor(random_slopes=["Days"]),
                    X,
                    y,
                    cv=cv,
                    scoring=scoring,
                    params={"groups": subject},
                )
        print(
            f"    {label:<40}{res['test_with_groups'].mean():17.3f}"
            f"{res['test_population'].mean():13.3f}"
        )
        # 'population' scoring warns by design (PopulationPredictionWarning); report the rest.
        other = [w for w in caught if not issubclass(w.category, PopulationPredictionWarning)]
        for category in sorted({w.category.__name__ for w in other}):
            count = sum(w.category.__name__ == category for w in other)
            notes.append(f"{label.split(':')[0]}: {count} of 5 fold fits raised {category}")
    print("  With seen subjects the conditional modes carry most of the signal; for unseen")
    print("  subjects both scorers give the population prediction.")
    for note in notes:
        print(f"  note: {note}")


def _profile_reference():
    """lme4's confint(fit, method = "profile") rows, by parameter name, or {}."""
    ref = load_reference("sleepstudy_reml")
    if ref is None:
        return {}
    profile = next(i for i in ref["intervals"] if i["method"] == "profile")
    ends = zip(profile["lower"], profile["upper"], strict=True)
    return dict(zip(profile["names"], ends, strict=True))


def intervals_and_tests():
    section("(f) How sure, and is the slope needed?  Reaction ~ Days + (Days | Subject)")
    df = load_sleepstudy()
    X, y, subject = df[["Days"]], df["Reaction"], df["Subject"]
    model = fit(MixedLinearRegressor(random_slopes=["Days"]), X, y, subject)
    print("  Profile-likelihood 95% intervals, model.confint('profile'), and lme4's:")
    lme4 = _profile_reference()
    for name, (lo, hi) in model.confint("profile").iterrows():
        theirs = "  lme4 [{:9.3f}, {:9.3f}]".format(*lme4[name]) if name in lme4 else ""
        print(f"    {name:<30}[{lo:9.3f}, {hi:9.3f}]{theirs}")
    print()
    print("  Fixed effects with Satterthwaite df, model.fixed_effects_tests(), and lmerTest's:")
    tests = model.fixed_effects_tests()
    ref = load_reference("satterthwaite_sleep_corr_reml")
    for i, (name, row) in enumerate(tests.iterrows()):
        theirs = f"  lmerTest df {ref['df'][i]:.3f}, p {ref['p'][i]:.3g}" if ref else ""
        print(f"    {name:<12} t {row.t_value:7.3f}  df {row.df:7.3f}  p {row.p_value:.3g}{theirs}")
    print()
    print("  Is the random slope needed?  anova(random intercepts, random slopes), ML refits:")
    intercepts = fit(MixedLinearRegressor(), X, y, subject)
    table = anova(intercepts, model, names=["(1 | Subject)", "(Days | Subject)"])
    shown = table.round(4).astype({"Pr(>Chisq)": object})
    shown["Pr(>Chisq)"] = [f"{v:.3g}" for v in table["Pr(>Chisq)"]]
    print(indent(shown.to_string(), "    "))
    ref = load_reference("anova_sleep_random_refit")
    if ref:
        print(f"    lme4: Chisq {ref['rows'][1]['Chisq']:.4f}, p {ref['rows'][1]['p']:.3g}")
    print(textwrap.fill(table.attrs["note"], 84, initial_indent="    ", subsequent_indent="    "))
    print()
    print("  Shrinkage (strength sharing) of three subjects' slopes, model.shrinkage():")
    slopes = model.shrinkage().xs("Days", axis=1, level=1).loc[["308", "335", "370"]]
    print(indent(slopes.round(2).to_string(), "    "))
    icc = model.intraclass_correlation().loc["Subject", "icc"]
    print(f"  Intraclass correlation at Days = 0: {icc:.3f}")


def binary_outcome():
    section("A binary outcome: glmer(use ~ age + I(age^2) + urban + livch + (1 | district))")
    df = load_contraception()
    X = df[["age"]].assign(
        age2=df["age"] ** 2,
        urban=(df["urban"] == "Y").astype(float),
        **{f"livch{k}": (df["livch"] == k).astype(float) for k in ["1", "2", "3+"]},
    )
    model = MixedLogisticRegression().fit(X, df["use"], groups=df["district"])
    sd = np.sqrt(model.random_effects_cov_["district"][0, 0])
    print(f"  logLik {model.log_likelihood_:.3f} (lme4 -1186.364), district sd {sd:.4f} "
          "(lme4 0.4752)")  # fmt: skip
    print(indent(model.fixed_effects_.round(4).to_string(), "  "))
    p = model.predict_proba(X.head(1), groups=["new district"])[0, 1]
    marginal = model.set_params(new_groups="marginal").predict_proba(
        X.head(1), groups=["new district"]
    )[0, 1]
    print(f"  P(use) of the first woman's profile in a new district: {p:.3f} at b = 0, "
          f"{marginal:.3f} averaged over districts")  # fmt: skip


def formulas():
    section("lme4 formulas on raw data: LmerRegressor in GridSearchCV  [dietox pig weights]")
    df = load_dietox()
    model = LmerRegressor("Weight ~ Time + I(Time^2) + (Time | Pig)").fit(df)
    # lmer(Weight ~ Time + I(Time^2) + (Time | Pig), dietox): logLik -2131.2340 (lme4 1.1-31)
    print(f"  {model.formula}: logLik {model.log_likelihood_:.4f} (lme4 -2131.2340)")
    print(indent(model.fixed_effects_.round(4).to_string(), "  "))
    grid = {"formula": ["Weight ~ Time + (Time | Pig)", model.formula,
                        "Weight ~ poly(Time, 3) + (Time | Pig)"]}  # fmt: skip
    later_weeks = PredefinedSplit(np.where(df["Time"] > 8, 0, -1))  # test: weeks 9-12
    search = GridSearchCV(LmerRegressor(model.formula), grid, cv=later_weeks,
                          scoring="neg_root_mean_squared_error")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(df, df["Weight"])
    for formula, score in zip(grid["formula"], search.cv_results_["mean_test_score"], strict=True):
        print(f"  weeks 9-12 forecast RMSE {-score:5.2f} kg  {formula}")
    new = df.head(1).assign(Time=13)
    both = pd.concat([new, new.assign(Pig="a new pig")])
    print(f"  week 13, pig 4601 and a new pig: {search.predict(both).round(1)} kg")


def beyond_memory():
    section("Beyond memory: partial_fit over chunks, fit on Dask collections  [hsb82]")
    df = load_hsb82()
    X, y, school = df[["ses"]], df["mAch"], df["school"]
    model = MixedLinearRegressor(random_slopes=["ses"])
    whole = model.fit(X, y, groups=school).log_likelihood_
    streamed = MixedLinearRegressor(random_slopes=["ses"])
    for rows in np.array_split(np.arange(len(df)), 8):  # chunks sorted by school
        streamed.partial_fit(X.iloc[rows], y.iloc[rows], groups=school.iloc[rows])
    print(f"  fit on all {len(df)} rows: logLik {whole:.6f}; 8 chunks with partial_fit: "
          f"{streamed.log_likelihood_:.6f} ({streamed.n_groups_['school']} schools)")  # fmt: skip
    try:
        import dask.dataframe as dd
    except ImportError:
        print('  (Dask not installed: pip install -e ".[dask]" for the Dask fit)')
        return
    ddf = dd.from_pandas(df, npartitions=6)
    lazy = MixedLinearRegressor(random_slopes=["ses"]).fit(
        ddf[["ses"]], ddf["mAch"], groups=ddf["school"]
    )
    pred = lazy.predict(ddf[["ses"]], groups=ddf["school"])
    first = pred.head(3).round(2).tolist()
    print(f"  Dask DataFrame, 6 partitions: logLik {lazy.log_likelihood_:.6f}; predict is "
          f"lazy ({type(pred).__name__}), first values {first}")  # fmt: skip


def main():
    start = time.perf_counter()
    print(f"sklearn-mixed {sklearn_mixed.__version__} demo (scikit-learn {sklearn.__version__})")
    random_intercepts()
    crossed()
    nested()
    random_slopes()
    prediction_and_cv()
    intervals_and_tests()
    binary_outcome()
    formulas()
    beyond_memory()
    section("Done")
    print(f"  total time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
