"""A scripted backend for tests and dry runs: a Python callable answers each prompt.

>>> from stdlib_ops.backends import ScriptedBackend, ChatPrompt
>>> b = ScriptedBackend(lambda p: p.last_user.upper(), memo=False)
>>> b.generate([ChatPrompt.user("hi")])[0].text
'HI'

The callable receives the ``ChatPrompt`` (and, if it accepts a second argument, the ``Sampling``)
and returns the text, or raises ``TransientError``/``PermanentError`` to simulate failures (a
``TransientError("timeout")`` is retried like a real timeout). ``scorer`` optionally answers
``score`` requests: ``scorer(item) -> (logprob_sum, n_tokens)``.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

from autodp_backends.errors import RequestError

from .base import BaseBackend, ChatPrompt, Sampling, ScoreItem

__all__ = ["ScriptedBackend", "echo"]


def echo(prompt: ChatPrompt) -> str:
    """The default script: answer with the last user message."""
    return prompt.last_user


class ScriptedBackend(BaseBackend):
    """Answers with ``fn(prompt)``; records every call in ``calls`` (thread-safe)."""

    kind = "scripted"

    def __init__(
        self,
        fn: Callable[..., str] = echo,
        *,
        scorer: Callable[[ScoreItem], tuple[float, int]] | None = None,
        name: str = "script",
        memo: Any = False,
        concurrency: int = 4,
        backoff_base: float = 0.0,
        **kw: Any,
    ):
        super().__init__(memo=memo, concurrency=concurrency, backoff_base=backoff_base, **kw)
        self.fn = fn
        self.scorer = scorer
        self._model = name
        try:
            self._pass_sampling = len(inspect.signature(fn).parameters) >= 2
        except (TypeError, ValueError):
            self._pass_sampling = False
        self.calls: list[ChatPrompt] = []
        self._calls_lock = threading.Lock()

    @property
    def supports_score(self) -> bool:  # type: ignore[override]
        return self.scorer is not None

    def _complete_one(self, prompt: ChatPrompt, sampling: Sampling) -> str:
        with self._calls_lock:
            self.calls.append(prompt)
        text = self.fn(prompt, sampling) if self._pass_sampling else self.fn(prompt)
        if not isinstance(text, str):
            raise TypeError(f"the script returned {type(text).__name__}, not str")
        return text

    def _score_batch(self, items: list[ScoreItem]) -> list[tuple[float, int] | RequestError]:
        out: list[tuple[float, int] | RequestError] = []
        for it in items:
            try:
                out.append(self.scorer(it))  # type: ignore[misc]
            except RequestError as e:
                out.append(e)
        return out
