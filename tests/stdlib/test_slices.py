"""Signals and signatures computed a slice of text at a time equal the whole batch's, row by row."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from stdlib_ops.dedup import minhash_signatures

words = st.sampled_from(["a", "b", "C", "dd", "é", "★", "x y", "", "  ", "\n"])
rows = st.lists(st.lists(words, max_size=30).map(" ".join) | st.none(), max_size=10)


@settings(max_examples=60)
@given(rows, st.sampled_from([1, 7, 64]), st.integers(1, 5))
def test_minhash_signatures_do_not_depend_on_the_slicing(texts, budget, ngram):
    s = pl.Series(texts, dtype=pl.String)
    whole = minhash_signatures(s, 32, ngram, True, 3, budget=1 << 30)
    sliced = minhash_signatures(s, 32, ngram, True, 3, budget=budget)
    assert whole.dtype == sliced.dtype == pl.Array(pl.UInt32, 32)
    assert np.array_equal(whole.to_numpy(), sliced.to_numpy())


def test_minhash_signatures_of_no_rows():
    assert minhash_signatures(pl.Series([], dtype=pl.String), 16, 5, True, 1).shape == (0,)
