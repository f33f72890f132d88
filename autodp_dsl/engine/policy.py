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

The parsed input of a JSON/JSONL file (validated, with its quarantine) is kept as compressed
Parquet when ``inputs`` is on: reading it back is several times faster than parsing and validating
the JSON again, and it is about a third of the JSON's size.

Statistics (signal columns, MinHash signatures) are persisted when they are slow to compute or
small (at most ``stat_bytes_per_row`` per row): candidates that differ only in a threshold share them.
Signatures (fixed-size arrays of random bits) are stored as uncompressed Arrow IPC, which reads
several times faster than Parquet and is no larger for such data.
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
    stat_bytes_per_row: int = 64  # a fast statistic larger than this per row is recomputed, not stored
    stat_slow_seconds: float = 0.1  # a statistic slower than this is stored whatever its width (MinHash signatures)
    inputs: bool = True  # keep a parsed, compressed copy of JSON inputs (reading it beats parsing)
    trust_file_stat: bool = True  # an input with unchanged path/size/mtime/inode and xxh3-128 keeps its sha256 (sha256 is 15x slower than xxh3)

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

    def keep_statistic(self, seconds: float = 0.0, nbytes: int = 0, rows: int = 0) -> tuple[bool, str]:
        """Statistics are stored when slow to compute or small (a number per row); a fast, wide one
        (e.g. an exact-dedup key that is the text itself) is cheaper to recompute than to store."""
        if not self.write or not self.statistics:
            return False, "statistics not persisted"
        if seconds >= self.stat_slow_seconds:
            return True, f"slow statistic ({seconds:.2f} s)"
        if nbytes <= self.stat_bytes_per_row * max(rows, 1):
            return True, "small statistic (shared by threshold variants)"
        return False, f"fast ({seconds:.2f} s) and wide ({nbytes // max(rows, 1)} bytes per row): recomputed"
