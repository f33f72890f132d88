"""An aggregate, k-anonymous description of a data set: what the search agent sees instead of rows.

Privacy rules (``k`` is the floor, default 20; ``n`` the number of rows profiled):

1. **No text from the data.** The profile holds numbers, the data's column names and dtypes, and
   fixed labels chosen by this module (signal names, bin edges, language labels). It never holds a
   value, a token, an n-gram, a category or an id taken from a row; bin edges are fixed in advance,
   never derived from the data.
2. **Every number describes >= k rows.** A statistic over a group of rows (a mean, a rate, a bin
   count) is released only if the group has at least k rows; if ``n < k`` nothing but ``n`` is
   released.
3. **Rates** (share of rows with a property) are released only when both the rows with and the rows
   without the property number 0 or at least k; otherwise ``suppressed`` (shown as ``<k``).
4. **Quantiles** p1, p5, p25, p50, p75, p95, p99 are released only when at least k rows lie on
   each side of them (``q*n >= k`` and ``(1-q)*n >= k``); the p1 of 200 rows, which is a value of
   one of the two smallest rows, is suppressed at k=20. Minimum and maximum are never released.
5. **Histograms** use fixed bins; adjacent bins are merged (left to right, a remainder into its left
   neighbour) until every released bin holds 0 or at least k rows. Merging, not dropping, keeps the
   total equal to n, so a hidden bin cannot be recovered by subtraction.
6. Means are released for groups of at least k rows (rule 2); no standard deviations, no
   min/max, no per-row values, no cross-tabulations below k.

What this does not protect against: releasing several profiles of overlapping row sets (the full
data and the same data minus one row) lets a reader difference them. Profile a data set once per
search and reuse it.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from pydantic import BaseModel, Field

from .signals import language_labels, signal_frame, signal_sources, text_columns

__all__ = ["Profile", "SignalStats", "Rate", "Bin", "ColumnInfo", "profile", "QUANTILES"]

QUANTILES = {"p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.50, "p75": 0.75, "p95": 0.95, "p99": 0.99}

# fixed bin edges (never derived from data)
COUNT_EDGES = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000]
RATIO_EDGES = [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0]
LANG_LABELS = ("en", "latin_other", "cyrillic", "greek", "arabic", "hebrew", "cjk", "indic", "other", "none")


class Bin(BaseModel):
    lo: float  # inclusive
    hi: float | None  # exclusive; None: open (no upper edge). The last ratio bin includes 1.0
    count: int


class Rate(BaseModel):
    count: int | None = None
    rate: float | None = None
    suppressed: bool = False
    near_all: bool = False  # suppressed because fewer than k rows lack the property (not because few have it)

    def text(self, k: int) -> str:
        if self.suppressed and self.near_all:
            return f"all but <{k} rows"
        if self.suppressed:
            return f"<{k} rows"
        return f"{_pct(self.rate)} ({self.count})"


class SignalStats(BaseModel):
    kind: str  # "count" | "ratio" | "flag" | "value"
    source: str  # "op" (a registry operator of the same name) | "builtin" (a profile-only signal)
    count: int
    mean: float | None = None
    quantiles: dict[str, float | None] = Field(default_factory=dict)
    histogram: list[Bin] | None = None
    rate: Rate | None = None  # flags only
    suppressed: bool = False  # everything but count hidden (n < k)


class ColumnInfo(BaseModel):
    name: str
    dtype: str
    text: bool  # one of the text columns signals are computed on
    null_rate: Rate


class Profile(BaseModel):
    """Aggregate description of a data set; see the module docstring for the privacy rules."""

    k: int
    n_rows: int
    columns: list[ColumnInfo]
    text_columns: list[str]
    signals: dict[str, SignalStats]
    rates: dict[str, Rate]
    notes: list[str] = Field(default_factory=list)

    def to_prompt_text(self, histograms: bool = True) -> str:
        """A compact rendering for an LLM prompt: rates, then one line per signal."""
        k = self.k
        lines = [f"rows: {self.n_rows} (aggregates only; groups under {k} rows are hidden as <{k})"]
        lines.append(
            "columns: "
            + ", ".join(f"{c.name}:{c.dtype}" + ("*" if c.text else "") for c in self.columns)
            + "  (* = text column)"
        )
        if self.n_rows < k:
            lines.append(f"fewer than {k} rows: nothing else is shown")
            return "\n".join(lines)
        lines.append("rates (share of rows):")
        for name, r in self.rates.items():
            lines.append(f"  {name}: {r.text(k)}")
        lines.append(
            "signals (<column>.<signal> is signal(column), except output.echoes_question, which is "
            "echoes_question(instruction, output); quantiles p1 p5 p25 p50 p75 p95 p99):"
        )
        for name, s in self.signals.items():
            if s.kind == "flag":
                continue  # flags are covered by the rates / shown compactly below
            if s.suppressed:
                lines.append(f"  {name}: <{k} rows")
                continue
            if (
                s.mean is not None
                and s.histogram is not None
                and len(s.histogram) == 1
                and s.histogram[0].count == self.n_rows
                and all(v is None or v == 0 for v in s.quantiles.values())
            ):
                lines.append(f"  {name}: always {_num(s.quantiles.get('p50') or 0)}")
                continue
            qs = " ".join("-" if v is None else _num(v) for v in s.quantiles.values())
            line = f"  {name}: mean {_num(s.mean)} | q {qs}"
            if histograms and s.histogram:
                line += " | hist " + " ".join(_bin_text(b, s.kind) for b in s.histogram if b.count)
            lines.append(line)
        shown = set(_RATE_SIGNALS.values())
        flags = [
            f"{n} {s.rate.text(k)}"
            for n, s in self.signals.items()
            if s.kind == "flag" and s.rate and n not in shown and (s.rate.suppressed or s.rate.count)
        ]
        if flags:
            lines.append("per-column flags (share of rows; zero rates omitted): " + "; ".join(flags))
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def _pct(r: float | None) -> str:
    if r is None:
        return "-"
    return f"{100 * r:.2f}%" if r < 0.1 else f"{100 * r:.1f}%"


def _bin_text(b: Bin, kind: str) -> str:
    hi = "inf" if b.hi is None else _num(b.hi)
    return f"[{_num(b.lo)},{hi}){b.count}"


_RATE_SIGNALS = {
    "exact duplicate row (of an earlier row)": "dup.exact",
    "duplicate instruction": "dup.instruction",
    "duplicate output": "dup.output",
    "near-duplicate output (MinHash estimate, Jaccard ~>= 0.6)": "dup.near",
    "heading-only output": "output.heading_only",
    "output echoes the question": "output.echoes_question",
}


# ---------------------------------------------------------------- k-floor primitives


def safe_rate(count: int, n: int, k: int) -> Rate:
    """A rate released only when both groups (with and without) are empty or hold >= k rows."""
    if n < k or (0 < count < k):
        return Rate(suppressed=True)
    if 0 < n - count < k:  # nearly every row: say so, without the count
        return Rate(suppressed=True, near_all=True)
    return Rate(count=int(count), rate=float(count / n) if n else 0.0)


def safe_quantiles(x: np.ndarray, k: int) -> dict[str, float | None]:
    n = len(x)
    out: dict[str, float | None] = {}
    for name, q in QUANTILES.items():
        if n >= k and q * n >= k and (1 - q) * n >= k:
            out[name] = float(np.quantile(x, q))
        else:
            out[name] = None
    return out


def merge_bins(edges: list[float], counts: list[int], k: int, closed_last: bool = False) -> list[Bin] | None:
    """Merge adjacent fixed bins so each released bin holds 0 or >= k rows. ``edges`` has one more
    entry than ``counts``; a last edge of ``inf`` is released as an open bin. None if total < k."""
    total = sum(counts)
    if total < k:
        return None if total else []
    out: list[Bin] = []
    acc_lo, acc = None, 0
    for i, c in enumerate(counts):
        lo, hi = edges[i], edges[i + 1]
        if acc == 0 and c == 0:
            out.append(Bin(lo=lo, hi=None if math.isinf(hi) else hi, count=0))
            acc_lo = None
            continue
        if acc_lo is None:
            acc_lo = lo
        acc += c
        if acc >= k:
            out.append(Bin(lo=acc_lo, hi=None if math.isinf(hi) else hi, count=acc))
            acc_lo, acc = None, 0
    if acc:  # remainder: merge into the nearest non-empty bin on the left (absorbing empty ones)
        while out and out[-1].count == 0:
            out.pop()
        last_hi = edges[-1]
        prev = out.pop()
        out.append(Bin(lo=prev.lo, hi=None if math.isinf(last_hi) else last_hi, count=prev.count + acc))
    # drop trailing/leading empty bins: they say nothing
    while out and out[-1].count == 0:
        out.pop()
    while out and out[0].count == 0:
        out.pop(0)
    return out


def _histogram(x: np.ndarray, kind: str, k: int) -> list[Bin] | None:
    if kind == "ratio":
        edges = list(RATIO_EDGES)
        idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    else:
        edges = [*COUNT_EDGES, math.inf]
        if (x < 0).any():
            edges = [-math.inf, *edges]
        idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(idx, minlength=len(edges) - 1).tolist()
    return merge_bins([float(e) for e in edges], [int(c) for c in counts], k)


def _stats(s: pl.Series, source: str, k: int) -> SignalStats:
    n = len(s)
    if s.dtype == pl.Boolean:
        c = int(s.sum())
        r = safe_rate(c, n, k)
        return SignalStats(kind="flag", source=source, count=n, mean=r.rate, rate=r, suppressed=n < k)
    x = s.cast(pl.Float64).to_numpy()
    kind = "count" if s.dtype.is_integer() else ("ratio" if n and x.min() >= 0 and x.max() <= 1 else "value")
    if n < k:
        return SignalStats(kind=kind, source=source, count=n, suppressed=True)
    return SignalStats(
        kind=kind,
        source=source,
        count=n,
        mean=float(x.mean()),
        quantiles=safe_quantiles(x, k),
        histogram=_histogram(x, kind, k),
    )


# ---------------------------------------------------------------- the profile


def profile(
    frame: pl.DataFrame,
    k: int = 20,
    *,
    signals: pl.DataFrame | None = None,
    columns: list[str] | None = None,
    near_dup: bool = True,
    ops=None,
) -> Profile:
    """Profile ``frame`` under a k-anonymity floor (module docstring).

    ``signals``: a precomputed ``signal_frame(frame)`` to reuse (``dup.near`` is computed if missing
    and ``near_dup``); ``ops``: the signal operators when computing them (see ``signal_frame``). Columns starting with ``__`` (row ids) are listed but not profiled.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n = frame.height
    cols = text_columns(frame, columns)
    if signals is None:
        signals = signal_frame(frame, cols, near_dup=near_dup, ops=ops)
    elif near_dup and "dup.near" not in signals.columns and cols:
        from .signals import near_duplicate_flags

        tcol = "output" if "output" in cols else cols[-1]
        signals = signals.with_columns(pl.Series("dup.near", near_duplicate_flags(frame[tcol])))
    if signals.height != n:
        raise ValueError(f"signals have {signals.height} rows, the frame {n}")
    sources = signal_sources(
        frame, cols, ops=ops if ops is not None else ("all" if signals is not None else None)
    )

    columns_info = [
        ColumnInfo(
            name=c, dtype=str(t), text=c in cols, null_rate=safe_rate(int(frame[c].null_count()), n, k)
        )
        for c, t in frame.schema.items()
    ]
    stats = {name: _stats(signals[name], sources.get(name, "builtin"), k) for name in signals.columns}

    def flag_rate(expr: pl.Expr) -> Rate:
        return safe_rate(int(signals.select(expr.sum()).item() or 0), n, k)

    rates: dict[str, Rate] = {}
    present = set(signals.columns)

    def any_of(suffix: str) -> pl.Expr | None:
        names = [f"{c}.{suffix}" for c in cols if f"{c}.{suffix}" in present]
        return pl.any_horizontal([pl.col(x) for x in names]) if names else None

    for label, suffix in (
        ("markup (any text column)", "html"),
        ("mojibake (any text column)", "mojibake"),
        ("messy whitespace (any text column)", "messy_ws"),
    ):
        e = any_of(suffix)
        if e is not None:
            rates[label] = flag_rate(e)
    for c in cols:
        if f"{c}.empty" in present:
            rates[f"empty {c}"] = flag_rate(pl.col(f"{c}.empty"))
    named = _RATE_SIGNALS
    for label, col in named.items():
        if col not in present:
            continue
        if signals.schema[col] == pl.Boolean:
            rates[label] = flag_rate(pl.col(col))
        elif col == "output.echoes_question":  # the operator's ratio: a restated question scores ~1
            rates[label + " (echoes_question(instruction, output) >= 0.9)"] = flag_rate(pl.col(col) >= 0.9)
    if n:
        lang = language_labels(frame, cols)
        vc = dict(zip(*np.unique(lang.to_numpy().astype(str), return_counts=True), strict=True))
        for lab in LANG_LABELS:
            c = int(vc.get(lab, 0))
            if c:
                rates[f"language {lab}"] = safe_rate(c, n, k)

    notes = []
    if n < k:
        notes.append(f"fewer than {k} rows: all statistics suppressed")
        stats = {
            name: SignalStats(kind=s.kind, source=s.source, count=n, suppressed=True)
            for name, s in stats.items()
        }
        rates = {name: Rate(suppressed=True) for name in rates}
    notes.append("flags empty/html/mojibake/messy_ws and dup.* are profile-only signals, not operators")
    return Profile(
        k=k, n_rows=n, columns=columns_info, text_columns=cols, signals=stats, rates=rates, notes=notes
    )
