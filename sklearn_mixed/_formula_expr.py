"""R expressions of model formulas: tokens, a syntax tree and R's deparsed text.

A formula is read as R reads it, with R's operator precedence (lowest
first): ``~``; ``|`` and ``||``; ``&``; ``!``; comparisons; binary ``+``
and ``-``; ``*`` and ``/``; ``%in%``; ``:``; unary ``+`` and ``-``; ``^``
(right-associative).  The tree is data: nothing is evaluated here.

:func:`deparse` writes a tree back as R's ``deparse`` does, which is how R
names a formula's variables and model-matrix columns (``I(Time^2)``,
``log(Weight)``, ``poly(Time, 2)``, ``I(Time/10)``, ``x * z``): ``^``,
``/`` and ``:`` without spaces, other binary operators with one space,
arguments separated by ``", "``, named arguments as ``name = value``.
"""

import re
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Bin",
    "Call",
    "Name",
    "Num",
    "Paren",
    "Str",
    "Unary",
    "children",
    "deparse",
    "parse_expression",
    "strip_parens",
    "walk",
]


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Str:
    value: str


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple  # nodes
    kwargs: tuple = ()  # (name, node) pairs


@dataclass(frozen=True)
class Bin:
    op: str
    left: object
    right: object


@dataclass(frozen=True)
class Unary:
    op: str
    operand: object


@dataclass(frozen=True)
class Paren:
    inner: object


