"""Intervals over replicated comparisons: R trained pairs x n held-out questions.

A per-question score ``x[r, i]`` of replicate ``r`` (a win point, or a baseline-minus-candidate NLL)
is modelled as ``mu + q_i + t_r + e_ri``: ``q_i`` how much question ``i`` favours one arm (the
held-out set is one sample of questions), ``t_r`` how much replicate ``r``'s training run favours
one arm (seed, data order: with one trained pair, whichever model lands in the better optimum wins
most questions at once), ``e_ri`` the rest. The variance of the grand mean is
``s_q^2 / n + s_t^2 / R + s_e^2 / (n R)``; the two-way ANOVA mean squares estimate it without bias
(``(MS_rep + MS_question - MS_error) / (n R)``) and Satterthwaite's formula gives its degrees of
freedom, so the interval is ``mean +- t_df * se``. When training noise dominates, ``df`` falls to
``R - 1`` (t = 4.30 at R = 3): the width that keeps the nominal coverage with three replicates.
Simulated coverage: tests/eval/test_eval_interval.py. A two-level bootstrap (replicates, then
questions) was rejected: resampling 3 replicate means cannot produce a spread wider than theirs and
covers far below nominal at R = 3 (measured in docs/eval.md).

With one replicate ``t_r`` cannot be estimated: the interval is the percentile bootstrap over
questions, and :attr:`Interval.training_variance` is False -- it says nothing about a rerun with
another seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, Field

__all__ = ["Interval", "detectable_effect", "percentile_bootstrap", "replicate_interval"]


class Interval(BaseModel):
    """An estimate over R replicates x n questions, with its interval and how it was made."""

    estimate: float | None
    low: float | None
    high: float | None
    level: float
    replicates: int
    questions: int = Field(description="questions scored in every replicate (the others are left out)")
    per_replicate: list[float] = Field(default_factory=list, description="the mean of each replicate")
    between_sd: float | None = Field(None, description="standard deviation of the replicate means")
    se: float | None = None
    df: float | None = None
    method: str = ""
    training_variance: bool = Field(description="whether the interval includes training variance (R >= 2)")


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) (continued fraction, Numerical Recipes' betacf)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _betainc(b, a, 1.0 - x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return math.exp(lbeta) * h / a


def _t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t with ``df`` degrees of freedom (bisection on the CDF; no scipy)."""
    if df > 1e6:
        df = 1e6
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return (lo + hi) / 2.0


