"""
High-cardinality categories for gradient boosting: mixed-model encodings
=========================================================================

In lme4's InstEval data, 2972 students rate lectures of 1128 instructors
(1 to 5, 73421 ratings).  Who rates and who is rated explain much of the
rating, but as categories they have too many levels for one-hot encoding or
for gradient boosting's native categorical support.  A target encoding
replaces each level by a number learned from the target: scikit-learn's
``TargetEncoder`` shrinks each column's level means one column at a time;
:class:`~sklearn_mixed.MixedEffectsEncoder` fits one mixed model of the
rating on all the columns jointly (``y ~ 1 + (1 | s) + (1 | d) + (1 | dept)``,
crossed random intercepts) and encodes each level by its conditional mode,
the level's effect shrunk by how much the data say about it.

Both cross-fit in ``fit_transform`` so that the downstream model does not
learn from a row's own target.  We compare them in front of the same
``HistGradientBoostingRegressor``, on held-out ratings of students seen in
training and on ratings by students never seen.

The figures need matplotlib, an optional dependency:
``pip install "sklearn-mixed[plot]"``.
"""

# %%
# The data and the two pipelines
# -------------------------------
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import TargetEncoder

from sklearn_mixed import MixedEffectsEncoder
from sklearn_mixed.datasets import load_insteval

df = load_insteval()
categories = ["s", "d", "dept"]
numeric = ["studage", "lectage", "service"]
X, y = df[categories + numeric], df["y"].astype(float)
print(f"{len(df)} ratings; levels: " + ", ".join(f"{c} {df[c].nunique()}" for c in categories))


def pipeline(encoder):
    encode = ColumnTransformer([("groups", encoder, categories)], remainder="passthrough")
    return make_pipeline(encode, HistGradientBoostingRegressor(random_state=0))


encoders = {
    "MixedEffectsEncoder": MixedEffectsEncoder(target_type="continuous", random_state=0),
    "TargetEncoder": TargetEncoder(target_type="continuous", random_state=0),
}

# %%
# Seen and unseen students
# ------------------------
# One split of the ratings at random (the test students were seen in
# training), one split by student (the test students are new: their encoding
# is the population value, and only the instructors' encodings help).
splits = {
    "seen students": next(ShuffleSplit(1, test_size=0.2, random_state=0).split(X)),
    "unseen students": next(
        GroupShuffleSplit(1, test_size=0.2, random_state=0).split(X, groups=df["s"])
    ),
}
rmse = {}
for split, (train, test) in splits.items():
    baseline = np.sqrt(np.mean((y.iloc[test] - y.iloc[train].mean()) ** 2))
    print(f"{split}: predicting the mean gives RMSE {baseline:.4f}")
    for name, encoder in encoders.items():
        start = time.perf_counter()
        model = pipeline(encoder).fit(X.iloc[train], y.iloc[train])
        error = y.iloc[test] - model.predict(X.iloc[test])
        rmse[split, name] = np.sqrt(np.mean(error**2))
        seconds = time.perf_counter() - start
        print(f"  {name:20s} RMSE {rmse[split, name]:.4f}  ({seconds:.1f} s)")

# %%
# The encodings side by side
# --------------------------
# Each instructor's encoding by both encoders, against the number of ratings.
# TargetEncoder shrinks each instructor's mean rating towards the overall
# mean; the mixed model also takes out the students' effects (a lecturer
# rated by harsh students is not a poor lecturer), so the two disagree most
# for instructors with few ratings.
mixed = MixedEffectsEncoder(target_type="continuous", return_counts=True).fit(X[categories], y)
target = TargetEncoder(target_type="continuous").fit(X[categories], y)
names = list(mixed.get_feature_names_out())
first = df.drop_duplicates("d")
encoded = mixed.transform(first[categories])
mode, count = encoded[:, names.index("d_mode")], encoded[:, names.index("d_count")]
target_value = target.transform(first[categories])[:, 1] - y.mean()

fig, (ax_scatter, ax_bar) = plt.subplots(1, 2, figsize=(11, 4.2))
points = ax_scatter.scatter(target_value, mode, c=np.log10(count), s=8, cmap="viridis")
ax_scatter.axline((0, 0), slope=1, color="grey", lw=0.8)
ax_scatter.set(
    xlabel="TargetEncoder: shrunk mean rating - overall mean",
    ylabel="MixedEffectsEncoder: conditional mode",
    title="Instructors",
)
fig.colorbar(points, ax=ax_scatter, label="log10(ratings)")
positions = np.arange(len(splits))
for k, name in enumerate(encoders):
    values = [rmse[split, name] for split in splits]
    ax_bar.bar(positions + 0.4 * k, values, width=0.4, label=name)
ax_bar.set_xticks(positions + 0.2, list(splits))
low = min(rmse.values())
ax_bar.set(ylim=(0.98 * low, 1.01 * max(rmse.values())), ylabel="test RMSE")
ax_bar.legend()
ax_bar.set_title("HistGradientBoosting after each encoder")
fig.tight_layout()
plt.show()

# %%
# The mixed model behind the encoder is an ordinary fitted estimator: its
# variance components say how much students, instructors and departments
# each vary.
print(mixed.model_.variance_shares_.round(3).to_string())
