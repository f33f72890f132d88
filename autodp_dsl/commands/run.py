"""``autodp run STRATEGY.dp DATA -o OUT``: run a strategy with the cache and row accounting."""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("run", help="run a strategy over a data set (jsonl, json, parquet, datasets folder)")
    p.add_argument("strategy", metavar="STRATEGY.dp", help="a .dp file (or the IR as .json)")
    p.add_argument("data", metavar="DATA", help="jsonl, json, parquet, or a Hugging Face datasets folder")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="kept rows: .jsonl, .json, .parquet, or a folder (datasets layout)")
    p.add_argument("--report", metavar="REPORT.json", help="write the run report (accounting per step, keys, cache use) as JSON")
    p.add_argument("--dropped", metavar="FILE", help="dropped row ids with step and reason (default: OUT.dropped.jsonl)")
    p.add_argument("--quarantine", metavar="FILE", help="unreadable rows with reason (default: OUT.quarantine.jsonl)")
    _cache_args(p)
    p.add_argument("--max-row-bytes", type=int, default=None, metavar="N", help="rows larger than this are quarantined (default 8 MiB)")
    p.add_argument("--split", default=None, help="split of a datasets folder (default: train)")
    p.add_argument(
        "--streaming",
        action="store_true",
        help="out of core: validate in chunks and run each step as a streaming query (jsonl/parquet in; .parquet/.jsonl out; "
        "no cache). Chosen by itself when the input is larger than half the memory",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress and no summary table")
    p.set_defaults(func=run)


def _cache_args(p) -> None:
    p.add_argument("--cache", metavar="DIR", default=None, help="cache folder (default: $AUTODP_CACHE_DIR or ~/.cache/autodp)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--cache-max-size", default=None, metavar="SIZE", help="evict least recently used entries above this (default 2GiB)")


def _executor(args, progress=None):
    from ..engine import DEFAULT_MAX_BYTES, Executor, Policy, default_cache_dir, parse_size

    cap = parse_size(args.cache_max_size) if getattr(args, "cache_max_size", None) else DEFAULT_MAX_BYTES
    cache_dir = None if args.no_cache else (args.cache or default_cache_dir())
    kw = {}
    if getattr(args, "max_row_bytes", None):
        kw["max_row_bytes"] = args.max_row_bytes
    return Executor(cache_dir=cache_dir, policy=Policy() if cache_dir else Policy.none(), cache_max_bytes=cap, progress=progress, **kw)


def _err(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 1


def run(args) -> int:
    from rich.console import Console

    from ..engine.render import StrategyError, load_strategy, summary_table
    from ..io import DataError, peek_columns, write_data

    console = Console(stderr=True)
    try:
        columns = peek_columns(args.data)
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

    from ..engine.streaming import should_stream

    streaming = args.streaming or should_stream(args.data)
    try:
        ex = _executor(args, progress)
        out = Path(args.output)
        if streaming:
            if not args.quiet:
                console.print(f"streaming run over {args.data} (out of core, no cache)")
            res = ex.run_streaming(strategy, args.data, out)
            data = None
        else:
            data = ex.load(args.data, [strategy]) if not args.split else _load_split(ex, args, strategy)
            if not args.quiet:
                console.print(f"read {data.path}: {data.rows_total:,} rows, {data.quarantine.height:,} quarantined")
            with console.status("running", spinner="dots") if not args.quiet else _null():
                res = ex.run(strategy, data)
            write_data(res.frame, out)
        dropped_path = Path(args.dropped) if args.dropped else Path(str(out) + ".dropped.jsonl")
        write_data(res.accounting.dropped_ids, dropped_path)
        q_path = Path(args.quarantine) if args.quarantine else Path(str(out) + ".quarantine.jsonl")
        if res.quarantine.height or args.quarantine:
            write_data(res.quarantine, q_path)
        if args.report:
            rep = res.to_json()
            rep["outputs"] = {"data": str(out), "dropped": str(dropped_path), "quarantine": str(q_path) if res.quarantine.height or args.quarantine else None}
            rep["input"] = {"path": str(args.data), "format": data.format if data else "streamed", "sha256": data.content_sha256 if data else None}
            from ..atomic import write_text_atomic

            write_text_atomic(args.report, json.dumps(rep, indent=2, ensure_ascii=False))
    except (DataError, OSError, ValueError) as e:
        return _err(str(e))
    except Exception as e:  # an operator failing at run time: one line, no traceback
        return _err(f"{type(e).__name__}: {e}")
    if not args.quiet:
        console.print(summary_table(res))
    if not res.accounting.balanced:
        return _err("row accounting does not balance (a bug: please report it with the --report file)")
    return 0


def _load_split(ex, args, strategy):
    from ..engine.executor import required_columns
    from ..io import read_data

    return read_data(args.data, required=required_columns([strategy]), max_row_bytes=ex.max_row_bytes, split=args.split)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
