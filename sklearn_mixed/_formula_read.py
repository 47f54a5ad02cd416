"""An lme4 formula read on training data: the design it learns and applies to new data.

:func:`read_formula` parses the formula (:mod:`._formula_parse`), evaluates
its variables (:mod:`._formula_vars`), codes them as R's ``model.matrix``
(:mod:`._formula_design`) and says how the estimators are configured.  The
returned :class:`FormulaDesign` keeps what it learned (levels, ``poly`` and
``scale`` coefficients), so that new data get the same columns.
"""

import itertools
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ._formula_design import term_codings, term_columns, type3_hypotheses, zapsmall
from ._formula_expr import Call, Name, walk
from ._formula_parse import parse_formula
from ._formula_vars import CONSTANTS, CONTRASTS, KNOWN_FUNCTIONS, SUPPORTED, Transforms, label

__all__ = ["SET_BY_FORMULA", "FormulaDesign", "read_formula"]

SET_BY_FORMULA = (
    "random_slopes",
    "covariance",
    "random_effects",
    "fixed_features",
    "fixed_terms",
    "fit_intercept",
    "group_cols",
)


def column_or_values(value, data, what):
    """A column of ``data`` by name, or the values given (lme4's ``weights``, ``offset``)."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in data.columns:
            raise ValueError(f"{what} names column {value!r}, which is not in the data")
        return data[value].to_numpy(dtype=float)
    values = np.asarray(value, dtype=float).reshape(-1)
    if values.shape[0] != len(data):
        raise ValueError(f"{what} has {values.shape[0]} values for {len(data)} rows")
    return values


OFFSET_COLUMN = "(offset)"


def with_offset(formula, data, offset):
    """lme4's ``offset =`` argument as a term of the formula: ``(formula, data)``."""
    values = column_or_values(offset, data, "offset")
    if values is None:
        return formula, data
    return f"{formula} + offset(`{OFFSET_COLUMN}`)", data.assign(**{OFFSET_COLUMN: values})


def refuse_row_selection(params):
    """lme4's ``subset`` and ``na.action``: rows are selected in the data first."""
    for name in ("subset", "na_action", "na.action"):
        if name in params:
            raise ValueError(
                f"{name}= is not supported: select the rows of the data first, e.g. "
                "data[data['x'] > 0] or data.dropna(subset=[...]) (nothing is dropped "
                "silently)"
            )


def check_data(data, formula):
    if not isinstance(data, pd.DataFrame):
        raise TypeError(
            f"the data of formula {formula!r} must be a pandas DataFrame with the formula's "
            f"columns, got {type(data).__name__}"
        )
    return data


