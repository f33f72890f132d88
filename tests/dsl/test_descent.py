"""The fast parser (``descent``) never disagrees with Lark's (``lalr``, the reference).

Whenever ``descent`` returns a tree, Lark must return the same tree (same node types, values and
spans); declining (``Unsure``) is always allowed, since the caller then asks Lark. A second test
keeps the fast path fast: it must not decline the usual spellings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from autodp_dsl import descent, lalr
from autodp_dsl.nodes import SyntaxProblem

from .gen import bool_expr, num_expr

ROOT = Path(__file__).resolve().parents[2]

TOKENS = [
    "a", "x", "output", "`odd col`", "words", "clean.html", "f.g", "or", "and", "not", "true", "false", "orb", "and_x",
    "nota", "1", "0", "007", "1.5", ".5", "1.", "1e5", "1.e3", "2E-3", "1e400", '"s"', "'t'", '"a\\"b"', '"\\n"', '"\\x"',
    "(", ")", "[", "]", ",", "=", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", ".", "!", "é", "\v", "\t", "\n",
]
SEPARATORS = ["", " ", "  ", "\t", "\n"]


def _lark(text: str, start: str):
    try:
        return lalr.parse(text, start)
    except SyntaxProblem as p:
        return p


def _same(text: str, start: str) -> bool:
    """True when ``descent`` declines or builds exactly Lark's tree."""
    try:
        fast = descent.parse(text, start)
    except descent.Unsure:
        return True
    ref = _lark(text, start)
    assert not isinstance(ref, SyntaxProblem), f"descent accepted {text!r} ({start}), Lark says {ref}"
    assert repr(fast) == repr(ref), f"{text!r} ({start}): descent {fast!r} != Lark {ref!r}"  # repr: True != 1, 1.0 != 1
    return True


@settings(max_examples=1500)
@given(st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(SEPARATORS)), max_size=12), st.sampled_from(["expr", "step"]))
def test_token_soup(parts, start):
    _same("".join(t + s for t, s in parts), start)


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("ab_.1e5 ()[],=<>!+-*/\"'`notrufls\t")), max_size=40), st.sampled_from(["expr", "step"]))
def test_random_characters(text, start):
    _same(text, start)


def _steps(texts: list[str]) -> list[tuple[str, str]]:
    """Every step string of these .dp sources, with its start rule."""
    out = []

    def walk(steps):
        for s in steps:
            if isinstance(s, str):
                out.append((s, "step"))
            elif isinstance(s, dict):
                out.extend((s[k], "expr") for k in ("filter", "where") if isinstance(s.get(k), str))
                walk(s["do"] if isinstance(s.get("do"), list) else ())

    for text in texts:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("steps"), list):
            walk(doc["steps"])
    return out


CURATED = _steps([p.read_text(encoding="utf-8") for p in sorted((ROOT / "strategies").glob("*.dp"))])
CASES = _steps([src for p in sorted((ROOT / "tests" / "dsl" / "cases").glob("*.txt"))
                for src in re.split(r"^### .*$", p.read_text(encoding="utf-8"), flags=re.M)])


@pytest.mark.parametrize("text,start", CURATED + CASES)
def test_corpus_agrees(text, start):
    _same(text, start)


@pytest.mark.parametrize("text,start", CURATED)
def test_curated_strategies_take_the_fast_path(text, start):
    assert repr(descent.parse(text, start)) == repr(lalr.parse(text, start))


@settings(max_examples=300)
@given(st.one_of(num_expr(), bool_expr()))
def test_generated_expressions_take_the_fast_path(text):
    assert repr(descent.parse(text, "expr")) == repr(lalr.parse(text, "expr"))


@pytest.mark.parametrize("text", ["or", "a orb", "a == not", "a and_x", "-not", "1" * 5000, "x(1) = 2", "f(or=1)"])
def test_declines_what_only_lark_reads_that_way(text):
    with pytest.raises(descent.Unsure):
        descent.parse(text, "expr")
