"""The evaluator seen by the loop: one protocol, the real ``autodp_eval`` behind it, and a scripted
one for tests and benchmarks of the loop logic.

``Evaluator.evaluate(candidate, baseline, heldout)`` returns an ``EvalOutcome`` whose ``feedback``
is *standardised* by the privacy boundary: counts and losses only. The judge's rationales (which
could quote answers learned from the data) never leave the evaluator's result; the loop forwards
``feedback`` to the agent.
"""

from __future__ import annotations

import hashlib
import math
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from .boundary import standard_feedback

__all__ = [
    "EVAL_COLUMNS",
    "AutodpEvaluator",
    "EvalOutcome",
    "Evaluator",
    "ScriptedEvaluator",
    "default_scripted_score",
    "eval_frame",
]

EVAL_COLUMNS = ("instruction", "input", "output", "category")
#: the final verdict's training seeds start here (the rounds use the preset's seed block)
VERDICT_SEED_BLOCK = 50_000
#: a judge's verdict as the candidate's points (autodp_eval's convention; "failed" scores nothing)
_POINTS = {"a": 1.0, "tie": 0.5, "b": 0.0}


def _train_unit(rows: list[dict[str, Any]], config: Any, cache_dir: str, tokenizer_data: list[dict[str, Any]]) -> None:
    """One arm in a worker process (``run_in_processes``): trained into the memo."""
    from autodp_eval import train_arm

    train_arm(rows, config, cache_dir=cache_dir, tokenizer_data=tokenizer_data)


def _kept_mask(n: int, dropped: int, seed: str) -> list[bool]:
    """Which of ``n`` rows a placebo keeps when ``dropped`` of them go at random (``seed``)."""
    gone = set(random.Random(seed).sample(range(n), min(dropped, n)))
    return [i not in gone for i in range(n)]


@dataclass
class EvalOutcome:
    win_rate: float | None
    ci_low: float | None
    ci_high: float | None
    n: int = 0
    wins: int = 0
    ties: int = 0
    losses: int = 0
    failures: int = 0
    candidate_loss: float | None = None
    baseline_loss: float | None = None
    seconds: float = 0.0
    finetunes: int = 0  # arms actually trained by this call (cache hits: 0)
    from_cache: bool = False
    n_train: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    replicates: int = 1
    # the final verdict's placebo control (None in the rounds): statement, beats_placebo (True/False/None),
    # dropped, band and vs_placebo as [estimate, low, high] win rates
    placebo: dict[str, Any] | None = None

    @property
    def feedback(self) -> str:
        return standard_feedback(self)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["feedback"] = self.feedback
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalOutcome:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**d)


class Evaluator(Protocol):
    name: str

    def evaluate(self, candidate: pl.DataFrame, baseline: pl.DataFrame, heldout: pl.DataFrame, *,
                 verdict: bool = False) -> EvalOutcome:
        """``verdict``: the final verdict -- replicated, with placebo arms, on seeds the search never used.

        An evaluator with ``replicated = True`` also takes ``replicates=R`` (paired replicates 0..R-1,
        the earlier ones from its memo: racing asks for one more at a time) and has ``noise_band``."""

    def identity(self) -> dict[str, Any]:
        """What changes scores (goes into the journal's identity: resume refuses a different one)."""


def eval_frame(frame: pl.DataFrame) -> pl.DataFrame:
    cols = [c for c in EVAL_COLUMNS if c in frame.columns]
    return frame.select(cols)


