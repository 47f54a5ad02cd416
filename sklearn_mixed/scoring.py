"""Scorers that pass the grouping factors on to ``predict``.

scikit-learn's scorers never route metadata to ``predict`` (scikit-learn
issue 27977), so a model scored with ``scoring="r2"`` inside
``cross_validate`` would predict without its random effects.  A scorer made by
:func:`make_group_scorer` requests ``groups`` and calls
``estimator.predict(X, groups=groups)``; with
``sklearn.set_config(enable_metadata_routing=True)`` meta-estimators route the
groups to it.
"""

import inspect

from sklearn.utils.metadata_routing import MetadataRequest

__all__ = ["make_group_scorer"]

_RESPONSE_METHODS = ("predict", "predict_proba", "decision_function")


class _GroupScorer:
    """Callable ``scorer(estimator, X, y, groups=None, sample_weight=None)``."""

    def __init__(self, metric, sign, metric_kwargs, response_method="predict"):
        if response_method not in _RESPONSE_METHODS:
            raise ValueError(
                f"response_method must be one of {_RESPONSE_METHODS}, got {response_method!r}"
            )
        self._response_method = response_method
        self._metric = metric
        self._sign = sign
        self._metric_kwargs = metric_kwargs
        self._takes_weight = "sample_weight" in inspect.signature(metric).parameters
        self._sample_weight_request = None

    def __call__(self, estimator, X, y_true, groups=None, sample_weight=None):
        y_pred = getattr(estimator, self._response_method)(X, groups=groups)
        if self._response_method == "predict_proba" and y_pred.shape[1] == 2:
            y_pred = y_pred[:, 1]  # binary: the positive class's probability, as scikit-learn
        kwargs = dict(self._metric_kwargs)
        if sample_weight is not None:
            if not self._takes_weight:
                raise ValueError(f"{self._metric.__name__} does not accept sample_weight")
            kwargs["sample_weight"] = sample_weight
        return self._sign * self._metric(y_true, y_pred, **kwargs)

    def get_metadata_routing(self):
        request = MetadataRequest(owner=type(self).__name__)
        request.score.add_request(param="groups", alias=True)
        if self._takes_weight:
            request.score.add_request(param="sample_weight", alias=self._sample_weight_request)
        return request

    def set_score_request(self, *, sample_weight=None):
        """Request ``sample_weight`` (``True``) so meta-estimators route it here."""
        if not self._takes_weight:
            raise ValueError(f"{self._metric.__name__} does not accept sample_weight")
        self._sample_weight_request = sample_weight
        return self

    def __repr__(self):
        sign = "" if self._sign > 0 else ", greater_is_better=False"
        method = "" if self._response_method == "predict" else f", {self._response_method!r}"
        return f"make_group_scorer({self._metric.__name__}{sign}{method})"


def make_group_scorer(metric, greater_is_better=True, response_method="predict", **metric_kwargs):
    """A scorer that predicts with the grouping factors routed to it.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_pred, **kwargs)``, e.g. ``sklearn.metrics.r2_score``.
    greater_is_better : bool, default=True
        ``False`` for losses (the score is then the negated loss, as
        scikit-learn's ``neg_*`` scorers).
    response_method : {"predict", "predict_proba", "decision_function"}, default="predict"
        What the metric scores: predictions, probabilities (of the positive
        class for a binary classifier: ``roc_auc_score``, ``log_loss``,
        ``brier_score_loss``) or the linear predictor.
    **metric_kwargs
        Passed to ``metric``.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, groups=None, sample_weight=None)``, which
        requests ``groups`` by default.

    Examples
    --------
    >>> import sklearn
    >>> from sklearn.metrics import mean_squared_error
    >>> from sklearn.model_selection import KFold, cross_validate
    >>> from sklearn_mixed import MixedLinearRegressor, make_group_scorer
    >>> from sklearn_mixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> scorer = make_group_scorer(mean_squared_error, greater_is_better=False)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     cv = cross_validate(MixedLinearRegressor(random_slopes=["Days"]),
    ...                         df[["Days"]], df["Reaction"], scoring=scorer,
    ...                         cv=KFold(5, shuffle=True, random_state=0),
    ...                         params={"groups": df["Subject"]})
    >>> bool(cv["test_score"].mean() > -1000)
    True
    """
    return _GroupScorer(metric, 1 if greater_is_better else -1, metric_kwargs, response_method)
