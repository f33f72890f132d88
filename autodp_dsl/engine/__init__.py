"""The execution engine: node keys, prefix-tree batches, the persistent cache, row accounting.

    from autodp_dsl.engine import Executor
    ex = Executor(cache_dir=".autodp-cache")
    result = ex.run(strategy, "data.jsonl")          # RunResult
    results = ex.run_batch(candidates, loaded)       # one prefix tree, shared nodes run once
    ex.explain(candidates, "data.jsonl")             # keys, shared nodes, policy, hit map

Modules: ``keys`` (hash chain, commutation-aware canonical order), ``plan`` (what both executors
share: plans, step kinds, drop recording), ``executor`` (tree, waves, deltas, accounting),
``streaming`` (out of core), ``cache`` (content-addressed store), ``policy`` (what is persisted),
``report`` (result and explanation types), ``render`` (rich tables for the CLI).
"""

from __future__ import annotations

from .cache import (
    DEFAULT_MAX_BYTES,
    CacheStore,
    GcReport,
    NoCache,
    NotACache,
    VerifyReport,
    default_cache_dir,
    parse_size,
)
from .executor import Executor, Plan, plan_strategy, required_columns, strategy_keys
from .keys import canonical_order, node_key, root_key, stat_key, step_payload
from .policy import NodeFacts, Policy
from .report import Accounting, ExplainNode, Explanation, RunResult, StatRecord, StepReport

__all__ = [
    "Executor",
    "RunResult",
    "Accounting",
    "StepReport",
    "StatRecord",
    "Explanation",
    "ExplainNode",
    "Policy",
    "NodeFacts",
    "CacheStore",
    "NoCache",
    "NotACache",
    "VerifyReport",
    "GcReport",
    "DEFAULT_MAX_BYTES",
    "default_cache_dir",
    "parse_size",
    "Plan",
    "plan_strategy",
    "strategy_keys",
    "required_columns",
    "canonical_order",
    "node_key",
    "root_key",
    "stat_key",
    "step_payload",
]
