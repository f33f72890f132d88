"""Processing target selection: a classifier that marks low-quality rows, trained without a person.

``train_selector(frame, seed=0, judge=None)`` returns a ``TargetSelector`` whose ``score(frame)`` is
the probability that a row is low quality; ``add_column(frame, "lowq")`` adds it as a column so a
strategy can gate expensive operators: ``where: lowq > 0.5 do: [refine.rewrite(output, ...)]``.

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

**Judge** (optional): a callable ``judge(rows: pl.DataFrame) -> Sequence[bool | None]`` that labels
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

import numpy as np
import polars as pl
from pydantic import BaseModel

from .signals import signal_frame

__all__ = [
    "TargetSelector",
    "SelectorMetrics",
    "train_selector",
    "weak_labels",
    "LABELLING_FUNCTIONS",
    "Judge",
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

    def score(self, frame: pl.DataFrame, *, signals: pl.DataFrame | None = None) -> pl.Series:
        """Probability of low quality per row, a Float64 in [0, 1], same order as ``frame``."""
        sig = signals if signals is not None else signal_frame(frame, ops=self.ops)
        if sig.height != frame.height:
            raise ValueError(f"signals have {sig.height} rows, the frame {frame.height}")
        x = self.features.transform(sig)
        return pl.Series("lowq", _sigmoid(x @ self.coef + self.intercept), dtype=pl.Float64)

    def add_column(
        self, frame: pl.DataFrame, name: str = "lowq", *, signals: pl.DataFrame | None = None
    ) -> pl.DataFrame:
        """``frame`` with the score as column ``name`` (what ``where: lowq > 0.5`` gates on)."""
        return frame.with_columns(self.score(frame, signals=signals).alias(name))

    def summary(self, k: int = 20) -> str:
        """Aggregate description for reports and prompts (counts below k hidden)."""
        m = self.metrics
        lines = [
            f"target selector: logistic regression on {len(self.features.names)} signals; held-out weak labels: "
            f"precision {m.precision:.3f}, recall {m.recall:.3f}, F1 {m.f1:.3f}, base rate {m.base_rate:.3f} "
            f"(train {m.n_train}, test {m.n_test})"
        ]
        if self.judge_metrics is not None:
            j = self.judge_metrics
            lines.append(
                f"judge hold-out: precision {j.precision:.3f}, recall {j.recall:.3f}, F1 {j.f1:.3f} (test {j.n_test}); "
                f"weak-label agreement {self.judge_agreement if self.judge_agreement is not None else float('nan'):.2f}"
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
    l2: float = 1.0,
) -> TargetSelector:
    """Train the low-quality classifier from weak labels (and a judge's, if given); see the module docstring."""
    n = frame.height
    sig = signals if signals is not None else signal_frame(frame, ops=ops)
    if sig.height != n:
        raise ValueError(f"signals have {sig.height} rows, the frame {n}")
    labels, fired = weak_labels(sig)
    rng = np.random.default_rng(seed)
    y = labels.astype(np.float64)
    w = np.ones(n)
    judged = np.zeros(0, dtype=np.int64)
    jlab = np.zeros(0)
    agreement = None
    if judge is not None and n:
        judged = _pick_for_judge(labels, min(judge_budget, 200, n), rng)
        answers = list(judge(frame[judged]))
        if len(answers) != len(judged):
            raise ValueError(f"judge returned {len(answers)} labels for {len(judged)} rows")
        ok = np.array([a is not None for a in answers], dtype=bool)
        judged = judged[ok]
        jlab = np.array([1.0 if a else 0.0 for a in answers if a is not None])
        weak_j = labels[judged]
        both = weak_j >= 0
        agreement = float((weak_j[both] == jlab[both]).mean()) if both.any() else None
    # held-out weak labels: split the weakly labelled rows that the judge did not label
    is_j = np.zeros(n, dtype=bool)
    is_j[judged] = True
    lab_idx = np.flatnonzero((labels >= 0) & ~is_j)
    if len(lab_idx) == 0 and len(judged) == 0:
        raise ValueError(
            "no row could be labelled (no labelling function fired and none is confidently good)"
        )
    tr, te = _split(lab_idx, labels[lab_idx], test_fraction, rng) if len(lab_idx) else (lab_idx, lab_idx)
    jtr = jte = np.zeros(0, dtype=np.int64)
    if len(judged):
        jtr, jte = _split(judged, jlab.astype(np.int64), 0.3, rng)
        y[judged] = jlab
        w[judged] = judge_weight
    train_rows = np.sort(np.concatenate([tr, jtr]))
    feats = _Features.fit(sig, train_rows)
    x = feats.transform(sig)
    yt = y[train_rows]
    if len(np.unique(yt)) < 2:  # one class only: a constant score at that class's rate
        coef, b = np.zeros(x.shape[1]), (8.0 if yt.mean() > 0.5 else -8.0)
    else:
        coef, b = _fit_logreg(x[train_rows], yt, w[train_rows], l2=l2)
    p = _sigmoid(x @ coef + b)
    metrics = _prf(labels[te], p[te], 0.5, len(train_rows))
    jm = _prf(y[jte].astype(np.int64), p[jte], 0.5, len(jtr)) if len(jte) else None
    return TargetSelector(
        features=feats,
        coef=coef,
        intercept=b,
        metrics=metrics,
        ops=ops,
        judge_metrics=jm,
        judge_agreement=agreement,
        label_counts={
            "low": int((labels == 1).sum()),
            "good": int((labels == 0).sum()),
            "abstain": int((labels == -1).sum()),
        },
        lf_counts={k: int(v.sum()) for k, v in fired.items()},
    )
