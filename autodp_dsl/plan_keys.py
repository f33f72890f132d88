"""Stable keys: sha256 over canonical JSON, never Python ``hash()`` or Polars' expression hashes.

``stable_hash`` is the one hash function of the project's keys; ``stat_column_name`` names a
statistic column after its exact specification, so equal statistics share a column and a cache entry.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .ir import canonical_json

__all__ = ["stable_hash", "stat_column_name"]


def stable_hash(obj: Any) -> str:
    """Hex sha256 of the canonical JSON of ``obj`` (same value, same key, in every process)."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


STAT_PREFIX = "__stat_"  # every statistic column's name starts with it


def stat_column_name(name: str, spec: dict[str, Any]) -> str:
    return f"{STAT_PREFIX}{name}_{stable_hash(spec)[:16]}"
