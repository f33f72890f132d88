"""Snapshot tests of rendered diagnostics, one file per family of mistakes.

Cases live in ``cases/<family>.txt`` (``### name`` then a .dp source); the expected renderings in
``snapshots/<family>.txt``. Set ``AUTODP_UPDATE_SNAPSHOTS=1`` to rewrite them after an intended
change, then read the diff. ``snapshots/KNOWN_BAD.md`` lists messages still to improve.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autodp_dsl import compile_text, render_all

HERE = Path(__file__).parent
FAMILIES = sorted(p.stem for p in (HERE / "cases").glob("*.txt"))


def _cases(family: str) -> list[tuple[str, str]]:
    text = (HERE / "cases" / f"{family}.txt").read_text(encoding="utf-8")
    out = []
    for block in text.split("### ")[1:]:
        name, _, src = block.partition("\n")
        out.append((name.strip(), src))
    return out


def _render(family: str) -> str:
    parts = []
    for name, src in _cases(family):
        r = compile_text(src, f"{name}.dp")
        parts.append(f"### {name}\n{render_all(r.diagnostics, src)}\n")
    return "\n".join(parts)


@pytest.mark.parametrize("family", FAMILIES)
def test_rendered_diagnostics_match_snapshot(family):
    got = _render(family)
    snap = HERE / "snapshots" / f"{family}.txt"
    if os.environ.get("AUTODP_UPDATE_SNAPSHOTS") or not snap.exists():
        snap.write_text(got, encoding="utf-8")
    assert got == snap.read_text(encoding="utf-8")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_case_reports_something(family):
    for name, src in _cases(family):
        r = compile_text(src, f"{name}.dp")
        assert r.diagnostics, f"{family}/{name} produced no diagnostic"
        for d in r.diagnostics:
            assert d.line >= 1 and d.column >= 1, f"{family}/{name}: unlocated {d}"
            assert d.message[:1].islower() or not d.message[:1].isalpha(), d.message