# ---------------------------------------------------------------------------
# tokens

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<quoted>`[^`]*`)|(?P<string>\"[^\"]*\"|'[^']*')"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?)"
    r"|(?P<name>[A-Za-z.][A-Za-z0-9_.]*)"
    r"|(?P<op>\*\*|::|%[^%\s]*%|\|\||&&|==|!=|<=|>=|[~+\-*/^:|&!<>(),=])"
    r"|(?P<other>\S))"
)


@dataclass(frozen=True)
class Token:
    kind: str  # "name", "number", "string" or "op"
    text: str
    start: int


def tokenize(text):
    """Tokens of ``text``: names (``x``, ``\\`odd name\\```), numbers, operators."""
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:  # only trailing whitespace is left
            break
        kind = match.lastgroup
        value = match.group(kind)
        if kind in ("quoted", "string"):
            kind, value = ("name" if kind == "quoted" else "string"), value[1:-1]
        if kind == "other" or value in ("**", "::"):
            hint = {
                "**": " (R writes powers as x^2, inside I() in a formula)",
                "::": " (package-qualified functions such as splines::ns are not supported)",
            }.get(value, "")
            raise ValueError(
                f"cannot read {value!r} at position {match.start(match.lastgroup)} of "
                f"{text!r}{hint}"
            )
        tokens.append(Token(kind, value, match.start(match.lastgroup)))
        pos = match.end()
    return tokens


# ---------------------------------------------------------------------------
# the parser: precedence climbing with R's binding powers

_BINARY = {  # operator: (left binding power, right binding power)
    "~": (1, 2),
    "|": (3, 4),
    "||": (3, 4),
    "&": (5, 6),
    "&&": (5, 6),
    "==": (9, 10),
    "!=": (9, 10),
    "<": (9, 10),
    ">": (9, 10),
    "<=": (9, 10),
    ">=": (9, 10),
    "+": (11, 12),
    "-": (11, 12),
    "*": (13, 14),
    "/": (13, 14),
    "%%": (15, 16),  # any %op%
    ":": (17, 18),
    "^": (22, 21),  # right-associative, above unary minus
}
_PREFIX = {"~": 2, "!": 8, "-": 19, "+": 19}


class _Parser:
    def __init__(self, text):
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def error(self, message):
        return ValueError(f"cannot read formula {self.text!r}: {message}")

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, op=None):
        token = self.peek()
        if token is None or (op is not None and (token.kind, token.text) != ("op", op)):
            where = "the end" if token is None else f"{token.text!r}"
            raise self.error(f"expected {op or 'more'} at {where}")
        self.pos += 1
        return token

    def expression(self, min_power=0):
        left = self.prefix()
        while True:
            token = self.peek()
            if token is None or token.kind != "op":
                break
            key = "%%" if token.text.startswith("%") else token.text
            if key not in _BINARY or _BINARY[key][0] < min_power:
                break
            self.pos += 1
            left = Bin(token.text, left, self.expression(_BINARY[key][1]))
        return left

    def prefix(self):
        token = self.take()
        if token.kind == "number":
            return Num(float(token.text.rstrip("L")))
        if token.kind == "string":
            return Str(token.text)
        if token.kind == "name":
            after = self.peek()
            if after is not None and (after.kind, after.text) == ("op", "("):
                return self.call(token.text)
            return Name(token.text)
        if token.text == "(":
            inner = self.expression()
            self.take(")")
            return Paren(inner)
        if token.text in _PREFIX:
            return Unary(token.text, self.expression(_PREFIX[token.text]))
        raise self.error(f"unexpected {token.text!r}")

    def call(self, function):
        self.take("(")
        args, kwargs = [], []
        while not self._at(")"):
            token, after = self.peek(), self._token_at(self.pos + 1)
            if token and token.kind == "name" and after and (after.kind, after.text) == ("op", "="):
                self.pos += 2
                kwargs.append((token.text, self.expression()))
            elif kwargs:
                raise self.error(f"positional argument after a named one in {function}()")
            else:
                args.append(self.expression())
            if not self._at(")"):
                self.take(",")
                if self._at(")"):
                    raise self.error(f"an argument is missing after ',' in {function}()")
        self.take(")")
        return Call(function, tuple(args), tuple(kwargs))

    def _at(self, op):
        token = self.peek()
        if token is None:
            raise self.error(f"unclosed parenthesis (expected {op!r})")
        return (token.kind, token.text) == ("op", op)

    def _token_at(self, i):
        return self.tokens[i] if i < len(self.tokens) else None


def parse_expression(text):
    """The syntax tree of ``text`` (a formula or an R expression)."""
    parser = _Parser(text)
    if not parser.tokens:
        raise parser.error("it is empty")
    tree = parser.expression()
    if parser.peek() is not None:
        raise parser.error(f"unexpected {parser.peek().text!r} at position {parser.peek().start}")
    return tree


# ---------------------------------------------------------------------------
# R's deparse

_TIGHT = ("^", "/", ":")  # R deparses these without spaces


def format_number(value):
    """A number as R prints it: 15 significant digits, the shorter of fixed
    and scientific notation (fixed on a tie): ``2``, ``0.5``, ``1e+05``, ``1e-05``."""
    value = float(f"{value:.15g}")
    fixed = np.format_float_positional(value, trim="-")
    scientific = np.format_float_scientific(value, trim="-", exp_digits=2)
    return fixed if len(fixed) <= len(scientific) else scientific


def _name_text(name):
    syntactic = re.fullmatch(r"(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9_.]*|\.", name)
    return name if syntactic else f"`{name}`"


def deparse(node):
    """``node`` as R's ``deparse`` writes it."""
    if isinstance(node, Name):
        return _name_text(node.name)
    if isinstance(node, Num):
        return format_number(node.value)
    if isinstance(node, Str):
        return '"' + node.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(node, Paren):
        return f"({deparse(node.inner)})"
    if isinstance(node, Unary):
        return f"{node.op}{deparse(node.operand)}"
    if isinstance(node, Bin):
        sep = node.op if node.op in _TIGHT else f" {node.op} "
        return f"{deparse(node.left)}{sep}{deparse(node.right)}"
    args = [deparse(a) for a in node.args] + [f"{k} = {deparse(v)}" for k, v in node.kwargs]
    return f"{_name_text(node.function)}({', '.join(args)})"


def children(node):
    """The nodes directly under ``node`` (a call's arguments, named ones too)."""
    if isinstance(node, Paren):
        return [node.inner]
    if isinstance(node, Unary):
        return [node.operand]
    if isinstance(node, Bin):
        return [node.left, node.right]
    if isinstance(node, Call):
        return list(node.args) + [v for _, v in node.kwargs]
    return []


def walk(node, into_calls=True):
    """``node`` and every node under it (not under calls when ``into_calls`` is False)."""
    yield node
    if into_calls or not isinstance(node, Call):
        for child in children(node):
            yield from walk(child, into_calls)


def strip_parens(node):
    """``node`` without enclosing parentheses."""
    while isinstance(node, Paren):
        node = node.inner
    return node
