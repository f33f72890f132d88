"""The typed intermediate representation of a strategy.

The checker produces it, the optimizer rewrites it (pure ``Strategy -> Strategy`` rules), the
hasher keys it and the lowering turns it into Polars. Every node serialises to JSON and back
(``to_json`` / ``from_json``); source spans travel with the nodes for diagnostics but are left out
of the canonical form, so two strategies that differ only in layout have equal canonical JSON.

Expressions: ``Col``, ``Lit``, ``ListLit``, ``Call`` (a signal operator), ``BinOp``, ``UnOp``.
Steps: ``OpStep`` (a step operator such as ``clean.html(output)``), ``Filter``, ``Assign``
(``score = expr``) and ``Where`` (a gated block).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .types import Type, parse_type

__all__ = [
    "IR_VERSION",
    "Span",
    "Expr",
    "Col",
    "Lit",
    "ListLit",
    "Call",
    "BinOp",
    "UnOp",
    "Step",
    "OpStep",
    "Filter",
    "Assign",
    "Where",
    "Strategy",
    "canonical_json",
    "expr_text",
    "step_text",
    "walk_exprs",
]

# Bump when the meaning of the IR changes: every cache key changes with it.
IR_VERSION = 1


@dataclass(frozen=True, slots=True)
class Span:
    """1-based line and column in the .dp file, plus the end column (exclusive) on that line."""

    line: int
    col: int
    end_col: int | None = None


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Col:
    name: str
    type: Type = Type("any")
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Lit:
    value: Any  # str | int | float | bool
    type: Type = Type("any")
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Expr, ...]
    type: Type = Type("any")
    span: Span | None = field(default=None, compare=False)


class _Applied:
    """What an operator applied to arguments has: ``params``, its keyword parameters as pairs."""

    __slots__ = ()
    params: tuple[tuple[str, Any], ...]

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True, slots=True)
class Call(_Applied):
    """A signal operator used inside an expression, e.g. ``words(output)``.

    ``params`` holds the keyword parameters as plain JSON values, with defaults filled once the
    optimizer has run (so equal calls compare and hash equal).
    """

    op: str
    args: tuple[Expr, ...]
    params: tuple[tuple[str, Any], ...] = ()
    type: Type = Type("any")
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str  # + - * / == != < <= > >= and or
    left: Expr
    right: Expr
    type: Type = Type("any")
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class UnOp:
    op: str  # not, -
    operand: Expr
    type: Type = Type("any")
    span: Span | None = field(default=None, compare=False)


Expr = Col | Lit | ListLit | Call | BinOp | UnOp

# ---------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True)
class OpStep(_Applied):
    """A step operator: ``clean.html(output)``, ``dedup.minhash(...)``, ``select.top(...)``."""

    op: str
    args: tuple[Expr, ...]
    params: tuple[tuple[str, Any], ...] = ()
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Filter:
    predicate: Expr
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Assign:
    """``name = expr``: defines (or overwrites) a column that later steps can use."""

    name: str
    value: Expr
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Where:
    """Apply ``steps`` to the rows where ``predicate`` holds; pass the others through unchanged."""

    predicate: Expr
    steps: tuple[Step, ...]
    span: Span | None = field(default=None, compare=False)


Step = OpStep | Filter | Assign | Where


@dataclass(frozen=True, slots=True)
class Strategy:
    name: str
    steps: tuple[Step, ...]
    description: str = ""
    columns: tuple[tuple[str, Type], ...] = ()  # declared input columns, in order
    require: tuple[str, ...] = ()  # columns the output must still have
    dp: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "dp": self.dp,
            "ir_version": IR_VERSION,
            "name": self.name,
            "description": self.description,
            "columns": {n: str(t) for n, t in self.columns},
            "require": list(self.require),
            "steps": [_step_to_json(s) for s in self.steps],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Strategy:
        return cls(
            dp=data.get("dp", 1),
            name=data["name"],
            description=data.get("description", ""),
            columns=tuple((n, parse_type(t)) for n, t in data.get("columns", {}).items()),
            require=tuple(data.get("require", ())),
            steps=tuple(_step_from_json(s) for s in data["steps"]),
        )

    def replace(self, **changes) -> Strategy:
        return replace(self, **changes)


# ---------------------------------------------------------------- JSON


def _params_to_json(params) -> dict[str, Any]:
    return {k: v for k, v in params}


def params_from_json(d: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Keyword parameters as the IR holds them (a tuple of pairs, lists frozen to tuples), from JSON."""
    return tuple((k, _freeze(v)) for k, v in d.items())


