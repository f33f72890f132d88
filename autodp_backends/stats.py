"""The counters of a model backend's work: rows, memo hits, requests, retries, and failures by kind.

The failure kinds are ``errors.FailureKind``'s strings (``timeout``, ``connection``, ``rate_limit``,
``server``, ``client``, ``malformed``, ``internal``; docs/model_ops.md lists them for users).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

__all__ = ["BackendStats"]

_COUNTERS = ("rows", "cache_hits", "deduplicated", "requests", "retries", "failed_rows")


class BackendStats:
    """Counters of one backend's work, per tag (an operator and prompt version) and in total.

    - ``rows``: prompts/items asked for; ``cache_hits``: answered by the memo; ``deduplicated``:
      repeated inside one batch, answered once; ``requests``: model calls made (retries included);
      ``retries``: repeated calls (transient errors and malformed output); ``failed_rows``: rows
      whose final outcome is a failure, also counted by kind in ``failures``.
    - Operators add their own counters with ``add`` (e.g. ``kept_original``).
    - ``errors`` keeps the first ``max_errors`` failure messages for the report.

    Thread-safe. ``snapshot()`` gives a JSON-ready dict, ``reset()`` zeroes everything.
    """

    def __init__(self, max_errors: int = 50):
        self._lock = threading.Lock()
        self.max_errors = max_errors
        self._tags: dict[str, Counter[str]] = {}
        self._failures: dict[str, Counter[str]] = {}
        self.errors: list[dict[str, Any]] = []

    def add(self, tag: str, name: str, n: int = 1) -> None:
        if n == 0:
            return
        with self._lock:
            self._tags.setdefault(tag, Counter())[name] += n

    def fail(self, tag: str, kind: str, message: str) -> None:
        with self._lock:
            self._tags.setdefault(tag, Counter())["failed_rows"] += 1
            self._failures.setdefault(tag, Counter())[kind] += 1
            if len(self.errors) < self.max_errors:
                self.errors.append({"tag": tag, "kind": kind, "error": message[:500]})

    def get(self, name: str, tag: str | None = None) -> int:
        with self._lock:
            if tag is not None:
                return self._tags.get(tag, Counter())[name]
            return sum(c[name] for c in self._tags.values())

    def failures(self, tag: str | None = None) -> dict[str, int]:
        with self._lock:
            if tag is not None:
                return dict(self._failures.get(tag, Counter()))
            total: Counter[str] = Counter()
            for c in self._failures.values():
                total.update(c)
            return dict(total)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            total: Counter[str] = Counter()
            fails: Counter[str] = Counter()
            by_tag = {}
            for tag, c in sorted(self._tags.items()):
                total.update(c)
                f = self._failures.get(tag, Counter())
                fails.update(f)
                by_tag[tag] = {**{k: c[k] for k in _COUNTERS}, **{k: v for k, v in c.items() if k not in _COUNTERS}, "failures": dict(f)}
            out = {k: total[k] for k in _COUNTERS}
            out.update({k: v for k, v in total.items() if k not in _COUNTERS})
            out["failures"] = dict(fails)
            out["by_tag"] = by_tag
            out["errors"] = list(self.errors)
            return out

    def reset(self) -> None:
        with self._lock:
            self._tags.clear()
            self._failures.clear()
            self.errors.clear()
