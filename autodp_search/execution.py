"""Running candidate strategies: a round's candidates go through the engine's cached executor as
one batch (shared prefixes computed once), and come back as ``CandidateRun``s whose per-step drop
reasons the privacy boundary has already reduced to codes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from autodp_dsl import ir
from autodp_dsl.engine import Executor
from autodp_dsl.io import Loaded
from autodp_dsl.ops import ROW_ID
from stdlib_ops.backends import services_from_env

from .agents import StepCount
from .boundary import step_counts

__all__ = ["CandidateRun", "run_strategies"]


@dataclass
class CandidateRun:
    frame: pl.DataFrame | None  # kept rows (user columns, __rid kept when available)
    steps: list[StepCount]
    rows_in: int
    rows_out: int
    seconds: float
    cache_hits: int = 0
    error: str | None = None


def _executor(cache_dir: Path | None, memo: bool) -> Executor:
    """The engine's executor; ``memo=False``: the operators' model services keep no memo either."""
    return Executor(cache_dir=cache_dir, services=None if memo else services_from_env(memo=False))


def run_strategies(strategies: list[ir.Strategy], frame: pl.DataFrame, fingerprint: str,
                   cache_dir: Path | None, memo: bool = True) -> list[CandidateRun]:
    """Run every strategy on ``frame`` as one batch through the engine's cached executor.

    ``cache_dir=None`` persists no node; ``memo=False`` also keeps model operators from reusing
    earlier calls (``--no-cache``: nothing is reused). A batch that fails is run again strategy by
    strategy, so one bad candidate does not sink the round: it alone comes back with ``error``."""
    try:
        return _run_batch(_executor(cache_dir, memo), strategies, frame, fingerprint)
    except Exception as e:  # noqa: BLE001 - isolate the failing candidate(s)
        if len(strategies) == 1:
            return [CandidateRun(None, [], frame.height, 0, 0.0, error=f"{type(e).__name__}: {e}")]
        return [run_strategies([s], frame, fingerprint, cache_dir, memo)[0] for s in strategies]


def _run_batch(ex: Executor, strategies: list[ir.Strategy], frame: pl.DataFrame, fingerprint: str) -> list[CandidateRun]:
    data = Loaded(frame=frame, quarantine=pl.DataFrame(schema={"rid": pl.UInt64, "line": pl.Int64, "reason": pl.String,
                                                                 "detail": pl.String, "raw": pl.String}),
                  fingerprint=fingerprint, rows_total=frame.height)
    t = time.perf_counter()
    results = ex.run_batch(list(strategies), data)
    secs = time.perf_counter() - t
    out = []
    for strategy, r in zip(strategies, results, strict=True):
        acc = r.accounting
        f = r.frame
        if ROW_ID not in f.columns and getattr(r, "ids", None) is not None:
            f = f.with_columns(pl.Series(ROW_ID, r.ids)).select([ROW_ID, *f.columns])
        out.append(CandidateRun(f, step_counts(strategy, acc.steps), acc.rows_in, acc.kept,
                                secs / max(len(results), 1), cache_hits=r.cache_hits))
    return out
