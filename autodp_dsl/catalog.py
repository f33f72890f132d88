"""The operator registry and the declarations the type checker reads, in one pydantic-free import.

This module only gathers names (it defines nothing), for the code that imported them from here:
the kinds and ``Arg`` are in ``declarations``, the ``Registry`` container in ``opregistry``, the
default registry in ``default_registry``, entry-point loading in ``plugins``. The operator API
with its pydantic base classes is ``autodp_dsl.ops``.
"""

from __future__ import annotations

from .declarations import Arg, Cost, Family, OpKind
from .default_registry import registry
from .opregistry import Registry
from .plugins import load_entry_points, load_function

__all__ = ["OpKind", "Family", "Cost", "Arg", "Registry", "registry", "load_entry_points", "load_function"]
