"""lme4 formulas as terms, without data (used by :mod:`sklearn_mixed.formula`).

The formula is parsed into a syntax tree (:mod:`._formula_expr`) and read
with R's term algebra (``?formula``): ``a + b``; ``a:b`` (interaction) and
``a %in% b``; ``a*b = a + b + a:b``; ``a/b = a + a:b``; ``(a + b)^2 = a + b
+ a:b``; ``- term`` removes a term; ``1``, ``0`` and ``-1`` add or remove the
intercept, the last one written winning (``0 + x + 1`` has an intercept);
``offset(z)`` adds a known term.  Every other piece (a column name, ``log(x)``,
``I(x^2)``, ``poly(x, 2)``, ``factor(f)``) is a *variable*, named by its R
text (:func:`._formula_expr.deparse`), as R names it.

A term is a tuple of variable names, its variables in the order they first
appear in the formula; terms are ordered by degree (main effects, then
two-way interactions, ...), keeping the written order within a degree, as
R's ``terms`` orders them.  Random-effect terms ``(lhs | g)`` and ``(lhs ||
g)`` are read by the same algebra on their left side, with ``g``, ``a:b`` or
``a/b`` (= ``a`` and ``a:b``) as grouping factors.
"""

from dataclasses import dataclass, field

from ._formula_expr import (
    Bin,
    Call,
    Name,
    Num,
    Paren,
    Unary,
    deparse,
    parse_expression,
    strip_parens,
    walk,
)

__all__ = ["FixedPart", "ParsedFormula", "RandomBlock", "parse_formula"]

SUPPORTED_RANDOM = (
    "supported random-effect terms are (1 | g), (x | g) = (1 + x | g), (x1 + x2 | g), "
    "(0 + x | g), (0 + f | g) with f categorical, (x || g) = (1 | g) + (0 + x | g), "
    "(1 | a/b) = (1 | a) + (1 | a:b) and (1 | a:b); x may be any variable of the fixed "
    "part's syntax, e.g. log(Time) or I(Time^2)"
)


@dataclass
class _Reader:
    """Reads term algebra; records every variable (name -> node) in order of appearance."""

    text: str
    variables: dict = field(default_factory=dict)
    seen: list = field(default_factory=list)  # every variable read, in reading order

    def error(self, node, message):
        return ValueError(f"formula {self.text!r}: {deparse(node)!r} {message}")

    def variable(self, node):
        if isinstance(node, Name) and node.name == ".":
            raise self.error(node, "(all other columns) is not supported; name the columns")
        key = deparse(node)
        self.variables.setdefault(key, node)
        self.seen.append(key)
        return [(key,)]

    def terms(self, node):
        """The terms of a formula expression (no intercept, offsets or bars inside)."""
        if isinstance(node, Paren):
            return self.terms(node.inner)
        if isinstance(node, Bin) and node.op in ("+", "-"):
            terms = list(self.terms(node.left))
            _add_terms(terms, self.terms(node.right), 1 if node.op == "+" else -1)
            return terms
        if isinstance(node, Bin) and node.op in (":", "%in%"):
            return _product(self.terms(node.left), self.terms(node.right))
        if isinstance(node, Bin) and node.op == "*":
            left, right = self.terms(node.left), self.terms(node.right)
            return _union(left, right, _product(left, right))
        if isinstance(node, Bin) and node.op == "/":  # a/b = a + (all of a):b
            left = self.terms(node.left)
            whole = [tuple(dict.fromkeys(v for t in left for v in t))]
            return _union(left, _product(whole, self.terms(node.right)))
        if isinstance(node, Bin) and node.op == "^":
            return self._power(node)
        if isinstance(node, (Num, Unary)) or (
            isinstance(node, Bin) and node.op in ("|", "||", "~")
        ):
            raise self.error(node, "cannot be a term here: 0, 1 and -1 stand alone at the top "
                             "level of a formula side, random terms are (... | g)")  # fmt: skip
        if isinstance(node, Bin):
            raise self.error(node, f"uses {node.op!r} outside a function: in a formula, "
                             "arithmetic goes inside I(), e.g. I(x * z) or I(x > 6)")  # fmt: skip
        return self.variable(node)

    def _power(self, node):
        k = node.right
        if not (isinstance(k, Num) and k.value.is_integer() and k.value >= 1):
            raise self.error(node, "needs a positive whole power; for x squared write I(x^2)")
        base = self.terms(node.left)
        out = base
        for _ in range(int(k.value) - 1):
            out = _union(out, base, _product(out, base))
        return out

    def side(self, node, what):
        """``(intercept, terms, offsets)`` of a sum such as ``0 + x + offset(z) + 1``."""
        intercept, terms, offsets = True, [], []
        for sign, part in _summands(node):
            bare = strip_parens(part)
            if isinstance(bare, Num) and bare.value in (0.0, 1.0):
                intercept = (bare.value == 1.0) == (sign > 0)
            elif isinstance(bare, Call) and bare.function == "offset":
                if sign < 0 or len(bare.args) != 1 or bare.kwargs or what != "fixed":
                    raise self.error(bare, "must be added once, with one argument, in the "
                                     "fixed part: + offset(z)")  # fmt: skip
                offsets.append(bare.args[0])
            else:
                _add_terms(terms, self.terms(part), sign)
        return intercept, terms, offsets


