"""The operator API: how an operator declares itself and lowers to Polars.

An operator is a class with a few declarative attributes and one lowering method. The type checker
reads the declarations (signature, parameter model, kind); the executor calls the lowering.

Kinds (``OpKind``), each with its base class and the one method a subclass implements:

- ``signal`` (``SignalOp.expr``): a function inside expressions, ``words(output)``; ``expr(args,
  params)`` returns a ``pl.Expr`` computing one value per row. Filters on signals are split by the
  executor into the expensive *statistic* (the signal column, shared and cached by key) and the
  cheap threshold. ``ModelSignalOp.signal_expr`` is the variant that needs the lowering context (a
  model backend: ``ctx.service("model_backend")``).
- ``map`` (``MapOp.map_expr``): a step that rewrites the named columns in place, row by row, never
  dropping rows. ``FrameMapOp.lower`` is the frame-level variant (e.g. LLM ops that need other
  columns as context).
- ``filter`` (``FilterOp.keep``): a step that drops rows on a row-local condition; ``keep(args,
  params)`` returns a boolean ``pl.Expr``.
- ``global`` (``GlobalOp.lower``): a step whose keep decision depends on other rows (dedup,
  select). ``lower`` returns the frame with a boolean ``KEEP`` column; the executor drops the false
  rows and records why. Not allowed inside ``where:`` blocks.
- ``generate`` (``GenerateOp.lower``): a step that may add rows (new rows get fresh row ids) or
  fill empty fields.

The kind follows from the base class (``SignalOp.kind == "signal"``; a subclass that sets another
kind is refused when it is defined), a subclass that leaves its one method out cannot be registered
(``Registry.add``) or instantiated, and ``kind`` stays a class attribute that everything reads.
``Op`` itself remains the general base: an ``Op`` subclass that sets ``kind`` and overrides the
matching method (the API before the kind classes) works as before.

Operator authors import all of this from ``autodp_dsl.ops`` (the public face of the operator
API); this module holds the classes, ``declarations`` the plain vocabulary.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from .declarations import KEEP, Arg, Cost, Family, OpKind
from .types import ANY, Type

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "Params",
    "NoParams",
    "Op",
    "LowerContext",
    "SignalOp",
    "ModelSignalOp",
    "MapOp",
    "FrameMapOp",
    "FilterOp",
    "GlobalOp",
    "GenerateOp",
]


class Params(BaseModel):
    """Base of every parameter model: unknown keys are errors, values are validated strictly."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    pass


class LowerContext(Protocol):
    """What the executor gives an operator while lowering it."""

    def expr(self, e: Any) -> pl.Expr:
        """Lower an IR expression (a score, a predicate) to a ``pl.Expr``."""

    def statistic(self, lf: pl.LazyFrame, name: str, spec: dict[str, Any], expr: pl.Expr) -> tuple[pl.LazyFrame, str]:
        """Add an expensive per-row value as a shared, cacheable column.

        ``spec`` identifies the statistic exactly (operator, version, the parameters that affect
        the value, input columns) and must leave out what does not (a threshold). Returns the frame
        with the column and the column's name. Candidates that differ only in thresholds share it.
        """

    def service(self, name: str) -> Any:
        """A run-scoped service (e.g. ``"model_backend"``), or None when not configured."""


KIND_BASES: frozenset[type] = frozenset()  # filled below, once the kind classes exist


