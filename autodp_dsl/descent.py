"""A recursive-descent parser for step strings as people usually write them, without Lark.

``grammar/dp.lark`` defines the step language and Lark's LALR parser (``lalr``) is the reference.
This parser accepts part of what the grammar accepts and builds the very same tree for it; on
anything else (every syntax error, a keyword used as a column name, ``a orb``, which Lark's lexer
reads as ``a or b``, nesting deeper than Python's recursion limit) it raises ``Unsure`` and the
caller asks Lark. So it may decline, but it never disagrees: ``tests/dsl/test_descent.py`` compares
the two on generated and mutated steps. It exists for speed: about six times faster than Lark on
the steps of ``bench/bench_lint.py``, and ``autodp lint`` need not import Lark at all for a file
without syntax errors.

Lexing follows Lark's contextual lexer where it matters: the same terminal patterns, tried in the
same priority order (``OP_NAME`` before ``NAME``, ``FLOAT`` before ``INT``, ``==`` before ``=``),
whole-word keywords, and ``-`` as a sign only where an operand starts and a word, ``(``, ``[`` or
``.`` follows it directly (``NEG``).
"""

from __future__ import annotations

import re

from .nodes import AAssign, ABin, ACall, ACol, AKwarg, AList, ALit, AUn, unescape, widen

__all__ = ["Unsure", "parse", "parse_counted"]


class Unsure(Exception):
    """This parser does not decide the input: the reference parser must."""


# The grammar's terminals, spelled as in ``grammar/dp.lark`` and in the order the lexer must try them
# (``OP_NAME`` before ``NAME``, ``FLOAT`` before ``INT``). Not read from the grammar file: that would
# cost ``autodp lint`` the start-up this parser exists to save; ``tests/dsl/test_descent.py``
# checks that they equal the grammar's terminals, so a grammar change that misses them fails there.
TERMINALS = {
    "OP_NAME": r"(?!(?:and|or|not|true|false)\b)[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?=\s*\()",
    "NAME": r"[A-Za-z_][A-Za-z0-9_]*",
    "QUOTED_NAME": r"`[^`\n]+`",
    "STRING": r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'""",
    "FLOAT": r"(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+",
    "INT": r"\d+",
}
WHITESPACE = r"[ \t\f\r\n]"  # common.WS, which the grammar ignores
KEYWORDS = {"and": "AND", "or": "OR", "not": "NOT", "true": "TRUE", "false": "FALSE"}  # whole words, read as NAME first
COMP_OPS = frozenset(("==", "!=", "<", "<=", ">", ">="))  # COMP_OP
ADD_OPS = frozenset(("+", "-"))  # ADD_OP
MUL_OPS = frozenset(("*", "/"))  # MUL_OP
# every fixed spelling of the grammar: the operators above and its anonymous tokens ``=()[],``
PUNCTUATION = COMP_OPS | ADD_OPS | MUL_OPS | frozenset("=()[],")
NEG = r"-(?=[\w(\[.])"  # the grammar's NEG: a sign directly before its operand

# Whitespace then one token. OTHER catches any character no terminal starts with, so the matches of
# ``finditer`` cover the text without gaps. Longer punctuation first: ``==`` before ``=``.
_TOKEN = re.compile(
    f"{WHITESPACE}*(?:"
    + "|".join(f"(?P<{name}>{pattern})" for name, pattern in TERMINALS.items())
    + "|(?P<PUNCT>" + "|".join(re.escape(p) for p in sorted(PUNCTUATION, key=lambda p: (-len(p), p))) + ")"
    + f"|(?P<OTHER>[^{WHITESPACE[1:-1]}])"
    + ")"
)
_NEG = re.compile(NEG)
_END = "$END"
_OR, _AND = frozenset({"OR"}), frozenset({"AND"})  # as token kinds: the keywords' terminals


def _tokens(text: str) -> list[tuple[str, str, int, int]]:
    """(kind, text, start, end) of every token, then the end. A keyword's kind is its terminal
    (``AND``...); punctuation's kind is its text."""
    out = []
    for m in _TOKEN.finditer(text):
        group = m.lastgroup
        kind, value = group, m.group(group)
        if kind == "NAME":
            kind = KEYWORDS.get(value, "NAME")
        elif kind == "PUNCT":
            kind = value
        elif kind == "OTHER":
            raise Unsure
        out.append((kind, value, m.start(group), m.end()))
    out.append((_END, "", len(text), len(text)))
    return out


