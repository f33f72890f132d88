"""Deduplication: exact (on a normalised key) and near-duplicate MinHash-LSH.

Both keep the row with the smallest row id of each group of duplicates (independent of the
physical row order, which the streaming engine does not keep) and write why the others go into
the ``REASON`` column ("exact duplicate of row 12", "near-duplicate of row 7").

MinHash, the fast way
---------------------
Signatures use **one-permutation hashing** (Li, Owen & Zhang 2012) with **optimal densification**
(Shrivastava 2017): every shingle is hashed once (64 bits); the high bits pick one of ``num_perm``
bins, the low 32 bits are the value; a bin's signature value is the minimum value that fell into
it, and an empty bin takes the value of the first non-empty bin in its own fixed random order of
the bins (one order per bin, drawn from the seed). For two texts, each signature position agrees
with probability equal to their shingle Jaccard similarity, and, because every empty bin picks
its donor independently, positions are nearly independent at every text length, so LSH bands
collide as ``1 - (1 - J^rows)^bands`` says, as with ``num_perm`` independent permutations
(tested for sets of 8 to 400 shingles; what remains for sets of a few shingles is about 1
percentage point). Computing it costs one hash per shingle instead of ``num_perm`` (on the 5.8
million shingles of the 20,000-row benchmark about 0.5 s of CPU for the whole signature, 1.3x the
rotation densification it replaced and 1.7x on texts of under 60 shingles, against 16 s for 256
permutations as a Polars group-by; ``bench/bench_minhash.py``).

The earlier rotation densification (an empty bin borrowed its right neighbour's value) was
unbiased per position but made positions strongly dependent for texts with fewer shingles than
bins: short near-duplicates were found far *less* often than the curve says (m = 20 shingles,
J = 0.82: 0.40 instead of 0.97), and short texts below the threshold less often too.
Bands take strided positions (``i, i + bands, ...``), which no longer matters for independence.
``verify=true`` additionally checks each candidate pair's exact Jaccard similarity.

A new threshold reuses the cached signatures and redoes only the LSH step, which is kept cheap
(about 40 ms for 16,000 rows): one uint64 bucket key per (row, band) by a single ``einsum``, a hashed
``is_duplicated`` that leaves only the rows in shared buckets, and connected components by
min-label propagation with pointer jumping, all without per-row Python.

Word hashes come from Polars' string hash, which is fast but not promised stable across Polars
versions; the signature statistic's spec therefore carries ``polars.__version__`` (a Polars
upgrade recomputes cached signatures instead of mixing hash families). Shingle hashes combine
word hashes with fixed odd multipliers and splitmix64 (NumPy, exact uint64 arithmetic).
"""

from __future__ import annotations

from functools import cache

from pydantic import Field, model_validator

from autodp_dsl.graph import components  # (tests/stdlib/test_dedup.py imports it from here too)
from autodp_dsl.ir import expr_to_json
from autodp_dsl.lazy import lazy_import
from autodp_dsl.lazy import polars as pl  # loaded on first use: `autodp lint` needs no Polars
from autodp_dsl.ops import KEEP, REASON, ROW_ID, Arg, Family, GlobalOp, Params
from autodp_dsl.types import STR

from ._text import (
    batch,
    flat_word_hashes,
    hash_identity,
    mix64,
    ngram_hashes,
    position_multipliers,
    prefix_hashes,
    text_slices,
)

np = lazy_import("numpy")  # loaded on first use: `autodp lint` needs no NumPy

__all__ = ["OPS", "minhash_signatures", "lsh_clusters", "optimal_bands_rows"]


# ================================================================ dedup.exact


class ExactParams(Params):
    lowercase: bool = Field(False, description="fold case before comparing")
    ignore_whitespace: bool = Field(True, description="strip the ends and collapse inner whitespace runs to one space")