class Op:
    """Base class of operators. Subclasses set the class attributes and implement one lowering."""

    name: ClassVar[str]
    kind: ClassVar[OpKind]
    family: ClassVar[Family] = Family.CLEANING
    cost: ClassVar[Cost] = Cost.VECTORISED
    version: ClassVar[int] = 1  # bump when semantics change: invalidates cached results below it
    deterministic: ClassVar[bool] = True
    args: ClassVar[tuple[Arg, ...]] = ()
    Params: ClassVar[type[Params]] = NoParams
    returns: ClassVar[Type] = ANY  # signals: the type of the value
    # Row-wise and free of side effects on other columns: may be reordered with other such steps.
    commutes: ClassVar[bool] = False

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        base = next((b for b in cls.__mro__[1:] if b in KIND_BASES), None)
        if base is not None and cls.kind != base.kind:
            raise TypeError(f"{cls.__qualname__} is a {base.__name__}, whose kind is {base.kind}; it cannot set kind = {cls.kind!r}")

    # ---- declarations read by the checker and the docs

    @classmethod
    def doc(cls) -> str:
        import inspect

        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def summary(cls) -> str:
        return cls.doc().split("\n", 1)[0]

    @classmethod
    def signature(cls) -> str:
        parts = []
        for a in cls.args:
            s = f"{a.name}: {a.type}" + ("..." if a.variadic else "")
            parts.append(s)
        for fname, f in cls.Params.model_fields.items():
            ann = getattr(f.annotation, "__name__", str(f.annotation))
            default = "" if f.is_required() else f" = {f.default!r}"
            parts.append(f"{fname}: {ann}{default}")
        ret = f" -> {cls.returns}" if cls.kind == OpKind.SIGNAL else ""
        return f"{cls.name}({', '.join(parts)}){ret}"

    @classmethod
    def custom_typing(cls) -> bool:
        """Whether the class answers ``result_type``/``removed_columns`` itself (the checker then
        asks it, with a real parameter model, instead of reading its declarations)."""
        return cls.result_type is not Op.result_type or cls.removed_columns is not Op.removed_columns

    def result_type(self, arg_types: list[Type], params: Params) -> Type:
        """Signals: the type of the value (override when it depends on the arguments)."""
        return self.returns

    def written_columns(self, columns: list[str], params: Params) -> list[str]:
        """The columns this step writes (maps: the targets)."""
        return columns if self.kind == OpKind.MAP else []

    def removed_columns(self, columns: list[str], params: Params) -> list[str]:
        """The columns this step removes from the frame (rare: ``drop``)."""
        return []

    # ---- lowering (implement the one that fits the kind)

    def expr(self, args: list[pl.Expr], params: Params) -> pl.Expr:
        raise NotImplementedError(f"{self.name} is not a signal")

    def signal_expr(self, args: list[pl.Expr], params: Params, ctx: LowerContext) -> pl.Expr:
        """Signals: like ``expr`` but with the lowering context, for signals that need a run-scoped
        service (a model backend: ``ctx.service("model_backend")``). The default calls ``expr``."""
        return self.expr(args, params)

    def identity(self, params: Params, ctx: LowerContext) -> dict[str, Any]:
        """What the value depends on besides op name, version, arguments and parameters (e.g. the
        model and prompt version of a model-backed op). Part of statistic specs and cache keys;
        ``{}`` (the default) for pure operators."""
        return {}

    def map_expr(self, col: pl.Expr, params: Params) -> pl.Expr:
        raise NotImplementedError(f"{self.name} has no vectorised map")

    def keep(self, args: list[pl.Expr], params: Params) -> pl.Expr:
        raise NotImplementedError(f"{self.name} has no keep expression")

    def lower(self, lf: pl.LazyFrame, args: list[Any], params: Params, ctx: LowerContext) -> pl.LazyFrame:
        """Frame-level lowering. ``args`` are IR expressions (``ctx.expr`` lowers them).

        The default covers maps (``map_expr`` on each target column) and filters (``keep``), as
        ``MapOp`` and ``FilterOp`` do.
        """
        if self.kind == OpKind.MAP:
            return _map_lower(self, lf, args, params)
        if self.kind == OpKind.FILTER:
            return _filter_lower(self, lf, args, params, ctx)
        raise NotImplementedError(f"{self.name} ({self.kind}) must implement lower()")


def _map_lower(op: Op, lf: pl.LazyFrame, args: list[Any], params: Params) -> pl.LazyFrame:
    """A map over its target columns: ``map_expr`` on each, written back under the same name."""
    import polars as pl

    from .ir import Col

    cols = [a.name for a in args if isinstance(a, Col)]
    return lf.with_columns([op.map_expr(pl.col(c), params).alias(c) for c in cols])


def _filter_lower(op: Op, lf: pl.LazyFrame, args: list[Any], params: Params, ctx: LowerContext) -> pl.LazyFrame:
    """A filter: its ``keep`` expression as the ``KEEP`` column (null keeps nothing)."""
    return lf.with_columns(op.keep([ctx.expr(a) for a in args], params).fill_null(False).alias(KEEP))


# ---------------------------------------------------------------- one base class per kind


