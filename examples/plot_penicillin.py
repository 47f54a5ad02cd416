"""
Crossed random effects: penicillin plates and samples
=====================================================

In the Penicillin data (R package lme4) each of 6 penicillin samples was
tested on each of 24 assay plates: ``plate`` and ``sample`` are *crossed*
grouping factors.  We fit lme4's ``diameter ~ 1 + (1 | plate) + (1 | sample)``,
a random intercept for each factor and no other fixed effect than the
intercept.

The figure is a dot plot of the conditional modes (BLUPs) of both factors with
95% intervals (+- 1.96 conditional standard deviations), the picture of
``lattice::dotplot(ranef(fit, condVar = TRUE))`` in R.

The figure needs matplotlib, an optional dependency:
``pip install "sklearn-mixed[plot]"``.
"""

# %%
# Fit the model
# -------------
# An intercept-only model has a feature matrix with no columns: ``df[[]]``.
# Crossed factors are simply two columns of ``groups``.
import matplotlib.pyplot as plt
import numpy as np

from sklearn_mixed import MixedLinearRegressor
from sklearn_mixed.datasets import load_penicillin

df = load_penicillin()
model = MixedLinearRegressor().fit(df[[]], df["diameter"], groups=df[["plate", "sample"]])
print(model.summary())

# %%
# Variance components and 95% ranges
# ----------------------------------
# The population mean diameter ``a`` is the intercept.  95% of plates shift
# the diameter by less than ``1.96 tau_plate``; 95% of samples by less than
# ``1.96 tau_sample``; 95% of the measurements of one plate-sample combination
# lie within ``+- 1.96 sigma`` of its mean ``a + eta_plate + eta_sample``.
print(model.variance_components_)

a = model.intercept_
total = model.variance_components_["variance"].sum()
for factor in model.group_names_:
    tau = np.sqrt(model.random_effects_cov_[factor][0, 0])
    share = tau**2 / total
    print(
        f"{factor:>6}: tau = {tau:.3f} ({share:.0%} of the variance); 95% of {factor} means"
        f" lie in {a:.2f} +- {1.96 * tau:.2f} = [{a - 1.96 * tau:.2f}, {a + 1.96 * tau:.2f}] mm"
    )
sigma = np.sqrt(model.residual_variance_)
print(f"95% of the measurements of one plate and sample lie within +- {1.96 * sigma:.2f} mm")

# %%
# Conditional modes with 95% intervals
# ------------------------------------
# ``random_effects_`` holds the conditional modes, one row per level, and
# ``random_effects_conditional_cov_`` their conditional covariances
# ``Var(b_j | y)`` (lme4's ``condVar``).  The shaded band is the 95% range
# ``+- 1.96 tau`` of the population of plates (or samples).
fig, axes = plt.subplots(
    1, 2, figsize=(10, 6), gridspec_kw={"width_ratios": [1, 1]}, constrained_layout=True
)
for ax, factor in zip(axes, ["plate", "sample"], strict=True):
    modes = model.random_effects_[factor]["(Intercept)"]
    cond_sd = np.sqrt(model.random_effects_conditional_cov_[factor][:, 0, 0])
    order = np.argsort(modes.to_numpy())
    pos = np.arange(len(order))
    tau = np.sqrt(model.random_effects_cov_[factor][0, 0])
    ax.axvspan(-1.96 * tau, 1.96 * tau, color="0.92", label="95% range of the population")
    ax.axvline(0.0, color="0.5", lw=0.8)
    ax.errorbar(
        modes.to_numpy()[order],
        pos,
        xerr=1.96 * cond_sd[order],
        fmt="o",
        ms=4,
        capsize=2,
        label="conditional mode +- 1.96 cond. sd",
    )
    ax.set_yticks(pos, modes.index[order])
    ax.set_xlabel("random intercept (mm)")
    ax.set_title(f"{factor} ({len(order)} levels)")
axes[0].legend(fontsize=8, loc="lower right")
fig.suptitle("Penicillin: diameter ~ 1 + (1 | plate) + (1 | sample)")
plt.show()
