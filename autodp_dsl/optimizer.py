"""The optimizer: a tuple of small pure rules, each ``Strategy -> Strategy``.

Rules run in order (``RULES``); each must preserve the rows a strategy produces, which a property
test checks on generated frames. ``CANONICAL`` is the subset that only normalises the IR (so that
equal strategies get equal keys); ``optimize`` runs them all.

- ``fill_defaults``: every operator call carries all its parameters, defaults filled, sorted by name.
- ``fold_constants``: arithmetic and logic on literals are computed (``1 + 2`` -> ``3``,
  ``x and true`` -> ``x``).
- ``drop_true_filters``: ``filter: true`` and ``where: false`` blocks do nothing: removed.
- ``merge_adjacent_filters``: ``filter: a`` then ``filter: b`` -> ``filter: a and b`` (one pass over
  the rows; not canonical, since it changes the step keys the cache shares between strategies).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from . import ir
from .default_registry import registry
from .opregistry import Registry
from .types import BOOL, FLOAT, INT

__all__ = ["Rule", "RULES", "CANONICAL", "optimize", "canonicalize"]

Rule = Callable[[ir.Strategy, Registry], ir.Strategy]


def _map_steps(steps, fn_step, fn_expr):
    out = []
    for s in steps:
        if isinstance(s, ir.Where):
            s = replace(s, predicate=fn_expr(s.predicate), steps=tuple(_map_steps(s.steps, fn_step, fn_expr)))
        elif isinstance(s, ir.Filter):
            s = replace(s, predicate=fn_expr(s.predicate))
        elif isinstance(s, ir.Assign):
            s = replace(s, value=fn_expr(s.value))
        elif isinstance(s, ir.OpStep):
            s = replace(s, args=tuple(fn_expr(a) for a in s.args))
        s = fn_step(s)
        if s is not None:
            out.append(s)
    return out


def _map_expr(e: ir.Expr, fn) -> ir.Expr:
    """Bottom-up rewrite of an expression."""
    match e:
        case ir.ListLit(items=items):
            e = replace(e, items=tuple(_map_expr(i, fn) for i in items))
        case ir.Call(args=args):
            e = replace(e, args=tuple(_map_expr(a, fn) for a in args))
        case ir.BinOp(left=left, right=right):
            e = replace(e, left=_map_expr(left, fn), right=_map_expr(right, fn))
        case ir.UnOp(operand=operand):
            e = replace(e, operand=_map_expr(operand, fn))
    return fn(e)


def _full_params(reg: Registry, op_name: str, params) -> tuple:
    cls = reg.get(op_name)
    if cls is None:
        return tuple(sorted(params))
    model = cls.Params.model_validate(dict(params), strict=True)
    return tuple(sorted(ir.params_from_json(model.model_dump(mode="json")).__iter__()))


def fill_defaults(s: ir.Strategy, reg: Registry) -> ir.Strategy:
    def fix_expr(e):
        return _map_expr(e, lambda x: replace(x, params=_full_params(reg, x.op, x.params)) if isinstance(x, ir.Call) else x)

    def fix_step(st):
        return replace(st, params=_full_params(reg, st.op, st.params)) if isinstance(st, ir.OpStep) else st

    return replace(s, steps=tuple(_map_steps(s.steps, fix_step, fix_expr)))


_ARITH = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
_CMP = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _fold(e: ir.Expr) -> ir.Expr:
    if isinstance(e, ir.UnOp) and isinstance(e.operand, ir.Lit):
        v = e.operand.value
        return ir.Lit(not v, BOOL) if e.op == "not" else ir.Lit(-v, e.type)
    if not isinstance(e, ir.BinOp):
        return e
    a, b = e.left, e.right
    if e.op in ("and", "or"):
        for lit, other in ((a, b), (b, a)):
            if isinstance(lit, ir.Lit) and isinstance(lit.value, bool):
                # x and true -> x; x and false -> false; x or false -> x; x or true -> true
                # (only when x is null-free? filters treat null as false, so `x and true` keeps the same rows)
                if (e.op == "and") == lit.value:
                    return other
                return ir.Lit(lit.value, BOOL)
        return e
    if not (isinstance(a, ir.Lit) and isinstance(b, ir.Lit)):
        return e
    if e.op in _ARITH and (e.type == INT or e.type == FLOAT or e.type.name == "str"):
        v = _ARITH[e.op](a.value, b.value)
        return ir.Lit(float(v) if e.type == FLOAT else v, e.type)
    if e.op == "/" and b.value != 0:
        return ir.Lit(a.value / b.value, FLOAT)
    if e.op in _CMP:
        return ir.Lit(_CMP[e.op](a.value, b.value), BOOL)
    return e


def fold_constants(s: ir.Strategy, reg: Registry) -> ir.Strategy:
    return replace(s, steps=tuple(_map_steps(s.steps, lambda st: st, lambda e: _map_expr(e, _fold))))


def _defines_columns(st: ir.Where) -> bool:
    # a block that selects no rows still defines its columns (null everywhere): keep it
    return any(isinstance(x, ir.Assign) or (isinstance(x, ir.Where) and _defines_columns(x)) for x in st.steps)


def drop_true_filters(s: ir.Strategy, reg: Registry) -> ir.Strategy:
    def fix(st):
        if isinstance(st, ir.Filter) and isinstance(st.predicate, ir.Lit) and st.predicate.value is True:
            return None
        if isinstance(st, ir.Where) and not st.steps:  # everything inside was removed
            return None
        if isinstance(st, ir.Where) and isinstance(st.predicate, ir.Lit) and st.predicate.value is False and not _defines_columns(st):
            return None
        return st

    return replace(s, steps=tuple(_map_steps(s.steps, fix, lambda e: e)))


def merge_adjacent_filters(s: ir.Strategy, reg: Registry) -> ir.Strategy:
    def merge(steps):
        out: list[ir.Step] = []
        for st in steps:
            if isinstance(st, ir.Where):
                st = replace(st, steps=tuple(merge(st.steps)))
            if isinstance(st, ir.Filter) and out and isinstance(out[-1], ir.Filter):
                out[-1] = ir.Filter(ir.BinOp("and", out[-1].predicate, st.predicate, BOOL))
            else:
                out.append(st)
        return out

    return replace(s, steps=tuple(merge(s.steps)))


CANONICAL: tuple[Rule, ...] = (fill_defaults, fold_constants, drop_true_filters)
RULES: tuple[Rule, ...] = (*CANONICAL, merge_adjacent_filters)


def canonicalize(s: ir.Strategy, reg: Registry | None = None) -> ir.Strategy:
    reg = reg or registry()
    for rule in CANONICAL:
        s = rule(s, reg)
    return s


def optimize(s: ir.Strategy, reg: Registry | None = None, rules: tuple[Rule, ...] = RULES) -> ir.Strategy:
    reg = reg or registry()
    for rule in rules:
        s = rule(s, reg)
    return s
