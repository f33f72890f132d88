"""Processing target selection: a classifier that marks low-quality rows, trained without a person.

``train_selector(frame, seed=0, judge=None)`` returns a ``TargetSelector`` whose ``score(frame)`` is
the probability that a row is low quality; ``add_column(frame, "lowq")`` adds it as a column so a
strategy can gate expensive operators: ``where: lowq > 0.5 do: [refine.rewrite(output, ...)]``.

Two ways to train it:

- **From a judge** (``train_selector(frame, judge=OfflineJudge())``, see ``judges``): the judge, an
  expensive and more trustworthy judgement of quality (an LLM when an endpoint is configured; offline,
  question-answer relevance and consensus under MiniLM with a few text cues), labels ``judge_budget`` rows (whole questions), and the
  classifier learns those labels from cheap features (the signal vector and ``text_features``; with
  an ``embedder`` also ``qa.relevance``) to extend them to every row. 30% of the judged questions are
  held out: ``metrics`` (= ``judge_metrics``, with ``auc``) say how well the score agrees with the
  judge on rows it was not trained on. This is the selector that knows quality: on SemEval-2016 CQA
  its AUC against human labels is measured by ``bench/bench_selector_semeval.py`` (docs/selector.md).
- **From weak labels** (no judge; what ``autodp search`` does today), described below. Its metrics
  only show that the classifier reproduces its own labelling functions; on an expert-labelled set
  its score was slightly backwards (AUC 0.446).

**Weak labels** (labelling functions over the row's signals, ``signals.signal_frame``). A row is
*low quality* (1) when any of these fires:

==================  ==========================================================================
``empty_output``    the output is empty or whitespace only
``heading_only``    the output is only a heading / restated question (``heading_only(output)``)
``very_short``      the output has fewer than 5 words (``words(output) < 5``)
``markup``          the output contains an HTML/XML tag or entity
``mojibake``        the output contains typical mis-decoded UTF-8 sequences
``special_chars``   ``special_char_ratio(output) > 0.35``
``repetitive``      ``word_repetition_ratio(output) > 0.5``
``echo``            the answer mostly repeats the question (``echoes_question >= 0.9``)
``exact_duplicate`` the row equals an earlier row (whitespace-normalised)
==================  ==========================================================================

A row is *confidently good* (0) when none fires and the output looks like an ordinary answer:
20 to 2,000 words, ``special_char_ratio <= 0.3``, ``word_repetition_ratio <= 0.2``, English-like
prose (``stopword_ratio >= 0.2``) and not a copy of an earlier output. Every other row abstains and
is not used for training (it still gets a score).

**Classifier**: L2-regularised logistic regression (Newton's method, numpy) on the standardised
signal vector (counts ``log1p``) plus tail indicators (is the value below the 2nd/10th or above the
90th/98th percentile of the training rows). The labelled rows are split 80/20 (stratified, seeded);
``metrics`` are precision, recall and F1 at 0.5 on the held-out 20%, with the base rate (share of
low-quality rows among the held-out labelled rows) and the sizes. These measure how well the score
reproduces the labelling functions, not true quality: the classifier's value is a smooth score that
also covers the abstaining rows and can be thresholded.

**Judge with weak labels** (``weak=True`` and a judge): a callable ``judge(rows: pl.DataFrame) -> Sequence[bool | None]`` that labels
rows as low quality (True), fine (False) or unsure (None), e.g. an LLM. It is shown at most
``judge_budget`` (default 200) rows, chosen deterministically and spread over the weak-label classes
(a third weak-low, a third abstaining, a third weak-good where available). Its labels replace the
weak labels of those rows and weigh ``judge_weight`` times more in training; 30% of the judged rows
are held out and ``judge_metrics`` reports the classifier against them, ``judge_agreement`` the
share of judged rows where the weak label (when not abstaining) agrees with the judge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel

from .signals import signal_frame
from .text_features import text_features

__all__ = [
    "TargetSelector",
    "SelectorMetrics",
    "train_selector",
    "weak_labels",
    "LABELLING_FUNCTIONS",
    "Judge",
    "auc",
    "text_features",
    "feature_frame",
]

Judge = Callable[[pl.DataFrame], Sequence[bool | None]]

LABELLING_FUNCTIONS = (
    "empty_output",
    "heading_only",
    "very_short",
    "markup",
    "mojibake",
    "special_chars",
    "repetitive",
    "echo",
    "exact_duplicate",
)


class SelectorMetrics(BaseModel):
    precision: float
    recall: float
    f1: float
    base_rate: float
    n_train: int
    n_test: int
    threshold: float = 0.5
    auc: float | None = None  # ranking agreement with the held-out labels (None: one class only)


def _col(sig: pl.DataFrame, name: str, default=0.0) -> np.ndarray:
    if name in sig.columns:
        return sig[name].cast(pl.Float64).to_numpy()
    return np.full(sig.height, float(default))


def weak_labels(signals: pl.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(labels, fired): labels 1 = low quality, 0 = confidently good, -1 = abstain; ``fired`` maps
    each labelling function to its boolean vector. Missing signals never fire."""
    o = "output"
    echo = _col(signals, f"{o}.echoes_question")
    fired = {
        "empty_output": _col(signals, f"{o}.empty") > 0,
        "heading_only": _col(signals, f"{o}.heading_only") > 0,
        "very_short": (_col(signals, f"{o}.words", 1e9) < 5),
        "markup": _col(signals, f"{o}.html") > 0,
        "mojibake": _col(signals, f"{o}.mojibake") > 0,
        "special_chars": _col(signals, f"{o}.special_char_ratio") > 0.35,
        "repetitive": _col(signals, f"{o}.word_repetition_ratio") > 0.5,
        "echo": echo >= 0.9,
        "exact_duplicate": _col(signals, "dup.exact") > 0,
    }
    low = np.zeros(signals.height, dtype=bool)
    for v in fired.values():
        low |= v
    words = _col(signals, f"{o}.words", 100)
    good = (
        ~low
        & (words >= 20)
        & (words <= 2000)
        & (_col(signals, f"{o}.special_char_ratio") <= 0.3)
        & (_col(signals, f"{o}.word_repetition_ratio") <= 0.2)
        & (_col(signals, f"{o}.stopword_ratio", 0.5) >= 0.2)
        & ~(_col(signals, "dup.output") > 0)
    )
    labels = np.where(low, 1, np.where(good, 0, -1)).astype(np.int64)
    return labels, fired


