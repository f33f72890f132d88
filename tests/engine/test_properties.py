"""Property: for random strategies, batch = one by one = warm cache = plain lowering, and every row
is accounted for."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from autodp_dsl import ir
from autodp_dsl.engine import Executor, Policy
from autodp_dsl.io import loaded_from_frame

from .helpers import call, cmp, col, filt, make_registry, sample_frame, step, strategy

REG = make_registry()
DATA = loaded_from_frame(sample_frame(70))

POOL = [
    step("t.strip", col("output")),
    step("t.upper", col("instruction")),
    step("t.upper", col("output"), suffix="!"),
    filt(">=", call("t.len", col("output")), 5),
    filt("<=", call("t.len", col("output")), 28),
    filt("<=", call("t.digits", col("output")), 4),
    filt("<=", call("t.rank", col("output")), 50),
    step("t.nonempty", col("output")),
    step("t.reasoned", col("output")),
    step("t.first", col("instruction")),
    step("t.first", col("output")),
    step("t.echo", col("output")),
    ir.Assign("n", call("t.digits", col("output"))),
    ir.Where(cmp(">=", col("score", ir.Type("int")), 5), (step("t.upper", col("output")), filt("<=", call("t.len", col("output")), 25))),
]

strategies_ = st.lists(st.lists(st.sampled_from(range(len(POOL))), max_size=6), min_size=1, max_size=4)


@settings(max_examples=25, deadline=None)
@given(strategies_)
def test_batch_single_warm_agree(tmp_path_factory, choice):
    ss = [strategy(f"s{i}", *[POOL[j] for j in steps]) for i, steps in enumerate(choice)]
    cache = tmp_path_factory.mktemp("c")
    batch = Executor(cache, Policy.everything(), registry=REG).run_batch(ss, DATA)
    warm = Executor(cache, Policy.everything(), registry=REG).run_batch(list(reversed(ss)), DATA)[::-1]
    for s, b, w in zip(ss, batch, warm, strict=True):
        one = Executor(registry=REG).run(s, DATA)
        for r in (b, w):
            assert r.frame.equals(one.frame) and r.ids.equals(one.ids)
            assert r.accounting.dropped_ids.sort("rid").equals(one.accounting.dropped_ids.sort("rid"))
            assert r.accounting.balanced
        assert all(x.cache == "hit" for x in w.accounting.steps)
        kept = set(one.ids.to_list())
        dropped = set(one.accounting.dropped_ids["rid"].to_list())
        assert not kept & dropped
        originals = {i for i in kept | dropped if i < 70}
        assert originals == set(range(70))


def test_generate_rows_are_accounted():
    s = strategy("g", step("t.echo", col("output")), filt(">=", call("t.len", col("output")), 3), step("t.strip", col("output")))
    r = Executor(registry=REG).run(s, DATA)
    acc = r.accounting
    assert acc.generated == acc.steps[0].added > 0
    assert acc.balanced and acc.rows_in + acc.generated == acc.kept + acc.dropped + acc.quarantined
    assert r.ids.max() >= 70 and not r.ids.is_duplicated().any()
