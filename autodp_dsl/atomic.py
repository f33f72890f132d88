"""Atomic file writes: ``autodp_backends.atomic`` (the one implementation, in the leaf package so
that ``autodp_eval``, which does not import the language, uses it too), under the name the
language's modules and ``autodp_search`` import it by."""

from autodp_backends.atomic import (
    RefusedWrite,
    check_target,
    commit,
    kind_of,
    resolve_target,
    write_bytes_atomic,
    write_text_atomic,
)

__all__ = ["RefusedWrite", "check_target", "commit", "kind_of", "resolve_target", "write_bytes_atomic", "write_text_atomic"]
