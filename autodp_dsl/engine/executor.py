"""The executor: strategies -> one prefix tree of keyed nodes -> materialised frames + accounting.

A batch of strategies becomes one tree: each strategy's steps, in canonical order, are a chain of
node keys from the data's root key; equal keys are one node. Nodes run wave by wave (all nodes of
one depth together, with ``polars.collect_all``), each from its parent's materialised frame, so a
node shared by many strategies runs once. A node found in the cache is rebuilt from its parent and
the stored delta instead (dropped ids, changed cells, inserted rows), which is exact and cheap.

Row accounting is exact per node: a step's ``KEEP``/``REASON`` columns are split after collecting
(dropped ids with their reason), maps are compared with their parent (modified rows), rows that a
step loses without saying why are still recorded ("dropped without a reason").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from .. import ir
from ..checksum import digest, file_digest
from ..declarations import KEEP, REASON, ROW_ID
from ..default_registry import registry as default_registry
from ..io import (
    DEFAULT_MAX_ROW_BYTES,
    Loaded,
    check_regular,
    data_format,
    loaded_from_frame,
    open_source,
    parse_source,
    source_stat,
    unescape_column,
)
from ..lower import lower_step
from ..opregistry import Registry
from ..plan_keys import stable_hash, stat_column_name
from .cache import DEFAULT_MAX_BYTES, CacheStore, NoCache, NotACache, warn_stderr
from .keys import canonical_expr, node_key, root_key, stat_key, step_payload
from .plan import (
    DropRecorder,
    Plan,
    drop_reason,
    plan_strategy,
    reason_counts,
    required_columns,
    step_kind,
    strategy_keys,
)
from .policy import NodeFacts, Policy
from .report import DROPPED_SCHEMA, Accounting, ExplainNode, Explanation, RunResult, StatRecord, StepReport

# Plan, plan_strategy, strategy_keys, required_columns and reason_counts live in ``plan`` (shared with
# the streaming executor) and are re-exported here for the code that imported them from this module.
__all__ = ["Executor", "Plan", "plan_strategy", "strategy_keys", "required_columns", "reason_counts"]

Progress = Callable[[str, dict[str, Any]], None]
_NODE_DROP_SCHEMA = {ROW_ID: pl.UInt64, "sub": pl.String, "reason": pl.String}
_DELTA_OP = "__op"  # 0 dropped, 1 changed cells, 2 inserted row


@dataclass(slots=True)
class _Node:
    key: str
    parent: str
    step: ir.Step
    depth: int
    kind: str
    cost: str
    children: list[str] = field(default_factory=list)
    users: set[int] = field(default_factory=set)  # indices of distinct strategies
    finals: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _Outcome:
    rows_in: int
    rows_out: int
    modified: int
    added: int
    dropped: pl.DataFrame  # __rid, sub, reason
    seconds: float
    source: str  # hit | computed
    persisted: bool
    policy: str
    stats: list[StatRecord]
    max_rid: int = -1  # the largest row id issued on the path to this node (fresh ids start above it)


# ---------------------------------------------------------------- lowering context


class _NodeContext(DropRecorder):
    """Lowering context for one node: shared, cached statistics; deferred, recorded drops."""

    def __init__(self, ex: Executor, top_key: str, run: _RunState | None, dry: bool = False):
        super().__init__(ex.registry, ex.services)
        self.ex = ex
        self.run = run
        self.dry = dry
        self.top_key = top_key
        self.frame_key = top_key
        self.entered: dict[str, tuple[str, ir.Step]] = {}
        self.stats: list[StatRecord] = []

    def enter(self, step: ir.Step, path: str) -> None:
        if "." not in path:
            key = self.top_key
        else:
            parent_path, _, idx = path.rpartition(".")
            if idx == "1":
                pkey, pstep = self.entered[parent_path]
                key = stable_hash({"inside": pkey, "where": canonical_expr(pstep.predicate, self.registry)})
            else:
                prev_key, prev_step = self.entered[f"{parent_path}.{int(idx) - 1}"]
                key = node_key(prev_key, step_payload(prev_step, self.registry, self.services))
        self.entered[path] = (key, step)
        self.frame_key = key

    def statistic(self, lf: pl.LazyFrame, name: str, spec: dict[str, Any], expr: pl.Expr) -> tuple[pl.LazyFrame, str]:
        col = stat_column_name(name, spec)
        if col in lf.collect_schema().names():
            return lf, col
        skey = stat_key(self.frame_key, spec)
        if self.dry:
            hit = self.ex.store is not None and self.ex.policy.read and self.ex.store.contains(skey)
            self.stats.append(StatRecord(name, skey, "hit" if hit else "miss"))
            return lf.with_columns(expr.alias(col)), col
        df, rec = self.ex._statistic(self.run, name, skey, lf, expr)
        self.stats.append(rec)
        return lf.join(df.lazy().rename({"value": col}), on=ROW_ID, how="left", maintain_order="left"), col

    def drop(self, lf: pl.LazyFrame, path: str, step: ir.Step) -> pl.LazyFrame:
        if self.dry:  # explain: no accounting, just the rows that go on
            names = lf.collect_schema().names()
            return lf.filter(pl.col(KEEP).fill_null(False)).drop([KEEP, *([REASON] if REASON in names else [])])
        return super().drop(lf, path, step)


@dataclass(slots=True)
class _RunState:
    stat_memo: dict[str, pl.DataFrame] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    bytes_written: int = 0
    record_errors: bool = False
    failed: dict[str, str] = field(default_factory=dict)  # node key -> why it has no result

    def fail(self, key: str, err: BaseException | str) -> None:
        if isinstance(err, BaseException):
            if not self.record_errors:
                raise err
            err = f"{type(err).__name__}: {err}"
        self.failed[key] = err


# ---------------------------------------------------------------- executor


def _file_digest(path: str | Path) -> str | None:
    try:
        return file_digest(path)
    except OSError:  # unreadable: open_source says so
        return None


def _internal(c: str) -> bool:
    return c.startswith("__") and c != ROW_ID


def _sorted_by_rid(df: pl.DataFrame) -> pl.DataFrame:
    return df if df[ROW_ID].is_sorted() else df.sort(ROW_ID)


class Executor:
    """Runs strategies over data with shared prefixes, a persistent cache and exact row accounting.

    ``cache_dir=None`` keeps everything in memory (nothing persists between calls); ``policy``
    decides what is persisted (see ``Policy``); ``services`` are handed to operators
    (``ctx.service(name)``). ``progress(event, info)`` is called as nodes finish.
    """

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        policy: Policy | None = None,
        services: dict[str, Any] | None = None,
        *,
        registry: Registry | None = None,
        cache_max_bytes: int = DEFAULT_MAX_BYTES,
        max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
        progress: Progress | None = None,
        create_cache: bool = True,
    ):
        """``create_cache=False`` (``explain``, which only reads the cache): no cache is made at
        ``cache_dir``; ``NoCache`` is raised when there is none, for the caller to decide."""

        self.registry = registry or default_registry()
        self.policy = policy or Policy()
        self.services = services or {}
        self.store: CacheStore | None = None
        if cache_dir is not None:
            try:
                self.store = CacheStore(cache_dir, cache_max_bytes, create=create_cache)
            except NoCache:
                raise
            except (OSError, NotACache) as e:  # a cache problem costs the run its speed-up, not its result
                warn_stderr(f"cannot use the cache {cache_dir}: {getattr(e, 'strerror', None) or e}; going on without it")
        self.max_row_bytes = max_row_bytes
        self.progress = progress

    # ------------------------------------------------------------ public API

    def load(self, data: str | Path | Loaded | pl.DataFrame, strategies: Sequence[ir.Strategy] = (), required=None, *, store_input: bool = True) -> Loaded:
        """Read the data the way ``run`` would (required fields from the strategies). Load once and
        pass the ``Loaded`` to several ``run_batch`` calls (a search round) to read the file once."""
        if isinstance(data, Loaded):
            f = data.frame
            if ROW_ID not in f.columns or f.schema[ROW_ID] != pl.UInt64:  # a hand-made Loaded: ids are positions
                f = f.with_row_index(ROW_ID) if ROW_ID not in f.columns else f
                data.frame = f.with_columns(pl.col(ROW_ID).cast(pl.UInt64)).select(ROW_ID, pl.exclude(ROW_ID))
                data.rows_total = max(data.rows_total, data.frame.height + data.quarantine.height)
            return data
        req = required if required is not None else required_columns(strategies)
        if isinstance(data, pl.DataFrame):
            return loaded_from_frame(data, req, self.max_row_bytes)
        if self.store is None or data_format(data) not in ("jsonl", "json") or not self.policy.inputs:
            return parse_source(open_source(data, max_row_bytes=self.max_row_bytes), req, self.max_row_bytes)
        check_regular(data)  # before the stat memo reads it: a device never ends
        # a file whose path, size, mtime and inode are unchanged and whose bytes still have the xxh3
        # recorded last time has the sha256 recorded then (xxh3 is 15x cheaper; checking it catches
        # an edit in place with the mtime restored)
        stat_key_ = stable_hash({"stat": source_stat(data)})
        memo = self.store.memo_get(stat_key_) if self.policy.trust_file_stat else None
        known = None
        if memo is not None and isinstance(memo.get("sha256"), str) and isinstance(memo.get("xxh3"), str) and memo["xxh3"] == _file_digest(data):
            known = memo["sha256"]
        src = open_source(data, known_sha256=known, max_row_bytes=self.max_row_bytes)
        if known is None and self.policy.write and store_input:
            self.store.memo_put(stat_key_, {"sha256": src.content_sha256, "xxh3": digest(src.payload)})
        fp = src.fingerprint(req, self.max_row_bytes)
        fkey, qkey = stable_hash({"input": fp}), stable_hash({"quarantine": fp})
        if self.policy.read:
            e = self.store.get(fkey)
            q = self.store.get(qkey) if e is not None else None
            if e is not None and q is not None:
                m = e.meta
                return Loaded(
                    e.frame, q.frame, fp, str(src.path), src.format, int(m["rows_total"]), list(m.get("dropped_columns", [])), src.content_sha256, dict(m.get("changes", {}))
                )
        loaded = parse_source(src, req, self.max_row_bytes)
        if self.policy.write and store_input:
            meta = {
                "kind": "input", "op": src.format, "rows_total": loaded.rows_total, "dropped_columns": loaded.dropped_columns, "changes": loaded.changes, "path": str(src.path)
            }
            self.store.put(qkey, loaded.quarantine, {**meta, "kind": "quarantine"})
            self.store.put(fkey, loaded.frame, meta, compression="lz4")
        return loaded

    def run(self, strategy: ir.Strategy, data: str | Path | Loaded | pl.DataFrame) -> RunResult:
        return self.run_batch([strategy], data)[0]

    def run_batch(self, strategies: Sequence[ir.Strategy], data: str | Path | Loaded | pl.DataFrame, *, on_error: str = "raise") -> list[RunResult]:
        """Run every strategy; results in the order given (duplicates allowed, computed once).

        ``on_error="record"``: an operator failing fails only the strategies through that node
        (their ``RunResult.error`` says why; the others run); ``"raise"`` (default) re-raises."""
        if on_error not in ("raise", "record"):
            raise ValueError(f"on_error must be 'raise' or 'record', not {on_error!r}")
        t0 = time.perf_counter()
        strategies = list(strategies)
        loaded = self.load(data, strategies)
        read_s = time.perf_counter() - t0
        root = root_key(loaded.fingerprint)
        plans = [plan_strategy(s, root, self.registry, self.services) for s in strategies]
        nodes = self._tree(plans, root)
        state = _RunState(record_errors=on_error == "record")
        frames, outcomes = self._execute(nodes, root, loaded, plans, state)
        if self.store is not None and state.written:
            self.store.enforce_cap(pinned=frozenset(state.written))
        total = time.perf_counter() - t0
        return [self._result(p, nodes, outcomes, frames, loaded, root, total, read_s, state.failed) for p in plans]

    def run_streaming(self, strategy: ir.Strategy, data: str | Path, output: str | Path, **kw) -> RunResult:
        """Out of core: see ``engine.streaming`` (kept rows go to ``output``; no cache)."""
        from .streaming import run_streaming

        return run_streaming(self, strategy, data, output, **kw)

    def run_ray(self, strategy: ir.Strategy, data: str | Path, output: str | Path, **kw) -> RunResult:
        """On a Ray cluster: see ``engine.distributed`` (kept rows go to ``output``; no cache;
        ``address=`` names the cluster)."""
        from .distributed import run_ray

        return run_ray(self, strategy, data, output, **kw)

    def explain(self, strategies: Sequence[ir.Strategy], data: str | Path | Loaded | pl.DataFrame | None = None) -> Explanation:
        """The combined plan: node keys, shared nodes, cache policy and hit map (nothing runs)."""
        strategies = list(strategies)
        loaded = self.load(data, strategies, store_input=False) if data is not None else None
        root = root_key(loaded.fingerprint) if loaded else stable_hash({"data": "<unbound>"})
        plans = [plan_strategy(s, root, self.registry, self.services) for s in strategies]
        nodes = self._tree(plans, root)
        names = _unique_names(strategies)
        labels: dict[str, dict[str, str]] = {}
        for si, p in enumerate(plans):
            for pos, key in enumerate(p.keys):
                labels.setdefault(key, {})[names[si]] = str(p.order[pos] + 1)
        # dry lowering on empty frames: finds the statistics each node would compute
        if loaded is not None:
            base = loaded.frame.head(0).lazy()
        else:
            cols = required_columns(strategies)
            base = pl.DataFrame({ROW_ID: pl.Series([], dtype=pl.UInt64), **{n: pl.Series([], dtype=t.to_polars()) for n, t in cols.items()}}).lazy()
        dry: dict[str, pl.LazyFrame] = {root: base}
        out = []
        for key in self._order(nodes):
            n = nodes[key]
            ctx = _NodeContext(self, n.parent, None, dry=True)
            stats: list[StatRecord] = []
            try:
                lf = lower_step(n.step, dry[n.parent], ctx, "1")
                names_ = lf.collect_schema().names()
                dry[key] = lf.select([c for c in names_ if not _internal(c)])
                stats = ctx.stats
            except Exception:
                dry[key] = dry[n.parent]
            verdict, why = self.policy.rule(NodeFacts(n.kind, n.cost, len(n.users), bool(n.finals)))
            if self.store is None or loaded is None:
                cache = "n/a"
            else:
                cache = "hit" if self.policy.read and self.store.contains(key) else "miss"
            out.append(
                ExplainNode(
                    key, n.parent, n.depth, ir.step_text(n.step), n.kind, labels.get(key, {}), sorted(names[i] for i in n.finals), verdict, why, cache, stats
                )
            )
        return Explanation(
            root,
            loaded.fingerprint if loaded else None,
            loaded.path if loaded else None,
            loaded.rows_total if loaded else None,
            loaded.quarantine.height if loaded else None,
            out,
            {names[i]: p.keys for i, p in enumerate(plans)},
            str(self.store.root) if self.store else None,
        )

    # ------------------------------------------------------------ tree

    def _tree(self, plans: list[Plan], root: str) -> dict[str, _Node]:
        nodes: dict[str, _Node] = {}
        finals_seen: dict[str, int] = {}
        for si, p in enumerate(plans):
            final = p.keys[-1] if p.keys else root
            sid = finals_seen.setdefault(final, si)  # duplicates count once
            parent = root
            for pos, key in enumerate(p.keys):
                step = p.strategy.steps[p.order[pos]]
                if key not in nodes:
                    kind, cost = step_kind(step, self.registry)
                    nodes[key] = _Node(key, parent, step, pos + 1, kind, cost)
                    if parent != root:
                        nodes[parent].children.append(key)
                nodes[key].users.add(sid)
                parent = key
            if p.keys:
                nodes[p.keys[-1]].finals.add(sid)
        return nodes

    @staticmethod
    def _order(nodes: dict[str, _Node]) -> list[str]:
        """Depth-first, parents before children, siblings in insertion order."""
        roots = [k for k, n in nodes.items() if n.parent not in nodes]
        out: list[str] = []
        stack = list(reversed(roots))
        while stack:
            k = stack.pop()
            out.append(k)
            stack.extend(reversed(nodes[k].children))
        return out

    # ------------------------------------------------------------ execution

    def emit(self, event: str, **info: Any) -> None:
        """Report progress (``start``, ``node``...) to the ``progress`` callback, if any."""
        if self.progress is not None:
            self.progress(event, info)

    def _execute(self, nodes: dict[str, _Node], root: str, loaded: Loaded, plans: list[Plan], state: _RunState):
        frames: dict[str, pl.DataFrame] = {root: _sorted_by_rid(loaded.frame)}
        outcomes: dict[str, _Outcome] = {}
        root_max = max(loaded.rows_total - 1, int(loaded.frame[ROW_ID].max() or 0) if loaded.frame.height else -1)
        max_rid = {root: root_max}
        pending_children = {k: len(n.children) for k, n in nodes.items()}
        pending_children[root] = sum(1 for n in nodes.values() if n.parent == root)
        keep = {p.keys[-1] for p in plans if p.keys} | {root}
        by_depth: dict[int, list[str]] = {}
        for k in self._order(nodes):
            by_depth.setdefault(nodes[k].depth, []).append(k)
        self.emit("start", nodes=len(nodes), depth=max(by_depth, default=0))
        for depth in sorted(by_depth):
            wave = by_depth[depth]
            lazy: list[tuple[str, pl.LazyFrame, _NodeContext, float]] = []
            for key in wave:
                n = nodes[key]
                if n.parent in state.failed:
                    state.fail(key, state.failed[n.parent])
                    continue
                parent_df = frames[n.parent]
                t = time.perf_counter()
                entry = self.store.get(key) if (self.store is not None and self.policy.read) else None
                if entry is not None:
                    try:
                        df, oc = self._from_entry(n, parent_df, entry)
                    except Exception:  # an entry this version cannot apply: recompute
                        entry = None
                    else:
                        oc.seconds = time.perf_counter() - t
                        frames[key] = df
                        outcomes[key] = oc
                        max_rid[key] = max(max_rid[n.parent], oc.max_rid)
                        self.emit("node", key=key, text=ir.step_text(n.step), depth=depth, source="hit", rows_in=oc.rows_in, rows_out=oc.rows_out, seconds=oc.seconds)
                        continue
                ctx = _NodeContext(self, n.parent, state)
                try:
                    lf = lower_step(n.step, parent_df.lazy(), ctx, "1")
                except Exception as e:
                    state.fail(key, _located(e, n.step))
                    continue
                lazy.append((key, lf, ctx, time.perf_counter() - t))
            if lazy:
                queries = []
                for _, lf, ctx, _ in lazy:
                    queries.append(lf)
                    queries.extend(d for _, d in ctx.side_drops)
                t = time.perf_counter()
                try:
                    results: list[pl.DataFrame | None] = list(pl.collect_all(queries))
                except Exception as e:
                    if not state.record_errors:
                        raise
                    results = []  # find the failing nodes one by one
                    for key, lf, ctx, _ in lazy:
                        try:
                            results.extend(pl.collect_all([lf, *(d for _, d in ctx.side_drops)]))
                        except Exception as e2:
                            state.fail(key, _located(e2, nodes[key].step))
                            results.extend([None] * (1 + len(ctx.side_drops)))
                    del e
                share = (time.perf_counter() - t) / len(lazy)
                i = 0
                for key, _, ctx, pre in lazy:
                    out = results[i]
                    side = results[i + 1 : i + 1 + len(ctx.side_drops)]
                    i += 1 + len(ctx.side_drops)
                    if out is None:
                        continue
                    t = time.perf_counter()
                    n = nodes[key]
                    try:
                        df, oc = self._finish(n, frames[n.parent], out, [(p, d) for (p, _), d in zip(ctx.side_drops, side, strict=True)], ctx, state, max_rid[n.parent])
                    except Exception as e:
                        state.fail(key, _located(e, n.step))
                        continue
                    oc.seconds = pre + share + (time.perf_counter() - t)
                    frames[key] = df
                    outcomes[key] = oc
                    max_rid[key] = max(max_rid[n.parent], oc.max_rid)
                    self.emit("node", key=key, text=ir.step_text(n.step), depth=depth, source="computed", rows_in=oc.rows_in, rows_out=oc.rows_out, seconds=oc.seconds)
            for key in wave:  # free parents whose children are all done
                p = nodes[key].parent
                pending_children[p] -= 1
                if pending_children[p] == 0 and p not in keep:
                    frames.pop(p, None)
                if pending_children.get(key, 0) == 0 and key not in keep:
                    frames.pop(key, None)
        return frames, outcomes

    def _statistic(self, state: _RunState, name: str, skey: str, lf: pl.LazyFrame, expr: pl.Expr) -> tuple[pl.DataFrame, StatRecord]:
        df = state.stat_memo.get(skey)
        if df is not None:
            return df, StatRecord(name, skey, "memo")
        if self.store is not None and self.policy.read:
            t = time.perf_counter()
            entry = self.store.get(skey)
            if entry is not None and entry.frame.columns == [ROW_ID, "value"]:
                state.stat_memo[skey] = entry.frame
                return entry.frame, StatRecord(name, skey, "hit", time.perf_counter() - t)
        t = time.perf_counter()
        df = lf.select(pl.col(ROW_ID), expr.alias("value")).collect()
        seconds = time.perf_counter() - t
        state.stat_memo[skey] = df
        rec = StatRecord(name, skey, "computed", seconds)
        persist, _ = self.policy.keep_statistic(seconds, int(df.estimated_size()), df.height)
        if persist and self.store is not None:
            meta = {"kind": "statistic", "op": name, "seconds": seconds}
            if isinstance(df.schema["value"], pl.Array):  # signatures: random bits, that Parquet decodes slowly
                rec.bytes = self.store.put(skey, df, meta, fmt="ipc")
            else:
                big = df.estimated_size() > (8 << 20)  # large statistics read faster with lz4
                rec.bytes = self.store.put(skey, df, meta, compression="lz4" if big else "zstd")
            rec.persisted = rec.bytes > 0  # 0: the cache was given up (see CacheStore._give_up)
            state.written.add(skey)
            state.bytes_written += rec.bytes
        return df, rec

    def _finish(
        self, n: _Node, parent: pl.DataFrame, out: pl.DataFrame, side: list[tuple[str, pl.DataFrame]], ctx: _NodeContext, state: _RunState, parent_max: int
    ) -> tuple[pl.DataFrame, _Outcome]:
        text = ir.step_text(n.step)
        if out[ROW_ID].null_count():  # new rows of a generate step: fresh ids above every id issued so far
            fresh = pl.col(ROW_ID).is_null().cast(pl.UInt64).cum_sum() + parent_max
            out = out.with_columns(pl.coalesce(pl.col(ROW_ID), fresh).cast(pl.UInt64).alias(ROW_ID))
        drops = []
        visible = out.select([c for c in out.columns if not _internal(c)])  # before filtering: wide statistics are not copied
        if KEEP in out.columns:
            keep = out[KEEP].fill_null(False)
            drops.append(out.select(pl.col(ROW_ID), pl.lit("").alias("sub"), drop_reason(out.columns, text).alias("reason")).filter(~keep))
            visible = visible.filter(keep)
        for path, d in side:
            drops.append(d.select(pl.col(ROW_ID), pl.lit(path[1:]).alias("sub"), pl.col("reason")))
        df = _sorted_by_rid(visible)
        if n.kind not in ("filter", "global", "map") and df[ROW_ID].is_duplicated().any():
            raise ValueError(f"{text} produced rows with duplicate row ids (a generate step must give new rows fresh ids)")
        dropped = pl.concat(drops, how="vertical_relaxed").cast(_NODE_DROP_SCHEMA) if drops else pl.DataFrame(schema=_NODE_DROP_SCHEMA)
        delta, modified, added, changed_cols = self._diff(n, parent, df)
        if added and delta is not None:
            reused = delta.filter((pl.col(_DELTA_OP) == 2) & (pl.col(ROW_ID) <= parent_max))
            if reused.height:
                raise ValueError(f"{text} gave new rows ids that were issued before (e.g. {reused[ROW_ID][0]}); leave __rid null on new rows")
        lost = parent.height + added - df.height - dropped.height
        if lost:  # rows gone without a KEEP=false: still accounted for
            gone = parent.select(ROW_ID).join(df.select(ROW_ID), on=ROW_ID, how="anti").join(dropped.select(ROW_ID), on=ROW_ID, how="anti")
            extra = gone.select(pl.col(ROW_ID), pl.lit("").alias("sub"), pl.lit(f"{text} (dropped without a reason)").alias("reason"))
            dropped = pl.concat([dropped, extra.cast(_NODE_DROP_SCHEMA)])
        dropped = dropped.sort(ROW_ID)
        oc = _Outcome(parent.height, df.height, modified, added, dropped, 0.0, "computed", False, "", ctx.stats, int(df[ROW_ID].max() or 0) if df.height else -1)
        facts = NodeFacts(n.kind, n.cost, len(n.users), bool(n.finals))
        if self.store is not None:
            delta_rows = delta.height if delta is not None else df.height
            persist, why = self.policy.decide(facts, parent.height, delta_rows, sum(s.seconds for s in ctx.stats))
            oc.policy = why
            if persist:
                full = _delta_frame(dropped, delta, changed_cols)
                meta = {
                    "kind": "node",
                    "op": n.kind if not isinstance(n.step, ir.OpStep) else n.step.op,
                    "step": text,
                    "columns": df.columns,
                    "removed": [c for c in parent.columns if c not in df.columns],
                    "changed": changed_cols,
                    "counts": {"rows_in": parent.height, "rows_out": df.height, "modified": modified, "added": added},
                    "max_rid": oc.max_rid,
                }
                written = self.store.put(n.key, full, meta)
                state.bytes_written += written
                state.written.add(n.key)
                oc.persisted = written > 0  # 0: the cache was given up (see CacheStore._give_up)
        else:
            oc.policy = "no cache"
        return df, oc

    def _diff(self, n: _Node, parent: pl.DataFrame, df: pl.DataFrame) -> tuple[pl.DataFrame | None, int, int, list[str]]:
        """(changed/inserted rows with the changed columns, modified rows, inserted rows, changed columns)."""
        if n.kind in ("filter", "global") and df.columns == parent.columns:
            return None, 0, 0, []
        cols = [c for c in df.columns if c != ROW_ID]
        new_cols = [c for c in cols if c not in parent.columns]
        same_rows = df.height == parent.height and df[ROW_ID].equals(parent[ROW_ID])
        if same_rows:
            masks = {c: parent[c].ne_missing(df[c]) for c in cols if c not in new_cols}
            changed = [c for c, m in masks.items() if m.any()]
            mod_mask = pl.repeat(False, df.height, eager=True) if not changed else pl.DataFrame({c: masks[c] for c in changed}).select(pl.any_horizontal(pl.all())).to_series()
            modified = int(mod_mask.sum())
            row_mask = mod_mask if not new_cols else pl.repeat(True, df.height, eager=True)
            delta = df.filter(row_mask).select(ROW_ID, *changed, *new_cols)
            return delta.with_columns(pl.lit(1, dtype=pl.Int8).alias(_DELTA_OP)), modified, 0, changed + new_cols
        common_cols = [c for c in cols if c not in new_cols]
        j = df.join(parent.select(ROW_ID, *common_cols), on=ROW_ID, how="inner", suffix="__parent", maintain_order="left")
        masks = {c: j[c].ne_missing(j[f"{c}__parent"]) for c in common_cols}
        changed = [c for c, m in masks.items() if m.any()]
        if changed:
            mod_mask = pl.DataFrame({c: masks[c] for c in changed}).select(pl.any_horizontal(pl.all())).to_series()
        else:
            mod_mask = pl.repeat(False, j.height, eager=True)
        modified = int(mod_mask.sum())
        row_mask = mod_mask if not new_cols else pl.repeat(True, j.height, eager=True)
        upd = j.filter(row_mask).select(ROW_ID, *changed, *new_cols).with_columns(pl.lit(1, dtype=pl.Int8).alias(_DELTA_OP))
        ins = df.join(parent.select(ROW_ID), on=ROW_ID, how="anti", maintain_order="left").with_columns(pl.lit(2, dtype=pl.Int8).alias(_DELTA_OP))
        delta = pl.concat([upd, ins], how="diagonal_relaxed") if ins.height else upd  # inserted rows carry every column
        return delta, modified, ins.height, changed + new_cols

    def _from_entry(self, n: _Node, parent: pl.DataFrame, entry) -> tuple[pl.DataFrame, _Outcome]:
        meta, delta = entry.meta, entry.frame
        df = parent
        removed = [c for c in meta.get("removed", []) if c in df.columns]
        if removed:
            df = df.drop(removed)
        drops = delta.filter(pl.col(_DELTA_OP) == 0)
        if drops.height:
            df = df.join(drops.select(ROW_ID), on=ROW_ID, how="anti", maintain_order="left")
        changed = meta.get("changed", [])
        upd = delta.filter(pl.col(_DELTA_OP) == 1)
        if upd.height and changed:
            pos = df[ROW_ID].search_sorted(upd[ROW_ID])  # the parent is sorted by id: write in place
            if pos.max() < df.height and df[ROW_ID].gather(pos).equals(upd[ROW_ID]):
                cols = []
                for c in changed:
                    base = df[c].clone() if c in df.columns else pl.Series(c, [None] * df.height, dtype=upd.schema[c])
                    cols.append(base.scatter(pos, upd[c]))
                df = df.with_columns(cols)
            else:
                u = upd.select(ROW_ID, *[pl.col(c).alias(f"{c}__new") for c in changed]).with_columns(pl.lit(True).alias("__hit"))
                j = df.join(u, on=ROW_ID, how="left", maintain_order="left")
                exprs = []
                for c in changed:
                    old = pl.col(c) if c in df.columns else pl.lit(None)
                    exprs.append(pl.when(pl.col("__hit").fill_null(False)).then(pl.col(f"{c}__new")).otherwise(old).alias(c))
                df = j.with_columns(exprs).drop([f"{c}__new" for c in changed] + ["__hit"])
        elif changed:
            for c in changed:
                if c not in df.columns:
                    df = df.with_columns(pl.lit(None).cast(delta.schema[c]).alias(c))
        ins = delta.filter(pl.col(_DELTA_OP) == 2)
        if ins.height:
            df = pl.concat([df, ins.select(meta["columns"])], how="diagonal_relaxed")
        df = _sorted_by_rid(df.select(meta["columns"]))
        dropped = drops.select(pl.col(ROW_ID), pl.col("__sub").alias("sub"), pl.col("__reason").alias("reason")).cast(_NODE_DROP_SCHEMA)
        counts = meta.get("counts", {})
        if counts.get("rows_in") != parent.height or counts.get("rows_out") != df.height:
            raise ValueError("cache entry does not fit its parent")
        oc = _Outcome(parent.height, df.height, int(counts.get("modified", 0)), int(counts.get("added", 0)), dropped, 0.0, "hit", True, "cached", [], int(meta.get("max_rid", -1)))
        return df, oc

    # ------------------------------------------------------------ results

    def _result(self, p: Plan, nodes, outcomes, frames, loaded: Loaded, root: str, total: float, read_s: float, failed: dict[str, str]) -> RunResult:
        steps: list[StepReport] = []
        dropped_parts = []
        error = next((f"step {p.order[pos] + 1}: {failed[k]}" for pos, k in enumerate(p.keys) if k in failed), None)
        for pos, key in enumerate(p.keys):
            if key in failed:
                break
            n, oc = nodes[key], outcomes[key]
            label = str(p.order[pos] + 1)
            by_reason: dict[str, int] = {}
            if oc.dropped.height:
                by_reason = reason_counts(oc.dropped)
                dropped_parts.append(oc.dropped.select(pl.col(ROW_ID).alias("rid"), (pl.lit(label) + pl.col("sub")).alias("step"), pl.col("reason")))
            steps.append(
                StepReport(label, ir.step_text(n.step), n.kind, key, oc.rows_in, oc.rows_out, oc.modified, oc.added, by_reason, oc.seconds, oc.source, oc.persisted, oc.policy, len(n.users), list(oc.stats))
            )
        final = p.keys[-1] if p.keys else root
        if error is not None:
            df = loaded.frame.head(0)
        else:
            df = frames[final]
        dropped_ids = pl.concat(dropped_parts).cast(DROPPED_SCHEMA) if dropped_parts else pl.DataFrame(schema=DROPPED_SCHEMA)
        acc = Accounting(
            rows_in=loaded.rows_total,
            kept=df.height,
            dropped=dropped_ids.height,
            quarantined=loaded.quarantine.height,
            generated=sum(s.added for s in steps),
            steps=steps,
            dropped_ids=dropped_ids,
        )
        return RunResult(
            strategy=p.strategy.name,
            frame=df.select([pl.col(c).alias(unescape_column(c)) for c in df.columns if not c.startswith("__")]),  # "__*" input columns get their names back
            ids=df[ROW_ID],
            accounting=acc,
            quarantine=loaded.quarantine,
            fingerprint=loaded.fingerprint,
            root_key=root,
            keys=list(p.keys),
            final_key=final,
            seconds=total,
            read_seconds=read_s,
            error=error,
            columns_changed=dict(loaded.changes),
        )


def _located(e: Exception, step: ir.Step) -> Exception:
    """The error with the step's text in front (for RunResult.error and the CLI's one line)."""
    try:
        return type(e)(f"{ir.step_text(step)}: {e}")
    except Exception:
        return e


def _delta_frame(dropped: pl.DataFrame, delta: pl.DataFrame | None, changed: list[str]) -> pl.DataFrame:
    d = dropped.select(
        pl.col(ROW_ID), pl.lit(0, dtype=pl.Int8).alias(_DELTA_OP), pl.col("sub").alias("__sub"), pl.col("reason").alias("__reason")
    )
    if delta is None or delta.height == 0:
        if delta is not None and changed:  # keep the column types for an empty update
            return pl.concat([d, delta.head(0)], how="diagonal_relaxed")
        return d
    return pl.concat([d, delta], how="diagonal_relaxed")


def _unique_names(strategies: list[ir.Strategy]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for s in strategies:
        k = seen.get(s.name, 0)
        seen[s.name] = k + 1
        out.append(s.name if k == 0 else f"{s.name}#{k + 1}")
    return out
