"""IR helpers shared by the non-LLM agents: templates from the catalog, keys, parsing."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from autodp_dsl import compile_text, ir, strategy_to_text
from autodp_dsl.plan_keys import stable_hash
from autodp_dsl.types import BOOL, FLOAT, INT, STR, Type, parse_type

from .base import AgentContext, OpInfo

__all__ = [
    "Template",
    "build_templates",
    "parse_strategy",
    "strategy_key",
    "to_text",
    "text_columns",
]

QUANTILE_NAMES = ("p1", "p5", "p25", "p50", "p75", "p95", "p99")


def strategy_key(s: ir.Strategy) -> str:
    """Key of a canonical strategy: its steps (and required columns), not its name or description."""
    d = s.to_json()
    return stable_hash({"steps": d["steps"], "require": d["require"], "dp": d["dp"]})


def columns_of(ctx: AgentContext) -> dict[str, Type]:
    return {n: parse_type(t) for n, t in ctx.columns}


def parse_strategy(text: str, ctx: AgentContext, level: str = "none") -> ir.Strategy | None:
    r = compile_text(text, columns=columns_of(ctx), level="canonical")
    if not r.ok:
        return None
    if level == "none" and r.checked is not None:
        return r.checked
    return r.strategy


def canonical_key(text: str, ctx: AgentContext) -> str | None:
    r = compile_text(text, columns=columns_of(ctx), level="canonical")
    return strategy_key(r.strategy) if r.ok else None


def to_text(steps: tuple, name: str, description: str = "") -> str:
    return strategy_to_text(ir.Strategy(name=name, steps=tuple(steps), description=description))


def text_columns(ctx: AgentContext) -> list[str]:
    """Text columns to process, most important first (the response, then the prompt)."""
    strs = [n for n, t in ctx.columns if t == "str" and not n.startswith("__")]
    pref = [c for c in ("output", "response", "answer", "instruction", "question", "prompt", "input") if c in strs]
    skip = {"id", "source", "category", "uid", "url"}
    rest = [c for c in strs if c not in pref and c not in skip]
    cols = pref or rest
    # "input" is often empty: keep it last
    return [c for c in cols if c != "input"] + [c for c in cols if c == "input"]


class Template:
    """A step generator for one operator: makes a fresh step, mutates its numbers."""

    def __init__(self, op: OpInfo, kind: str, make, family: str):
        self.op = op
        self.kind = kind  # "map", "filter-op", "global", "signal-filter", "generate"
        self._make = make
        self.family = family

    def make(self, rng: random.Random, ctx: AgentContext) -> ir.Step | None:
        return self._make(rng, ctx)


def _lit(v: Any) -> ir.Lit:
    if isinstance(v, bool):
        return ir.Lit(v, BOOL)
    if isinstance(v, int):
        return ir.Lit(v, INT)
    if isinstance(v, float):
        return ir.Lit(v, FLOAT)
    return ir.Lit(v, STR)


def _arg_exprs(op: OpInfo, cols: list[str], rng: random.Random, ctx: AgentContext) -> tuple | None:
    """Arguments for an operator: text columns for str args; None when the op needs more."""
    out: list[ir.Expr] = []
    for a in op.args:
        t = a["type"]
        if t == "str" or t == "any":
            if a.get("variadic"):
                two = [c for c in cols[:2]]
                pick = two if (len(two) == 2 and rng.random() < 0.6) else [cols[0]]
                # instruction before output reads naturally
                pick = sorted(pick, key=lambda c: (c != "instruction", c))
                out.extend(ir.Col(c, STR) for c in pick)
            else:
                out.append(ir.Col(cols[0] if rng.random() < 0.75 else cols[min(1, len(cols) - 1)], STR))
        elif t in ("float", "int") and ctx.target_column and not a.get("column"):
            # a numeric score argument (e.g. select.top(score, ...)): low-quality score inverted
            out.append(ir.BinOp("-", _lit(1.0), ir.Col(ctx.target_column, FLOAT), FLOAT))
        else:
            return None
    return tuple(out)


def random_param_value(p: dict[str, Any], rng: random.Random, current: Any = None) -> Any:
    """A value inside the parameter's declared range (near ``current`` when given)."""
    if "choices" in p:
        choices = [c for c in p["choices"] if c != current] or p["choices"]
        return rng.choice(choices)
    t = p.get("type")
    if t == "bool":
        return (not current) if isinstance(current, bool) else rng.random() < 0.5
    lo = p.get("ge", p.get("gt"))
    hi = p.get("le", p.get("lt"))
    if t == "int":
        base = current if isinstance(current, int) else p.get("default", 1)
        if not isinstance(base, int):
            return None
        step = max(1, abs(base) // 4)
        v = base + rng.choice([-1, 1]) * rng.randint(1, step)
        if lo is not None:
            v = max(v, int(lo) + (1 if "gt" in p else 0))
        if hi is not None:
            v = min(v, int(hi) - (1 if "lt" in p else 0))
        return v
    if t == "float":
        base = current if isinstance(current, int | float) and not isinstance(current, bool) else p.get("default")
        if not isinstance(base, int | float):
            if lo is None or hi is None:
                return None
            base = (lo + hi) / 2
        if lo is not None and hi is not None:
            span = float(hi) - float(lo)
            v = float(base) + rng.gauss(0, span * 0.15)
        else:
            v = float(base) * rng.uniform(0.6, 1.5)
        eps = 1e-6
        if lo is not None:
            v = max(v, float(lo) + (eps if "gt" in p else 0.0))
        if hi is not None:
            v = min(v, float(hi) - (eps if "lt" in p else 0.0))
        return round(v, 3)
    return None


# Signals whose large values usually mean trouble; for the others, small values do.
_UPPER_HINTS = ("ratio", "repetition", "special", "flag", "perplexity", "toxic", "lowq", "noise", "dup", "markup", "html")


def _signal_default_bound(op: OpInfo) -> str:
    return "<=" if any(h in op.name for h in _UPPER_HINTS) else ">="


def threshold_for(op: OpInfo, col: str, bound: str, rng: random.Random, ctx: AgentContext) -> Any:
    qs = ctx.quantiles(op.name, col)
    if qs:
        names = ("p1", "p5", "p25") if bound == ">=" else ("p75", "p95", "p99")
        vals = [qs[n] for n in names if n in qs]
        if vals:
            v = rng.choice(vals)
            return int(round(v)) if op.returns == "int" else round(float(v), 4)
    if op.returns == "int":
        return rng.choice([3, 5, 10, 20]) if bound == ">=" else rng.choice([200, 500, 1000, 2000])
    return rng.choice([0.1, 0.2, 0.3]) if bound == ">=" else rng.choice([0.3, 0.5, 0.7])


def build_templates(ctx: AgentContext, costs: tuple[str, ...] = ("vectorised", "model")) -> list[Template]:
    """Step templates for every usable operator of the catalog."""
    cols = text_columns(ctx)
    if not cols:
        return []
    out: list[Template] = []
    for op in ctx.catalog:
        if op.cost not in costs:
            continue
        if op.kind == "signal":
            if op.returns not in ("int", "float", "bool") or not op.args:
                continue
            if any(a["type"] not in ("str", "any") for a in op.args) or any(a.get("variadic") for a in op.args):
                continue
            if len(op.args) != 1:
                continue

            def make(rng, ctx, op=op):
                col = cols[0] if rng.random() < 0.7 else cols[min(1, len(cols) - 1)]
                call = ir.Call(op.name, (ir.Col(col, STR),), (), parse_type(op.returns))
                if op.returns == "bool":
                    pred = ir.UnOp("not", call, BOOL) if rng.random() < 0.5 else call
                    return ir.Filter(pred)
                bound = _signal_default_bound(op) if rng.random() < 0.75 else ("<=" if _signal_default_bound(op) == ">=" else ">=")
                return ir.Filter(ir.BinOp(bound, call, _lit(threshold_for(op, col, bound, rng, ctx)), BOOL))

            out.append(Template(op, "signal-filter", make, op.family))
        elif op.kind in ("map", "filter", "global", "generate"):

            def make(rng, ctx, op=op):
                args = _arg_exprs(op, cols, rng, ctx)
                if args is None:
                    return None
                return ir.OpStep(op.name, args, ())

            kind = {"filter": "filter-op"}.get(op.kind, op.kind)
            out.append(Template(op, kind, make, op.family))
    return out


def replace_step(steps: tuple, i: int, new: ir.Step | None) -> tuple:
    lst = list(steps)
    if new is None:
        del lst[i]
    else:
        lst[i] = new
    return tuple(lst)


def with_steps(s: ir.Strategy, steps: tuple) -> ir.Strategy:
    return replace(s, steps=tuple(steps))
