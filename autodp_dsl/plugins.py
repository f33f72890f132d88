"""Operators from installed distributions: the ``autodp.ops`` entry-point group.

A package adds operators with an entry point naming a function ``register(reg: Registry) -> None``
(``stdlib_ops`` does the same). This module loads them into a plain ``Registry``; whether the
default registry is read from the manifest or from here is ``default_registry``'s decision.
"""

from __future__ import annotations

from .opregistry import Registry

__all__ = ["GROUP", "BUILTIN", "BUILTIN_ENTRY_POINT", "load_entry_points", "load_function", "entry_point_module"]

GROUP = "autodp.ops"
BUILTIN, BUILTIN_ENTRY_POINT = "stdlib_ops", "stdlib_ops:register"  # always loaded, installed or not


def load_entry_points() -> tuple[Registry, dict[str, str]]:
    """A registry of every ``autodp.ops`` entry point, and for each operator the entry point
    (``module:function``) that registered it."""
    from importlib.metadata import EntryPoint, entry_points  # here: a current manifest needs no look-up

    reg = Registry()
    sources: dict[str, str] = {}
    eps = list(entry_points(group=GROUP))
    if BUILTIN not in {ep.name for ep in eps}:  # running from a source tree without an installed distribution
        eps.append(EntryPoint(BUILTIN, BUILTIN_ENTRY_POINT, GROUP))
    for ep in eps:
        before = set(reg.names())
        ep.load()(reg)
        sources.update(dict.fromkeys(set(reg.names()) - before, ep.value))
    return reg, sources


def entry_point_module(spec: str) -> str:
    """The module an entry point value (``module:attr [extras]``) names."""
    return spec.split("[")[0].strip().partition(":")[0]


def load_function(spec: str):
    """The object an entry point value names (``module:attr``, extras ignored)."""
    import importlib

    module, _, attr = spec.split("[")[0].strip().partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
