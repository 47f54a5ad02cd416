"""The values of a formula's variables on data, with R's meaning.

A variable (:mod:`._formula_parse`) is a column name or an R expression.
:class:`Transforms` evaluates it on a DataFrame, without Python's ``eval``:

- a numeric column is numeric; a text, categorical or boolean column is a
  factor (levels in R's order, see :func:`levels_of`);
- arithmetic ``+ - * / ^``, comparisons and ``& | !`` as R computes them
  (inside ``I()`` or a function; a comparison gives a logical, which R codes
  as a factor with levels ``FALSE``/``TRUE``);
- the functions of :data:`NUMERIC_FUNCTIONS` (``log(x)``, ``log(x, 2)``,
  ``sqrt``, ``exp``, ``pmin``, ...);
- ``factor(x)`` / ``as.factor(x)``: a factor of the values (numbers sorted
  numerically, labelled as R prints them);
- ``scale(x, center = TRUE, scale = TRUE)``: ``(x - m) / s`` with the mean
  and standard deviation of the training data;
- ``poly(x, degree, raw = FALSE)``: R's orthogonal polynomials (the
  three-term recurrence, its ``alpha`` and ``norm2`` learned at fit, as
  R's ``predict`` uses them), or raw powers.

What a transform learns (levels, centers, polynomial coefficients) is kept
by the variable's R text when the data are the training data, and reused on
new data, as R's ``makepredictcall`` does; a level not seen at fit is an
error naming it.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._formula_expr import Bin, Call, Name, Num, Paren, Str, Unary, deparse, format_number

__all__ = ["NUMERIC_FUNCTIONS", "Transforms", "Variable"]


def is_numeric(series):
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def is_categorical(series):
    return (
        isinstance(series.dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(series)
        or pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
    )


def collation_key(text):
    """R's ``sort`` of text in an English locale (en_US.UTF-8, R's usual one):
    letters compared regardless of case first, lower case before upper case on
    a tie (``a < b < B < c``; not the code-point order ``B < a < b``)."""
    return (text.casefold(), text.swapcase())


def levels_of(values):
    """Levels in R's order: the categories' order, False before True, numbers
    sorted, text in R's collation (:func:`collation_key`)."""
    series = pd.Series(values) if not isinstance(values, pd.Series) else values
    present = pd.unique(series)
    if isinstance(series.dtype, pd.CategoricalDtype):
        return [c for c in series.dtype.categories if c in set(present)]
    if all(isinstance(v, str) for v in present):
        return sorted(present, key=collation_key)
    try:
        return sorted(present)
    except TypeError:
        return sorted(present, key=str)


@dataclass(frozen=True)
class Variable:
    """A variable's values: ``kind`` "numeric" (n,), "factor" (n,) labels with
    ``levels``, or "matrix" (n, k) with column-name ``suffixes``.

    A factor's ``codes`` are the positions of its rows' levels.  A factor
    coded by other contrasts than R's treatment contrasts (an ordered one:
    ``contr.poly``) also has ``contrasts`` (n, k - 1), each row's row of the
    contrast matrix, with the column-name ``suffixes`` (``.L``, ``.Q``, ...).
    """

    kind: str
    values: np.ndarray
    levels: tuple = ()
    suffixes: tuple = ()
    contrasts: np.ndarray | None = None
    codes: np.ndarray | None = None


def _unary(f):
    return lambda args, kwargs: f(_one(args, kwargs))


def _one(args, kwargs):
    if len(args) != 1 or kwargs:
        raise TypeError("takes one argument")
    return args[0]


def _log(args, kwargs):
    base = kwargs.pop("base", args[1] if len(args) > 1 else None)
    if kwargs or len(args) > 2 or not args:
        raise TypeError("takes log(x) or log(x, base)")
    return np.log(args[0]) if base is None else np.log(args[0]) / np.log(base)


