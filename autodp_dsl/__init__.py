"""autodp's language core: .dp strategies -> diagnostics, typed IR, Polars lazy plans.

Importing this package loads neither torch nor an LLM client, nor Polars, pydantic or Lark;
``autodp lint`` needs only this.

    >>> from autodp_dsl import compile_text
    >>> r = compile_text("dp: 1\\nname: t\\nsteps:\\n  - filter: words(output) >= 5\\n")
    >>> r.ok
    True
"""

from .compiler import CompileResult, compile_file, compile_text, json_schema, lint_text
from .declarations import Arg, Cost, Family, OpKind
from .default_registry import registry
from .diagnostics import CODES, Diagnostic, Severity, render, render_all
from .errors import DslError
from .fmt import format_source, strategy_to_text
from .ir import Strategy
from .opregistry import Registry
from .optimizer import canonicalize, optimize
from .types import Type, parse_type


def __getattr__(name: str):
    # Polars loads only when a plan is built, pydantic only when an operator class is: `autodp lint`
    # needs neither
    if name == "lower_strategy":
        from .lower import lower_strategy

        return lower_strategy
    if name in ("Op", "Params"):
        from . import opbase

        return getattr(opbase, name)
    raise AttributeError(f"module 'autodp_dsl' has no attribute {name!r}")


__all__ = [
    "CODES",
    "Arg",
    "CompileResult",
    "Cost",
    "Diagnostic",
    "DslError",
    "Family",
    "Op",
    "OpKind",
    "Params",
    "Registry",
    "Severity",
    "Strategy",
    "Type",
    "canonicalize",
    "compile_file",
    "compile_text",
    "format_source",
    "json_schema",
    "lint_text",
    "lower_strategy",
    "optimize",
    "parse_type",
    "registry",
    "render",
    "render_all",
    "strategy_to_text",
]
