"""The operator registry and the small declarations the type checker reads, without pydantic.

``autodp_dsl.ops`` is the operator API (``Op``, ``Params``: pydantic models); this module holds what
checking a strategy needs and can be imported without it: the kinds, ``Arg``, and ``Registry``.
A registry entry is an operator class, or (in the default registry, read from the operator
manifest, see ``manifest``) an ``OpSpec`` describing the class plus a way to import it: ``get``
imports on first use, while ``spec`` answers the checker from the description alone. So ``autodp
lint`` neither imports the operator modules nor builds their parameter models.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from .types import STR, Type

if TYPE_CHECKING:
    from .ops import Op
    from .opspec import OpSpec

__all__ = ["OpKind", "Family", "Cost", "Arg", "Registry", "registry"]


class OpKind(StrEnum):
    SIGNAL = "signal"
    MAP = "map"
    FILTER = "filter"
    GLOBAL = "global"
    GENERATE = "generate"


class Family(StrEnum):
    CLEANING = "cleaning"
    GENERATION = "generation"
    OPTIMIZATION = "optimization"
    SELECTION = "selection"


class Cost(StrEnum):
    VECTORISED = "vectorised"  # pure Polars expressions: cheap
    MODEL = "model"  # a local model (embeddings, small LM): seconds per thousand rows
    LLM = "llm"  # an LLM call per row: the expensive kind, gate it with where-blocks


@dataclass(frozen=True, slots=True)
class Arg:
    """A positional argument of an operator.

    ``column=True`` means it must be a bare column reference (the column a map rewrites).
    ``variadic=True`` (last argument only) accepts one or more values.
    """

    name: str
    type: Type = STR
    column: bool = False
    variadic: bool = False
    doc: str = ""


class Registry:
    """Name -> operator class. Lookups suggest close names for typos.

    An operator may also be registered by its description (``describe``): ``spec`` answers from it,
    and its class is imported on the first ``get`` (or iteration).
    """

    def __init__(self) -> None:
        self._ops: dict[str, type[Op]] = {}
        self._specs: dict[str, OpSpec] = {}  # what the checker reads, made once per operator
        self._unloaded: dict[str, Callable[[], type[Op]]] = {}  # described, class not imported yet

    def add(self, op: type[Op]) -> type[Op]:
        """Register an operator class (usable as a decorator)."""
        known = self.get(op.name)
        if known is not None and known is not op:
            raise ValueError(f"operator {op.name!r} is registered twice")
        self._ops[op.name] = op
        return op

    def describe(self, spec: OpSpec, load: Callable[[], type[Op]]) -> None:
        """Register an operator by its description; ``load()`` imports and returns its class."""
        self._specs[spec.name] = spec.bind(lambda: self.get(spec.name))
        self._unloaded[spec.name] = load

    def get(self, name: str) -> type[Op] | None:
        op = self._ops.get(name)
        load = self._unloaded.get(name) if op is None else None
        if load is not None:  # two threads may both import: harmless, modules are imported once
            op = load()
            if op.name != name:
                raise RuntimeError(f"the operator manifest is stale: {name!r} loaded {op.name!r}; remove the ops/ folder of the cache")
            self._ops[name] = op
            self._unloaded.pop(name, None)
        return op

    def spec(self, name: str) -> OpSpec | None:
        """What the type checker needs of operator ``name`` (None when there is none)."""
        s = self._specs.get(name)
        if s is None and name in self._ops:
            from .opspec import OpSpec

            s = self._specs[name] = OpSpec.from_class(self._ops[name])
        return s

    def __contains__(self, name: str) -> bool:
        return name in self._ops or name in self._unloaded

    def __iter__(self):
        for name in list(self._unloaded):
            self.get(name)
        return iter(sorted(self._ops.values(), key=lambda o: o.name))

    def names(self) -> list[str]:
        return sorted({*self._ops, *self._unloaded})

    def suggest(self, name: str, kinds: tuple[OpKind, ...] | None = None) -> list[str]:
        pool = [n for n in self.names() if kinds is None or self._kind(n) in kinds]
        return difflib.get_close_matches(name, pool, n=3, cutoff=0.6)

    def _kind(self, name: str) -> OpKind:
        return self._ops[name].kind if name in self._ops else self._specs[name].kind


_DEFAULT: Registry | None = None


def registry() -> Registry:
    """The default registry: every ``autodp.ops`` entry point, loaded once.

    Read from the operator manifest when it is current (no operator module is imported until an
    operator's class is asked for); otherwise the entry points are loaded and the manifest is
    written for the next process.
    """
    global _DEFAULT
    if _DEFAULT is None:
        from . import manifest

        _DEFAULT = manifest.load()
        if _DEFAULT is None:
            _DEFAULT, sources = load_entry_points()
            manifest.save(_DEFAULT, sources)
    return _DEFAULT


def load_entry_points() -> tuple[Registry, dict[str, str]]:
    """A registry of every ``autodp.ops`` entry point, and for each operator the entry point
    (``module:function``) that registered it."""
    from importlib.metadata import EntryPoint, entry_points

    reg = Registry()
    sources: dict[str, str] = {}
    eps = list(entry_points(group="autodp.ops"))
    if "stdlib" not in {ep.name for ep in eps}:  # running from a source tree without an installed distribution
        eps.append(EntryPoint("stdlib", "stdlib_ops:register", "autodp.ops"))
    for ep in eps:
        before = set(reg.names())
        ep.load()(reg)
        sources.update(dict.fromkeys(set(reg.names()) - before, ep.value))
    return reg, sources


def load_function(spec: str):
    """The object an entry point value names (``module:attr``, extras ignored)."""
    import importlib

    module, _, attr = spec.split("[")[0].strip().partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
