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


def _alternatives(pattern: str) -> set[str]:
    """A terminal's regular expression as the set of its top-level alternatives, groups spelled
    alike (Lark writes ``(?:...)`` around alternations and reorders them; it does not change them)."""
    p = pattern.replace("\n", "\\n")  # Lark reads the grammar's escape \n as the character
    p = p.replace("(?:", "(")
    while p.startswith("(") and not p.startswith("(?") and _closing(p, 0) == len(p) - 1:
        p = p[1:-1]
    out, depth, start, i = set(), 0, 0, 0
    while i < len(p):
        c = p[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":  # a character class: its | and ( are characters
            i = p.index("]", i + 2)
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            out.add(p[start:i])
            start = i + 1
        i += 1
    return out | {p[start:]}


def _closing(p: str, i: int) -> int:
    depth = 0
    while i < len(p):
        if p[i] == "\\":
            i += 2
            continue
        if p[i] == "[":
            i = p.index("]", i + 2)
        elif p[i] == "(":
            depth += 1
        elif p[i] == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def test_the_fast_lexer_spells_every_terminal_as_the_grammar_does():
    """descent's tokens are a copy of grammar/dp.lark's terminals (reading the grammar would cost
    lint the Lark start-up the fast path saves): any difference, or a terminal it does not know, fails
    here, so a grammar change cannot leave the fast parser behind."""
    grammar = {t.name: t.pattern for t in lalr._parser("step").terminals}
    for name, pattern in descent.TERMINALS.items():
        assert _alternatives(pattern) == _alternatives(grammar[name].to_regexp()), name
    assert descent.NEG == grammar["NEG"].to_regexp()
    chars = [chr(c) for c in range(0x3100)]  # Lark spells the escapes \t\f\r\n as the characters
    assert [c for c in chars if re.fullmatch(descent.WHITESPACE, c)] == [c for c in chars if re.fullmatch(grammar["WS"].to_regexp(), c)]
    words = {name: p.value for name, p in grammar.items() if p.type == "str" and p.value.isalpha()}
    assert descent.KEYWORDS == {v: k for k, v in words.items()}

    def spellings(name: str) -> set[str]:
        return {re.sub(r"\\(.)", r"\1", a) for a in _alternatives(grammar[name].to_regexp())}

    assert descent.COMP_OPS == spellings("COMP_OP")
    assert descent.ADD_OPS == spellings("ADD_OP")
    assert descent.MUL_OPS == spellings("MUL_OP")
    anonymous = {p.value for name, p in grammar.items() if p.type == "str" and not p.value.isalpha()}
    assert descent.PUNCTUATION == descent.COMP_OPS | descent.ADD_OPS | descent.MUL_OPS | anonymous
    handled = set(descent.TERMINALS) | set(words) | {"NEG", "WS", "COMP_OP", "ADD_OP", "MUL_OP"}
    assert handled | {n for n, p in grammar.items() if p.type == "str" and not p.value.isalpha()} == set(grammar)
    # the lexer tries them in the grammar's priority order, and a longer match before its prefix
    order = list(descent.TERMINALS)
    assert order[0] == max(descent.TERMINALS, key=lambda n: next(t.priority for t in lalr._parser("step").terminals if t.name == n))
    assert order.index("FLOAT") < order.index("INT")


def test_the_alternatives_check_sees_a_changed_terminal():
    """The comparison above is not blind: a pattern that differs in one character is told apart."""
    assert _alternatives(r"\d+") != _alternatives(r"\d*")
    assert _alternatives(r"(?:a|b)") == _alternatives(r"b|a") != _alternatives(r"a|c")
    assert _alternatives(descent.TERMINALS["FLOAT"]) != _alternatives(descent.TERMINALS["FLOAT"].replace("[eE]", "[e]"))
