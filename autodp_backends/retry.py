"""The one retry policy for model calls: how long to wait before the next try.

Exponential backoff, ``base * 2**(k-1)`` seconds before retry ``k`` (1-based), capped at ``cap``,
times a jitter in [0.75, 1] so that the threads of one run do not retry in step; a server's
``Retry-After`` lengthens the wait, up to the cap. Which failures are retried is the error's
``transient`` flag (``errors.TransientError``: timeout, connection, 429, 5xx).
"""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]


def backoff_delay(k: int, base: float, cap: float, retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry ``k`` (1-based)."""
    delay = min(cap, base * 2 ** (k - 1))
    delay *= 0.75 + 0.25 * (rng or random).random()
    if retry_after is not None:
        delay = max(delay, min(cap, retry_after))
    return delay
