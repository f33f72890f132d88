"""What a run reports: per-step row accounting, cache use, timings; and what ``explain`` shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from autodp_backends.records import fields_dict

__all__ = ["StatRecord", "StepReport", "Accounting", "RunResult", "ExplainNode", "Explanation", "DROPPED_SCHEMA"]

DROPPED_SCHEMA = {"rid": pl.UInt64, "step": pl.String, "reason": pl.String}


@dataclass(slots=True)
class StatRecord:
    name: str
    key: str
    source: str  # hit | computed | memo | planned
    seconds: float = 0.0
    persisted: bool = False
    bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {**fields_dict(self, "name", "key", "source"), "seconds": round(self.seconds, 6), **fields_dict(self, "persisted", "bytes")}


@dataclass(slots=True)
class StepReport:
    step: str  # the step's number in the strategy as written ("3"; nested drops are "5.2")
    text: str  # the step's DSL text
    kind: str  # map | filter | global | generate | assign | where
    key: str
    rows_in: int
    rows_out: int
    modified: int
    added: int
    dropped: dict[str, int]  # reason -> rows
    seconds: float
    cache: str  # hit | computed
    persisted: bool
    policy: str  # why (not) persisted
    shared: int = 1  # strategies of the batch that share this node
    stats: list[StatRecord] = field(default_factory=list)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def to_json(self) -> dict[str, Any]:
        return {
            **fields_dict(self, "step", "text", "kind", "key", "rows_in", "rows_out", "modified", "added"),
            "dropped": self.dropped_total,
            "dropped_by_reason": dict(self.dropped),
            "seconds": round(self.seconds, 6),
            **fields_dict(self, "cache", "persisted", "policy", "shared"),
            "statistics": [s.to_json() for s in self.stats],
        }


@dataclass(slots=True)
class Accounting:
    rows_in: int  # input records, quarantined ones included
    kept: int
    dropped: int
    quarantined: int
    generated: int
    steps: list[StepReport]
    dropped_ids: pl.DataFrame  # rid, step, reason (DROPPED_SCHEMA)

    @property
    def balanced(self) -> bool:
        """rows in + generated = kept + dropped + quarantined."""
        return self.rows_in + self.generated == self.kept + self.dropped + self.quarantined

    def by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.steps:
            for r, n in s.dropped.items():
                out[r] = out.get(r, 0) + n
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            **fields_dict(self, "rows_in", "kept", "dropped", "quarantined", "generated", "balanced"),
            "steps": [s.to_json() for s in self.steps],
        }


@dataclass(slots=True)
class RunResult:
    strategy: str
    frame: pl.DataFrame  # kept rows, user columns only, in row-id order
    ids: pl.Series  # their row ids (same order)
    accounting: Accounting
    quarantine: pl.DataFrame  # rid, line, reason, detail, raw
    fingerprint: str  # the input's
    root_key: str
    keys: list[str]  # node keys, in execution order
    final_key: str
    seconds: float  # wall time of the batch this result came from (shared by its results)
    read_seconds: float = 0.0
    output: str | None = None  # streaming runs: where the kept rows were written (``frame`` is empty)
    error: str | None = None  # run_batch(on_error="record"): why this strategy has no result
    columns_changed: dict[str, str] = field(default_factory=dict)  # input column -> how reading changed it (``Loaded.changes``)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def cache_hits(self) -> int:
        return sum(1 for s in self.accounting.steps if s.cache == "hit")

    @property
    def timings(self) -> dict[str, float]:
        return {s.step: s.seconds for s in self.accounting.steps}

    def to_json(self) -> dict[str, Any]:
        q = self.quarantine
        by_reason = {}
        if q.height:
            by_reason = dict(q.group_by("reason").len().sort("reason").iter_rows())
        return {
            **fields_dict(self, "strategy", "error", "fingerprint", "root_key", "final_key", "keys", "cache_hits"),
            "seconds": round(self.seconds, 6),
            "read_seconds": round(self.read_seconds, 6),
            "accounting": self.accounting.to_json(),
            "quarantine": {"rows": q.height, "by_reason": by_reason},
            "columns_changed": dict(self.columns_changed),
        }


@dataclass(slots=True)
class ExplainNode:
    key: str
    parent: str
    depth: int
    text: str
    kind: str
    labels: dict[str, str]  # strategy name -> the step's number there
    finals: list[str]  # strategies ending here
    policy: str  # always | auto | never
    policy_reason: str
    cache: str  # hit | miss | n/a
    stats: list[StatRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            **fields_dict(self, "key", "parent", "depth", "text", "kind"),
            "strategies": self.labels,
            "shared": len(self.labels),
            "final_of": self.finals,
            "materialise": self.policy,
            "policy": self.policy_reason,
            "cache": self.cache,
            "statistics": [s.to_json() for s in self.stats],
        }


@dataclass(slots=True)
class Explanation:
    root_key: str
    fingerprint: str | None
    data: str | None
    rows: int | None
    quarantined: int | None
    nodes: list[ExplainNode]  # depth-first, parents before children
    strategies: dict[str, list[str]]  # name -> node keys in execution order
    cache_dir: str | None

    @property
    def shared(self) -> list[ExplainNode]:
        return [n for n in self.nodes if len(n.labels) > 1]

    def to_json(self) -> dict[str, Any]:
        return {
            **fields_dict(self, "root_key", "fingerprint", "data", "rows", "quarantined", "cache_dir", "strategies"),
            "nodes": [n.to_json() for n in self.nodes],
            "shared_nodes": len(self.shared),
            "hits": sum(1 for n in self.nodes if n.cache == "hit"),
        }
