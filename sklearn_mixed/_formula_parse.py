"""Parsing of lme4 formulas into terms, without data (used by :mod:`sklearn_mixed.formula`).

A small tokenizer reads the formula; nothing in it is evaluated.  The result
says which columns make the response, the fixed part (terms as tuples of
variable names, R's order: main effects, then interactions) and, per
grouping factor, its random slopes and whether they are correlated with the
intercept ("unstructured") or independent ("diagonal").  A fixed part beyond
the built-in syntax is kept as text for formulaic.
"""

import itertools
import re
from dataclasses import dataclass

__all__ = ["FORMULAIC_HINT", "FixedPart", "ParsedFormula", "RandomBlock", "parse_formula"]

SUPPORTED_RANDOM = (
    "supported random-effect terms are (1 | g), (x | g) = (1 + x | g), (x1 + x2 | g), "
    "(0 + x | g), (0 + f | g) with f categorical, (x || g) = (1 | g) + (0 + x | g), "
    "(1 | a/b) = (1 | a) + (1 | a:b) and (1 | a:b), with column names for x, f and g"
)
FORMULAIC_HINT = (
    "pip install 'sklearn-mixed[formula]' (formulaic) for richer fixed-part expressions"
)

# ---------------------------------------------------------------------------
# tokens


@dataclass(frozen=True)
class _Token:
    kind: str  # "name", "number", "op" or "other"
    text: str
    start: int
    end: int


_TOKEN_RE = re.compile(
    r"\s*(?:(?P<quoted>`[^`]*`)|(?P<name>[A-Za-z_.][A-Za-z0-9_.]*)"
    r"|(?P<number>\d+(?:\.\d*)?)|(?P<op>\|\||[~+\-:*/|()])|(?P<other>\S))"
)


def _tokenize(text):
    """Tokens of ``text``: names (``x``, ``\\`odd name\\```), numbers, operators, other."""
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:  # only trailing whitespace is left
            break
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "quoted":
            kind, value = "name", value[1:-1]
        tokens.append(_Token(kind, value, match.start(kind), match.end(kind)))
        pos = match.end()
    return tokens


def _source(text, tokens):
    """The part of ``text`` that ``tokens`` span, stripped."""
    return text[tokens[0].start : tokens[-1].end].strip() if tokens else ""


def _is_op(token, *ops):
    return token.kind == "op" and token.text in ops


def _split_top_level(tokens, ops):
    """``[(operator before, tokens)]``, split at ``ops`` outside parentheses."""
    parts, current, before, depth = [], [], None, 0
    for token in tokens:
        if _is_op(token, "("):
            depth += 1
        elif _is_op(token, ")"):
            depth -= 1
        if depth == 0 and _is_op(token, *ops):
            parts.append((before, current))
            current, before = [], token.text
        else:
            current.append(token)
    parts.append((before, current))
    return parts


def _summands(text, tokens, where):
    """``[(sign, tokens)]`` of a sum such as ``x - 1 + (1 | g)``."""
    parts = _split_top_level(tokens, ("+", "-"))
    if not parts[0][1]:  # a leading sign: "-1 + x"
        parts = parts[1:]
    for _, part in parts:
        if not part:
            raise ValueError(f"empty term in {where} {_source(text, tokens)!r}")
    return [(-1 if sign == "-" else 1, part) for sign, part in parts]


# ---------------------------------------------------------------------------
# terms: x, a:b, a*b


