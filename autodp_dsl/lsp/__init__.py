"""``autodp lsp``: a Language Server Protocol server for .dp files, over stdio.

``analysis`` holds what the server knows about a document in plain data (it imports only the
language core); ``server`` maps it onto the protocol with pygls, which is imported only when the
command runs (``pip install 'autodp[lsp]'``).
"""

from __future__ import annotations

import sys

from ..commands.language import columns_options, with_columns

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("lsp", help="run the language server for editors (LSP over stdio)")
    p.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default and only transport)")
    p.add_argument("--debounce", type=float, default=0.15, metavar="SECONDS",
                   help="wait this long after the last change before checking a document (default 0.15)")
    p.add_argument("--check-timeout", type=float, default=5.0, metavar="SECONDS",
                   help="report a check that takes longer than this instead of waiting for it (default 5)")
    columns_options(p)  # --data / --columns: check and complete against these input columns, as `lint` does
    p.set_defaults(func=run)


@with_columns
def run(args, columns) -> int:
    try:
        from .server import build_server
    except ImportError as e:
        print(f"error: `autodp lsp` needs pygls ({e.name or e}): pip install 'autodp[lsp]'", file=sys.stderr)
        return 2
    build_server(debounce=args.debounce, check_timeout=args.check_timeout, columns=columns).start_io()
    return 0
