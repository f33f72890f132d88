"""Errors of the model backends, and the kinds of failure users see counted.

The exception tree::

    BackendError                    every error a backend raises
    ├── ConfigError                 a spec, API key, model path or package is wrong or missing:
    │                               raised at once, never turned into per-row failures
    ├── UnsupportedError            the backend cannot do this (``score`` on an OpenAI server)
    └── RequestError                one request failed; ``kind`` says how (see ``FailureKind``)
        ├── TransientError          timeout, connection, rate_limit, server (5xx): retried with backoff
        └── PermanentError          client (4xx), internal: not retried, the row fails
    MalformedOutput (ValueError)    a validator rejected the model's text: retried within bounds,
                                    then the row fails with kind ``malformed``

A row that fails is never given a default value: the result carries the error and the stats count
it by kind (``BackendStats``).
"""

from __future__ import annotations

__all__ = [
    "FailureKind",
    "BackendError",
    "ConfigError",
    "UnsupportedError",
    "RequestError",
    "TransientError",
    "PermanentError",
    "MalformedOutput",
    "TRANSIENT_KINDS",
]


class FailureKind:
    """The kinds of per-row failure, as counted in ``BackendStats.failures``."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    RATE_LIMIT = "rate_limit"
    SERVER = "server"
    CLIENT = "client"
    MALFORMED = "malformed"
    INTERNAL = "internal"


TRANSIENT_KINDS = frozenset({FailureKind.TIMEOUT, FailureKind.CONNECTION, FailureKind.RATE_LIMIT, FailureKind.SERVER})


class BackendError(Exception):
    """Base of every error raised by a model backend. ``status``: the HTTP status of the answer
    that caused it, when there was one (see ``openai_client.request_error``)."""

    status: int | None = None


class ConfigError(BackendError):
    """The backend is misconfigured (bad spec, missing API key, unknown model, missing package)."""


class UnsupportedError(BackendError):
    """The backend does not support the requested operation."""


class RequestError(BackendError):
    """One request failed. ``kind`` is a ``FailureKind`` value; ``retry_after`` a server hint (s)."""

    transient = False

    def __init__(self, kind: str, message: str = "", *, retry_after: float | None = None):
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.message = message or kind
        self.retry_after = retry_after


class TransientError(RequestError):
    """A failure worth retrying: timeout, connection error, 429, 5xx."""

    transient = True


class PermanentError(RequestError):
    """A failure not worth retrying for this row (a 400 for this prompt, a bug in a scripted reply)."""


class MalformedOutput(ValueError):
    """Raised by a validator when the model's text does not have the expected form."""
