"""The ``autodp`` command: one console script, subcommands contributed by modules.

Core subcommands live in ``autodp_dsl.commands``; packages above the core (the evaluator, the
search) contribute theirs through the ``autodp.commands`` entry-point group. Each provider is a
function ``register(subparsers)`` that adds its subparser and ``set_defaults(func=run)`` with
``run(args) -> int``. Only the module of the command being run is imported, so ``autodp lint``
starts without loading the evaluator or the search.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main", "build_parser"]

CORE = {
    "lint": "autodp_dsl.commands.language:register_lint",
    "compile": "autodp_dsl.commands.language:register_compile",
    "fmt": "autodp_dsl.commands.language:register_fmt",
    "schema": "autodp_dsl.commands.language:register_schema",
    "ops": "autodp_dsl.commands.language:register_ops",
    "run": "autodp_dsl.commands.run:register",
    "explain": "autodp_dsl.commands.explain:register",
    "cache": "autodp_dsl.commands.cache:register",
}
# Used when the package metadata is not installed (running from a source tree).
PLUGINS_FALLBACK = {"eval": "autodp_eval.cli:register", "search": "autodp_search.cli:register"}


def _load(spec: str):
    mod, _, fn = spec.partition(":")
    return getattr(importlib.import_module(mod), fn)


def _providers() -> dict[str, str]:
    from importlib.metadata import entry_points

    found = dict(CORE)
    plugins = {ep.name: ep.value for ep in entry_points(group="autodp.commands")}
    for name, spec in (plugins or PLUGINS_FALLBACK).items():
        found.setdefault(name, spec)
    return found


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autodp",
        description="Find out how to clean a fine-tuning data set automatically. Strategies are .dp files.",
    )
    parser.add_argument("--version", action="version", version="autodp 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    providers = CORE if only in CORE else _providers()
    for name, spec in providers.items():
        if only is not None and name != only:
            continue
        try:
            _load(spec)(sub)
        except ImportError as e:  # an optional part that is not installed: say so when it is asked for
            msg = str(e)
            p = sub.add_parser(name, help=f"(unavailable: {msg})")
            p.set_defaults(func=lambda args, msg=msg, name=name: _unavailable(name, msg))
    return parser


def _unavailable(name: str, msg: str) -> int:
    print(f"error: `autodp {name}` is unavailable: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    only = first if first and not any(a in ("-h", "--help") for a in argv[:1]) else None
    parser = build_parser(only if only and (only in CORE or only in _providers()) else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
