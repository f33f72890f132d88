"""autodp_search: find a data-processing strategy automatically, without anyone reading the data.

    >>> from autodp_search import SearchConfig, run_search
    >>> result = run_search(SearchConfig(data="examples/medquad_sample.jsonl"))   # doctest: +SKIP

The loop (``loop``) with its configuration (``config``), data side (``data``), execution
(``execution``), evaluators (``evaluators``) and console (``console``); its agents (``agents``: offline evolutionary proposer, random search, LLM and
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
from .boundary import standard_feedback
from .budget import Budget, BudgetState, Estimate, estimate
from .config import SearchConfig
from .data import TARGET_COLUMN
from .errors import BackendFailure, NoValidStrategy, SettingsError
from .evaluators import AutodpEvaluator, EvalOutcome, Evaluator, ScriptedEvaluator
from .journal import Journal, JournalMismatch
from .loop import Search, SearchResult, run_search

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
    "SettingsError",
    "StepCount",
    "TARGET_COLUMN",
    "estimate",
    "make_agent",
    "run_search",
    "standard_feedback",
]
