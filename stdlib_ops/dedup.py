"""Deduplication: exact (on a normalised key) and near-duplicate MinHash-LSH."""

from __future__ import annotations

import polars as pl

from autodp_dsl.ir import expr_text
from autodp_dsl.ops import KEEP, ROW_ID, Arg, Family, Op, OpKind, Params
from autodp_dsl.types import STR


class ExactParams(Params):
    lowercase: bool = False
    ignore_whitespace: bool = True


class DedupExact(Op):
    """Drop rows whose key equals an earlier row's key; the first occurrence (lowest row id) stays.

    The key joins the given columns with a separator; with ``ignore_whitespace`` (default) leading
    and trailing whitespace is stripped and inner runs collapse to one space; ``lowercase`` folds case.
    Example: ``dedup.exact(instruction, output)``.
    """

    name = "dedup.exact"
    kind = OpKind.GLOBAL
    family = Family.CLEANING
    args = (Arg("text", STR, variadic=True),)
    Params = ExactParams

    def lower(self, lf, args, params, ctx):
        parts = []
        for a in args:
            e = ctx.expr(a).fill_null("")
            if params.ignore_whitespace:
                e = e.str.replace_all(r"\s+", " ").str.strip_chars()
            if params.lowercase:
                e = e.str.to_lowercase()
            parts.append(e)
        key = pl.concat_str(parts, separator="\x1f")  # the text itself: exact, no hash collisions
        lf, col = ctx.statistic(lf, "dedup.exact.key", {"op": self.name, "v": self.version, "args": [expr_text(a) for a in args], **params.model_dump()}, key)
        # first occurrence by row id, independent of the current physical order
        return lf.with_columns((pl.col(ROW_ID) == pl.col(ROW_ID).min().over(col)).alias(KEEP))


OPS = (DedupExact,)
