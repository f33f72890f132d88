"""The Ray engine: one strategy over a Ray cluster, with the plan, the lowering and the row
accounting of the local engines (docs/ray.md). Ray is imported only when a run uses it.

- The input is validated on the driver, in bounded chunks, by the streaming engine's reader
  (``scan_input``: the same row ids, quarantine and fingerprint) and put into the object store in
  blocks.
- **Row-local steps** (maps, filters, signals, ``where:`` blocks of such steps) run per block with
  Ray Data's ``map_batches``: each block becomes a Polars frame and each step is lowered by
  ``lower_step`` exactly as the in-memory executor lowers it (one semantics). Consecutive row-local
  steps share one pass; a row a step drops leaves the pass as (id, step, reason) without its text,
  and each map marks the rows it changed, so the accounting is read from those small columns.
- **A global step** (dedup, selection) decides on ids and statistics: the statistics are per-row
  values, computed per block by the step's own lowering. When the operator's decision splits into
  groups (``GlobalOp.buckets``: dedup.exact by its key, dedup.minhash by its LSH bands), ids and
  statistics are shuffled on the bucket key (several keys a row: candidate pairs per bucket, then
  connected components over the ids on the driver, then a shuffle on the component) and each
  partition, a set of whole groups, is decided by the operator's own lowering. Any other global
  step (``select.*``) is decided on the driver from the ids and statistics of all rows. Text never
  leaves its block.
- Steps that cannot run faithfully per block (model and LLM operators, maps across rows, generate)
  are refused before anything runs: a one-line error, never a silent substitute.

The kept rows are fetched block by block, in row-id order, and written by the streaming engine's
writer (``write_kept``); or, as Parquet shards (``shards=True``), written by the workers, one file
a block, into a folder beside the output that becomes the output once every shard is checked: the
driver sees only ids. No result cache is used (the node keys are the local engines').
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import tempfile
import time
import uuid
from pathlib import Path

import polars as pl

from autodp_backends.atomic import publish

from .. import ir
from ..atomic import commit
from ..declarations import KEEP, ROW_ID
from ..default_registry import registry as default_registry
from ..graph import components
from ..io import DataError, NoUsableRows, data_format, first_line
from ..lower import lower_step
from ..opregistry import Registry
from ..outputs import commit_folder
from ..plan_keys import stat_column_name
from .keys import root_key
from .plan import DropRecorder, drop_reason, plan_strategy, reason_counts, required_columns, step_kind
from .report import DROPPED_SCHEMA, RunResult, StepReport
from .streaming import STREAM_FORMATS, finished_result, kept_columns, scan_input, sink_format, written_result

__all__ = ["run_ray", "connect", "ray_way", "NotOnRay", "decide", "original_error"]

BLOCK_ROWS = 50_000  # rows per block: a few MB of text, enough work per task to hide Ray's overhead
_AT, _SUB, _WHY = "__ray_at", "__ray_sub", "__ray_why"  # in a row pass: where a dropped row went
_MOD = "__ray_mod_"  # + plan position: the map changed this row
_GROUP = "__ray_group"
_BUCKET = "__ray_b"  # + j: the j-th bucket key of a row (GlobalOp.buckets)


class NotOnRay(ValueError):
    """A step the Ray engine does not run (yet); the CLI prints it as one line."""


# ---------------------------------------------------------------- Ray itself


def ray_module():
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is the `data` extra of ray)
    except ImportError as e:
        raise DataError(f"the ray engine needs Ray with Ray Data: pip install 'autodp[ray]' ({first_line(e)})") from None
    return ray


def connect(address: str | None = None):
    """Join the cluster at ``address`` (``ray://...``, ``HOST:PORT``, ``auto``), or, without one, the
    cluster of ``RAY_ADDRESS``, else a local one; a process already connected stays so. Ray Data
    keeps the block order (the output is in row-id order, as locally)."""
    ray = ray_module()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    # the operator's own exception, not Ray Data's UserCodeException "from" it: the chain does not
    # survive the trip to the driver (exceptions pickle without __cause__), the exception itself does
    ctx.raise_original_map_exception = True
    ctx.enable_progress_bars = False  # autodp prints one line a step, and Ray Data's own lines
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # ("Starting execution of ...") would bury them
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # the notice that bars are off: our choice
    return ray


def _fault_point(where: str) -> None:
    """Test hook (``tests/engine/test_ray.py``), armed only by a file: with ``AUTODP_RAY_FAULT``
    naming a file that holds ``WHERE kill``, the first worker reaching ``where`` claims the file
    (a rename: one worker, once) and kills its own process by its PID, as a crashed node would;
    ``WHERE raise-always`` makes every such task raise, as a broken operator would."""
    path = os.environ.get("AUTODP_RAY_FAULT")
    if not path:
        return
    try:
        at, how = Path(path).read_text().split()
    except (OSError, ValueError):
        return
    if at != where:
        return
    if how == "raise-always":
        raise RuntimeError(f"injected failure in {where}")
    if how == "kill":
        try:  # claim the fault once: every worker may link, only one unlinks the original
            os.link(path, f"{path}.taken.{os.getpid()}")
            os.unlink(path)
        except OSError:
            return  # another worker claimed it
        os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------- which way a step runs


def _local_call(op) -> str | None:
    if str(op.cost) in ("llm", "model"):
        return f"{op.name} needs a model (model operators on Ray are not done yet)"
    if not op.commutes:
        return f"{op.name} is not row-local (it reads other rows)"
    return None


def original_error(e: BaseException) -> BaseException:
    """The operator's own error inside Ray's wrappers (a task error carries it as ``cause``), so
    that a failing step is one line, as in a local run."""
    for _ in range(10):
        inner = getattr(e, "cause", None) or e.__cause__
        if inner is None or not type(e).__module__.startswith("ray"):
            break
        e = inner
    # Ray Data appends its retry advice to the message ("\nFailed to apply UDF transform after
    # 1/1 attempts ..."): the operator's message is what precedes it
    if e.args and isinstance(e.args[0], str) and _RAY_NOTE in e.args[0]:
        e.args = (e.args[0].split(_RAY_NOTE)[0], *e.args[1:])
    return e


_RAY_NOTE = "\nFailed to apply UDF transform"


def ray_way(step: ir.Step, reg: Registry) -> tuple[str, str | None]:
    """("rows" | "global", None), or (_, why the Ray engine cannot run the step)."""
    exprs: list[ir.Expr] = []
    way = "rows"
    match step:
        case ir.OpStep(op=op, args=args):
            cls = reg.get(op)
            kind = str(cls.kind)
            if kind == "global":
                way = "global"
                if str(cls.cost) in ("llm", "model"):
                    return way, f"{op} needs a model (model operators on Ray are not done yet)"
            elif kind in ("map", "filter"):
                why = _local_call(cls)
                if why:
                    return way, why
            else:
                return way, f"{op} is a {kind} step (only maps, filters, where-blocks and global steps run on Ray)"
            exprs = list(args)
        case ir.Filter(predicate=p):
            exprs = [p]
        case ir.Assign(value=v):
            exprs = [v]
        case ir.Where(predicate=p, steps=steps):
            exprs = [p]
            for s in steps:
                w, why = ray_way(s, reg)
                if why or w != "rows":
                    return way, why or "a global step inside a where-block"
    for e in exprs:
        for c in ir.walk_exprs(e):
            if isinstance(c, ir.Call):
                why = _local_call(reg.get(c.op))
                if why:
                    return way, why
    return way, None


# ---------------------------------------------------------------- row-local steps, per block


def _registry(reg: Registry | None) -> Registry:
    """Workers get ``None`` for the default registry and load it from the entry points themselves
    (a registry holds lambdas, which do not pickle)."""
    return reg if reg is not None else default_registry()


def _shipped(reg: Registry) -> Registry | None:
    if reg is default_registry():
        return None
    import pickle

    try:
        pickle.dumps(reg)
    except Exception:
        raise NotOnRay("the run's operator registry cannot be sent to Ray workers: register operators through the autodp.ops entry point") from None
    return reg


def _user(columns) -> list[str]:
    return [c for c in columns if c != ROW_ID and not c.startswith("__")]


def _row_step(df: pl.DataFrame, step: ir.Step, pos: int, reg: Registry) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """One row-local step on one block, as the executor does it on a node: lowered by ``lower_step``,
    rows split by ``KEEP`` (and the side drops of a where-block), changed rows marked."""
    text = ir.step_text(step)
    kind = step_kind(step, reg)[0]
    flags = [c for c in df.columns if c.startswith(_MOD)]
    ctx = DropRecorder(reg)
    lf = lower_step(step, df.lazy(), ctx, "1")
    out, *sides = pl.collect_all([lf, *(s for _, s in ctx.side_drops)])
    gone = []
    if KEEP in out.columns:
        keep = out[KEEP].fill_null(False)
        gone.append(out.filter(~keep).select(ROW_ID, pl.lit("").alias(_SUB), drop_reason(out.columns, text).alias(_WHY), *flags))
        out = out.filter(keep)
    for (path, _), side in zip(ctx.side_drops, sides, strict=True):
        side = side.join(df.select(ROW_ID, *flags), on=ROW_ID, how="left")  # what earlier maps did to these rows
        gone.append(side.select(ROW_ID, pl.lit(path[1:]).alias(_SUB), pl.col("reason").alias(_WHY), *flags))
    out = out.select([c for c in out.columns if c == ROW_ID or not c.startswith("__") or c.startswith(_MOD)])
    if kind not in ("filter", "global"):  # modified: a user column of the row differs from before the step
        common = [c for c in _user(df.columns) if c in out.columns]
        changed = pl.lit(False)
        if common:
            j = out.select(ROW_ID, *common).join(df.select(ROW_ID, *common), on=ROW_ID, how="left", suffix="__pre", maintain_order="left")
            changed = pl.Series(j.select(pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}__pre")) for c in common])).to_series())
        out = out.with_columns(changed.alias(f"{_MOD}{pos}"))
    return out, [g.with_columns(pl.lit(pos, dtype=pl.Int32).alias(_AT)) for g in gone]


class RowPass:
    """``map_batches`` function: consecutive row-local steps over one block (an Arrow table). The
    result holds the kept rows (``_AT`` null) and, without their text, the rows the steps dropped."""

    def __init__(self, reg: Registry | None, steps: list[tuple[int, ir.Step]]):
        self.reg, self.steps = reg, steps

    def __call__(self, table):
        _fault_point("rows")
        df = pl.from_arrow(table)
        reg = _registry(self.reg)
        gone: list[pl.DataFrame] = []
        for pos, step in self.steps:
            df, g = _row_step(df, step, pos, reg)
            gone += g
        alive = df.with_columns(pl.lit(None, dtype=pl.Int32).alias(_AT), pl.lit(None, dtype=pl.String).alias(_SUB), pl.lit(None, dtype=pl.String).alias(_WHY))
        out = pl.concat([alive, *gone], how="diagonal_relaxed") if gone else alive
        return out.select(alive.columns).to_arrow()


def _alive(table):
    df = pl.from_arrow(table)
    return df.filter(pl.col(_AT).is_null()).select([c for c in df.columns if not c.startswith("__ray_")]).to_arrow()


def _summary(table):
    """A pass's accounting of one block: the rows it dropped (id, step position, sub-step, reason;
    no text) and, per map, how many rows it changed."""
    df = pl.from_arrow(table)
    gone = df.filter(pl.col(_AT).is_not_null()).select(ROW_ID, _AT, _SUB, _WHY)
    counts = df.select([pl.col(c).cast(pl.Int64).sum() for c in df.columns if c.startswith(_MOD)])
    return gone.to_arrow(), counts.to_arrow()


def _frames(ray, refs) -> pl.DataFrame:
    frames = [pl.from_arrow(ray.get(r)) for r in refs]
    return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()


# ---------------------------------------------------------------- global steps


class _Statistics(DropRecorder):
    """Lowers a global step only to learn its statistics (name -> column, and the expressions)."""

    def __init__(self, reg):
        super().__init__(reg)
        self.exprs: list[tuple[str, pl.Expr]] = []
        self.names: dict[str, str] = {}

    def statistic(self, lf, name, spec, expr):
        col = stat_column_name(name, spec)
        self.names[name] = col
        if col not in lf.collect_schema().names():
            self.exprs.append((col, expr))
            lf = lf.with_columns(expr.alias(col))
        return lf, col


def _op(step: ir.OpStep, reg: Registry):
    op = reg.get(step.op)()
    return op, op.Params(**dict(step.params))


class NarrowPass:
    """``map_batches`` function for a global step: per block, the row ids, the step's statistics
    (computed by the step's own lowering), the numeric columns (a score may read one), and the
    operator's bucket keys when it has them. Text columns stay behind."""

    def __init__(self, reg: Registry | None, step: ir.OpStep):
        self.reg, self.step = reg, step

    def __call__(self, table):
        _fault_point("statistics")
        df = pl.from_arrow(table)
        reg = _registry(self.reg)
        ctx = _Statistics(reg)
        lower_step(self.step, df.lazy(), ctx, "1")  # lazily: nothing is decided here
        lf = df.lazy()
        for col, expr in ctx.exprs:
            lf = lf.with_columns(expr.alias(col))
        scalars = [c for c, t in df.schema.items() if c != ROW_ID and not c.startswith("__") and (t.is_numeric() or t == pl.Boolean)]
        narrow = lf.select(ROW_ID, *[c for c, _ in ctx.exprs], *scalars).collect()
        op, params = _op(self.step, reg)
        keys = op.buckets(narrow, params, ctx.names)
        if keys is not None:
            narrow = narrow.with_columns([pl.Series(f"{_BUCKET}{j}", keys[:, j], dtype=pl.UInt64) for j in range(keys.shape[1])])
        return narrow.to_arrow()


def decide(reg: Registry | None, step: ir.OpStep, label: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The rows a global step drops from ``frame`` (ids, statistics, numeric columns), with their
    reasons (``DROPPED_SCHEMA``): the operator's own lowering, as locally."""
    text = ir.step_text(step)
    reg = _registry(reg)
    frame = frame.select([c for c in frame.columns if not c.startswith("__ray_")])
    ctx = DropRecorder(reg)
    try:
        lf = lower_step(step, frame.lazy(), ctx, "1")
        names = lf.collect_schema().names()
        if KEEP not in names or ctx.side_drops:
            raise NotOnRay(f"{text}: a global step that drops rows without a KEEP column does not run on Ray yet")
        reason = drop_reason(names, text)
        gone = lf.filter(~pl.col(KEEP).fill_null(False)).select(pl.col(ROW_ID).alias("rid"), pl.lit(label).alias("step"), reason.alias("reason")).collect()
    except pl.exceptions.ColumnNotFoundError as e:
        raise NotOnRay(f"{text}: its decision reads a text column ({first_line(e)}), which the Ray engine keeps in its blocks") from None
    return gone.cast(DROPPED_SCHEMA)


def _split(table, key: str, parts: int, labels=None):
    """A mapper of a shuffle: the rows of one block in ``parts`` partitions by the hash of ``key``
    (``labels``: a (ROW_ID, _GROUP) table, joined first: rows outside it are their own group)."""
    df = pl.from_arrow(table)
    if labels is not None:
        df = df.join(pl.from_arrow(labels), on=ROW_ID, how="left").with_columns(pl.coalesce(_GROUP, ROW_ID).alias(_GROUP))
    part = (pl.col(key).hash(0x5EED) % parts).alias("__ray_part")
    split = df.with_columns(part).partition_by("__ray_part", as_dict=True, include_key=False)
    out = [split.get((i,), df.head(0)).to_arrow() for i in range(parts)]
    return out if parts > 1 else out[0]


def _pairs(*tables):
    """A reducer: for each bucket of two rows or more, (row, the bucket's smallest row) pairs."""
    df = pl.concat([pl.from_arrow(t) for t in tables], how="vertical_relaxed")
    df = df.filter(pl.col("k").is_duplicated())
    return df.with_columns(m=pl.col(ROW_ID).min().over("k")).filter(pl.col(ROW_ID) != pl.col("m")).select(ROW_ID, "m").unique().to_arrow()


def _band_rows(table):
    """(bucket key, row id): one row per (row, bucket)."""
    df = pl.from_arrow(table)
    cols = [c for c in df.columns if c.startswith(_BUCKET)]
    return df.select(ROW_ID, *cols).unpivot(cols, index=ROW_ID, value_name="k").select("k", ROW_ID).to_arrow()


def _decide_part(reg, step, label, *tables):
    frame = pl.concat([pl.from_arrow(t) for t in tables], how="vertical_relaxed")
    return decide(reg, step, label, frame).to_arrow()


def _shuffle(ray, refs: list, key: str, parts: int, reduce, args: tuple, labels=None) -> list:
    """Map-reduce over object refs: every block split by ``key`` into ``parts``, then ``reduce(*args,
    *partition i of every block)`` for each i. Returns the reducers' refs."""
    split = ray.remote(_split).options(num_returns=parts)
    mapped = [split.remote(r, key, parts, labels) for r in refs]
    if parts == 1:
        mapped = [[m] for m in mapped]
    red = ray.remote(reduce)
    return [red.remote(*args, *[m[i] for m in mapped]) for i in range(parts)]


def _groups(ray, refs: list, parts: int):
    """Several bucket keys a row: (row, group) for the rows linked to another, where a group is a
    connected component of the rows sharing a key (its smallest row id); ids only on the driver."""
    bands = [ray.remote(_band_rows).remote(r) for r in refs]
    pair_refs = _shuffle(ray, bands, "k", parts, _pairs, ())
    pairs = _frames(ray, pair_refs)
    if pairs.height == 0:
        return None
    a, b = pairs[ROW_ID].to_numpy(), pairs["m"].to_numpy()
    ids = pl.concat([pairs[ROW_ID], pairs["m"]]).unique().sort().to_numpy()
    label = components(len(ids), ids.searchsorted(a), ids.searchsorted(b))
    return pl.DataFrame({ROW_ID: ids, _GROUP: ids[label]}, schema={ROW_ID: pl.UInt64, _GROUP: pl.UInt64}).to_arrow()


class _Without:
    """``map_batches`` function: the block without the rows whose ids are in the object ``ref``."""

    def __init__(self, ref):
        self.ref = ref

    def __call__(self, table):
        import ray

        ids = pl.Series(ray.get(self.ref), dtype=pl.UInt64)
        return pl.from_arrow(table).filter(~pl.col(ROW_ID).is_in(ids.implode())).to_arrow()


# ---------------------------------------------------------------- Parquet shards


def _write_shard(table, folder: str):
    """A worker writes one block of kept rows into ``folder`` (the run's temporary output folder,
    never created here: a node that does not see it fails instead of writing where nobody reads),
    as ``part-<first row id>.parquet`` so that name order is row order. Written under a hidden
    temporary name and renamed: a retried task replaces the file whole. Returns the block's row
    ids and (name, rows, bytes), or None for an empty block."""
    _fault_point("shard")
    df = pl.from_arrow(table)
    ids = df.select(ROW_ID).to_arrow()
    if df.height == 0:
        return ids, None
    d = Path(folder)
    if not d.is_dir():
        raise DataError(f"the output folder {d.parent} is not visible on the Ray node {socket.gethostname()}: "
                        "Parquet shards need an -o on storage every node mounts at the same path")
    name = f"part-{df[ROW_ID][0]:020d}.parquet"
    tmp = d / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        kept_columns(df).write_parquet(tmp)
        publish(tmp, d / name)
    finally:
        tmp.unlink(missing_ok=True)
    return ids, (name, df.height, (d / name).stat().st_size)


def _shards(ray, ds, out: Path, empty: pl.DataFrame, publish) -> tuple[dict, pl.Series]:
    """Write the kept rows of ``ds`` as Parquet shards, checked, then published as the folder
    ``out``; the written schema and the kept ids. ``empty``: the columns when no block is left."""
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write = ray.remote(_write_shard).options(num_returns=2)
        parts = [write.remote(r, str(folder)) for r in ds.to_arrow_refs()]
        ids = _frames(ray, [i for i, _ in parts])
        infos = [x for x in ray.get([w for _, w in parts]) if x is not None]
        if sum(n for _, n, _ in infos) != ids.height:
            raise OSError(f"the shards hold {sum(n for _, n, _ in infos):,} rows, the run kept {ids.height:,}")
        for name, _, size in infos:  # each shard a worker reported is there, whole
            st = os.lstat(folder / name)
            if st.st_size != size:
                raise OSError(f"shard {name} has {st.st_size} bytes, its worker wrote {size}: is the output folder shared by every node?")
        for f in os.listdir(folder):  # leftovers of a task that died writing, in our own folder
            if f.startswith("."):
                os.unlink(folder / f)
        if not infos:  # no row kept: one empty shard, so that a reader still finds the columns
            kept_columns(empty).write_parquet(folder / f"part-{0:020d}.parquet")
        schema = pl.read_parquet_schema(folder / min(os.listdir(folder)))
        publish(folder, out)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return schema, (ids[ROW_ID] if ids.height else pl.Series(ROW_ID, [], dtype=pl.UInt64))


# ---------------------------------------------------------------- the run


def run_ray(
    ex, strategy: ir.Strategy, data: str | Path, output: str | Path, *, address: str | None = None, block_rows: int = BLOCK_ROWS,
    partitions: int | None = None, spill_dir: str | Path | None = None, required=None, commit=commit, shards: bool = False, publish=commit_folder,
) -> RunResult:
    """Run ``strategy`` over ``data`` on Ray and write the kept rows to ``output`` (.parquet,
    .jsonl/.ndjson or .csv; with ``shards``, a folder of Parquet files written by the workers and
    made the output by ``publish(folder, output)``); ``RunResult.frame`` is empty, as after a
    streaming run. ``partitions``: reducers of a shuffle (default: one per block, at most 64).
    Raises ``NotOnRay`` before reading anything when a step cannot run on Ray, ``NoUsableRows``
    when no input record is usable."""
    t0 = time.perf_counter()
    out = Path(output)
    if not shards:
        sink_format(out, "ray runs")
    if data_format(Path(data)) not in STREAM_FORMATS:
        raise DataError(f"ray runs read {' or '.join(STREAM_FORMATS)} inputs, not {data_format(Path(data))}")
    for i, s in enumerate(strategy.steps, 1):
        why = ray_way(s, ex.registry)[1]
        if why:
            raise NotOnRay(f"step {i} ({ir.step_text(s)}) does not run on Ray: {why}; run it with the local engine")
    reg = _shipped(ex.registry)
    ray = connect(address)
    spill = Path(tempfile.mkdtemp(prefix="autodp-ray-", dir=spill_dir))
    try:
        req = required if required is not None else required_columns([strategy])
        cur, loaded = scan_input(Path(data), req, ex.max_row_bytes, spill)
        if loaded.rows_total == loaded.quarantine.height:
            raise NoUsableRows(loaded)
        compat = pl.CompatLevel.oldest()  # plain large strings: every Arrow kernel of Ray's knows them
        blocks = [ray.put(b.to_arrow(compat_level=compat)) for b in cur.collect_batches(chunk_size=block_rows)]
        ds = ray.data.from_arrow_refs(blocks)
        read_s = time.perf_counter() - t0
        root = root_key(loaded.fingerprint)
        plan = plan_strategy(strategy, root, ex.registry, ex.services)
        run = _Run(ray, ex, strategy, plan, partitions or max(1, min(len(blocks), 64)), reg)
        rows = loaded.rows_total - loaded.quarantine.height
        try:
            ds, rows = run.steps(ds, [strategy.steps[i] for i in plan.order], rows)
            if shards:
                dropped = pl.concat(run.dropped) if run.dropped else pl.DataFrame(schema=DROPPED_SCHEMA)
                schema, ids = _shards(ray, ds, out, cur.head(0).collect(), publish)
                return finished_result(strategy, plan, root, loaded, schema, ids, rows, dropped, run.reports, out, t0, read_s)
            parts = []
            for i, ref in enumerate(ds.to_arrow_refs()):  # one block at a time on the driver, in order
                part = spill / f"kept-{i:05d}.parquet"
                pl.from_arrow(ray.get(ref)).write_parquet(part, compression="lz4")
                parts.append(part)
        except Exception as e:
            cause = original_error(e)
            if cause is e:
                raise
            raise cause from None
        kept = pl.scan_parquet(parts) if parts else cur.head(0)
        dropped = pl.concat(run.dropped) if run.dropped else pl.DataFrame(schema=DROPPED_SCHEMA)
        return written_result(strategy, plan, root, loaded, kept, rows, dropped, run.reports, out, commit, t0, read_s)
    finally:
        shutil.rmtree(spill, ignore_errors=True)


class _Run:
    """One Ray run's state: the plan, the reports and dropped ids so far."""

    def __init__(self, ray, ex, strategy, plan, parts: int, reg: Registry | None):
        self.ray, self.ex, self.strategy, self.plan, self.parts = ray, ex, strategy, plan, parts
        self.reg = reg  # what the workers lower with (None: the default registry)
        self.reports: list[StepReport] = []
        self.dropped: list[pl.DataFrame] = []

    def _step(self, pos: int) -> tuple[ir.Step, str, str]:
        step = self.strategy.steps[self.plan.order[pos]]
        return step, str(self.plan.order[pos] + 1), ir.step_text(step)

    def _report(self, pos, rows, rows_out, modified, gone: pl.DataFrame, seconds, note):
        step, label, text = self._step(pos)
        self.dropped.append(gone.sort("rid"))  # per step by id, as the executor records a node
        by_reason = reason_counts(gone) if gone.height else {}
        key = self.plan.keys[pos]
        kind = step_kind(step, self.ex.registry)[0]
        self.reports.append(StepReport(label, text, kind, key, rows, rows_out, modified, 0, by_reason, seconds, "ray", False, note))
        self.ex.emit("node", key=key, text=text, depth=pos + 1, source="ray", rows_in=rows, rows_out=rows_out, seconds=seconds)

    def steps(self, ds, steps: list[ir.Step], rows: int):
        """Every step in plan order: runs of row-local steps as one pass each, global steps alone."""
        reg = self.ex.registry
        pos = 0
        while pos < len(steps):
            if ray_way(steps[pos], reg)[0] == "rows":
                end = pos + 1
                while end < len(steps) and ray_way(steps[end], reg)[0] == "rows":
                    end += 1
                ds, rows = self.row_pass(ds, list(range(pos, end)), rows)
                pos = end
            else:
                ds, rows = self.global_step(ds, pos, rows)
                pos += 1
        return ds, rows

    def row_pass(self, ds, group: list[int], rows: int):
        t = time.perf_counter()
        fn = RowPass(self.reg, [(p, self._step(p)[0]) for p in group])
        mat = ds.map_batches(fn, batch_format="pyarrow", batch_size=None).materialize()
        # the accounting by plain tasks over the blocks in the object store (a Ray Data pipeline
        # costs a scheduling round each); only ids, reasons and counts come back
        summary = self.ray.remote(_summary).options(num_returns=2)
        parts = [summary.remote(r) for r in mat.to_arrow_refs()]
        gone, counts = _frames(self.ray, [g for g, _ in parts]), _frames(self.ray, [c for _, c in parts])
        share = (time.perf_counter() - t) / len(group)
        note = "ray run: one pass per block, not cached"
        for pos in group:
            label = self._step(pos)[1]
            mine = gone.filter(pl.col(_AT) == pos) if gone.height else gone
            mine = mine.select(pl.col(ROW_ID).alias("rid"), (pl.lit(label) + pl.col(_SUB)).alias("step"), pl.col(_WHY).alias("reason")).cast(DROPPED_SCHEMA) if mine.height else pl.DataFrame(schema=DROPPED_SCHEMA)
            col = f"{_MOD}{pos}"
            modified = int(counts[col].sum() or 0) if col in counts.columns else 0
            self._report(pos, rows, rows - mine.height, modified, mine, share, note)
            rows -= mine.height
        return mat.map_batches(_alive, batch_format="pyarrow", batch_size=None), rows

    def global_step(self, ds, pos: int, rows: int):
        t = time.perf_counter()
        ray, reg = self.ray, self.reg
        step, label, _ = self._step(pos)
        ds = ds.materialize()  # the text, once: read by the statistics and again by the filter below
        narrow = ds.map_batches(NarrowPass(reg, step), batch_format="pyarrow", batch_size=None).materialize()
        refs = narrow.to_arrow_refs()
        keys = [c for c in narrow.schema().names if c.startswith(_BUCKET)]
        if not keys:  # a decision over all rows (selection): ids and statistics on the driver
            gone = decide(reg, step, label, _frames(ray, refs))
            note = "ray run: decided on the driver from ids and statistics, not cached"
        else:
            labels = None
            key = keys[0]
            if len(keys) > 1:  # rows meet through several buckets: group them by connected component
                labels = _groups(ray, refs, self.parts)
                key = _GROUP if labels is not None else ROW_ID  # no two rows linked: every row its own group
                labels = ray.put(labels) if labels is not None else None
            parts = _shuffle(ray, refs, key, self.parts, _decide_part, (reg, step, label), labels)
            gone = _frames(ray, parts).cast(DROPPED_SCHEMA)
            note = f"ray run: shuffled on {'the bucket key' if len(keys) == 1 else 'bucket groups'} into {self.parts} partitions, not cached"
        self._report(pos, rows, rows - gone.height, 0, gone, time.perf_counter() - t, note)
        if gone.height:
            ds = ds.map_batches(_Without(ray.put(gone["rid"].to_numpy())), batch_format="pyarrow", batch_size=None)
        return ds, rows - gone.height

