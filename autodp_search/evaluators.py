"""The evaluator seen by the loop: one protocol, the real ``autodp_eval`` behind it, and a scripted
one for tests and benchmarks of the loop logic.

``Evaluator.evaluate(candidate, baseline, heldout)`` returns an ``EvalOutcome`` whose ``feedback``
is *standardised* by the privacy boundary: counts and losses only. The judge's rationales (which
could quote answers learned from the data) never leave the evaluator's result; the loop forwards
``feedback`` to the agent.
"""

from __future__ import annotations

import hashlib
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
        """``verdict``: the final verdict -- replicated, with placebo arms, on seeds the search never used."""

    def identity(self) -> dict[str, Any]:
        """What changes scores (goes into the journal's identity: resume refuses a different one)."""


def eval_frame(frame: pl.DataFrame) -> pl.DataFrame:
    cols = [c for c in EVAL_COLUMNS if c in frame.columns]
    return frame.select(cols)


class AutodpEvaluator:
    """``autodp_eval.evaluate`` with a preset (default "quick": the offline default of the search)."""

    name = "autodp_eval"

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
                 verdict: bool = False) -> EvalOutcome:
        from autodp_eval import evaluate

        t = time.perf_counter()
        scratch = Path(tempfile.mkdtemp(prefix="autodp-eval-")) if self.scratch else None
        config, replicates = self.config, 1
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


class ScriptedEvaluator:
    """A deterministic stand-in for tests and benchmarks of the loop logic: the score is a function
    of the candidate data (by default: share of rows whose output has at least ``min_words`` words
    and no duplicate output, minus a penalty for dropping too much), optionally with a fixed delay
    per trained row to mimic fine-tuning cost."""

    name = "scripted"

    def __init__(self, score_fn=None, seconds_per_row: float = 0.0, memo: bool = True):
        self.score_fn = score_fn or default_scripted_score
        self.seconds_per_row = seconds_per_row
        self.memo = memo
        self._seen: dict[str, EvalOutcome] = {}
        self.calls = 0
        self.trained = 0

    def identity(self) -> dict[str, Any]:
        return {"evaluator": self.name}

    def evaluate(self, candidate: pl.DataFrame, baseline: pl.DataFrame, heldout: pl.DataFrame, *,
                 verdict: bool = False) -> EvalOutcome:
        self.calls += 1
        cand = eval_frame(candidate)
        key = hashlib.sha256(pl.DataFrame(cand).write_ipc(None).getvalue()).hexdigest() if cand.height else "empty"
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
