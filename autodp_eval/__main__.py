"""``python -m autodp_eval eval ...``: the ``autodp eval`` subcommand without the main CLI.

Errors are one line with the exit codes of ``autodp`` (``autodp_backends.exitcodes``), as under ``autodp``'s
own guard: argparse's usage errors exit USAGE, anything unexpected INTERNAL (``AUTODP_DEBUG=1``
shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys

from autodp_backends.exitcodes import INTERNAL, INTERRUPTED, OK, USAGE

from .cli import internal_error, register


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(USAGE, f"{self.prog}: error: {' '.join(message.split())} (see `{self.prog} --help`)\n")


def main(argv: list[str] | None = None) -> int:
    try:
        parser = _Parser(prog="python -m autodp_eval")
        sub = parser.add_subparsers(dest="command", required=True)
        register(sub)
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help or a usage error, already printed
            return int(e.code or OK)
        return int(args.func(args) or OK)
    except KeyboardInterrupt:
        print("autodp eval: error: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as e:  # a bug outside the command's own handling (RecursionError, MemoryError too)
        if os.environ.get("AUTODP_DEBUG"):
            raise
        print(f"autodp eval: error: {internal_error(e)}", file=sys.stderr)
        return INTERNAL


if __name__ == "__main__":
    sys.exit(main())
