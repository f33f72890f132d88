"""The one client of OpenAI-compatible servers, and what its errors mean.

``openai_client`` makes an ``openai.OpenAI`` with the library's own retries turned off
(``max_retries=0``): retrying is the caller's, with ``retry.backoff_delay``. ``request_error``
turns what the client raised into this package's errors:

- a timeout -> ``TransientError(timeout)``; no connection -> ``TransientError(connection)``;
- HTTP 429 -> ``TransientError(rate_limit)`` (with the server's ``Retry-After``), 408 ->
  ``TransientError(timeout)``, 5xx or a response body the client cannot read ->
  ``TransientError(server)``;
- 401/403 (credentials) and 404 (model or URL) -> ``ConfigError``: the run cannot work;
- any other 4xx -> ``PermanentError(client)``.

Every error it returns carries the HTTP ``status`` when there was one. The ``openai`` package is
imported on first use, so importing this module costs nothing.
"""

from __future__ import annotations

from typing import Any

from .errors import BackendError, ConfigError, FailureKind, PermanentError, TransientError

__all__ = ["openai_client", "request_error"]


def openai_client(base_url: str | None, api_key: str, timeout: float) -> Any:
    """An ``openai.OpenAI`` client without retries of its own; ``ConfigError`` without the package."""
    try:
        import openai
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ConfigError("talking to an OpenAI-compatible server needs the 'openai' package: pip install 'autodp[ml]'") from e
    return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)


def request_error(e: BaseException, timeout: float | None = None) -> BackendError | None:
    """This package's error for an exception raised by the ``openai`` client; ``None`` for any
    other exception (a bug, which the caller reports as such). ``timeout``: the limit that was
    set, for the message."""
    try:
        import openai
    except ImportError:  # pragma: no cover - no client, so none of its errors
        return None
    if isinstance(e, openai.APITimeoutError):
        return TransientError(FailureKind.TIMEOUT, f"no answer within {timeout:g} s" if timeout is not None else "timed out")
    if isinstance(e, openai.APIConnectionError):
        return TransientError(FailureKind.CONNECTION, str(e) or "connection error")
    if isinstance(e, openai.APIStatusError):
        return _status_error(e)
    if isinstance(e, openai.APIResponseValidationError):
        return TransientError(FailureKind.SERVER, f"invalid response body: {e}")
    return None


def _status_error(e: Any) -> BackendError:
    status = e.status_code
    msg = _error_message(e)
    err: BackendError
    if status in (401, 403):
        err = ConfigError(f"the server refused the credentials (HTTP {status}): {msg}")
    elif status == 404:
        err = ConfigError(f"not found (HTTP 404) — is the model name and base_url right? {msg}")
    elif status == 429:
        err = TransientError(FailureKind.RATE_LIMIT, f"HTTP 429: {msg}", retry_after=_retry_after(e))
    elif status == 408:
        err = TransientError(FailureKind.TIMEOUT, f"HTTP 408: {msg}")
    elif status >= 500:
        err = TransientError(FailureKind.SERVER, f"HTTP {status}: {msg}", retry_after=_retry_after(e))
    else:
        err = PermanentError(FailureKind.CLIENT, f"HTTP {status}: {msg}")
    err.status = status
    return err


def _error_message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])[:300]
    return str(getattr(e, "message", e))[:300]


def _retry_after(e: Any) -> float | None:
    try:
        v = e.response.headers.get("retry-after")
        return float(v) if v is not None else None
    except (AttributeError, TypeError, ValueError):
        return None
