"""Cheap question-answer text features (no model), shared by the target selector and its judges."""

from __future__ import annotations

import polars as pl

from .signals import STOPWORDS_EN

__all__ = ["text_features"]

_WORD = r"[a-z0-9']+"
# forum chit-chat: greetings, thanks and laughter say little about the question
_CHAT = r"\b(?:thanks?|thx|lol|hehe+|haha+|hi|hello|dear|welcome|cheers|good luck)\b|:\)|:d\b|;\)"


def text_features(frame: pl.DataFrame, instruction: str = "instruction", output: str = "output") -> pl.DataFrame:
    """Cheap question-answer features beside the signal vector (no model): ``qa.overlap`` (share of
    the question's content words the answer uses), ``output.qmarks`` (question marks: an answer that
    asks back), ``output.chat`` (greetings, thanks, laughter). Empty when a column is missing."""
    if output not in frame.columns:
        return pl.DataFrame()
    low = lambda c: pl.col(c).cast(pl.String).fill_null("").str.to_lowercase()  # noqa: E731
    exprs = [
        low(output).str.count_matches(r"\?").cast(pl.Int64).alias("output.qmarks"),
        low(output).str.count_matches(_CHAT).cast(pl.Int64).alias("output.chat"),
    ]
    if instruction in frame.columns:
        stop = pl.lit(sorted(STOPWORDS_EN), dtype=pl.List(pl.String))
        q = low(instruction).str.extract_all(_WORD).list.unique().list.set_difference(stop)
        a = low(output).str.extract_all(_WORD).list.unique().list.set_difference(stop)
        exprs.append(
            (q.list.set_intersection(a).list.len() / q.list.len().clip(lower_bound=1)).cast(pl.Float64).alias("qa.overlap")
        )
    return frame.select(exprs)
