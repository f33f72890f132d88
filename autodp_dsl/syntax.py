"""Parsing step strings into the untyped AST (the stage before the type checker).

The grammar is ``grammar/dp.lark`` (LALR, contextual lexer). Positions in the AST are offsets into
the step string (0-based start, exclusive end); the document loader maps them to file lines and
columns. Lark's exceptions are turned into ``SyntaxProblem`` values that carry the offending text
and the expected tokens spelled as people write them (``)`` rather than ``RPAR``).
"""

from __future__ import annotations

import ast as pyast
from dataclasses import dataclass, field
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

__all__ = ["AST", "ACol", "ALit", "AList", "ACall", "AKwarg", "ABin", "AUn", "AAssign", "SyntaxProblem", "parse_step", "parse_expr"]

GRAMMAR_PATH = Path(__file__).resolve().parent.parent / "grammar" / "dp.lark"


@dataclass(frozen=True, slots=True)
class ACol:
    name: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ALit:
    value: object
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class AList:
    items: tuple
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class AKwarg:
    name: str
    value: object
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ACall:
    name: str
    args: tuple
    kwargs: tuple[AKwarg, ...]
    start: int
    end: int
    name_end: int = 0


@dataclass(frozen=True, slots=True)
class ABin:
    op: str
    left: object
    right: object
    start: int
    end: int
    op_start: int = 0
    op_end: int = 0


@dataclass(frozen=True, slots=True)
class AUn:
    op: str
    operand: object
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class AAssign:
    name: str
    value: object
    start: int
    end: int
    name_end: int = 0


AST = ACol | ALit | AList | ACall | ABin | AUn | AAssign


@dataclass(slots=True)
class SyntaxProblem(Exception):
    message: str
    start: int
    end: int
    expected: list[str] = field(default_factory=list)


# Terminal names shown to people as the text they stand for.
_TERMINAL_TEXT = {
    "NAME": "a column name",
    "QUOTED_NAME": "a `quoted column`",
    "OP_NAME": "an operator call",
    "STRING": "a string",
    "INT": "an integer",
    "FLOAT": "a number",
    "COMP_OP": "a comparison (==, !=, <, <=, >, >=)",
    "ADD_OP": "+ or -",
    "MUL_OP": "* or /",
    "NEG": "-",
    "OR": "or",
    "AND": "and",
    "NOT": "not",
    "TRUE": "true",
    "FALSE": "false",
    "$END": "the end of the step",
}

_parsers: dict[str, Lark] = {}


def _cache_path() -> str | bool:
    """Lark caches the LALR tables (keyed by grammar and options) so start-up skips building them."""
    import os
    import tempfile

    if os.environ.get("AUTODP_NO_PARSER_CACHE"):
        return False
    return True if os.access(tempfile.gettempdir(), os.W_OK) else False


def _parser(start: str) -> Lark:
    p = _parsers.get(start)
    if p is None:
        p = Lark(
            GRAMMAR_PATH.read_text(encoding="utf-8"),
            parser="lalr",
            start=start,
            propagate_positions=True,
            maybe_placeholders=True,
            cache=_cache_path(),
        )
        _parsers[start] = p
    return p


def _terminal_text(name: str, parser: Lark) -> str:
    if name in _TERMINAL_TEXT:
        return _TERMINAL_TEXT[name]
    for t in parser.terminals:
        if t.name == name and t.pattern.type == "str":
            return repr(t.pattern.value).replace("'", "`")
    return name.lower()


def _describe_expected(names, parser: Lark, before: str = "") -> list[str]:
    # LALR merges states, so its expected set can offer `)` or `,` where nothing is open: drop those
    depth_paren = before.count("(") - before.count(")")
    depth_list = before.count("[") - before.count("]")
    drop = set()
    if depth_paren <= 0:
        drop.add("RPAR")
    if depth_list <= 0:
        drop.add("RSQB")
    if depth_paren <= 0 and depth_list <= 0:
        drop.add("COMMA")
    seen: list[str] = []
    for n in sorted(set(names) - drop):
        text = _terminal_text(n, parser)
        if text not in seen:
            seen.append(text)
    return seen


