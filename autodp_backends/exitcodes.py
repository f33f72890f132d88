"""The exit codes of the ``autodp`` command: one table for every subcommand (docs/cli.md).

A module with no imports in the leaf package every other one may import, so that the language's
commands, ``autodp eval`` (which imports nothing of the language) and ``autodp search`` all name
the codes from this one table without loading anything.
"""

from __future__ import annotations

__all__ = ["BACKEND", "FAILED", "INTERNAL", "INTERRUPTED", "NO_STRATEGY", "OK", "TABLE", "USAGE"]

OK = 0
# The input cannot be used or the run failed (unreadable data, an operator failing, an output that
# cannot be written); for the checking commands, the check found problems: `lint` errors,
# `fmt --check` a file not in canonical form, `cache verify` damaged entries, `eval` no question
# could be judged.
FAILED = 1
# Bad arguments (argparse's own errors included), a strategy that does not compile in `run` /
# `explain`, a configuration that cannot run, a `fmt` file that cannot be parsed; for `eval`, also
# its unusable inputs (documented in docs/eval.md before this table existed).
USAGE = 2
# `search`: no candidate strategy compiled and scored, or none runs on the full data. The report is
# written when the search got that far; best.dp then holds the unprocessed pass-through.
NO_STRATEGY = 3
# `search`: the agent or the evaluator back-end failed (an LLM endpoint down, a model that cannot
# be loaded, the baseline that cannot be trained).
BACKEND = 4
# An unexpected exception, i.e. a bug (RecursionError and MemoryError included): one line, and
# AUTODP_DEBUG=1 shows the traceback. 70 is EX_SOFTWARE of sysexits.h, clear of the codes above.
INTERNAL = 70
# Ctrl-C: 128 + SIGINT, as a shell reports it.
INTERRUPTED = 130

TABLE: dict[str, int] = {
    "OK": OK,
    "FAILED": FAILED,
    "USAGE": USAGE,
    "NO_STRATEGY": NO_STRATEGY,
    "BACKEND": BACKEND,
    "INTERNAL": INTERNAL,
    "INTERRUPTED": INTERRUPTED,
}
