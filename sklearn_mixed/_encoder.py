"""MixedEffectsEncoder: grouping columns encoded by the conditional modes of their levels."""

import warnings
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.model_selection import KFold, StratifiedKFold, check_cv
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_array,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._crossed import CrossedEffectsRegressor
from ._mixed_glm import MixedLogisticRegression
from .exceptions import SingularFitWarning

__all__ = ["MixedEffectsEncoder"]


def _has_inf(column):
    """Whether a column of labels holds an infinite float."""
    if column.dtype.kind == "f":
        return bool(np.isinf(column.to_numpy()).any())
    if column.dtype.kind == "O":
        return bool(column.map(lambda v: isinstance(v, float) and np.isinf(v)).any())
    return False


def _column_encoding(counts, model, name):
    """Column ``name``'s :class:`_Encoding` from a fitted model (None: the
    column is not in it, encoded 0) and its levels' training ``counts``."""
    if model is None:
        empty = np.zeros(0)
        return _Encoding(pd.Index([]), empty, empty, empty, 0.0)
    modes = model.random_effects_[name].iloc[:, 0]
    sd = np.sqrt(model.random_effects_conditional_cov_[name][:, 0, 0])
    count = counts.reindex(modes.index).to_numpy(dtype=float)
    prior_sd = float(np.sqrt(model.random_effects_cov_[name][0, 0]))
    return _Encoding(modes.index, modes.to_numpy(), sd, count, prior_sd)


@dataclass(frozen=True)
class _Encoding:
    """One column's encoding: per level its mode, conditional sd and count."""

    levels: pd.Index
    mode: np.ndarray
    sd: np.ndarray
    count: np.ndarray
    prior_sd: float  # sd of an unseen level's effect (0 when the column is left out)

    def encode(self, labels, what):
        """``what`` ("mode", "sd", "count") of each label; unseen levels get the
        population value (mode 0, the prior sd, count 0)."""
        position = self.levels.get_indexer(pd.Index(labels))
        seen = position >= 0
        unseen = {"mode": 0.0, "sd": self.prior_sd, "count": 0.0}[what]
        values = getattr(self, what)
        return np.where(seen, values[np.maximum(position, 0)] if values.size else 0.0, unseen)


