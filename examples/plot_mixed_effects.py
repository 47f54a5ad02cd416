"""
Random effects around gradient boosting
=======================================

Gradient boosting learns a nonlinear function of the features, but it sees a
grouping factor with hundreds of levels (stores, patients, users) either not
at all or as one more feature to split on, without shrinkage.  A linear mixed
model shrinks the groups properly but cannot learn the nonlinear function.
:class:`~sklearn_mixed.MixedEffectsRegressor` does both: the prediction is
``f(X) + b_group``, with ``f`` any scikit-learn regressor and ``b`` the
groups' random effects, fitted by alternating the two (the EM of MERF,
Hajjem et al. 2014): ``f`` on ``y - b``, then the mixed model of
``y - f(X)``, until the mixed model's log-likelihood stops changing.

We simulate the design of the MERF and GPBoost papers: a nonlinear ``f``
(``2 x1 + x2^2 + 4 1{x3 > 0} + 2 log|x1| x3``), a random intercept and a
random slope on ``x1`` per group, and noise, and compare on new rows of the
training groups and on groups never seen.

The figures need matplotlib, an optional dependency:
``pip install "sklearn-mixed[plot]"``.
"""

# %%
# Simulated data
# --------------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from sklearn_mixed import MixedEffectsRegressor, MixedLinearRegressor

rng = np.random.default_rng(0)
n_groups, per_group = 200, 30
group = np.repeat(np.arange(n_groups), per_group)
X = pd.DataFrame(rng.uniform(-1, 1, size=(group.size, 4)), columns=["x1", "x2", "x3", "x4"])
f = 2 * X.x1 + X.x2**2 + 4 * (X.x3 > 0) + 2 * np.log(np.abs(X.x1)) * X.x3
intercept, slope = rng.normal(0, 1.0, n_groups), rng.normal(0, 0.7, n_groups)
y = f + intercept[group] + slope[group] * X.x1 + rng.normal(0, 1.0, group.size)

# the last 50 groups are never seen in training; of the others, a third of
# the rows are held out
unseen = group >= 150
held_out = ~unseen & (rng.random(group.size) < 1 / 3)
train = ~unseen & ~held_out
print(f"{train.sum()} training rows in 150 groups; "
      f"{held_out.sum()} test rows of seen groups, {unseen.sum()} of 50 unseen groups")  # fmt: skip

# %%
# Three models
# ------------
# ``verbose=1`` prints the mixed model's -2 log-likelihood at each iteration.
models = {
    "HistGradientBoosting": HistGradientBoostingRegressor(random_state=0),
    "MixedLinearRegressor": MixedLinearRegressor(random_slopes=["x1"]),
    # the default estimator: HistGradientBoostingRegressor(early_stopping=True)
    "MixedEffectsRegressor": MixedEffectsRegressor(random_slopes=["x1"], random_state=0, verbose=1),
}
results = {}
for name, model in models.items():
    if name == "HistGradientBoosting":
        model.fit(X[train], y[train])
        predict = model.predict
    else:
        model.fit(X[train], y[train], groups=group[train])

        def predict(rows, model=model):
            return model.predict(rows, groups=group[rows.index])

    results[name] = [
        np.sqrt(np.mean((y[mask] - predict(X[mask])) ** 2)) for mask in (held_out, unseen)
    ]
table = pd.DataFrame(results, index=["RMSE, seen groups", "RMSE, unseen groups"]).T
print(table.round(3).to_string())

# %%
# What the mixed part learned
# ---------------------------
# The random-effect covariance estimated around the boosted ``f`` is close to
# the simulated one (intercept sd 1, slope sd 0.7, no correlation).
mer = models["MixedEffectsRegressor"]
cov = mer.random_effects_cov_["group"]
print(f"intercept sd {np.sqrt(cov[0, 0]):.2f}, slope sd {np.sqrt(cov[1, 1]):.2f}, "
      f"residual sd {np.sqrt(mer.residual_variance_):.2f}; {mer.n_iter_} iterations")  # fmt: skip

fig, (ax_history, ax_blup) = plt.subplots(1, 2, figsize=(10, 4))
ax_history.plot(np.arange(1, mer.n_iter_ + 1), mer.objective_, marker="o")
ax_history.set(xlabel="iteration", ylabel="-2 log-likelihood of y - f(X)",
               title="The EM's history (objective_)")  # fmt: skip
modes = mer.random_effects_["group"]
seen_ids = modes.index.astype(int)
ax_blup.scatter(intercept[seen_ids], modes.iloc[:, 0], s=10, label="intercept")
ax_blup.scatter(slope[seen_ids], modes.iloc[:, 1], s=10, label="slope on x1")
ax_blup.axline((0, 0), slope=1, color="grey", lw=0.8)
ax_blup.set(xlabel="simulated effect", ylabel="conditional mode (BLUP)",
            title="Group effects around boosting")  # fmt: skip
ax_blup.legend()
fig.tight_layout()
plt.show()
