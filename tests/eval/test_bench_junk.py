"""bench/junk.py: the planted-junk generators are deterministic and do what their spec says."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from autodp_eval.testing import make_qa_rows

_spec = importlib.util.spec_from_file_location(
    "bench_junk", Path(__file__).resolve().parents[2] / "bench" / "junk.py"
)
junk = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(junk)


@pytest.fixture(scope="module")
def rows():
    return make_qa_rows(200, seed=3)


@pytest.mark.parametrize("kind", sorted(junk.KINDS))
def test_each_kind_is_deterministic_and_touches_only_the_chosen_rows(rows, kind):
    before = [dict(r) for r in rows]
    out, idx = junk.plant(rows, kind, 0.3, seed=7)
    again, idx2 = junk.plant(rows, kind, 0.3, seed=7)
    assert (out, idx) == (again, idx2) and rows == before  # same seed, same junk; input untouched
    assert len(idx) == 60 and len(set(idx)) == 60 and idx == sorted(idx)
    _, other = junk.plant(rows, kind, 0.3, seed=8)
    assert other != idx
    chosen = set(idx)
    for i, (r, o) in enumerate(zip(rows, out, strict=True)):
        assert o["instruction"] == r["instruction"]
        assert (o["output"] != r["output"]) == (i in chosen) or kind == "swapped"


def test_kind_specs(rows):
    out, idx = junk.plant(rows, "swapped", 0.3, seed=1)
    originals = {r["output"] for r in rows}
    for i in idx:
        assert out[i]["output"] in originals and out[i]["output"] != rows[i]["output"]
        src = next(r for r in rows if r["output"] == out[i]["output"])
        assert src["category"] == rows[i]["category"]  # another question of the same type
    out, idx = junk.plant(rows, "truncated", 0.3, seed=1)
    for i in idx:
        n, k = len(rows[i]["output"].split()), len(out[i]["output"].split())
        assert rows[i]["output"].startswith(out[i]["output"]) and 0.2 * n - 0.5 <= k <= 0.5 * n + 0.5
    out, idx = junk.plant(rows, "heading", 0.3, seed=1)
    assert all(rows[i]["instruction"].rstrip(" ?")[1:] in out[i]["output"] for i in idx)
    out, idx = junk.plant(rows, "html", 0.3, seed=1)
    for i in idx:
        assert "<" in out[i]["output"] and all(
            w.replace("&", "&amp;") in out[i]["output"] for w in rows[i]["output"].split()
        )
    out, idx = junk.plant(rows, "boilerplate", 0.3, seed=1)
    assert all(junk.subject(rows[i]["instruction"]) in out[i]["output"] for i in idx)
    out, idx = junk.plant(rows, "spam", 0.3, seed=1)
    # near-duplicates: one paragraph, up to a number and a word
    assert len({re.sub(r"\d+|cheap|discount|best|trusted|fast", "", out[i]["output"]) for i in idx}) == 1


def test_bad_arguments(rows):
    with pytest.raises(ValueError, match="unknown junk kind"):
        junk.plant(rows, "nope")
    with pytest.raises(ValueError, match="fraction"):
        junk.plant(rows, "spam", 1.5)