class AutodpEvaluator:
    """``autodp_eval.evaluate`` with a preset (default "quick": the offline default of the search)."""

    name = "autodp_eval"
    replicated = True

    def __init__(self, preset: str = "quick", overrides: dict[str, Any] | None = None, cache_dir: str | Path | None = None,
                 log=None, judge=None, scratch: bool = False, verdict_replicates: int = 3, workers: int = 1):
        from autodp_eval import EvalConfig

        overrides = dict(overrides or {})
        overrides.setdefault("feedback_examples", 0)
        overrides.setdefault("workers", workers)  # cache keys and the resume identity leave it out
        self.preset = preset
        self.config = EvalConfig.preset(preset, **overrides)
        self.cache_dir = cache_dir
        self.log = log
        self.judge = judge  # overrides the config's judge (tests)
        # scratch: every evaluation starts from an empty cache (nothing reused, not even the
        # baseline arm): what ``--no-cache`` measures
        self.scratch = scratch
        self.verdict_replicates = verdict_replicates

    def identity(self) -> dict[str, Any]:
        return {"evaluator": self.name, "preset": self.preset, "config_key": self.config.cache_key()}

    def same_steps(self, rows: int) -> int:
        """Train every arm for the same number of optimizer steps: the preset's ``max_steps`` when it
        sets one, else the preset's epochs over ``rows`` rows (the unprocessed search data; at least
        ``min_steps``). A candidate that drops rows then sees its rows a little more often instead of
        getting fewer updates, so the comparison is about the data, not the step count (DESIGN: one
        protocol for every arm, same steps). Counting epochs over the data searched is what makes
        searching on a sample cheaper."""
        t = self.config.train
        steps = t.max_steps or max(1, t.min_steps, -(-t.epochs * rows // t.batch_size))
        self.config = self.config.with_overrides(train={"max_steps": steps, "epochs": 1000})
        return steps

    def evaluate(self, candidate: pl.DataFrame, baseline: pl.DataFrame, heldout: pl.DataFrame, *,
                 verdict: bool = False, replicates: int = 1) -> EvalOutcome:
        from autodp_eval import evaluate

        t = time.perf_counter()
        scratch = Path(tempfile.mkdtemp(prefix="autodp-eval-")) if self.scratch else None
        config = self.config
        if verdict:
            # fresh seeds: the search's own arms (seed block 0) picked this candidate; choosing the best of
            # many noisy scores inflates it, so the verdict trains everything anew, with its placebo
            config = config.with_overrides(train={"seed": config.train.seed + VERDICT_SEED_BLOCK})
            replicates = self.verdict_replicates
        try:
            r = evaluate(eval_frame(candidate), eval_frame(baseline), eval_frame(heldout), config,
                         cache_dir=scratch or self.cache_dir, log=self.log, judge=self.judge,
                         replicates=replicates, placebo=verdict)
        except Exception as e:  # noqa: BLE001 - a candidate that cannot be evaluated is a failed candidate
            return EvalOutcome(None, None, None, error=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - t)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        trained = sum(a.trained_now for x in r.replicate_results for a in x.arms.values())
        placebo = None
        if r.placebo is not None:
            pl_ = r.placebo

            def iv(c):
                return [c.win.estimate, c.win.low, c.win.high]

            placebo = {"statement": pl_.statement, "beats_placebo": pl_.beats_placebo, "dropped": pl_.dropped,
                       "kind": pl_.kind, "band": iv(pl_.band), "vs_placebo": iv(pl_.candidate_vs_placebo)}
        return EvalOutcome(
            r.win_rate, r.ci_low, r.ci_high, r.n, r.wins, r.ties, r.losses, r.failures,
            r.candidate_heldout_loss, r.baseline_heldout_loss, time.perf_counter() - t, trained, r.from_cache,
            r.candidate.n_train, dict(r.timings), replicates=r.replicates, placebo=placebo,
        )

    def train_ahead(self, candidates: list[pl.DataFrame], baseline: pl.DataFrame, heldout: pl.DataFrame,
                    replicates: int = 1) -> list[int]:
        """Train the arms that evaluating each candidate (``replicates`` replicates) will need, ``workers``
        at a time across candidates: one evaluation has a single arm to train (the baseline's are
        shared), so alone it keeps one core busy. The arms land in the memo, where ``evaluate`` finds
        them. Returns the arms trained here per candidate (a shared one counts for the first), so the
        loop can journal every fine-tune with the candidate it was for. With one worker, or nothing to
        share out, nothing is trained here."""
        if self.config.workers <= 1 or self.scratch or len(candidates) < 2:
            return [0] * len(candidates)
        return self._train_units([(eval_frame(c), r) for c in candidates for r in range(replicates)],
                                 eval_frame(baseline), eval_frame(heldout), per=replicates)

    def _train_units(self, wanted: list[tuple[pl.DataFrame, int]], base: pl.DataFrame, held: pl.DataFrame,
                     per: int = 1, cache: Path | None = None) -> list[int]:
        """Train replicate r's arms (candidate and baseline) of each (candidate, r) in ``wanted`` that are
        not in the memo, ``workers`` at a time; the count per group of ``per`` consecutive entries."""
        from autodp_eval import EvalError, Evaluation, fingerprint_rows, run_in_processes

        units: dict[tuple[str, int], tuple[Any, ...]] = {}
        owner: list[int] = [0] * (len(wanted) // per)
        for i, (cand, r) in enumerate(wanted):
            try:
                ev = Evaluation(cand, base, held, self.config, cache or self.cache_dir, judge=self.judge, placebo=False)
            except EvalError:  # e.g. nothing left once the held-out questions are removed: its own evaluation
                continue  # reports that as the candidate's failure
            for name, rr in ev.pending(r + 1):
                rows, cfg = ev.rows(name, rr), ev.arm_config(name, rr)
                key = (fingerprint_rows(rows), cfg.train.seed)
                if rr == r and key not in units:
                    units[key] = (rows, cfg, str(ev.cache), ev.base_train)
                    owner[i // per] += 1
        if len(units) > 1:
            run_in_processes(_train_unit, list(units.values()), self.config.workers)
        return owner if len(units) > 1 else [0] * len(owner)

    def noise_band(self, baseline: pl.DataFrame, heldout: pl.DataFrame, fractions: tuple[float, ...],
                   replicates: int, seed: int = 0) -> dict[str, Any]:
        """Placebo arms against ``baseline``: for each drop fraction and replicate r, the baseline minus
        that share of its rows drawn at random afresh per replicate, trained with replicate r's paired
        seed (so the baseline arms are the ones racing uses). Returns the per-fraction win rates with
        their intervals over replicates (``racing.NoiseBand.from_points`` reads it)."""
        from autodp_eval import Evaluation, replicate_interval

        t = time.perf_counter()
        base, held = eval_frame(baseline), eval_frame(heldout)
        scratch = Path(tempfile.mkdtemp(prefix="autodp-band-")) if self.scratch else None
        points, trained = [], 0
        drops = {(f, r): base.filter(pl.Series(_kept_mask(base.height, int(round(f * base.height)), f"band:{seed}:{f}:{r}")))
                 for f in fractions for r in range(replicates)}
        try:
            if self.config.workers > 1:  # every arm of the band at once, ``workers`` at a time
                trained += sum(self._train_units([(d, r) for (_f, r), d in drops.items()], base, held, cache=scratch))
            for f in fractions:
                dropped = int(round(f * base.height))
                table = []
                for r in range(replicates):
                    placebo = drops[(f, r)]
                    ev = Evaluation(placebo, base, held, self.config, scratch or self.cache_dir, judge=self.judge,
                                    log=self.log, placebo=False)
                    rep = ev.replicate(r)
                    trained += sum(a.trained_now for a in rep.arms.values())
                    (cmp,) = rep.comparisons.values()  # placebo=False: the one pair, placebo against baseline
                    table.append([_POINTS.get(v.winner) for v in cmp.verdicts])
                iv = replicate_interval(table, level=self.config.ci_level, bounds=(0.0, 1.0))
                points.append({"fraction": f, "dropped": dropped, "per_replicate": iv.per_replicate,
                               "estimate": iv.estimate, "low": iv.low, "high": iv.high})
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        return {"points": points, "finetunes": trained, "seconds": time.perf_counter() - t,
                "level": self.config.ci_level}


class ScriptedEvaluator:
    """A deterministic stand-in for tests and benchmarks of the loop logic: the score is a function
    of the candidate data (by default: share of rows whose output has at least ``min_words`` words
    and no duplicate output, minus a penalty for dropping too much), optionally with a fixed delay
    per trained row to mimic fine-tuning cost.

    ``noise`` (a standard deviation) makes it a *replicated* evaluator, for tests of racing and the
    placebo rule without training: replicate r of a data set scores its scripted score plus a draw of
    training noise fixed by the data's hash and r, and every (data, replicate) unit -- the baseline's
    included -- counts as one fine-tune the first time it is asked for (``units``: that memo, to share
    between instances as autodp_eval's memo on disk is shared between runs)."""

    name = "scripted"

    def __init__(self, score_fn=None, seconds_per_row: float = 0.0, memo: bool = True, noise: float | None = None,
                 units: set[tuple[str, int]] | None = None):
        self.score_fn = score_fn or default_scripted_score
        self.seconds_per_row = seconds_per_row
        self.memo = memo
        self.noise = noise
        self.replicated = noise is not None
        self._seen: dict[str, EvalOutcome] = {}
        self.units: set[tuple[str, int]] = set() if units is None else units  # (data key, replicate) trained
        self.calls = 0
        self.trained = 0

    def identity(self) -> dict[str, Any]:
        return {"evaluator": self.name} if self.noise is None else {"evaluator": self.name, "noise": self.noise}

    def evaluate(self, candidate: pl.DataFrame, baseline: pl.DataFrame, heldout: pl.DataFrame, *,
                 verdict: bool = False, replicates: int = 1) -> EvalOutcome:
        self.calls += 1
        cand = eval_frame(candidate)
        if self.noise is not None and not verdict and cand.height:
            return self._replicated(cand, eval_frame(baseline), heldout, replicates)
        key = _key(cand)
        if self.memo and key in self._seen:
            o = self._seen[key]
            return EvalOutcome(**{**asdict(o), "finetunes": 0, "from_cache": True, "seconds": 0.0})
        if cand.height == 0:
            return EvalOutcome(None, None, None, error="EvalInputError: candidate training data is empty")
        t = time.perf_counter()
        if self.seconds_per_row:
            time.sleep(self.seconds_per_row * cand.height)
        self.trained += 1
        wr = float(self.score_fn(cand, eval_frame(baseline)))
        wr = min(1.0, max(0.0, wr))
        n = max(heldout.height, 1)
        wins = int(round(wr * n))
        o = EvalOutcome(wr, max(0.0, wr - 0.08), min(1.0, wr + 0.08), n, wins, 0, n - wins, 0,
                        1.0 - wr, 0.5, time.perf_counter() - t, 1, False, cand.height)
        if self.memo:
            self._seen[key] = o
        return o

    # -- the replicated mode (``noise``)

    def _draw(self, key: str, r: int) -> float:
        """Replicate r's training noise for the data ``key``: a normal draw fixed by both."""
        h = hashlib.sha256(f"{key}:{r}".encode()).digest()
        u1 = (int.from_bytes(h[:8], "little") + 1) / 2.0**64
        u2 = int.from_bytes(h[8:16], "little") / 2.0**64
        return float(self.noise or 0.0) * math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def _train(self, units: list[tuple[str, int]]) -> int:
        """Count the (data, replicate) units not trained yet (all of them without memo)."""
        new = [u for u in dict.fromkeys(units) if not self.memo or u not in self.units]
        self.units.update(new)
        self.trained += len(new)
        return len(new)

    def _scores(self, frame: pl.DataFrame, base: pl.DataFrame, replicates: int) -> list[float]:
        key, wr = _key(frame), float(self.score_fn(frame, base))
        if key == _key(base):  # the same data with the same seeds: the same model, 0.5 exactly
            return [0.5] * replicates
        return [min(1.0, max(0.0, wr + self._draw(key, r))) for r in range(replicates)]

    def _replicated(self, cand: pl.DataFrame, base: pl.DataFrame, heldout: pl.DataFrame, replicates: int) -> EvalOutcome:
        t = time.perf_counter()
        trained = self._train([(k, r) for k in (_key(base), _key(cand)) for r in range(replicates)])
        if self.seconds_per_row:
            time.sleep(self.seconds_per_row * cand.height * trained)
        ws = self._scores(cand, base, replicates)
        wr, lo, hi = _mean_interval(ws)
        n = max(heldout.height, 1) * replicates
        wins = int(round(wr * n))
        return EvalOutcome(wr, lo, hi, n, wins, 0, n - wins, 0, 1.0 - wr, 0.5, time.perf_counter() - t, trained,
                           trained == 0, cand.height, replicates=replicates)

    def noise_band(self, baseline: pl.DataFrame, heldout: pl.DataFrame, fractions: tuple[float, ...],
                   replicates: int, seed: int = 0) -> dict[str, Any]:
        """``AutodpEvaluator.noise_band`` with scripted scores (requires ``noise``)."""
        base = eval_frame(baseline)
        points, trained = [], 0
        for f in fractions:
            dropped = int(round(f * base.height))
            ws = []
            for r in range(replicates):
                placebo = base.filter(pl.Series(_kept_mask(base.height, dropped, f"band:{seed}:{f}:{r}")))
                trained += self._train([(_key(base), r), (_key(placebo), r)])
                ws.append(self._scores(placebo, base, r + 1)[r])
            est, lo, hi = _mean_interval(ws)
            points.append({"fraction": f, "dropped": dropped, "per_replicate": ws, "estimate": est, "low": lo, "high": hi})
        return {"points": points, "finetunes": trained, "seconds": 0.0, "level": 0.95}


def _key(frame: pl.DataFrame) -> str:
    return hashlib.sha256(pl.DataFrame(frame).write_ipc(None).getvalue()).hexdigest() if frame.height else "empty"


def _mean_interval(ws: list[float]) -> tuple[float, float, float]:
    """The mean of per-replicate win rates with a t interval (one replicate: +-0.08, questions only)."""
    m = sum(ws) / len(ws)
    if len(ws) < 2:
        return m, max(0.0, m - 0.08), min(1.0, m + 0.08)
    from autodp_eval import t_quantile

    sd = math.sqrt(sum((w - m) ** 2 for w in ws) / (len(ws) - 1))
    hw = t_quantile(0.975, len(ws) - 1) * sd / math.sqrt(len(ws))
    return m, max(0.0, m - hw), min(1.0, m + hw)


def default_scripted_score(cand: pl.DataFrame, base: pl.DataFrame) -> float:
    if cand.height == 0:
        return 0.0
    words = cand["output"].fill_null("").str.split(" ").list.len()
    good = (words >= 8).mean()
    dup = 1.0 - cand["output"].n_unique() / cand.height
    keep = cand.height / max(base.height, 1)
    base_words = base["output"].fill_null("").str.split(" ").list.len()
    base_good = (base_words >= 8).mean()
    base_dup = 1.0 - base["output"].n_unique() / max(base.height, 1)
    gain = (good - base_good) - (dup - base_dup) - 0.5 * max(0.0, 0.6 - keep)
    return round(0.5 + gain, 6)
