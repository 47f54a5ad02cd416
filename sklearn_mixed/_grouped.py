"""What every mixed-model estimator does with grouping factors and levels.

:class:`GroupedModelMixin` reads the levels seen in ``fit`` back at
``predict`` (unseen levels, ``new_groups``, label types), chooses which random
effects to add (lme4's ``re.form``), exposes the conditional modes as
DataFrames and requests ``groups`` as metadata.  The linear regressors
(:mod:`._base`) and the GLMM estimators (:mod:`._glmm`) share it; it reads
the fitted ``model_`` (``terms``, ``result.b``) and the attributes that
``fit`` stores (``group_names_``, ``_level_labels``, ``_covariates``).
"""

import warnings

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ._design import build_rows
from ._groups import INTERCEPT, resolve_fixed_features, split_group_columns, validate_groups
from .core import nesting_pairs
from .exceptions import NoGroupsWarning, PopulationPredictionWarning, user_stacklevel

__all__ = ["GroupedModelMixin", "split_features_and_groups"]


NO_GROUPS_ADVICE = (
    "Pass groups=... to fit. In cross_validate, GridSearchCV or a Pipeline, a groups= "
    "argument is used for splitting only unless metadata routing is on: "
    "sklearn.set_config(enable_metadata_routing=True) and "
    "estimator.set_fit_request(groups=True) (and set_predict_request / set_score_request); "
    "or keep the grouping columns in X and name them with group_cols=[...]; or use the "
    "formula estimators (LmerRegressor), which read the groups from X. See the "
    "'pipelines' page of the documentation."
)


