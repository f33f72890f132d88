"""Properties of the language: fmt is canonical, optimization preserves rows, text round-trips."""

from __future__ import annotations

import polars as pl
from hypothesis import example, given

from autodp_dsl import compile_text, format_source, optimize, strategy_to_text
from autodp_dsl.lower import lower_strategy

from .gen import frame, strategy_text


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