class _Parser:
    """One method per grammar rule; each returns the node Lark's transformer (``lalr._ToAST``) builds."""

    __slots__ = ("text", "toks", "i")

    def __init__(self, text: str):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def expect(self, kind: str):
        t = self.toks[self.i]
        if t[0] != kind:
            raise Unsure
        self.i += 1
        return t

    def step(self):  # ?step: assign | call
        t = self.toks[self.i]
        if t[0] == "NAME" and self.toks[self.i + 1][0] == "=":
            self.i += 2
            value = self.expr()
            return AAssign(t[1], value, t[2], value.end, t[3])
        if t[0] == "OP_NAME":
            self.i += 1
            return self.call(t)
        raise Unsure

    def binary(self, operand, ops):  # the grammar's left-recursive `?x: y | x OP y`
        left = operand()
        while self.toks[self.i][0] in ops:
            op = self.toks[self.i]
            self.i += 1
            right = operand()
            left = ABin(op[1], left, right, left.start, right.end, op[2], op[3])
        return left

    def expr(self):  # ?or_expr: and_expr | or_expr OR and_expr
        return self.binary(self.and_expr, _OR)

    def and_expr(self):  # ?and_expr: not_expr | and_expr AND not_expr
        return self.binary(self.not_expr, _AND)

    def not_expr(self):  # ?not_expr: comparison | NOT not_expr
        t = self.toks[self.i]
        if t[0] == "NOT":
            self.i += 1
            operand = self.not_expr()
            return AUn("not", operand, t[2], operand.end)
        return self.comparison()

    def comparison(self):  # ?comparison: sum | sum COMP_OP sum   (not associative)
        left = self.sum()
        op = self.toks[self.i]
        if op[0] in COMP_OPS:
            self.i += 1
            right = self.sum()
            return ABin(op[1], left, right, left.start, right.end, op[2], op[3])
        return left

    def sum(self):  # ?sum: product | sum ADD_OP product
        return self.binary(self.product, ADD_OPS)

    def product(self):  # ?product: unary | product MUL_OP unary
        return self.binary(self.unary, MUL_OPS)

    def unary(self):  # ?unary: atom | NEG unary
        t = self.toks[self.i]
        if t[0] == "-":
            if not _NEG.match(self.text, t[2]):  # `- x`: Lark's lexer decides what that is
                raise Unsure
            self.i += 1
            operand = self.unary()
            return AUn("-", operand, t[2], operand.end)
        return self.atom()

    def atom(self):  # ?atom: call | column | literal | list | "(" expr ")"
        t = self.toks[self.i]
        self.i += 1
        kind = t[0]
        if kind == "NAME":
            return ACol(t[1], t[2], t[3])
        if kind == "OP_NAME":
            return self.call(t)
        if kind == "INT":
            return ALit(int(t[1]), t[2], t[3])
        if kind == "FLOAT":
            return ALit(float(t[1]), t[2], t[3])
        if kind == "STRING":
            return ALit(unescape(t[1]), t[2], t[3])
        if kind == "QUOTED_NAME":
            return ACol(t[1][1:-1], t[2], t[3])
        if kind == "TRUE" or kind == "FALSE":
            return ALit(kind == "TRUE", t[2], t[3])
        if kind == "(":
            e = self.expr()
            rpar = self.expect(")")
            return widen(e, t[2], rpar[3])
        if kind == "[":
            return self.list(t)
        raise Unsure  # `and`/`or`/`not` here are column names to Lark's lexer; or an error

    def call(self, name):  # call: OP_NAME "(" [args] ")"    args: arg ("," arg)* [","]
        self.expect("(")
        args, rpar = self.separated(self.arg, ")")
        pos = tuple(a for a in args if not isinstance(a, AKwarg))
        kws = tuple(a for a in args if isinstance(a, AKwarg))
        return ACall(name[1], pos, kws, name[2], rpar[3], name[3])

    def arg(self):  # ?arg: NAME "=" expr -> kwarg | expr
        t = self.toks[self.i]
        if t[0] == "NAME" and self.toks[self.i + 1][0] == "=":
            self.i += 2
            value = self.expr()
            return AKwarg(t[1], value, t[2], value.end)
        return self.expr()

    def list(self, lsqb):  # list: "[" [expr ("," expr)* [","]] "]"
        items, rsqb = self.separated(self.expr, "]")
        return AList(tuple(items), lsqb[2], rsqb[3])

    def separated(self, item, close):  # [item ("," item)* [","]] close: the items and the closing token
        items = []
        t = self.toks[self.i]
        while t[0] != close:
            items.append(item())
            t = self.toks[self.i]
            if t[0] == ",":
                self.i += 1
                t = self.toks[self.i]
            elif t[0] != close:
                raise Unsure
        self.i += 1
        return items, t


def parse(text: str, start: str):
    """The tree of ``text`` from rule ``start`` ("step" or "expr"), or ``Unsure``."""
    return parse_counted(text, start)[0]


def parse_counted(text: str, start: str):
    """(tree, number of tokens): every node of the tree holds a token of its own, so the tree is
    no deeper than that number (``syntax`` skips its depth check on short steps)."""
    p = _Parser(text)
    try:
        node = p.expr() if start == "expr" else p.step()
    except (ValueError, RecursionError):  # a bad literal, very deep nesting: Lark's to judge
        raise Unsure from None
    if p.toks[p.i][0] != _END:
        raise Unsure
    return node, len(p.toks) - 1