def _round(args, kwargs):
    """R's ``round(x, digits)``: to the nearest of the decimal numbers, by the
    exact binary value (``round(1.85, 1)`` is 1.9), halves to even."""
    digits = kwargs.pop("digits", args[1] if len(args) > 1 else 0)
    if kwargs or len(args) > 2 or not args:
        raise TypeError("takes round(x) or round(x, digits)")
    values = np.asarray(args[0], dtype=float)
    return np.vectorize(lambda v: round(float(v), int(digits)), otypes=[float])(values)


def _parallel(f):
    def apply(args, kwargs):
        if kwargs or not args:
            raise TypeError("takes one or more vectors")
        return f.reduce(np.broadcast_arrays(*[np.asarray(a, dtype=float) for a in args]))

    return apply


NUMERIC_FUNCTIONS = {
    "I": _unary(lambda x: x),
    "as.numeric": _unary(lambda x: np.asarray(x, dtype=float)),
    "as.double": _unary(lambda x: np.asarray(x, dtype=float)),
    "as.integer": _unary(lambda x: np.trunc(np.asarray(x, dtype=float))),
    "log": _log,
    "log2": _unary(np.log2),
    "log10": _unary(np.log10),
    "log1p": _unary(np.log1p),
    "exp": _unary(np.exp),
    "expm1": _unary(np.expm1),
    "sqrt": _unary(np.sqrt),
    "abs": _unary(np.abs),
    "sign": _unary(np.sign),
    "sin": _unary(np.sin),
    "cos": _unary(np.cos),
    "tan": _unary(np.tan),
    "floor": _unary(np.floor),
    "ceiling": _unary(np.ceil),
    "trunc": _unary(np.trunc),
    "round": _round,
    "pmin": _parallel(np.minimum),
    "pmax": _parallel(np.maximum),
}
_ARITHMETIC = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "^": np.power,
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    ">": np.greater,
    "<=": np.less_equal,
    ">=": np.greater_equal,
    "&": np.logical_and,
    "&&": np.logical_and,
    "|": np.logical_or,
}
CONSTANTS = {"TRUE": True, "FALSE": False, "T": True, "F": False, "pi": np.pi}
_TERM_FUNCTIONS = ("factor", "as.factor", "ordered", "poly")
KNOWN_FUNCTIONS = frozenset(NUMERIC_FUNCTIONS) | {
    "factor", "as.factor", "ordered", "relevel", "scale", "poly", "c", "offset", "cbind",
}  # fmt: skip
SUPPORTED = (
    "column names, numbers, + - * / ^, comparisons, & | !, "
    f"{', '.join(sorted(NUMERIC_FUNCTIONS))}, factor, as.factor, ordered, relevel, scale, "
    "poly, offset"
)


