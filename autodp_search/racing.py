"""Racing replicates between candidates, and the placebo rule (docs/search.md, "Racing and the
placebo band"). Pure decisions over the search's records: the loop trains, journals and prints.

One trained pair of models is one draw of the training noise; with one replicate per candidate the
rounds ranked that noise (issue 15: scores from -0.46 to +0.415 between strategies one threshold
apart, the best inside the range of random 5% drops). Two remedies, both measured in fine-tunes:

- **The noise band** (``NoiseBand``), measured once per search: placebo arms -- the search sample
  minus a random share of its rows, drawn afresh per replicate -- against the unprocessed sample,
  at a few drop fractions, with paired seeds. It says what chance alone scores at each size, and
  the spread of its replicates is the search's estimate of training noise (pooled over fractions).
- **Racing** (``race_order``): a candidate starts with one replicate; further replicates go to the
  incumbent and to the candidates whose interval still overlaps the incumbent's, until they
  separate or the round's racing budget ends (F-race / successive halving in spirit).

A candidate's interval (``race_interval``) adds the band's training term ``t(df) x sd / sqrt(R)`` to
the spread over questions: with one replicate the evaluator's interval covers the questions only and
would separate candidates on training noise. A candidate *improves* on the data only when its
interval lies above 0.5 and it beats the placebo of its own size (``placebo_rule``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from .agents.base import rank_key

__all__ = ["RACE_FIELDS", "SCORE_FIELDS", "BandPoint", "NoiseBand", "placebo_rule", "race_interval", "race_order"]

#: the fields of a ``CandidateRecord`` racing adds, and all those a new replicate changes
RACE_FIELDS = ("replicates", "question_halfwidth", "placebo", "placebo_low", "placebo_high", "beats_placebo",
               "improvement")
SCORE_FIELDS = ("delta", "win_rate", "ci_low", "ci_high", "feedback", *RACE_FIELDS)


@dataclass(frozen=True)
class BandPoint:
    """Placebo arms at one drop fraction: their win rates against the unprocessed data."""

    fraction: float
    dropped: int
    per_replicate: tuple[float, ...]
    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class NoiseBand:
    """What chance alone scores, by drop fraction, and the training noise of one replicate."""

    points: tuple[BandPoint, ...]
    sd: float | None  # pooled between-replicate sd of one replicate's win rate
    df: int  # its degrees of freedom: sum over fractions of (replicates - 1)
    finetunes: int = 0
    seconds: float = 0.0
    level: float = 0.95

    @classmethod
    def from_points(cls, points: list[dict[str, Any]], finetunes: int = 0, seconds: float = 0.0,
                    level: float = 0.95) -> NoiseBand:
        pts = tuple(sorted((BandPoint(float(p["fraction"]), int(p["dropped"]), tuple(p["per_replicate"]),
                                      float(p["estimate"]), float(p["low"]), float(p["high"])) for p in points),
                           key=lambda p: p.fraction))
        ss, df = 0.0, 0
        for p in pts:
            m = sum(p.per_replicate) / max(len(p.per_replicate), 1)
            ss += sum((x - m) ** 2 for x in p.per_replicate)
            df += max(len(p.per_replicate) - 1, 0)
        return cls(pts, math.sqrt(ss / df) if df else None, df, finetunes, seconds, level)

    def training_half_width(self, replicates: int) -> float:
        """Half-width of a mean over ``replicates`` replicates due to training noise alone."""
        if self.sd is None or not self.df:
            return 0.0
        from autodp_eval import t_quantile

        return t_quantile(1 - (1 - self.level) / 2, self.df) * self.sd / math.sqrt(max(replicates, 1))

    def at(self, fraction: float) -> tuple[float, float, float]:
        """The placebo's win rate [low, high] at ``fraction``: linear between the measured fractions,
        the nearest beyond the largest. Below the smallest it runs to an A/A point at fraction 0
        (dropping nothing at random is the unprocessed data: 0.5, with the band's training noise)."""
        aa = self.training_half_width(max((len(p.per_replicate) for p in self.points), default=1))
        pts = [(0.0, 0.5, 0.5 - aa, 0.5 + aa)] + [(p.fraction, p.estimate, p.low, p.high) for p in self.points]
        f = min(max(fraction, 0.0), pts[-1][0])
        for (f0, *a), (f1, *b) in zip(pts, pts[1:], strict=False):
            if f <= f1:
                w = 0.0 if f1 == f0 else (f - f0) / (f1 - f0)
                return tuple(x + w * (y - x) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]
        return tuple(pts[-1][1:])  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["points"] = [asdict(p) for p in self.points]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NoiseBand:
        return cls.from_points(d["points"], d.get("finetunes", 0), d.get("seconds", 0.0), d.get("level", 0.95))


def race_interval(win_rate: float, ci_low: float | None, ci_high: float | None, replicates: int,
                  band: NoiseBand | None, question_halfwidth: float | None) -> tuple[float, float]:
    """The interval the search decides on. Without a band: the evaluator's. With one: the mean
    +- sqrt(q^2 + w^2), q the half-width over questions of the candidate's first replicate (the
    evaluator's one-replicate interval) and w the band's training term t(df) x sd / sqrt(R) -- the
    training noise measured once and reused, so two replicates can already separate (the
    evaluator's own two-replicate interval has one degree of freedom, t = 12.7). From three
    replicates on, the evaluator's own interval counts too when it is wider (a candidate noisier
    than the placebo arms shows there)."""
    lo = win_rate if ci_low is None else ci_low
    hi = win_rate if ci_high is None else ci_high
    if band is None:
        return lo, hi
    hw = math.hypot(question_halfwidth or 0.0, band.training_half_width(replicates))
    if replicates >= 3:
        lo, hi = min(lo, win_rate - hw), max(hi, win_rate + hw)
    else:
        lo, hi = win_rate - hw, win_rate + hw
    return max(0.0, lo), min(1.0, hi)


def placebo_rule(win_rate: float, low: float, high: float, band: NoiseBand | None,
                 drop_fraction: float) -> dict[str, Any]:
    """Whether a candidate beats the placebo of its own size and improves on the unprocessed data.

    ``drop_fraction`` must come from coarsened counts (the agent is told this verdict). The
    candidate and the placebo are separated when their estimates differ by more than the root sum
    of squares of their half-widths (both are win rates against the same baseline arms)."""
    if band is None:
        return {"placebo": None, "placebo_low": None, "placebo_high": None, "beats_placebo": None,
                "improvement": None}
    p, p_lo, p_hi = band.at(drop_fraction)
    margin = math.hypot((high - low) / 2, (p_hi - p_lo) / 2)
    beats = True if win_rate - p > margin else False if p - win_rate > margin else None
    return {"placebo": round(p, 6), "placebo_low": round(p_lo, 6), "placebo_high": round(p_hi, 6),
            "beats_placebo": beats, "improvement": bool(low > 0.5 and beats is True)}


def race_order(records, max_replicates: int) -> list[str]:
    """Who gets the next replicate, first first: the incumbent (the best by the search's ranking)
    while below ``max_replicates``, then the candidates below it whose interval overlaps the
    incumbent's, best first. Empty when every contender has separated (or is at the cap): the race
    is over. Only candidates scored by training (status ``ok``) race."""
    ok = [r for r in records if r.status == "ok" and r.delta is not None]
    if len(ok) < 2:
        return []
    ok.sort(key=rank_key)
    inc = ok[0]
    rivals = [r.cid for r in ok[1:] if r.replicates < max_replicates and r.ci_high >= inc.ci_low]
    if not rivals and not any(r.ci_high >= inc.ci_low for r in ok[1:]):
        return []  # separated from every other candidate
    return ([inc.cid] if inc.replicates < max_replicates else []) + rivals
