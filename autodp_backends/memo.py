"""The persistent per-row memo of model calls: key -> text, in one SQLite file.

Keys are sha256 hex digests of canonical JSON (see ``memo_key``): the model identity, the prompt
tag (operator and prompt version), the rendered messages (the row content) and the sampling
settings. Strategies that differ everywhere else still share an entry when they ask the same model
the same question. Only successful, validated outputs are stored, so failures are retried by the
next run. Each write is one SQLite transaction (atomic; safe for threads and processes).

Location: ``$AUTODP_CACHE_DIR/model-memo/memo.sqlite3``, where ``AUTODP_CACHE_DIR`` defaults to
``.autodp`` (relative to the working directory).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["Memo", "memo_from", "memo_key", "cache_root", "default_memo_dir"]


def cache_root() -> Path:
    """The project's cache root: ``$AUTODP_CACHE_DIR`` or ``.autodp``."""
    return Path(os.environ.get("AUTODP_CACHE_DIR") or ".autodp")


def default_memo_dir() -> Path:
    return cache_root() / "model-memo"


def memo_key(obj: Any) -> str:
    """sha256 hex of the canonical JSON of ``obj`` (sorted keys, no spaces)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Memo:
    """A persistent string-to-string memo backed by SQLite.

    >>> m = Memo(tmp_dir)                      # doctest: +SKIP
    >>> m.put_many({"k": "v"}); m.get_many(["k", "x"])
    {'k': 'v'}
    """

    FILENAME = "memo.sqlite3"

    def __init__(self, directory: str | os.PathLike[str] | None = None):
        self.directory = Path(directory) if directory is not None else default_memo_dir()
        self.path = self.directory / self.FILENAME
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS memo (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)")
            self._conn = conn
        return self._conn

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """The stored values of those keys that have one."""
        out: dict[str, str] = {}
        if not keys:
            return out
        uniq = list(dict.fromkeys(keys))
        with self._lock:
            conn = self._connect()
            for i in range(0, len(uniq), 500):
                chunk = uniq[i : i + 500]
                q = f"SELECT key, value FROM memo WHERE key IN ({','.join('?' * len(chunk))})"
                out.update(conn.execute(q, chunk).fetchall())
        return out

    def put_many(self, items: dict[str, str]) -> None:
        """Store values (one transaction: all or nothing)."""
        if not items:
            return
        now = time.time()
        with self._lock:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR REPLACE INTO memo (key, value, created) VALUES (?, ?, ?)", [(k, v, now) for k, v in items.items()])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        with self._lock:
            return self._connect().execute("SELECT COUNT(*) FROM memo").fetchone()[0]

    def clear(self) -> None:
        with self._lock:
            self._connect().execute("DELETE FROM memo")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __getstate__(self):  # picklable (a plan that holds a backend may be pickled)
        return {"directory": self.directory}

    def __setstate__(self, state):
        self.__init__(state["directory"])

    def __repr__(self) -> str:
        return f"Memo({str(self.directory)!r})"


def memo_from(memo: Memo | str | os.PathLike[str] | bool | None) -> Memo | None:
    """The memo a backend's ``memo`` argument names: ``True`` the default one, a folder or a
    ``Memo`` that one, ``False``/``None`` none."""
    if memo is None or memo is False:
        return None
    if memo is True:
        return Memo()
    if isinstance(memo, Memo):
        return memo
    return Memo(memo)