class DedupExact(GlobalOp):
    """Drop rows whose key equals an earlier row's key; the first occurrence (lowest row id) stays.

    The key is the tuple of the given texts (null counts as ""), each with leading/trailing
    whitespace stripped and inner runs of whitespace collapsed to one space (``ignore_whitespace``,
    default) and folded to lower case (``lowercase``). Keys are compared by a 128-bit hash (two
    independent 64-bit hashes), so equal keys always match and different keys collide with
    probability about 2^-128. Dropped rows get the reason "exact duplicate of row N" (N: the kept
    row's id). Data-Juicer's ``document_deduplicator`` hashes ``text.strip()`` with MD5: the same
    groups unless two texts differ only inside a whitespace run.
    Example: ``dedup.exact(instruction, output)``; ``dedup.exact(output, lowercase=true)``.
    """

    name = "dedup.exact"
    family = Family.CLEANING
    version = 2
    args = (Arg("text", STR, variadic=True, doc="the texts whose tuple is the key"),)
    Params = ExactParams

    def lower(self, lf, args, params, ctx):
        parts = []
        for i, a in enumerate(args):
            e = ctx.expr(a).cast(pl.String).fill_null("")
            if params.ignore_whitespace:
                e = e.str.strip_chars().str.replace_all(r"\s{2,}|[^\S ]", " ")
            if params.lowercase:
                e = e.str.to_lowercase()
            parts.append(e.alias(f"p{i}"))
        whole = parts[0] if len(parts) == 1 else pl.struct(parts)
        key = pl.struct(whole.hash(0x5EED).alias("a"), whole.hash(0xC0FFEE).alias("b"))
        spec = {"op": self.name, "v": self.version, "args": [expr_to_json(a) for a in args], **params.model_dump(), **hash_identity()}
        lf, col = ctx.statistic(lf, "dedup.exact.key", spec, key)
        first = pl.col(ROW_ID).min().over(col)
        keep = pl.col(ROW_ID) == first
        return lf.with_columns(
            keep.alias(KEEP),
            pl.when(keep).then(None).otherwise(pl.format("exact duplicate of row {}", first)).alias(REASON),
        )

    def buckets(self, frame, params, stats):
        """One bucket per key (its first 64-bit hash): a row is only ever dropped for a row with its key."""
        return frame[stats["dedup.exact.key"]].struct.field("a").to_numpy().reshape(-1, 1)


# ================================================================ MinHash signatures

_EMPTY_TEXT = 0x6A09E667F3BCC908  # the one "shingle" of a text without words (uint64)
_PROBE = 0x243F6A8885A308D3  # mixed into the densification orders' keys


