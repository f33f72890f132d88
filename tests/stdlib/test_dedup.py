"""Deduplication: exact keys, MinHash signatures, LSH parameters, clustering, drop reasons."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autodp_dsl.lower import Context
from autodp_dsl.ops import ROW_ID
from stdlib_ops.dedup import (
    MinHashParams,
    _band_row_pairs,
    _densify,
    _gauss_legendre,
    _lsh_errors,
    _probe_orders,
    candidate_pairs,
    components,
    exact_jaccard,
    minhash_signatures,
    optimal_bands_rows,
    shingle_hashes,
    signature_column,
)
from stdlib_ops.testing import jaccard_cells, jaccard_pairs

from ._util import col, run, step

# ================================================================ dedup.exact


def kept(ctx) -> list[int]:
    d = ctx.decisions[-1]
    return d.filter(pl.col("__keep"))[ROW_ID].to_list()


def reasons(ctx) -> dict[int, str]:
    d = ctx.decisions[-1].filter(~pl.col("__keep"))
    return dict(zip(d[ROW_ID].to_list(), d["__reason"].to_list(), strict=True))


EXACT = pl.DataFrame({"output": ["a b", " a  b ", "A B", "a b", None, "", "c", "a\tb\n"]})


def test_exact_default_collapses_whitespace_and_keeps_first():
    _, ctx = run(EXACT, step("dedup.exact", col("output")))
    assert kept(ctx) == [0, 2, 4, 6]
    assert reasons(ctx) == {1: "exact duplicate of row 0", 3: "exact duplicate of row 0", 5: "exact duplicate of row 4", 7: "exact duplicate of row 0"}


def test_exact_params():
    _, ctx = run(EXACT, step("dedup.exact", col("output"), lowercase=True))
    assert kept(ctx) == [0, 4, 6]
    _, ctx = run(EXACT, step("dedup.exact", col("output"), ignore_whitespace=False))
    assert kept(ctx) == [0, 1, 2, 4, 6, 7]  # null and "" are both the empty key


def test_exact_on_a_tuple_of_columns():
    df = pl.DataFrame({"instruction": ["a", "a b", "a", "a"], "output": ["b c", "c", "b c", "x"]})
    _, ctx = run(df, step("dedup.exact", col("instruction"), col("output")))
    assert kept(ctx) == [0, 1, 3]


def test_exact_keeps_the_lowest_row_id_whatever_the_physical_order():
    df = EXACT.with_row_index(ROW_ID).with_columns(pl.col(ROW_ID).cast(pl.UInt64)).reverse()
    _, ctx = run(df, step("dedup.exact", col("output")))
    assert kept(ctx) == [0, 2, 4, 6]


# ================================================================ signatures

WORDS = [f"w{i}" for i in range(5000)]


def text_of(ids) -> str:
    return " ".join(WORDS[i] for i in ids)


def sig(texts, **kw) -> np.ndarray:
    p = dict(num_perm=256, ngram=1, lowercase=True, seed=42) | kw
    return minhash_signatures(pl.Series(texts, dtype=pl.String), **p).to_numpy()


def test_signature_shape_and_determinism():
    s = minhash_signatures(pl.Series(["a b c d e f", "", None]), 64, 5, True, 1)
    assert s.dtype == pl.Array(pl.UInt32, 64)
    a = s.to_numpy()
    assert (a == minhash_signatures(pl.Series(["a b c d e f", "", None]), 64, 5, True, 1).to_numpy()).all()
    assert (a[1] == a[2]).all()  # empty and null: the same one shingle
    assert not (a[0] == minhash_signatures(pl.Series(["a b c d e f"]), 64, 5, True, 2).to_numpy()[0]).all()  # seed matters


def test_signature_ignores_case_and_whitespace_layout():
    a, b, c = sig(["Hello  World\n foo bar baz", "hello world foo bar baz", "hello world foo bar qux"], ngram=5)
    assert (a == b).all() and not (a == c).all()
    a, b = sig(["Hello world foo bar baz", "hello world foo bar baz"], ngram=5, lowercase=False)
    assert not (a == b).all()


def test_short_texts_are_one_shingle_each():
    # Data-Juicer puts every text under 5 words into one cluster; here they differ unless equal
    r, h = shingle_hashes(pl.Series(["one two three", "completely different words here", "one two three", "", "  "]), 5, True, 42)
    assert r.tolist() == [0, 1, 2, 3, 4]
    assert h[0] == h[2] and h[0] != h[1] and h[3] == h[4]


@pytest.mark.parametrize("sizes", [(200, 100), (20, 10), (6, 3), (3, 1)])
def test_each_position_agrees_with_probability_jaccard(sizes):
    """One-permutation hashing + densification is unbiased for Jaccard, for big and tiny sets."""
    m, overlap = sizes  # two sets of m words sharing `overlap` -> J = overlap / (2m - overlap)
    jac = overlap / (2 * m - overlap)
    agree = []
    for seed in range(60):
        a, b = sig([text_of(range(m)), text_of(range(m - overlap, 2 * m - overlap))], seed=seed)
        agree.append((a == b).mean())
    assert abs(np.mean(agree) - jac) < 0.04, (np.mean(agree), jac)


@pytest.mark.parametrize("dense_max", [0, 4, 16])
def test_densify_matches_a_plain_reference(dense_max):
    """An empty bin takes the value of the first filled bin in its own probe order, whether found
    by probing (rows with more than ``dense_max`` filled bins) or by the minimum over the row's
    filled bins (the others)."""
    rng = np.random.default_rng(1)
    k = 16
    filled = rng.random((50, k)) < rng.random((50, 1)) * 0.8
    filled[np.arange(50), rng.integers(0, k, 50)] = True
    filled[7] = True  # a full row is left as it is
    s = rng.integers(0, 2**32, (50, k), dtype=np.uint64).astype(np.uint32)
    got = s.copy()
    _densify(got, filled, seed=5, dense_max=dense_max, chunk=7)
    order, rank = _probe_orders(k, 5)
    assert (np.sort(order, axis=1) == np.arange(k)).all() and (np.take_along_axis(rank, order, axis=1) == np.arange(k)).all()
    for i in range(50):
        for j in range(k):
            donor = j if filled[i, j] else next(t for t in order[j] if filled[i, t])
            assert got[i, j] == s[i, donor]


def test_probe_orders_depend_on_the_seed_and_differ_between_bins():
    a, _ = _probe_orders(64, 1)
    b, _ = _probe_orders(64, 2)
    assert not (a == b).all()
    assert len({tuple(r) for r in a}) == 64


def test_lsh_candidate_probability_follows_the_s_curve():
    """The share of pairs that become LSH candidates (signatures + banding of dedup.minhash, 25 x 10
    of 256) is 1 - (1 - J^r)^b within 3 standard errors (+ one pair for discreteness), for sets of
    8 to 400 shingles: positions behave as independent permutations at every set size. (Rotation
    densification caught 0.40 of the m = 20, J = 0.82 pairs against 0.97 in theory.)"""
    pairs = 1000  # 3 SE at p = 0.5: 0.047; 33 cells, about 10 s
    bands, rows = MinHashParams().lsh()
    rng = np.random.default_rng(2024)
    bad = []
    for m, o, jac in jaccard_cells():
        texts = jaccard_pairs(rng, pairs, m, o)
        d, first = candidate_pairs(sig(texts), bands, rows)
        linked = {(int(x), int(y)) for x, y in zip(d, first, strict=True)}
        caught = np.mean([(2 * i + 1, 2 * i) in linked for i in range(pairs)])
        want = 1 - (1 - jac**rows) ** bands
        if abs(caught - want) > 3 * np.sqrt(want * (1 - want) / pairs) + 1 / pairs:
            bad.append((m, round(jac, 3), float(caught), round(want, 3)))
    assert not bad, bad


def test_signature_statistic_does_not_depend_on_threshold_bands_rows_or_verify():
    lf = pl.DataFrame({"t": ["a"]}).lazy()
    names = set()
    for p in (MinHashParams(), MinHashParams(threshold=0.9), MinHashParams(bands=8, rows=4), MinHashParams(verify=True)):
        _, name = signature_column(lf, col("t"), p, Context())
        names.add(name)
    assert len(names) == 1
    _, other = signature_column(lf, col("t"), MinHashParams(ngram=3), Context())
    assert other not in names


def test_signature_spec_names_the_polars_version():
    seen = {}

    class Spy(Context):
        def statistic(self, lf, name, spec, expr):
            seen.update(spec)
            return super().statistic(lf, name, spec, expr)

    signature_column(pl.DataFrame({"t": ["a"]}).lazy(), col("t"), MinHashParams(), Spy())
    assert seen["polars"] == pl.__version__ and "threshold" not in seen
    # the algorithm is part of the spec: signatures cached by the rotation densification (v1) are never reused
    assert (seen["v"], seen["algo"]) == (2, "oph-optimal-densification")


def test_minhash_op_version_enters_the_node_key():
    """A step's node key carries the op version (2 since optimal densification): results cached
    under version 1 cannot be found."""
    from autodp_dsl import ir
    from autodp_dsl.catalog import registry
    from autodp_dsl.engine.keys import step_payload
    from stdlib_ops.dedup import DedupMinHash

    step_ = ir.OpStep("dedup.minhash", (col("t"),))
    assert step_payload(step_, registry())["v"] == DedupMinHash.version == 2


# ================================================================ LSH parameters and clustering

# datasketch 2.0 ``_optimal_param(threshold, num_perm, 0.5, 0.5)`` (scipy quad), recorded
DATASKETCH = {
    (0.5, 128): (25, 5), (0.5, 256): (42, 6), (0.7, 128): (14, 9), (0.7, 256): (25, 10),
    (0.8, 256): (17, 15), (0.9, 256): (9, 28), (0.6, 64): (10, 6), (0.85, 512): (22, 23), (0.3, 200): (37, 3), (0.95, 32): (1, 32),
}


@pytest.mark.parametrize("args,want", DATASKETCH.items())
def test_optimal_bands_rows_matches_datasketch(args, want):
    assert optimal_bands_rows(*args) == want


@pytest.mark.parametrize("num_perm", [64, 256])
def test_optimal_bands_rows_equals_the_exact_errors_over_all_pairs(num_perm):
    """The fast screening never changes the choice: the first minimum of the exact errors."""
    pairs = _band_row_pairs(num_perm)
    x, w = _gauss_legendre(max(64, num_perm // 2 + 8))
    for t in np.arange(0.05, 0.96, 0.05):
        err = _lsh_errors(pairs, float(t), x, w, 0.5, 0.5, exact=True)
        b, r = pairs[int(np.argmin(err))]
        assert optimal_bands_rows(float(t), num_perm) == (int(b), int(r))


def test_candidate_pairs_match_bucketing_by_band_values():
    rng = np.random.default_rng(3)
    bands, rows = 6, 4
    sig = rng.integers(0, 2**32, size=(40, 30), dtype=np.uint32)
    for a, b in ((1, 0), (7, 3), (12, 3), (20, 5), (33, 20)):  # plant shared bands (band i: columns i, i + 6, ...)
        band = int(rng.integers(bands))
        sig[a, band : bands * rows : bands] = sig[b, band : bands * rows : bands]
    want = set()
    for band in range(bands):
        first: dict[tuple, int] = {}
        for i in range(len(sig)):
            key = tuple(sig[i, band : bands * rows : bands])
            if first.setdefault(key, i) != i:
                want.add((i, first[key]))
    d, m = candidate_pairs(sig, bands, rows)
    assert set(zip(d.tolist(), m.tolist(), strict=True)) == want and len(want) >= 5 and len(d) == len(want)


@settings(max_examples=50)
@given(st.integers(1, 30).flatmap(lambda n: st.tuples(st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40))))
def test_components_match_union_find(case):
    n, edges = case
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    want = [min(i for i in range(n) if find(i) == find(j)) for j in range(n)]
    a = np.array([e[0] for e in edges], dtype=np.int64)
    b = np.array([e[1] for e in edges], dtype=np.int64)
    assert components(n, a, b).tolist() == want


def test_exact_jaccard():
    texts = pl.Series([text_of(range(10)), text_of(range(5, 15)), text_of(range(10))])
    got = exact_jaccard(texts, np.array([1, 2]), np.array([0, 0]), 1, True, 42)
    assert got.tolist() == [5 / 15, 1.0]


# ================================================================ dedup.minhash


def corpus(seed=0):
    rng = random.Random(seed)
    base = [rng.sample(range(5000), 80) for _ in range(6)]
    texts = [text_of(b) for b in base]  # rows 0-5: unrelated
    near = list(base[0])
    near[40] = 4999  # one word changed: 5-gram Jaccard 66/86 ~ 0.77... with 2 words far apart lower
    texts.append(text_of(near))  # row 6: near-duplicate of row 0
    texts.append(text_of(base[1]).upper())  # row 7: case-only duplicate of row 1
    texts.append(text_of(base[2]) + " extra")  # row 8: near-duplicate of row 2 (J = 76/77)
    texts += ["", None, "   "]  # rows 9-11: empty texts are duplicates of each other
    texts += ["one two three", "completely different words here", "one two three"]  # 12-14
    return pl.DataFrame({"output": texts}, schema={"output": pl.String})


def test_minhash_drops_near_duplicates_with_reasons():
    _, ctx = run(corpus(), step("dedup.minhash", col("output")))
    assert kept(ctx) == [0, 1, 2, 3, 4, 5, 9, 12, 13]
    assert reasons(ctx) == {
        6: "near-duplicate of row 0",
        7: "near-duplicate of row 1",
        8: "near-duplicate of row 2",
        10: "near-duplicate of row 9",
        11: "near-duplicate of row 9",
        14: "near-duplicate of row 12",
    }


def test_minhash_is_independent_of_physical_order():
    df = corpus().with_row_index(ROW_ID).with_columns(pl.col(ROW_ID).cast(pl.UInt64)).sample(fraction=1.0, shuffle=True, seed=3)
    _, ctx = run(df, step("dedup.minhash", col("output")))
    assert kept(ctx) == [0, 1, 2, 3, 4, 5, 9, 12, 13]


def test_minhash_lowercase_off_keeps_case_variants():
    _, ctx = run(corpus(), step("dedup.minhash", col("output"), lowercase=False))
    assert 7 in kept(ctx)


def test_minhash_verify_rejects_loose_candidates():
    # 40-word texts sharing half their words (J = 1/3): with 64 one-row bands they always collide
    df = pl.DataFrame({"output": [text_of(range(40)), text_of(range(20, 60))]})
    _, ctx = run(df, step("dedup.minhash", col("output"), ngram=1, bands=64, rows=1, threshold=0.7))
    assert kept(ctx) == [0]
    _, ctx = run(df, step("dedup.minhash", col("output"), ngram=1, bands=64, rows=1, threshold=0.7, verify=True))
    assert kept(ctx) == [0, 1]


def test_minhash_on_an_expression_of_columns():
    df = pl.DataFrame({"instruction": ["Q", "Q"], "output": [text_of(range(30)), text_of(range(30))]})
    from autodp_dsl import ir
    from autodp_dsl.types import STR

    text = ir.BinOp("+", ir.BinOp("+", col("instruction"), ir.Lit(" ", STR), STR), col("output"), STR)
    out, ctx = run(df, step("dedup.minhash", text))
    assert kept(ctx) == [0] and out.height == 1


def test_minhash_param_validation():
    from pydantic import ValidationError

    for bad in ({"bands": 5}, {"rows": 5}, {"bands": 30, "rows": 10}, {"threshold": 1.0}, {"num_perm": 4}):
        with pytest.raises(ValidationError):
            MinHashParams(**bad)
    assert MinHashParams().lsh() == (25, 10)
    assert MinHashParams(bands=8, rows=4).lsh() == (8, 4)