def _summands(node):
    """``[(sign, node)]`` of a top-level sum, leading unary signs included."""
    if isinstance(node, Bin) and node.op in ("+", "-"):
        sign = 1 if node.op == "+" else -1
        right = _summands(node.right) if isinstance(node.right, Unary) else [(1, node.right)]
        return _summands(node.left) + [(sign * s, n) for s, n in right]
    if isinstance(node, Unary) and node.op in ("+", "-"):
        sign = 1 if node.op == "+" else -1
        return [(sign * s, n) for s, n in _summands(node.operand)]
    return [(1, node)]


def _union(*lists):
    terms = []
    for new in lists:
        _add_terms(terms, new, 1)
    return terms


def _product(left, right):
    return _union([tuple(dict.fromkeys(a + b)) for a in left for b in right])


def _add_terms(terms, new, sign):
    """Add (sign 1) or remove (sign -1) ``new`` terms; a term is a set of variables."""
    for term in new:
        keys = [frozenset(t) for t in terms]
        key = frozenset(term)
        if sign > 0 and key not in keys:
            terms.append(term)
        elif sign < 0 and key in keys:
            del terms[keys.index(key)]


def _in_r_order(terms, variables):
    """Variables of each term in order of appearance; terms by degree (stable)."""
    rank = {v: i for i, v in enumerate(variables)}
    terms = [tuple(sorted(t, key=rank.get)) for t in terms]
    return tuple(sorted(terms, key=len))


# ---------------------------------------------------------------------------
# parts of the formula


@dataclass(frozen=True)
class FixedPart:
    intercept: bool
    terms: tuple  # variable-name tuples in R's order
    offsets: tuple = ()  # nodes of offset(...) arguments


@dataclass(frozen=True)
class RandomBlock:
    """One lme4 bar term, ``(1 + x | g)``: one covariance block of one factor."""

    factor: tuple  # grouping variable names, ("a", "b") for a:b
    intercept: bool
    slopes: tuple  # variable-name tuples
    source: str


@dataclass(frozen=True)
class ParsedFormula:
    response: str | None  # variable name of the left side (None: no left side)
    fixed: FixedPart
    random: dict  # factor label -> (grouping variables, tuple of RandomBlock)
    variables: dict  # variable name -> syntax node, in order of appearance
    text: str = ""

    @property
    def grouping_variables(self):
        return list(dict.fromkeys(v for factor, _ in self.random.values() for v in factor))


def _is_bar(node):
    return isinstance(node, Bin) and node.op in ("|", "||")


def _contains_bar(node):
    """A bar outside function calls (inside one, ``I(a | b)``, it is R's logical or)."""
    return _contains(node, "|", "||", into_calls=False)


def _contains(node, *ops, into_calls=True):
    return any(isinstance(n, (Bin, Unary)) and n.op in ops for n in walk(node, into_calls))


def _parse_random(reader, node):
    """The blocks of one bar term: ``(x || g)`` and ``(1 | a/b)`` give several."""
    source = deparse(node)
    start = len(reader.seen)
    try:
        intercept, slopes, _ = reader.side(node.left, "random")
    except ValueError as exc:
        raise ValueError(f"{exc}; {SUPPORTED_RANDOM}") from None
    # lme4 reads the bar's left side as a formula of its own: its variable order
    slopes = _in_r_order(slopes, list(dict.fromkeys(reader.seen[start:])))
    factors = _grouping_factors(reader, node.right, source)
    if node.op == "||":  # (x || g) = (1 | g) + (0 + x | g)
        singles = [(True, ())] if intercept else []
        singles += [(False, (s,)) for s in slopes]
    else:
        singles = [(intercept, tuple(slopes))]
    return [RandomBlock(f, i, s, f"({source})") for f in factors for i, s in singles]


