"""The untyped syntax tree of step strings: what the parsers build and the type checker reads.

Positions are offsets into the step string (0-based start, exclusive end); the document loader maps
them to file lines and columns.
"""

from __future__ import annotations

import ast as pyast
from dataclasses import dataclass, field, replace

__all__ = ["AST", "ACol", "ALit", "AList", "ACall", "AKwarg", "ABin", "AUn", "AAssign", "SyntaxProblem", "unescape", "widen"]


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
    code: str = "syntax-error"


def widen(e, start: int, end: int):
    """``(e)``: the expression with its span widened to the parentheses."""
    return replace(e, start=start, end=end)


def unescape(tok: str) -> str:
    """The value of a string literal token. Python's literal syntax covers both quote styles and
    the usual escapes; it is safe (no eval)."""
    try:
        return pyast.literal_eval(tok)
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"invalid string literal: {e}") from None
