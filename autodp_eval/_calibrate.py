"""``calibrate``: the null distribution of the evaluator on the user's own data, and what it can detect.

Each null comparison evaluates "the data minus a random ``drop_fraction`` of its rows" against the
data, with its own seed block (its baseline is trained with other seeds than every other
comparison's), at the chosen settings (replicates included). Nothing separates the arms but chance,
so the spread of the K estimates and the intervals' own standard errors say how large a true
effect must be before the settings see it: ``(t_{1-alpha/2} + t_{power}) * se`` with the larger of
the two standard errors (an interval narrower than the spread of null estimates is not trusted).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ._config import EvalConfig
from ._data import load_rows, normalize_prompt, prompt_text, split_heldout
from ._evaluate import SEED_BLOCK, EvalResult, Evaluation, random_drop
from ._interval import Interval, detectable_effect, t_quantile
from ._judges import Judge
from .errors import EvalInputError

__all__ = ["CALIBRATION_BLOCK", "Calibration", "NullComparison", "calibrate"]

Log = Callable[[str], None]

#: comparison k trains with ``train.seed + CALIBRATION_BLOCK * (k + 1)``: clear of the blocks an
#: evaluation uses inside itself (``SEED_BLOCK`` * 0, 1, 2)
CALIBRATION_BLOCK = 10 * SEED_BLOCK


class NullComparison(BaseModel):
    """One random drop against the data it was drawn from."""

    index: int
    seed: int
    win_rate: float | None
    ci_low: float | None
    ci_high: float | None
    nll_diff: float | None
    nll_ci_low: float | None
    nll_ci_high: float | None
    excludes_null: bool = Field(description="the win-rate interval excludes 0.5: a false positive")
    seconds: float


class Effect(BaseModel):
    """The null spread of one statistic and the smallest effect detectable from it."""

    mean: float | None
    spread_sd: float | None = Field(
        description="root mean square of the null estimates around the null value"
    )
    interval_se: float | None = Field(description="mean standard error of the null intervals")
    se: float | None = Field(description="the larger of the two: the standard error used")
    detectable: float | None = Field(description="smallest |effect| detected at alpha with the given power")


class Calibration(BaseModel):
    """The null distribution at one setting, and the smallest detectable effects."""

    comparisons: list[NullComparison]
    replicates: int
    dropped: int
    drop_fraction: float
    train_rows: int
    heldout_n: int
    alpha: float
    power: float
    false_positives: int
    win: Effect
    nll: Effect
    seconds: float

    def summary(self) -> str:
        def f(x: float | None, d: int = 3) -> str:
            return "n/a" if x is None else f"{x:.{d}f}"

        lines = [
            f"null comparisons: {len(self.comparisons)} random drops of {self.dropped} of {self.train_rows} training "
            f"rows ({self.drop_fraction:.0%}) against the data, {self.replicates} replicate(s) each, "
            f"{self.heldout_n} held-out questions",
        ]
        for c in self.comparisons:
            lines.append(
                f"  #{c.index} (seed {c.seed}): win rate {f(c.win_rate)} [{f(c.ci_low)}, {f(c.ci_high)}], "
                f"NLL diff {f(c.nll_diff, 4)} [{f(c.nll_ci_low, 4)}, {f(c.nll_ci_high, 4)}]"
                + ("  <- excludes 0.5" if c.excludes_null else "")
            )
        lines += [
            f"intervals excluding 0.5 (false positives): {self.false_positives} of {len(self.comparisons)} "
            f"(expected about {(1 - 0.95) * len(self.comparisons):.1f} at 95%)",
            f"null win rate: mean {f(self.win.mean)}, spread around 0.5 {f(self.win.spread_sd)}, "
            f"interval se {f(self.win.interval_se)}",
            f"smallest effect detectable (alpha {self.alpha}, power {self.power:.0%}): "
            f"win rate 0.5 +- {f(self.win.detectable)}; "
            f"NLL difference +- {f(self.nll.detectable, 4)} nats per reference token",
            f"took {self.seconds:.0f} s",
        ]
        if self.replicates < 2:
            lines.append(
                "with one replicate each interval excludes training variance: the false-positive count shows "
                "what that costs; calibrate with --replicates 3 or more for intervals that include it"
            )
        return "\n".join(lines)


def _se(iv: Interval | None) -> float | None:
    if iv is None or iv.low is None or iv.high is None:
        return None
    if iv.se is not None:
        return iv.se
    return (iv.high - iv.low) / (2 * t_quantile(1 - (1 - iv.level) / 2, 1e9))  # bootstrap: normal width


def _effect(
    estimates: list[float | None], intervals: list[Interval | None], null: float, alpha: float, power: float
) -> Effect:
    """The spread of the null ``estimates`` around ``null`` and the smallest effect it lets these
    settings detect; ``intervals`` are the comparisons' own intervals (None where one has none)."""
    est = [x for x in estimates if x is not None]
    se_list = [s for s in map(_se, intervals) if s is not None]
    if not est:
        return Effect(mean=None, spread_sd=None, interval_se=None, se=None, detectable=None)
    # the spread is measured around the null value (K degrees of freedom): a bias of the protocol
    # counts as noise here, since a user cannot tell it from an effect
    spread = math.sqrt(sum((x - null) ** 2 for x in est) / len(est))
    within = sum(se_list) / len(se_list) if se_list else None
    cands = [x for x in (spread, within) if x is not None]
    se = max(cands) if cands else None
    if se is None:
        return Effect(
            mean=sum(est) / len(est), spread_sd=spread, interval_se=within, se=None, detectable=None
        )
    df = float(len(est)) if se == spread else _median([iv.df for iv in intervals if iv and iv.df])
    return Effect(
        mean=sum(est) / len(est),
        spread_sd=spread,
        interval_se=within,
        se=se,
        detectable=detectable_effect(se, df, alpha=alpha, power=power),
    )


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def calibrate(
    data: Any,
    heldout: Any = None,
    config: EvalConfig | None = None,
    cache_dir: str | Path | None = None,
    *,
    comparisons: int = 5,
    drop_fraction: float = 0.05,
    replicates: int | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    judge: Judge | None = None,
    log: Log | None = None,
) -> Calibration:
    """Run ``comparisons`` null evaluations (a random ``drop_fraction`` of ``data``'s training rows
    dropped, against ``data``) at ``config`` (``replicates`` overrides ``config.replicates``) and
    return the null spread and the smallest detectable effects in win rate and in NLL."""
    cfg = config or EvalConfig()
    say: Log = log or (lambda _m: None)
    if comparisons < 2:
        raise EvalInputError("calibration needs at least 2 null comparisons")
    if not 0.0 < drop_fraction < 1.0:
        raise EvalInputError(f"drop fraction must lie strictly between 0 and 1, got {drop_fraction}")
    R = cfg.replicates if replicates is None else replicates
    t0 = time.perf_counter()
    if heldout is None or (isinstance(heldout, int) and not isinstance(heldout, bool)):
        n = cfg.heldout_n if heldout is None else int(heldout)
        pool_df, held_df = split_heldout(
            load_rows(data, category_column=cfg.category_column, what="data"), n, cfg.heldout_seed
        )
        pool = load_rows(pool_df, category_column=None, what="data")
        held: Any = held_df
    else:
        held = load_rows(
            heldout, category_column=cfg.category_column, what="held-out data", require_output=False
        )
        keys = {normalize_prompt(prompt_text(r["instruction"], r.get("input"))) for r in held}
        pool = [
            r
            for r in load_rows(data, category_column=None, what="data")
            if normalize_prompt(prompt_text(r["instruction"], r.get("input"))) not in keys
        ]
    m = max(1, round(drop_fraction * len(pool)))
    if m >= len(pool):
        raise EvalInputError(f"cannot drop {m} of {len(pool)} training rows")
    evals = []
    for k in range(comparisons):
        seed = cfg.train.seed + CALIBRATION_BLOCK * (k + 1)
        ck = cfg.with_overrides(train={"seed": seed}, placebo=False)
        evals.append(
            (
                seed,
                Evaluation(
                    random_drop(pool, m, f"calibrate:{k}"), pool, held, ck, cache_dir, judge=judge, log=say
                ),
            )
        )
    todo = sum(len(ev.pending(R)) for _, ev in evals)
    say(
        f"calibration: {comparisons} null comparisons x {R} replicate(s) x 2 arms; {todo} of "
        f"{2 * comparisons * R} arms to train (the rest are in the memo)"
    )
    out: list[NullComparison] = []
    results: list[EvalResult] = []
    for k, (seed, ev) in enumerate(evals):
        say(f"null comparison {k + 1} of {comparisons} (seed block {seed}) ...")
        t = time.perf_counter()
        res = ev.run(R)
        results.append(res)
        out.append(
            NullComparison(
                index=k,
                seed=seed,
                win_rate=res.win_rate,
                ci_low=res.ci_low,
                ci_high=res.ci_high,
                nll_diff=res.nll_diff,
                nll_ci_low=res.nll_ci_low,
                nll_ci_high=res.nll_ci_high,
                excludes_null=res.ci_low is not None and (res.ci_low > 0.5 or res.ci_high < 0.5),
                seconds=round(time.perf_counter() - t, 3),
            )
        )
    wins = [r.contrast.win if r.contrast else None for r in results]
    nlls = [r.contrast.nll if r.contrast else None for r in results]
    return Calibration(
        comparisons=out,
        replicates=R,
        dropped=m,
        drop_fraction=drop_fraction,
        train_rows=len(pool),
        heldout_n=results[0].heldout.n,
        alpha=alpha,
        power=power,
        false_positives=sum(c.excludes_null for c in out),
        win=_effect([c.win_rate for c in out], wins, 0.5, alpha, power),
        nll=_effect([c.nll_diff for c in out], nlls, 0.0, alpha, power),
        seconds=round(time.perf_counter() - t0, 3),
    )
