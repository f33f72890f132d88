"""Where autodp keeps its caches (no Polars, no pydantic: the lint path imports this)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root() -> Path:
    """``$AUTODP_CACHE_DIR``, else ``$XDG_CACHE_HOME/autodp``, else ``~/.cache/autodp``."""
    env = os.environ.get("AUTODP_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")) / "autodp"