def shingle_hashes(s: pl.Series, ngram: int, lowercase: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The shingles of each text as uint64 hashes: (row index, hash), rows in order.

    The text (lowercased if asked) is split on runs of Unicode whitespace; every window of
    ``ngram`` consecutive words is a shingle; a text with 1 to ``ngram - 1`` words has one
    shingle, all its words; a text without words (empty, blank or null) has one fixed shingle, so
    all such texts are duplicates of each other. A shingle may repeat (sets are taken later).
    """
    t = s.cast(pl.String).fill_null("")
    if lowercase:
        t = t.str.to_lowercase()
    t = t.str.replace_all(r"\s{2,}|[^\S ]", " ").str.strip_chars(" ")
    rid, h, counts = flat_word_hashes(t.str.split(" "), seed)
    blank = (t.str.len_bytes() == 0).to_numpy()
    if blank.any():  # "" splits into [""]: a blank text has no words
        keep = np.repeat(~blank, counts)
        rid, h = rid[keep], h[keep]
        counts = np.where(blank, 0, counts)
    r_sh, sh = ngram_hashes(rid, h, ngram)
    short = np.flatnonzero((counts > 0) & (counts < ngram))
    if len(short):  # counts are over the filtered flat arrays, as prefix_hashes needs
        r_sh = np.concatenate([r_sh, short])
        sh = np.concatenate([sh, prefix_hashes(rid, h, counts, short)])
    none = np.flatnonzero(counts == 0)
    if len(none):
        r_sh = np.concatenate([r_sh, none])
        sh = np.concatenate([sh, np.full(len(none), mix64(np.array([np.uint64(_EMPTY_TEXT) ^ np.uint64(seed)]))[0], np.uint64)])
    return r_sh, sh


def one_permutation_bins(
    s: pl.Series, num_perm: int, ngram: int, lowercase: bool, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """One-permutation hashing of each text's shingles into ``num_perm`` bins: ``(sig, filled)``,
    both ``(rows, num_perm)``; an empty bin holds 0xFFFFFFFF and ``filled`` False (densification
    fills it). High 32 bits of a shingle hash pick the bin (multiply-shift), low 32 bits the value."""
    n, k = len(s), num_perm
    r_sh, sh = shingle_hashes(s, ngram, lowercase, seed)
    b = (((sh >> np.uint64(32)) * np.uint64(k)) >> np.uint64(32)).astype(np.int64)
    v = (sh & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    flat = r_sh.astype(np.int64) * k + b
    sig = np.full(n * k, 0xFFFFFFFF, dtype=np.uint32)
    np.minimum.at(sig, flat, v)
    filled = np.zeros(n * k, dtype=bool)
    filled[flat] = True
    return sig.reshape(n, k), filled.reshape(n, k)


def minhash_signatures(s: pl.Series, num_perm: int, ngram: int, lowercase: bool, seed: int, budget: int = 1 << 22) -> pl.Series:
    """One batch of texts -> ``Array(UInt32, num_perm)`` signatures (see the module docstring;
    shingles as in ``shingle_hashes``).

    A row's signature depends on its text alone, so the batch is signed in slices of about
    ``budget`` bytes of text (``text_slices``): the shingle arrays (several 8-byte values per word)
    then stay a few MiB and are reused, where a whole batch's are fresh pages every time -- on
    the 20,000-row benchmark that was most of the step's CPU, as system time on page faults."""
    s = s.cast(pl.String)
    sig = np.empty((len(s), num_perm), dtype=np.uint32)
    at = 0
    for part in text_slices(s, budget):
        block, filled = one_permutation_bins(part, num_perm, ngram, lowercase, seed)
        _densify(block, filled, seed)
        sig[at : at + len(part)] = block
        at += len(part)
    return pl.Series(s.name, sig, dtype=pl.Array(pl.UInt32, num_perm))


def _densify(sig: np.ndarray, filled: np.ndarray, seed: int, dense_max: int | None = None, chunk: int = 4096) -> None:
    """Optimal densification in place (Shrivastava 2017): an empty bin ``j`` takes the value of
    the first filled bin in its own fixed random order of the bins (``_probe_orders``). Rows
    without any filled bin are left as they are (``shingle_hashes`` gives every text at least one
    shingle).

    Two ways to the same donor, by the row's number N of filled bins (of k):
    N <= ``dense_max`` (default k / 4): for every bin at once, the filled bin of smallest rank in
    its order, as a minimum over the N columns of an int16 rank table (N x k contiguous values per
    row, padded to a power of two); larger N: probing each empty bin's order until a filled bin
    (about k / N <= 4 probes)."""
    n, k = sig.shape
    order, rank = _probe_orders(k, seed)
    order_f = order.ravel()  # [j * k + a]: probe a of bin j
    by_bin = np.vstack([rank.T, np.full((1, k), np.iinfo(rank.dtype).max, rank.dtype)])  # [t, j]; row k: padding
    dense_max = k // 4 if dense_max is None else dense_max
    todo = np.flatnonzero(~filled.all(axis=1) & filled.any(axis=1))
    for start in range(0, len(todo), chunk):
        rows = todo[start : start + chunk]
        f = filled[rows]
        block = sig[rows]
        count = f.sum(axis=1)
        dense = count <= dense_max
        pad_of = np.maximum(8, 1 << np.ceil(np.log2(count)).astype(np.int64))
        for pad in np.unique(pad_of[dense]):
            group = np.flatnonzero(dense & (pad_of == pad))
            step = max(1, (1 << 21) // (int(pad) * k))  # 2 M int16 values (4 MB) at a time: cache-sized
            for g in range(0, len(group), step):
                sel = group[g : g + step]
                fs = f[sel]
                fr, ft = np.nonzero(fs)  # row-major: each row's filled bins contiguous
                c = count[sel]
                cols = np.full((len(sel), int(pad)), k, dtype=np.int64)
                cols[fr, np.arange(len(fr)) - np.repeat(np.cumsum(c) - c, c)] = ft
                best = by_bin[cols].min(axis=1)  # [row, j]: smallest rank of a filled bin in j's order
                donor = order_f[np.arange(k) * k + best]
                part = block[sel]
                np.copyto(part, np.take_along_axis(part, donor, axis=1), where=~fs)
                block[sel] = part
        probe = np.flatnonzero(~dense)
        if len(probe):
            ff = f[probe].ravel()
            flat = block[probe].ravel()
            empty = np.flatnonzero(~ff)  # flat index row * k + j
            j = empty % k
            base, jk = empty - j, j * k
            donor = np.empty(len(empty), dtype=np.int64)
            pending = np.arange(len(empty))
            for a in range(k):  # ends: each order is a permutation of all bins, one of them filled
                t = order_f[jk + a]
                hit = ff[base + t]
                donor[pending[hit]] = base[hit] + t[hit]
                pending, base, jk = pending[~hit], base[~hit], jk[~hit]
                if len(pending) == 0:
                    break
            flat[empty] = flat[donor]
            block[probe] = flat.reshape(len(probe), k)
        sig[rows] = block


@cache
def _probe_orders(k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per bin ``j``: a random order of all ``k`` bins (``order[j]``) and each bin's place in it
    (``rank[j, t]``). Independent orders per bin are what makes densified positions (nearly)
    independent; they come from splitmix64 of (seed, j, t) sorted, not from a NumPy generator,
    whose streams are not promised stable across versions (cached signatures depend on them)."""
    base = mix64(np.array([seed ^ _PROBE], dtype=np.uint64))[0]
    key = mix64(np.arange(k * k, dtype=np.uint64).reshape(k, k) ^ base)  # (j, t) -> j * k + t
    order = np.argsort(key, axis=1, kind="stable")
    rank = np.empty((k, k), dtype=np.int16)  # num_perm <= 1024
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(k, dtype=np.int16), (k, k)), axis=1)
    return order, rank


# ================================================================ LSH parameters


@cache
def optimal_bands_rows(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm minimising the weighted false-positive and
    false-negative areas under the LSH S-curve ``1 - (1 - s^rows)^bands`` (datasketch's
    ``_optimal_param``; the integrals by Gauss-Legendre quadrature, exact for these polynomials).
    ``optimal_bands_rows(0.7, 256) == (25, 10)``.

    All pairs are screened with a fast form of the errors (logarithms: one ``exp`` per pair and
    node instead of two ``pow``, 10x cheaper); the few within 1e-9 of the smallest, a margin far
    above the fast form's rounding (about 1e-15), are then recomputed exactly, so the choice and
    its tie-breaking are those of the exact errors over all pairs."""
    pairs = _band_row_pairs(num_perm)
    x, w = _gauss_legendre(max(64, num_perm // 2 + 8))
    fast = _lsh_errors(pairs, threshold, x, w, fp_weight, fn_weight, exact=False)
    near = np.flatnonzero(fast <= fast.min() + 1e-9)
    exact = _lsh_errors(pairs[near], threshold, x, w, fp_weight, fn_weight, exact=True)
    i = int(near[np.argmin(exact)])  # first minimum in (bands, rows) order, as datasketch's strict `<`
    return int(pairs[i, 0]), int(pairs[i, 1])


@cache
def _band_row_pairs(num_perm: int) -> np.ndarray:
    return np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], dtype=np.float64)


@cache
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)  # an eigenvalue problem: 25 ms, worth keeping


def _lsh_errors(pairs: np.ndarray, threshold: float, x: np.ndarray, w: np.ndarray, fp_weight: float, fn_weight: float, exact: bool) -> np.ndarray:
    """Weighted false-positive + false-negative area per (bands, rows) pair; ``exact=False``
    computes ``(1 - s^r)^b`` as ``exp(b * log1p(-s^r))`` from a table over r."""
    bands, rows = pairs[:, 0:1], pairs[:, 1:2]
    s_fp = threshold / 2 * (x + 1)
    s_fn = threshold + (1 - threshold) / 2 * (x + 1)
    if exact:
        fp = threshold / 2 * ((1 - (1 - s_fp[None, :] ** rows) ** bands) * w).sum(axis=1)
        fn = (1 - threshold) / 2 * (((1 - s_fn[None, :] ** rows) ** bands) * w).sum(axis=1)
    else:
        r = pairs[:, 1].astype(np.int64) - 1
        powers = np.arange(1, r.max() + 2, dtype=np.float64)[:, None]
        fp = threshold / 2 * (-np.expm1(bands * np.log1p(-(s_fp[None, :] ** powers))[r]) @ w)
        fn = (1 - threshold) / 2 * (np.exp(bands * np.log1p(-(s_fn[None, :] ** powers))[r]) @ w)
    return fp * fp_weight + fn * fn_weight


# ================================================================ LSH clustering


def candidate_pairs(sig: np.ndarray, bands: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """LSH candidates as (row, smallest row of a shared bucket) index pairs, row > partner.

    Rows share a bucket when all ``rows`` signature values of one of the ``bands`` bands are
    equal. Band ``i`` takes the positions ``i, i + bands, i + 2 * bands, ...`` (strided: kept from
    the rotation densification, whose neighbouring positions repeated values; with optimal
    densification any fixed choice of positions is as good). Linking each row to the
    smallest-index row of each of its buckets connects a bucket as a clique would, with one edge
    per member.
    """
    return key_pairs(band_keys(sig, bands, rows))


def key_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``candidate_pairs`` from the (rows x bands) bucket keys of ``band_keys``."""
    bands = keys.shape[1]
    keys = keys.ravel()  # row-major: entry i is row i // bands
    shared = (
        pl.DataFrame({"k": keys})
        .with_row_index("i")
        .filter(pl.col("k").is_duplicated())  # the few keys in a bucket of two or more: cheap below
        .select(pl.col("k"), (pl.col("i") // bands).cast(pl.Int64).alias("d"))
    )
    pairs = shared.with_columns(m=pl.col("d").min().over("k")).filter(pl.col("d") != pl.col("m")).select("d", "m").unique()
    return pairs["d"].to_numpy(), pairs["m"].to_numpy()


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One uint64 bucket key per (row, band): ``sum_i c_i * sig[row, i * bands + band]`` (wrapping;
    ``c_i`` fixed odd multipliers) xor the band number, so that equal values in two bands are different buckets. A
    contraction (``einsum``) instead of a (rows x bands x n) uint64 block: no large temporary. Only
    equality of keys matters (the earlier final splitmix64 step was a bijection and is left out)."""
    n = len(sig)
    block = sig[:, : bands * rows].reshape(n, rows, bands)
    keys = np.einsum("nrb,r->nb", block, position_multipliers(rows), dtype=np.uint64, casting="unsafe")
    keys ^= np.arange(bands, dtype=np.uint64)[None, :]
    return keys


def column_band_keys(sig: pl.Series, bands: int, rows: int, chunk: int = 1 << 15) -> np.ndarray:
    """``band_keys`` of a column of signatures, a slice at a time: the whole column is never
    copied to NumPy (1 KB a row at 256 values; the keys are 8 bytes a band)."""
    parts = [band_keys(sig.slice(i, chunk).to_numpy(), bands, rows) for i in range(0, len(sig), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, bands), dtype=np.uint64)


def exact_jaccard(texts: pl.Series, a: np.ndarray, b: np.ndarray, ngram: int, lowercase: bool, seed: int) -> np.ndarray:
    """Jaccard similarity of the shingle sets of ``texts[a[i]]`` and ``texts[b[i]]`` (shingles as
    in ``shingle_hashes``, compared by 64-bit hash)."""
    if len(a) == 0:
        return np.zeros(0)
    docs = np.unique(np.concatenate([a, b]))
    r, sh = shingle_hashes(texts.gather(docs), ngram, lowercase, seed)
    sets = pl.DataFrame({"d": docs[r], "h": sh}).unique()
    size = sets.group_by("d").len()
    e = pl.DataFrame({"a": a, "b": b, "e": np.arange(len(a))})
    inter = (
        e.join(sets, left_on="a", right_on="d")
        .join(sets, left_on=["b", "h"], right_on=["d", "h"], how="semi")
        .group_by("e")
        .len()
        .rename({"len": "i"})
    )
    out = (
        e.join(inter, on="e", how="left")
        .join(size.rename({"d": "a", "len": "sa"}), on="a", how="left")
        .join(size.rename({"d": "b", "len": "sb"}), on="b", how="left")
        .sort("e")
        .select(pl.col("i").fill_null(0) / (pl.col("sa") + pl.col("sb") - pl.col("i").fill_null(0)))
    )
    return out.to_series().to_numpy()


def lsh_clusters(row_ids: np.ndarray, keys: np.ndarray, verify=None) -> np.ndarray:
    """For each row, the row id of its cluster's root (the smallest row id in its cluster).

    ``keys``: the rows' LSH bucket keys (``band_keys``, ``column_band_keys``). Clusters are the
    connected components of the LSH candidate pairs (``candidate_pairs``); ``verify(a, b) -> bool
    array`` may reject pairs (indices into the rows sorted by row id).
    """
    n = len(row_ids)
    if n == 0:
        return row_ids.copy()
    if np.all(row_ids[:-1] <= row_ids[1:]):  # the executor's frames come sorted: no copy of the keys
        order = np.arange(n)
        a, b = key_pairs(keys)
    else:
        order = np.argsort(row_ids, kind="stable")
        a, b = key_pairs(keys[order])
    if verify is not None and len(a):
        ok = verify(order[a], order[b])
        a, b = a[ok], b[ok]
    label = components(n, a, b)
    roots = np.empty(n, dtype=row_ids.dtype)
    roots[order] = row_ids[order][label]
    return roots


# ================================================================ dedup.minhash


class MinHashParams(Params):
    threshold: float = Field(0.7, gt=0.0, lt=1.0, description="Jaccard similarity of shingle sets that counts as a near-duplicate")
    num_perm: int = Field(256, ge=8, le=1024, description="signature length")
    ngram: int = Field(5, ge=1, le=50, description="words per shingle")
    bands: int = Field(0, ge=0, le=1024, description="LSH bands; 0 = chosen from threshold (with rows)")
    rows: int = Field(0, ge=0, le=1024, description="signature values per band; 0 = chosen from threshold (with bands)")
    lowercase: bool = Field(True, description="fold case before shingling")
    seed: int = Field(42, ge=0, le=2**31 - 1, description="hash seed")
    verify: bool = Field(False, description="link a candidate pair only if its exact shingle Jaccard similarity is >= threshold")

    @model_validator(mode="after")
    def _bands_rows(self):
        if (self.bands == 0) != (self.rows == 0):
            raise ValueError("set both bands and rows, or neither (0 = choose from threshold)")
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"contradictory parameters: bands * rows ({self.bands * self.rows}) > num_perm ({self.num_perm})")
        return self

    def lsh(self) -> tuple[int, int]:
        return (self.bands, self.rows) if self.bands else optimal_bands_rows(self.threshold, self.num_perm)


def signature_column(lf: pl.LazyFrame, text_arg, p: MinHashParams, ctx) -> tuple[pl.LazyFrame, str]:
    """Add the MinHash signatures of ``text_arg`` as a shared statistic (threshold/bands/rows/verify
    are not part of its spec: changing them reuses the signatures)."""
    text = ctx.expr(text_arg)
    num_perm, ngram, lowercase, seed = p.num_perm, p.ngram, p.lowercase, p.seed
    sig_expr = batch(lambda s: minhash_signatures(s, num_perm, ngram, lowercase, seed), pl.Array(pl.UInt32, num_perm))(text)
    spec = {
        "op": "minhash.signature",
        "v": 2,
        "algo": "oph-optimal-densification",
        "text": expr_to_json(text_arg),
        "num_perm": num_perm,
        "ngram": ngram,
        "lowercase": lowercase,
        "seed": seed,
        **hash_identity(),
    }
    return ctx.statistic(lf, "minhash.signature", spec, sig_expr)


class DedupMinHash(GlobalOp):
    """Drop near-duplicates (MinHash-LSH over word n-grams); each cluster keeps its lowest row id.

    Shingles are the ``ngram``-word windows of the text (lowercased by default; words split on
    Unicode whitespace; a text shorter than ``ngram`` words is one shingle; all empty texts are one
    cluster). Signatures of ``num_perm`` values (one-permutation hashing with optimal
    densification: each position agrees between two texts with probability equal to their Jaccard
    similarity, nearly independently of the others at every text length; see the module docs) are a cached statistic shared by every threshold. Rows fall in
    the same bucket when they agree on all ``rows`` values of one of ``bands`` bands; ``bands`` and
    ``rows`` default to datasketch's optimum for ``threshold`` (25 x 10 for 0.7 with 256). Rows
    sharing a bucket are linked (each to the bucket's smallest row id; transitively: clusters are
    connected components); with ``verify`` a link needs the exact Jaccard similarity of the two
    shingle sets to be at least ``threshold`` (slower: the linked texts are shingled again). Each
    cluster keeps its row with the smallest row id; the others are dropped with the reason
    "near-duplicate of row N". Texts with Jaccard similarity s are linked with probability about
    ``1 - (1 - s^rows)^bands`` (51% at s = 0.7, 94% at 0.8, 14% at 0.6 for 25 x 10), for short
    texts as for long ones. Bands take strided signature positions.
    Example: ``dedup.minhash(instruction + " " + output, threshold=0.8)``.
    """

    name = "dedup.minhash"
    # 2: optimal densification (1: rotation densification); node keys carry the version, so no
    # result cached by version 1 is reused
    version = 2
    family = Family.CLEANING
    args = (Arg("text", STR, doc="the text to shingle (concatenate columns with +)"),)
    Params = MinHashParams

    def lower(self, lf, args, params, ctx):
        lf, sig = signature_column(lf, args[0], params, ctx)
        bands, rows = params.lsh()
        p = params
        text_col = "__minhash_text"
        if p.verify:
            lf = lf.with_columns(ctx.expr(args[0]).alias(text_col))

        def decide(df: pl.DataFrame) -> pl.DataFrame:
            rid = df[ROW_ID].to_numpy()
            verify = None
            if p.verify:
                texts = df[text_col]

                def verify(a, b):
                    return exact_jaccard(texts, a, b, p.ngram, p.lowercase, p.seed) >= p.threshold

            roots = lsh_clusters(rid, column_band_keys(df[sig], bands, rows), verify)
            root = pl.Series("__root", roots)
            return df.select(
                pl.col(ROW_ID),
                pl.Series(KEEP, roots == rid),
                pl.when(pl.lit(root) == pl.col(ROW_ID)).then(None).otherwise(pl.format("near-duplicate of row {}", pl.lit(root))).alias(REASON),
            )

        extra = (text_col,) if p.verify else ()
        return decided(lf, [sig, *extra], decide, temporary=extra)

    def buckets(self, frame, params, stats):
        """The LSH band keys: rows are linked only through a shared band (``verify`` removes links,
        never adds one), so a cluster never spans two groups."""
        return column_band_keys(frame[stats["minhash.signature"]], *params.lsh())


def decided(lf: pl.LazyFrame, needs: list[str], decide, temporary: tuple[str, ...] = ()) -> pl.LazyFrame:
    """``lf`` with the ``KEEP``/``REASON`` columns that ``decide`` writes (a frame of the row ids
    and the columns ``needs`` -> row ids, ``KEEP``, ``REASON``), joined back by row id, and without
    the ``temporary`` columns. The decision sees only ids, signatures and scores, never the other
    columns: a streaming run keeps the texts out of memory this way (docs/scale.md)."""
    decision = lf.select(ROW_ID, *needs).map_batches(decide, schema={ROW_ID: lf.collect_schema()[ROW_ID], KEEP: pl.Boolean, REASON: pl.String})
    return lf.drop(KEEP, REASON, *temporary, strict=False).join(decision, on=ROW_ID, how="left", maintain_order="left")


OPS = (DedupExact, DedupMinHash)
