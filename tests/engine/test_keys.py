"""Node keys: stable across processes, commutation-aware, invalidated by operator versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from autodp_dsl import ir
from autodp_dsl.engine import Executor, Policy, canonical_order, plan_strategy, root_key, strategy_keys
from autodp_dsl.io import loaded_from_frame

from .helpers import TUpper, call, col, filt, make_registry, sample_frame, step, strategy

REG = make_registry()
FP = "0" * 64

S_BASE = strategy(
    "base",
    step("t.strip", col("output")),
    filt(">=", call("t.len", col("output")), 5),
    filt("<=", call("t.digits", col("output")), 3),
    filt(">=", col("score", ir.Type("int")), 2),
    step("t.nonempty", col("instruction")),
    step("t.first", col("instruction"), col("output")),
)


def _swap(s: ir.Strategy, i: int, j: int) -> ir.Strategy:
    steps = list(s.steps)
    steps[i], steps[j] = steps[j], steps[i]
    return s.replace(steps=tuple(steps))


def test_keys_are_sha256_hex_and_chain():
    keys = strategy_keys(S_BASE, FP, REG)
    assert len(keys) == len(S_BASE.steps) == len(set(keys))
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in keys)


def test_key_stability_across_processes():
    """Same strategy, different process (different hash seed): same keys."""
    from autodp_dsl.compiler import compile_text

    src = "dp: 1\nname: x\nsteps:\n  - filter: chars(output) >= 20\n  - filter: words(instruction) >= 3\n  - dedup.exact(instruction, output)\n"
    s = compile_text(src).strategy
    here = strategy_keys(s, FP)
    code = (
        "import json,sys\n"
        "from autodp_dsl.compiler import compile_text\n"
        "from autodp_dsl.engine import strategy_keys\n"
        f"s = compile_text({src!r}).strategy\n"
        f"print(json.dumps(strategy_keys(s, {FP!r})))\n"
    )
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        assert json.loads(out.stdout) == here
    # IR JSON round trip keeps the keys
    assert strategy_keys(ir.Strategy.from_json(json.loads(json.dumps(s.to_json()))), FP) == here


def test_defaults_filled_give_equal_keys():
    a = strategy("a", step("t.upper", col("output")))
    b = strategy("b", step("t.upper", col("output"), suffix=""))
    assert strategy_keys(a, FP, REG) == strategy_keys(b, FP, REG)
    c = strategy("c", step("t.upper", col("output"), suffix="!"))
    assert strategy_keys(a, FP, REG) != strategy_keys(c, FP, REG)


@pytest.mark.parametrize("i,j", [(1, 2), (1, 3), (2, 3)])
def test_commuting_filters_reorder_to_equal_keys_and_output(i, j):
    swapped = _swap(S_BASE, i, j)
    assert strategy_keys(swapped, FP, REG) == strategy_keys(S_BASE, FP, REG)
    ex = Executor(registry=REG)
    data = loaded_from_frame(sample_frame(80))
    a, b = ex.run_batch([S_BASE, swapped], data)
    assert a.frame.equals(b.frame) and a.ids.equals(b.ids)
    assert a.accounting.balanced and b.accounting.balanced
    # the report names the steps as written in each strategy
    assert {s.step for s in b.accounting.steps} == {str(k) for k in range(1, 7)}


def test_filter_op_commutes_with_predicate_filter():
    s = strategy("s", filt(">=", call("t.len", col("output")), 5), step("t.nonempty", col("instruction")))
    assert strategy_keys(_swap(s, 0, 1), FP, REG) == strategy_keys(s, FP, REG)


def test_maps_on_disjoint_columns_commute_and_overlapping_do_not():
    a = strategy("a", step("t.upper", col("output")), step("t.strip", col("instruction")))
    assert strategy_keys(_swap(a, 0, 1), FP, REG) == strategy_keys(a, FP, REG)
    b = strategy("b", step("t.upper", col("output")), step("t.strip", col("output")))
    assert strategy_keys(_swap(b, 0, 1), FP, REG) != strategy_keys(b, FP, REG)
    # an assignment reading a column a map writes
    c = strategy("c", step("t.upper", col("output")), ir.Assign("n", call("t.len", col("output"))))
    assert strategy_keys(_swap(c, 0, 1), FP, REG) != strategy_keys(c, FP, REG)


def test_non_commuting_steps_keep_their_order():
    # a filter across a global step (dedup): the surviving first occurrences differ
    a = strategy("a", filt(">=", call("t.len", col("output")), 5), step("t.first", col("instruction")))
    assert strategy_keys(_swap(a, 0, 1), FP, REG) != strategy_keys(a, FP, REG)
    # a filter on a signal that depends on the other rows (rank)
    b = strategy("b", filt("<=", call("t.rank", col("output")), 40), filt(">=", call("t.len", col("output")), 5))
    assert strategy_keys(_swap(b, 0, 1), FP, REG) != strategy_keys(b, FP, REG)
    # a map and a filter
    c = strategy("c", step("t.strip", col("output")), filt(">=", call("t.len", col("output")), 5))
    assert strategy_keys(_swap(c, 0, 1), FP, REG) != strategy_keys(c, FP, REG)
    # and the outputs differ too (the keys are right to differ)
    ex = Executor(registry=REG)
    data = loaded_from_frame(sample_frame(80))
    r1, r2 = ex.run_batch([a, _swap(a, 0, 1)], data)
    assert not r1.ids.equals(r2.ids)


def test_canonical_order_never_crosses_a_barrier():
    steps = list(S_BASE.steps)
    order = canonical_order(steps, REG)
    pos = {k: i for i, k in enumerate(order)}
    assert pos[0] == 0 and pos[4] < pos[5]  # the map stays first; the global stays after the filters


def test_version_bump_invalidates_exactly_the_nodes_below():
    class TUpper2(TUpper):
        version = 2

    reg2 = make_registry(replace={"t.upper": TUpper2})
    s = strategy(
        "v",
        step("t.strip", col("instruction")),
        filt(">=", call("t.len", col("output")), 3),
        step("t.upper", col("output")),
        step("t.first", col("output")),
    )
    k1, k2 = strategy_keys(s, FP, REG), strategy_keys(s, FP, reg2)
    assert k1[:2] == k2[:2]
    assert all(a != b for a, b in zip(k1[2:], k2[2:], strict=True))


def test_version_bump_with_cache_recomputes_only_below(tmp_path):
    class TUpper2(TUpper):
        version = 2

        def map_expr(self, col, params):
            return col.str.to_uppercase() + pl.lit("v2")

    import polars as pl

    reg2 = make_registry(replace={"t.upper": TUpper2})
    s = strategy("v", step("t.strip", col("instruction")), filt(">=", call("t.len", col("output")), 3), step("t.upper", col("output")), step("t.first", col("output")))
    data = loaded_from_frame(sample_frame(50))
    every = Policy.everything()  # persist every node, so hits show exactly what a bump invalidates
    Executor(tmp_path, every, registry=REG).run(s, data)
    r = Executor(tmp_path, every, registry=reg2).run(s, data)
    assert [st.cache for st in r.accounting.steps] == ["hit", "hit", "computed", "computed"]
    assert r.frame["output"].str.ends_with("v2").all()
    r1 = Executor(tmp_path, every, registry=REG).run(s, data)
    assert [st.cache for st in r1.accounting.steps] == ["hit"] * 4
    assert not r1.frame["output"].str.ends_with("v2").any()


def test_root_key_depends_on_data_and_reader():
    from autodp_dsl.io import loaded_from_frame as lf

    df = sample_frame(10)
    a = lf(df, required=("output",))
    b = lf(df, required=("output", "instruction"))
    c = lf(df.head(9), required=("output",))
    assert len({root_key(a.fingerprint), root_key(b.fingerprint), root_key(c.fingerprint)}) == 3
    assert plan_strategy(S_BASE, root_key(a.fingerprint), REG).keys != plan_strategy(S_BASE, root_key(c.fingerprint), REG).keys
