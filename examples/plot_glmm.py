"""
A binary outcome with group shrinkage: contraceptive use by district
====================================================================

In the Contraception data (R package mlmRev) 1934 women from 60 districts of
Bangladesh say whether they use contraception.  Districts differ: some have
a few women, some over a hundred.  A logistic model with a random intercept
per district, lme4's::

    glmer(use ~ age + I(age^2) + urban + livch + (1 | district), family = binomial)

shrinks each district's rate toward the population in proportion to how little
it knows about the district.  We fit it with :class:`MixedLogisticRegression`,
read the district effects on the log-odds scale, predict probabilities for a
seen and an unseen district, and compare it with a plain
``LogisticRegression`` in cross-validation, both for women of districts seen
in training and for new districts.

The figures need matplotlib, an optional dependency:
``pip install "sklearn-mixed[plot]"``.
"""

# %%
# Fit the model
# -------------
# The features are R's model-matrix columns; the grouping factor is passed as
# ``groups``, as for the linear models.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GroupKFold, KFold, cross_validate

from sklearn_mixed import CaterpillarDisplay, MixedLogisticRegression, make_group_scorer
from sklearn_mixed.datasets import load_contraception

df = load_contraception()
X = pd.DataFrame(
    {
        "age": df["age"],
        "age2": df["age"] ** 2,
        "urban": (df["urban"] == "Y").astype(float),
        "livch1": (df["livch"] == "1").astype(float),
        "livch2": (df["livch"] == "2").astype(float),
        "livch3+": (df["livch"] == "3+").astype(float),
    }
)
y, district = df["use"], df["district"]
model = MixedLogisticRegression().fit(X, y, groups=district)
print(model.summary())

# %%
# District effects on the log-odds scale
# --------------------------------------
# The caterpillar plot shows each district's conditional mode with a 95%
# interval from its conditional variance: wide for districts with few women,
# whose modes are shrunk hardest toward 0.
sd = np.sqrt(model.random_effects_cov_["district"][0, 0])
print(f"district sd on the log-odds scale: {sd:.3f}")
fig, ax = plt.subplots(figsize=(6, 9))
CaterpillarDisplay.from_estimator(model, ax=ax)
ax.set_title("District random intercepts (log-odds), 95% intervals")
fig.tight_layout()

# %%
# Probabilities for a seen and for an unseen district
# ---------------------------------------------------
# For a district seen in training the model adds its mode.  For a new district
# it predicts with a random intercept of 0 (lme4's ``allow.new.levels``) or,
# with ``new_groups="marginal"``, averages the probability over the district
# distribution ``N(0, sd^2)``: on the logit scale the two differ, and the
# average is what a new district's rate is expected to be.
ages = np.linspace(-14, 20, 50)
grid = pd.DataFrame({"age": ages, "age2": ages**2, "urban": 1.0, "livch1": 0.0,
                     "livch2": 1.0, "livch3+": 0.0})  # fmt: skip
seen = model.random_effects_["district"]["(Intercept)"].idxmax()
marginal = MixedLogisticRegression(new_groups="marginal").fit(X, y, groups=district)
fig, ax = plt.subplots()
for label, estimator, levels in [
    (f"district {seen} (seen)", model, [seen] * len(ages)),
    ("new district, b = 0", model, ["new"] * len(ages)),
    ("new district, marginal", marginal, ["new"] * len(ages)),
]:
    ax.plot(ages, estimator.predict_proba(grid, groups=levels)[:, 1], label=label)
ax.set_xlabel("age (centred)")
ax.set_ylabel("P(use)")
ax.set_title("Urban women with 2 children")
ax.legend()

# %%
# Cross-validation against a plain logistic regression
# ----------------------------------------------------
# Log loss of the predicted probabilities (lower is better).  ``KFold`` over
# women: the test districts were seen in training, and the district effects
# help.  ``GroupKFold`` over districts: every test district is new; the mixed
# model then predicts at the population level (or averaged over districts).
scorer = make_group_scorer(log_loss, greater_is_better=False, response_method="predict_proba")
rows = []
for name, cv in [("seen districts", KFold(5, shuffle=True, random_state=0)),
                 ("new districts", GroupKFold(5))]:  # fmt: skip
    split_groups = district if isinstance(cv, GroupKFold) else None
    plain = cross_validate(LogisticRegression(C=np.inf, max_iter=1000), X, y, cv=cv,
                           groups=split_groups, scoring="neg_log_loss")  # fmt: skip
    scores = {"LogisticRegression": -plain["test_score"].mean()}
    mixed_models = {
        "MixedLogisticRegression": MixedLogisticRegression(),
        "  marginal": MixedLogisticRegression(new_groups="marginal"),
    }
    for label, estimator in mixed_models.items():
        with sklearn.config_context(enable_metadata_routing=True):
            mixed = cross_validate(estimator, X, y, cv=cv, scoring=scorer,
                                   params={"groups": district})  # fmt: skip
        scores[label] = -mixed["test_score"].mean()
    rows.append(pd.Series(scores, name=name))
print(pd.DataFrame(rows).round(4).to_string())
plt.show()
