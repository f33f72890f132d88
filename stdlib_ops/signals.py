"""Signals: per-row numbers and flags computed from text, used by filters, gates and scores.

Every signal is vectorised Polars. Filters on signals are split by the executor into the signal
column (a shared, cached statistic) and the threshold.
"""

from __future__ import annotations

import polars as pl

from autodp_dsl.ops import Arg, Family, Op, OpKind
from autodp_dsl.types import INT, STR


class Chars(Op):
    """Length of the text in Unicode code points.

    Example: ``filter: chars(output) >= 20``. ``chars("héllo") == 5``; null counts as 0.
    """

    name = "chars"
    kind = OpKind.SIGNAL
    family = Family.CLEANING
    args = (Arg("text", STR),)
    returns = INT

    def expr(self, args, params):
        return args[0].str.len_chars().fill_null(0).cast(pl.Int64)


class Words(Op):
    """Number of whitespace-separated words (any run of Unicode whitespace separates).

    Example: ``filter: words(output) >= 5``. ``words("  a b\\tc ") == 3``; empty text has 0 words.
    """

    name = "words"
    kind = OpKind.SIGNAL
    family = Family.CLEANING
    args = (Arg("text", STR),)
    returns = INT

    def expr(self, args, params):
        return args[0].str.count_matches(r"\S+").fill_null(0).cast(pl.Int64)


OPS = (Chars, Words)
