"""A streaming run of the reference recipe keeps exactly the rows of a batch run.

The streaming engine runs row-wise steps as one pass and decides global steps (dedup.exact,
dedup.minhash) on ids and statistics alone (``engine/streaming.py``); this checks that both give
the batch run's kept ids, output frame, dropped ids with reasons and per-step counts, on 3,000
rows of ``gen_sft_noise.py`` (every kind of noise, planted exact and near duplicates) read in
several chunks. Skipped when the shared folder is not next to the repository.
"""

from __future__ import annotations

import json
import sys

import polars as pl
import pytest

from autodp_dsl.engine import Executor
from autodp_dsl.engine.render import load_strategy
from autodp_dsl.engine.streaming import choose_mode, estimated_footprint

from ..conftest import ROOT, SHARED

GEN = SHARED / "bench" / "gen_sft_noise.py"
RECIPE = ROOT / "strategies" / "reference-recipe.dp"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    if not GEN.exists():
        pytest.skip("needs ../shared (gen_sft_noise.py)")
    sys.path.insert(0, str(GEN.parent))
    import gen_sft_noise

    p = tmp_path_factory.mktemp("ref") / "sft.jsonl"
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in gen_sft_noise.make(3000, 0)), encoding="utf-8")
    return p


def test_streaming_keeps_the_rows_of_a_batch_run(data, tmp_path):
    s = load_strategy(RECIPE)
    ex = Executor()
    batch = ex.run(s, data)
    res = ex.run_streaming(s, data, tmp_path / "out.parquet", chunk_bytes=2 << 20)  # several input chunks
    acc, bacc = res.accounting, batch.accounting
    assert res.ids.equals(batch.ids)
    assert pl.read_parquet(tmp_path / "out.parquet").equals(batch.frame)
    assert acc.dropped_ids.sort("rid").equals(bacc.dropped_ids.sort("rid"))  # same step and reason per row
    for a, b in zip(bacc.steps, acc.steps, strict=True):
        assert (a.step, a.rows_in, a.rows_out, a.modified, a.dropped) == (b.step, b.rows_in, b.rows_out, b.modified, b.dropped)
    assert acc.balanced and acc.kept < 3000
    # the steps that ran as one pass say so; both global steps dropped duplicates
    assert {st.step for st in acc.steps if "one pass" in st.policy} == {"1", "2", "3", "4", "5"}
    assert all(st.dropped_total for st in acc.steps if st.kind == "global")


def test_mode_is_chosen_by_the_estimated_footprint(data, tmp_path):
    need = estimated_footprint(data, 7)
    assert need == data.stat().st_size * 10  # 3 + 1 per step
    assert not choose_mode(data, tmp_path / "o.parquet", 7).streaming  # a few MB: in memory
    big = choose_mode(data, tmp_path / "o.parquet", 10**6)  # as if the footprint were far above memory
    assert big.streaming and "available" in big.why
    assert not choose_mode(data, tmp_path / "o.json", 10**6).streaming  # no streaming sink for .json
    assert choose_mode(data, tmp_path / "o.parquet", 7, force=True).streaming
    assert not choose_mode(data, tmp_path / "o.parquet", 10**6, force=False).streaming


def test_streaming_selection_and_dedup_options_match_batch(data, tmp_path):
    dp = tmp_path / "sel.dp"
    dp.write_text(
        "dp: 1\nname: sel\ncolumns:\n  text: str\n  instruction: str\nsteps:\n"
        "  - dedup.exact(instruction, text, lowercase=true)\n"
        "  - dedup.minhash(text, threshold=0.8, verify=true)\n"
        "  - select.diverse(text, chars(text), fraction=0.9)\n"
        "  - select.top(chars(text) + chars(instruction), k=2000)\n"
        "  - select.sample(fraction=0.5, seed=3)\n"
    )
    s = load_strategy(dp)
    ex = Executor()
    batch = ex.run(s, data)
    res = ex.run_streaming(s, data, tmp_path / "sel.parquet")
    assert res.ids.equals(batch.ids) and pl.read_parquet(tmp_path / "sel.parquet").equals(batch.frame)
    assert res.accounting.dropped_ids.sort("rid").equals(batch.accounting.dropped_ids.sort("rid"))
    assert all("ids and keys" in st.policy for st in res.accounting.steps)  # every global step took the narrow path
    assert [st.dropped_total for st in res.accounting.steps] == [st.dropped_total for st in batch.accounting.steps]
    assert all(st.dropped_total for st in res.accounting.steps)
