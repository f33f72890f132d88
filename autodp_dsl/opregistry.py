"""``Registry``: the container of operators, name -> class, without pydantic.

A registry entry is an operator class, or (in the default registry, read from the operator
manifest, see ``manifest``) an ``OpSpec`` describing the class plus a way to import it: ``get``
imports on first use, while ``spec`` answers the checker from the description alone. So ``autodp
lint`` neither imports the operator modules nor builds their parameter models.

Which operators the default registry holds (entry points, the manifest) is decided in
``default_registry``; this module is only the container.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from .declarations import OpKind
from .opspec import OpSpec

__all__ = ["Registry"]


class Registry:
    """Name -> operator class. Lookups suggest close names for typos.

    An operator may also be registered by its description (``describe``): ``spec`` answers from it,
    and its class is imported on the first ``get`` (or iteration).
    """

    def __init__(self) -> None:
        self._ops: dict[str, Any] = {}  # name -> operator class (an ``Op`` subclass)
        self._specs: dict[str, OpSpec] = {}  # what the checker reads, made once per operator
        self._unloaded: dict[str, Callable[[], Any]] = {}  # described, class not imported yet

    def add(self, op):
        """Register an operator class (usable as a decorator). A class that leaves out the one method
        of its kind (``SignalOp.expr``...) is refused here, not when a strategy first runs it."""
        missing = sorted(getattr(op, "__abstractmethods__", ()))
        if missing:
            raise TypeError(f"operator {op.name!r} ({op.__qualname__}) does not implement {', '.join(missing)}()")
        known = self.get(op.name)
        if known is not None and known is not op:
            raise ValueError(f"operator {op.name!r} is registered twice")
        self._ops[op.name] = op
        return op

    def describe(self, spec: OpSpec, load: Callable[[], Any]) -> None:
        """Register an operator by its description; ``load()`` imports and returns its class."""
        self._specs[spec.name] = spec.bind(lambda: self.get(spec.name))
        self._unloaded[spec.name] = load

    def get(self, name: str):
        """The operator class registered as ``name`` (imported now if only described), or None."""
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
        pool = [n for n in self.names() if kinds is None or self.kind(n) in kinds]
        return difflib.get_close_matches(name, pool, n=3, cutoff=0.6)

    def kind(self, name: str) -> OpKind:
        """The kind of registered operator ``name``, without importing a described one."""
        return self._ops[name].kind if name in self._ops else self._specs[name].kind