@dataclass(frozen=True, eq=False)
class FormulaDesign:
    """What a formula learned on its training data, to apply to new data.

    ``fixed`` are the fixed-effect columns, ``extra`` the covariates of
    random effects that are not fixed-effect columns; ``transforms`` the
    frozen variable evaluator (levels, ``poly`` and ``scale`` coefficients)
    of the fixed part, ``random_transforms`` that of the random terms (the
    same one unless ``contrasts`` are given: lme4 applies them to the fixed
    part only).
    """

    parsed: object  # ParsedFormula
    transforms: Transforms
    fixed: tuple
    extra: tuple
    random: dict  # factor -> list of blocks of Column (None: the intercept)
    random_transforms: Transforms

    @property
    def formula(self):
        return self.parsed.text

    @property
    def group_names(self):
        return list(self.parsed.random)

    def frame(self, data, columns, transforms):
        """``{variable: Variable}`` of the variables of ``columns`` on ``data``."""
        needed = {v for c in columns for v, _ in c.factors + c.numerics}
        nodes = self.parsed.variables
        return {v: transforms.variable(nodes[v], data) for v in nodes if v in needed}

    @property
    def counts_response(self):
        """Whether the response is ``cbind(successes, failures)``."""
        name = self.parsed.response
        return name is not None and _is_cbind(self.parsed.variables[name])

    def features(self, data):
        """Fixed-effect columns, then the other random-effect covariates, named as R."""
        check_data(data, self.formula)
        _check_columns(self.parsed, data, ("fixed",))
        fixed = self.frame(data, self.fixed, self.transforms)
        other = self.frame(data, self.extra, self.random_transforms) if self.extra else {}
        return self._matrix(fixed, other, data.index)

    def _matrix(self, fixed, other, index):
        """The features from the variables of the fixed part and of the random terms."""
        values = {c.name: c.values(fixed) for c in self.fixed}
        values.update({c.name: c.values(other) for c in self.extra})
        names = [c.name for c in self.fixed + self.extra]
        return pd.DataFrame(values, index=index, columns=names)

    def groups(self, data, factors=None):
        """One column per grouping factor (``factors``: those only); ``a:b`` holds
        the combined labels ``"<a>:<b>"``."""
        check_data(data, self.formula)
        factors = self.group_names if factors is None else list(factors)
        random = {name: self.parsed.random[name] for name in factors}
        nodes = self.parsed.variables
        needed = [n for variables, _ in random.values() for v in variables
                  for n in ([v] if isinstance(nodes[v], Name) else _names(nodes[v]))]  # fmt: skip
        missing = [n for n in dict.fromkeys(needed) if n not in data.columns]
        if missing:
            raise ValueError(
                f"grouping column(s) {missing!r} are not in the data; add them, or predict "
                "without those factors' random effects with random_effects=[...] (lme4's "
                "re.form)"
            )
        columns = {}
        for name, (variables, _) in random.items():
            parts = [self._labels(v, data) for v in variables]
            if len(parts) == 1:
                columns[name] = parts[0]
            else:
                text = [p.astype(str) for p in parts]
                columns[name] = text[0].str.cat(text[1:], sep=":")
        return pd.DataFrame(columns, index=data.index)

    def _labels(self, variable, data):
        """A grouping factor's labels; an expression's values as R prints them
        (new levels are new groups, not errors)."""
        if variable in data.columns:
            return data[variable]
        node = _grouping_expression(self.parsed.variables[variable])
        if isinstance(node, Name) and node.name in data.columns:
            return data[node.name].rename(variable)
        values = np.broadcast_to(self.transforms.numeric(node, data), (len(data),))
        return pd.Series([label(v) for v in values], index=data.index, name=variable)

    def offset(self, data):
        """The sum of the formula's ``offset(...)`` terms on ``data`` (None without)."""
        if not self.parsed.fixed.offsets:
            return None
        total = np.zeros(len(data))
        for node in self.parsed.fixed.offsets:
            total = total + np.asarray(self.transforms.numeric(node, data), dtype=float)
        if not np.all(np.isfinite(total)):
            raise ValueError("the formula's offset(...) is not finite on some rows")
        return total

    def counts(self, data):
        """``(successes, failures)`` of a ``cbind(s, f)`` response (None otherwise)."""
        name = self.parsed.response
        node = None if name is None else self.parsed.variables[name]
        if not _is_cbind(node):
            return None
        if len(node.args) != 2 or node.kwargs:
            raise ValueError(f"{name!r}: the response reads cbind(successes, failures)")
        if not set(_names(node)) <= set(data.columns):
            return None
        s, f = (np.asarray(self.transforms.numeric(a, data), dtype=float) for a in node.args)
        return np.broadcast_to(s, (len(data),)), np.broadcast_to(f, (len(data),))

    def response(self, data):
        """The left-hand side on ``data`` (None when its columns are absent)."""
        name = self.parsed.response
        if name is None:
            return None
        node = self.parsed.variables[name]
        if _is_cbind(node):
            raise ValueError(
                f"the response {name!r} (binomial counts) needs a binomial GLMM: "
                "GlmerClassifier or glmer(..., family='binomial')"
            )
        try:
            value = self.transforms.numeric(node, data) if name not in data.columns else None
        except ValueError:
            if not set(_names(node)) <= set(data.columns):
                return None
            raise
        if value is None:
            return data[name]
        return pd.Series(np.broadcast_to(value, (len(data),)), index=data.index, name=name)