def percentile_bootstrap(points, samples: int, seed: int, level: float) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``points`` (one level: the points are resampled)."""
    import numpy as np

    x = np.asarray(points, dtype=float)
    if x.size == 1 or np.all(x == x[0]):
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(samples, x.size))].mean(axis=1)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a])
    return float(lo), float(hi)


def replicate_interval(
    points: Sequence[Sequence[float | None]],
    *,
    level: float = 0.95,
    bootstrap_samples: int = 2000,
    seed: int = 0,
    bounds: tuple[float, float] | None = None,
) -> Interval:
    """The mean of ``points`` (one row per replicate, one column per question; None = not scored)
    with a ``level`` interval: variance components + Satterthwaite t for two replicates or more,
    the percentile bootstrap over questions for one. Questions missing in any replicate are left
    out (a balanced table); ``bounds`` clips the interval (win rates lie in [0, 1])."""
    import numpy as np

    x = np.array([[np.nan if v is None else float(v) for v in row] for row in points], dtype=float)
    if x.ndim != 2:
        x = x.reshape(len(points), -1)
    R = x.shape[0]
    x = x[:, ~np.isnan(x).any(axis=0)] if x.size else x
    n = x.shape[1] if x.ndim == 2 else 0
    if R == 0 or n == 0:
        return Interval(
            estimate=None,
            low=None,
            high=None,
            level=level,
            replicates=R,
            questions=0,
            training_variance=R >= 2,
        )
    rep_means = x.mean(axis=1)
    mean = float(x.mean())
    out = Interval(
        estimate=mean,
        low=None,
        high=None,
        level=level,
        replicates=R,
        questions=n,
        per_replicate=[float(m) for m in rep_means],
        training_variance=R >= 2,
    )
    if R == 1:
        out.low, out.high = percentile_bootstrap(x[0], bootstrap_samples, seed, level)
        out.method = "percentile bootstrap over questions (one replicate: excludes training variance)"
    else:
        out.between_sd = float(rep_means.std(ddof=1))
        q_means = x.mean(axis=0)
        ms_rep = n * float(rep_means.var(ddof=1))
        ms_q = R * float(q_means.var(ddof=1)) if n > 1 else 0.0
        resid = x - rep_means[:, None] - q_means[None, :] + mean
        ms_e = float((resid**2).sum()) / ((R - 1) * (n - 1)) if n > 1 else 0.0
        combo = ms_rep + ms_q - ms_e
        if combo <= ms_rep:  # the question term is estimated as zero: the replicate means alone
            var, df = ms_rep / (n * R), float(R - 1)
        else:
            var = combo / (n * R)
            den = ms_rep**2 / (R - 1) + (ms_q**2 / (n - 1)) + ms_e**2 / ((R - 1) * (n - 1))
            df = combo**2 / den if den > 0 else float(R - 1)
        se = math.sqrt(max(var, 0.0))
        half = t_quantile(1 - (1 - level) / 2, df) * se if se > 0 else 0.0
        out.low, out.high, out.se, out.df = mean - half, mean + half, se, df
        out.method = "variance components (replicates, questions), Satterthwaite t"
    if bounds is not None and out.low is not None and out.high is not None:
        out.low, out.high = max(bounds[0], out.low), min(bounds[1], out.high)
    return out


def detectable_effect(se: float, df: float | None, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true effect a two-sided test at ``alpha`` detects with probability ``power``
    when its estimate has standard error ``se`` (``t_{1-alpha/2} + t_{power}``, times ``se``)."""
    d = df if df and math.isfinite(df) else 1e9
    return (t_quantile(1 - alpha / 2, d) + t_quantile(power, d)) * se


def pool_intervals(
    parts: Sequence[Interval], weights: Sequence[float] | None = None, *, bounds: tuple[float, float] | None = None
) -> Interval:
    """One interval from independent estimates (cross-fitting folds, data sets): the weighted mean
    (default: by questions), its standard error ``sqrt(sum w^2 se^2)`` and Satterthwaite's degrees of
    freedom. Every part needs a standard error (two replicates or more)."""
    if not parts or any(p.estimate is None or p.se is None or p.df is None for p in parts):
        raise ValueError("pool_intervals needs parts with an estimate, a standard error and degrees of freedom")
    if len({p.level for p in parts}) > 1:  # one level for the pooled interval, not the first part's
        raise ValueError(f"pool_intervals needs parts at one level, got {sorted({p.level for p in parts})}")
    w = [float(x) for x in weights] if weights is not None else [float(p.questions) for p in parts]
    if len(w) != len(parts) or not all(math.isfinite(x) and x >= 0 for x in w) or sum(w) <= 0:
        raise ValueError(f"pool_intervals needs one weight >= 0 per part ({len(parts)}), not all zero; got weights {w}")
    total = sum(w)
    w = [x / total for x in w]
    est = sum(wi * p.estimate for wi, p in zip(w, parts, strict=True))  # type: ignore[operator]
    terms = [(wi * p.se) ** 2 for wi, p in zip(w, parts, strict=True)]  # type: ignore[operator]
    var = sum(terms)
    den = sum(t * t / p.df for t, p in zip(terms, parts, strict=True) if p.df)  # type: ignore[operator]
    df = var * var / den if den > 0 else float(sum(p.replicates - 1 for p in parts))
    se = math.sqrt(var)
    half = t_quantile(1 - (1 - parts[0].level) / 2, df) * se if se > 0 else 0.0
    low, high = est - half, est + half
    if bounds is not None:
        low, high = max(bounds[0], low), min(bounds[1], high)
    return Interval(
        estimate=est,
        low=low,
        high=high,
        level=parts[0].level,
        replicates=sum(p.replicates for p in parts),
        questions=sum(p.questions for p in parts),
        per_replicate=[m for p in parts for m in p.per_replicate],
        se=se,
        df=df,
        method=f"pooled over {len(parts)} independent parts (weighted mean, Satterthwaite t)",
        training_variance=all(p.training_variance for p in parts),
    )
