"""The ``ModelBackend`` protocol, its value types, the run statistics and the shared machinery.

Every backend answers two questions for a batch of rows:

- ``generate(prompts, sampling, validate=..., tag=...) -> list[Result]``: one chat completion per
  prompt. ``validate(text)`` parses the text (a score, a JSON object) or raises ``MalformedOutput``;
  malformed text is retried within bounds and then reported as a failure.
- ``score(items, tag=...) -> list[ScoreResult]``: the log-likelihood of a completion after a context
  (the basis of IFD). Backends that cannot (an OpenAI-compatible server) raise ``UnsupportedError``.

``BaseBackend`` implements everything but the model call itself: the persistent per-row memo,
de-duplication inside a batch, bounded concurrency, retries with exponential backoff on transient
errors, bounded retries on malformed output, and the counters of ``BackendStats``. A backend
subclass implements ``_complete_one`` (one request; the base runs them on a thread pool) or
``_complete_batch`` (a whole batch in one go, e.g. a local model), plus ``_score_batch`` if it can
score.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, ClassVar, Protocol, runtime_checkable

from autodp_backends.errors import (
    BackendError,
    FailureKind,
    RequestError,
    UnsupportedError,
)
from autodp_backends.memo import Memo, memo_from, memo_key
from autodp_backends.records import fields_dict
from autodp_backends.retry import backoff_delay
from autodp_backends.stats import BackendStats

__all__ = [
    "Message",
    "ChatPrompt",
    "Sampling",
    "Result",
    "ScoreItem",
    "ScoreResult",
    "BackendStats",
    "ModelBackend",
    "BaseBackend",
    "Validator",
]

log = logging.getLogger("autodp.backends")

Validator = Callable[[str], Any]


# ---------------------------------------------------------------- value types


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True, slots=True)
class ChatPrompt:
    """A chat conversation to complete (the row content lives in the messages)."""

    messages: tuple[Message, ...]

    @classmethod
    def user(cls, text: str, system: str | None = None) -> ChatPrompt:
        """A one-turn prompt, optionally preceded by a system message."""
        msgs = ((Message("system", system),) if system else ()) + (Message("user", text),)
        return cls(msgs)

    def to_openai(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in self.messages]

    def to_json(self) -> list[list[str]]:
        return [[m.role, m.content] for m in self.messages]

    @property
    def last_user(self) -> str:
        """The content of the last user message ("" if none)."""
        for m in reversed(self.messages):
            if m.role == "user":
                return m.content
        return ""


@dataclass(frozen=True)
class Sampling:
    """How to sample. ``temperature == 0`` is greedy decoding: deterministic.

    ``json_schema`` asks for structured output where the backend supports it (OpenAI-compatible
    servers: ``response_format`` of type ``json_schema``); outputs are validated either way.
    ``grammar`` (a Lark grammar, llguidance's dialect) constrains decoding where the backend can:
    the local backend through llguidance (optional package); others ignore it.
    """

    temperature: float = 0.0
    max_tokens: int = 256
    top_p: float = 1.0
    seed: int | None = 0
    stop: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = field(default=None, hash=False)
    schema_name: str = "output"
    grammar: str | None = field(default=None, hash=False)

    @property
    def deterministic(self) -> bool:
        return self.temperature == 0

    def to_json(self) -> dict[str, Any]:
        return {
            **fields_dict(self, "temperature", "max_tokens", "top_p", "seed"),
            "stop": list(self.stop),
            **fields_dict(self, "json_schema", "schema_name"),
            **({"grammar": self.grammar} if self.grammar else {}),  # memo keys of earlier runs stay valid
        }


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one generation: ``text`` (and ``value``, what the validator returned) or an error.

    ``kind`` is the ``FailureKind`` of a failure; ``cached`` says the memo answered; ``attempts``
    counts the requests made for this row in this call (0 for a memo hit).
    """

    text: str | None = None
    value: Any = None
    error: str | None = None
    kind: str | None = None
    cached: bool = False
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failure(cls, kind: str, error: str, attempts: int = 0) -> Result:
        return cls(error=error, kind=kind, attempts=attempts)


@dataclass(frozen=True, slots=True)
class ScoreItem:
    """Score ``completion`` after ``context``; ``context=None`` scores the completion alone (after BOS)."""

    context: ChatPrompt | None
    completion: str


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """Sum of the log-probabilities of the completion's tokens and their number, or an error."""

    logprob: float | None = None
    n_tokens: int = 0
    error: str | None = None
    kind: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def mean_nll(self) -> float | None:
        """Mean negative log-likelihood per token (the LM loss); None without tokens or on failure."""
        if self.logprob is None or self.n_tokens <= 0:
            return None
        return -self.logprob / self.n_tokens


# ---------------------------------------------------------------- the protocol


@runtime_checkable
class ModelBackend(Protocol):
    """What model-backed operators need from a backend (see ``BaseBackend`` for the semantics)."""

    stats: BackendStats
    supports_score: bool

    def identity(self) -> dict[str, Any]:
        """What identifies the model (kind, model, endpoint): part of every memo and cache key."""

    def describe(self) -> str:
        """One line for people: ``openai:gpt-4o-mini@https://...``."""

    def cache_key(self) -> dict[str, Any]:
        """The executor's node keys of model steps include this (same as ``identity()``)."""

    def generate(self, prompts: Sequence[ChatPrompt], sampling: Sampling, *, validate: Validator | None = None, tag: str = "") -> list[Result]:
        """One result per prompt, in order; never raises for a per-row failure."""

    def score(self, items: Sequence[ScoreItem], *, tag: str = "") -> list[ScoreResult]:
        """Log-likelihoods of completions; raises ``UnsupportedError`` if the backend cannot."""

    def close(self) -> None:
        """Release clients, threads and models."""


# ---------------------------------------------------------------- shared machinery


class BaseBackend:
    """Memo, batching, concurrency, retries and statistics around a model call.

    Parameters (every backend accepts them):

    - ``memo``: ``True`` (default: ``$AUTODP_CACHE_DIR/model-memo``), a directory, a ``Memo``, or
      ``False``/``None`` for no memo.
    - ``concurrency``: the most requests in flight at once (threads), across all callers.
    - ``max_retries``: retries of a request after transient errors (so at most 1 + max_retries calls).
    - ``malformed_retries``: retries after the validator rejected the text.
    - ``backoff_base`` / ``backoff_max``: exponential backoff in seconds, ``base * 2**(k-1)`` capped,
      with jitter; a server's ``Retry-After`` is honoured up to ``backoff_max``.
    - ``chunk_size``: rows dispatched together; the memo is written after each chunk, so a run
      that dies keeps the answers it already paid for.
    """

    kind: ClassVar[str] = "base"
    supports_score: ClassVar[bool] = False
    batched: ClassVar[bool] = False  # True: _complete_batch handles a whole batch (local models)

    def __init__(
        self,
        *,
        memo: Memo | str | PathLike[str] | bool | None = True,
        concurrency: int = 8,
        max_retries: int = 3,
        malformed_retries: int = 2,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        stats: BackendStats | None = None,
        chunk_size: int = 256,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.memo = memo_from(memo)
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.malformed_retries = malformed_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stats = stats or BackendStats()
        self.chunk_size = max(1, chunk_size)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._rng = random.Random()

    # ---- identity

    @property
    def model(self) -> str:
        return getattr(self, "_model", "unknown")

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model}

    def describe(self) -> str:
        return f"{self.kind}:{self.model}"

    def cache_key(self) -> dict[str, Any]:
        """What the executor folds into node keys of model/LLM steps (``identity()``)."""
        return self.identity()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    def close(self) -> None:
        if self.memo is not None:
            self.memo.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- for subclasses

    def _complete_one(self, prompt: ChatPrompt, sampling: Sampling) -> str:
        """One request. Raise ``TransientError``/``PermanentError`` for failures."""
        raise NotImplementedError

    def _complete_batch(self, prompts: list[ChatPrompt], sampling: Sampling) -> list[str | RequestError]:
        """A whole batch (``batched`` backends). Return a text or a RequestError per prompt."""
        raise NotImplementedError

    def _score_batch(self, items: list[ScoreItem]) -> list[tuple[float, int] | RequestError]:
        raise UnsupportedError(f"the {self.kind} backend cannot score log-likelihoods")

    # ---- the memo, shared by generate and score

    def _through_memo(self, keys: list[str], items: Sequence, tag: str, recall: Callable[[str], Any], ask: Callable[[list], list[tuple[Any, str | None]]]) -> list:
        """One result per key, in order. A key the memo holds gives ``recall(stored text)`` (None: ask
        again); the others are asked once per distinct key, ``ask(items)`` giving (result, the text to
        memoise or None) per item. Failures are counted in ``stats``."""
        results: dict[str, Any] = {}
        stored = self.memo.get_many(keys) if self.memo is not None else {}
        for k, text in stored.items():
            r = recall(text)
            if r is not None:
                results[k] = r
        todo: dict = {}
        for k, it in zip(keys, items, strict=True):
            if k in results:
                self.stats.add(tag, "cache_hits")
            elif k in todo:
                self.stats.add(tag, "deduplicated")
            else:
                todo[k] = it
        todo_keys = list(todo)
        # in chunks, each written to the memo when done: a run that dies keeps what it paid for
        for c in range(0, len(todo_keys), self.chunk_size):
            chunk = todo_keys[c : c + self.chunk_size]
            t0 = time.perf_counter()
            fresh = ask([todo[k] for k in chunk])
            self.stats.add(tag, "ms", int((time.perf_counter() - t0) * 1000))
            new_items = {}
            for k, (r, text) in zip(chunk, fresh, strict=True):
                results[k] = r
                if text is not None:
                    new_items[k] = text
            if self.memo is not None:
                self.memo.put_many(new_items)
        out = [results[k] for k in keys]
        for r in out:
            if not r.ok:
                self.stats.fail(tag, r.kind or FailureKind.INTERNAL, r.error or "")
        return out

    # ---- generate

    def generate(self, prompts: Sequence[ChatPrompt], sampling: Sampling | None = None, *, validate: Validator | None = None, tag: str = "") -> list[Result]:
        """One ``Result`` per prompt, in order. Per-row failures are results, never exceptions;
        only configuration errors (``ConfigError``, ``UnsupportedError``) raise."""
        sampling = sampling or Sampling()
        prompts = list(prompts)
        self.stats.add(tag, "rows", len(prompts))
        if not prompts:
            return []
        ident = self.identity()
        keys = [memo_key({"m": ident, "tag": tag, "p": p.to_json(), "s": sampling.to_json()}) for p in prompts]

        def recall(text: str) -> Result | None:
            try:
                value = validate(text) if validate else None
            except ValueError:
                return None  # a stored text the current validator rejects: ask again
            return Result(text=text, value=value, cached=True)

        dispatch = self._dispatch_batched if self.batched else self._dispatch_threaded

        def ask(chunk: list[ChatPrompt]) -> list[tuple[Result, str | None]]:
            return [(r, r.text if r.ok else None) for r in dispatch(chunk, sampling, validate, tag)]

        return self._through_memo(keys, prompts, tag, recall, ask)

    def _backoff(self, k: int, retry_after: float | None) -> float:
        return backoff_delay(k, self.backoff_base, self.backoff_max, retry_after, self._rng)

    def _call_one(self, prompt: ChatPrompt, sampling: Sampling, tag: str) -> str:
        with self._slots:
            self.stats.add(tag, "requests")
            return self._complete_one(prompt, sampling)

    def _one_with_retries(self, prompt: ChatPrompt, sampling: Sampling, validate: Validator | None, tag: str) -> Result:
        attempts = transient = malformed = 0
        while True:
            attempts += 1
            try:
                text = self._call_one(prompt, sampling, tag)
            except RequestError as e:
                if e.transient and transient < self.max_retries:
                    transient += 1
                    self.stats.add(tag, "retries")
                    time.sleep(self._backoff(transient, e.retry_after))
                    continue
                return Result.failure(e.kind, e.message, attempts)
            except BackendError:
                raise  # configuration: stop the run, loudly
            except Exception as e:  # a bug in a scripted reply, an unexpected client error
                log.debug("internal error in %s", self.describe(), exc_info=True)
                return Result.failure(FailureKind.INTERNAL, f"{type(e).__name__}: {e}", attempts)
            if validate is None:
                return Result(text=text, attempts=attempts)
            try:
                value = validate(text)
            except ValueError as e:
                if malformed < self.malformed_retries:
                    malformed += 1
                    self.stats.add(tag, "retries")
                    continue
                return Result.failure(FailureKind.MALFORMED, f"malformed output: {e} (text: {str(text)[:200]!r})", attempts)
            return Result(text=text, value=value, attempts=attempts)

    def _dispatch_threaded(self, prompts: list[ChatPrompt], sampling: Sampling, validate: Validator | None, tag: str) -> list[Result]:
        if len(prompts) == 1 or self.concurrency == 1:
            return [self._one_with_retries(p, sampling, validate, tag) for p in prompts]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts)), thread_name_prefix="autodp-llm") as pool:
            futures = [pool.submit(self._one_with_retries, p, sampling, validate, tag) for p in prompts]
            return [f.result() for f in futures]

    def _dispatch_batched(self, prompts: list[ChatPrompt], sampling: Sampling, validate: Validator | None, tag: str) -> list[Result]:
        out: list[Result | None] = [None] * len(prompts)
        attempts = [0] * len(prompts)
        transient = [0] * len(prompts)
        malformed = [0] * len(prompts)
        pending = list(range(len(prompts)))
        # Greedy decoding of a local model gives the same text again: no point retrying malformed output.
        malformed_bound = self.malformed_retries if not sampling.deterministic else 0
        while pending:
            self.stats.add(tag, "requests", len(pending))
            with self._slots:
                got = self._complete_batch([prompts[i] for i in pending], sampling)
            retry: list[int] = []
            wait = 0.0
            for i, g in zip(pending, got, strict=True):
                attempts[i] += 1
                if isinstance(g, RequestError):
                    if g.transient and transient[i] < self.max_retries:
                        transient[i] += 1
                        retry.append(i)
                        wait = max(wait, self._backoff(transient[i], g.retry_after))
                    else:
                        out[i] = Result.failure(g.kind, g.message, attempts[i])
                    continue
                if validate is None:
                    out[i] = Result(text=g, attempts=attempts[i])
                    continue
                try:
                    out[i] = Result(text=g, value=validate(g), attempts=attempts[i])
                except ValueError as e:
                    if malformed[i] < malformed_bound:
                        malformed[i] += 1
                        retry.append(i)
                    else:
                        out[i] = Result.failure(FailureKind.MALFORMED, f"malformed output: {e} (text: {g[:200]!r})", attempts[i])
            self.stats.add(tag, "retries", len(retry))
            if retry and wait:
                time.sleep(wait)
            pending = retry
        return out  # type: ignore[return-value]

    # ---- score

    def score(self, items: Sequence[ScoreItem], *, tag: str = "") -> list[ScoreResult]:
        """Log-likelihood of each completion after its context; memoised like ``generate``."""
        if not self.supports_score:
            raise UnsupportedError(
                f"the {self.describe()} backend cannot score log-likelihoods (needed by ifd); "
                "configure a scoring backend that can: 'local:smollm2', 'local:/path/to/hf-model' or 'vllm:MODEL' "
                "(AUTODP_SCORE_MODEL, or the 'score_backend' service)"
            )
        items = list(items)
        self.stats.add(tag, "rows", len(items))
        if not items:
            return []
        ident = self.identity()
        keys = [memo_key({"m": ident, "tag": tag, "score": it.context.to_json() if it.context else None, "c": it.completion}) for it in items]

        def recall(stored: str) -> ScoreResult:
            lp, n = stored.split(" ", 1)
            return ScoreResult(logprob=float(lp), n_tokens=int(n), cached=True)

        def ask(chunk: list[ScoreItem]) -> list[tuple[ScoreResult, str | None]]:
            self.stats.add(tag, "requests", len(chunk))
            with self._slots:
                got = self._score_batch(chunk)
            return [_scored(g) for g in got]

        return self._through_memo(keys, items, tag, recall, ask)


def _scored(got: tuple[float, int] | RequestError) -> tuple[ScoreResult, str | None]:
    """A backend's answer to one score item as a result and the text the memo keeps of it."""
    if isinstance(got, RequestError):
        return ScoreResult(error=got.message, kind=got.kind), None
    lp, n = got
    lp, n = float(lp), int(n)
    return ScoreResult(logprob=lp, n_tokens=n), f"{lp!r} {n}"
