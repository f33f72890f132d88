"""Agents that propose strategies: the offline evolutionary proposer, random search, LLM agents."""

from .base import (
    Agent,
    AgentContext,
    AgentFailure,
    CandidateRecord,
    CandidateView,
    OpInfo,
    Proposal,
    RepairRequest,
    StepCount,
)
from .llm import AutoMLAgent, LLMAgent, LLMConfig, parse_reply
from .offline import EvolutionaryAgent, RandomAgent

__all__ = [
    "Agent",
    "AgentContext",
    "AgentFailure",
    "AutoMLAgent",
    "CandidateRecord",
    "CandidateView",
    "EvolutionaryAgent",
    "LLMAgent",
    "LLMConfig",
    "OpInfo",
    "Proposal",
    "RandomAgent",
    "RepairRequest",
    "StepCount",
    "make_agent",
    "parse_reply",
]


def make_agent(kind: str, seed: int = 0, llm: LLMConfig | None = None, **kw) -> Agent:
    """``offline`` (default), ``random``, ``llm`` or ``automl``."""
    if kind == "offline":
        return EvolutionaryAgent(seed=seed, **kw)
    if kind == "random":
        return RandomAgent(seed=seed, **kw)
    if kind == "llm":
        return LLMAgent(llm)
    if kind == "automl":
        return AutoMLAgent(llm)
    raise ValueError(f"unknown agent {kind!r}; valid agents: automl, llm, offline, random")