def _expand_term(tokens):
    """Variable tuples of ``a*b:c`` (``a``, ``b:c``, ``a:b:c``), or None if not that syntax.

    ``*`` is the crossing of R's formulas: ``a*b = a + b + a:b``; ``:`` the
    interaction.  Terms are ordered by degree, as R orders them.
    """
    chunks = []
    for _, part in _split_top_level(tokens, ("*",)):
        names = [t.text for t in part[0::2]]
        kinds_ok = all(t.kind == "name" for t in part[0::2])
        colons_ok = all(_is_op(t, ":") for t in part[1::2])
        if not part or len(part) % 2 == 0 or not (kinds_ok and colons_ok):
            return None
        chunks.append(tuple(dict.fromkeys(names)))
    terms = []
    for size in range(1, len(chunks) + 1):
        for combo in itertools.combinations(chunks, size):
            terms.append(tuple(dict.fromkeys(itertools.chain(*combo))))
    return terms


def _add_terms(terms, new, sign):
    """Add (sign 1) or remove (sign -1) ``new`` terms; a term is a set of variables."""
    keys = [frozenset(t) for t in terms]
    for term in new:
        key = frozenset(term)
        if sign > 0 and key not in keys:
            terms.append(term)
            keys.append(key)
        elif sign < 0 and key in keys:
            del terms[keys.index(key)]
            keys.remove(key)


def _intercept_token(part):
    """``1`` or ``0`` when ``part`` is that number alone, else None."""
    if len(part) == 1 and part[0].kind == "number" and part[0].text in ("0", "1"):
        return int(part[0].text)
    return None


# ---------------------------------------------------------------------------
# the fixed part


@dataclass(frozen=True)
class FixedPart:
    intercept: bool
    terms: tuple  # variable tuples in R's order, or () with formulaic
    formulaic_rhs: str | None = None  # the fixed part, when formulaic builds it


def _parse_fixed(text, summands):
    """The fixed part from its summands (``x``, ``a:b``, ``a*b``, ``1``, ``0``, ``-1``)."""
    intercept, terms = True, []
    for sign, part in summands:
        number = _intercept_token(part)
        if number is not None:
            intercept = intercept and (number == 1) == (sign > 0)
            continue
        expanded = _expand_term(part)
        if expanded is None:
            return _formulaic_fixed(text, summands)
        _add_terms(terms, expanded, sign)
    order = {v: i for i, v in enumerate(dict.fromkeys(itertools.chain(*terms)))}
    terms = [tuple(sorted(t, key=order.get)) for t in terms]
    terms.sort(key=len)  # stable: main effects first, then interactions, as R
    return FixedPart(intercept, tuple(terms))


def _formulaic_fixed(text, summands):
    """A fixed part beyond the built-in syntax, for formulaic to build."""
    pieces = [("- " if sign < 0 else "+ ") + _source(text, part) for sign, part in summands]
    rhs = " ".join(pieces).removeprefix("+ ") or "1"
    try:
        import formulaic  # noqa: F401
    except ImportError:
        raise ValueError(
            f"the fixed part {rhs!r} uses syntax beyond column names, 1, 0, -1, a:b and a*b; "
            f"{FORMULAIC_HINT}, or compute the column in the data first."
        ) from None
    return FixedPart(True, (), rhs)


# ---------------------------------------------------------------------------
# the random part


@dataclass(frozen=True)
class RandomBlock:
    """One lme4 bar term, ``(1 + x | g)``: one covariance block of one factor."""

    factor: tuple  # grouping variables, ("a", "b") for a:b
    intercept: bool
    slopes: tuple  # variable tuples
    source: str


def _is_random_term(part):
    """Whether ``part`` is ``( ... | ... )`` as a whole."""
    if not (part and _is_op(part[0], "(") and _is_op(part[-1], ")")):
        return False
    inner = part[1:-1]
    return len(_split_top_level(inner, ("|", "||"))) > 1 and _closes_at_end(part)


def _strip_redundant_parens(part):
    """``((1 | g))`` as ``(1 | g)``."""
    while (
        len(part) > 4
        and _is_op(part[1], "(")
        and _closes_at_end(part)
        and _closes_at_end(part[1:-1])
    ):
        part = part[1:-1]
    return part


def _closes_at_end(part):
    depth = 0
    for i, token in enumerate(part):
        depth += _is_op(token, "(") - _is_op(token, ")")
        if depth == 0:
            return i == len(part) - 1
    return False