# ---------------------------------------------------------------- features and model

def feature_frame(
    frame: pl.DataFrame, signals: pl.DataFrame, embedder: Any = None
) -> pl.DataFrame:
    """What the classifier sees: the signal vector, ``text_features`` and, with an ``embedder``,
    ``qa.relevance`` (question-answer cosine, see ``judges.relevance``)."""
    parts = [signals, text_features(frame)]
    if embedder is not None and {"instruction", "output"} <= set(frame.columns):
        from .judges import relevance

        parts.append(
            pl.DataFrame(
                {"qa.relevance": relevance(embedder, frame["instruction"].to_list(), frame["output"].to_list())},
                schema={"qa.relevance": pl.Float64},
            )
        )
    return pl.concat([p for p in parts if p.width], how="horizontal")


@dataclass
class _Features:
    names: list[str]
    log: list[bool]
    mean: np.ndarray
    sd: np.ndarray
    cuts: np.ndarray  # (n_features, 4): 2nd, 10th, 90th, 98th percentiles of the training rows

    @classmethod
    def fit(cls, sig: pl.DataFrame, rows: np.ndarray) -> _Features:
        names, logs, means, sds, cuts = [], [], [], [], []
        for name in sig.columns:
            s = sig[name]
            x = s.cast(pl.Float64).to_numpy()
            lg = s.dtype.is_integer()
            if lg:
                x = np.log1p(np.maximum(x, 0))
            xt = x[rows]
            sd = xt.std()
            if not np.isfinite(sd) or sd == 0:
                continue
            names.append(name)
            logs.append(lg)
            means.append(xt.mean())
            sds.append(sd)
            cuts.append(np.quantile(xt, [0.02, 0.10, 0.90, 0.98]))
        return cls(names, logs, np.array(means), np.array(sds), np.array(cuts).reshape(-1, 4))

    def transform(self, sig: pl.DataFrame) -> np.ndarray:
        n = sig.height
        blocks = []
        for j, name in enumerate(self.names):
            x = _col(sig, name, self.mean[j] if not self.log[j] else 0.0)
            if self.log[j]:
                x = np.log1p(np.maximum(x, 0))
            c = self.cuts[j]
            blocks.append(
                np.column_stack(
                    [(x - self.mean[j]) / self.sd[j], x <= c[0], x <= c[1], x > c[2], x > c[3]]
                ).astype(np.float64)
            )
        return np.hstack(blocks) if blocks else np.zeros((n, 0))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))


