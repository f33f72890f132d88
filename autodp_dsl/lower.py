"""Lowering of typed IR to Polars lazy plans.

``lower_expr`` turns an IR expression into a ``pl.Expr``; ``lower_step`` applies one step to a
``LazyFrame``. A step that drops rows leaves a boolean ``KEEP`` column; ``Context.drop`` removes the
false rows (the executor's context also records which rows went and why). ``lower_strategy`` is
the plain, uncached composition used by ``autodp compile`` and by tests; the executor composes the
same functions with node keys and a cache.

Signal calls inside expressions go through ``Context.statistic``, so the expensive value becomes
a named column that candidates sharing it compute once, and the threshold stays a cheap
expression on top.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from . import ir
from .declarations import KEEP, REASON, ROW_ID, OpKind
from .default_registry import registry
from .ir import Assign, BinOp, Call, Col, Filter, ListLit, Lit, OpStep, UnOp, Where
from .opregistry import Registry
from .plan_keys import STAT_PREFIX, stat_column_name

__all__ = ["Context", "lower_expr", "lower_step", "lower_strategy", "with_row_ids"]

_BIN = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
}


class Context:
    """The plain lowering context: statistics are ordinary columns, nothing is cached.

    Subclasses (the executor's) override ``statistic`` to share and cache columns and ``drop`` to
    account for dropped rows.
    """

    def __init__(self, reg: Registry | None = None, services: dict[str, Any] | None = None):
        self.registry = reg or registry()
        self.services = services or {}
        self.hoisted: dict[Call, str] = {}  # signal call -> its statistic column, for the current step

    # -- the LowerContext protocol used by operators
    def expr(self, e: ir.Expr) -> pl.Expr:
        return lower_expr(e, self)

    def statistic(self, lf: pl.LazyFrame, name: str, spec: dict[str, Any], expr: pl.Expr) -> tuple[pl.LazyFrame, str]:
        col = stat_column_name(name, spec)
        if col not in lf.collect_schema().names():
            lf = lf.with_columns(expr.alias(col))
        return lf, col

    def service(self, name: str) -> Any:
        return self.services.get(name)

    # -- hooks for the executor
    def enter(self, step: ir.Step, path: str) -> None:
        """Called as each step (nested ones too) starts lowering; the executor tracks frame keys here."""

    def drop(self, lf: pl.LazyFrame, path: str, step: ir.Step) -> pl.LazyFrame:
        """Remove the rows whose ``KEEP`` is false (``path`` names the step, e.g. ``3`` or ``5.2``)."""
        return lf.filter(pl.col(KEEP)).drop(KEEP, REASON, strict=False)

    def signal_column(self, lf: pl.LazyFrame, call: Call) -> tuple[pl.LazyFrame, str]:
        """Materialise a signal call as a statistic column (shared by every use of the same call)."""
        op = self.registry.get(call.op)()
        params = op.Params(**call.kwargs)
        args = [lower_expr(a, self) for a in call.args]
        spec = {"op": call.op, "v": op.version, "args": [ir.expr_to_json(a) for a in call.args], "params": params.model_dump(mode="json")}
        extra = op.identity(params, self)
        if extra:
            spec["identity"] = extra
        return self.statistic(lf, call.op, spec, op.signal_expr(args, params, self))


def lower_expr(e: ir.Expr, ctx: Context) -> pl.Expr:
    """Lower an expression; signal calls hoisted by ``hoist_signals`` read their column."""
    match e:
        case Col(name=name):
            return pl.col(name)
        case Lit(value=value):
            return pl.lit(value)
        case ListLit(items=items):
            return pl.concat_list([lower_expr(i, ctx) for i in items]) if items else pl.lit([])
        case Call(op=op_name, args=args, params=params):
            col = ctx.hoisted.get(e)
            if col is not None:
                return pl.col(col)
            op = ctx.registry.get(op_name)()
            return op.signal_expr([lower_expr(a, ctx) for a in args], op.Params(**dict(params)), ctx)
        case BinOp(op=op, left=left, right=right):
            a, b = lower_expr(left, ctx), lower_expr(right, ctx)
            if op == "+" and left.type.name == "str":
                return pl.concat_str([a, b])
            if op == "/":  # x / 0 is null, not inf: a ratio of an empty text has no value
                return pl.when(b != 0).then(a.cast(pl.Float64) / b).otherwise(None)
            return _BIN[op](a, b)
        case UnOp(op=op, operand=operand):
            v = lower_expr(operand, ctx)
            return ~v if op == "not" else -v
    raise TypeError(f"not an expression: {e!r}")


def hoist_signals(lf: pl.LazyFrame, e: ir.Expr, ctx: Context) -> pl.LazyFrame:
    """Turn every signal call inside ``e`` into a statistic column before the expression runs."""
    for sub in ir.walk_exprs(e):
        if isinstance(sub, Call) and sub not in ctx.hoisted:
            lf, col = ctx.signal_column(lf, sub)
            ctx.hoisted[sub] = col
    return lf


def lower_step(step: ir.Step, lf: pl.LazyFrame, ctx: Context, path: str) -> pl.LazyFrame:
    """Apply one step; rows it drops are removed through ``ctx.drop``."""
    ctx.enter(step, path)
    ctx.hoisted = {}
    match step:
        case OpStep(op=op_name, args=args, params=params):
            op = ctx.registry.get(op_name)()
            for a in args:
                lf = hoist_signals(lf, a, ctx)
            out = op.lower(lf, list(args), op.Params(**dict(params)), ctx)
            if op.kind in (OpKind.FILTER, OpKind.GLOBAL):
                out = ctx.drop(out, path, step)
            return out
        case Filter(predicate=p):
            lf = hoist_signals(lf, p, ctx)
            return ctx.drop(lf.with_columns(lower_expr(p, ctx).fill_null(False).alias(KEEP)), path, step)
        case Assign(name=name, value=value):
            lf = hoist_signals(lf, value, ctx)
            return lf.with_columns(lower_expr(value, ctx).alias(name))
        case Where(predicate=p, steps=steps):
            lf = hoist_signals(lf, p, ctx)
            gate = lower_expr(p, ctx).fill_null(False)
            lf = lf.with_columns(gate.alias("__gate"))
            inside = lf.filter(pl.col("__gate")).drop("__gate")
            outside = lf.filter(~pl.col("__gate")).drop("__gate")
            before = set(lf.collect_schema().names())
            for i, s in enumerate(steps, 1):
                inside = lower_step(s, inside, ctx, f"{path}.{i}")
            # statistics computed inside the block exist for the gated rows only (null for the
            # others after the concat): they stay local, and a later step computes its own
            local = [c for c in inside.collect_schema().names() if c.startswith(STAT_PREFIX) and c not in before]
            return pl.concat([inside.drop(local), outside], how="diagonal_relaxed").sort(ROW_ID)
    raise TypeError(f"not a step: {step!r}")


def with_row_ids(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Give every input row its stable id: its 0-based position in the input."""
    if ROW_ID in lf.collect_schema().names():
        return lf
    return lf.with_row_index(ROW_ID).with_columns(pl.col(ROW_ID).cast(pl.UInt64))


def lower_strategy(strategy: ir.Strategy, lf: pl.LazyFrame, ctx: Context | None = None, *, keep_internal: bool = False) -> pl.LazyFrame:
    """The whole strategy as one lazy plan over ``lf`` (row ids added if missing)."""
    ctx = ctx or Context()
    lf = with_row_ids(lf)
    for i, step in enumerate(strategy.steps, 1):
        lf = lower_step(step, lf, ctx, str(i))
    if not keep_internal:
        lf = lf.select(pl.exclude("^__.*$"))
    return lf