def label(value):
    """A value as R's ``as.character`` writes a factor level."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return format_number(float(value))
    return str(value)


class Transforms:
    """Evaluates a formula's variables; learns transforms on the first data it sees.

    ``learning`` is True until :meth:`freeze` (after the training data):
    then levels, centers and polynomial coefficients are those learned.
    """

    def __init__(self, contrasts=None):
        self.learned = {}
        self.learning = True
        self.contrasts = dict(contrasts or {})

    def freeze(self):
        self.learning = False
        return self

    # ------------------------------------------------------------ variables
    def variable(self, node, data):
        """:class:`Variable` of a term's variable."""
        key = deparse(node)
        bare = node.inner if isinstance(node, Paren) else node
        if isinstance(bare, Name) and bare.name in data.columns:
            column = data[bare.name]  # complete: the design checks its columns first
            if is_categorical(column):
                ordered = isinstance(column.dtype, pd.CategoricalDtype) and column.dtype.ordered
                return self._factor(key, column, bool_labels=False, ordered=ordered)
            if not is_numeric(column):
                raise ValueError(f"column {key!r} is neither numeric nor categorical")
        elif isinstance(bare, Call) and bare.function in ("factor", "as.factor", "ordered"):
            values = self._factor_values(bare, data)
            given = self._given_levels(bare, key)
            # factor() of an ordered factor stays ordered, as R's factor(x)
            ordered = bare.function == "ordered" or _is_ordered(values)
            return self._factor(key, values, bool_labels=True, ordered=ordered, given=given)
        elif isinstance(bare, Call) and bare.function == "relevel":
            return self._relevel(key, bare, data)
        elif isinstance(bare, Call) and bare.function == "poly":
            return self._poly(key, bare, data)
        values = self.numeric(node, data)
        if values.dtype == bool:  # R codes a logical as a factor FALSE/TRUE
            return self._factor(key, values, bool_labels=False)
        return Variable("numeric", _finite(np.asarray(values, dtype=float), key, len(data)))

    def _factor_values(self, node, data):
        if len(node.args) != 1 or set(dict(node.kwargs)) - {"levels"}:
            raise ValueError(
                f"{deparse(node)!r}: use {node.function}(x) or {node.function}(x, levels = "
                "c(...)) (other arguments are not supported)"
            )
        inner = node.args[0]
        if isinstance(inner, Name) and inner.name in data.columns:
            return data[inner.name]
        return self.numeric(inner, data)

    def _given_levels(self, node, key):
        """The labels of ``levels = c(...)``, or None."""
        given = dict(node.kwargs).get("levels")
        if given is None:
            return None
        items = given.args if isinstance(given, Call) and given.function == "c" else (given,)
        if not all(isinstance(i, (Str, Num)) for i in items) or not items:
            raise ValueError(f'{key!r}: levels must be written c("a", "b") or c(1, 2)')
        return [i.value if isinstance(i, Str) else label(i.value) for i in items]

    def _relevel(self, key, node, data):
        """R's ``relevel(f, ref = "b")``: the factor with level ``b`` first."""
        ref = dict(node.kwargs).get("ref", node.args[1] if len(node.args) > 1 else None)
        if len(node.args) not in (1, 2) or not isinstance(ref, (Str, Num)):
            raise ValueError(f'{key!r}: use relevel(f, ref = "level")')
        inner = self.variable(node.args[0], data)
        if inner.kind != "factor":
            raise ValueError(f"{key!r}: relevel needs a factor, {deparse(node.args[0])!r} is not")
        labels = [label(v) for v in inner.levels]
        wanted = ref.value if isinstance(ref, Str) else label(ref.value)
        if wanted not in labels:
            raise ValueError(f"{key!r}: {wanted!r} is not a level; levels: {labels!r}")
        first = inner.levels[labels.index(wanted)]
        order = [first] + [v for v in inner.levels if v != first]
        return self._factor(key, inner.values, bool_labels=False, given=order)

    def _factor(self, key, values, bool_labels, ordered=False, given=None):
        order = levels_of(values)  # a Series keeps its categories' order
        values = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
        if bool_labels:  # factor(x): levels sorted by value, labelled as R prints them
            mapping = {v: label(v) for v in order}
            values = np.array([mapping[v] for v in values], dtype=object)
            present = [mapping[v] for v in order]
        else:
            present = order
        if given is not None:  # levels = c(...), relevel(): R's order, unused ones dropped
            outside = sorted(set(present) - set(given), key=str)
            if outside:
                raise ValueError(
                    f"{key!r}: value(s) {outside!r} are not among the levels given; R would "
                    "make them NA and lme4 would drop those rows: drop them first"
                )
            present = [v for v in given if v in set(present)]
        levels = self._learn(key, lambda: tuple(present))
        codes = _codes(values, levels)
        if np.any(codes < 0):
            unseen = sorted(set(values[codes < 0]), key=str)
            raise ValueError(
                f"categorical variable {key!r} has level(s) {unseen!r} not seen in the "
                f"training data; known levels: {list(levels)!r}"
            )
        kind = self.contrasts.get(key, "contr.poly" if ordered else "contr.treatment")
        if kind == "contr.treatment" or len(levels) < 2:
            return Variable("factor", values, levels, codes=codes)
        matrix, suffixes = contrast_matrix(kind, levels)
        return Variable("factor", values, levels, suffixes, matrix[codes], codes)

    def _learn(self, key, compute):
        if self.learning and key not in self.learned:
            self.learned[key] = compute()
        if key not in self.learned:
            raise ValueError(f"{key!r} was not part of the formula's fit")
        return self.learned[key]

    # ------------------------------------------------------------ poly, scale
    def _poly(self, key, node, data):
        args = dict(node.kwargs)
        positional = list(node.args) + [None] * 2
        x_node, degree_node = positional[0], args.get("degree", positional[1])
        raw = self._flag(args.get("raw"), False, key)
        degree = 1 if degree_node is None else degree_node
        if not (isinstance(degree, (int, Num)) and float(_value(degree)).is_integer()):
            raise ValueError(f"{key!r}: the degree must be a whole number")
        degree = int(_value(degree))
        if x_node is None or set(args) - {"degree", "raw"} or len(node.args) > 2 or degree < 1:
            raise ValueError(f"{key!r}: use poly(x, degree) or poly(x, degree, raw = TRUE)")
        x = np.asarray(self.numeric(x_node, data), dtype=float)
        _finite(x, key, len(data))
        suffixes = tuple(str(j) for j in range(1, degree + 1))
        if raw:
            return Variable("matrix", x[:, None] ** np.arange(1, degree + 1), (), suffixes)
        alpha, norm2 = self._learn(key, lambda: _poly_coefficients(x, degree, key))
        return Variable("matrix", _poly_values(x, alpha, norm2), (), suffixes)

    def _scale(self, key, node, data):
        args = dict(node.kwargs)
        if len(node.args) != 1 or set(args) - {"center", "scale"}:
            raise ValueError(f"{key!r}: use scale(x, center = TRUE, scale = TRUE)")
        x = np.asarray(self.numeric(node.args[0], data), dtype=float)

        def learn():
            center = self._flag_or_number(args.get("center"), x.mean(), key)
            spread = np.sqrt(np.sum((x - center) ** 2) / max(len(x) - 1, 1))
            return center, self._flag_or_number(args.get("scale"), spread, key, off=1.0)

        center, spread = self._learn(key, learn)
        return (x - center) / spread

    def _flag(self, node, default, key):
        if node is None:
            return default
        if isinstance(node, Name) and node.name in CONSTANTS:
            return bool(CONSTANTS[node.name])
        raise ValueError(f"{key!r}: expected TRUE or FALSE, got {deparse(node)!r}")

    def _flag_or_number(self, node, learned, key, off=0.0):
        if isinstance(node, Num):
            return node.value
        return learned if self._flag(node, True, key) else off

    # ------------------------------------------------------------ arithmetic
    def numeric(self, node, data):
        """Numbers (or logicals) of an R expression on ``data``."""
        if isinstance(node, Paren):
            return self.numeric(node.inner, data)
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Name):
            return self._column(node.name, data)
        if isinstance(node, Unary):
            value = self.numeric(node.operand, data)
            if node.op == "!":
                return np.logical_not(value)
            return -np.asarray(value, dtype=float) if node.op == "-" else value
        if isinstance(node, Bin) and node.op in ("==", "!=") and _has_text(node):
            left, right = self._labels(node.left, data), self._labels(node.right, data)
            return (left == right) if node.op == "==" else (left != right)
        if isinstance(node, Bin) and node.op in _ARITHMETIC:
            left, right = self.numeric(node.left, data), self.numeric(node.right, data)
            if node.op in ("+", "-", "*", "/", "^"):
                left, right = np.asarray(left, dtype=float), np.asarray(right, dtype=float)
            with np.errstate(all="ignore"):
                return _ARITHMETIC[node.op](left, right)
        if isinstance(node, Call):
            return self._call(node, data)
        raise ValueError(
            f"{deparse(node)!r} is not supported in an R expression here; supported: {SUPPORTED}"
        )

    def _labels(self, node, data):
        """Text of a comparison with a string: a factor's labels, or the string."""
        if isinstance(node, Str):
            return node.value
        if isinstance(node, Name) and node.name in data.columns and is_categorical(data[node.name]):
            _check_complete(data[node.name], node.name)
            return np.array([label(v) for v in data[node.name]], dtype=object)
        return np.array([label(v) for v in np.ravel(self.numeric(node, data))], dtype=object)

    def _codes(self, node, data):
        """R's ``as.numeric(f)`` of a factor: its level codes 1..k (None: not a factor)."""
        if len(node.args) != 1 or node.kwargs:
            return None
        arg = node.args[0]
        column = isinstance(arg, Name) and arg.name in data.columns
        if (column and is_categorical(data[arg.name])) or (
            isinstance(arg, Call) and arg.function in ("factor", "as.factor", "ordered", "relevel")
        ):
            variable = self.variable(arg, data)
            if variable.kind == "factor":
                return variable.codes + 1.0
        return None

    def _call(self, node, data):
        key = deparse(node)
        if node.function == "scale":
            return self._scale(key, node, data)
        if node.function in ("as.numeric", "as.double", "as.integer"):
            codes = self._codes(node, data)
            if codes is not None:
                return codes
        if node.function in _TERM_FUNCTIONS:
            raise ValueError(f"{key!r} gives a factor or a matrix: use it as a term, not inside "
                             "an expression")  # fmt: skip
        if node.function not in NUMERIC_FUNCTIONS:
            hint = " (write R's names: log(x), not np.log(x); factor(f), not C(f))"
            raise ValueError(f"unknown function {node.function!r} in {key!r}{hint}; "
                             f"supported: {SUPPORTED}")  # fmt: skip
        args = [self.numeric(a, data) for a in node.args]
        kwargs = {k: self.numeric(v, data) for k, v in node.kwargs}
        try:
            with np.errstate(all="ignore"):
                return NUMERIC_FUNCTIONS[node.function](args, kwargs)
        except TypeError as exc:
            raise ValueError(f"{key!r}: {node.function}() {exc}") from None

    def _column(self, name, data):
        if name not in data.columns:
            if name in CONSTANTS:
                return CONSTANTS[name]
            raise ValueError(
                f"column {name!r} of the formula is not in the data; available columns: "
                f"{[str(c) for c in data.columns]!r}"
            )
        column = data[name]
        _check_complete(column, name)
        if pd.api.types.is_bool_dtype(column):
            return column.to_numpy(dtype=bool)
        if not is_numeric(column):
            raise ValueError(
                f"column {name!r} is categorical (dtype {column.dtype}); arithmetic and "
                f"functions need numbers: use it as a term, compare it with a level "
                f'({name} == "a"), or as.numeric({name}) for its level codes'
            )
        return column.to_numpy(dtype=float)


