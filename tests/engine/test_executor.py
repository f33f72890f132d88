"""Batches, sharing, cache reconstruction and row accounting."""

from __future__ import annotations

import polars as pl
import pytest

from autodp_dsl import ir
from autodp_dsl.engine import Executor, Policy
from autodp_dsl.io import loaded_from_frame
from autodp_dsl.lower import lower_strategy
from autodp_dsl.ops import ROW_ID

from . import helpers
from .helpers import call, cmp, col, filt, make_registry, sample_frame, step, strategy

REG = make_registry()

FULL = strategy(
    "full",
    step("t.strip", col("output")),
    step("t.reasoned", col("output")),
    filt(">=", call("t.len", col("output")), 4),
    ir.Assign("n", call("t.digits", col("output"))),
    ir.Where(cmp(">=", col("score", ir.Type("int")), 5), (step("t.upper", col("output")), filt("<=", call("t.len", col("output")), 25))),
    step("t.shout", col("instruction")),
    step("t.first", col("instruction")),
)


def _plain(s, df):
    """The reference: the plain, uncached lowering of the same strategy."""
    from autodp_dsl.lower import Context

    out = lower_strategy(s, df.with_row_index(ROW_ID).with_columns(pl.col(ROW_ID).cast(pl.UInt64)).lazy(), Context(REG), keep_internal=True)
    return out.collect().sort(ROW_ID)


def test_run_matches_plain_lowering_and_balances():
    df = sample_frame(90)
    r = Executor(registry=REG).run(FULL, df)
    ref = _plain(FULL, df)
    assert r.ids.to_list() == ref[ROW_ID].to_list()
    assert r.frame.equals(ref.select(r.frame.columns))
    acc = r.accounting
    assert acc.balanced and acc.rows_in == 90 and acc.kept == r.frame.height
    assert acc.dropped_ids.height == acc.dropped == 90 - r.frame.height
    assert set(acc.dropped_ids["rid"].to_list()).isdisjoint(r.ids.to_list())
    steps = {s.step: s for s in acc.steps}
    assert steps["1"].modified > 0 and steps["1"].dropped_total == 0
    assert set(steps["2"].dropped) == {"contains spam", "contains junk"}
    assert any(st.startswith("5.") for st in acc.dropped_ids["step"].to_list())  # nested drops are named by path
    for s in acc.steps:
        assert s.rows_in - s.dropped_total + s.added == s.rows_out


def test_reasons_from_reason_column():
    df = pl.DataFrame({"instruction": ["a", "b", "c"], "output": ["fine", "spam here", "junk"]})
    r = Executor(registry=REG).run(strategy("r", step("t.reasoned", col("output"))), df)
    d = dict(zip(r.accounting.dropped_ids["rid"].to_list(), r.accounting.dropped_ids["reason"].to_list(), strict=True))
    assert d == {1: "contains spam", 2: "contains junk"}


def test_warm_run_equals_cold_run_and_hits(tmp_path):
    df = sample_frame(120)
    data = loaded_from_frame(df)
    cold = Executor(tmp_path, Policy.everything(), registry=REG).run(FULL, data)
    warm = Executor(tmp_path, Policy.everything(), registry=REG).run(FULL, data)
    assert all(s.cache == "hit" for s in warm.accounting.steps)
    assert warm.frame.equals(cold.frame) and warm.frame.schema == cold.frame.schema
    assert warm.ids.equals(cold.ids)
    assert warm.accounting.dropped_ids.sort("rid").equals(cold.accounting.dropped_ids.sort("rid"))
    for a, b in zip(cold.accounting.steps, warm.accounting.steps, strict=True):
        assert (a.rows_in, a.rows_out, a.modified, a.dropped) == (b.rows_in, b.rows_out, b.modified, b.dropped)


def test_default_policy_partial_cache_still_exact(tmp_path):
    df = sample_frame(120)
    data = loaded_from_frame(df)
    cold = Executor(tmp_path, registry=REG).run(FULL, data)
    warm = Executor(tmp_path, registry=REG).run(FULL, data)
    assert warm.frame.equals(cold.frame)
    assert warm.accounting.steps[-1].cache == "hit"
    # a threshold change reuses the statistic of the unchanged prefix
    s2 = FULL.replace(steps=FULL.steps[:2] + (filt(">=", call("t.len", col("output")), 6),) + FULL.steps[3:])
    r2 = Executor(tmp_path, registry=REG).run(s2, data)
    st = r2.accounting.steps[2]
    assert st.cache == "computed" and [x.source for x in st.stats] == ["hit"]


def test_batch_equals_one_by_one_any_order_and_duplicates():
    df = sample_frame(100)
    variants = [
        FULL,
        FULL.replace(name="b", steps=FULL.steps[:3] + (filt(">=", call("t.len", col("output")), 8),)),
        FULL.replace(name="c", steps=FULL.steps[:2]),
        strategy("empty"),
    ]
    data = loaded_from_frame(df)
    single = [Executor(registry=REG).run(s, data) for s in variants]
    batch = Executor(registry=REG).run_batch([variants[2], variants[0], variants[3], variants[0], variants[1]], data)
    for got, want in zip(batch, [single[2], single[0], single[3], single[0], single[1]], strict=True):
        assert got.strategy == want.strategy
        assert got.frame.equals(want.frame) and got.ids.equals(want.ids)
        assert got.accounting.dropped_ids.equals(want.accounting.dropped_ids)
        assert got.keys == want.keys and got.accounting.balanced
    assert batch[2].frame.height == 100  # no steps: the input


