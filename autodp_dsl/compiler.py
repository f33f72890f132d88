"""The compiler pipeline: text -> YAML layer -> step syntax -> typed IR -> optimized IR.

``compile_text`` runs the whole front end and returns every diagnostic at once; nothing in it
raises on bad input. ``json_schema`` describes the document for editors and for LLM structured
output.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from . import ir
from .checker import check_document
from .declarations import OpKind
from .default_registry import registry
from .diagnostics import Diagnostic, Severity, has_errors
from .document import DEFAULT_LIMITS, Limits, load_document, position
from .opregistry import Registry
from .optimizer import canonicalize, optimize
from .types import Type

__all__ = ["CompileResult", "compile_text", "compile_file", "read_source", "read_bounded", "lint_text", "json_schema"]


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
    limits: Limits = DEFAULT_LIMITS,
) -> CompileResult:
    """Compile .dp source. ``columns``: the data's schema (else declared columns, else the
    Alpaca default). ``level``: "none" (as written), "canonical" (defaults filled, constants
    folded: what keys are computed on) or "full" (every optimizer rule)."""
    reg = reg or registry()
    diags: list[Diagnostic] = []
    if not isinstance(text, str):
        text = str(text)
    doc = load_document(text, diags, limits)
    checked = None
    if doc is not None:
        default_name = Path(path).stem if path else "strategy"
        checked = check_document(doc, reg, columns, path, diags, default_name)
    for d in diags:
        d.file = d.file or path
    diags.sort(key=lambda d: (d.line or 0, d.column or 0))
    if checked is None or has_errors(diags):
        return CompileResult(None, diags, text, checked)
    if level == "none":
        out = checked
    elif level == "canonical":
        out = canonicalize(checked, reg)
    else:
        out = optimize(checked, reg)
    return CompileResult(out, diags, text, checked)


def read_bounded(path: str | Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of a regular file: a document's size bound is checked while
    reading, so a multi-GiB file (or a link to ``/dev/zero``) costs ``limit`` bytes, not the
    machine's memory. A device, a fifo or a socket is refused (``OSError``, "not a regular file")."""
    with Path(path).open("rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return f.read(limit + 1)


def read_source(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> tuple[str | None, list[Diagnostic]]:
    """The text of a .dp file, or None and the diagnostic that says why not: a file-level one
    (no line) when it cannot be read or is over the document bound, the true line and column of the
    first byte that is not UTF-8."""
    p = Path(path)
    try:
        raw = read_bounded(p, limits.document_bytes)
    except OSError as e:
        why = "it is a folder" if p.is_dir() else (e.strerror or str(e)).lower()
        return None, [Diagnostic("unreadable-file", f"cannot read {p}: {why}", None, None, file=str(p))]
    if len(raw) > limits.document_bytes:
        return None, [Diagnostic("limit-exceeded", f"the file is more than the {limits.document_bytes} bytes a document may have", None, None,
                                 file=str(p), hints=["a strategy is a short list of steps; split the file"])]
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as e:
        before = raw[: e.start].decode("utf-8")  # the valid part
        line, col = position(before, len(before))
        bad = raw[e.start : e.end].hex(" ")
        return None, [Diagnostic("invalid-encoding", f"the file is not UTF-8 text: byte{'s' * (e.end - e.start > 1)} {bad} cannot be decoded",
                                 line, col, col + 1, file=str(p), hints=["save the file as UTF-8"])]


def compile_file(path: str | Path, columns: dict[str, Type] | None = None, reg: Registry | None = None, level: str = "canonical",
                 limits: Limits = DEFAULT_LIMITS) -> CompileResult:
    text, diags = read_source(path, limits)
    if text is None:
        return CompileResult(None, diags)
    return compile_text(text, str(path), columns, reg, level, limits)


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
