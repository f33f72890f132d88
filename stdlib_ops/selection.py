"""Selection: keep a subset of the rows by score, at random, or spread over near-duplicate clusters.

All three are global steps (the decision for a row depends on the others) and deterministic:
ties are broken by row id, never by the physical order (which the streaming engine does not keep).
The size of the selection is ``k`` rows, or ``round(fraction * rows)`` with halves rounded up.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from autodp_dsl.ir import expr_text
from autodp_dsl.lazy import lazy_import
from autodp_dsl.lazy import polars as pl  # loaded on first use: `autodp lint` needs no Polars
from autodp_dsl.ops import KEEP, REASON, ROW_ID, Arg, Family, GlobalOp, Params
from autodp_dsl.types import NUMBER, STR

from .dedup import column_band_keys, decided, lsh_clusters, optimal_bands_rows, signature_column

np = lazy_import("numpy")  # loaded on first use: `autodp lint` needs no NumPy

__all__ = ["OPS", "splitmix64_expr"]


class SizeParams(Params):
    fraction: float = Field(0.0, ge=0.0, le=1.0, description="share of the rows to keep (0 = use k)")
    k: int = Field(0, ge=0, le=10**12, description="number of rows to keep (0 = use fraction)")

    @model_validator(mode="after")
    def _one_size(self):
        if self.fraction > 0 and self.k > 0:
            raise ValueError("contradictory sizes: give fraction or k, not both")
        if self.fraction == 0 and self.k == 0:
            raise ValueError("give the size: fraction (0 < fraction <= 1) or k (>= 1)")
        return self

    def size_expr(self) -> pl.Expr:
        if self.k:
            return pl.lit(self.k, dtype=pl.Int64)
        return (pl.len().cast(pl.Float64) * self.fraction + 0.5).floor().cast(pl.Int64)

    def size_of(self, n: int) -> int:
        return self.k if self.k else int(np.floor(n * self.fraction + 0.5))

    def size_text(self) -> str:
        return f"k={self.k}" if self.k else f"fraction={self.fraction}"


def _score(e: pl.Expr) -> pl.Expr:
    """A score as Float64 with NaN turned into null (null ranks last)."""
    return e.cast(pl.Float64).fill_nan(None)


class SelectTop(GlobalOp):
    """Keep the ``k`` rows (or ``fraction`` of the rows) with the highest score.

    Rows are ranked by score, highest first, nulls and NaN last, ties broken by the smaller row id;
    the first ``k`` ranks stay (``k = round(fraction * rows)``, halves up, when ``fraction`` is
    given). Dropped rows get the reason "rank R of N by SCORE, below the top K". The score is any
    numeric expression of the row.
    Example: ``select.top(quality(instruction, output), fraction=0.8)``; ``select.top(chars(output), k=1000)``.
    """

    name = "select.top"
    version = 1
    family = Family.SELECTION
    args = (Arg("score", NUMBER, doc="higher is better"),)
    Params = SizeParams

    def lower(self, lf, args, params, ctx):
        score = _score(ctx.expr(args[0]))
        rank = pl.arg_sort_by([score, pl.col(ROW_ID)], descending=[True, False], nulls_last=True).arg_sort()
        k = params.size_expr()
        keep = rank < k
        what = expr_text(args[0])
        reason = pl.format("rank {} of {} by {}, below the top {}", rank + 1, pl.len(), pl.lit(what), k)
        return lf.with_columns(keep.alias(KEEP), pl.when(keep).then(None).otherwise(reason).alias(REASON))


_G = 0x9E3779B97F4A7C15


def splitmix64_expr(x: pl.Expr, seed: int) -> pl.Expr:
    """splitmix64 of ``x + (seed + 1) * golden`` in Polars UInt64 arithmetic (wrapping): a stable,
    version-independent pseudo-random value per row id (equal to ``_text.mix64`` in NumPy)."""
    u = pl.UInt64
    z = x.cast(u) + pl.lit(((seed + 1) * _G) % 2**64, dtype=u)
    z = z.xor(z // (2**30)) * pl.lit(0xBF58476D1CE4E5B9, dtype=u)
    z = z.xor(z // (2**27)) * pl.lit(0x94D049BB133111EB, dtype=u)
    return z.xor(z // (2**31))


class SampleParams(SizeParams):
    seed: int = Field(0, ge=0, le=2**63 - 1, description="random seed")


class SelectSample(GlobalOp):
    """Keep a uniform random sample of ``k`` rows (or ``fraction`` of the rows), reproducibly.

    Each row gets the pseudo-random number splitmix64(row id + (seed + 1) * 0x9E3779B97F4A7C15)
    (64-bit, computed in Polars, the same on every machine and version); the ``k`` rows with the
    smallest numbers stay (ties, which need equal numbers, by row id). The sample of a larger
    fraction contains the sample of a smaller one, and a row's fate does not depend on the order
    of the rows. Dropped rows get the reason "not in the random sample (seed S, K of N)".
    Example: ``select.sample(fraction=0.2, seed=7)``.
    """

    name = "select.sample"
    version = 1
    family = Family.SELECTION
    args = ()
    Params = SampleParams

    def lower(self, lf, args, params, ctx):
        r = splitmix64_expr(pl.col(ROW_ID), params.seed)
        rank = pl.arg_sort_by([r, pl.col(ROW_ID)]).arg_sort()
        k = params.size_expr()
        keep = rank < k
        reason = pl.format("not in the random sample (seed {}, {} of {})", pl.lit(params.seed), k, pl.len())
        return lf.with_columns(keep.alias(KEEP), pl.when(keep).then(None).otherwise(reason).alias(REASON))


class DiverseParams(SizeParams):
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="Jaccard similarity that puts two rows in one cluster")
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash signature length")
    ngram: int = Field(5, ge=1, le=50, description="words per shingle")
    lowercase: bool = Field(True, description="fold case before shingling")
    seed: int = Field(42, ge=0, le=2**31 - 1, description="MinHash seed")


class SelectDiverse(GlobalOp):
    """Keep ``k`` rows (or ``fraction``) spread over near-duplicate clusters: best of each cluster first.

    1. Cluster the rows as ``dedup.minhash(text, threshold=..., num_perm=..., ngram=..., lowercase=...,
       seed=...)`` would (same cached signatures; LSH bands/rows chosen from ``threshold``; clusters
       are connected components of the LSH candidate pairs).
    2. Inside each cluster, rank its rows by ``score`` (highest first, nulls/NaN last, then row id):
       the best row has round 1, the second round 2, ...
    3. Order all rows by (round, score descending, row id) and keep the first ``k``.
    So every cluster contributes its best row before any cluster contributes a second one; with
    ``k`` at least the number of clusters every cluster is represented; near-identical rows only
    all survive when ``k`` is large enough to take every cluster's rows down to them. Dropped rows
    get the reason "round R of the cluster of row C, beyond the K kept".
    Example: ``select.diverse(instruction + " " + output, quality(instruction, output), fraction=0.5)``;
    without a quality score, pass a constant or a cheap signal: ``select.diverse(output, chars(output), k=5000)``.
    """

    name = "select.diverse"
    version = 1
    family = Family.SELECTION
    args = (Arg("text", STR, doc="the text whose similarity defines clusters"), Arg("score", NUMBER, doc="higher is better"))
    Params = DiverseParams

    def lower(self, lf, args, params, ctx):
        from .dedup import MinHashParams

        mh = MinHashParams(threshold=params.threshold, num_perm=params.num_perm, ngram=params.ngram, lowercase=params.lowercase, seed=params.seed)
        lf, sig = signature_column(lf, args[0], mh, ctx)
        bands, rows = optimal_bands_rows(params.threshold, params.num_perm)
        score_col = "__diverse_score"
        lf = lf.with_columns(_score(ctx.expr(args[1])).alias(score_col))

        def decide(df: pl.DataFrame) -> pl.DataFrame:
            rid = df[ROW_ID].to_numpy()
            roots = lsh_clusters(rid, column_band_keys(df[sig], bands, rows))
            k = params.size_of(len(df))
            sc = pl.col(score_col)
            ranked = df.select(ROW_ID, score_col).with_columns(pl.Series("__root", roots)).with_columns(
                (pl.arg_sort_by([sc, pl.col(ROW_ID)], descending=[True, False], nulls_last=True).arg_sort().over("__root") + 1).alias("__round")
            )
            order = ranked.select(
                pl.col(ROW_ID),
                pl.arg_sort_by([pl.col("__round"), sc, pl.col(ROW_ID)], descending=[False, True, False], nulls_last=True).arg_sort().alias("__pos"),
                "__round",
                "__root",
            )
            keep = pl.col("__pos") < k
            reason = pl.format("round {} of the cluster of row {}, beyond the {} kept", pl.col("__round"), pl.col("__root"), pl.lit(k))
            return order.select(pl.col(ROW_ID), keep.alias(KEEP), pl.when(keep).then(None).otherwise(reason).alias(REASON))

        return decided(lf, [sig, score_col], decide, temporary=(score_col,))


OPS = (SelectTop, SelectSample, SelectDiverse)
