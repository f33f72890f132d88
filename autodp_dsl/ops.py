"""The operator API, in one import: what an operator package needs to declare and register ops.

    from autodp_dsl.ops import Arg, Family, MapOp, Params, Registry, SignalOp

Operators are registered in a ``Registry``. ``registry()`` builds the default one from the
``autodp.ops`` entry-point group, so a third-party package adds operators the same way
``stdlib_ops`` does: an entry point naming a function ``register(reg: Registry) -> None``. The
default registry is read from a manifest of those operators' declarations when it is current, and
imports an operator's module only when its class is asked for (see ``autodp_dsl.manifest``).

This module only gathers names (it defines nothing): the vocabulary is in ``declarations``, the
base classes in ``opbase``, the container in ``opregistry``, the default registry in
``default_registry``. Code inside ``autodp_dsl`` imports from those; code outside, from here.
"""

from __future__ import annotations

from . import opbase
from .declarations import KEEP, REASON, ROW_ID, Arg, Cost, Family, OpKind
from .default_registry import registry
from .opbase import *  # noqa: F403  the base classes, as opbase.__all__ lists them (a new kind: one edit)
from .opregistry import Registry

__all__ = ["OpKind", "Family", "Cost", "Arg", "Registry", "registry", "ROW_ID", "KEEP", "REASON"]
__all__ += opbase.__all__
