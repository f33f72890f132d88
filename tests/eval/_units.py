"""Units of work for the worker-pool tests (module-level: a spawned process imports them by name)."""

from __future__ import annotations

import time
from pathlib import Path


def fail_first(marker_dir: str, i: int) -> None:
    """Unit 0 fails at once; every other unit takes a while, then leaves a marker that it ran to the end."""
    if i == 0:
        raise ValueError("unit 0 failed")
    time.sleep(1.0)
    Path(marker_dir, str(i)).touch()


def ok(marker_dir: str, i: int) -> None:
    Path(marker_dir, str(i)).touch()


def slow(marker_dir: str, i: int) -> None:
    Path(marker_dir, f"started-{i}").touch()
    time.sleep(3.0)
    Path(marker_dir, f"done-{i}").touch()
