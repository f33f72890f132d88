"""``autodp run STRATEGY.dp DATA -o OUT``: run a strategy with the cache and row accounting."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("run", help="run a strategy over a data set (jsonl, json, parquet, datasets folder)")
    p.add_argument("strategy", metavar="STRATEGY.dp", help="a .dp file (or the IR as .json)")
    p.add_argument("data", metavar="DATA", help="jsonl, json, parquet, or a Hugging Face datasets folder")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="kept rows: .jsonl, .json, .parquet, .csv, or a folder (datasets layout); see docs/outputs.md")
    p.add_argument("--report", metavar="REPORT.json", help="write the run report (accounting per step, keys, cache use) as JSON")
    p.add_argument("--dropped", metavar="FILE", help="dropped row ids with step and reason (default: OUT.dropped.jsonl)")
    p.add_argument("--quarantine", metavar="FILE", help="unreadable rows with reason (default: OUT.quarantine.jsonl; always written, empty when none)")
    p.add_argument(
        "--force",
        action="store_true",
        help="overwrite existing files that are not earlier autodp outputs (never a folder autodp did not write, never an input)",
    )
    cache_options(p)
    p.add_argument("--max-row-bytes", type=positive_int, default=None, metavar="N", help="rows larger than this are quarantined (default 8 MiB)")
    p.add_argument("--split", default=None, help="split of a datasets folder (default: train)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--streaming",
        action="store_const",
        const=True,
        default=None,
        help="out of core: validate in chunks and run each step as a streaming query (jsonl/parquet in; .parquet/.jsonl out; "
        "no cache). Chosen by itself when a batch run's estimated footprint (input size x an expansion per step) is above "
        "half the available memory",
    )
    mode.add_argument("--batch", "--no-streaming", dest="streaming", action="store_const", const=False, help="in memory, even for a large input")
    p.add_argument(
        "--engine",
        choices=("polars", "ray"),
        default="polars",
        help="polars (default): this machine; ray: a Ray cluster, the same results (jsonl/parquet in; .parquet/.jsonl/.csv or "
        "--format parquet-shards out; "
        "no cache; needs autodp[ray]; docs/ray.md)",
    )
    p.add_argument(
        "--format",
        choices=("parquet-shards",),
        default=None,
        help="the layout of -o when not its suffix: parquet-shards, a folder of Parquet files (one per block, written by the Ray "
        "workers; --engine ray; a local run reads the folder as its DATA)",
    )
    p.add_argument("--address", metavar="ADDR", default=None, help="with --engine ray: the cluster (HOST:PORT, ray://HOST:PORT, auto; default $RAY_ADDRESS, else a local one)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress and no summary table")
    p.set_defaults(func=run)


def size_option(text: str) -> int:
    """An argparse type: a size out of its domain is a usage error naming the option (exit 2)."""
    from ..engine import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (``--max-row-bytes 0`` would quarantine every row)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def cache_options(p) -> None:
    p.add_argument("--cache", metavar="DIR", default=None, help="cache folder (default: $AUTODP_CACHE_DIR or ~/.cache/autodp)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--cache-max-size", type=size_option, default=None, metavar="SIZE", help="evict least recently used entries above this (default 2GiB)")


def make_executor(args, progress=None, create_cache=True):
    from ..engine import DEFAULT_MAX_BYTES, Executor, Policy, default_cache_dir

    cap = args.cache_max_size if getattr(args, "cache_max_size", None) is not None else DEFAULT_MAX_BYTES
    cache_dir = None if args.no_cache else (args.cache or default_cache_dir())
    kw = {}
    if getattr(args, "max_row_bytes", None):
        kw["max_row_bytes"] = args.max_row_bytes
    return Executor(cache_dir=cache_dir, policy=Policy() if cache_dir else Policy.none(), cache_max_bytes=cap, progress=progress, create_cache=create_cache, **kw)


def _err(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 1


def run(args) -> int:
    from ..engine.distributed import NotOnRay
    from ..engine.render import StrategyError, load_strategy, summary_table
    from ..io import DataError, NoUsableRows

    # every output is checked before anything is read, written or run (autodp_dsl/outputs.py has the rules)
    from ..outputs import (
        SHARDS,
        RefusedWrite,
        check_outputs,
        commit_folder,
        commit_output,
        nested_columns,
        output_format,
        write_data,
        write_file,
    )

    force = args.force
    if args.address and args.engine != "ray":
        print("error: --address names a Ray cluster: it needs --engine ray", file=sys.stderr)
        return 2
    if args.format and args.engine != "ray":
        print(f"error: --format {args.format} is written by the Ray workers: it needs --engine ray", file=sys.stderr)
        return 2
    out = Path(args.output)
    dropped_path = Path(args.dropped) if args.dropped else Path(str(out) + ".dropped.jsonl")
    q_path = Path(args.quarantine) if args.quarantine else Path(str(out) + ".quarantine.jsonl")
    outputs = [("-o", out, *([args.format] if args.format else [])), ("--dropped", dropped_path), ("--quarantine", q_path), ("--report", args.report, "json")]
    try:
        inputs = [("the input", args.data), ("the strategy", args.strategy)]
        if not args.no_cache:  # the cache is read as an input: no output lands in it
            from ..engine import default_cache_dir

            inputs.append(("the cache folder", args.cache or default_cache_dir(), True))
        targets = check_outputs(outputs, inputs, force)
    except RefusedWrite as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        return _err(str(e))

    console = None
    if not args.quiet:  # rich only for what --quiet leaves out: a scripted run does not import it
        from rich.console import Console

        console = Console(stderr=True)
    try:
        columns = data_columns(args)
    except NoUsableRows as e:
        return _no_usable_rows(args, e, None)
    except (DataError, OSError) as e:
        return _err(str(e))
    try:
        strategy = load_strategy(args.strategy, columns, warn=lambda text: print(text, file=sys.stderr))
    except StrategyError as e:
        print(str(e), file=sys.stderr)
        return 2

    progress = None
    if not args.quiet:
        total = len(strategy.steps)
        done = [0]

        def progress(event, info):
            if event == "node":
                done[0] += 1
                status = "[green]hit[/green]" if info["source"] == "hit" else "ran"
                text = info["text"] if len(info["text"]) <= 70 else info["text"][:67] + "..."
                console.print(f"[{done[0]}/{total}] {text}: {info['rows_in']:,} -> {info['rows_out']:,} rows ({status}, {info['seconds']:.2f} s)")

    from ..engine.streaming import choose_mode

    mode = choose_mode(args.data, out, len(strategy.steps), args.streaming)
    try:
        ex = make_executor(args, progress)
        if args.engine == "ray":
            if not args.quiet:
                console.print(f"ray run over {args.data} (cluster {args.address or 'of $RAY_ADDRESS, else a local one'}; no cache)")
            res = ex.run_ray(strategy, args.data, targets["-o"], address=args.address, commit=lambda tmp, path: commit_output(tmp, path, force),
                             shards=args.format == SHARDS, publish=lambda tmp, path: commit_folder(tmp, path, force))
            data = None
        elif mode.streaming:
            if not args.quiet:
                console.print(f"streaming run over {args.data} (out of core, no cache; {mode.why})")
            # to the symlink's target: the sink's temporary file goes beside it
            res = ex.run_streaming(strategy, args.data, targets["-o"], commit=lambda tmp, path: commit_output(tmp, path, force))
            data = None
        else:
            data = ex.load(args.data, [strategy]) if not args.split else _load_split(ex, args, strategy)
            if data.frame.height == 0:
                raise NoUsableRows(data)
            if not args.quiet:
                console.print(f"read {data.path}: {data.rows_total:,} rows, {data.quarantine.height:,} quarantined (batch run; {mode.why})")
            with console.status("running", spinner="dots") if not args.quiet else _null():
                res = ex.run(strategy, data)
            write_data(res.frame, out, force=force)
            if output_format(out) == "csv":
                for col in nested_columns(res.frame):
                    print(f"warning: column {col!r} holds lists or records, which CSV cannot: written as JSON text", file=sys.stderr)
        write_data(res.accounting.dropped_ids, dropped_path, force=force)
        # always written (empty when no row was quarantined): a quarantine file of an earlier run
        # must not sit next to this run's output as if it were this run's
        write_data(res.quarantine, q_path, force=force)
        if args.report:
            rep = res.to_json()
            rep["outputs"] = {"data": str(out), "dropped": str(dropped_path), "quarantine": str(q_path)}
            rep["input"] = {"path": str(args.data), "format": data.format if data else "streamed", "sha256": data.content_sha256 if data else None}
            write_file(args.report, json.dumps(rep, indent=2, ensure_ascii=False).encode("utf-8"), force)
    except NoUsableRows as e:
        return _no_usable_rows(args, e, strategy.name)
    except NotOnRay as e:  # the strategy asks for what the Ray engine does not do: a usage error
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (DataError, OSError, ValueError) as e:
        return _err(str(e))
    except Exception as e:  # an operator failing at run time: one line, no traceback
        return _err(f"{type(e).__name__}: {e}")
    for col, note in res.columns_changed.items():
        print(f"warning: column {col!r} changed on reading: {note}", file=sys.stderr)
    if not args.quiet:
        console.print(summary_table(res))
    if not res.accounting.balanced:
        return _err("row accounting does not balance (a bug: please report it with the --report file)")
    return 0


def data_columns(args) -> dict:
    """The input's columns for type-checking the strategy: from its head (``peek_columns``), or,
    when the head holds no usable record, from reading it all (``streaming``: in chunks, to a spill
    folder). Raises ``NoUsableRows`` when no record is usable, so the error names the data, not a
    column the strategy reads."""
    from ..engine.streaming import choose_mode
    from ..io import DEFAULT_MAX_ROW_BYTES, NoUsableRows, peek_columns, read_data

    columns = peek_columns(args.data)
    if columns:
        return columns
    max_row_bytes = getattr(args, "max_row_bytes", None) or DEFAULT_MAX_ROW_BYTES
    if hasattr(args, "streaming") and choose_mode(args.data, None, 0, args.streaming).streaming:
        import shutil
        import tempfile

        from ..engine.streaming import scan_input

        spill = Path(tempfile.mkdtemp(prefix="autodp-peek-"))
        try:
            _, loaded = scan_input(Path(args.data), (), max_row_bytes, spill)  # loaded.frame: no rows, the schema
        finally:
            shutil.rmtree(spill, ignore_errors=True)
    else:
        loaded = read_data(args.data, required=(), max_row_bytes=max_row_bytes, split=getattr(args, "split", None))
    if loaded.rows_total == loaded.quarantine.height:
        raise NoUsableRows(loaded)
    from ..types import ANY

    return {c: t or ANY for c, t in loaded.columns.items()}


def _no_usable_rows(args, e, strategy_name: str | None) -> int:
    """No record is usable: still write the quarantine (every input row is there) and the report,
    then fail with an error that names the data (exit 1). The outputs were checked before reading."""
    import polars as pl

    from ..engine.report import DROPPED_SCHEMA, Accounting, RunResult
    from ..io import DataError
    from ..outputs import write_data, write_file

    loaded = e.loaded
    q_path = Path(args.quarantine) if args.quarantine else Path(str(args.output) + ".quarantine.jsonl")
    try:
        write_data(loaded.quarantine, q_path, force=args.force)
        if args.report:
            acc = Accounting(loaded.rows_total, 0, 0, loaded.quarantine.height, 0, [], pl.DataFrame(schema=DROPPED_SCHEMA))
            res = RunResult(
                strategy_name or "", pl.DataFrame(), pl.Series("__rid", [], dtype=pl.UInt64), acc, loaded.quarantine, loaded.fingerprint, "", [], "", 0.0,
                error=str(e), columns_changed=dict(loaded.changes),
            )
            rep = res.to_json()
            rep["outputs"] = {"data": None, "dropped": None, "quarantine": str(q_path)}
            rep["input"] = {"path": str(args.data), "format": loaded.format, "sha256": loaded.content_sha256 or None}
            write_file(args.report, json.dumps(rep, indent=2, ensure_ascii=False).encode("utf-8"), args.force)
    except (DataError, OSError) as w:
        return _err(f"{e}; and the quarantine or report could not be written: {w}")
    return _err(str(e))


def _load_split(ex, args, strategy):
    from ..engine.executor import required_columns
    from ..io import read_data

    return read_data(args.data, required=required_columns([strategy]), max_row_bytes=ex.max_row_bytes, split=args.split)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