def _fit_logreg(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 1.0, iters: int = 30
) -> tuple[np.ndarray, float]:
    """Weighted L2 logistic regression by Newton's method (bias unpenalised)."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    beta = np.zeros(xb.shape[1])
    pen = np.full(xb.shape[1], l2)
    pen[-1] = 0.0
    for _ in range(iters):
        p = _sigmoid(xb @ beta)
        g = xb.T @ (w * (p - y)) + pen * beta
        h = (xb * (w * p * (1 - p))[:, None]).T @ xb + np.diag(pen + 1e-8)
        step = np.linalg.solve(h, g)
        beta -= step
        if np.max(np.abs(step)) < 1e-6:
            break
    return beta[:-1], float(beta[-1])


def auc(score: np.ndarray, y: np.ndarray) -> float | None:
    """Area under the ROC curve of ``score`` for the positives ``y == 1`` (ties count half);
    None when ``y`` holds one class only."""
    score, y = np.asarray(score, dtype=np.float64), np.asarray(y)
    n1 = int((y == 1).sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return None
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    s = score[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _prf(y: np.ndarray, p: np.ndarray, thr: float, n_train: int) -> SelectorMetrics:
    pred = p > thr
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return SelectorMetrics(
        precision=prec,
        recall=rec,
        f1=f1,
        base_rate=float((y == 1).mean()) if len(y) else 0.0,
        n_train=n_train,
        n_test=int(len(y)),
        threshold=thr,
        auc=auc(p, y),
    )


def _split(
    idx: np.ndarray, y: np.ndarray, test: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of ``idx`` (labels ``y``) into train/test."""
    tr, te = [], []
    for v in np.unique(y):
        rows = rng.permutation(idx[y == v])
        k = int(round(test * len(rows))) if len(rows) > 1 else 0
        te.append(rows[:k])
        tr.append(rows[k:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(te))


@dataclass
class TargetSelector:
    features: _Features
    coef: np.ndarray
    intercept: float
    metrics: SelectorMetrics
    ops: Sequence[str] | str | None = None
    judge_metrics: SelectorMetrics | None = None
    judge_agreement: float | None = None
    label_counts: dict[str, int] = field(default_factory=dict)  # low / good / abstain (aggregates)
    lf_counts: dict[str, int] = field(default_factory=dict)  # rows each labelling function fired on
    embedder: Any = None  # gives the ``qa.relevance`` feature when set
    judge_name: str | None = None
    weak: bool = True  # trained on the weak labels (False: on the judge's labels only)
    judged_rows: np.ndarray | None = None  # positions of the rows shown to the judge (None: no judge)

    def score(self, frame: pl.DataFrame, *, signals: pl.DataFrame | None = None) -> pl.Series:
        """Probability of low quality per row, a Float64 in [0, 1], same order as ``frame``."""
        sig = signals if signals is not None else signal_frame(frame, ops=self.ops)
        if sig.height != frame.height:
            raise ValueError(f"signals have {sig.height} rows, the frame {frame.height}")
        x = self.features.transform(feature_frame(frame, sig, self.embedder))
        return pl.Series("lowq", _sigmoid(x @ self.coef + self.intercept), dtype=pl.Float64)

    def add_column(
        self, frame: pl.DataFrame, name: str = "lowq", *, signals: pl.DataFrame | None = None
    ) -> pl.DataFrame:
        """``frame`` with the score as column ``name`` (what ``where: lowq > 0.5`` gates on)."""
        return frame.with_columns(self.score(frame, signals=signals).alias(name))

    def summary(self, k: int = 20) -> str:
        """Aggregate description for reports and prompts (counts below k hidden)."""
        m = self.metrics
        lines = []
        if self.weak:
            lines.append(
                f"target selector: logistic regression on {len(self.features.names)} features; held-out weak labels: "
                f"precision {m.precision:.3f}, recall {m.recall:.3f}, F1 {m.f1:.3f}, base rate {m.base_rate:.3f} "
                f"(train {m.n_train}, test {m.n_test})"
            )
        else:
            lines.append(
                f"target selector: logistic regression on {len(self.features.names)} features, trained on the labels of "
                f"{self.judge_name or 'a judge'}"
            )
        if self.judge_metrics is not None:
            j = self.judge_metrics
            agree = f"{self.judge_agreement:.2f}" if self.judge_agreement is not None else "n/a"
            jauc = f"{j.auc:.3f}" if j.auc is not None else "n/a"
            lines.append(
                f"judge hold-out: AUC {jauc}, precision {j.precision:.3f}, recall {j.recall:.3f}, F1 {j.f1:.3f} "
                f"(train {j.n_train}, test {j.n_test}); weak-label agreement {agree}"
            )
        lines.append(
            "weak labels: "
            + ", ".join(f"{k_}={v if v == 0 or v >= k else f'<{k}'}" for k_, v in self.label_counts.items())
        )
        lines.append(
            "labelling functions fired: "
            + ", ".join(f"{k_}={v if v == 0 or v >= k else f'<{k}'}" for k_, v in self.lf_counts.items())
        )
        return "\n".join(lines)


def _pick_for_judge(labels: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    groups = [np.flatnonzero(labels == v) for v in (1, -1, 0)]
    share = [budget // 3, budget // 3, budget - 2 * (budget // 3)]
    picked = []
    spare = 0
    for g, s in zip(groups, share, strict=True):
        take = min(len(g), s + spare)
        spare = s + spare - take
        picked.append(rng.choice(g, size=take, replace=False) if take else np.zeros(0, dtype=np.int64))
    if spare:  # top up from whatever is left
        rest = np.setdiff1d(np.arange(len(labels)), np.concatenate(picked))
        take = min(spare, len(rest))
        if take:
            picked.append(rng.choice(rest, size=take, replace=False))
    return np.sort(np.concatenate(picked)).astype(np.int64)


def _pick_groups(groups: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Whole groups (rows sharing a question), in a seeded random order, up to ``budget`` rows; the
    group that would overflow contributes a random part. Lets a judge compare answers to one question."""
    picked: list[np.ndarray] = []
    left = budget
    for g in rng.permutation(np.unique(groups)):
        if left <= 0:
            break
        rows = np.flatnonzero(groups == g)
        if len(rows) > left:
            rows = rng.choice(rows, size=left, replace=False)
        picked.append(rows)
        left -= len(rows)
    return np.sort(np.concatenate(picked)).astype(np.int64) if picked else np.zeros(0, dtype=np.int64)


def _split_groups(
    idx: np.ndarray, groups: np.ndarray, test: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``idx`` split into train/test by whole groups (no question on both sides)."""
    g = rng.permutation(np.unique(groups[idx]))
    k = int(round(test * len(g))) if len(g) > 1 else 0
    te = np.isin(groups[idx], g[:k])
    return np.sort(idx[~te]), np.sort(idx[te])


def train_selector(
    frame: pl.DataFrame,
    seed: int = 0,
    judge: Judge | None = None,
    *,
    signals: pl.DataFrame | None = None,
    ops: Sequence[str] | str | None = None,
    test_fraction: float = 0.2,
    judge_budget: int = 200,
    judge_weight: float = 5.0,
    weak: bool | None = None,
    embedder: Any = None,
    l2: float = 1.0,
) -> TargetSelector:
    """Train the low-quality classifier; see the module docstring.

    ``weak``: train on the weak labels (with the judge's labels, if any, weighing ``judge_weight``
    times more); False: on the judge's labels only, the judged rows being whole questions, 30% of the
    questions held out. Default: weak labels only without a judge, the judge's only with one.
    ``embedder``: adds the ``qa.relevance`` feature (question-answer cosine) for every row scored.
    """
    n = frame.height
    if weak is None:
        weak = judge is None
    if not weak and judge is None:
        raise ValueError("weak=False needs a judge: without weak labels nothing labels the rows")
    sig = signals if signals is not None else signal_frame(frame, ops=ops)
    if sig.height != n:
        raise ValueError(f"signals have {sig.height} rows, the frame {n}")
    labels, fired = weak_labels(sig)
    rng = np.random.default_rng(seed)
    y = labels.astype(np.float64)
    w = np.ones(n)
    judged = np.zeros(0, dtype=np.int64)
    shown = None
    jlab = np.zeros(0)
    agreement = None
    groups = None
    if judge is not None and n:
        if weak:
            judged = _pick_for_judge(labels, min(judge_budget, n), rng)
        else:
            from .judges import question_groups

            q = frame["instruction"].cast(pl.String).to_list() if "instruction" in frame.columns else [None] * n
            groups = question_groups(q) if "instruction" in frame.columns else np.arange(n)
            judged = _pick_groups(groups, min(judge_budget, n), rng)
        shown = judged
        answers = list(judge(frame[judged]))
        if len(answers) != len(judged):
            raise ValueError(f"judge returned {len(answers)} labels for {len(judged)} rows")
        ok = np.array([a is not None for a in answers], dtype=bool)
        judged = judged[ok]
        jlab = np.array([1.0 if a else 0.0 for a in answers if a is not None])
        weak_j = labels[judged]
        both = weak_j >= 0
        agreement = float((weak_j[both] == jlab[both]).mean()) if both.any() else None
        if not weak and len(np.unique(jlab)) < 2:
            raise ValueError(f"the judge gave {len(jlab)} rows one label only: nothing to learn from")
    is_j = np.zeros(n, dtype=bool)
    is_j[judged] = True
    jtr = jte = np.zeros(0, dtype=np.int64)
    if len(judged):
        if weak:
            jtr, jte = _split(judged, jlab.astype(np.int64), 0.3, rng)
        else:
            jtr, jte = _split_groups(judged, groups, 0.3, rng)
        y[judged] = jlab
        w[judged] = judge_weight if weak else 1.0
    if weak:
        # held-out weak labels: split the weakly labelled rows that the judge did not label
        lab_idx = np.flatnonzero((labels >= 0) & ~is_j)
        if len(lab_idx) == 0 and len(judged) == 0:
            raise ValueError(
                "no row could be labelled (no labelling function fired and none is confidently good)"
            )
        tr, te = _split(lab_idx, labels[lab_idx], test_fraction, rng) if len(lab_idx) else (lab_idx, lab_idx)
    else:
        tr = te = np.zeros(0, dtype=np.int64)
    train_rows = np.sort(np.concatenate([tr, jtr]))
    feats_in = feature_frame(frame, sig, embedder)
    feats = _Features.fit(feats_in, train_rows)
    x = feats.transform(feats_in)
    yt = y[train_rows]
    if len(np.unique(yt)) < 2:  # one class only: a constant score at that class's rate
        coef, b = np.zeros(x.shape[1]), (8.0 if yt.mean() > 0.5 else -8.0)
    else:
        coef, b = _fit_logreg(x[train_rows], yt, w[train_rows], l2=l2)
    p = _sigmoid(x @ coef + b)
    jm = _prf(y[jte].astype(np.int64), p[jte], 0.5, len(jtr)) if len(jte) else None
    if weak:
        metrics = _prf(labels[te], p[te], 0.5, len(train_rows))
        counts = {"low": int((labels == 1).sum()), "good": int((labels == 0).sum()), "abstain": int((labels == -1).sum())}
    else:
        metrics = jm if jm is not None else _prf(yt.astype(np.int64), p[train_rows], 0.5, len(train_rows))
        counts = {"judged_low": int((jlab == 1).sum()), "judged_good": int((jlab == 0).sum()),
                  "judge_unsure": int(len(ok) - ok.sum()), "not_judged": int(n - len(ok))}
    return TargetSelector(
        features=feats,
        coef=coef,
        intercept=b,
        metrics=metrics,
        ops=ops,
        judge_metrics=jm,
        judge_agreement=agreement,
        label_counts=counts,
        lf_counts={k: int(v.sum()) for k, v in fired.items()},
        embedder=embedder,
        judge_name=(judge.describe() if hasattr(judge, "describe") else getattr(judge, "__name__", None)) if judge else None,
        weak=weak,
        judged_rows=shown,
    )
