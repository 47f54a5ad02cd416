"""The columns of an lme4 formula's model matrices, coded as R codes them.

A *term* is a tuple of variables (``("recipe", "ftemp")`` for ``recipe:ftemp``).
Its columns multiply the numeric variables and one indicator per
categorical variable; each categorical variable is coded, in that term, by
*contrasts* (treatment coding: all levels but the first) or by *dummy
variables* (every level), by R's rule (``model.matrix``, Chambers and Hastie
1992, p. 38):

- a categorical ``F`` in term ``T`` is coded by contrasts when ``T`` without
  ``F`` is empty, or is contained in a term before ``T``; otherwise by dummy
  variables (``f:x`` without ``x`` gets a slope per level of ``f``);
- without an intercept, the first categorical variable of the first term
  that has one is coded by dummy variables.

Columns are named as R names them (``sampleB``, ``recipeB:ftemp185``,
``fB:x``), the first variable of a term varying fastest.  The same rule codes
the covariates of random-effect terms (``(0 + f | g)``: one column per level;
``(f | g)``: intercept and contrasts).

:func:`type3_hypotheses` builds lmerTest 3.1-3's type III hypotheses of the
fixed terms (``get_contrasts_type3``): the model matrix ``X`` and the
"rank-deficient" matrix ``rdX`` of every term in full dummy coding give
``L = (X^+ rdX)'``; the columns of each term contained in a larger one
(lmerTest's containment: its variables a proper subset, the same numeric
variables) are made orthogonal to the larger terms' columns; each term's
hypothesis is its columns of ``L``, restricted to the rows of ``X``'s columns.
"""

import itertools
from dataclasses import dataclass

import numpy as np

from ._formula_vars import label

__all__ = ["Column", "term_codings", "term_columns", "type3_hypotheses", "zapsmall"]


@dataclass(frozen=True)
class Column:
    """One model-matrix column: a product of numeric variables (or one column
    of a matrix variable, such as ``poly(x, 2)``) and level indicators."""

    name: str
    factors: tuple = ()  # ((variable, level), ...)
    numerics: tuple = ()  # ((variable, matrix column or None), ...)

    def values(self, frame):
        """The column on ``frame`` (variable name -> :class:`._formula_vars.Variable`)."""
        variables = [v for v, _ in self.factors] + [v for v, _ in self.numerics]
        out = np.ones(len(frame[variables[0]].values))
        for variable, level in self.factors:
            info = frame[variable]
            out = out * (info.codes == info.levels.index(level))
        for variable, j in self.numerics:
            info = frame[variable]
            values = info.contrasts if info.kind == "factor" else info.values
            out = out * (values if j is None else values[:, j])
        return out


def term_codings(terms, categorical, intercept):
    """``{term: {categorical variable: "contrasts" | "dummy"}}`` by R's rule (module doc)."""
    codings, first_done = {}, intercept
    for i, term in enumerate(terms):
        coding = {}
        for variable in term:
            if variable not in categorical:
                continue
            rest = set(term) - {variable}
            before = any(rest <= set(t) for t in terms[:i])
            coding[variable] = "contrasts" if not rest or before else "dummy"
            if not first_done:  # no intercept: the first categorical variable gets dummies
                coding[variable], first_done = "dummy", True
        codings[term] = coding
    return codings


def _choices(variable, coding, frame):
    """``[(name suffix, factor level or None, matrix column or None)]`` of one variable."""
    info = frame[variable]
    if info.kind == "factor" and coding.get(variable) == "contrasts" and info.suffixes:
        return [(suffix, None, j) for j, suffix in enumerate(info.suffixes)]  # ordered: contr.poly
    if info.kind == "factor":
        levels = info.levels[1:] if coding.get(variable) == "contrasts" else info.levels
        return [(label(level), level, None) for level in levels]
    if info.kind == "matrix":
        return [(suffix, None, j) for j, suffix in enumerate(info.suffixes)]
    return [("", None, None)]