def _parse_random(text, part):
    """The blocks of one bar term: ``(x || g)`` and ``(1 | a/b)`` give several."""
    source = _source(text, part)
    pieces = _split_top_level(part[1:-1], ("|", "||"))
    if len(pieces) != 2 or not pieces[0][1] or not pieces[1][1]:
        raise ValueError(
            f"random-effect term {source!r} must read (terms | factor); {SUPPORTED_RANDOM}"
        )
    intercept, slopes = _random_effects(text, pieces[0][1], source)
    factors = _grouping_factors(pieces[1][1], source)
    if pieces[1][0] == "||":  # (x || g) = (1 | g) + (0 + x | g)
        singles = [(True, ())] if intercept else []
        singles += [(False, (s,)) for s in slopes]
    else:
        singles = [(intercept, tuple(slopes))]
    return [RandomBlock(f, i, s, source) for f in factors for i, s in singles]


def _random_effects(text, tokens, source):
    """``(intercept, slope terms)`` of the left side of a bar."""
    intercept, slopes = True, []
    for sign, part in _summands(text, tokens, f"random-effect term {source!r}:"):
        number = _intercept_token(part)
        expanded = None if number is not None else _expand_term(part)
        if number is not None:
            intercept = intercept and (number == 1) == (sign > 0)
        elif expanded is None or sign < 0:
            raise ValueError(
                f"random-effect term {source!r}: {_source(text, part)!r} is not supported; "
                f"{SUPPORTED_RANDOM}.  Compute transformed columns in the data first."
            )
        else:
            _add_terms(slopes, expanded, 1)
    return intercept, slopes


def _grouping_factors(tokens, source):
    """Factors of ``g``, ``a:b`` or ``a/b`` (= ``a`` and ``a:b``)."""
    factors, prefix = [], ()
    for _, part in _split_top_level(tokens, ("/",)):
        names = _expand_term(part)
        if names is None or len(names) != 1:
            raise ValueError(
                f"grouping factor of {source!r} must be a column, a:b or a/b; {SUPPORTED_RANDOM}"
            )
        prefix = tuple(dict.fromkeys(prefix + names[0]))
        factors.append(prefix)
    return factors


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


# ---------------------------------------------------------------------------
# the whole formula


@dataclass(frozen=True)
class ParsedFormula:
    response: str
    fixed: FixedPart
    random: dict  # factor label -> (grouping variables, tuple of RandomBlock)


def parse_formula(formula):
    """Response, fixed part and random structure of an lme4 formula (no data needed)."""
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string such as 'y ~ x + (1 | g)', got {formula!r}")
    tokens = _tokenize(formula)
    sides = _split_top_level(tokens, ("~",))
    if len(sides) != 2 or len(sides[0][1]) != 1 or sides[0][1][0].kind != "name":
        raise ValueError(
            f"formula {formula!r} must read 'response ~ terms' with a column name as the "
            "response (transform the response in the data first)."
        )
    fixed, blocks = [], []
    for sign, part in _summands(formula, sides[1][1], "formula"):
        part = _strip_redundant_parens(part)
        if _is_random_term(part) and sign > 0:
            blocks.extend(_parse_random(formula, part))
        elif any(_is_op(t, "|", "||") for t in part):
            raise ValueError(
                f"random-effect term {_source(formula, part)!r} must be added in parentheses, "
                f"as in y ~ x + (1 | g); {SUPPORTED_RANDOM}"
            )
        else:
            fixed.append((sign, part))
    if not blocks:
        raise ValueError(
            f"formula {formula!r} has no random-effect term such as (1 | g); "
            "for a linear model use sklearn.linear_model.LinearRegression."
        )
    response = sides[0][1][0].text
    return ParsedFormula(response, _parse_fixed(formula, fixed), _random_structure(blocks))
