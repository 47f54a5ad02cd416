"""MixedLogisticRegression and MixedPoissonRegressor: lme4's glmer as scikit-learn estimators."""

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, d2_tweedie_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._glmm import _BaseMixedGLM

__all__ = ["MixedLogisticRegression", "MixedPoissonRegressor"]

_SHARED_PARAMETERS = """
    random_slopes : list or dict, default=None
        Features whose coefficients vary by group (lme4's ``(1 + x | g)``):
        a list for every grouping factor, or ``{factor: [features]}``.
    covariance : {"unstructured", "diagonal"} or dict, default="unstructured"
        Correlated (``(1 + x | g)``) or independent (``(1 | g) + (0 + x |
        g)``) random intercept and slopes; a dict gives it per factor.
    random_effects : dict, default=None
        Any lme4 random-effect terms per factor, as in
        :class:`MixedLinearRegressor`: ``{"g": ["x"]}`` is ``(0 + x | g)``,
        ``{"g": [["1"], ["x"]]}`` is ``(1 | g) + (0 + x | g)``.
    fixed_features : list, default=None
        The features that are fixed effects; ``None``: all.
    fit_intercept : bool, default=True
        Whether to fit a fixed intercept.
    group_cols : list of str, default=None
        Read the grouping factors from these columns of the DataFrame ``X``
        (the way to use groups where scikit-learn cannot route them: scorers,
        ``cross_val_predict``).
    new_groups : {"population", "marginal", "error"}, default="population"
        Levels not seen in ``fit`` (and random effects left out by
        ``random_effects``): ``"population"`` predicts them with a random
        effect of 0 (lme4's ``allow.new.levels = TRUE``, the conditional mean
        at ``b = 0``); ``"marginal"`` integrates the mean over their
        distribution ``N(0, Sigma)`` (the population-average mean, closer to
        the observed rate of a new group: on the logit scale the two differ,
        ``E[expit(eta + b)] != expit(eta)``); ``"error"`` raises.
    nagq : int, default=1
        Quadrature nodes: 1 is the Laplace approximation (lme4's default);
        more (adaptive Gauss-Hermite, lme4's ``nAGQ``) needs a single scalar
        random-effect term, one random intercept say.
    solver : {"exact", "iterative"}, default="exact"
        ``"iterative"``: an approximate fit of crossed random intercepts too
        large for the exact factor (two factors of 1e4+ levels each): PIRLS
        on the iterative solver's preconditioned conjugate gradients, the
        Laplace log-determinant by stochastic Lanczos quadrature
        (``log_likelihood_se_``), lme4's two stages by Nelder-Mead; standard
        errors from the PIRLS system and conditional variances approximate;
        see ``docs/glmm.md``.
    max_iter : int, default=500
        Maximum optimizer iterations per stage.
    tol : float, default=1e-10
        Relative tolerance on the deviance.
"""