def term_columns(term, coding, frame):
    """The :class:`Column` list of one term, the first variable varying fastest."""
    per_variable = [_choices(v, coding, frame) for v in term]
    columns = []
    for combo in itertools.product(*reversed(per_variable)):
        chosen = list(zip(term, reversed(combo), strict=True))
        name = ":".join(v + suffix for v, (suffix, _, _) in chosen)
        levels = tuple((v, level) for v, (_, level, j) in chosen if _is_level(frame[v], j))
        numerics = tuple((v, j) for v, (_, _, j) in chosen if not _is_level(frame[v], j))
        columns.append(Column(name, levels, numerics))
    return columns


def _is_level(info, j):
    """Whether a choice of :func:`_choices` is a level indicator (not a column of values)."""
    return info.kind == "factor" and j is None


def zapsmall(x, digits=7):
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest entry."""
    x = np.asarray(x, dtype=float)
    largest = np.max(np.abs(x)) if x.size else 0.0
    if largest == 0.0:
        return x
    return np.round(x, max(0, digits - int(np.ceil(np.log10(largest)))))


def _contained_in(small, large, categorical):
    """lmerTest's ``term_contain``: variables a proper subset, the same numerics."""
    numerics = lambda t: {v for v in t if v not in categorical}  # noqa: E731
    return set(small) < set(large) and numerics(small) == numerics(large)


def type3_hypotheses(terms, columns_by_term, frame, categorical, intercept):
    """lmerTest's type III hypotheses of the fixed terms (module docstring).

    Parameters
    ----------
    terms : list of tuple
        The fixed terms in R's order.
    columns_by_term : dict of tuple -> list of Column
        Each term's model-matrix columns.
    frame : dict of str -> Variable
        The variables' values (:mod:`._formula_vars`).
    categorical : set of str
    intercept : bool

    Returns
    -------
    dict of str -> ndarray of shape (k, n_columns)
        Per term label, its hypothesis matrix over the model matrix's columns
        (the intercept first, when present).
    """
    n = len(next(iter(frame.values())).values)
    X_columns = [c for t in terms for c in columns_by_term[t]]
    X = np.column_stack(([np.ones(n)] if intercept else []) +
                        [c.values(frame) for c in X_columns])  # fmt: skip
    names = (["(Intercept)"] if intercept else []) + [c.name for c in X_columns]
    rd_columns = []
    for term in terms:  # every term in full dummy coding, as model.matrix(~ 0 + term)
        coding = {v: "dummy" for v in term if v in categorical}
        rd_columns += term_columns(term, coding, frame)
    rdX = np.column_stack(([np.ones(n)] if intercept else []) +
                          [c.values(frame) for c in rd_columns])  # fmt: skip
    rd_names = (["(Intercept)"] if intercept else []) + [c.name for c in rd_columns]
    # L = t(ginv(X) rdX): rows the columns of rdX, columns those of X
    # ginv(X) rdX from the normal equations: p x p instead of n x p
    L = zapsmall((np.linalg.pinv(X.T @ X) @ (X.T @ rdX)).T)
    offset = 1 if intercept else 0
    spans, start = {}, offset
    for term in terms:
        size = len(columns_by_term[term])
        spans[term] = list(range(start, start + size))
        start += size
    for term in sorted(terms, key=len, reverse=True):  # highest order first
        containing = [t for t in terms if _contained_in(term, t, categorical)]
        if containing:
            basis = L[:, [j for t in containing for j in spans[t]]]
            coef = np.linalg.lstsq(basis, L[:, spans[term]], rcond=None)[0]
            L[:, spans[term]] = zapsmall(L[:, spans[term]] - basis @ coef)
    rows = [rd_names.index(name) for name in names]
    L = L[rows]
    out = {}
    for term in terms:
        H = L[:, spans[term]].T
        out[":".join(term)] = H[np.abs(H).sum(axis=1) > 1e-8]
    return out
