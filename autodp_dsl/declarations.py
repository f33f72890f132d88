"""The plain declarations every layer reads: operator kinds, families, costs, arguments, and the
names of the columns the engine adds to a frame.

A leaf module (it imports only ``types``): the type checker, the reader (``io``) and the engine
take their vocabulary from here without loading pydantic, Polars or the operator registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .types import STR, Type

__all__ = ["OpKind", "Family", "Cost", "Arg", "ROW_ID", "KEEP", "REASON"]

ROW_ID = "__rid"  # stable id of every input row (UInt64), carried through every step
KEEP = "__keep"  # boolean column a filter/global op adds; false rows are dropped with a reason
REASON = "__reason"  # optional string column: why a row is dropped (else the step text is the reason)


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
