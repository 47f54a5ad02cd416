"""
School intercepts and slopes: math achievement and social status
================================================================

The High School and Beyond data (``Hsb82``, R package mlmRev) record the
mathematics achievement ``mAch`` and socio-economic status ``ses`` of 7185
students in 160 schools.  We fit ``mAch ~ ses + (1 + ses | school)``: each
school has its own intercept and its own ``ses`` slope, correlated.

The figure shows every school's pair (intercept, slope): estimated by ordinary
least squares on that school alone (no pooling, grey) and by the mixed model
(fixed effects plus the school's conditional modes, coloured by sector),
together with the 95% ellipse of the fitted distribution of school
coefficients.

The figure needs matplotlib, an optional dependency:
``pip install "sklearn-mixed[plot]"``.
"""

# %%
# Fit the model
# -------------
import matplotlib.pyplot as plt
import numpy as np

from sklearn_mixed import MixedLinearRegressor
from sklearn_mixed.datasets import load_hsb82

df = load_hsb82()
model = MixedLinearRegressor(random_slopes=["ses"]).fit(
    df[["ses"]], df["mAch"], groups=df["school"]
)
print(model.summary())

# %%
# Variance components and 95% ranges
# ----------------------------------
# 95% of schools' intercepts (mean achievement at ``ses = 0``) lie in
# ``a +- 1.96 tau_0``, 95% of their ``ses`` slopes in ``b +- 1.96 tau_1``, and
# 95% of the students of one school lie within ``+- 1.96 sigma`` of that
# school's line.
print(model.variance_components_)

a, b = model.intercept_, model.coef_[0]
cov = model.random_effects_cov_["school"]
tau = np.sqrt(np.diag(cov))
sigma = np.sqrt(model.residual_variance_)
for name, center, sd in [("intercepts", a, tau[0]), ("ses slopes", b, tau[1])]:
    print(
        f"95% of school {name} lie in {center:.2f} +- {1.96 * sd:.2f}"
        f" = [{center - 1.96 * sd:.2f}, {center + 1.96 * sd:.2f}]"
    )
print(f"correlation of school intercepts and slopes: {cov[0, 1] / (tau[0] * tau[1]):.2f}")
print(f"95% of one school's students lie within +- {1.96 * sigma:.2f} of its line")

# %%
# School coefficients: no pooling versus the mixed model
# ------------------------------------------------------
# The mixed-model coefficients are shrunk towards the population values
# ``(a, b)``, strongly for the ``ses`` slopes, which a school of 14 to 67
# students estimates poorly on its own.
blups = model.random_effects_["school"]
coef = blups + np.array([a, b])  # school intercept a + eta_0j, slope b + eta_1j
sector = df.groupby("school")["sector"].first().reindex(coef.index)
# (intercept, slope) of each school's own least-squares line
ols = np.array([np.polyfit(g["ses"], g["mAch"], 1)[::-1] for _, g in df.groupby("school")])

# 95% ellipse of N((a, b), cov): chi-square quantile with 2 df is 5.991
angle = np.linspace(0, 2 * np.pi, 200)
circle = np.stack([np.cos(angle), np.sin(angle)])
ellipse = np.linalg.cholesky(cov) @ circle * np.sqrt(5.991) + np.array([[a], [b]])

fig, ax = plt.subplots(figsize=(7, 6))
ax.scatter(ols[:, 0], ols[:, 1], s=10, color="0.75", label="no pooling (OLS per school)")
for name, color in [("Public", "tab:blue"), ("Catholic", "tab:red")]:
    mask = (sector == name).to_numpy()
    ax.scatter(
        coef["(Intercept)"][mask],
        coef["ses"][mask],
        s=14,
        color=color,
        label=f"mixed model, {name}",
    )
ax.plot(ellipse[0], ellipse[1], color="k", lw=1, label="95% of schools (fitted)")
ax.plot([a], [b], "k+", ms=12, mew=2, label="population (a, b)")
ax.set_xlabel("school intercept (mAch at ses = 0)")
ax.set_ylabel("school ses slope")
ax.set_title("Hsb82: mAch ~ ses + (1 + ses | school)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
