"""The agent protocol: what an agent is given (aggregate information only) and what it returns.

An agent never receives a data frame, a row or a file path: ``AgentContext`` is built by the loop
through the privacy boundary (``autodp_search.boundary``) from aggregates (the profile text, the operator catalog, signal quantiles, the history of earlier
candidates with their scores, per-step row counts and drop-reason *codes*, standardised judge
feedback, and lint diagnostics of the agent's own text). Prompts are built from the context
alone, so what an agent can send to an LLM is bounded by what the context holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Agent",
    "AgentFailure",
    "AgentContext",
    "CandidateRecord",
    "CandidateView",
    "StepView",
    "rank_key",
    "OpInfo",
    "Proposal",
    "RepairRequest",
    "StepCount",
]


class AgentFailure(RuntimeError):
    """The agent could not answer: its model backend failed after its bounded retries, or replied
    without a strategy. ``kind`` is the backend's failure kind (``timeout``, ``connection``,
    ``server``, ``client``, ``malformed``, ``config``, ``budget``...). The search ends cleanly."""

    def __init__(self, message: str, kind: str = "internal"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class OpInfo:
    """One operator of the catalog, as the agent sees it (generated from the registry)."""

    name: str
    kind: str  # signal / map / filter / global / generate
    family: str
    cost: str  # vectorised / model / llm
    signature: str
    summary: str
    args: tuple[dict[str, Any], ...] = ()  # {"name", "type", "column", "variadic"}
    params: tuple[dict[str, Any], ...] = ()  # {"name", "type", "default", "ge", "le", "gt", "lt", "choices"}
    returns: str = ""


@dataclass(frozen=True, slots=True)
class StepCount:
    """Rows in and out of one step of a candidate, with counts per drop-reason code."""

    path: str  # "3" or "5.2" inside a where-block
    step: str  # the step's own text (written by the agent, never data)
    rows_in: int
    rows_out: int
    reasons: tuple[tuple[str, int], ...] = ()  # (reason code, rows dropped)

    @property
    def dropped(self) -> int:
        return max(self.rows_in - self.rows_out, 0)


@dataclass(frozen=True, slots=True)
class CandidateRecord:
    """One evaluated (or rejected) candidate of an earlier round."""

    round: int
    cid: str  # e.g. "r2c3"
    dp_text: str
    status: str  # "ok", "invalid", "duplicate", "failed"
    key: str = ""  # canonical key (sha256 of the canonical IR)
    delta: float | None = None  # score minus r0 (win rate minus 0.5)
    win_rate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    steps: tuple[StepCount, ...] = ()
    feedback: str = ""  # standardised, aggregate (counts), never a judge's quote
    duplicate_of: str | None = None
    errors: tuple[str, ...] = ()  # diagnostic codes/messages for invalid candidates
    origin: str = ""  # how the agent made it ("seed", "mutate:threshold", "llm", ...)
    # racing and the placebo rule (autodp_search.racing): the score is the mean over ``replicates``
    # paired replicates and [ci_low, ci_high] the interval the search decides on; ``placebo*``: what
    # dropping as many rows at random scores (the noise band at the candidate's coarsened size)
    replicates: int = 1
    question_halfwidth: float | None = None  # the first replicate's interval over questions (half its width)
    placebo: float | None = None
    placebo_low: float | None = None
    placebo_high: float | None = None
    beats_placebo: bool | None = None  # True/False when separated from the placebo, else None
    improvement: bool | None = None  # interval above 0.5 and beats its placebo (None: no band)


@dataclass(frozen=True, slots=True)
class StepView:
    """A step's row counts as an agent sees them: coarsened by the privacy boundary (``<20``, ``~140``)."""

    path: str
    step: str
    rows_in: str
    rows_out: str
    dropped: str
    reasons: tuple[tuple[str, str], ...] = ()  # (reason code, coarsened rows dropped)


@dataclass(frozen=True, slots=True)
class CandidateView:
    """A candidate as an agent sees it. Built by ``autodp_search.boundary.candidate_view`` only:
    counts coarsened, equality of outputs not announced."""

    round: int
    cid: str
    dp_text: str
    status: str  # "ok", "invalid", "duplicate" (same strategy after canonicalisation), "failed"
    key: str = ""
    delta: float | None = None
    win_rate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    rows_in: str | None = None
    rows_out: str | None = None
    steps: tuple[StepView, ...] = ()
    feedback: str = ""
    duplicate_of: str | None = None
    errors: tuple[str, ...] = ()
    origin: str = ""
    replicates: int = 1
    placebo: float | None = None
    placebo_low: float | None = None
    placebo_high: float | None = None
    beats_placebo: bool | None = None
    improvement: bool | None = None


def rank_key(c) -> tuple:
    """How the search ranks scored candidates, best first: higher score, then earlier round, then cid.
    The search's best, the agents' ``best()`` and the prompts' "best so far" all use it."""
    return (-c.delta, c.round, c.cid)


@dataclass(frozen=True, slots=True)
class RepairRequest:
    """A proposal that failed to lint, with its diagnostics (``Diagnostic.to_dict()``)."""

    dp_text: str
    diagnostics: tuple[dict[str, Any], ...]
    attempt: int  # 1-based repair attempt


@dataclass(frozen=True, slots=True)
class AgentContext:
    """Everything an agent may know. Aggregate only: no rows, no frames, no paths."""

    task: str
    round: int  # 1-based round about to be proposed
    k: int  # suggested number of proposals
    k_min: int
    k_max: int
    columns: tuple[tuple[str, str], ...]  # name, type
    profile_text: str
    catalog: tuple[OpInfo, ...]
    signal_stats: tuple[tuple[str, str, tuple[tuple[str, float], ...]], ...] = ()  # (signal, column, quantiles)
    history: tuple[CandidateView, ...] = ()
    seed: int = 0
    target_column: str | None = None  # the processing-target score column ("lowq"), when present
    rounds_left: int | None = None
    notes: tuple[str, ...] = ()  # short messages from the loop ("r2c1 equals r1c3 after canonicalisation")
    wave: int = 0  # 0: the round's first proposals; n > 0: its n-th refill (slots whose output repeated)
    privacy_k: int = 20  # the boundary's k-anonymity floor (counts below it read "<k")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def best(self, n: int = 1) -> list[CandidateView]:
        ok = [c for c in self.history if c.status == "ok" and c.delta is not None]
        ok.sort(key=rank_key)
        return ok[:n]

    def quantiles(self, signal: str, column: str) -> dict[str, float]:
        for s, c, q in self.signal_stats:
            if s == signal and c == column:
                return dict(q)
        return {}


@dataclass(frozen=True, slots=True)
class Proposal:
    dp_text: str
    rationale: str = ""
    origin: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Agent(Protocol):
    """Proposes strategies. ``name`` identifies it in the journal and report."""

    name: str

    def propose(self, context: AgentContext) -> list[Proposal]:
        """``context.k`` proposals (between ``k_min`` and ``k_max``; the loop clips)."""

    def repair(self, context: AgentContext, request: RepairRequest) -> Proposal | None:
        """A corrected version of a proposal that failed to lint, or None to give it up."""
