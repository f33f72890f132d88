"""Parsing step strings into the untyped AST (the stage before the type checker).

The grammar is ``grammar/dp.lark`` (LALR, contextual lexer), parsed by Lark (``lalr``). Steps are
first given to a small recursive-descent parser (``descent``) that builds the same tree for the
usual spellings several times faster and without importing Lark; whatever it is not sure of, every
syntax error included, goes to Lark, so trees and ``SyntaxProblem`` messages are Lark's. Positions
in the AST are offsets into the step string (0-based start, exclusive end); the document loader
maps them to file lines and columns.
"""

from __future__ import annotations

from . import descent
from .nodes import AST, AAssign, ABin, ACall, ACol, AKwarg, AList, ALit, AUn, SyntaxProblem

__all__ = ["AST", "ACol", "ALit", "AList", "ACall", "AKwarg", "ABin", "AUn", "AAssign", "SyntaxProblem", "parse_step", "parse_expr"]


def _parse(text: str, start: str):
    try:
        return descent.parse(text, start)
    except descent.Unsure:
        from . import lalr  # imported on the first step the fast parser declines

        return lalr.parse(text, start)


def parse_step(text: str) -> AST:
    """Parse a step string (an operator call or ``name = expr``)."""
    return _parse(text, "step")


def parse_expr(text: str) -> AST:
    """Parse an expression (the value of ``filter:`` and ``where:``)."""
    return _parse(text, "expr")