class GroupedModelMixin:
    """Levels, ``re.form`` and metadata requests of a fitted mixed model."""

    def _feature_names(self):
        if hasattr(self, "feature_names_in_"):
            return [str(c) for c in self.feature_names_in_]
        return [f"x{i}" for i in range(self.n_features_in_)]

    def _build_design(self, X, response, groups, weights, **options):
        """The model's rows (:func:`~._design.build_rows`) from validated input:
        the grouping factors, the fixed features, each factor's random effects
        (``_random_specs``); ``options`` go to ``build_rows``."""
        factors = None if groups is None else validate_groups(groups, X.shape[0])
        specs, fixed = self._model_layout([] if factors is None else factors[0])
        return build_rows(
            X, response, factors, weights, specs=specs, fixed=fixed,
            fit_intercept=self.fit_intercept, feature_names=self._feature_names(), **options,
        )  # fmt: skip

    def _model_layout(self, factor_names):
        """``(specs, fixed)``: each factor's random effects (``_random_specs``)
        and the feature columns that are fixed effects; a model without
        grouping factors warns or refuses (:meth:`_check_no_groups`)."""
        feature_names = self._feature_names()
        if not factor_names:
            self._check_no_groups()
        fixed = resolve_fixed_features(getattr(self, "fixed_features", None), feature_names)
        if not fixed and not self.fit_intercept and not factor_names:
            raise ValueError(
                "the model has no fixed effects and no grouping factors: nothing to fit."
            )
        specs = self._random_specs(factor_names, feature_names) if factor_names else {}
        return specs, fixed

    def _check_no_groups(self):
        """``fit`` without groups: an error when random effects are configured,
        else a :class:`NoGroupsWarning` (the groups were likely dropped on the way)."""
        params = self.get_params(deep=False)
        configured = [p for p in ("random_slopes", "random_effects") if params.get(p)]
        configured += ["covariance"] * isinstance(params.get("covariance"), dict)
        if configured:
            raise ValueError(
                f"fit received no groups, but {', '.join(f'{p}={params[p]!r}' for p in configured)}"
                f" configures random effects. {NO_GROUPS_ADVICE}"
            )
        warnings.warn(
            "fit received no groups: fitting a model without random effects (no group "
            f"shrinkage). {NO_GROUPS_ADVICE}",
            NoGroupsWarning,
            stacklevel=user_stacklevel(),
        )

    def _store_fitted_model(self, design, fit):
        """The fitted attributes every mixed model has, from its ``design``
        (:class:`~._design.FittedDesign`) and the core's solution ``fit``."""
        terms = design.terms
        # coefficients of the features: 0 for random-only and aliased columns
        self.coef_ = np.zeros(self.n_features_in_)
        self.intercept_ = 0.0
        for column, value in zip(design.fixed, fit.beta, strict=True):
            if column is None:
                self.intercept_ = float(value)
            else:
                self.coef_[column] = value
        self.fixed_effect_names_ = list(design.fixed_names)
        self.aliased_features_ = list(design.aliased)
        self.fixed_effects_cov_ = fit.beta_cov
        self.theta_ = fit.theta
        self.group_names_ = [t.name for t in terms]
        self.n_groups_ = {t.name: t.n_levels for t in terms}
        self.nested_ = nesting_pairs(self.group_names_, design.reduction)
        self.random_slope_names_ = {
            t.name: [c for c in t.covariate_names if c != INTERCEPT] for t in terms
        }
        self.covariance_structures_ = {t.name: t.structure.name for t in terms}
        self.random_effects_cov_ = {t.name: c for t, c in zip(terms, fit.term_cov, strict=True)}
        self.random_effects_conditional_cov_ = {
            t.name: c for t, c in zip(terms, fit.conditional_cov, strict=True)
        }
        self.log_likelihood_ = fit.log_likelihood
        self.deviance_ = fit.deviance
        self.aic_, self.bic_ = fit.aic, fit.bic
        self.n_iter_, self.converged_, self.singular_ = fit.n_iter, fit.converged, fit.singular
        self.n_obs_ = fit.n
        # for predict: level indexes, and each factor's covariate columns of X
        self._level_labels = design.levels
        self._level_index = {}
        self._fixed_columns = design.fixed
        self._covariates = {name: spec.covariates for name, spec in design.specs.items()}

    @property
    def random_effects_(self):
        """dict of str -> DataFrame: conditional modes, one row per level."""
        check_is_fitted(self)
        fit = self.model_.result
        return {
            t.name: pd.DataFrame(
                b, index=self._levels(t.name).rename(t.name), columns=list(t.covariate_names)
            )
            for t, b in zip(self.model_.terms, fit.b, strict=True)
        }

    def _random_effect_rows(self, X, groups, random_effects):
        """Per fitted term to predict with: ``(term index, z, seen, level)`` with
        ``z`` the rows' covariates ``(n, k)``, ``seen`` which coefficients use a
        level's mode ``(n, k)`` and ``level`` the level index (0 where unseen)."""
        chosen = self._chosen_random_effects(random_effects)
        codes = self._predict_codes(X.shape[0], groups, warn=bool(chosen))
        for index, t in enumerate(self.model_.terms):
            cols = self._covariates[t.name]
            z = np.column_stack([np.ones(X.shape[0]) if c is None else X[:, c] for c in cols])
            level = codes.get(t.name, np.full(X.shape[0], -1))
            use = np.zeros(len(cols), dtype=bool)
            use[chosen.get(t.name, [])] = True
            seen = (level >= 0)[:, None] & use[None, :]  # rows x coefficients used
            yield index, z, seen, np.maximum(level, 0)

    def _chosen_random_effects(self, random_effects):
        """``{factor: coefficient indices}`` to predict with (lme4's ``re.form``)."""
        names = {t.name: list(t.covariate_names) for t in self.model_.terms}
        if random_effects is None:
            return {f: list(range(len(c))) for f, c in names.items()}
        if not isinstance(random_effects, dict):
            if isinstance(random_effects, str):
                random_effects = [random_effects]
            random_effects = {f: names.get(f, []) for f in random_effects}
        chosen = {}
        for factor, coefs in random_effects.items():
            if factor not in names:
                raise ValueError(
                    f"random_effects names {factor!r}, not a fitted grouping factor; the "
                    f"factors are {list(names)!r}"
                )
            coefs = [coefs] if isinstance(coefs, str) else list(coefs)
            unknown = [c for c in coefs if c not in names[factor] and c != "1"]
            if unknown:
                raise ValueError(
                    f"random_effects of {factor!r} name {unknown!r}, not among its random "
                    f"effects {names[factor]!r}"
                )
            chosen[factor] = [
                i for i, c in enumerate(names[factor])
                if c in coefs or (c == INTERCEPT and "1" in coefs)
            ]  # fmt: skip
        return chosen

    def _predict_codes(self, n_samples, groups, warn=True):
        """Level index per factor given (-1 for unseen levels)."""
        if groups is None:
            if self.group_names_ and warn:
                warnings.warn(
                    f"{type(self).__name__} was fitted with grouping factors "
                    f"{self.group_names_!r} but predict got no groups: returning the "
                    "population (fixed-effects only) prediction. Pass groups=... (or "
                    "set group_cols) to use the group-specific effects.",
                    PopulationPredictionWarning,
                    stacklevel=3,
                )
            return {name: np.full(n_samples, -1) for name in self.group_names_}
        if not self.group_names_:
            raise ValueError(
                "this model was fitted without groups, so it has no random effects to "
                "predict with; pass groups to fit as well."
            )
        names, labels = validate_groups(groups, n_samples, expected_names=self.group_names_)
        codes = {}
        for name, lab in zip(names, labels, strict=True):
            code = self._levels(name).get_indexer(pd.Index(lab))
            if self.new_groups == "error" and np.any(code < 0):
                unseen = pd.unique(np.asarray(lab)[code < 0]).tolist()
                raise ValueError(
                    f"grouping factor {name!r} has {len(unseen)} level(s) not seen in fit: "
                    f"{list(unseen[:10])!r}{' ...' if len(unseen) > 10 else ''}. Set "
                    "new_groups='population' to predict them with the population effect."
                )
            if len(code) and np.all(code < 0):
                self._warn_if_label_types_differ(name, lab)
            codes[name] = code
        return codes

    def _levels(self, name):
        """The levels of a factor as a pandas Index (built on first use)."""
        if name not in self._level_index:
            self._level_index[name] = pd.Index(self._level_labels[name])
        return self._level_index[name]

    def _warn_if_label_types_differ(self, name, labels):
        """No level seen at all and labels of another kind: a likely mix-up (308 vs "308")."""
        fit_kind = pd.api.types.infer_dtype(self._levels(name), skipna=True)
        new_kind = pd.api.types.infer_dtype(labels, skipna=True)
        if fit_kind != new_kind:
            warnings.warn(
                f"none of the labels of grouping factor {name!r} were seen in fit: fit "
                f"labels are {fit_kind} (e.g. {self._levels(name)[0]!r}), predict got "
                f"{new_kind} (e.g. {labels[0]!r}). All rows get the population effect for "
                f"{name!r}; convert the labels to the type used in fit if they are the same "
                "groups.",
                PopulationPredictionWarning,
                stacklevel=4,
            )

    def get_metadata_routing(self):
        """Metadata requests: ``groups`` for fit, predict and score by default.

        With ``group_cols`` set the groups come from ``X``, so ``groups`` is
        not requested (a ``GroupKFold`` may still consume it), unless the
        requests were set explicitly with ``set_*_request``.

        Returns
        -------
        routing : MetadataRequest
        """
        request = super().get_metadata_routing()
        if self.group_cols is not None and not hasattr(self, "_metadata_request"):
            for method in ("fit", "predict", "score"):
                getattr(request, method).add_request(param="groups", alias=False)
        return request

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def split_features_and_groups(X, groups, group_cols):
    """Features and grouping factors; a DataFrame without columns becomes (n, 0)."""
    X, groups = split_group_columns(X, groups, group_cols)
    if hasattr(X, "columns") and len(X.columns) == 0:
        X = np.empty((len(X), 0))
    return X, groups