def _is_cbind(node):
    return isinstance(node, Call) and node.function == "cbind"


def _names(node):
    """Column-like names an expression reads."""
    return [n.name for n in walk(node) if isinstance(n, Name)]


def _random_blocks(factor, blocks, frame, categorical):
    """Each lme4 term of a factor as the :class:`Column` list of its covariates
    (``None`` for the intercept); a slope may be any numeric or categorical term."""
    out = []
    for block in blocks:
        slopes = list(block.slopes)
        codings = term_codings(slopes, categorical, block.intercept)
        columns = [None] if block.intercept else []
        for term in slopes:
            columns += term_columns(term, codings[term], frame)
        if not columns:
            raise ValueError(f"random-effect term {block.source!r} of {factor!r} is empty")
        out.append(columns)
    return out


def _classic_parameters(random, fixed_names):
    """``random_slopes`` and ``covariance`` when every factor has an intercept and
    either one correlated term or independent one-covariate terms, all of them
    fixed-effect columns (the estimator's short form); else None."""
    slopes, covariance = {}, {}
    for name, columns in random.items():
        names = [[None if c is None else c.name for c in block] for block in columns]
        flat = [n for block in names for n in block]
        if None not in flat or any(n not in fixed_names for n in flat if n is not None):
            return None
        if len(names) == 1 and names[0][0] is None:
            covariance[name] = "unstructured"
        elif all(len(block) == 1 for block in names):
            covariance[name] = "diagonal"
        else:
            return None
        slopes[name] = [n for n in flat if n is not None]
    return slopes, covariance


def _mapped_type3(terms, by_term, frame, categorical, intercept):
    """lmerTest's type III hypotheses for factors coded by other contrasts than
    treatment (``get_contrasts_type3``): the hypotheses ``L_t`` of the same terms
    in treatment coding ``X_t``, mapped to the model's columns ``X``,
    ``L = L_t zapsmall(X_t^+ X)``."""
    treatment = {
        v: replace(info, contrasts=None, suffixes=()) if info.kind == "factor" else info
        for v, info in frame.items()
    }
    codings = term_codings(terms, categorical, intercept)
    by_term_t = {t: term_columns(t, codings[t], treatment) for t in terms}
    hypotheses = type3_hypotheses(terms, by_term_t, treatment, categorical, intercept)

    def matrix(columns, values):
        n = len(next(iter(values.values())).values)
        return np.column_stack([np.ones(n)] * intercept + [c.values(values) for c in columns])

    X_t = matrix([c for t in terms for c in by_term_t[t]], treatment)
    X = matrix([c for t in terms for c in by_term[t]], frame)
    mapping = zapsmall(np.linalg.pinv(X_t) @ X)
    out = {}
    for term, L in hypotheses.items():
        L = zapsmall(L @ mapping)
        out[term] = L[np.abs(L).sum(axis=1) > 1e-8]
    return out


def _fixed_terms(fixed, by_term, frame, categorical):
    """``fixed_terms`` of the estimator: per term its column names, or lmerTest's type
    III hypothesis matrix for a term contained in an interaction."""
    terms = list(fixed.terms)
    if not terms:
        return None
    if any(frame[v].contrasts is not None for t in terms for v in t):
        matrices = _mapped_type3(terms, by_term, frame, categorical, fixed.intercept)
    else:
        matrices = type3_hypotheses(terms, by_term, frame, categorical, fixed.intercept)
    out = {}
    names = (["(Intercept)"] if fixed.intercept else []) + [
        c.name for t in terms for c in by_term[t]
    ]
    for term in terms:
        label, columns = ":".join(term), [c.name for c in by_term[term]]
        plain = np.zeros((len(columns), len(names)))
        plain[np.arange(len(columns)), [names.index(c) for c in columns]] = 1.0
        H = matrices[label]
        same = H.shape == plain.shape and np.allclose(H, plain, atol=1e-12)
        out[label] = columns if same else H
    return out