class MixedEffectsEncoder(TransformerMixin, BaseEstimator):
    """Encode grouping columns by their levels' conditional modes (BLUPs).

    A mixed model of the target on the columns of ``X`` as crossed random
    intercepts (lme4's ``y ~ 1 + (1 | x0) + (1 | x1) + ...``: REML for a
    continuous target, the logistic GLMM for a binary one, one logistic GLMM
    per class for a multiclass one, one-vs-rest) shrinks each
    level's mean towards the population by how much the data say about it:
    rare levels get small encodings, frequent ones close to their own mean,
    on the scale of the linear predictor.  Unlike one target encoding per
    column (scikit-learn's ``TargetEncoder``), the columns are fitted jointly,
    so crossed or nested columns are not counted twice.  Unseen levels are
    encoded 0: the population value.

    ``fit_transform`` cross-fits (as ``TargetEncoder``): the rows of each of
    ``cv`` folds are encoded by a model fitted on the other folds, so that a
    downstream model does not learn from the target leaking through its own
    row's encoding.  ``fit`` then ``transform`` (and ``transform`` after
    ``fit_transform``) use the model fitted on all rows.

    Parameters
    ----------
    target_type : {"auto", "continuous", "binary", "multiclass"}, default="auto"
        ``"auto"`` reads ``y`` as ``TargetEncoder`` does
        (``type_of_target``): two values are binary, more integers or
        strings multiclass, floats continuous.  An integer rating scale
        meant as a number needs ``"continuous"``.
    cv : int or cross-validation generator, default=5
        Folds of ``fit_transform``'s cross-fitting (``KFold``, or
        ``StratifiedKFold`` for a binary or multiclass target).
    shuffle : bool, default=True
        Whether to shuffle the rows before the folds of an integer ``cv``
        (a splitter passed as ``cv`` is used as it is).
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffle of an integer ``cv``.
    method : {"reml", "ml"}, default="reml"
        Criterion of the linear mixed model (continuous target).
    return_std : bool, default=False
        Also return each row's conditional standard deviation of its level's
        effect (the prior standard deviation for unseen levels): how sure
        the encoding is.
    return_counts : bool, default=False
        Also return the number of training rows of each row's level.

        These two help a downstream model tell confident encodings from
        guesses among *seen* levels.  Its training rows (cross-fitted) almost
        never show what an unseen level gets (count 0, the prior sd), so a
        tree ensemble extrapolates there: on InstEval's unseen students they
        raised the test RMSE from 1.230 to 1.361 (benchmarks/bench_encoder.py).
        Leave them off when the test levels may be new.

    Attributes
    ----------
    target_type_ : str
        ``"continuous"``, ``"binary"`` or ``"multiclass"``.
    classes_ : ndarray of shape (n_classes,)
        The values of a binary (the second is the event) or multiclass target.
    encoded_features_ : list of str
        The columns that have random effects in the model; the others (one
        level, or as many levels as rows: nothing to shrink towards) are
        encoded 0.
    model_ : CrossedEffectsRegressor, MixedLogisticRegression or list
        The model fitted on all rows (None when no column is encoded); for a
        multiclass target a list of one model per class.
    n_iter_ : int
        Iterations of the optimizer of ``model_`` (the most of the
        per-class models; 0 when no column is encoded).
    intercept_ : float or ndarray of shape (n_classes,)
        The population value of the target (the fixed intercept, on the
        linear predictor's scale), per class for a multiclass target.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)

    See Also
    --------
    sklearn.preprocessing.TargetEncoder : One column at a time, empirical Bayes.
    CrossedEffectsRegressor : The model behind a continuous target.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn_mixed import MixedEffectsEncoder
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"store": rng.integers(0, 30, 600).astype(str)})
    >>> y = rng.normal(size=30)[X["store"].astype(int)] + rng.normal(size=600)
    >>> encoder = MixedEffectsEncoder(random_state=0)
    >>> Xt = encoder.fit_transform(X, y)  # cross-fitted, for training a model
    >>> Xt.shape, encoder.get_feature_names_out().tolist()
    ((600, 1), ['store_mode'])
    >>> encoder.transform(pd.DataFrame({"store": ["3", "unseen"]})).round(2)[:, 0]
    array([-1.71,  0.  ])
    """

    _parameter_constraints: dict = {
        "target_type": [StrOptions({"auto", "continuous", "binary", "multiclass"})],
        "cv": ["cv_object"],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "method": [StrOptions({"reml", "ml"})],
        "return_std": ["boolean"],
        "return_counts": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, target_type="auto", cv=5, shuffle=True, random_state=None,
                 method="reml", return_std=False, return_counts=False, max_iter=500):  # fmt: skip
        self.target_type = target_type
        self.cv = cv
        self.shuffle = shuffle
        self.random_state = random_state
        self.method = method
        self.return_std = return_std
        self.return_counts = return_counts
        self.max_iter = max_iter

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the mixed model on all rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The grouping columns (labels of any type, no missing values).
        y : array-like of shape (n_samples,)
            The target.

        Returns
        -------
        self : object
        """
        labels, targets = self._validate(X, y)
        self._encodings = self._fit_encodings(labels, targets, keep_model=True)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y):
        """Fit on all rows; encode each row by a model fitted without its fold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_features_out)
            Cross-fitted encodings (see ``get_feature_names_out``).
        """
        labels, targets = self._validate(X, y)
        self._encodings = self._fit_encodings(labels, targets, keep_model=True)
        # the folds: stratified by class for a binary or multiclass target
        strata = targets @ np.arange(targets.shape[1]) if targets.shape[1] > 1 else targets[:, 0]
        splitter = self._splitter(strata)
        columns = self._fold_columns(list(labels.columns))
        out = np.empty((targets.shape[0], self._n_outputs()))
        tested = np.zeros(targets.shape[0], dtype=int)
        for train, test in splitter.split(labels, strata):
            tested[test] += 1
            encodings = self._fit_encodings(
                labels.iloc[train], targets[train], keep_model=False, columns=columns
            )
            out[test] = self._encode(labels.iloc[test], encodings)
        if np.any(tested != 1):
            raise ValueError(
                f"cv must put every row in exactly one test fold (a partition such as KFold); "
                f"{int(np.sum(tested == 0))} rows are in no test fold and "
                f"{int(np.sum(tested > 1))} in several"
            )
        return out

    def _splitter(self, strata):
        """The folds: an integer ``cv`` becomes ``KFold`` (``StratifiedKFold``
        for classes) with ``shuffle`` and ``random_state``; a splitter or an
        iterable is used as given (not modified)."""
        classifier = self.target_type_ != "continuous"
        if isinstance(self.cv, Integral):
            kind = StratifiedKFold if classifier else KFold
            seed = self.random_state if self.shuffle else None
            return kind(self.cv, shuffle=self.shuffle, random_state=seed)
        return check_cv(self.cv, strata, classifier=classifier)

    def transform(self, X):
        """Encode with the model fitted on all rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_features_out)
        """
        check_is_fitted(self)
        return self._encode(self._labels(X, reset=False), self._encodings)

    def get_feature_names_out(self, input_features=None):
        """Per column ``<column>_mode`` (``<column>_<class>_mode`` per class of a
        multiclass target), then ``_sd`` likewise and ``<column>_count``, if asked.

        Parameters
        ----------
        input_features : array-like of str, default=None

        Returns
        -------
        feature_names_out : ndarray of str
        """
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        out = []
        for name in names:
            for prefix in self._target_prefixes(name):
                out += [f"{prefix}_mode"] + [f"{prefix}_sd"] * self.return_std
            out += [f"{name}_count"] * self.return_counts
        return np.asarray(out, dtype=object)

    # -------------------------------------------------------------- internals
    def _target_prefixes(self, name):
        if self.target_type_ == "multiclass":
            return [f"{name}_{c}" for c in self.classes_]
        return [name]

    def _validate(self, X, y):
        """The labels, and the targets as columns: one (continuous, binary 0/1)
        or one indicator per class (multiclass, one-vs-rest)."""
        labels = self._labels(X, reset=True)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        if labels.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples to fit a mixed model, "
                f"got n_samples = {labels.shape[0]}"
            )
        y = column_or_1d(check_array(y, ensure_2d=False, dtype=None, input_name="y"), warn=True)
        if y.shape[0] != labels.shape[0]:
            raise ValueError(f"X has {labels.shape[0]} rows and y {y.shape[0]}")
        self.target_type_ = kind = self._target_type(y)
        self.__dict__.pop("classes_", None)  # from an earlier fit on a categorical target
        if kind == "continuous":
            return labels, np.asarray(y, dtype=float)[:, None]
        self.classes_, codes = np.unique(y, return_inverse=True)
        if kind == "binary" and self.classes_.size != 2:
            raise ValueError(
                f"target_type='binary' needs 2 classes, got {self.classes_.size} "
                f"class(es): {self.classes_}"
            )
        if kind == "multiclass" and self.classes_.size < 3:
            raise ValueError(
                f"target_type='multiclass' needs at least 3 classes, got {self.classes_}"
            )
        if kind == "binary":
            return labels, codes[:, None].astype(float)
        return labels, (codes[:, None] == np.arange(self.classes_.size)).astype(float)

    def _target_type(self, y):
        kind = type_of_target(y, input_name="y")
        if self.target_type != "auto":
            if self.target_type == "continuous" and y.dtype.kind not in "fiub":
                raise ValueError(f"target_type='continuous' needs a numeric y, got {y.dtype}")
            return self.target_type
        if kind in ("binary", "multiclass"):
            return kind
        if kind == "continuous":
            return kind
        raise ValueError(
            f"Unknown label type: y must be a continuous, binary or multiclass target, got "
            f"a {kind} target"
        )

    def _labels(self, X, reset):
        """The grouping columns as a DataFrame named by the feature names."""
        X = validate_data(self, X, reset=reset, dtype=None, ensure_all_finite=False)
        names = (
            [str(c) for c in self.feature_names_in_]
            if hasattr(self, "feature_names_in_")
            else [f"x{i}" for i in range(X.shape[1])]
        )
        frame = pd.DataFrame(X, columns=names)
        infinite = [c for c in names if _has_inf(frame[c])]
        if infinite:
            raise ValueError(
                f"columns {infinite!r} have infinite labels (inf); "
                "a level must be a finite number or another label"
            )
        missing = frame.isna().any()
        if missing.any():
            raise ValueError(
                f"columns {list(missing[missing].index)!r} have missing labels (NaN or None); "
                "give them a level (for example 'missing') before encoding"
            )
        return frame

    def _model(self):
        if self.target_type_ == "continuous":
            return CrossedEffectsRegressor(method=self.method, max_iter=self.max_iter)
        return MixedLogisticRegression(max_iter=self.max_iter)

    def _fit_encodings(self, labels, targets, keep_model, columns=None):
        """Per target column, each column's :class:`_Encoding` from a model fitted
        on these rows; ``columns[k]``: the columns the model of target ``k`` may
        use (None: all with levels to shrink)."""
        n = labels.shape[0]
        levels = labels.nunique()
        eligible = [c for c in labels.columns if 2 <= levels[c] < n]
        counts = {c: labels[c].value_counts() for c in eligible}  # shared by every target
        models, encodings = [], []
        for k in range(targets.shape[1]):
            used = eligible if columns is None else [c for c in eligible if c in columns[k]]
            model = None
            if used:
                model = self._model()
                with warnings.catch_warnings():
                    # a column without variance (a zero estimate) is encoded 0: expected
                    warnings.simplefilter("ignore", SingularFitWarning)
                    model.fit(np.empty((n, 0)), targets[:, k], groups=labels[used])
            models.append(model)
            encodings.append([_column_encoding(counts.get(c), model if c in used else None, c)
                              for c in labels.columns])  # fmt: skip
        if keep_model:
            self._keep(models, eligible, targets)
        return encodings

    def _fold_columns(self, names):
        """Per target, the columns with a nonzero variance in the fit on all rows.

        A column whose variance is estimated 0 is encoded 0 by ``transform``;
        the folds leave it out too, so that ``fit_transform`` encodes it the
        same way, and a GLMM does not pay for a variance at its bound (where
        its gradient falls back to finite differences) in every fold.
        """
        return [
            {name for name, e in zip(names, per_target, strict=True) if e.prior_sd > 0}
            for per_target in self._encodings
        ]

    def _keep(self, models, used, targets):
        """The fitted attributes of the models fitted on all rows."""
        self.encoded_features_ = used
        self.n_iter_ = max(0 if m is None else int(m.n_iter_) for m in models)
        intercepts = np.array([0.0 if m is None else float(m.intercept_) for m in models])
        if not used:  # the population value without random effects: the mean, or its logit
            mean = targets.mean(axis=0)
            with np.errstate(divide="ignore"):
                logit = np.log(mean) - np.log1p(-mean)
            intercepts = mean if self.target_type_ == "continuous" else logit
        multiclass = self.target_type_ == "multiclass"
        self.model_ = models if multiclass else models[0]
        self.intercept_ = intercepts if multiclass else float(intercepts[0])

    def _n_outputs(self):
        n_targets = self.classes_.size if self.target_type_ == "multiclass" else 1
        per_column = n_targets * (1 + self.return_std) + self.return_counts
        return self.n_features_in_ * per_column

    def _encode(self, labels, encodings):
        """The output columns: per column, per target its modes (and sds), then
        the counts (the same for every target: the rows' levels)."""
        columns = []
        for j in range(labels.shape[1]):
            values = labels.iloc[:, j].to_numpy()
            for per_target in encodings:
                columns.append(per_target[j].encode(values, "mode"))
                if self.return_std:
                    columns.append(per_target[j].encode(values, "sd"))
            if self.return_counts:
                columns.append(encodings[0][j].encode(values, "count"))
        if not columns:
            return np.empty((labels.shape[0], 0))
        return np.column_stack(columns).astype(float)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags
