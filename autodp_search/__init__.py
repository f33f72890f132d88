"""autodp_search: find a data-processing strategy automatically, without anyone reading the data.

    >>> from autodp_search import SearchConfig, run_search
    >>> result = run_search(SearchConfig(data="examples/medquad_sample.jsonl"))   # doctest: +SKIP

The loop (``loop``), its agents (``agents``: offline evolutionary proposer, random search, LLM and
AutoML-style LLM agents), prompts built from aggregates only (``prompts``), the journal for
``--resume`` (``journal``), budgets (``budget``) and the report (``report``). The data side
(``profile``, ``sampling``, ``targets``, ``signals``) is imported from its own modules.
"""

from __future__ import annotations

from .agents import (
    Agent,
    AgentContext,
    AutoMLAgent,
    CandidateRecord,
    EvolutionaryAgent,
    LLMAgent,
    LLMConfig,
    Proposal,
    RandomAgent,
    RepairRequest,
    StepCount,
    make_agent,
)
from .budget import Budget, BudgetState, Estimate, estimate
from .journal import Journal, JournalMismatch
from .loop import (
    TARGET_COLUMN,
    AutodpEvaluator,
    BackendFailure,
    EvalOutcome,
    Evaluator,
    NoValidStrategy,
    ScriptedEvaluator,
    Search,
    SearchConfig,
    SearchResult,
    run_search,
    standard_feedback,
)

__all__ = [
    "Agent",
    "AgentContext",
    "AutoMLAgent",
    "AutodpEvaluator",
    "BackendFailure",
    "Budget",
    "BudgetState",
    "CandidateRecord",
    "Estimate",
    "EvalOutcome",
    "Evaluator",
    "EvolutionaryAgent",
    "Journal",
    "JournalMismatch",
    "LLMAgent",
    "LLMConfig",
    "NoValidStrategy",
    "Proposal",
    "RandomAgent",
    "RepairRequest",
    "ScriptedEvaluator",
    "Search",
    "SearchConfig",
    "SearchResult",
    "StepCount",
    "TARGET_COLUMN",
    "estimate",
    "make_agent",
    "run_search",
    "standard_feedback",
]