def _evaluate(parsed, data, contrasts):
    """The transforms (fixed part, random terms) and the frames of their covariates;
    lme4 applies ``contrasts`` to the fixed part only."""
    contrasts = _check_contrasts(contrasts, parsed)
    transforms = Transforms(contrasts)
    random_transforms = Transforms() if contrasts else transforms
    fixed = list(dict.fromkeys(itertools.chain(*parsed.fixed.terms)))
    slopes = [v for _, blocks in parsed.random.values() for b in blocks for t in b.slopes
              for v in t]  # fmt: skip
    frame = {v: transforms.variable(parsed.variables[v], data) for v in fixed}
    random_frame = {
        v: random_transforms.variable(parsed.variables[v], data) for v in dict.fromkeys(slopes)
    }
    # learn the transforms of the other expressions: response, offsets, groups
    response = parsed.response
    if response is not None and response not in data.columns:
        node = parsed.variables[response]
        if set(_names(node)) <= set(data.columns):
            for part in node.args if _is_cbind(node) else [node]:
                transforms.numeric(part, data)
    for node in parsed.fixed.offsets:
        transforms.numeric(node, data)
    for v in parsed.grouping_variables:
        if v not in data.columns:
            transforms.numeric(_grouping_expression(parsed.variables[v]), data)
    return transforms, random_transforms, frame, random_frame


def _grouping_expression(node):
    """The expression whose values label a grouping factor (``factor(x)``: ``x``)."""
    if isinstance(node, Call) and node.function in ("factor", "as.factor", "ordered") and node.args:
        return node.args[0]
    return node


def check_functions(parsed):
    """Every function of the formula is one the reader knows (before any column check)."""
    nodes = list(parsed.variables.values()) + list(parsed.fixed.offsets)
    for function in dict.fromkeys(f for node in nodes for f in _functions(node)):
        if function in KNOWN_FUNCTIONS:
            continue
        hint = {
            "C": "; R's C(f, contrasts) is the contrasts parameter here, e.g. "
            "LmerRegressor(formula, contrasts={'f': 'contr.sum'})",
        }.get(function, "; write R's names: log(x), not np.log(x)")
        raise ValueError(
            f"unknown function {function!r} in formula {parsed.text!r}{hint}; supported: "
            f"{SUPPORTED}"
        )


def _functions(node):
    return [n.function for n in walk(node) if isinstance(n, Call)]


def _check_columns(parsed, data, which=("fixed", "groups", "response")):
    """The columns the formula reads (``which`` parts) are in ``data``, without
    missing values."""
    nodes, names = parsed.variables, []
    if "fixed" in which:
        covariates = [v for t in parsed.fixed.terms for v in t]
        for _, blocks in parsed.random.values():
            covariates += [v for block in blocks for t in block.slopes for v in t]
        for v in dict.fromkeys(covariates):
            names += _names(nodes[v])
        for node in parsed.fixed.offsets:
            names += _names(node)
    if "groups" in which:
        for v in parsed.grouping_variables:
            names += [v] if isinstance(nodes[v], Name) else _names(nodes[v])
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in data.columns and n not in CONSTANTS]
    if unknown:
        raise ValueError(
            f"column(s) {unknown!r} of formula {parsed.text!r} not found in data; available "
            f"columns ({data.shape[1]} feature(s)): {[str(c) for c in data.columns]!r}"
        )
    response = []
    if "response" in which and parsed.response is not None:
        response = [n for n in _names(parsed.variables[parsed.response]) if n in data.columns]
    used = [data[n] for n in dict.fromkeys(names + response) if n in data.columns]
    missing = {c.name: int(c.isna().sum()) for c in used if c.hasnans}
    if missing:
        raise ValueError(
            f"missing values (NaN/None) in column(s) used by the formula, count per column: "
            f"{missing!r}; nothing is dropped silently: drop or impute them first, e.g. "
            f"data.dropna(subset={list(missing)!r})."
        )


