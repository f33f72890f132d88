"""The reference parser: Lark's LALR parser of ``grammar/dp.lark`` (contextual lexer).

The grammar file is the definition of the step language. ``syntax`` tries the small
recursive-descent parser in ``descent`` first and comes here whenever that one is not sure, so
Lark (and its import, a good part of ``autodp lint``'s start-up) is paid only for steps it must
judge: every syntax error and the rare odd spelling. Lark's exceptions become ``SyntaxProblem``
values that carry the offending text and the expected tokens spelled as people write them (``)``
rather than ``RPAR``).
"""

from __future__ import annotations

from importlib.resources import files

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .nodes import AAssign, ABin, ACall, ACol, AKwarg, AList, ALit, AUn, SyntaxProblem, unescape, widen

__all__ = ["GRAMMAR_PATH", "parse"]

# ``grammar/dp.lark`` at the top of the repository, shipped inside the package as data
# (``autodp_dsl/grammar`` links to it): found the same way in a checkout and in an installed wheel.
GRAMMAR_PATH = files("autodp_dsl") / "grammar" / "dp.lark"

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
            keep_all_tokens=True,
            maybe_placeholders=True,
            transformer=_TO_AST,  # build the AST while parsing: no intermediate parse tree
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


def _span(x) -> tuple[int, int]:
    """(start, end) of a token or an AST node."""
    if isinstance(x, Token):
        return x.start_pos, x.end_pos
    return x.start, x.end


class _ToAST(Transformer):
    """Builds the AST inside the LALR parser (no parse tree). Punctuation tokens are kept
    (``keep_all_tokens``) so that spans include the closing ``)`` and ``]``."""

    def assign(self, c):
        name, _eq, value = c
        return AAssign(str(name), value, name.start_pos, value.end, name.end_pos)

    def binop(self, c):
        left, op, right = c
        return ABin(str(op), left, right, left.start, right.end, op.start_pos, op.end_pos)

    def unop(self, c):
        op, operand = c
        return AUn("not" if str(op) == "not" else "-", operand, op.start_pos, operand.end)

    def atom(self, c):  # "(" expr ")": the expression, its span widened to the parentheses
        lpar, e, rpar = c
        return widen(e, lpar.start_pos, rpar.end_pos)

    def call(self, c):
        name, _lpar, args, rpar = c
        pos, kws = [], []
        for a in args or ():
            (kws if isinstance(a, AKwarg) else pos).append(a)
        return ACall(str(name), tuple(pos), tuple(kws), name.start_pos, rpar.end_pos, name.end_pos)

    def args(self, c):
        return [x for x in c if x is not None and not isinstance(x, Token)]

    def kwarg(self, c):
        name, _eq, value = c
        return AKwarg(str(name), value, name.start_pos, value.end)

    def list(self, c):
        items = tuple(x for x in c[1:-1] if x is not None and not isinstance(x, Token))
        return AList(items, c[0].start_pos, c[-1].end_pos)

    def column(self, c):
        (tok,) = c
        name = str(tok)
        return ACol(name[1:-1] if name.startswith("`") else name, tok.start_pos, tok.end_pos)

    def string(self, c):
        (tok,) = c
        return ALit(unescape(str(tok)), *_span(tok))

    def int(self, c):
        (tok,) = c
        return ALit(int(tok), *_span(tok))

    def float(self, c):
        (tok,) = c
        return ALit(float(tok), *_span(tok))

    def true(self, c):
        return ALit(True, *_span(c[0]))

    def false(self, c):
        return ALit(False, *_span(c[0]))


_TO_AST = _ToAST()


def parse(text: str, start: str):
    """Parse ``text`` from the grammar rule ``start`` ("step" or "expr"); raise ``SyntaxProblem``."""
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
    except ValueError as e:  # raised while building the AST (a bad string escape)
        raise SyntaxProblem(str(e), 0, max(len(text), 1)) from None
    return tree
