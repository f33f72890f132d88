"""Win rate = (wins + ties / 2) / judged questions, with a bootstrap confidence interval."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel, Field

from ._interval import percentile_bootstrap
from ._judges import Verdict

__all__ = ["SliceStats", "WinRate", "win_rate"]

_POINTS = {"a": 1.0, "tie": 0.5, "b": 0.0}


class SliceStats(BaseModel):
    """Counts and win rate of arm "a" over a set of questions (failures excluded from the rate)."""

    n: int
    wins: int
    ties: int
    losses: int
    failures: int
    win_rate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


class WinRate(SliceStats):
    """The overall :class:`SliceStats`, per-category slices, and the feedback for the search."""

    slices: dict[str, SliceStats] = Field(default_factory=dict)
    failure_counts: dict[str, int] = Field(default_factory=dict)
    rationales: list[str] = Field(default_factory=list)
    feedback: str = ""


def _stats(verdicts: Sequence[Verdict], samples: int, seed: int, level: float) -> SliceStats:
    c = Counter(v.winner for v in verdicts)
    points = [_POINTS[v.winner] for v in verdicts if v.winner != "failed"]
    s = SliceStats(n=len(verdicts), wins=c["a"], ties=c["tie"], losses=c["b"], failures=c["failed"])
    if points:
        s.win_rate = sum(points) / len(points)
        s.ci_low, s.ci_high = percentile_bootstrap(points, samples, seed, level)
    return s


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def win_rate(
    verdicts: Sequence[Verdict],
    *,
    categories: Sequence[str | None] | None = None,
    bootstrap_samples: int = 2000,
    seed: int = 0,
    ci_level: float = 0.95,
    feedback_examples: int = 3,
    judge_name: str = "",
) -> WinRate:
    """Win rate of arm "a" over arm "b": (wins + ties / 2) / (questions judged).

    Failed verdicts are counted and reported but left out of the rate and the interval (a failure is
    not evidence either way); the rate is None when nothing was judged. The interval is a percentile
    bootstrap over questions (``bootstrap_samples`` resamples, fixed ``seed``). With ``categories``
    (one per verdict) a per-slice breakdown is added. ``feedback`` is a short text for the search's
    agent: the figures, the failure counts and up to ``feedback_examples`` judge rationales (losses
    first); it quotes no question or answer text.
    """
    if categories is not None and len(categories) != len(verdicts):
        raise ValueError(f"{len(categories)} categories for {len(verdicts)} verdicts")
    base = _stats(verdicts, bootstrap_samples, seed, ci_level)
    out = WinRate(**base.model_dump())
    if categories is not None and any(c is not None for c in categories):
        groups: dict[str, list[Verdict]] = {}
        for v, c in zip(verdicts, categories, strict=True):
            groups.setdefault("(none)" if c is None else str(c), []).append(v)
        out.slices = {k: _stats(vs, bootstrap_samples, seed, ci_level) for k, vs in sorted(groups.items())}
    out.failure_counts = dict(Counter(v.error_kind or "error" for v in verdicts if v.winner == "failed"))
    ranked = sorted(
        (v for v in verdicts if v.winner != "failed" and v.rationale),
        key=lambda v: {"b": 0, "tie": 1, "a": 2}[v.winner],
    )
    out.rationales = [
        f"{ {'a': 'won', 'b': 'lost', 'tie': 'tie'}[v.winner] }: {v.rationale}" for v in ranked
    ][:feedback_examples]
    out.feedback = feedback_text(out, judge_name, ci_level)
    return out


def feedback_text(w: WinRate, judge_name: str, level: float) -> str:
    judged = w.n - w.failures
    lines = [
        f"win rate {_fmt(w.win_rate)} ({level:.0%} CI {_fmt(w.ci_low)}-{_fmt(w.ci_high)}) against the baseline "
        f"over {judged} judged questions: {w.wins} wins, {w.ties} ties, {w.losses} losses"
        + (f"; judge: {judge_name}" if judge_name else "")
    ]
    if w.failures:
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(w.failure_counts.items()))
        lines.append(
            f"judge failures: {w.failures} of {w.n} questions ({kinds}); they are not in the win rate"
        )
    if w.slices:
        parts = [f"{k} {_fmt(s.win_rate)} (n={s.n - s.failures})" for k, s in w.slices.items()]
        lines.append("by category: " + ", ".join(parts))
    if w.rationales:
        lines.append("judge rationales:")
        lines.extend(f"- {r}" for r in w.rationales)
    return "\n".join(lines)
