"""``fix_text``: a strategy with its machine-applicable fixes applied (``autodp lint --fix``).

Compiles, applies the safe fixes of the diagnostics (``edits``), and repeats: the one place that
both compiles and edits, so it sits above the compiler. The fix vocabulary is re-exported from
``edits`` for code that imported it from here.
"""

from __future__ import annotations

from .compiler import compile_text
from .edits import MACHINE, MAX_EDITS, MAYBE, apply_fixes, edit_distance, name_fixes

__all__ = ["MAX_EDITS", "MACHINE", "MAYBE", "edit_distance", "name_fixes", "apply_fixes", "fix_text"]


def fix_text(text: str, path: str | None = None, columns=None, rounds: int = 10) -> tuple[str, int]:
    """``text`` with its machine-applicable fixes applied, and how many. Repeated (up to ``rounds``
    passes) because a fixed name can reveal the next problem, e.g. a parameter of a misspelt
    operator. What `autodp lint --fix`, the editor's "fix all" and the search's repairs use."""
    total = 0
    for _ in range(rounds):
        text, n = apply_fixes(text, compile_text(text, path, columns, level="none").diagnostics)
        total += n
        if not n:
            break
    return text, total