_SHARED_ATTRIBUTES = """
    coef_ : ndarray of shape (n_features,)
        Fixed-effect slopes on the link scale (0 for random-only or aliased
        features).
    intercept_ : float
        Fixed intercept on the link scale.
    fixed_effects_ : DataFrame
        ``estimate``, ``std_error``, ``z_value`` and ``p_value`` (Wald) per
        fixed effect.
    fixed_effects_cov_ : ndarray of shape (n_fixed, n_fixed)
        Covariance of the fixed effects: lme4 1.1-31's default, twice the
        inverse Hessian of the deviance in ``(theta, beta)`` restricted to
        beta (see Notes).
    random_effects_cov_ : dict of str -> ndarray of shape (k, k)
        Covariance ``Sigma`` of one level's random effects, per factor.
    random_effects_ : dict of str -> DataFrame
        Conditional modes of the random effects (link scale), one row per level.
    random_effects_conditional_cov_ : dict of str -> ndarray of shape (m, k, k)
        Their conditional covariances (lme4's ``condVar``).
    variance_components_ : DataFrame
        Variance and standard deviation per factor and term.
    theta_ : ndarray
        lme4's relative covariance parameters.
    log_likelihood_ : float
        lme4's ``logLik``: the Laplace approximation (``nagq=1``, with the
        binomial coefficients or ``log y!``), or the adaptive Gauss-Hermite
        one (``nagq > 1``, on lme4's deviance scale: without those constants).
    deviance_ : float
        ``-2 log_likelihood_``, the "deviance" of lme4's ``summary(fit)`` (not
        lme4's ``deviance(fit)``, which for a GLMM is the conditional
        deviance, the sum of squared deviance residuals).
    aic_, bic_ : float
        ``deviance_ + 2 k`` and ``deviance_ + log(n) k``, ``k`` the fixed
        effects and covariance parameters (no dispersion), as lme4's
        ``AIC(fit)`` and ``BIC(fit)``.
    n_iter_ : int
        Optimizer iterations (both stages).
    converged_ : bool
    singular_ : bool
        Whether a variance is estimated as 0 (lme4's ``isSingular``).
    group_names_ : list of str
    n_groups_ : dict of str -> int
    random_slope_names_ : dict of str -> list of str
    fixed_effect_names_ : list of str
    aliased_features_ : list of str
    n_obs_ : int
    solver_ : str
        ``"exact"`` or ``"iterative"``.
    log_likelihood_se_ : float
        Monte Carlo standard error of ``log_likelihood_`` (iterative solver; 0
        for exact fits).
    model_ : GeneralizedLinearMixedModel
        The fitted numerical model (:mod:`sklearn_mixed.core.glmm`):
        ``model_.deviance(theta, beta)`` is lme4's ``devfun`` at stage 2.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
"""

_NOTES = """
    The model is ``g(E[y | b]) = X beta + Z b (+ offset)``, ``b ~ N(0,
    Sigma)`` per level, fitted as lme4's ``glmer``: penalized iteratively
    reweighted least squares (PIRLS) for the conditional modes, each step the
    linear mixed model of the working response on the same blocked factor as
    :class:`MixedLinearRegressor`; the Laplace (or adaptive Gauss-Hermite)
    approximation of the log-likelihood optimized in two stages (theta with
    beta inside PIRLS, then theta and beta together), with the analytic
    gradient of the Laplace criterion where the working system is dense.

    Standard errors are lme4 1.1-31's default (``vcov(fit)`` with
    ``use.hessian = TRUE``): the beta block of ``2 H^-1`` with ``H`` the
    Hessian of the deviance in ``(theta, beta)`` at the optimum, so they
    account for the uncertainty of the variance parameters; where ``H`` is not
    positive definite they fall back, with a warning, to the PIRLS factor's
    ``(X'WX - ...)^-1`` (lme4's ``use.hessian = FALSE``), as lme4 does.

    PIRLS is iterated to convergence and the Laplace criterion uses the factor
    at the final modes; lme4 stops earlier and takes the factor at the
    previous step's weights, so its log-likelihood is lower by about 1e-5 to
    1e-3 and its standard errors differ by up to ~1%.
"""


