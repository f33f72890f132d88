"""Which nodes and statistics the executor persists to the cache.

Every node is *materialised* in memory while a batch runs (each shared node runs once); the policy
decides which results are also *persisted*, so the next round and the next run reuse them. What is
stored is always small: a filter's or global step's dropped row ids (a keep-mask), a map's changed
rows of the changed columns, a statistic's one column.

Rules, first match wins (``explain`` shows the rule per node):

1. global, generate, model and LLM steps: always (expensive, and results of dedup are reused).
2. nodes shared by several strategies of the batch: always.
3. the final node of a strategy: always (a re-run reads it instead of recomputing).
4. filters: always (the stored keep-mask is a few bytes per dropped row).
5. maps, assignments and where-blocks: when the delta is at most ``max_delta_fraction`` of the
   rows or the step took ``slow_seconds`` or more; otherwise recomputing is cheaper than storing.

Statistics (signal columns, MinHash signatures) are always persisted when ``statistics`` is on:
candidates that differ only in a threshold share them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Policy", "NodeFacts"]


@dataclass(frozen=True, slots=True)
class NodeFacts:
    kind: str  # map | filter | global | generate | assign | where
    cost: str  # vectorised | model | llm
    shared: int  # distinct strategies of the batch that pass through the node
    final: bool


@dataclass(frozen=True, slots=True)
class Policy:
    read: bool = True  # use cache entries
    write: bool = True  # store results
    statistics: bool = True
    expensive: bool = True
    shared: bool = True
    final: bool = True
    filters: bool = True
    slow_seconds: float = 0.5
    max_delta_fraction: float = 0.5

    @classmethod
    def none(cls) -> Policy:
        """Neither read nor write the cache."""
        return cls(read=False, write=False)

    @classmethod
    def everything(cls) -> Policy:
        return cls(slow_seconds=0.0, max_delta_fraction=1.0)

    def rule(self, f: NodeFacts) -> tuple[str, str]:
        """The static decision: ("always" | "auto" | "never", why)."""
        if not self.write:
            return "never", "cache writes off"
        if self.expensive and (f.kind in ("global", "generate") or f.cost in ("model", "llm")):
            return "always", f"expensive ({f.kind if f.kind in ('global', 'generate') else f.cost} step)"
        if self.shared and f.shared > 1:
            return "always", f"shared by {f.shared} strategies"
        if self.final and f.final:
            return "always", "final node"
        if self.filters and f.kind == "filter":
            return "always", "keep-mask (dropped ids only)"
        if f.kind in ("map", "assign", "where"):
            return "auto", f"if delta <= {self.max_delta_fraction:.0%} of rows or step >= {self.slow_seconds:g} s"
        return "never", "cheap to recompute"

    def decide(self, f: NodeFacts, rows_in: int, delta_rows: int, seconds: float) -> tuple[bool, str]:
        verdict, why = self.rule(f)
        if verdict != "auto":
            return verdict == "always", why
        if seconds >= self.slow_seconds:
            return True, f"slow step ({seconds:.2f} s)"
        if delta_rows <= self.max_delta_fraction * max(rows_in, 1):
            return True, f"small delta ({delta_rows} of {rows_in} rows)"
        return False, f"large delta ({delta_rows} of {rows_in} rows), fast step ({seconds:.2f} s)"

    def keep_statistic(self) -> tuple[bool, str]:
        if not self.write or not self.statistics:
            return False, "statistics not persisted"
        return True, "statistic (shared by threshold variants)"