def _check_single_levels(frame, parsed):
    for v, info in frame.items():
        if info.kind == "factor" and len(info.levels) < 2:
            if any(v in t for t in parsed.fixed.terms):
                raise ValueError(
                    f"categorical variable {v!r} has a single level {list(info.levels)!r}; a "
                    "fixed effect needs at least 2 (drop it from the formula)."
                )


def _random_parameters(random, fixed_names, extra):
    """The estimator's random-effect parameters: the short form (``random_slopes``,
    ``covariance``) when it says it all, else ``random_effects`` (and
    ``fixed_features`` when some covariates are not fixed effects)."""
    classic = None if extra else _classic_parameters(random, fixed_names)
    if classic is not None:
        return dict(zip(("random_slopes", "covariance"), classic, strict=True))
    params = {
        "random_effects": {
            name: [["1" if c is None else c.name for c in block] for block in columns]
            for name, columns in random.items()
        }
    }
    if extra:
        params["fixed_features"] = fixed_names
    return params


def _check_contrasts(contrasts, parsed):
    """lme4's ``contrasts = list(f = "contr.sum")``: names of the formula's variables."""
    contrasts = dict(contrasts or {})
    unknown = [v for v in contrasts if v not in parsed.variables]
    bad = {v: c for v, c in contrasts.items() if c not in CONTRASTS}
    if unknown or bad:
        raise ValueError(
            f"contrasts must map variables of the formula ({list(parsed.variables)!r}) to one "
            f"of {CONTRASTS}; got unknown variable(s) {unknown!r}, values {bad!r}"
        )
    return contrasts


def read_formula(formula, data, estimator_params=(), contrasts=None):
    """``(design, estimator parameters, features)`` of an lme4 formula on training
    data (the features evaluated once, as ``design.features(data)``); ``contrasts``
    codes the named factors (lme4's ``contrasts`` argument)."""
    conflicts = [p for p in SET_BY_FORMULA if p in estimator_params]
    if conflicts:
        raise ValueError(
            f"{conflicts!r} are set by the formula; write them there, e.g. (x || g) for "
            "independent slopes or 0 + ... for no intercept."
        )
    parsed = parse_formula(formula)
    check_functions(parsed)
    check_data(data, formula)
    if len(data) == 0:
        raise ValueError("the data have no rows")
    _check_columns(parsed, data)
    transforms, random_transforms, frame, random_frame = _evaluate(parsed, data, contrasts)
    unused = [v for v in transforms.contrasts if frame.get(v, None) is None
              or frame[v].kind != "factor"]  # fmt: skip
    if unused:
        raise ValueError(
            f"contrasts name {unused!r}, which are not factors of the formula's fixed part"
        )
    transforms.freeze()
    random_transforms.freeze()
    _check_single_levels(frame, parsed)
    categorical = {v for v, info in frame.items() if info.kind == "factor"}
    random_categorical = {v for v, info in random_frame.items() if info.kind == "factor"}
    fixed = parsed.fixed
    codings = term_codings(list(fixed.terms), categorical, fixed.intercept)
    by_term = {t: term_columns(t, codings[t], frame) for t in fixed.terms}
    fixed_columns = [c for t in fixed.terms for c in by_term[t]]
    random = {
        name: _random_blocks(name, blocks, random_frame, random_categorical)
        for name, (_, blocks) in parsed.random.items()
    }
    fixed_names = [c.name for c in fixed_columns]
    extra = {
        c.name: c
        for columns in random.values()
        for block in columns
        for c in block
        if c is not None and c.name not in fixed_names
    }
    design = FormulaDesign(parsed, transforms, tuple(fixed_columns), tuple(extra.values()),
                           random, random_transforms)  # fmt: skip
    params = _random_parameters(random, fixed_names, extra)
    params["fit_intercept"] = fixed.intercept
    params["fixed_terms"] = _fixed_terms(fixed, by_term, frame, categorical)
    return design, params, design._matrix(frame, random_frame, data.index)
