"""Parsing step strings into the untyped AST (the stage before the type checker).

The grammar is ``grammar/dp.lark`` (LALR, contextual lexer), parsed by Lark (``lalr``). Steps are
first given to a small recursive-descent parser (``descent``) that builds the same tree for the
usual spellings several times faster and without importing Lark; whatever it is not sure of, every
syntax error included, goes to Lark, so trees and ``SyntaxProblem`` messages are Lark's. Positions
in the AST are offsets into the step string (0-based start, exclusive end); the document loader
maps them to file lines and columns. A tree deeper than ``max_depth`` (a chain of 1,000 `and`) is a
``SyntaxProblem`` with code ``limit-exceeded``, judged without recursion, so that no later stage
(all recursive) meets it.
"""

from __future__ import annotations

from . import descent
from .nodes import AST, AAssign, ABin, ACall, ACol, AKwarg, AList, ALit, AUn, SyntaxProblem

# the default bound on an expression's nesting (``document.Limits.expr_depth``): every later stage
# (checker, optimizer, lowering) walks the tree recursively
MAX_DEPTH = 64

__all__ = ["AST", "ACol", "ALit", "AList", "ACall", "AKwarg", "ABin", "AUn", "AAssign", "SyntaxProblem", "parse_step", "parse_expr"]


def _parse(text: str, start: str, max_depth: int):
    try:
        node, tokens = descent.parse_counted(text, start)
    except descent.Unsure:
        from . import lalr  # imported on the first step the fast parser declines

        node, tokens = lalr.parse(text, start), len(text)  # a node holds at least one character
    if tokens > max_depth:  # else the tree cannot be deeper: each node holds a token of its own
        _check_depth(node, max_depth)
    return node


def _kids(node) -> tuple:
    match node:
        case ABin(left=left, right=right):
            return (left, right)
        case AUn(operand=x) | AAssign(value=x) | AKwarg(value=x):
            return (x,)
        case ACall(args=args, kwargs=kwargs):
            return args + kwargs
        case AList(items=items):
            return items
    return ()


def _check_depth(root, max_depth: int) -> None:
    """Raise ``SyntaxProblem`` (code ``limit-exceeded``, spanning the whole expression) when the
    tree is deeper than ``max_depth``; iterative, so a tree of any depth is judged without recursion."""
    stack = [(root, 1)]
    while stack:
        node, d = stack.pop()
        if d > max_depth:
            raise SyntaxProblem(f"the expression nests more than {max_depth} deep", root.start, root.end, code="limit-exceeded")
        stack.extend((k, d + 1) for k in _kids(node))


def parse_step(text: str, max_depth: int = MAX_DEPTH) -> AST:
    """Parse a step string (an operator call or ``name = expr``)."""
    return _parse(text, "step", max_depth)


def parse_expr(text: str, max_depth: int = MAX_DEPTH) -> AST:
    """Parse an expression (the value of ``filter:`` and ``where:``)."""
    return _parse(text, "expr", max_depth)
