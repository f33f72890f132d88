"""``autodp cache ls | stats | verify | gc | clear``: inspect and maintain the result cache."""

from __future__ import annotations

import json
import sys

__all__ = ["register", "run"]


def register(sub) -> None:
    from .run import size_option

    p = sub.add_parser("cache", help="inspect and maintain the result cache")
    p.add_argument("action", choices=("ls", "stats", "verify", "gc", "clear"))
    p.add_argument("--cache", metavar="DIR", default=None, help="cache folder (default: $AUTODP_CACHE_DIR or ~/.cache/autodp)")
    p.add_argument("--max-size", type=size_option, default=None, metavar="SIZE", help="gc: evict least recently used entries above this size")
    p.add_argument("--fix", action="store_true", help="verify: remove damaged entries")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args) -> int:
    """Open the cache (a folder autodp did not create is refused, nothing in it touched) and act;
    a file system error (a read-only cache, say) is one line, not a traceback."""
    from ..engine import DEFAULT_MAX_BYTES, CacheStore, NoCache, default_cache_dir

    root = args.cache or default_cache_dir()
    try:  # inspection and maintenance never make a cache (a mistyped --cache, a user's empty folder)
        store = CacheStore(root, args.max_size if args.max_size is not None else DEFAULT_MAX_BYTES, create=False)
    except NoCache as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"error: cannot open cache {root}: {getattr(e, 'strerror', None) or e}", file=sys.stderr)
        return 1
    try:
        return _act(args, store)
    except OSError as e:
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"error: cache {store.root}: {e.strerror or e}{where}", file=sys.stderr)
        return 1


def _foreign(store, paths: list[str]) -> int:
    """What autodp did not write in its cache folder is left alone, and said so: exit 1."""
    if not paths:
        return 0
    more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
    print(f"error: cache {store.root}: left {paths[0]}{more} alone: not written by autodp; remove by hand", file=sys.stderr)
    return 1


def _act(args, store) -> int:
    from ..engine.render import human_bytes, when

    as_json = args.format == "json"
    if args.action == "ls":
        es = sorted(store.entries(), key=lambda e: -e.last_used)
        if as_json:
            print(json.dumps([{"key": e.key, "kind": e.kind, "op": e.op, "size": e.size, "created": e.created, "last_used": e.last_used, "rows": e.meta.get("rows")} for e in es], indent=2))
            return 0
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"{store.root}: {len(es)} entries")
        for c in ("key", "kind", "op", "rows", "size", "created", "last used"):
            t.add_column(c)
        for e in es:
            t.add_row(e.key[:16], e.kind, e.op, f"{e.meta.get('counts', {}).get('rows_out', e.meta.get('rows', 0)):,}", human_bytes(e.size), when(e.created), when(e.last_used))
        Console().print(t)
        return 0
    if args.action == "stats":
        s = store.stats()
        if as_json:
            print(json.dumps(s, indent=2))
            return 0
        print(f"cache {s['root']}")
        print(f"  entries   {s['entries']:,} ({human_bytes(s['bytes'])} of {human_bytes(s['max_bytes'])})")
        for k, v in sorted(s["by_kind"].items()):
            print(f"  {k:<10}{v['entries']:,} entries, {human_bytes(v['bytes'])}")
        print(f"  orphans   {s['orphans']}  temporary {s['temporary']}")
        print(f"  last used {when(s['newest_use'])}  least recently {when(s['oldest_use'])}")
        return 0
    if args.action == "verify":
        rep = store.verify(fix=args.fix)
        if as_json:
            print(json.dumps({"ok": rep.ok, "corrupt": rep.corrupt, "orphans": rep.orphans, "temporary": rep.temporary}, indent=2))
        else:
            for key, problem in rep.corrupt:
                print(f"{key}: {problem}{' (removed)' if args.fix else ''}")
            print(f"{rep.ok} entries ok, {len(rep.corrupt)} damaged, {len(rep.orphans)} orphan data files, {len(rep.temporary)} temporary files")
        return 1 if rep.corrupt and not args.fix else _foreign(store, rep.foreign)
    if args.action == "gc":
        rep = store.gc(args.max_size)
        msg = {"evicted": rep.evicted, "evicted_bytes": rep.evicted_bytes, "damaged_removed": rep.corrupt_removed, "orphans_removed": rep.orphans_removed, "temporary_removed": rep.temporary_removed}
        print(json.dumps(msg, indent=2) if as_json else f"evicted {rep.evicted} entries ({human_bytes(rep.evicted_bytes)}), removed {rep.corrupt_removed} damaged, {rep.orphans_removed} orphans, {rep.temporary_removed} temporary files")
        return _foreign(store, rep.foreign)
    n, foreign = store.clear()
    print(json.dumps({"removed": n}) if as_json else f"removed {n} entries from {store.root}")
    return _foreign(store, foreign)
