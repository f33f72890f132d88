"""Every curated strategy compiles, formats idempotently and, when it needs no model, runs."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from autodp_dsl import compile_file, format_source, registry
from autodp_dsl.ir import Call, OpStep, Where, walk_exprs
from autodp_dsl.lower import lower_strategy
from autodp_dsl.ops import Cost

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = sorted((ROOT / "strategies").glob("*.dp"))

ROWS = pl.DataFrame(
    {
        "instruction": ["What is (are) Asthma ?", "What is (are) Asthma ?", "Doctor, I cough.", "What causes gout ?"],
        "input": ["", "", "I cough at night", ""],
        "output": [
            "What is asthma? Asthma is a <b>chronic</b> disease of the airways that makes breathing hard &amp; causes wheezing.",
            "What is asthma? Asthma is a <b>chronic</b> disease of the airways that makes breathing hard &amp; causes wheezing.",
            "You may have asthma. Contact me at doc@example.com or https://example.com for a visit soon please.",
            "What causes gout?",
        ],
    }
)
ROWS = ROWS.with_columns(text=pl.concat_str(["instruction", "output"], separator="\n\n"))


def _ops(steps):
    for s in steps:
        if isinstance(s, OpStep):
            yield s.op
        if isinstance(s, Where):
            yield from _ops(s.steps)
        for e in (getattr(s, "predicate", None), getattr(s, "value", None), *getattr(s, "args", ())):
            if e is not None:
                yield from (x.op for x in walk_exprs(e) if isinstance(x, Call))


def test_there_are_curated_strategies():
    assert len(STRATEGIES) >= 5


@pytest.mark.parametrize("path", STRATEGIES, ids=lambda p: p.stem)
def test_strategy_compiles_cleanly(path):
    r = compile_file(path, columns=None)
    assert r.ok and not r.diagnostics, [d.headline() for d in r.diagnostics]
    formatted, _ = format_source(path.read_text())
    assert format_source(formatted)[0] == formatted


@pytest.mark.parametrize("path", STRATEGIES, ids=lambda p: p.stem)
def test_shipped_strategy_is_in_canonical_form(path):
    text = path.read_text(encoding="utf-8")
    assert format_source(text)[0] == text, f"run `autodp fmt --write {path}`"


@pytest.mark.parametrize("path", STRATEGIES, ids=lambda p: p.stem)
def test_vectorised_strategy_runs(path):
    r = compile_file(path)
    if any(registry().get(op).cost != Cost.VECTORISED for op in _ops(r.strategy.steps)):
        pytest.skip("needs a model backend (covered by the operator tests)")
    out = lower_strategy(r.strategy, ROWS.lazy()).collect()
    assert 0 < out.height <= ROWS.height
    assert set(r.strategy.require) <= set(out.columns)
