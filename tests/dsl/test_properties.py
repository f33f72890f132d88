"""Properties of the language: fmt is canonical, optimization preserves rows, text round-trips."""

from __future__ import annotations

from dataclasses import fields, is_dataclass

import polars as pl
import yaml
from hypothesis import example, given, settings

from autodp_dsl import compile_text, format_source, optimize, strategy_to_text
from autodp_dsl.fmt import comments
from autodp_dsl.lower import lower_strategy
from autodp_dsl.syntax import parse_expr, parse_step

from .gen import _TEXT, frame, messy_document, strategy_text


@given(strategy_text())
def test_fmt_is_idempotent_and_preserves_ir(src):
    original = compile_text(src)
    assert original.ok, original.diagnostics
    formatted, diags = format_source(src)
    assert formatted is not None, diags
    assert format_source(formatted)[0] == formatted
    again = compile_text(formatted)
    assert again.ok and again.strategy == original.strategy


@given(strategy_text())
def test_ir_text_round_trip(src):
    s = compile_text(src).strategy
    assert compile_text(strategy_to_text(s)).strategy == s


@given(strategy_text(), frame())
# found by this test: a signal computed inside a where block (for its rows only) was reused after it
@example(
    src="dp: 1\nname: gen\ncolumns:\n  instruction: str\n  output: str\n  n: int\n  x: float\nsteps:\n"
    "  - where: 0 == 1\n    do:\n      - filter: 0 == words(instruction)\n  - filter: n == words(instruction)\n",
    df=pl.DataFrame({"instruction": [""], "output": [""], "n": [0], "x": [0.0]}),
)
def test_optimized_and_unoptimized_plans_give_the_same_rows(src, df):
    r = compile_text(src, level="none")
    assert r.ok, r.diagnostics
    plain = lower_strategy(r.strategy, df.lazy()).collect()
    fast = lower_strategy(optimize(r.strategy), df.lazy()).collect()
    assert plain.columns == fast.columns
    assert plain.equals(fast, null_equal=True)


# ---------------------------------------------------------------- fmt loses nothing (issue 12)

# a modest budget: each example formats and compiles two documents
_BUDGET = settings(max_examples=min(settings.default.max_examples, 150))


def _shape(node):
    """A syntax tree without its positions (what a step means, not where it was written)."""
    if is_dataclass(node):
        return (type(node).__name__,) + tuple(_shape(getattr(node, f.name)) for f in fields(node) if f.name not in _POSITIONS)
    if isinstance(node, tuple | list):
        return tuple(_shape(x) for x in node)
    return node


_POSITIONS = {"start", "end", "op_start", "op_end", "name_end"}


def _steps(items):
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(("call", _shape(parse_step(item))))
        elif "filter" in item:
            out.append(("filter", _shape(parse_expr(item["filter"]))))
        else:
            out.append(("where", _shape(parse_expr(item["where"])), _steps(item["do"])))
    return out


@_BUDGET
@given(strategy_text())
def test_fmt_of_a_clean_document_lints_the_same_and_compiles_to_the_same_ir(src):
    original = compile_text(src, level="none")
    assert original.ok
    formatted, diags = format_source(src)
    assert formatted is not None, diags
    again = compile_text(formatted, level="none")
    assert [(d.code, d.message) for d in again.diagnostics] == [(d.code, d.message) for d in original.diagnostics]
    assert again.strategy == original.strategy


@_BUDGET
@given(messy_document())
@example("dp: 1\nname: t\nstesp: [a]\ndescription: \"a\\u2028b\\nc\"\nsteps:\n  - filter: -(-1) < words(output)\n  - filter: words(output) > 1e309\n"
         "  - filter: (words(output) > 1) == (chars(output) > 2)\n  - where: words(output) > 3\n    do: []\n")
def test_fmt_never_loses_a_key_or_a_value(src):
    out, diags = format_source(src)
    if out is None:  # a refusal is allowed, never a silent loss
        assert diags
        return
    assert format_source(out)[0] == out
    before, after = yaml.safe_load(src), yaml.safe_load(out)
    assert set(before) == set(after)
    for key in before:
        if key != "steps":
            assert after[key] == before[key], key
    assert _steps(after["steps"]) == _steps(before["steps"])
    assert sorted(d.code for d in compile_text(out).diagnostics) == sorted(d.code for d in compile_text(src).diagnostics)
    assert sorted(c[2] for c in comments(out)) == sorted(c[2] for c in comments(src))


@_BUDGET
@given(strategy_text(), _TEXT.filter(str.strip), _TEXT)
def test_strategy_to_text_keeps_any_name_and_description(src, name, description):
    s = compile_text(src).strategy.replace(name=name, description=description)
    assert compile_text(strategy_to_text(s)).strategy == s