def _freeze(v: Any) -> Any:
    return tuple(_freeze(x) for x in v) if isinstance(v, list | tuple) else v


def _thaw(v: Any) -> Any:
    return [_thaw(x) for x in v] if isinstance(v, tuple) else v


def expr_to_json(e: Expr) -> dict[str, Any]:
    t = str(e.type)
    match e:
        case Col(name=name):
            return {"col": name, "type": t}
        case Lit(value=value):
            return {"lit": value, "type": t}
        case ListLit(items=items):
            return {"list": [expr_to_json(i) for i in items], "type": t}
        case Call(op=op, args=args, params=params):
            return {
                "call": op,
                "args": [expr_to_json(a) for a in args],
                "params": {k: _thaw(v) for k, v in params},
                "type": t,
            }
        case BinOp(op=op, left=left, right=right):
            return {"binop": op, "left": expr_to_json(left), "right": expr_to_json(right), "type": t}
        case UnOp(op=op, operand=operand):
            return {"unop": op, "operand": expr_to_json(operand), "type": t}
    raise TypeError(f"not an expression: {e!r}")


def expr_from_json(d: dict[str, Any]) -> Expr:
    t = parse_type(d.get("type", "any"))
    if "col" in d:
        return Col(d["col"], t)
    if "lit" in d:
        return Lit(d["lit"], t)
    if "list" in d:
        return ListLit(tuple(expr_from_json(i) for i in d["list"]), t)
    if "call" in d:
        return Call(d["call"], tuple(expr_from_json(a) for a in d["args"]), params_from_json(d["params"]), t)
    if "binop" in d:
        return BinOp(d["binop"], expr_from_json(d["left"]), expr_from_json(d["right"]), t)
    if "unop" in d:
        return UnOp(d["unop"], expr_from_json(d["operand"]), t)
    raise ValueError(f"not an expression: {d!r}")


def _step_to_json(s: Step) -> dict[str, Any]:
    match s:
        case OpStep(op=op, args=args, params=params):
            return {"op": op, "args": [expr_to_json(a) for a in args], "params": {k: _thaw(v) for k, v in params}}
        case Filter(predicate=p):
            return {"filter": expr_to_json(p)}
        case Assign(name=name, value=value):
            return {"assign": name, "value": expr_to_json(value)}
        case Where(predicate=p, steps=steps):
            return {"where": expr_to_json(p), "do": [_step_to_json(x) for x in steps]}
    raise TypeError(f"not a step: {s!r}")


def _step_from_json(d: dict[str, Any]) -> Step:
    if "op" in d:
        return OpStep(d["op"], tuple(expr_from_json(a) for a in d["args"]), params_from_json(d.get("params", {})))
    if "filter" in d:
        return Filter(expr_from_json(d["filter"]))
    if "assign" in d:
        return Assign(d["assign"], expr_from_json(d["value"]))
    if "where" in d:
        return Where(expr_from_json(d["where"]), tuple(_step_from_json(x) for x in d["do"]))
    raise ValueError(f"not a step: {d!r}")


step_to_json = _step_to_json
step_from_json = _step_from_json