def _codes(values, levels):
    """Position of each value among ``levels`` (-1: not a level), by the distinct values."""
    codes, uniques = pd.factorize(values)
    position = {level: i for i, level in enumerate(levels)}
    lookup = np.array([position.get(u, -1) for u in uniques] + [-1], dtype=np.intp)
    return lookup[codes]


def _is_ordered(values):
    return isinstance(getattr(values, "dtype", None), pd.CategoricalDtype) and values.dtype.ordered


def _has_text(node):
    """Whether a comparison involves a string (``f == "a"``)."""
    return isinstance(node.left, Str) or isinstance(node.right, Str)


def _value(node):
    return node.value if isinstance(node, Num) else node


def _check_complete(column, name):
    if not column.hasnans:  # cheap: most columns
        return
    missing = int(column.isna().sum())
    if missing:
        raise ValueError(
            f"missing values (NaN/None) in column {name!r} used by the formula ({missing} "
            f"rows); nothing is dropped silently: drop or impute them first, e.g. "
            f"data.dropna(subset=[{name!r}])."
        )


def _finite(values, key, n):
    values = np.broadcast_to(values, (n,) + np.shape(values)[1:]).astype(float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"{key!r} is not finite (NaN or infinite) in {int(bad.reshape(n, -1).any(1).sum())} "
            "rows, e.g. log of 0 or of a negative number"
        )
    return values


