"""Selection: top-k by score, reproducible random samples, diversity-aware selection."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from autodp_dsl.ops import ROW_ID
from stdlib_ops._text import mix64
from stdlib_ops.selection import SizeParams, splitmix64_expr

from ._util import col, num, run, step

SCORES = pl.DataFrame({"s": [1.0, 3.0, 2.0, None, float("nan"), 3.0, 0.5]})


def kept(ctx) -> list[int]:
    return ctx.decisions[-1].filter(pl.col("__keep"))[ROW_ID].to_list()


def test_top_ranks_by_score_then_row_id_nulls_and_nan_last():
    _, ctx = run(SCORES, step("select.top", num("s"), k=3))
    assert kept(ctx) == [1, 2, 5]  # 3.0 (row 1), 3.0 (row 5), 2.0
    d = ctx.decisions[-1].filter(~pl.col("__keep"))
    assert dict(zip(d[ROW_ID].to_list(), d["__reason"].to_list(), strict=True)) == {
        0: "rank 4 of 7 by s, below the top 3",
        3: "rank 6 of 7 by s, below the top 3",
        4: "rank 7 of 7 by s, below the top 3",
        6: "rank 5 of 7 by s, below the top 3",
    }


@pytest.mark.parametrize("fraction,n_kept", [(0.5, 4), (0.3, 2), (1.0, 7), (0.01, 0), (0.0715, 1)])
def test_top_fraction_rounds_half_up(fraction, n_kept):
    _, ctx = run(SCORES, step("select.top", num("s"), fraction=fraction))
    assert len(kept(ctx)) == n_kept


def test_top_k_larger_than_rows_keeps_all():
    out, _ = run(SCORES, step("select.top", num("s"), k=100))
    assert out.height == 7


def test_top_on_an_expression():
    from autodp_dsl import ir
    from autodp_dsl.types import INT

    df = pl.DataFrame({"output": ["a", "abcd", "ab", "abc"]})
    out, _ = run(df, step("select.top", ir.Call("chars", (col("output"),), (), INT), k=2))
    assert out["output"].to_list() == ["abcd", "abc"]


def test_size_params_validation():
    from pydantic import ValidationError

    for bad in ({}, {"fraction": 0.5, "k": 3}, {"fraction": 1.5}, {"k": -1}):
        with pytest.raises(ValidationError):
            SizeParams(**bad)


def test_sample_is_reproducible_nested_and_order_independent():
    df = pl.DataFrame({"x": list(range(1000))})
    small, _ = run(df, step("select.sample", fraction=0.1, seed=7))
    big, _ = run(df, step("select.sample", fraction=0.5, seed=7))
    with_ids = df.with_row_index(ROW_ID).with_columns(pl.col(ROW_ID).cast(pl.UInt64))
    again, _ = run(with_ids.reverse(), step("select.sample", fraction=0.1, seed=7))
    other, _ = run(df, step("select.sample", fraction=0.1, seed=8))
    assert small.height == 100 and big.height == 500
    assert set(small[ROW_ID]) <= set(big[ROW_ID])
    assert small[ROW_ID].to_list() == again[ROW_ID].to_list()  # the physical order does not matter
    assert small[ROW_ID].to_list() != other[ROW_ID].to_list()


def test_sample_random_numbers_are_splitmix64():
    rid = np.arange(50, dtype=np.uint64)
    want = mix64(rid + np.uint64((3 + 1) * 0x9E3779B97F4A7C15 % 2**64))
    got = pl.DataFrame({"r": rid}).select(splitmix64_expr(pl.col("r"), 3)).to_series().to_numpy()
    assert (got == want).all()


def test_sample_keeps_the_smallest_numbers():
    df = pl.DataFrame({"x": list(range(20))})
    out, _ = run(df, step("select.sample", k=5, seed=1))
    r = mix64(np.arange(20, dtype=np.uint64) + np.uint64(2 * 0x9E3779B97F4A7C15 % 2**64))
    assert sorted(out[ROW_ID].to_list()) == sorted(np.argsort(r, kind="stable")[:5].tolist())


def test_diverse_takes_the_best_of_every_cluster_first():
    a = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu"
    b = "one two three four five six seven eight nine ten eleven twelve"
    c = "red orange yellow green blue indigo violet black white grey pink brown"
    df = pl.DataFrame(
        {
            "output": [a, a, a + " nu", b, b, c],
            "score": [1.0, 5.0, 3.0, 2.0, 4.0, 0.0],
        }
    )
    _, ctx = run(df, step("select.diverse", col("output"), num("score"), k=3))
    assert kept(ctx) == [1, 4, 5]  # the best of each of the 3 clusters, whatever their scores
    _, ctx = run(df, step("select.diverse", col("output"), num("score"), k=4))
    assert kept(ctx) == [1, 2, 4, 5]  # then the second round, best score first (3.0 > 2.0)
    d = ctx.decisions[-1].filter(~pl.col("__keep"))
    assert d["__reason"].to_list() == ["round 3 of the cluster of row 0, beyond the 4 kept", "round 2 of the cluster of row 3, beyond the 4 kept"]