def canonical_json(obj: Any) -> str:
    """The one canonical text of a JSON value: sorted keys, no spaces, exact floats."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# ---------------------------------------------------------------- text (the DSL spelling)

_PREC = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5, "*": 6, "/": 6}
COMPARISON_PREC = 4  # comparisons do not chain: each side of one is parenthesised when it is one too
NEG_PREC = 7
_SHORT_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def _str_text(v: str) -> str:
    """A string literal that reads back as ``v``: every character that is not printable (line
    separators, controls, lone surrogates, U+FEFF) as an escape, so the step text survives YAML."""
    if v.isprintable() and '"' not in v and "\\" not in v:
        return f'"{v}"'
    out = []
    for ch in v:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            o = ord(ch)
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    return '"' + "".join(out) + '"'


def neg_text(operand: str) -> str:
    """``-`` before an operand's text: the sign binds only to a word, ``(``, ``[`` or ``.`` right
    after it (``-x``, ``-(a + b)``); anything else is parenthesised (``-(-1)``, not ``--1``)."""
    return f"-{operand}" if operand[:1].isalnum() or operand[:1] in "_([." else f"-({operand})"


def operator_text(op: str, operands: tuple, parent_prec: int, text_of: Callable[[Any, int], str]) -> str:
    """An operator applied to its operands in infix spelling, with the fewest parentheses: the one
    precedence rule of both printers (``expr_text`` over the IR, ``fmt.ast_text`` over the syntax
    tree). ``text_of(operand, prec)`` spells an operand that sits where ``prec`` binds."""
    if len(operands) == 2:
        p = _PREC[op]
        # left-associative: the right operand needs parens at equal precedence (both do for a
        # comparison, which does not chain: `(a > 1) == (b > 2)`)
        text = f"{text_of(operands[0], p + (p == COMPARISON_PREC))} {op} {text_of(operands[1], p + 1)}"
    elif op == "not":
        p = _PREC["not"]
        text = f"not {text_of(operands[0], p)}"
    else:  # the sign
        return neg_text(text_of(operands[0], NEG_PREC))
    return f"({text})" if p < parent_prec else text


def lit_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return _str_text(v)
    if isinstance(v, float):
        r = repr(v)
        return r if ("." in r or "e" in r or "n" in r) else r + ".0"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(lit_text(x) for x in v) + "]"
    return str(v)


_KEYWORDS = ("and", "or", "not", "true", "false")


def col_text(name: str) -> str:
    """A column reference as written in the DSL: bare when it is an identifier, else `quoted`."""
    import re

    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and name not in _KEYWORDS else f"`{name}`"


def _call_text(op: str, args, params) -> str:
    parts = [expr_text(a) for a in args] + [f"{k}={lit_text(v)}" for k, v in params]
    return f"{op}({', '.join(parts)})"


def expr_text(e: Expr, parent_prec: int = 0) -> str:
    """Render an expression in canonical DSL syntax (minimal parentheses)."""
    match e:
        case Col(name=name):
            return col_text(name)
        case Lit(value=value):
            return lit_text(value)
        case ListLit(items=items):
            return "[" + ", ".join(expr_text(i) for i in items) + "]"
        case Call(op=op, args=args, params=params):
            return _call_text(op, args, params)
        case BinOp(op=op, left=left, right=right):
            return operator_text(op, (left, right), parent_prec, expr_text)
        case UnOp(op=op, operand=operand):
            return operator_text(op, (operand,), parent_prec, expr_text)
    raise TypeError(f"not an expression: {e!r}")


def step_text(s: Step) -> str:
    """One-line DSL text of a non-block step (a Where renders its predicate only)."""
    match s:
        case OpStep(op=op, args=args, params=params):
            return _call_text(op, args, params)
        case Filter(predicate=p):
            return f"filter: {expr_text(p)}"
        case Assign(name=name, value=value):
            return f"{col_text(name)} = {expr_text(value)}"
        case Where(predicate=p):
            return f"where: {expr_text(p)}"
    raise TypeError(f"not a step: {s!r}")


def walk_exprs(e: Expr):
    """Yield ``e`` and every sub-expression, parents first."""
    yield e
    match e:
        case ListLit(items=items):
            for i in items:
                yield from walk_exprs(i)
        case Call(args=args):
            for a in args:
                yield from walk_exprs(a)
        case BinOp(left=left, right=right):
            yield from walk_exprs(left)
            yield from walk_exprs(right)
        case UnOp(operand=operand):
            yield from walk_exprs(operand)