def _poly_coefficients(x, degree, key):
    """R's ``poly`` coefficients: ``alpha`` (degree) and ``norm2`` (degree + 2).

    Monic orthogonal polynomials by the Stieltjes recurrence,
    ``P[j+1] = (x - alpha[j]) P[j] - (N[j] / N[j-1]) P[j-1]`` with
    ``N[j] = sum(P[j]^2)`` and ``alpha[j] = sum(x P[j]^2) / N[j]``; R stores
    ``norm2 = (1, N[0], ..., N[degree])``.
    """
    if degree >= len(np.unique(x)):
        raise ValueError(f"{key!r}: the degree must be less than the number of unique points")
    alpha, norm2 = np.zeros(degree), np.ones(degree + 2)
    previous, current = np.zeros_like(x), np.ones_like(x)
    for j in range(degree + 1):
        norm2[j + 1] = np.sum(current**2)
        if j == degree:
            break
        alpha[j] = np.sum(x * current**2) / norm2[j + 1]
        ratio = norm2[j + 1] / norm2[j]
        previous, current = current, (x - alpha[j]) * current - ratio * previous
    return alpha, norm2


def _poly_values(x, alpha, norm2):
    """R's ``predict(poly)``: the three-term recurrence, scaled to unit norm at fit."""
    degree = len(alpha)
    Z = np.ones((len(x), degree + 1))
    Z[:, 1] = x - alpha[0]
    for i in range(1, degree):
        Z[:, i + 1] = (x - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
    return Z[:, 1:] / np.sqrt(norm2[2:])


CONTRASTS = ("contr.treatment", "contr.sum", "contr.helmert", "contr.poly", "contr.SAS")


def contrast_matrix(kind, levels):
    """R's contrast matrix of a factor's ``levels`` (rows) and its column-name suffixes.

    ``contr.sum``: the first k-1 levels against minus their sum (suffixes
    ``1``..``k-1``); ``contr.helmert``: each level against the mean of the
    previous ones; ``contr.poly``: orthonormal polynomials (``.L``, ``.Q``,
    ...); ``contr.SAS``: treatment contrasts against the last level.
    """
    k = len(levels)
    numbered = tuple(str(j) for j in range(1, k))
    if kind == "contr.sum":
        return np.vstack([np.eye(k - 1), -np.ones(k - 1)]), numbered
    if kind == "contr.helmert":
        H = np.zeros((k, k - 1))
        for j in range(1, k):
            H[:j, j - 1], H[j, j - 1] = -1.0, j
        return H, numbered
    if kind == "contr.poly":
        return contr_poly(k), _poly_names(k)
    if kind == "contr.SAS":
        return np.eye(k)[:, : k - 1], tuple(label(v) for v in levels[:-1])
    raise ValueError(f"unknown contrasts {kind!r}; one of {CONTRASTS}")


def contr_poly(k):
    """R's ``contr.poly(k)``: orthonormal polynomial contrasts of ``k`` ordered levels
    (scores 1..k), one column per degree 1..k-1."""
    scores = np.arange(1.0, k + 1)
    alpha, norm2 = _poly_coefficients(scores, k - 1, "contr.poly")
    return _poly_values(scores, alpha, norm2)


def _poly_names(k):
    """R's names of the polynomial contrasts: ``.L``, ``.Q``, ``.C``, ``^4``, ..."""
    return tuple([".L", ".Q", ".C"][: k - 1] + [f"^{d}" for d in range(4, k)])
