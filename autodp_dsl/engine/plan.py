"""What both executors share: a strategy's plan (canonical order and node keys), the columns it
needs, each step's kind and cost, and how dropped rows are recorded while a step is lowered.

The in-memory executor (``executor``) and the out-of-core one (``streaming``) both import this
module and neither imports the other's internals, so a change to planning or to drop accounting
is made once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl

from .. import ir
from ..declarations import KEEP, REASON, ROW_ID
from ..default_registry import registry as default_registry
from ..lower import Context
from ..opregistry import Registry
from ..types import ANY, Type
from .keys import canonical_order, free_columns, node_key, root_key, step_payload

__all__ = ["Plan", "plan_strategy", "strategy_keys", "required_columns", "step_kind", "drop_reason", "reason_counts", "DropRecorder"]


@dataclass(slots=True)
class Plan:
    """One strategy's chain: canonical order (indices into ``strategy.steps``) and node keys."""

    strategy: ir.Strategy
    order: list[int]
    keys: list[str]
    payloads: list[dict[str, Any]]


def plan_strategy(strategy: ir.Strategy, root: str, reg: Registry | None = None, services: dict[str, Any] | None = None) -> Plan:
    reg = reg or default_registry()
    steps = list(strategy.steps)
    payloads = [step_payload(s, reg, services) for s in steps]
    order = canonical_order(steps, reg, payloads)
    keys, k = [], root
    for i in order:
        k = node_key(k, payloads[i])
        keys.append(k)
    return Plan(strategy, order, keys, [payloads[i] for i in order])


def strategy_keys(strategy: ir.Strategy, fingerprint: str, reg: Registry | None = None) -> list[str]:
    """The node keys of a strategy over data with this fingerprint, in execution order."""
    return plan_strategy(strategy, root_key(fingerprint), reg).keys


def required_columns(strategies: Iterable[ir.Strategy]) -> dict[str, Type]:
    """Fields every input record must have: the declared input columns, else the columns read."""
    out: dict[str, Type] = {}
    for s in strategies:
        cols = {n: t for n, t in s.columns} if s.columns else {n: c.type for n, c in free_columns(s).items()}
        for n, t in cols.items():
            if n not in out or out[n] == ANY:
                out[n] = t
    return out


def step_kind(step: ir.Step, reg: Registry) -> tuple[str, str]:
    """(kind, cost) of a step for accounting and policy."""
    match step:
        case ir.OpStep(op=op):
            cls = reg.get(op)
            return str(cls.kind), str(cls.cost)
        case ir.Filter():
            return "filter", "vectorised"
        case ir.Assign():
            return "assign", "vectorised"
        case ir.Where(steps=steps):
            costs = [step_kind(s, reg)[1] for s in steps]
            cost = "llm" if "llm" in costs else "model" if "model" in costs else "vectorised"
            return "where", cost
    raise TypeError(f"not a step: {step!r}")


def drop_reason(columns: Iterable[str], text: str) -> pl.Expr:
    """Why a row is dropped: the step's own ``REASON`` when it gives one, else the step's text."""
    reason = pl.lit(text)
    if REASON in columns:
        reason = pl.coalesce(pl.col(REASON).cast(pl.String), reason)
    return reason


def reason_counts(dropped: pl.DataFrame, most: int = 20) -> dict[str, int]:
    """Dropped rows per reason; when a step gives many distinct reasons ("near-duplicate of row
    17"), numbers are folded ("near-duplicate of row N") so the summary stays a summary. The dropped
    ids keep every reason in full."""
    counts = dropped.group_by("reason").len()
    if counts.height > most:
        counts = dropped.group_by(pl.col("reason").str.replace_all(r"\d+(\.\d+)?", "N")).len()
    return dict(counts.sort("reason").iter_rows())


class DropRecorder(Context):
    """The lowering context of both executors' drops.

    A top-level step's rows are split by its ``KEEP`` column after the step runs (exact, one pass),
    so ``drop`` leaves the frame alone there. A nested step (inside a ``where:`` block, ``path`` like
    ``5.2``) drops rows mid-query: its dropped ids and reasons become a side query, kept in
    ``side_drops`` as ``(path, frame of ROW_ID, reason)``, which the executor collects with the step.
    """

    def __init__(self, reg: Registry | None = None, services: dict[str, Any] | None = None):
        super().__init__(reg, services)
        self.side_drops: list[tuple[str, pl.LazyFrame]] = []

    def drop(self, lf: pl.LazyFrame, path: str, step: ir.Step) -> pl.LazyFrame:
        names = lf.collect_schema().names()  # resolved here: a step's type error is raised while it is lowered
        if "." not in path:
            return lf
        keep = pl.col(KEEP).fill_null(False)
        self.side_drops.append((path, lf.filter(~keep).select(pl.col(ROW_ID), drop_reason(names, ir.step_text(step)).alias("reason"))))
        return lf.filter(keep).drop([KEEP, *([REASON] if REASON in names else [])])
