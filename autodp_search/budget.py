"""Budgets: when the search stops, and what it will cost before it starts.

A search stops at the first of: ``max_rounds`` rounds, ``max_finetunes`` fine-tune runs (the
fine-tunes the search's decisions ask for -- the baseline, the noise band, each candidate's first
replicate, each race step -- counted whether the evaluator's memo holds the arm or not, so a
resumed search or a warm memo takes the decisions a cold run takes; ``BudgetState.trained`` counts
the arms actually trained), ``max_wall_s`` seconds of
wall time (summed over resumed sessions), ``patience`` rounds without an improvement of the best
score, or a STOP file appearing. Repairs of invalid strategies count against ``max_agent_calls``.

``estimate`` gives the pre-flight estimate printed before the first round.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autodp_backends.records import fields_dict

__all__ = ["Budget", "BudgetState", "Estimate", "estimate"]


@dataclass
class Budget:
    max_rounds: int = 3
    max_finetunes: int | None = None
    max_wall_s: float | None = None
    patience: int | None = None  # rounds without improvement
    max_agent_calls: int | None = None  # proposals + repairs
    max_repairs: int = 3  # per proposal
    stop_file: str | None = None
    min_improvement: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BudgetState:
    budget: Budget
    rounds_done: int = 0
    finetunes: int = 0  # fine-tunes asked for (the budget): memo hits count, so decisions do not depend on the memo
    trained: int = 0  # arms actually trained (memo hits: 0), for the report
    agent_calls: int = 0
    repairs: int = 0
    evaluations: int = 0
    wall_before_s: float = 0.0  # wall time of earlier (resumed) sessions
    rounds_since_improvement: int = 0
    best_delta: float | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def wall_s(self) -> float:
        return self.wall_before_s + (time.monotonic() - self.started)

    def note_round(self, best_delta_of_round: float | None) -> None:
        self.rounds_done += 1
        b = self.budget
        if best_delta_of_round is not None and (
            self.best_delta is None or best_delta_of_round > self.best_delta + b.min_improvement
        ):
            self.best_delta = best_delta_of_round
            self.rounds_since_improvement = 0
        else:
            self.rounds_since_improvement += 1

    def _limits_reached(self) -> Iterator[tuple[bool, str]]:
        """(hard, why) for each limit reached, in the order the reasons are given. The hard limits
        (STOP file, fine-tunes, wall time) are also checked between candidates."""
        b = self.budget
        if b.stop_file and Path(b.stop_file).exists():
            yield True, f"stop file {b.stop_file} found"
        if self.rounds_done >= b.max_rounds:
            yield False, f"{b.max_rounds} rounds done"
        if b.max_finetunes is not None and self.finetunes >= b.max_finetunes:
            yield True, f"fine-tune budget spent ({self.finetunes}/{b.max_finetunes})"
        if b.max_wall_s is not None and self.wall_s >= b.max_wall_s:
            yield True, f"time budget spent ({self.wall_s:.0f}/{b.max_wall_s:.0f} s)"
        if b.patience is not None and self.rounds_since_improvement >= b.patience:
            yield False, f"no improvement for {self.rounds_since_improvement} rounds"
        if b.max_agent_calls is not None and self.agent_calls >= b.max_agent_calls:
            yield False, f"agent-call budget spent ({self.agent_calls}/{b.max_agent_calls})"

    def affords(self, finetunes: int) -> bool:
        """Whether ``finetunes`` more fit in the fine-tune budget."""
        return self.budget.max_finetunes is None or self.finetunes + finetunes <= self.budget.max_finetunes

    def stop_reason(self) -> str | None:
        """Why the search must stop before the next round, or None."""
        return next((why for _, why in self._limits_reached()), None)

    def candidate_stop(self) -> str | None:
        """Checked between candidates: only the hard limits (STOP file, fine-tunes, wall time)."""
        return next((why for hard, why in self._limits_reached() if hard), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            **fields_dict(self, "rounds_done", "finetunes", "trained", "agent_calls", "repairs", "evaluations"),
            "wall_s": round(self.wall_s, 3),
            **fields_dict(self, "rounds_since_improvement", "best_delta"),
        }


@dataclass
class Estimate:
    finetunes: int  # at most: every round proposes k new outputs and every race spends its budget
    evaluations: int
    seconds: float  # expected for ``finetunes``: ``workers`` arms at once where the search trains them together
    search_rows: int
    full_rows: int
    basis: str
    seconds_max: float = 0.0  # the same fine-tunes one after another
    workers: int = 1

    def text(self) -> str:
        def mins(x: float) -> str:
            m, s = divmod(int(round(x)), 60)
            return f"{m} min {s:02d} s"

        when = f"with {self.workers} workers, " if self.workers > 1 else ""
        return (f"pre-flight estimate: up to {self.evaluations} evaluations, {self.finetunes} fine-tune runs "
                f"(fewer when candidates repeat earlier outputs or a race separates early), about "
                f"{mins(self.seconds)} {when}at most {mins(self.seconds_max)} one after another "
                f"({self.search_rows} rows searched, {self.full_rows} rows in the final run; {self.basis})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(budget: Budget, k: int, search_rows: int, full_rows: int, seconds_per_eval: float,
             final: bool = True, basis: str = "", same_steps: bool = False, *, race_finetunes: int = 0,
             band_arms: int = 0, verdict_replicates: int = 1, workers: int = 1) -> Estimate:
    """Cost of the whole search if every round runs, in fine-tunes (as the budget counts them: asked
    for, memoised or not) and seconds: the baseline, the noise band's ``band_arms`` (its placebo arms
    and the baseline's extra replicates), per round k first replicates and at most ``race_finetunes``
    racing ones, and the final verdict's three arms (candidate, unprocessed data, placebo) per
    replicate on the full data. ``seconds_per_eval`` is one arm's evaluation on ``search_rows`` rows;
    a verdict arm scales with the row count unless every arm trains the same number of steps
    (``same_steps``). The expected time trains ``workers`` arms at once where the search does (the
    band, a round's first replicates, the verdict); race steps train one at a time, each decided on
    the one before. The time is that of the maximum count: the main job's racing spent its budget
    every round, and later rounds' repeats (scored without training) are what makes it shorter."""
    rounds = budget.max_rounds
    evals = rounds * k
    finetunes = 1 + band_arms + rounds * (k + race_finetunes)
    if budget.max_finetunes is not None:
        finetunes = min(finetunes, budget.max_finetunes)
        evals = min(evals, max(budget.max_finetunes - 1 - band_arms, 0))
    w = max(workers, 1)
    left = finetunes - 1  # after the baseline, in the order the search spends them

    def take(n: int) -> int:
        nonlocal left
        n = min(n, left)
        left -= n
        return n

    slots = -(-take(band_arms) // w)
    for _ in range(rounds):
        slots += -(-take(k) // w)
        slots += take(race_finetunes)
    secs, secs_max = seconds_per_eval * slots, seconds_per_eval * (finetunes - 1)
    if final:
        arms = 3 * verdict_replicates
        finetunes += arms
        evals += 1
        per_arm = seconds_per_eval * (1.0 if same_steps else max(full_rows, 1) / max(search_rows, 1))
        secs += -(-arms // w) * per_arm
        secs_max += arms * per_arm
    if budget.max_wall_s is not None:
        secs, secs_max = min(secs, budget.max_wall_s), min(secs_max, budget.max_wall_s)
    return Estimate(finetunes, evals, secs, search_rows, full_rows, basis, secs_max, w)