def test_shared_prefix_runs_once():
    df = sample_frame(200)
    prefix = (step("t.strip", col("output")), filt(">=", call("t.count", col("output")), 3))
    ss = [strategy(f"s{k}", *prefix, step("t.upper", col("output"), suffix=str(k))) for k in range(4)]
    helpers.CALLS["t.count"] = 0
    res = Executor(registry=REG).run_batch(ss, df)
    assert helpers.CALLS["t.count"] == 200  # every row once
    assert all(r.accounting.steps[1].shared == 4 for r in res)
    helpers.CALLS["t.count"] = 0
    for s in ss:
        Executor(registry=REG).run(s, df)
    assert helpers.CALLS["t.count"] == 800


def test_signal_ids_survive_and_stats_memo_between_thresholds():
    df = sample_frame(50)
    a = strategy("a", filt(">=", call("t.count", col("output")), 5))
    b = strategy("b", filt(">=", call("t.count", col("output")), 9))
    helpers.CALLS["t.count"] = 0
    Executor(registry=REG).run_batch([a, b], df)
    assert helpers.CALLS["t.count"] == 50  # one statistic, two thresholds


def test_explain_shows_sharing_policy_and_hits(tmp_path):
    df = sample_frame(40)
    data = loaded_from_frame(df)
    a = FULL
    b = FULL.replace(name="b", steps=FULL.steps[:3])
    ex = Executor(tmp_path, registry=REG)
    e0 = ex.explain([a, b], data)
    assert len(e0.nodes) == len(FULL.steps)
    shared = [n for n in e0.nodes if len(n.labels) == 2]
    assert len(shared) == 3 and all(n.policy == "always" for n in shared)
    assert all(n.cache == "miss" for n in e0.nodes)
    assert any(s.name == "t.len" for n in e0.nodes for s in n.stats)
    rb = ex.run(b, data)
    e1 = ex.explain([a, b], data)
    hits = {n.key for n in e1.nodes if n.cache == "hit"}
    assert hits == {s.key for s in rb.accounting.steps if s.persisted}
    assert rb.accounting.steps[-1].key in hits and len(hits) >= 2
    assert e1.to_json()["shared_nodes"] == 3


def test_unknown_data_column_quarantines_not_crashes():
    df = pl.DataFrame({"instruction": ["a", None, "c"], "output": ["x", "y", None]})
    r = Executor(registry=REG).run(strategy("q", filt(">=", call("t.len", col("output")), 0)), df)
    assert r.accounting.quarantined == 1 and r.accounting.kept == 2 and r.accounting.balanced


@pytest.mark.parametrize("name", ["medquad", "genmedgpt_5k", "pubmedqa_pqal"])
def test_accounting_identity_on_shared_data(name, tmp_path):
    from tests.conftest import SHARED

    path = next((SHARED / "data" / name).glob("*.jsonl"), None)
    if path is None:
        pytest.skip(f"needs ../shared/data/{name}")
    s = strategy(
        name,
        step("t.strip", col("output")),
        filt(">=", call("chars", col("output")), 40),
        filt(">=", call("words", col("instruction")), 3),
        step("dedup.exact", col("instruction"), col("output")),
    )
    ex = Executor(tmp_path, registry=REG)
    r = ex.run(s, path)
    acc = r.accounting
    assert acc.balanced
    assert acc.rows_in == sum(1 for line in open(path, "rb") if line.strip())
    assert acc.kept + acc.dropped + acc.quarantined == acc.rows_in
    ids = set(r.ids.to_list()) | set(acc.dropped_ids["rid"].to_list()) | set(r.quarantine["rid"].to_list())
    assert ids == set(range(acc.rows_in))
    warm = Executor(tmp_path, registry=REG).run(s, path)
    assert warm.frame.equals(r.frame) and warm.accounting.balanced


def test_a_failing_strategy_does_not_sink_the_batch():
    df = sample_frame(60)
    good = strategy("good", step("t.strip", col("output")), filt(">=", call("t.len", col("output")), 4))
    bad = strategy("bad", step("t.strip", col("output")), step("t.boom", col("output")), filt(">=", call("t.len", col("output")), 4))
    after_bad = strategy("after", *bad.steps, step("t.first", col("output")))
    with pytest.raises(Exception, match="boom"):
        Executor(registry=REG).run_batch([good, bad], df)
    res = Executor(registry=REG).run_batch([good, bad, after_bad], df, on_error="record")
    assert res[0].ok and res[0].accounting.balanced and res[0].frame.height > 0
    for r in res[1:]:
        assert not r.ok and "step 2" in r.error and "boom" in r.error and "t.boom(output)" in r.error
        assert r.frame.height == 0 and [s.step for s in r.accounting.steps] == ["1"]


def test_hand_made_loaded_without_ids():
    from autodp_dsl.io import QUARANTINE_SCHEMA, Loaded

    df = sample_frame(30)
    data = Loaded(frame=df, quarantine=pl.DataFrame(schema=QUARANTINE_SCHEMA), fingerprint="f" * 64, rows_total=30)
    r = Executor(registry=REG).run(strategy("h", filt(">=", call("t.len", col("output")), 5)), data)
    assert r.accounting.balanced and r.ids.max() < 30
