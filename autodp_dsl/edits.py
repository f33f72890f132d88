"""Structured fixes: what a diagnostic proposes to change, and applying the safe ones as text edits.

A ``Fix`` (see ``diagnostics``) is a replacement of one span of the file. It is
``machine-applicable`` only when it is unambiguous: the name it replaces has exactly one candidate
within ``MAX_EDITS`` edits (Damerau-Levenshtein: a swap of two neighbours is one edit) and the
diagnostic's position is exact. Other suggestions are ``maybe-incorrect``: an editor offers them,
``autodp lint --fix`` leaves them alone. ``apply_fixes`` edits the text at the fixes' ranges only,
so comments and layout are kept.

The checker makes fixes with this module; ``fixes.fix_text`` (which compiles) applies them.
"""

from __future__ import annotations

from collections.abc import Iterable

from .diagnostics import Diagnostic, Fix

__all__ = ["MAX_EDITS", "MACHINE", "MAYBE", "edit_distance", "name_fixes", "apply_fixes"]

MAX_EDITS = 2
MACHINE = "machine-applicable"
MAYBE = "maybe-incorrect"


def edit_distance(a: str, b: str, limit: int = MAX_EDITS) -> int:
    """Optimal-string-alignment distance between ``a`` and ``b``, or ``limit + 1`` when above it."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[-1], limit + 1)


def name_fixes(name: str, pool: Iterable[str], suggestions: list[str], line: int, column: int, end_column: int | None,
               exact: bool = True, render=str) -> list[Fix]:
    """Fixes replacing ``name`` (at ``line``:``column``..``end_column``) by a known name.

    The one name of ``pool`` within ``MAX_EDITS`` edits is machine-applicable; otherwise each of
    ``suggestions`` (the did-you-mean list) is offered as maybe-incorrect. ``render`` writes a
    name as it appears in the source (e.g. a column that needs backticks). No fix when the span is
    not known exactly."""
    if not exact or not line or end_column is None or end_column <= column:
        return []
    near = [p for p in dict.fromkeys(pool) if p != name and edit_distance(name, p) <= MAX_EDITS]
    if len(near) == 1:
        return [Fix(line, column, line, end_column, render(near[0]), MACHINE, f"replace `{name}` with `{near[0]}`")]
    return [Fix(line, column, line, end_column, render(s), MAYBE, f"replace `{name}` with `{s}`") for s in suggestions if s != name]


def apply_fixes(source: str, diags: Iterable[Diagnostic]) -> tuple[str, int]:
    """``source`` with every machine-applicable fix applied, and how many were. Fixes whose ranges
    overlap one already taken, or fall outside the text, are skipped (a later pass may take them)."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for ln in lines:
        starts.append(starts[-1] + len(ln))

    def offset(line: int, column: int) -> int | None:
        if not 1 <= line <= len(lines):
            return None
        body = lines[line - 1].rstrip("\r\n")
        return starts[line - 1] + column - 1 if 1 <= column <= len(body) + 1 else None

    edits: list[tuple[int, int, str]] = []
    for d in diags:
        for f in d.fixes:
            if f.applicability != MACHINE:
                continue
            a, b = offset(f.line, f.column), offset(f.end_line, f.end_column)
            if a is None or b is None or b < a:
                continue
            edits.append((a, b, f.replacement))
    taken: list[tuple[int, int, str]] = []
    for a, b, text in sorted(set(edits)):
        if taken and a < taken[-1][1]:
            continue
        taken.append((a, b, text))
    out = source
    for a, b, text in reversed(taken):
        out = out[:a] + text + out[b:]
    return out, len(taken)
