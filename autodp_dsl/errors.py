"""Exceptions raised by :mod:`autodp_dsl`.

The tree::

    DslError                     base class; every error below carries a one-line message, ready to print
    ├── DataError (ValueError)   the input cannot be read at all: missing file, unknown format,
    │   │                        not JSON as a whole (``io``)
    │   └── NoUsableRows         every record was quarantined, or there is none; carries the
    │                            ``Loaded`` so the quarantine and report can still be written
    ├── NotACache (ValueError)   a folder that is not an autodp cache, or not one this version can
    │   │                        use: nothing in it is touched (``engine.cache``)
    │   └── NoCache              opened to inspect, and there is no cache at the path
    └── StrategyError            a strategy file that does not compile (``engine.render``)

A problem in a strategy is a ``Diagnostic`` (``diagnostics``), not an exception: ``compile_text``
returns them. Two exceptions are control flow that never leaves the package and are not part of
the tree: ``nodes.SyntaxProblem`` (a parse error, turned into a diagnostic) and ``descent.Unsure``
(the fast parser hands the step to the reference parser). ``atomic.RefusedWrite`` (a write that
would destroy something that is not the file being written) belongs to the file-writing layer,
which the evaluator shares and which imports nothing of the language, so it stays a plain
``ValueError`` outside this root. The ``ValueError`` bases are kept for code that caught these
errors as ``ValueError`` before the root existed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DslError", "DataError", "NoUsableRows", "NotACache", "NoCache", "StrategyError"]


class DslError(Exception):
    """Base class of every error autodp_dsl raises on purpose."""


class DataError(DslError, ValueError):
    """The input cannot be read at all (missing file, unknown format, not JSON as a whole)."""


class NoUsableRows(DataError):
    """Every record of the input was quarantined (or it holds none): nothing to run on. Carries the
    ``Loaded`` so the caller can still write the quarantine and the report."""

    def __init__(self, loaded: Any):  # an ``io.Loaded`` (not imported: ``io`` imports this module)
        self.loaded = loaded
        q = loaded.quarantine
        if loaded.rows_total == 0:
            why = "it holds no records"
        else:
            counts = dict(q.group_by("reason").len().sort("reason").iter_rows()) if q.height else {}
            why = f"{q.height:,} of {loaded.rows_total:,} rows quarantined" + (f" ({', '.join(f'{r}: {n:,}' for r, n in counts.items())})" if counts else "")
        super().__init__(f"{loaded.path}: no usable row: {why}")


class NotACache(DslError, ValueError):
    """The folder is not an autodp cache (or not one this version can use): nothing in it is touched."""


class NoCache(NotACache):
    """Opened with ``create=False`` (to inspect, not to store): there is no cache at the path, and
    none is made there -- a mistyped path or a user's empty folder stays as it was."""


class StrategyError(DslError):
    """A strategy file that does not compile (the message is ready to print)."""
