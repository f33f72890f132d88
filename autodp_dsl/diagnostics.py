"""Diagnostics: every problem found in a .dp file, located, coded and explained.

A ``Diagnostic`` carries data, not just a string: a stable kebab-case ``code``, a ``severity``, a
lowercase ``message`` (Polars style), the 1-based ``line`` / ``column`` in the .dp file (down to the
character inside a step string), an ``end_column`` for the caret span, the step path (``"3"``,
``"5.2"``) and ``hints``. ``render`` draws them for people with the source line and a caret;
``to_json`` gives agents the same data.

Codes in use (see ``CODES``) are part of the public interface: agents key repairs on them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum

__all__ = ["Severity", "Fix", "Diagnostic", "CODES", "render", "render_all", "to_json", "has_errors"]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


# code -> one-line meaning; the list agents and docs rely on
CODES: dict[str, str] = {
    "yaml-syntax": "the file is not valid YAML",
    "invalid-document": "the YAML document does not have the .dp shape",
    "unknown-key": "a top-level key that .dp does not define",
    "missing-key": "a required top-level key is absent",
    "unsupported-version": "the `dp:` language version is not supported",
    "invalid-step": "a step is neither a DSL string nor a filter:/where: mapping",
    "syntax-error": "a step string does not parse",
    "unknown-op": "no operator of that name",
    "wrong-op-kind": "an operator used where its kind does not fit (a signal as a step, a step in an expression)",
    "missing-argument": "an operator call lacks a required positional argument",
    "too-many-arguments": "an operator call has more positional arguments than it takes",
    "duplicate-argument": "the same column given twice to an operator that rewrites its columns",
    "expected-column": "an argument that must be a column reference is an expression",
    "unknown-parameter": "a keyword parameter the operator does not take",
    "missing-parameter": "a required keyword parameter is absent",
    "duplicate-parameter": "the same keyword parameter given twice",
    "invalid-parameter-type": "a parameter value has the wrong type",
    "out-of-range": "a parameter or literal value is outside its allowed range (int64, finite floats)",
    "contradictory-bounds": "parameter bounds contradict each other (min > max)",
    "invalid-parameter": "a parameter value is invalid for another reason",
    "non-literal-parameter": "a keyword parameter must be a literal value",
    "unknown-column": "a column that does not exist at that step",
    "type-mismatch": "an expression or argument has the wrong type",
    "unknown-type": "a declared column type that .dp does not know",
    "reserved-name": "a column name starting with `__` (reserved for autodp)",
    "global-in-where": "a dedup/select operator inside a where: block (it needs all rows)",
    "lost-required-column": "the strategy's output no longer has a required column, or changed its type",
    "empty-strategy": "the strategy has no steps",
    "constant-predicate": "a filter or gate whose value does not depend on the row",
    "duplicate-step": "the same step twice in a row",
    "duplicate-key": "a YAML key given twice in one mapping (YAML would keep only one of them)",
    "limit-exceeded": "the document exceeds a bound: size, alias expansion, steps, where-nesting or expression depth",
    "confusable-column": "a column name that looks like another column's name but is a different string",
    "unreadable-file": "the file cannot be read (missing, a folder, no permission)",
    "invalid-encoding": "the file is not UTF-8 text",
}


@dataclass(slots=True)
class Fix:
    """A proposed edit: replace the span ``line``:``column`` .. ``end_line``:``end_column`` (1-based,
    end exclusive) with ``replacement``. ``applicability`` is ``machine-applicable`` (unambiguous:
    ``autodp lint --fix`` applies it) or ``maybe-incorrect`` (offered, never applied unasked); see
    ``autodp_dsl.fixes``."""

    line: int
    column: int
    end_line: int
    end_column: int
    replacement: str
    applicability: str
    message: str = ""


@dataclass(slots=True)
class Diagnostic:
    code: str
    message: str
    line: int | None = 0  # None (with column None): the problem is the whole file (unreadable, not UTF-8)
    column: int | None = 0
    end_column: int | None = None
    severity: Severity = Severity.ERROR
    hints: list[str] = field(default_factory=list)
    step: str | None = None
    file: str | None = None
    fixes: list[Fix] = field(default_factory=list)  # structured edits beside the hints

    def to_dict(self) -> dict:
        d = asdict(self)
        d["severity"] = str(self.severity)
        return d

    def headline(self) -> str:
        where = f"{self.file or '<string>'}" + (f":{self.line}:{self.column}" if self.line else "")
        return f"{where}: {self.severity}[{self.code}]: {self.message}"


def has_errors(diags: list[Diagnostic]) -> bool:
    return any(d.severity == Severity.ERROR for d in diags)


def render(d: Diagnostic, source: str | None) -> str:
    """One diagnostic for people: headline, the source line, a caret under the span, hints."""
    out = [f"{d.severity}[{d.code}]: {d.message}"]
    if d.line:
        out.append(f"  --> {d.file or '<string>'}:{d.line}:{d.column}")
        lines = source.splitlines() if source else []
        if 1 <= d.line <= len(lines):
            text = lines[d.line - 1].replace("\t", " ")
            gutter = " " * len(str(d.line))
            out.append(f" {gutter} |")
            out.append(f" {d.line} | {text}")
            start = max(d.column, 1)
            width = max((d.end_column or start + 1) - start, 1)
            out.append(f" {gutter} | {' ' * (start - 1)}{'^' * width}")
    elif d.file:
        out.append(f"  --> {d.file}")
    for h in d.hints:
        out.append(f"  = help: {h}")
    return "\n".join(out)


def render_all(diags: list[Diagnostic], source: str | None) -> str:
    errors = sum(d.severity == Severity.ERROR for d in diags)
    warnings = len(diags) - errors
    body = "\n\n".join(render(d, source) for d in diags)
    tail = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    return f"{body}\n\n{tail}" if body else tail


def to_json(diags: list[Diagnostic], indent: int | None = 2) -> str:
    return json.dumps([d.to_dict() for d in diags], indent=indent, ensure_ascii=False)
