"""
How sure are we? Intervals, tests and model comparison
======================================================

A fit gives estimates; reading it also needs their uncertainty.  On lme4's
``Reaction ~ Days + (Days | Subject)`` (sleepstudy) this example computes

* confidence intervals of every parameter three ways: Wald (fixed effects
  only), profile likelihood (as lme4's ``confint(fit)``) and the parametric
  bootstrap (as lme4's ``confint(fit, method = "boot")``);
* t-tests of the fixed effects with Satterthwaite's degrees of freedom (as
  lmerTest's ``summary``);
* a likelihood-ratio test of the random slope (as lme4's ``anova``).

The figure needs matplotlib, an optional dependency:
``pip install "sklearn-mixed[plot]"``.
"""

# %%
# Fit the model
# -------------
import matplotlib.pyplot as plt
import numpy as np

from sklearn_mixed import MixedLinearRegressor, anova
from sklearn_mixed.datasets import load_sleepstudy

df = load_sleepstudy()
X, y, subject = df[["Days"]], df["Reaction"], df["Subject"]
model = MixedLinearRegressor(random_slopes=["Days"]).fit(X, y, groups=subject)

# %%
# Three kinds of 95% intervals
# ----------------------------
# Wald intervals ``beta +- 1.96 SE`` exist only for the fixed effects.  The
# profile intervals follow the likelihood, so those of standard deviations are
# asymmetric (a variance cannot go below 0); the bootstrap simulates new data
# from the fit and refits, here 200 times.
wald = model.confint("wald")
profile = model.confint("profile")
boot = model.confint("bootstrap", n_boot=200, random_state=0)
print("profile 95% intervals (lme4: the same to 1e-4)")
print(profile.round(3).to_string())

# %%
# The intervals side by side, each parameter on its own scale.
fig, axes = plt.subplots(1, len(profile), figsize=(12, 3.2))
for ax, name in zip(axes, profile.index, strict=True):
    for row, table in enumerate((wald, profile, boot)):
        lo, hi = table.loc[name]
        if np.isfinite(lo):
            ax.plot([lo, hi], [row, row], color=f"C{row}", marker="|", markersize=10, linewidth=3)
    ax.set_yticks(range(3), ["Wald", "profile", "boot"])
    ax.set_ylim(-0.7, 2.7)
    ax.set_title(name, fontsize=8)
    ax.tick_params(labelsize=7)
fig.suptitle("95% confidence intervals (Wald: fixed effects only)")
fig.tight_layout()

# %%
# Fixed effects: t-tests with Satterthwaite's degrees of freedom
# --------------------------------------------------------------
# With 18 subjects the slope's test has about 17 degrees of freedom, not the
# 178 of a regression that ignores the grouping.
tests = model.fixed_effects_tests()
print(tests[["estimate", "std_error", "df", "t_value"]].round(4).to_string())
print(f"Days: df {tests.loc['Days', 'df']:.2f}, p {tests.loc['Days', 'p_value']:.3g}")

# %%
# Is the random slope needed?
# ---------------------------
# The models differ in their random effects; ``anova`` refits both by maximum
# likelihood (as lme4 does) and compares them with a chi-square test, which is
# conservative here because the slope variance 0 lies on the boundary.
intercepts = MixedLinearRegressor().fit(X, y, groups=subject)
table = anova(intercepts, model, names=["(1 | Subject)", "(Days | Subject)"])
print(table[["npar", "AIC", "BIC", "logLik", "Chisq", "Df"]].round(2).to_string())
print(
    f"likelihood ratio {table['Chisq'].iloc[1]:.2f} on 2 df, p = {table['Pr(>Chisq)'].iloc[1]:.2g}"
)
plt.show()
