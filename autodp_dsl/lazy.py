"""Deferred imports, so that ``autodp lint`` starts without loading Polars.

Operator modules write ``from autodp_dsl.lazy import polars as pl``: the name is bound at import
time, the real import happens on first attribute access (when a plan is built or run).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

__all__ = ["lazy_import", "polars"]


def lazy_import(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


polars = lazy_import("polars")
