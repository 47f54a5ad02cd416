"""
Diagnostic plots of a mixed model: caterpillar, shrinkage, residuals, Q-Q
=========================================================================

After fitting lme4's ``Reaction ~ Days + (Days | Subject)`` to the sleepstudy
data, the displays of :mod:`sklearn_mixed.inspection` answer the usual
questions about a mixed model, in scikit-learn's ``Display`` style (each
``from_estimator`` call computes, draws into ``ax=`` and keeps the numbers
drawn on the display):

- which subjects differ from the population, and how sure are we?
  :class:`~sklearn_mixed.inspection.CaterpillarDisplay`;
- how much does the model pull each subject's own line towards the
  population line? :class:`~sklearn_mixed.inspection.ShrinkageDisplay`;
- are the residuals structureless and normal?
  :class:`~sklearn_mixed.inspection.ResidualsDisplay`;
- are the random effects normal?
  :class:`~sklearn_mixed.inspection.RandomEffectsQQDisplay`.

The figures need matplotlib, an optional dependency:
``pip install "sklearn-mixed[plot]"``.
"""

# %%
# Fit the model
# -------------
import matplotlib.pyplot as plt
import numpy as np

from sklearn_mixed import MixedLinearRegressor
from sklearn_mixed.datasets import load_sleepstudy
from sklearn_mixed.inspection import (
    CaterpillarDisplay,
    RandomEffectsQQDisplay,
    ResidualsDisplay,
    ShrinkageDisplay,
)

df = load_sleepstudy()
X, y, subject = df[["Days"]], df["Reaction"], df["Subject"]
model = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=subject)
print(model.summary())

# %%
# Caterpillar plots
# -----------------
# Each subject's conditional mode (its deviation from the population
# intercept or slope) with a 95% prediction interval, ``mode +- 1.96
# sqrt(Var(b_j | y))``, subjects ordered by their mode: lme4's
# ``dotplot(ranef(fit, condVar = TRUE))``.  Subjects whose interval misses the
# dotted zero line differ from the population.
fig, axes = plt.subplots(1, 2, figsize=(10, 5), sharey=False)
intercepts = CaterpillarDisplay.from_estimator(model, term="(Intercept)", ax=axes[0])
slopes = CaterpillarDisplay.from_estimator(model, term="Days", ax=axes[1])
fig.suptitle("Conditional modes of Subject")
fig.tight_layout()

away = slopes.levels_[(slopes.lower_ > 0) | (slopes.upper_ < 0)]
print(f"subjects whose 95% slope interval excludes the population slope: {sorted(away)}")

# %%
# Shrinkage
# ---------
# Arrows from each subject's no-pooling estimate (least squares on that
# subject's 10 days alone) to its mixed-model (partial-pooling) estimate, in
# the (intercept, slope) plane; the cross is the population (fixed-effect)
# point.  Every subject has the same 10 days, so the model pulls every subject
# by the same linear map towards the cross; the arrows do not point straight
# at it, as intercepts and slopes are shrunk jointly.  Subject 335, the only
# one getting faster on its own, is pulled towards the typical slowing down.
shrinkage = ShrinkageDisplay.from_estimator(model)
shrinkage.ax_.set_title("sleepstudy: no pooling -> partial pooling")
own, mixed = shrinkage.no_pooling_[:, 1], shrinkage.partial_pooling_[:, 1]
flattest = np.argmin(own)
print(
    f"subject {shrinkage.levels_[flattest]}: own slope {own[flattest]:.2f} ms/day, "
    f"mixed-model slope {mixed[flattest]:.2f} (population {shrinkage.population_[1]:.2f})"
)

# %%
# Residuals
# ---------
# The conditional residuals ``y - predict(X, groups)`` against the fitted
# values (lme4's ``plot(fit)``), and their normal Q-Q plot with the line
# through the quartiles (R's ``qqnorm`` and ``qqline``).  A few large
# residuals stand out in both.
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
residuals = ResidualsDisplay.from_estimator(model, X, y, groups=subject, ax=axes[0])
ResidualsDisplay.from_estimator(model, X, y, groups=subject, kind="qq", ax=axes[1])
fig.tight_layout()

sigma = np.sqrt(model.residual_variance_)
n_large = np.sum(np.abs(residuals.residuals_) > 3 * sigma)
print(f"residuals beyond 3 sigma ({3 * sigma:.1f} ms): {n_large}")

# %%
# Normality of the random effects
# -------------------------------
# The conditional modes of the intercept and of the slope against normal
# quantiles.  With 18 subjects the check is rough; no level is far off the
# line.
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, term in zip(axes, ["(Intercept)", "Days"], strict=True):
    RandomEffectsQQDisplay.from_estimator(model, term=term, ax=ax)
fig.tight_layout()
plt.show()
