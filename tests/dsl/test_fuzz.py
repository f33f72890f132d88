"""Fuzzing the front end: whatever the input, the answer is diagnostics, never an exception.

Three sources of input: random text, random YAML documents, and random mutations of valid
strategies (deleted tokens, swapped operators, wrong types, wrong columns). A mutated strategy
that still type-checks must also run: type-checked strategies execute without errors.

The CI profile runs a few hundred examples per test; ``HYPOTHESIS_PROFILE=thorough`` runs
10,000 per test (see README).
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import yaml
from hypothesis import given
from hypothesis import strategies as st

from autodp_dsl import compile_text, format_source, registry
from autodp_dsl.lower import lower_strategy
from autodp_dsl.ops import Cost
from autodp_dsl.types import FLOAT, INT, STR

from .gen import COLUMNS, strategy_text

ROOT = Path(__file__).resolve().parents[2]
CURATED = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "strategies").glob("*.dp"))]
SAMPLE = pl.DataFrame(
    {"instruction": ["What is X ?", "What is X ?", "", "a < b"], "output": ["X is <b>a</b> thing &amp; more.", "X is a thing.", "ok", "x<y and y>z"],
     "n": [1, 2, 3, 4], "x": [0.5, 1.5, 2.5, -1.0]},
    schema=COLUMNS,
)
TOKEN = re.compile(r"[A-Za-z_][\w.]*|\d+(?:\.\d+)?|\"[^\"]*\"|==|!=|<=|>=|[-+*/<>=(),\[\]:]")


_SAMPLE_TYPES = {"instruction": STR, "output": STR, "n": INT, "x": FLOAT}


def _check(src: str) -> None:
    r = compile_text(src)  # must not raise
    for d in r.diagnostics:
        assert d.code and d.message and d.line >= 0
    # executing needs the columns the sample has: check against them
    r = compile_text(src, columns=_SAMPLE_TYPES)
    for d in r.diagnostics:
        assert d.code and d.message and d.line >= 0
    format_source(src)  # must not raise either
    if r.ok and all(registry().get(op).cost == Cost.VECTORISED for op in _ops(r.strategy)):
        lower_strategy(r.strategy, SAMPLE.lazy()).collect()  # type-checked strategies run


def _ops(strategy):
    from autodp_dsl import ir

    def walk(steps):
        for s in steps:
            if isinstance(s, ir.OpStep):
                yield s.op
            if isinstance(s, ir.Where):
                yield from walk(s.steps)
                exprs = [s.predicate]
            else:
                exprs = [getattr(s, "predicate", None), getattr(s, "value", None), *getattr(s, "args", ())]
            for e in exprs:
                if e is not None:
                    for sub in ir.walk_exprs(e):
                        if isinstance(sub, ir.Call):
                            yield sub.op

    return set(walk(strategy.steps))


@given(st.text(max_size=300))
def test_random_text(text):
    _check(text)


@given(st.text(alphabet=st.sampled_from(list("dp:1name\nsteps- filter:where:do:()[]{}'\"#&*!|>%@`words(output)<>=andornot 0.5,")), max_size=200))
def test_random_dp_like_text(text):
    _check(text)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40))
_yaml_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


@given(st.dictionaries(st.sampled_from(["dp", "name", "description", "columns", "require", "steps", "stpes", "x"]), _yaml_values, max_size=6))
def test_random_yaml_documents(d):
    _check(yaml.safe_dump(d, allow_unicode=True))


@given(st.lists(st.one_of(st.text(max_size=60), st.dictionaries(st.sampled_from(["filter", "where", "do", "x"]), _yaml_values, max_size=3)), max_size=6))
def test_random_step_lists(steps):
    _check(yaml.safe_dump({"dp": 1, "name": "t", "steps": steps}, allow_unicode=True))


def _mutate(draw, src: str) -> str:
    ops = registry().names()
    tokens = [(m.start(), m.end()) for m in TOKEN.finditer(src)]
    if not tokens:
        return src
    start, end = draw(st.sampled_from(tokens))
    kind = draw(st.sampled_from(["delete", "op", "column", "literal", "type", "dup-line", "drop-line", "indent", "insert"]))
    if kind == "delete":
        return src[:start] + src[end:]
    if kind == "op":
        return src[:start] + draw(st.sampled_from(ops)) + src[end:]
    if kind == "column":
        return src[:start] + draw(st.sampled_from(["output", "instruction", "ouput", "n", "x", "nope", "`odd col`"])) + src[end:]
    if kind == "literal":
        return src[:start] + draw(st.sampled_from(['"text"', "3", "-2.5", "true", "[1, 2]", "1e400", "0"])) + src[end:]
    if kind == "type":
        return src[:start] + draw(st.sampled_from(["str", "int", "list[str]", "float", "bool"])) + src[end:]
    lines = src.splitlines(keepends=True)
    i = draw(st.integers(0, max(len(lines) - 1, 0)))
    if kind == "dup-line":
        return "".join(lines[: i + 1] + lines[i:])
    if kind == "drop-line":
        return "".join(lines[:i] + lines[i + 1 :])
    if kind == "indent":
        return "".join(lines[:i] + [" " + lines[i]] + lines[i + 1 :])
    return src[:start] + draw(st.sampled_from(["(", ")", ",", ":", "- ", "'", '"', "\t", "where: ", "=", "not "])) + src[start:]


@st.composite
def mutated(draw):
    src = draw(st.sampled_from(CURATED) if CURATED and draw(st.booleans()) else strategy_text())
    for _ in range(draw(st.integers(1, 3))):
        src = _mutate(draw, src)
    return src


@given(mutated())
def test_mutations_of_valid_strategies(src):
    _check(src)
