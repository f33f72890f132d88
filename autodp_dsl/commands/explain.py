"""``autodp explain A.dp [B.dp ...] --data DATA``: the combined plan, keys, sharing, policy, hit map."""

from __future__ import annotations

import json
import sys

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("explain", help="show the combined plan of strategies: node keys, shared nodes, cache policy, hits")
    p.add_argument("strategies", nargs="+", metavar="STRATEGY.dp")
    p.add_argument("--data", metavar="DATA", help="the data the keys are computed on (without it: no hit map)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    from .run import cache_options

    cache_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..engine import Executor, NoCache, Policy
    from ..engine.render import StrategyError, explain_tree, load_strategy
    from ..io import DataError
    from .run import data_columns, make_executor

    try:
        columns = data_columns(args) if args.data else None
        strategies = [load_strategy(s, columns) for s in args.strategies]
    except StrategyError as e:
        print(str(e), file=sys.stderr)
        return 2
    except (DataError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        args.max_row_bytes = None
        try:  # explain only reads the cache: it never makes one
            ex = make_executor(args, create_cache=False)
        except NoCache as e:
            if args.cache:  # a --cache that names no cache is a mistyped path
                print(f"error: {e}", file=sys.stderr)
                return 1
            ex = Executor(policy=Policy())  # no default cache yet: nothing is cached, the policy is the run's
        expl = ex.explain(strategies, args.data)
    except (DataError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(expl.to_json(), indent=2, ensure_ascii=False))
        return 0
    from rich.console import Console

    c = Console()
    c.print(explain_tree(expl))
    shared = len(expl.shared)
    hits = sum(1 for n in expl.nodes if n.cache == "hit")
    c.print(f"{len(expl.nodes)} nodes for {len(strategies)} strategies ({sum(len(k) for k in expl.strategies.values())} steps), {shared} shared, {hits} cached")
    return 0
