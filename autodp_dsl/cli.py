"""The ``autodp`` command: one console script, subcommands contributed by modules.

Core subcommands live in ``autodp_dsl.commands``; packages above the core (the evaluator, the
search) contribute theirs through the ``autodp.commands`` entry-point group. Each provider is a
function ``register(subparsers)`` that adds its subparser and ``set_defaults(func=run)`` with
``run(args) -> int``. Only the module of the command being run is imported, so ``autodp lint``
starts without loading the evaluator or the search.

Every error is one line on stderr and an exit code from ``autodp_backends.exitcodes`` (docs/cli.md):
argparse's usage errors included, and any exception a command did not expect (a bug), which
``AUTODP_DEBUG=1`` turns back into a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from autodp_backends import exitcodes

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
    "lsp": "autodp_dsl.lsp:register",
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


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (the usage itself is one ``--help`` away). Subcommand
    parsers are of the same class: ``add_subparsers`` makes them with ``type(self)``."""

    def error(self, message: str):
        self.exit(exitcodes.USAGE, f"error: {self.prog}: {_one_line(message)} (see `{self.prog} --help`)\n")


def _one_line(text: str, limit: int = 500) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
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
    return exitcodes.USAGE


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        return exitcodes.OK
    except Exception as e:  # a bug (RecursionError and MemoryError are Exceptions too): one line, no traceback
        if os.environ.get("AUTODP_DEBUG"):
            raise
        print(f"error: internal error: {type(e).__name__}: {_one_line(e) or '(no message)'} "
              "(set AUTODP_DEBUG=1 for the traceback)", file=sys.stderr)
        return exitcodes.INTERNAL


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    only = first if first and not any(a in ("-h", "--help") for a in argv[:1]) else None
    parser = build_parser(only if only and (only in CORE or only in _providers()) else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version or a usage error, already printed: a code, as for any command
        return int(e.code or exitcodes.OK)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return exitcodes.USAGE
    return int(args.func(args) or exitcodes.OK)


if __name__ == "__main__":
    sys.exit(main())
