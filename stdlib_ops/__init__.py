"""autodp's standard operator catalog, one module per family.

``register(reg)`` is the ``autodp.ops`` entry point: it adds every operator of the catalog to a
``autodp_dsl.ops.Registry``. Importing this package imports Polars but never torch, transformers
or an LLM client: model-backed operators load those lazily when they run.
"""

from __future__ import annotations

__all__ = ["register"]

_MODULES = ("signals", "cleaning", "dedup", "selection", "scoring", "generation", "optimization")


def register(reg) -> None:
    import importlib

    for name in _MODULES:
        mod = importlib.import_module(f"stdlib_ops.{name}")  # every family is part of the catalog
        for op in getattr(mod, "OPS", ()):
            reg.add(op)
