"""Agreement with Data-Juicer 1.6.1 on its recorded per-row outputs (shared/reference/dj_ref_sample.jsonl).

The reference holds Data-Juicer's outputs for the first 2,000 rows of
``gen_sft_noise.py --n 20000 --seed 0``; the rows themselves are regenerated here (the generator is
deterministic and prefix-stable). Skipped when the shared folder is not next to the repository.
The measured figures are in docs/datajuicer.md (``python bench/bench_ops.py --agreement``).
"""

from __future__ import annotations

import json
import sys

import polars as pl
import pytest

from autodp_dsl import ir
from autodp_dsl.lower import Context, lower_strategy
from autodp_dsl.ops import KEEP, ROW_ID
from autodp_dsl.types import STR

from ..conftest import SHARED
from ._util import mapped, signal

REF = SHARED / "reference" / "dj_ref_sample.jsonl"
GEN = SHARED / "bench" / "gen_sft_noise.py"

pytestmark = pytest.mark.skipif(not (REF.exists() and GEN.exists()), reason="needs ../shared (Data-Juicer reference sample)")


@pytest.fixture(scope="module")
def sample():
    sys.path.insert(0, str(GEN.parent))
    import gen_sft_noise

    rows = gen_sft_noise.make(2000, 0)
    ref = [json.loads(line) for line in REF.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in ref]
    return rows, ref


def share(a, b) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


@pytest.mark.parametrize("stat,op,kw", [("text_len", "chars", {}), ("special_char_ratio", "special_char_ratio", {}), ("word_rep_ratio", "word_repetition_ratio", {"n": 10})])
def test_statistics_are_identical(sample, stat, op, kw):
    rows, ref = sample
    assert signal(op, [r["text"] for r in rows], **kw) == [r[f"raw.{stat}"] for r in ref]
    assert signal(op, [r["mapped"] for r in ref], **kw) == [r[f"mapped.{stat}"] for r in ref]


def test_cleaning_differs_only_where_documented(sample):
    rows, ref = sample
    html = mapped("clean.html", [r["text"] for r in rows])
    differ = {r["noise"] for r, a, f in zip(rows, html, ref, strict=True) if a != f["clean_html"]}
    # html: block separators, script content; code_lt: `x<y and y>z` survives; dups copy those rows
    assert differ <= {"html", "code_lt", "exact_dup", "near_dup", "ws_dup"}
    assert share(html, [f["clean_html"] for f in ref]) > 0.85
    ws = mapped("clean.whitespace", [r["text"] for r in rows])
    assert share(ws, [f["ws_norm"] for f in ref]) > 0.9


def test_filter_decisions_on_the_mapped_text(sample):
    rows, ref = sample
    ours = mapped("clean.whitespace", mapped("clean.html", [r["text"] for r in rows]))
    chars = signal("chars", ours)
    assert share([20 <= v <= 20000 for v in chars], [20 <= f["mapped.text_len"] <= 20000 for f in ref]) == 1.0
    sc = signal("special_char_ratio", ours)
    assert share([v <= 0.25 for v in sc], [f["mapped.special_char_ratio"] <= 0.25 for f in ref]) > 0.99
    wr = signal("word_repetition_ratio", ours, n=10)
    assert share([v <= 0.5 for v in wr], [f["mapped.word_rep_ratio"] <= 0.5 for f in ref]) > 0.99


class _Keep(Context):
    def drop(self, lf, path, step):
        self.keep = lf.select(ROW_ID, KEEP).collect().sort(ROW_ID)[KEEP].to_list()
        return super().drop(lf, path, step)


def _dedup(texts, name):
    ctx = _Keep()
    lower_strategy(ir.Strategy("d", (ir.OpStep(name, (ir.Col("text", STR),)),)), pl.DataFrame({"text": texts}).lazy(), ctx).collect()
    return ctx.keep


def test_exact_dedup_differs_only_on_inner_whitespace(sample):
    rows, ref = sample
    keep = _dedup([r["text"] for r in rows], "dedup.exact")
    differ = [(r["noise"], k) for r, k, f in zip(rows, keep, ref, strict=True) if k != f["raw.exact_keep"]]
    assert all(d == ("ws_dup", False) for d in differ)  # copies differing inside a whitespace run: we drop them too
    assert share(keep, [f["raw.exact_keep"] for f in ref]) > 0.97


def test_minhash_dedup_keep_decisions(sample):
    rows, ref = sample
    keep = _dedup([r["text"] for r in rows], "dedup.minhash")
    assert share(keep, [f["raw.minhash_keep"] for f in ref]) > 0.985