def _grouping_factors(reader, node, source):
    """Factors of ``g``, ``a:b`` or ``a/b`` (= ``a`` and ``a:b``)."""
    node = strip_parens(node)
    if isinstance(node, Bin) and node.op == "/":
        outer = _grouping_factors(reader, node.left, source)
        inner = _grouping_factors(reader, node.right, source)
        return outer + [tuple(dict.fromkeys(outer[-1] + f)) for f in inner]
    if isinstance(node, Bin) and node.op == ":":
        left = _grouping_factors(reader, node.left, source)
        right = _grouping_factors(reader, node.right, source)
        if len(left) == 1 and len(right) == 1:
            return [tuple(dict.fromkeys(left[0] + right[0]))]
    elif isinstance(node, Name):  # a column: named as the data name it (lme4's flist)
        reader.variables.setdefault(node.name, node)
        return [(node.name,)]
    elif not isinstance(node, (Bin, Unary, Num)):
        return [reader.variable(node)[0]]
    raise ValueError(
        f"grouping factor of ({source}) must be a column, a:b or a/b; {SUPPORTED_RANDOM}"
    )


def _check_factor_blocks(name, blocks):
    """One factor's lme4 terms: no covariate (nor intercept) in two of them."""
    seen = []
    for block in blocks:
        effects = ([("1",)] if block.intercept else []) + list(block.slopes)
        if not effects:
            raise ValueError(
                f"random-effect term {block.source!r} has no covariate (0 and no slope)"
            )
        for effect in effects:
            if frozenset(effect) in seen:
                raise ValueError(
                    f"random effects of factor {name!r}: {':'.join(effect)!r} appears in two "
                    f"terms ({' + '.join(dict.fromkeys(b.source for b in blocks))}); each "
                    "covariate may be in one term of a factor only"
                )
            seen.append(frozenset(effect))


def _random_structure(blocks):
    """``{factor label: (grouping variables, its lme4 terms)}`` in formula order."""
    by_factor = {}
    for block in blocks:
        by_factor.setdefault(":".join(block.factor), []).append(block)
    for name, group in by_factor.items():
        _check_factor_blocks(name, group)
    return {name: (group[0].factor, tuple(group)) for name, group in by_factor.items()}


def parse_formula(formula, *, require_random=True):
    """Response, fixed part and random structure of an lme4 formula (no data needed)."""
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string such as 'y ~ x + (1 | g)', got {formula!r}")
    tree = parse_expression(formula)
    if not (isinstance(tree, (Bin, Unary)) and tree.op == "~"):
        raise ValueError(f"formula {formula!r} must read 'response ~ terms'")
    reader = _Reader(formula)
    response = None
    if isinstance(tree, Bin):
        if _contains(tree.left, "~") or _contains(tree.right, "~"):
            raise ValueError(f"formula {formula!r} must read 'response ~ terms', with one '~'")
        if _contains_bar(tree.left):
            raise ValueError(f"formula {formula!r}: the response cannot hold a bar '|'")
        response = reader.variable(strip_parens(tree.left))[0][0]
    rhs = tree.right if isinstance(tree, Bin) else tree.operand
    fixed_parts, blocks = [], []
    for sign, part in _summands(rhs):
        bare = strip_parens(part)
        if _is_bar(bare) and isinstance(part, Paren) and sign > 0:
            blocks.append(bare)
        elif _contains_bar(part):
            raise ValueError(
                f"random-effect term {deparse(part)!r} must be added in parentheses, "
                f"as in y ~ x + (1 | g); {SUPPORTED_RANDOM}"
            )
        else:
            fixed_parts.append((sign, part))
    intercept, terms, offsets = _fixed_side(reader, fixed_parts)
    random_blocks = [b for node in blocks for b in _parse_random(reader, node)]
    if require_random and not random_blocks:
        raise ValueError(
            f"formula {formula!r} has no random-effect term such as (1 | g); "
            "for a linear model use sklearn.linear_model.LinearRegression."
        )
    order = list(reader.variables)
    fixed = FixedPart(intercept, _in_r_order(terms, order), tuple(offsets))
    random = _random_structure(random_blocks)
    return ParsedFormula(response, fixed, random, dict(reader.variables), formula)


def _fixed_side(reader, parts):
    """The fixed part from its signed summands (intercept markers, terms, offsets)."""
    if not parts:
        return True, [], []
    node = parts[0][1] if parts[0][0] > 0 else Unary("-", parts[0][1])
    for sign, part in parts[1:]:
        node = Bin("+" if sign > 0 else "-", node, part)
    return reader.side(node, "fixed")
