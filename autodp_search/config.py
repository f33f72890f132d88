"""What a search is asked to do (``SearchConfig``) and which of it must match to ``--resume``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .agents import LLMConfig
from .budget import Budget
from .prompts import DEFAULT_TASK

__all__ = ["SEARCH_VERSION", "SearchConfig"]

SEARCH_VERSION = 4  # part of the journal's identity: a journal of another version is not resumed (3: racing;
# 4: the journal's "finetunes" are the budget's nominal count, "trained" the arms trained)
# evaluation settings that schedule the work without changing a result (EvalConfig.cache_key leaves them
# out too): a search started with --eval-workers 2 resumes with 1, on a machine with other cores
SCHEDULING_SETTINGS = frozenset({"workers", "threads"})


@dataclass
class SearchConfig:
    data: str
    out_dir: str = ""
    seed: int = 0
    agent: str = "offline"  # offline | random | llm | automl
    llm: LLMConfig | None = None
    k: int = 4
    k_min: int = 1
    k_max: int = 8
    refills: int = 1  # extra proposals per round for slots whose output repeated an earlier candidate's
    budget: Budget = field(default_factory=Budget)
    sampling: bool = True
    sample_fraction: float = 0.2
    target_selection: bool = True
    target_judge: str = "weak"  # what labels the target selector: "weak" or "offline" (docs/selector.md)
    cache: bool = True
    cache_dir: str | None = None  # executor + evaluator cache (default: <out>/.cache)
    eval_preset: str = "quick"
    eval_overrides: dict[str, Any] = field(default_factory=dict)
    heldout_n: int = 100  # questions held out for the search's comparisons
    final_heldout_n: int = 100  # other questions, for the final evaluation only
    profile_k: int = 20
    resume: bool = False
    final: bool = True
    eval_workers: int = 1  # arms trained at once, one process each (a machine setting: not in the identity)
    verdict_replicates: int = 3  # the final verdict: paired replicates on fresh seeds, each with a placebo arm
    # racing (autodp_search.racing): at most this many paired replicates per candidate in the rounds
    # (1: no racing), and at most ``race_finetunes`` fine-tunes per round spent on them (a budget)
    race_replicates: int = 3
    race_finetunes: int = 4
    # the noise band, measured once: placebo arms at these drop fractions of the search data, this many
    # replicates each (0: no band, no placebo rule)
    noise_replicates: int = 3
    noise_fractions: tuple[float, ...] = (0.1, 0.3)
    task: str = DEFAULT_TASK
    strategies_dir: str | None = "auto"
    quiet: bool = False
    min_rows: int = 10  # a candidate keeping fewer rows is not evaluated
    same_steps: bool = True  # every arm trains for the same number of steps (see AutodpEvaluator.same_steps)
    # collapse whitespace runs in held-out questions and references; off: the baseline trains on the raw
    # text, and tidied references scored a whitespace-normalising strategy +0.085 above it (issue 11)
    tidy_heldout: bool = False
    max_steps: int = 30  # an agent's strategy with more steps (where-blocks' inner steps included) is invalid
    max_repair_chars: int = 8_000  # an invalid proposal longer than this goes back for repair clipped
    preflight: bool = True  # one request to the agent's model before anything is spent (LLM agents)

    def identity(self) -> dict[str, Any]:
        """What must match for ``--resume`` (budgets may change between sessions)."""
        return {
            "search_version": SEARCH_VERSION,
            "seed": self.seed,
            "agent": self.agent,
            "llm_model": self.llm.model if self.llm else None,
            "k": [self.k, self.k_min, self.k_max, self.refills],
            "sampling": [self.sampling, self.sample_fraction if self.sampling else None],
            # a pair only off the default, so journals written before the setting existed still resume
            "target_selection": self.target_selection if self.target_judge == "weak" else [self.target_selection, self.target_judge],
            "heldout": [self.heldout_n, self.final_heldout_n, self.verdict_replicates],
            "race": [self.race_replicates, self.noise_replicates, list(self.noise_fractions) if self.noise_replicates else None],
            "profile_k": self.profile_k,
            "eval": [self.eval_preset, {k: v for k, v in self.eval_overrides.items() if k not in SCHEDULING_SETTINGS},
                     self.same_steps, self.tidy_heldout],
        }

    def to_json(self) -> dict[str, Any]:
        """The whole configuration as plain JSON (the journal's record of the run)."""
        d = asdict(self)
        if self.llm is not None:
            d["llm"] = asdict(self.llm)
        return d
