"""The compiler pipeline: text -> YAML layer -> step syntax -> typed IR -> optimized IR.

``compile_text`` runs the whole front end and returns every diagnostic at once; nothing in it
raises on bad input. ``json_schema`` describes the document for editors and for LLM structured
output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import ir
from .catalog import OpKind, Registry, registry
from .checker import check_document
from .diagnostics import Diagnostic, Severity, has_errors
from .document import load_document
from .optimizer import canonicalize, optimize
from .types import Type

__all__ = ["CompileResult", "compile_text", "compile_file", "lint_text", "json_schema"]


@dataclass(slots=True)
class CompileResult:
    strategy: ir.Strategy | None  # optimized (None when there are errors)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source: str = ""
    checked: ir.Strategy | None = None  # as written, typed, before any rule ran

    @property
    def ok(self) -> bool:
        return self.strategy is not None and not has_errors(self.diagnostics)


def compile_text(
    text: str,
    path: str | None = None,
    columns: dict[str, Type] | None = None,
    reg: Registry | None = None,
    level: str = "canonical",
) -> CompileResult:
    """Compile .dp source. ``columns``: the data's schema (else declared columns, else the
    Alpaca default). ``level``: "none" (as written), "canonical" (defaults filled, constants
    folded: what keys are computed on) or "full" (every optimizer rule)."""
    reg = reg or registry()
    diags: list[Diagnostic] = []
    if not isinstance(text, str):
        text = str(text)
    doc = load_document(text, diags)
    checked = None
    if doc is not None:
        default_name = Path(path).stem if path else "strategy"
        checked = check_document(doc, reg, columns, path, diags, default_name)
    for d in diags:
        d.file = d.file or path
    diags.sort(key=lambda d: (d.line, d.column))
    if checked is None or has_errors(diags):
        return CompileResult(None, diags, text, checked)
    if level == "none":
        out = checked
    elif level == "canonical":
        out = canonicalize(checked, reg)
    else:
        out = optimize(checked, reg)
    return CompileResult(out, diags, text, checked)


def compile_file(path: str | Path, columns: dict[str, Type] | None = None, reg: Registry | None = None, level: str = "canonical") -> CompileResult:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        return CompileResult(None, [Diagnostic("invalid-document", f"cannot read {p}: {e.strerror or e}", 0, 0, file=str(p))])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return CompileResult(None, [Diagnostic("invalid-document", f"{p} is not UTF-8 text (byte {e.start})", 1, 1, file=str(p))])
    return compile_text(text, str(p), columns, reg, level)


def lint_text(text: str, path: str | None = None, columns: dict[str, Type] | None = None, reg: Registry | None = None) -> list[Diagnostic]:
    return compile_text(text, path, columns, reg, level="none").diagnostics


def json_schema(reg: Registry | None = None) -> dict:
    """JSON Schema (2020-12) of a .dp document."""
    reg = reg or registry()
    step_ops = [o.name for o in reg if o.kind != OpKind.SIGNAL]
    signals = [o.name for o in reg if o.kind == OpKind.SIGNAL]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://autodp.dev/schema/dp-1.json",
        "title": ".dp strategy",
        "description": "A data-processing strategy for instruction/response data. Steps are strings in the .dp DSL.",
        "type": "object",
        "additionalProperties": False,
        "required": ["dp", "name", "steps"],
        "properties": {
            "dp": {"const": 1, "description": "language version"},
            "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "columns": {
                "type": "object",
                "description": "declared input columns and their types (str, int, float, bool, list[...])",
                "additionalProperties": {"type": "string", "pattern": r"^(str|int|float|bool|list(\[(str|int|float|bool)\])?)$"},
            },
            "require": {"type": "array", "items": {"type": "string"}, "description": "columns the output must keep"},
            "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}},
        },
        "$defs": {
            "step": {
                "oneOf": [
                    {
                        "type": "string",
                        "description": "an operator call used as a step, e.g. `clean.html(output)`, or `name = expression`. "
                        "Step operators: " + ", ".join(step_ops),
                    },
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["filter"],
                        "properties": {"filter": {"type": "string", "description": "keep rows where this boolean expression holds. Signals: " + ", ".join(signals)}},
                    },
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["where", "do"],
                        "properties": {
                            "where": {"type": "string", "description": "apply `do` only to rows where this boolean expression holds"},
                            "do": {"type": "array", "items": {"$ref": "#/$defs/step"}},
                        },
                    },
                ]
            }
        },
    }


def severity_counts(diags: list[Diagnostic]) -> tuple[int, int]:
    e = sum(d.severity == Severity.ERROR for d in diags)
    return e, len(diags) - e