class MixedLogisticRegression(ClassifierMixin, _BaseMixedGLM):
    __doc__ = (
        """Logistic regression with random effects (a binomial GLMM), as lme4's ``glmer``.

    ``logit P(y = 1 | b) = X beta + Z b`` with random intercepts (and slopes)
    per level of each grouping factor, crossed or nested: lme4's
    ``glmer(y ~ x + (1 | g), family = binomial)``.  A binary classifier
    (``classes_`` from the two labels of ``y``; the second is the positive
    class), usable in ``Pipeline``, ``GridSearchCV`` and ``cross_validate``
    with the groups passed as arrays.

    Parameters
    ----------"""
        + _SHARED_PARAMETERS
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels, sorted; ``predict_proba[:, 1]`` is ``P(y = classes_[1])``."""
        + _SHARED_ATTRIBUTES
        + """
    See Also
    --------
    MixedPoissonRegressor : Counts with random effects.
    sklearn.linear_model.LogisticRegression : Without random effects.

    Notes
    -----"""
        + _NOTES
        + """
    ``sample_weight`` are lme4's prior weights, the numbers of trials of a
    binomial response: a row of weight ``w`` counts as ``w`` rows with its
    label.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mixed import MixedLogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> g = rng.integers(0, 30, 600)
    >>> x = rng.normal(size=(600, 1))
    >>> eta = -0.5 + x[:, 0] + rng.normal(0, 1, 30)[g]
    >>> y = rng.random(600) < 1 / (1 + np.exp(-eta))
    >>> clf = MixedLogisticRegression().fit(x, y, groups=g)
    >>> clf.classes_
    array([False,  True])
    >>> clf.predict_proba(x[:2], groups=g[:2]).shape
    (2, 2)
    """
    )

    _family = "binomial"

    def fit(self, X, y, groups=None, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features (and the ``group_cols`` columns, if set).
        y : array-like of shape (n_samples,)
            Two class labels.
        groups : array-like of shape (n_samples,) or (n_samples, n_factors), default=None
            Grouping factors, one column per factor (crossed or nested).
            ``None`` fits a logistic regression without random effects.
        sample_weight : array-like of shape (n_samples,), default=None
            Prior weights (numbers of trials); rows of weight 0 are left out.

        Returns
        -------
        self : object
        """
        X, y, groups = self._validate_input(X, y, groups, y_numeric=False)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) == 1:
            raise ValueError(
                "y has one class; a logistic model needs both classes (the estimates would "
                "diverge)."
            )
        if len(self.classes_) != 2:
            raise ValueError(
                "Only binary classification is supported: MixedLogisticRegression needs y "
                f"with 2 classes, got {len(self.classes_)}: {list(self.classes_[:10])!r}. "
                "Multiclass targets need one model per class "
                "(sklearn.multiclass.OneVsRestClassifier)."
            )
        return self._fit(X, encoder.transform(y).astype(float), groups, sample_weight, None)

    def _check_response(self, response):
        if np.all(response == response[0]) and response[0] in (0.0, 1.0):
            raise ValueError(
                "y has a single class among the rows of positive weight; a logistic model "
                "needs both classes (the estimates would diverge)."
            )

    def fit_proportions(self, X, proportion, groups=None, trials=None):
        """Fit to proportions of successes out of ``trials``: lme4's ``prop ~ ...,
        weights = trials`` (= ``cbind(successes, failures) ~ ...``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        proportion : array-like of shape (n_samples,)
            Proportions of successes, in [0, 1].
        groups : array-like, default=None
            Grouping factors as in :meth:`fit`.
        trials : array-like of shape (n_samples,), default=None
            Numbers of trials (1 when None); the log-likelihood includes the
            binomial coefficients, as lme4's.

        Returns
        -------
        self : object
            Fitted estimator, with ``classes_ = [0, 1]``.
        """
        X, proportion, groups = self._validate_input(X, proportion, groups, y_numeric=True)
        self.classes_ = np.array([0, 1])
        return self._fit(X, proportion, groups, trials, None)

    def decision_function(self, X, groups=None, random_effects=None):
        """The linear predictor (log-odds of ``classes_[1]``), unseen levels at 0.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        groups : array-like, default=None
            Grouping factors as in ``fit``; seen levels add their modes.
        random_effects : list or dict, default=None
            Which random effects to add (lme4's ``re.form``), as in
            :meth:`MixedLinearRegressor.predict`.

        Returns
        -------
        eta : ndarray of shape (n_samples,)
        """
        return self._linear_predictor(X, groups, None, random_effects)[0]

    def predict_proba(self, X, groups=None, random_effects=None):
        """Class probabilities: ``[1 - p, p]`` with ``p = P(y = classes_[1] | b)``.

        Seen levels use their conditional modes; unseen ones a random effect
        of 0, or with ``new_groups="marginal"`` the probability averaged over
        the random effect's distribution.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        groups : array-like, default=None
        random_effects : list or dict, default=None
            As in :meth:`decision_function`.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
        """
        p = self._mean(X, groups, None, random_effects)
        return np.column_stack([1.0 - p, p])

    def predict_log_proba(self, X, groups=None, random_effects=None):
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X, groups, random_effects))

    def predict(self, X, groups=None, random_effects=None):
        """The more probable class per row.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        p = self.predict_proba(X, groups, random_effects)[:, 1]
        return self.classes_[(p > 0.5).astype(int)]

    def score(self, X, y, groups=None, sample_weight=None):
        """Accuracy of :meth:`predict` (with the groups).

        Returns
        -------
        score : float
        """
        return accuracy_score(y, self.predict(X, groups=groups), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


class MixedPoissonRegressor(RegressorMixin, _BaseMixedGLM):
    __doc__ = (
        """Poisson regression with random effects (a log-linear GLMM), as lme4's ``glmer``.

    ``log E[y | b] = X beta + Z b + offset``: counts per level of crossed or
    nested grouping factors, with exposures through ``offset = log(exposure)``
    (lme4's ``glmer(y ~ x + (1 | g) + offset(log(t)), family = poisson)``).

    Parameters
    ----------"""
        + _SHARED_PARAMETERS
        + """
    Attributes
    ----------"""
        + _SHARED_ATTRIBUTES
        + """
    See Also
    --------
    MixedLogisticRegression : Binary outcomes with random effects.
    sklearn.linear_model.PoissonRegressor : Without random effects.

    Notes
    -----"""
        + _NOTES
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mixed import MixedPoissonRegressor
    >>> rng = np.random.default_rng(0)
    >>> g = rng.integers(0, 20, 400)
    >>> x = rng.normal(size=(400, 1))
    >>> exposure = rng.uniform(1, 3, 400)
    >>> mu = exposure * np.exp(0.3 + 0.5 * x[:, 0] + rng.normal(0, 0.4, 20)[g])
    >>> y = rng.poisson(mu)
    >>> model = MixedPoissonRegressor().fit(x, y, groups=g, offset=np.log(exposure))
    >>> model.predict(x[:2], groups=g[:2], offset=np.log(exposure[:2])).shape
    (2,)
    """
    )

    __metadata_request__fit = {"groups": True, "offset": True}
    __metadata_request__predict = {"groups": True, "offset": True}
    __metadata_request__score = {"groups": True, "offset": True}

    _family = "poisson"

    def fit(self, X, y, groups=None, sample_weight=None, offset=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Counts (non-negative).
        groups : array-like, default=None
            Grouping factors, one column per factor.
        sample_weight : array-like of shape (n_samples,), default=None
            Prior weights.
        offset : array-like of shape (n_samples,), default=None
            Known part of the linear predictor, ``log(exposure)``.

        Returns
        -------
        self : object
        """
        X, y, groups = self._validate_input(X, y, groups, y_numeric=True)
        if np.any(y < 0):
            raise ValueError("MixedPoissonRegressor needs counts: y has negative values")
        return self._fit(X, np.asarray(y, dtype=float), groups, sample_weight, offset)

    def predict(self, X, groups=None, offset=None, random_effects=None):
        """The mean count ``exp(eta)`` (unseen levels as ``new_groups`` says).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        groups : array-like, default=None
        offset : array-like of shape (n_samples,), default=None
            ``log(exposure)`` of the rows predicted.
        random_effects : list or dict, default=None
            Which random effects to add (lme4's ``re.form``).

        Returns
        -------
        mean : ndarray of shape (n_samples,)
        """
        return self._mean(X, groups, offset, random_effects)

    def score(self, X, y, groups=None, sample_weight=None, offset=None):
        """D^2, the fraction of Poisson deviance explained by :meth:`predict`.

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        mean = self.predict(X, groups=groups, offset=offset)
        return d2_tweedie_score(y, mean, sample_weight=sample_weight, power=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags
