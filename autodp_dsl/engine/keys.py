"""Node keys: a hash chain over the canonical IR, with commutation-aware step order.

A step's key is ``stable_hash`` (sha256 over canonical JSON) of its parent's key (or the input
data's fingerprint), the step's canonical payload (operator name, operator ``version``, canonical
parameters with defaults filled, the versions of the signals it calls) and ``IR_VERSION``. Python
``hash()``, Polars expression hashes and ``serialize()`` bytes are never used: none is stable.

Before keys are chained, steps are put in a canonical order where that is safe: adjacent row-wise
filters commute with each other, and row-wise maps (and assignments) commute when neither reads or
writes a column the other writes. The canonical order is the lexicographically smallest order
(by the steps' canonical JSON) that keeps every non-commuting pair in its original order, so every
reordering a user could make by swapping commuting neighbours gives the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import ir
from ..declarations import OpKind
from ..ir import IR_VERSION, Assign, Call, Col, Filter, OpStep, Where
from ..opregistry import Registry
from ..plan_keys import stable_hash

__all__ = [
    "canonical_expr",
    "step_payload",
    "node_key",
    "root_key",
    "stat_key",
    "canonical_order",
    "free_columns",
    "StepClass",
    "classify",
]


def _op(reg: Registry, name: str):
    cls = reg.get(name)
    if cls is None:
        raise KeyError(f"unknown operator {name!r}")
    return cls


def _canonical_params(reg: Registry, op_name: str, params) -> dict[str, Any]:
    """Parameters with defaults filled, as JSON values (the optimizer fills them too; this is idempotent)."""
    cls = _op(reg, op_name)
    return cls.Params(**dict(params)).model_dump(mode="json")


def canonical_expr(e: ir.Expr, reg: Registry) -> dict[str, Any]:
    """``ir.expr_to_json`` with every signal call's parameters filled and its version added."""
    d = ir.expr_to_json(e)

    def fix(node: ir.Expr, js: dict[str, Any]) -> None:
        match node:
            case Call(op=op, args=args, params=params):
                js["params"] = _canonical_params(reg, op, params)
                js["v"] = _op(reg, op).version
                for a, ja in zip(args, js["args"], strict=True):
                    fix(a, ja)
            case ir.ListLit(items=items):
                for a, ja in zip(items, js["list"], strict=True):
                    fix(a, ja)
            case ir.BinOp(left=left, right=right):
                fix(left, js["left"])
                fix(right, js["right"])
            case ir.UnOp(operand=operand):
                fix(operand, js["operand"])

    fix(e, d)
    return d


def step_payload(step: ir.Step, reg: Registry, services: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a step contributes to its node key: op name, op version, canonical parameters."""
    match step:
        case OpStep(op=op, args=args, params=params):
            cls = _op(reg, op)
            out: dict[str, Any] = {
                "op": op,
                "v": cls.version,
                "args": [canonical_expr(a, reg) for a in args],
                "params": _canonical_params(reg, op, params),
            }
            fp = _services_fingerprint(services) if cls.cost != "vectorised" else None
            if fp:
                out["services"] = fp
            return out
        case Filter(predicate=p):
            return {"op": "filter", "predicate": canonical_expr(p, reg)}
        case Assign(name=name, value=value):
            return {"op": "assign", "name": name, "value": canonical_expr(value, reg)}
        case Where(predicate=p, steps=steps):
            return {"op": "where", "predicate": canonical_expr(p, reg), "do": [step_payload(s, reg, services) for s in steps]}
    raise TypeError(f"not a step: {step!r}")


def _services_fingerprint(services: dict[str, Any] | None) -> dict[str, Any] | None:
    """Model/LLM results depend on the backend: services that expose ``cache_key`` enter the key."""
    if not services:
        return None
    out = {}
    for name, svc in sorted(services.items()):
        k = getattr(svc, "cache_key", None)
        if callable(k):
            k = k()
        if k is not None:
            out[name] = k
    return out or None


def root_key(fingerprint: str) -> str:
    """The key of the input node: the data's fingerprint (already a sha256 over content + reader)."""
    return stable_hash({"data": fingerprint, "ir": IR_VERSION})


def node_key(parent_key: str, payload: dict[str, Any]) -> str:
    return stable_hash({"parent": parent_key, "step": payload, "ir": IR_VERSION})


def stat_key(frame_key: str, spec: dict[str, Any]) -> str:
    """A statistic depends on the rows present: it is keyed by the frame it is computed on."""
    return stable_hash({"on": frame_key, "stat": spec, "ir": IR_VERSION})


# ---------------------------------------------------------------- commutation


@dataclass(frozen=True, slots=True)
class StepClass:
    """How a step may move: ``filter`` (row-wise filter), ``map`` (row-wise rewrite of ``writes``
    reading ``reads``) or ``barrier`` (stays where it is relative to everything)."""

    kind: str
    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()


_BARRIER = StepClass("barrier")


def _cols(e: ir.Expr) -> set[str]:
    return {x.name for x in ir.walk_exprs(e) if isinstance(x, Col)}


def _calls_commute(e: ir.Expr, reg: Registry) -> bool:
    for x in ir.walk_exprs(e):
        if isinstance(x, Call):
            cls = reg.get(x.op)
            if cls is None or not cls.commutes or not cls.deterministic:
                return False
    return True


def classify(step: ir.Step, reg: Registry) -> StepClass:
    match step:
        case Filter(predicate=p):
            return StepClass("filter", frozenset(_cols(p))) if _calls_commute(p, reg) else _BARRIER
        case Assign(name=name, value=value):
            if not _calls_commute(value, reg):
                return _BARRIER
            return StepClass("map", frozenset(_cols(value)), frozenset({name}))
        case OpStep(op=op, args=args, params=params):
            cls = reg.get(op)
            if cls is None or not cls.commutes or not cls.deterministic:
                return _BARRIER
            if not all(_calls_commute(a, reg) for a in args):
                return _BARRIER
            reads: set[str] = set()
            for a in args:
                reads |= _cols(a)
            if cls.kind == OpKind.FILTER:
                return StepClass("filter", frozenset(reads))
            if cls.kind == OpKind.MAP:
                targets = [a.name for a in args if isinstance(a, Col)]
                p = cls.Params(**dict(params))
                writes = set(cls().written_columns(targets, p)) | set(cls().removed_columns(targets, p))
                return StepClass("map", frozenset(reads), frozenset(writes))
    return _BARRIER


def commute(a: StepClass, b: StepClass) -> bool:
    if a.kind == "filter" and b.kind == "filter":
        return True
    if a.kind == "map" and b.kind == "map":
        return not (a.writes & b.writes or a.writes & b.reads or a.reads & b.writes)
    return False


def canonical_order(steps: tuple[ir.Step, ...] | list[ir.Step], reg: Registry, payloads: list[dict] | None = None) -> list[int]:
    """A permutation of ``range(len(steps))``: the canonical execution order.

    The lexicographically smallest linear extension of the "does not commute" order (Anisimov-Knuth
    normal form of the trace): equal for every rearrangement obtained by swapping commuting
    neighbours, and it never moves a step across one it does not commute with.
    """
    n = len(steps)
    if n < 2:
        return list(range(n))
    classes = [classify(s, reg) for s in steps]
    if all(c.kind == "barrier" for c in classes):
        return list(range(n))
    if payloads is None:
        payloads = [step_payload(s, reg) for s in steps]
    sort_keys = [ir.canonical_json(p) for p in payloads]
    deps = [{i for i in range(j) if not commute(classes[i], classes[j])} for j in range(n)]
    placed: set[int] = set()
    order: list[int] = []
    while len(order) < n:
        ready = [j for j in range(n) if j not in placed and deps[j] <= placed]
        j = min(ready, key=lambda k: (sort_keys[k], k))
        placed.add(j)
        order.append(j)
    return order


def free_columns(strategy: ir.Strategy) -> dict[str, ir.Col]:
    """Input columns a strategy reads (those not created by an earlier ``name = ...``), first use wins."""
    out: dict[str, ir.Col] = {}
    made: set[str] = set()

    def visit_expr(e: ir.Expr) -> None:
        for x in ir.walk_exprs(e):
            if isinstance(x, Col) and x.name not in made and not x.name.startswith("__"):
                if x.name not in out or (out[x.name].type.name == "any" and x.type.name != "any"):
                    out[x.name] = x

    def visit(steps) -> None:
        for s in steps:
            match s:
                case OpStep(args=args):
                    for a in args:
                        visit_expr(a)
                case Filter(predicate=p):
                    visit_expr(p)
                case Assign(name=name, value=value):
                    visit_expr(value)
                    made.add(name)
                case Where(predicate=p, steps=inner):
                    visit_expr(p)
                    visit(inner)

    visit(strategy.steps)
    return out