class SignalOp(Op, metaclass=ABCMeta):
    """A function inside expressions: one value per row, e.g. ``words(output)``."""

    kind: ClassVar[OpKind] = OpKind.SIGNAL

    @abstractmethod
    def expr(self, args: list[pl.Expr], params: Params) -> pl.Expr:
        """The value of each row, from the lowered arguments."""


class ModelSignalOp(SignalOp):
    """A signal that needs the lowering context, e.g. a model backend (``ctx.service(...)``)."""

    cost: ClassVar[Cost] = Cost.MODEL

    @abstractmethod
    def signal_expr(self, args: list[pl.Expr], params: Params, ctx: LowerContext) -> pl.Expr:
        """The value of each row; ``ctx`` is None when the signal is lowered without a context."""

    def expr(self, args: list[pl.Expr], params: Params) -> pl.Expr:
        """Without a lowering context: ``signal_expr`` with none (the environment's backend)."""
        return self.signal_expr(args, params, None)


class MapOp(Op, metaclass=ABCMeta):
    """A step that rewrites its target columns in place, row by row, never dropping rows."""

    kind: ClassVar[OpKind] = OpKind.MAP

    @abstractmethod
    def map_expr(self, col: pl.Expr, params: Params) -> pl.Expr:
        """The new value of one target column (vectorised)."""

    def lower(self, lf: pl.LazyFrame, args: list[Any], params: Params, ctx: LowerContext) -> pl.LazyFrame:
        return _map_lower(self, lf, args, params)


class FrameMapOp(Op, metaclass=ABCMeta):
    """A map that works on the whole frame (it needs other columns, or calls a model per batch)."""

    kind: ClassVar[OpKind] = OpKind.MAP

    @abstractmethod
    def lower(self, lf: pl.LazyFrame, args: list[Any], params: Params, ctx: LowerContext) -> pl.LazyFrame:
        """The frame with the target columns rewritten; ``args`` are IR expressions."""


class FilterOp(Op, metaclass=ABCMeta):
    """A step that drops rows on a row-local condition."""

    kind: ClassVar[OpKind] = OpKind.FILTER

    @abstractmethod
    def keep(self, args: list[pl.Expr], params: Params) -> pl.Expr:
        """True for the rows to keep (null drops the row)."""

    def lower(self, lf: pl.LazyFrame, args: list[Any], params: Params, ctx: LowerContext) -> pl.LazyFrame:
        return _filter_lower(self, lf, args, params, ctx)


class GlobalOp(Op, metaclass=ABCMeta):
    """A step whose keep decision depends on other rows (dedup, selection)."""

    kind: ClassVar[OpKind] = OpKind.GLOBAL

    @abstractmethod
    def lower(self, lf: pl.LazyFrame, args: list[Any], params: Params, ctx: LowerContext) -> pl.LazyFrame:
        """The frame with a boolean ``KEEP`` column (and optionally a ``REASON`` per dropped row)."""

    def buckets(self, frame: pl.DataFrame, params: Params, stats: dict[str, str]) -> Any:
        """For a distributed engine (``engine/distributed.py``): the bucket keys of some rows, a
        ``(rows, b)`` uint64 NumPy array, or None (the default: the decision needs all rows at once,
        as a selection of k rows does, and the engine decides on the ids and statistics of all rows).

        ``frame`` holds ``ROW_ID`` and the step's statistics, ``stats`` maps a statistic's name to
        its column. The promise: rows that share a key are joined, the groups are the connected
        components, and the decision on any set of whole groups is the decision on all rows
        restricted to that set (dedup: a row is dropped only for a row of its own group). Keys may
        collide (two groups become one, which is still exact); they must never miss a link."""
        return None


class GenerateOp(Op, metaclass=ABCMeta):
    """A step that may add rows (they get fresh row ids) or fill empty fields."""

    kind: ClassVar[OpKind] = OpKind.GENERATE

    @abstractmethod
    def lower(self, lf: pl.LazyFrame, args: list[Any], params: Params, ctx: LowerContext) -> pl.LazyFrame:
        """The frame with rows added (null ``ROW_ID``) or fields filled."""


# the base classes that fix their subclasses' kind (checked in ``Op.__init_subclass__``)
KIND_BASES: frozenset[type[Op]] = frozenset({SignalOp, MapOp, FrameMapOp, FilterOp, GlobalOp, GenerateOp})