def _pos(meta_or_tok) -> tuple[int, int]:
    return meta_or_tok.start_pos, meta_or_tok.end_pos


def _unescape(tok: str) -> str:
    # Python's literal syntax covers both quote styles and the usual escapes; it is safe (no eval)
    try:
        return pyast.literal_eval(tok)
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"invalid string literal: {e}") from None


@v_args(meta=True)
class _ToAST(Transformer):
    def assign(self, meta, children):
        name, value = children
        return AAssign(str(name), value, meta.start_pos, meta.end_pos, name.end_pos)

    def binop(self, meta, children):
        left, op, right = children
        return ABin(str(op), left, right, meta.start_pos, meta.end_pos, op.start_pos, op.end_pos)

    def unop(self, meta, children):
        op, operand = children
        return AUn("not" if str(op) == "not" else "-", operand, meta.start_pos, meta.end_pos)

    def call(self, meta, children):
        name, args = children
        pos, kws = [], []
        for a in args or ():
            (kws if isinstance(a, AKwarg) else pos).append(a)
        return ACall(str(name), tuple(pos), tuple(kws), meta.start_pos, meta.end_pos, name.end_pos)

    def args(self, meta, children):
        return [c for c in children if c is not None]

    def kwarg(self, meta, children):
        name, value = children
        return AKwarg(str(name), value, meta.start_pos, meta.end_pos)

    def list(self, meta, children):
        return AList(tuple(c for c in children if c is not None), meta.start_pos, meta.end_pos)

    def column(self, meta, children):
        (tok,) = children
        name = str(tok)
        return ACol(name[1:-1] if name.startswith("`") else name, meta.start_pos, meta.end_pos)

    def string(self, meta, children):
        (tok,) = children
        return ALit(_unescape(str(tok)), *_pos(tok))

    def int(self, meta, children):
        (tok,) = children
        return ALit(int(tok), *_pos(tok))

    def float(self, meta, children):
        (tok,) = children
        return ALit(float(tok), *_pos(tok))

    def true(self, meta, children):
        return ALit(True, *_pos(children[0]))

    def false(self, meta, children):
        return ALit(False, *_pos(children[0]))


_TO_AST = _ToAST()


def _parse(text: str, start: str):
    parser = _parser(start)
    try:
        tree = parser.parse(text)
    except UnexpectedCharacters as e:
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        raise SyntaxProblem(
            f"unexpected character {ch!r}", e.pos_in_stream, e.pos_in_stream + 1, _describe_expected(e.allowed or (), parser, text[: e.pos_in_stream])
        ) from None
    except UnexpectedEOF as e:
        raise SyntaxProblem("unexpected end of step", len(text), len(text) + 1, _describe_expected(e.expected, parser, text)) from None
    except UnexpectedToken as e:
        tok: Token = e.token
        if tok.type == "$END":
            raise SyntaxProblem("unexpected end of step", len(text), len(text) + 1, _describe_expected(e.expected, parser, text)) from None
        start_pos = tok.start_pos if tok.start_pos is not None else 0
        end_pos = tok.end_pos if tok.end_pos is not None else start_pos + 1
        raise SyntaxProblem(f"unexpected {tok.value!r}", start_pos, end_pos, _describe_expected(e.expected, parser, text[:start_pos])) from None
    except UnexpectedInput as e:  # any other lark input error
        raise SyntaxProblem(str(e).splitlines()[0].lower(), 0, max(len(text), 1)) from None
    try:
        return _TO_AST.transform(tree)
    except VisitError as e:
        raise SyntaxProblem(str(e.orig_exc), 0, max(len(text), 1)) from None


def parse_step(text: str) -> AST:
    """Parse a step string (an operator call or ``name = expr``)."""
    return _parse(text, "step")


def parse_expr(text: str) -> AST:
    """Parse an expression (the value of ``filter:`` and ``where:``)."""
    return _parse(text, "expr")
