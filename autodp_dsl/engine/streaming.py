"""Out-of-core runs: one strategy over an input larger than memory, on Polars' streaming engine.

The input is validated in chunks into Parquet parts (quarantine as usual); then the steps run as
streaming queries, so memory holds chunks, ids and per-row statistics, not the data set:

- consecutive row-wise, vectorised maps and filters run as ONE query written once (``_run_fused``):
  rows are marked dropped instead of removed and maps record the rows they changed;
- a global step (dedup, selection) decides on ids and statistics alone, each statistic computed in
  a streaming pass into its own file (``_run_global``); the text rows are then filtered by id as
  the next query reads them;
- any other step runs as one streaming query from the previous spill file to its own (``_run_one``).

Row ids, accounting (dropped rows with their reasons, modified rows), keys and the report are the
same as the in-memory executor's; the result cache is not used (nothing is shared in one run).
Whether a run streams is decided by ``choose_mode`` (docs/scale.md).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from .. import ir
from ..atomic import commit
from ..declarations import KEEP, ROW_ID
from ..io import (
    QUARANTINE_SCHEMA,
    READER_VERSION,
    DataError,
    Loaded,
    NoUsableRows,
    bounded_blocks,
    check_regular,
    columnar_input,
    data_format,
    first_line,
    normalise_required,
    read_jsonl_bytes,
    unescape_column,
    validate_lazy,
)
from ..lower import lower_step
from ..plan_keys import stable_hash
from .keys import root_key
from .plan import DropRecorder, drop_reason, plan_strategy, reason_counts, required_columns, step_kind
from .report import DROPPED_SCHEMA, Accounting, RunResult, StepReport

__all__ = ["run_streaming", "STREAM_FORMATS", "scan_input", "choose_mode", "estimated_footprint", "ModeChoice", "sink_format", "kept_columns", "write_kept",
           "written_result", "finished_result"]

STREAM_FORMATS = ("jsonl", "parquet")
_OUT_SINKS = {".parquet": "parquet", ".jsonl": "ndjson", ".ndjson": "ndjson", ".csv": "csv"}


def scan_input(path: Path, required, max_row_bytes: int, spill: Path, chunk_bytes: int = 64 << 20) -> tuple[pl.LazyFrame, Loaded]:
    """Validate ``path`` chunk by chunk into ``spill``; returns the rows as a scan plus a ``Loaded``
    whose frame is empty (the quarantine and fingerprint are filled)."""
    req = normalise_required(required)
    fmt = data_format(path)
    if fmt not in STREAM_FORMATS:
        raise DataError(f"streaming runs read {' or '.join(STREAM_FORMATS)} inputs, not {fmt}")
    check_regular(path)  # a device (/dev/zero) never ends
    digest = hashlib.sha256()
    quarantine = []
    parts: list[Path] = []
    total = 0
    changes: dict[str, str] = {}
    chunk_notes: list[dict[str, str]] = []
    if fmt == "parquet":
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(8 << 20), b""):
                digest.update(block)
        try:
            lf, changes = columnar_input(pl.scan_parquet(path))
            good, bad = validate_lazy(lf, req, max_row_bytes)
            good_path = spill / "input-00000.parquet"
            queries = [good.sink_parquet(good_path, lazy=True)]
            if bad is not None:
                queries.append(bad.sink_parquet(spill / "quarantine.parquet", lazy=True))
            pl.collect_all(queries)
            total = pl.scan_parquet(path).select(pl.len()).collect().item()
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as e:  # a corrupt file
            raise DataError(f"cannot read {path}: {first_line(e)}") from e
        parts.append(good_path)
        if bad is not None:
            quarantine.append(pl.read_parquet(spill / "quarantine.parquet"))
    else:
        rid_base = line_base = 0
        with open(path, "rb") as f:
            for data in bounded_blocks(f, max_row_bytes, digest, chunk_bytes):  # a huge line costs the bound
                if data.strip():
                    frame, q, n, noted = read_jsonl_bytes(data, req, max_row_bytes)
                    chunk_notes.append(noted)
                    frame = frame.with_columns(pl.col(ROW_ID) + rid_base)
                    if q.height:
                        quarantine.append(q.with_columns(pl.col("rid") + rid_base, pl.col("line") + line_base))
                    part = spill / f"input-{len(parts):05d}.parquet"
                    frame.write_parquet(part, compression="lz4")
                    parts.append(part)
                    rid_base += n
                    total += n
                line_base += data.count(b"\n")
    if len(chunk_notes) == 1:
        changes = chunk_notes[0]
    for noted in chunk_notes if len(chunk_notes) > 1 else []:
        for c, note in noted.items():
            changes[c] = _merge_notes(changes.get(c, ""), note)
    content = digest.hexdigest()
    fp = stable_hash(
        {"content": content, "reader": {"v": READER_VERSION, "required": {k: str(v) for k, v in sorted(req.items())}, "max_row_bytes": max_row_bytes, "split": None}}
    )
    q = pl.concat(quarantine, how="vertical_relaxed").cast(QUARANTINE_SCHEMA) if quarantine else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    scans = [pl.scan_parquet(p) for p in parts]
    lf = pl.concat(scans, how="diagonal_relaxed") if scans else pl.LazyFrame(schema={ROW_ID: pl.UInt64})
    if len(scans) > 1:
        changes.update(_chunk_changes([s.collect_schema() for s in scans], lf.collect_schema(), changes))
    loaded = Loaded(pl.DataFrame(schema=lf.collect_schema()), q, fp, str(path), fmt, total, [], content, changes)
    return lf, loaded


_ABSENT = re.compile(r"absent from [\d,]+ of [\d,]+ rows")


def _merge_notes(old: str, new: str) -> str:
    """The notes of one column from several chunks, each once (a chunk's row counts are not the file's)."""
    parts = [_ABSENT.sub("absent from some rows", n) for n in (old.split("; ") if old else []) + new.split("; ")]
    return "; ".join(dict.fromkeys(parts))


def _chunk_changes(schemas: list, final, changes: dict[str, str]) -> dict[str, str]:
    """Columns that the chunks read with different types (joined into one) or that some chunks lack."""
    out = {}
    for c, dt in final.items():
        if c == ROW_ID:
            continue
        name = unescape_column(c)
        types = {str(s[c]) for s in schemas if c in s and s[c] != pl.Null}
        note = changes.get(name, "")
        if len(types) > 1:
            note = _merge_notes(note, f"read as {', '.join(sorted(types))} in different chunks, joined as {dt}")
        if any(c not in s for s in schemas):
            note = _merge_notes(note, "absent from some rows, written as null")
        if note != changes.get(name, ""):
            out[name] = note
    return out


def _count(p: Path) -> int:
    return pl.scan_parquet(p).select(pl.len()).collect().item()


def run_streaming(
    ex, strategy: ir.Strategy, data: str | Path, output: str | Path, spill_dir: str | Path | None = None, required=None, chunk_bytes: int = 64 << 20,
    commit=commit,
) -> RunResult:
    """Run ``strategy`` over ``data`` out of core and sink the kept rows to ``output`` (.parquet,
    .jsonl/.ndjson or .csv). ``RunResult.frame`` is empty: the rows are in ``output``. ``commit(tmp,
    output)`` moves the finished temporary file into place (``autodp run`` passes the output rules').
    Raises ``NoUsableRows`` (with the quarantine) before writing anything when no input record is usable."""
    t0 = time.perf_counter()
    out = Path(output)
    sink_format(out, "streaming runs")
    spill = Path(tempfile.mkdtemp(prefix="autodp-stream-", dir=spill_dir))
    try:
        req = required if required is not None else required_columns([strategy])
        cur, loaded = scan_input(Path(data), req, ex.max_row_bytes, spill, chunk_bytes)
        if loaded.rows_total == loaded.quarantine.height:
            raise NoUsableRows(loaded)
        read_s = time.perf_counter() - t0
        root = root_key(loaded.fingerprint)
        plan = plan_strategy(strategy, root, ex.registry, ex.services)
        reports: list[StepReport] = []
        dropped_files: list[Path] = []
        rows = loaded.rows_total - loaded.quarantine.height
        max_issued = loaded.rows_total - 1
        steps = [strategy.steps[i] for i in plan.order]
        fusable = [_fusable(s, ex.registry) for s in steps]
        pos = 0
        while pos < len(steps):
            if fusable[pos]:  # this step and the fusable ones after it: one pass
                end = pos + 1
                while end < len(steps) and fusable[end]:
                    end += 1
                cur, rows = _run_fused(ex, strategy, plan, list(range(pos, end)), cur, rows, spill, reports, dropped_files)
                pos = end
                continue
            step = steps[pos]
            if isinstance(step, ir.OpStep) and str(ex.registry.get(step.op).kind) == "global":
                done = _run_global(ex, strategy, plan, pos, cur, rows, spill, reports, dropped_files)
                if done is not None:
                    cur, rows = done
                    pos += 1
                    continue
            cur, rows, max_issued = _run_one(ex, strategy, plan, pos, cur, rows, max_issued, spill, reports, dropped_files)
            pos += 1
        dropped_ids = pl.concat([pl.read_parquet(p) for p in dropped_files]) if dropped_files else pl.DataFrame(schema=DROPPED_SCHEMA)
        return written_result(strategy, plan, root, loaded, cur, rows, dropped_ids, reports, out, commit, t0, read_s)
    finally:
        shutil.rmtree(spill, ignore_errors=True)


def sink_format(out: Path, who: str) -> str:
    """The Polars sink for an output path (``parquet``, ``ndjson``, ``csv``); a DataError naming ``who`` otherwise."""
    sink = _OUT_SINKS.get(out.suffix.lower())
    if sink is None:
        raise DataError(f"{who} write .parquet, .jsonl, .ndjson or .csv, not {out.name}")
    return sink


def kept_columns(frame):
    """What an output holds of a frame (lazy or not) of kept rows: the user columns, their input
    names restored."""
    return frame.select([pl.col(c).alias(unescape_column(c)) for c in frame.collect_schema().names() if not c.startswith("__")])


def write_kept(cur: pl.LazyFrame, out: Path, commit=commit) -> dict[str, pl.DataType]:
    """Sink the kept rows of ``cur`` (user columns, their input names restored) to a fresh
    temporary file beside ``out``, then ``commit(tmp, out)``; returns the written schema. Shared
    with the Ray engine, so both write the same bytes."""
    final = kept_columns(cur)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)  # a fresh name beside the output
    os.close(fd)
    tmp_out = Path(tmp_name)
    try:
        getattr(final, f"sink_{sink_format(out, 'runs')}")(tmp_out)
        commit(tmp_out, out)
    except BaseException:
        tmp_out.unlink(missing_ok=True)
        raise
    return dict(final.collect_schema().items())


def written_result(strategy, plan, root: str, loaded: Loaded, cur: pl.LazyFrame, kept: int, dropped_ids: pl.DataFrame, reports: list, out: Path, commit, t0: float, read_s: float) -> RunResult:
    """Write the kept rows ``cur`` to ``out`` (``write_kept``) and return the run's result, whose
    frame is empty (the rows are in ``out``). Shared with the Ray engine."""
    schema = write_kept(cur, out, commit)
    return finished_result(strategy, plan, root, loaded, schema, cur.select(ROW_ID).collect()[ROW_ID], kept, dropped_ids, reports, out, t0, read_s)


def finished_result(strategy, plan, root: str, loaded: Loaded, schema, ids: pl.Series, kept: int, dropped_ids: pl.DataFrame, reports: list, out: Path, t0: float,
                    read_s: float) -> RunResult:
    """The result of a run whose kept rows (``ids``, columns ``schema``) are already in ``out``:
    its frame is empty."""
    acc = Accounting(loaded.rows_total, kept, dropped_ids.height, loaded.quarantine.height, sum(r.added for r in reports), reports, dropped_ids.cast(DROPPED_SCHEMA))
    return RunResult(
        strategy=strategy.name,
        frame=pl.DataFrame(schema=schema),
        ids=ids,
        accounting=acc,
        quarantine=loaded.quarantine,
        fingerprint=loaded.fingerprint,
        root_key=root,
        keys=list(plan.keys),
        final_key=plan.keys[-1] if plan.keys else root,
        seconds=time.perf_counter() - t0,
        read_seconds=read_s,
        output=str(out),
        columns_changed=dict(loaded.changes),
    )


# ---------------------------------------------------------------- the three ways a step runs

_AT = "__dropped_at"  # in a fused pass: the plan position of the step that dropped the row (null: alive)
_WHY = "__dropped_why"


def _cheap_rowwise(cls) -> bool:
    return bool(cls.commutes) and cls.deterministic and str(cls.cost) == "vectorised"


def _fusable(step: ir.Step, reg) -> bool:
    """A step that may share one streaming pass with its neighbours: a map or filter whose
    operators (signals included) are row-wise (``commutes``), deterministic and vectorised. In such
    a pass rows are marked dropped instead of removed, so later steps of the pass also compute on
    them: harmless for row-wise operators and cheap for vectorised ones (never an LLM call)."""
    match step:
        case ir.OpStep(op=op, args=args):
            cls = reg.get(op)
            if str(cls.kind) not in ("map", "filter") or not _cheap_rowwise(cls):
                return False
            exprs = list(args)
        case ir.Filter(predicate=p):
            exprs = [p]
        case ir.Assign(value=v):
            exprs = [v]
        case _:
            return False
    return all(_cheap_rowwise(reg.get(c.op)) for e in exprs for c in ir.walk_exprs(e) if isinstance(c, ir.Call))


def _user_columns(lf: pl.LazyFrame) -> list[str]:
    return [c for c in lf.collect_schema().names() if c != ROW_ID and not c.startswith("__")]


def _run_fused(ex, strategy, plan, group: list[int], cur: pl.LazyFrame, rows: int, spill: Path, reports: list, dropped_files: list):
    """Consecutive row-wise steps as ONE streaming query written once (instead of one spill per
    step): each filter marks the rows it drops (``_AT``, ``_WHY``), each map records which live rows
    it changed (``__mod_N``); the accounting is read back from those small columns."""
    t = time.perf_counter()
    lf = cur.with_columns(pl.lit(None, dtype=pl.Int32).alias(_AT), pl.lit(None, dtype=pl.String).alias(_WHY))
    markers = [_AT, _WHY]
    maps: list[int] = []
    for pos in group:
        step = strategy.steps[plan.order[pos]]
        rows_only = isinstance(step, ir.Filter) or (isinstance(step, ir.OpStep) and str(ex.registry.get(step.op).kind) == "filter")
        user = [] if rows_only else _user_columns(lf)
        if user:
            lf = lf.with_columns([pl.col(c).alias(f"__pre_{c}") for c in user])
        lf = lower_step(step, lf, DropRecorder(ex.registry, ex.services), "1")
        names = lf.collect_schema().names()
        if KEEP in names:
            reason = drop_reason(names, ir.step_text(step))
            hit = pl.col(_AT).is_null() & ~pl.col(KEEP).fill_null(False)
            lf = lf.with_columns(
                pl.when(hit).then(pl.lit(pos, dtype=pl.Int32)).otherwise(pl.col(_AT)).alias(_AT),
                pl.when(hit).then(reason).otherwise(pl.col(_WHY)).alias(_WHY),
            )
        if not rows_only:
            common = [c for c in user if c in names]
            changed = pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"__pre_{c}")) for c in common]) if common else pl.lit(False)
            lf = lf.with_columns((changed & pl.col(_AT).is_null()).alias(f"__mod_{pos}"))
            markers.append(f"__mod_{pos}")
            maps.append(pos)
        # statistics of this step go: a later step after a map must not read values of the old text
        lf = lf.select([c for c in lf.collect_schema().names() if c == ROW_ID or not c.startswith("__") or c in markers])
    path = spill / f"fused-{group[0]:03d}.parquet"
    lf.sink_parquet(path, compression="lz4")
    g = pl.scan_parquet(path)
    counts = g.select(
        *[(pl.col(_AT) == p).sum().alias(f"d{p}") for p in group], *[pl.col(f"__mod_{p}").sum().alias(f"m{p}") for p in maps]
    ).collect().row(0, named=True)
    labels = {p: str(plan.order[p] + 1) for p in group}
    drop_path = spill / f"dropped-{group[0]:03d}.parquet"
    gone = g.filter(pl.col(_AT).is_not_null())
    gone.select(
        pl.col(ROW_ID).alias("rid"), pl.col(_AT).replace_strict(labels, return_dtype=pl.String).alias("step"), pl.col(_WHY).alias("reason")
    ).cast(DROPPED_SCHEMA).sink_parquet(drop_path)
    dropped_files.append(drop_path)
    by_step = _reasons_by_step(drop_path) if sum(counts[f"d{p}"] for p in group) else {}
    share = (time.perf_counter() - t) / len(group)
    note = f"streaming run: one pass with steps {labels[group[0]]}-{labels[group[-1]]}, not cached" if len(group) > 1 else "streaming run: not cached"
    for pos in group:
        step = strategy.steps[plan.order[pos]]
        rows_out = rows - counts[f"d{pos}"]
        modified = int(counts.get(f"m{pos}", 0) or 0)
        text = ir.step_text(step)
        reports.append(StepReport(labels[pos], text, _kind(step, ex.registry), plan.keys[pos], rows, rows_out, modified, 0, by_step.get(labels[pos], {}), share, "streamed", False, note))
        ex.emit("node", key=plan.keys[pos], text=text, depth=pos + 1, source="streamed", rows_in=rows, rows_out=rows_out, seconds=share)
        rows = rows_out
    return g.filter(pl.col(_AT).is_null()).drop(markers), rows


def _reasons_by_step(drop_path: Path) -> dict[str, dict[str, int]]:
    d = pl.read_parquet(drop_path, columns=["step", "reason"])
    return {s: reason_counts(part) for (s,), part in d.group_by("step")}


class _NarrowContext(DropRecorder):
    """For a global step: every statistic (a dedup key, a MinHash signature, a score) is computed in
    a streaming pass into its own small file (one value a row, in the rows' order) and put beside
    the rows (a horizontal concatenation: no join), so that the decision, which needs all rows at
    once, holds ids and statistics, never the text."""

    def __init__(self, reg, services, spill: Path, tag: str):
        super().__init__(reg, services)
        self.spill, self.tag, self.n = spill, tag, 0

    def statistic(self, lf, name, spec, expr):
        from ..plan_keys import stat_column_name

        col = stat_column_name(name, spec)
        if col in lf.collect_schema().names():
            return lf, col
        path = self.spill / f"stat-{self.tag}-{self.n}.arrow"  # Arrow IPC: signatures are random bits that Parquet encodes slowly
        self.n += 1
        lf.select(expr.alias(col)).sink_ipc(path)  # sinks keep the row order: the values line up with lf's rows
        return pl.concat([lf, pl.scan_ipc(path)], how="horizontal"), col


def _run_global(ex, strategy, plan, pos: int, cur: pl.LazyFrame, rows: int, spill: Path, reports: list, dropped_files: list):
    """A global step (dedup, selection) in two passes: the decision on ids and statistics only
    (``_NarrowContext``), then the text rows filtered by id as the next pass reads them (lazily:
    nothing is written here). None when the step does not fit (it changes columns or drops rows
    without ``KEEP``): the caller runs it the general way."""
    t = time.perf_counter()
    step = strategy.steps[plan.order[pos]]
    label, text = str(plan.order[pos] + 1), ir.step_text(step)
    ctx = _NarrowContext(ex.registry, ex.services, spill, f"{pos:03d}")
    lf = lower_step(step, cur, ctx, "1")
    names = lf.collect_schema().names()
    if KEEP not in names or ctx.side_drops or _user_columns(lf) != _user_columns(cur):
        return None
    reason = drop_reason(names, text)
    gone = lf.filter(~pl.col(KEEP).fill_null(False)).select(pl.col(ROW_ID).alias("rid"), pl.lit(label).alias("step"), reason.alias("reason")).collect()
    drop_path = spill / f"dropped-{pos:03d}.parquet"
    gone.cast(DROPPED_SCHEMA).write_parquet(drop_path)
    dropped_files.append(drop_path)
    by_reason = reason_counts(gone) if gone.height else {}
    rows_out = rows - gone.height
    seconds = time.perf_counter() - t
    key = plan.keys[pos]
    reports.append(StepReport(label, text, _kind(step, ex.registry), key, rows, rows_out, 0, 0, by_reason, seconds, "streamed", False, "streaming run: decided on ids and keys, not cached"))
    ex.emit("node", key=key, text=text, depth=pos + 1, source="streamed", rows_in=rows, rows_out=rows_out, seconds=seconds)
    if gone.height:
        cur = cur.filter(~pl.col(ROW_ID).is_in(gone["rid"].implode()))
    return cur, rows_out


def _run_one(ex, strategy, plan, pos: int, cur: pl.LazyFrame, rows: int, max_issued: int, spill: Path, reports: list, dropped_files: list):
    """Any other step (generate, where-blocks, maps across rows): one streaming query from the
    previous spill to its own, with the rows it drops split off and modified rows counted."""
    t = time.perf_counter()
    step = strategy.steps[plan.order[pos]]
    key = plan.keys[pos]
    label = str(plan.order[pos] + 1)
    text = ir.step_text(step)
    user = _user_columns(cur)
    rows_only = isinstance(step, ir.Filter) or (isinstance(step, ir.OpStep) and str(ex.registry.get(step.op).kind) in ("filter", "global"))
    pre_cols = [] if rows_only else user
    if pre_cols:
        cur = cur.with_columns([pl.col(c).alias(f"__pre_{c}") for c in pre_cols])
    ctx = DropRecorder(ex.registry, ex.services)
    lf = lower_step(step, cur, ctx, "1")
    if not rows_only:  # new rows of a generate step: fresh ids above every id issued so far
        fresh = pl.col(ROW_ID).is_null().cast(pl.UInt64).cum_sum() + max_issued
        lf = lf.with_columns(pl.coalesce(pl.col(ROW_ID), fresh).cast(pl.UInt64).alias(ROW_ID))
    pre_path = spill / f"step-{pos:03d}-pre.parquet"
    lf.sink_parquet(pre_path, compression="lz4")
    pre = pl.scan_parquet(pre_path)
    names = pre.collect_schema().names()
    queries = []
    drop_path = spill / f"dropped-{pos:03d}.parquet"
    parts = []
    if KEEP in names:
        reason = drop_reason(names, text)
        parts.append(pre.filter(~pl.col(KEEP).fill_null(False)).select(pl.col(ROW_ID).alias("rid"), pl.lit(label).alias("step"), reason.alias("reason")))
        kept = pre.filter(pl.col(KEEP).fill_null(False))
    else:
        kept = pre
    for path, side in ctx.side_drops:
        parts.append(side.select(pl.col(ROW_ID).alias("rid"), pl.lit(label + path[1:]).alias("step"), pl.col("reason")))
    modified_q = None
    if pre_cols:
        common = [c for c in pre_cols if c in names]
        if common:
            changed = pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"__pre_{c}")) for c in common])
            modified_q = kept.select(changed.sum().alias("m"))
    node_path = spill / f"step-{pos:03d}.parquet"
    keep_cols = [c for c in names if c == ROW_ID or not c.startswith("__")]
    queries.append(kept.select(keep_cols).sink_parquet(node_path, compression="lz4", lazy=True))
    if parts:
        queries.append(pl.concat(parts, how="vertical_relaxed").cast(DROPPED_SCHEMA).sink_parquet(drop_path, lazy=True))
        dropped_files.append(drop_path)
    res = pl.collect_all(queries + ([modified_q] if modified_q is not None else []))
    modified = int(res[-1].item() or 0) if modified_q is not None else 0
    rows_out = _count(node_path)
    if not rows_only:
        max_issued = max(max_issued, int(pl.scan_parquet(node_path).select(pl.col(ROW_ID).max()).collect().item() or 0))
    by_reason: dict[str, int] = {}
    if parts:
        by_reason = reason_counts(pl.read_parquet(drop_path, columns=["reason"]))
    dropped = sum(by_reason.values())
    added = max(rows_out - rows + dropped, 0)
    os.unlink(pre_path)
    seconds = time.perf_counter() - t
    reports.append(StepReport(label, text, _kind(step, ex.registry), key, rows, rows_out, modified, added, by_reason, seconds, "streamed", False, "streaming run: not cached"))
    ex.emit("node", key=key, text=text, depth=pos + 1, source="streamed", rows_in=rows, rows_out=rows_out, seconds=seconds)
    return pl.scan_parquet(node_path), rows_out, max_issued


def _kind(step: ir.Step, reg) -> str:
    return step_kind(step, reg)[0]


# Peak memory of an in-memory (batch) run per input byte: the parsed frame, plus one frame per step
# (each node is a new frame beside its parent until the wave ends; maps add a rewritten column,
# global steps their keys or signatures). Measured on the reference recipe (7 steps, JSONL): 0.78
# GB at 64 MB, 6.4 GB at 658 MB (9.7x), i.e. BASE + 1 per step = 10. Parquet input is compressed
# text (about 3x smaller than its JSONL), so its bytes count 3x.
EXPANSION_BASE = 3.0
EXPANSION_PER_STEP = 1.0
PARQUET_BYTES = 3.0
STREAM_ABOVE = 0.5  # of the available memory: leave the rest to the other processes of the machine


@dataclass(frozen=True, slots=True)
class ModeChoice:
    streaming: bool
    why: str


def estimated_footprint(path: str | Path, steps: int) -> int:
    """Estimated peak bytes of a batch run of a strategy of ``steps`` steps over ``path``."""
    p = Path(path)
    size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    if data_format(p) == "parquet":
        size *= PARQUET_BYTES
    return int(size * (EXPANSION_BASE + EXPANSION_PER_STEP * steps))


def available_memory() -> int:
    """MemAvailable of /proc/meminfo (what can be used without swapping), else physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def choose_mode(path: str | Path, output: str | Path | None, steps: int, force: bool | None = None) -> ModeChoice:
    """Batch or streaming for one run: ``force`` True/False (``--streaming``/``--batch``) decides;
    otherwise streaming when the estimated footprint of a batch run (``estimated_footprint``) is
    above ``STREAM_ABOVE`` of the available memory and the input and output allow it."""
    if force is not None:
        return ModeChoice(force, "--streaming" if force else "--batch")
    try:
        need = estimated_footprint(path, steps)
        avail = available_memory()
        fmt = data_format(Path(path))
    except (OSError, ValueError, AttributeError, DataError):
        return ModeChoice(False, "input size unknown")
    gb = f"estimated {need / 2**30:.1f} GB in memory, {avail / 2**30:.1f} GB available"
    if need <= STREAM_ABOVE * avail:
        return ModeChoice(False, gb)
    if fmt not in STREAM_FORMATS or (output is not None and Path(output).suffix.lower() not in _OUT_SINKS):
        return ModeChoice(False, f"{gb}, but streaming needs jsonl/parquet in and .parquet/.jsonl/.csv out")
    return ModeChoice(True, gb)
