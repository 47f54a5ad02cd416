"""
Random intercepts and slopes: sleep deprivation and reaction time
=================================================================

The sleepstudy data (R package lme4) follow 18 subjects over 10 days of
restricted sleep.  We fit lme4's canonical model
``Reaction ~ Days + (Days | Subject)``: every subject has their own intercept
and slope, drawn from a bivariate normal distribution around the population
line.

The figure compares, subject by subject, three lines: the *no-pooling* line
(ordinary least squares on that subject alone), the *conditional-mode* line of
the mixed model (fixed effects plus the subject's BLUPs) and the population
line.  The mixed-model lines are shrunk from the no-pooling lines towards the
population line, the more so the less a subject's data say.

The figure needs matplotlib, an optional dependency:
``pip install "sklearn-mixed[plot]"``.
"""

# %%
# Fit the model
# -------------
# ``random_slopes=["Days"]`` gives each subject a random slope on ``Days`` next
# to the random intercept; their covariance is unstructured (correlated), as in
# lme4's ``(Days | Subject)``.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sklearn_mixed import MixedLinearRegressor
from sklearn_mixed.datasets import load_sleepstudy

df = load_sleepstudy()
X, y, subject = df[["Days"]], df["Reaction"], df["Subject"]
model = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=subject)
print(model.summary())

# %%
# Variance components and 95% ranges
# ----------------------------------
# With population intercept ``a`` and slope ``b``, and standard deviations
# ``tau_0``, ``tau_1`` of the subjects' intercepts and slopes around them:
#
# - 95% of subjects' intercepts lie in ``a +- 1.96 tau_0``;
# - 95% of subjects' slopes lie in ``b +- 1.96 tau_1``;
# - 95% of one subject's observations lie within ``+- 1.96 sigma`` of that
#   subject's own line.
print(model.variance_components_)

a, b = model.intercept_, model.coef_[0]
tau = np.sqrt(np.diag(model.random_effects_cov_["Subject"]))
sigma = np.sqrt(model.residual_variance_)
corr = model.random_effects_cov_["Subject"][0, 1] / (tau[0] * tau[1])
print(f"correlation of intercept and slope: {corr:.3f}")
for name, center, sd in [("intercepts", a, tau[0]), ("slopes", b, tau[1])]:
    print(
        f"95% of subject {name} lie in {center:.2f} +- {1.96 * sd:.2f}"
        f" = [{center - 1.96 * sd:.2f}, {center + 1.96 * sd:.2f}]"
    )
print(f"95% of one subject's observations lie within +- {1.96 * sigma:.2f} ms of its line")

# %%
# No pooling versus partial pooling
# ---------------------------------
# One panel per subject, ordered by the subject's conditional-mode slope.
days = np.arange(10)
blups = model.random_effects_["Subject"]
order = (b + blups["Days"]).sort_values().index

fig, axes = plt.subplots(3, 6, figsize=(12, 6.5), sharex=True, sharey=True)
for ax, s in zip(axes.ravel(), order, strict=True):
    rows = df[df["Subject"] == s]
    ols_slope, ols_intercept = np.polyfit(rows["Days"], rows["Reaction"], 1)
    grid = pd.DataFrame({"Days": days})
    conditional = model.predict(grid, groups=np.full(len(days), s))
    ax.plot(rows["Days"], rows["Reaction"], "o", ms=3, color="0.3")
    ax.plot(days, ols_intercept + ols_slope * days, "--", color="tab:orange", label="no pooling")
    ax.plot(days, conditional, "-", color="tab:blue", label="mixed model")
    ax.plot(days, a + b * days, ":", color="0.5", label="population")
    ax.set_title(f"Subject {s}", fontsize=9)
for ax in axes[-1]:
    ax.set_xlabel("Days")
for ax in axes[:, 0]:
    ax.set_ylabel("Reaction (ms)")
axes[0, 0].legend(fontsize=7, loc="upper left")
fig.suptitle("sleepstudy: Reaction ~ Days + (Days | Subject)")
fig.tight_layout()
plt.show()
