"""Influence of observations and groups on a fitted model, as lme4 reports it.

Row-level measures (leverage, Cook's distance, studentized residuals) come
from :mod:`sklearn_mixed.core.influence`; :func:`group_influence` refits the
model without each group of rows, as lme4's ``influence(fit, groups)``, and
tabulates the change in the fixed effects (``dfbeta``, ``dfbetas``), the
variance components and Cook's distance.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ._groups import validate_groups
from .core import influence as core_influence

__all__ = ["GroupInfluence", "group_influence"]


@dataclass(frozen=True)
class GroupInfluence:
    """The model refitted without each group (lme4's ``influence.merMod``).

    Attributes
    ----------
    fixed_effects : Series
        The fitted fixed effects.
    fixed_effects_deleted : DataFrame
        One row per deleted group: the fixed effects refitted without it.
    var_cov_comps : Series
        ``sigma^2`` and each factor's variances and covariances (lme4's names:
        ``v[term]``, ``C[term2,term1]``, prefixed by ``factor:`` when there are
        several factors).
    var_cov_comps_deleted : DataFrame
    vcov : DataFrame
        The covariance of the fixed effects.
    vcov_deleted : dict of label -> DataFrame
    converged : Series of bool
        Whether each refit converged.
    """

    fixed_effects: pd.Series
    fixed_effects_deleted: pd.DataFrame
    var_cov_comps: pd.Series
    var_cov_comps_deleted: pd.DataFrame
    vcov: pd.DataFrame
    vcov_deleted: dict
    converged: pd.Series

    def dfbeta(self):
        """Change of each fixed effect when the group is deleted (lme4's ``dfbeta``)."""
        return self.fixed_effects_deleted - self.fixed_effects

    def dfbetas(self):
        """``dfbeta`` over the refit's standard errors (lme4's ``dfbetas``)."""
        se = pd.DataFrame(
            {g: np.sqrt(np.diag(v.to_numpy())) for g, v in self.vcov_deleted.items()},
            index=self.fixed_effects.index,
        ).T
        return self.dfbeta() / se.to_numpy()

    def cooks_distance(self):
        """lme4's ``cooks.distance(influence(...))``: ``d' V^-1 d (G - p) / (G p)``.

        ``d`` the group's ``dfbeta``, ``V`` the full fit's covariance of the
        fixed effects, ``G`` the number of deleted groups and ``p`` of fixed
        effects (lme4 1.1-31 scales by the number of groups, not of rows).
        """
        db = self.dfbeta().to_numpy()
        G, p = db.shape
        V_inv = (G - p) / (G * p) * np.linalg.inv(self.vcov.to_numpy())
        values = np.einsum("gi,ij,gj->g", db, V_inv, db)
        return pd.Series(values, index=self.fixed_effects_deleted.index, name="cooks_distance")


def _var_cov_comps(terms, fit, several):
    """lme4's ``var.cov.comps``: ``sigma^2``, then each factor's lower triangle."""
    values, names = [fit.sigma2], ["sigma^2"]
    for term, cov in zip(terms, fit.term_cov, strict=True):
        labels = term.covariate_names
        prefix = f"{term.name}:" if several else ""
        for c in range(term.n_coef):
            for r in range(c, term.n_coef):
                values.append(cov[r, c])
                label = f"v[{labels[r]}]" if r == c else f"C[{labels[r]},{labels[c]}]"
                names.append(prefix + label)
    return np.array(values), names


def group_influence(estimator, groups=None):
    """Refit ``estimator``'s model without each group; see :class:`GroupInfluence`.

    Parameters
    ----------
    estimator : fitted mixed-model regressor
    groups : str or array-like, default=None
        A fitted grouping factor's name, or labels of the training rows (one
        per row, in the order of ``fit``'s rows of positive weight); ``None``
        deletes one row at a time (lme4's default, ``n`` refits).

    Returns
    -------
    GroupInfluence
    """
    check_is_fitted(estimator)
    model = estimator.model_
    n = model.n
    if groups is None:
        labels = np.arange(n)
    elif isinstance(groups, str):
        names = [t.name for t in model.terms]
        if groups not in names:
            raise ValueError(
                f"unknown grouping factor {groups!r}; the fitted factors are {names!r}"
            )
        term = model.terms[names.index(groups)]
        labels = term.levels[term.codes]
    else:
        labels = validate_groups(groups, n)[1][0]
    # groups in order of first appearance, as lme4's unique()
    uniques, first, codes = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    codes = rank[codes.ravel()]
    deleted = [uniques[i] for i in order]
    fit = model.result
    names = list(estimator.fixed_effect_names_)
    several = len(model.terms) > 1
    comps, comp_names = _var_cov_comps(model.terms, fit, several)
    beta_rows, comp_rows, vcovs, converged = [], [], {}, []
    for g, refit in core_influence.deletion_refits(model, codes):
        result = refit.result
        beta_rows.append(result.beta)
        comp_rows.append(_var_cov_comps(model.terms, result, several)[0])
        vcovs[deleted[g]] = pd.DataFrame(result.beta_cov, index=names, columns=names)
        converged.append(result.converged)
    index = pd.Index(deleted, name="deleted")
    return GroupInfluence(
        fixed_effects=pd.Series(fit.beta, index=names),
        fixed_effects_deleted=pd.DataFrame(beta_rows, index=index, columns=names),
        var_cov_comps=pd.Series(comps, index=comp_names),
        var_cov_comps_deleted=pd.DataFrame(comp_rows, index=index, columns=comp_names),
        vcov=pd.DataFrame(fit.beta_cov, index=names, columns=names),
        vcov_deleted=vcovs,
        converged=pd.Series(converged, index=index, name="converged"),
    )
