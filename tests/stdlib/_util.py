"""Helpers for the operator tests: run one operator on a small frame, the Data-Juicer reference."""

from __future__ import annotations

import re
from collections import Counter

import polars as pl

from autodp_dsl import ir
from autodp_dsl.lower import Context, lower_strategy
from autodp_dsl.ops import KEEP, REASON, ROW_ID, registry
from autodp_dsl.types import FLOAT, STR
from stdlib_ops._text import dj_special_characters


def op(name: str):
    cls = registry().get(name)
    assert cls is not None, name
    return cls()


def signal(name: str, texts, **params) -> list:
    o = op(name)
    df = pl.DataFrame({"t": texts}, schema={"t": pl.String})
    return df.select(o.expr([pl.col("t")], o.Params(**params))).to_series().to_list()


def signal2(name: str, a, b, **params) -> list:
    o = op(name)
    df = pl.DataFrame({"a": a, "b": b}, schema={"a": pl.String, "b": pl.String})
    return df.select(o.expr([pl.col("a"), pl.col("b")], o.Params(**params))).to_series().to_list()


def mapped(name: str, texts, **params) -> list:
    o = op(name)
    df = pl.DataFrame({"t": texts}, schema={"t": pl.String})
    return df.select(o.map_expr(pl.col("t"), o.Params(**params))).to_series().to_list()


def col(name: str, t=STR) -> ir.Col:
    return ir.Col(name, t)


def num(name: str) -> ir.Col:
    return ir.Col(name, FLOAT)


class Recorder(Context):
    """The plain context, remembering each step's KEEP/REASON before the drop."""

    def __init__(self):
        super().__init__()
        self.decisions: list[pl.DataFrame] = []

    def drop(self, lf, path, step):
        cols = [ROW_ID, KEEP] + ([REASON] if REASON in lf.collect_schema().names() else [])
        self.decisions.append(lf.select(cols).collect().sort(ROW_ID))
        return super().drop(lf, path, step)


def run(df: pl.DataFrame, *steps) -> tuple[pl.DataFrame, Recorder]:
    ctx = Recorder()
    out = lower_strategy(ir.Strategy("t", tuple(steps)), df.lazy(), ctx, keep_internal=True).collect().sort(ROW_ID)
    return out, ctx


def step(name: str, *args, **params) -> ir.OpStep:
    return ir.OpStep(name, tuple(args), tuple(params.items()))


# ---------------------------------------------------------------- Data-Juicer 1.6.1, in plain Python

SPECIAL = dj_special_characters()
SPECIAL_STR = "".join(sorted(SPECIAL))


def dj_special_char_ratio(text: str) -> float:
    return sum(c in SPECIAL for c in text) / len(text) if text else 0.0


def dj_words(text: str) -> list[str]:
    words = [w for w in re.split(" |\n|\t", text) if w]
    return [w for w in (w.lower().strip(SPECIAL_STR) for w in words) if w]


def dj_word_rep_ratio(text: str, n: int = 10) -> float:
    words = dj_words(text)
    grams = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    freq = Counter(grams)
    total = sum(freq.values())
    return sum(c for c in freq.values() if c > 1) / total if total else 0.0


def dj_char_rep_ratio(text: str, n: int = 10) -> float:
    import numpy as np

    grams = [text[i : i + n] for i in range(len(text) - n + 1)]
    freq = Counter(grams)
    if not freq:
        return 0.0
    counts = sorted(freq.values(), reverse=True)
    singles = sum(1 for c in counts if c == 1)
    k = min(int(np.sqrt(len(counts))), len(counts) - singles)
    return sum(counts[:k]) / sum(counts) if sum(counts) else 0.0
