"""
Choosing among lme4 formulas with GridSearchCV
==============================================

The dietox data (R package geepack) follow 72 pigs weighed weekly for 12
weeks.  Growth curves differ from pig to pig, and lme4 users would try
formulas such as::

    lmer(Weight ~ Time + (Time | Pig), dietox)
    lmer(Weight ~ Time + I(Time^2) + (Time | Pig), dietox)

:class:`~sklearn_mixed.LmerRegressor` takes such a formula as its parameter
and the raw DataFrame as ``X``: the grouping column ``Pig`` is read from
``X``, so ``GridSearchCV`` can search over formulas with scikit-learn's
defaults (no metadata routing), and the best model predicts on new raw rows.
We compare the formulas for two questions: how well they predict the weights
of *new* pigs (``GroupKFold`` over pigs) and how well they forecast the last
weeks of *known* pigs (train on weeks 1-8, test on weeks 9-12).

The figures need matplotlib, an optional dependency:
``pip install "sklearn-mixed[plot]"``.
"""

# %%
# The candidate formulas
# ----------------------
# ``I(Time^2)`` is R's square of ``Time``; ``poly(Time, 3)`` R's orthogonal
# cubic; ``Time * CuF`` adds the copper dose (a text column) and its
# interaction with time, in R's treatment coding.
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, GroupKFold, PredefinedSplit

from sklearn_mixed import LmerRegressor
from sklearn_mixed.datasets import load_dietox

df = load_dietox()
formulas = [
    "Weight ~ Time + (1 | Pig)",
    "Weight ~ Time + (Time | Pig)",
    "Weight ~ Time + I(Time^2) + (Time | Pig)",
    "Weight ~ poly(Time, 3) + (Time | Pig)",
    "Weight ~ Time * CuF + I(Time^2) + (Time | Pig)",
]
model = LmerRegressor(formulas[2]).fit(df)
print(model.summary())
print(f"logLik {model.log_likelihood_:.4f} (lme4 -2131.2340)")

# %%
# New pigs: GroupKFold over pigs
# -------------------------------
# A pig of the test fold was never seen: its prediction is the population
# curve (lme4's ``allow.new.levels = TRUE``), so only the fixed part matters.
search_new = GridSearchCV(
    LmerRegressor(formulas[0]),
    {"formula": formulas},
    cv=GroupKFold(n_splits=6),
    scoring="neg_root_mean_squared_error",
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # boundary fits of some folds
    search_new.fit(df, df["Weight"], groups=df["Pig"])
rmse_new = -search_new.cv_results_["mean_test_score"]

# %%
# Known pigs, later weeks: a forecast
# -----------------------------------
# Train on weeks 1-8 of every pig, test on weeks 9-12: the conditional modes
# of each pig (its own intercept and slope, shrunk) now help.
later = np.where(df["Time"] > 8, 0, -1)  # fold 0: weeks 9-12; -1: always training
search_later = GridSearchCV(
    LmerRegressor(formulas[0]),
    {"formula": formulas},
    cv=PredefinedSplit(later),
    scoring="neg_root_mean_squared_error",
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    search_later.fit(df, df["Weight"])
rmse_later = -search_later.cv_results_["mean_test_score"]

for formula, new, known in zip(formulas, rmse_new, rmse_later, strict=True):
    print(f"{formula:48s} new pigs RMSE {new:5.2f}  later weeks RMSE {known:5.2f}")
# For new pigs the formulas are close: only their population curves differ.
# For the later weeks of known pigs each pig's own intercept and slope help,
# and the shape of the curve learned on weeks 1-8 decides the extrapolation.
print(f"best for new pigs:    {search_new.best_params_['formula']}")
print(f"best for later weeks: {search_later.best_params_['formula']}")

fig, ax = plt.subplots(figsize=(8, 3.5))
positions = np.arange(len(formulas))
ax.barh(positions - 0.2, rmse_new, height=0.4, label="new pigs (GroupKFold)")
ax.barh(positions + 0.2, rmse_later, height=0.4, label="weeks 9-12 of known pigs")
ax.set_yticks(positions, [f.replace(" ~ ", " ~\n", 0) for f in formulas], fontsize=8)
ax.set_xlabel("cross-validated RMSE (kg)")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Predicting on new raw data
# --------------------------
# The search refits the best formula on all rows; ``predict`` takes raw rows:
# week 13 of a known pig (its own curve) and of a pig never seen (the
# population curve).  The coding learned at fit (``I(Time^2)``, the levels
# of ``CuF``) is applied to them.
new_rows = df[df["Pig"] == "4601"].head(1).assign(Time=13)
new_rows = pd.concat([new_rows, new_rows.assign(Pig="a new pig")])
print(new_rows[["Pig", "Time", "CuF"]].to_string(index=False))
print("predicted weights at week 13:", search_later.predict(new_rows).round(1))

pig = df[df["Pig"] == "4601"]
weeks = pig.head(1).loc[pig.head(1).index.repeat(15)].assign(Time=np.linspace(1, 13, 15))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(pig["Time"], pig["Weight"], "o", label="pig 4601")
ax.plot(weeks["Time"], search_later.predict(weeks), label="its curve (conditional modes)")
best = search_later.best_estimator_  # GridSearchCV.predict takes no other argument
ax.plot(weeks["Time"], best.predict(weeks, random_effects=[]), "--",
        label="population curve")  # fmt: skip
ax.set_xlabel("week")
ax.set_ylabel("weight (kg)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
