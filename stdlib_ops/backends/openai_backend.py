"""A backend for any OpenAI-compatible chat-completions server: OpenAI, vLLM's server, Ollama, ...

>>> b = OpenAIBackend("gpt-4o-mini")                                      # doctest: +SKIP
>>> b = OpenAIBackend("Qwen/Qwen2.5-7B-Instruct", base_url="http://gpu:8000/v1")  # doctest: +SKIP

The client is ``autodp_backends.openai_client``'s (the ``openai`` package, imported when the first
request is made, its own retries off): retries, backoff and their counting are ``BaseBackend``'s.
Errors map to failure kinds as ``autodp_backends.openai_client.request_error`` says: timeouts ->
``timeout``, connection errors -> ``connection``, 429 -> ``rate_limit``, 5xx -> ``server`` (all
retried), other 4xx -> ``client`` (not retried), except 401/403/404 (wrong key, forbidden, unknown
model), which are configuration errors and stop the run.

API key: the ``api_key`` parameter, else the environment variable named by ``api_key_env``
(default ``AUTODP_LLM_API_KEY``), else ``OPENAI_API_KEY``; a server of your own (a ``base_url``)
needs none. This backend cannot score log-likelihoods (chat completions give none for the prompt).
"""

from __future__ import annotations

import os
import threading
from typing import Any, Literal

from autodp_backends.errors import ConfigError, FailureKind, PermanentError, TransientError
from autodp_backends.openai_client import openai_client, request_error

from .base import BaseBackend, ChatPrompt, Sampling

__all__ = ["OpenAIBackend"]


class OpenAIBackend(BaseBackend):
    """Chat completions over HTTP with the ``openai`` client.

    ``structured``: how ``Sampling.json_schema`` is passed on: ``"json_schema"`` (default; OpenAI,
    vLLM), ``"json_object"`` (JSON mode only), or ``"none"`` (prompt only; outputs are still
    validated). ``timeout`` is the per-request limit in seconds. ``token_param``: the name of the
    length limit sent (``auto``: ``max_completion_tokens`` for OpenAI itself, ``max_tokens`` for a
    ``base_url`` of your own). ``extra_body`` is merged into every request (e.g. vLLM's ``top_k``).
    ``grammar_field``: how ``Sampling.grammar`` (a Lark grammar) is sent: ``"none"`` (default: not
    sent, outputs are validated only), ``"structured_outputs"`` (vLLM >= 0.10:
    ``{"structured_outputs": {"grammar": ...}}``) or ``"guided_grammar"`` (older vLLM). Untested
    against a real vLLM server here.
    """

    kind = "openai"
    supports_score = False

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        api_key_env: str = "AUTODP_LLM_API_KEY",
        timeout: float = 60.0,
        structured: Literal["json_schema", "json_object", "none"] = "json_schema",
        token_param: Literal["auto", "max_tokens", "max_completion_tokens"] = "auto",
        extra_body: dict[str, Any] | None = None,
        grammar_field: Literal["none", "structured_outputs", "guided_grammar"] = "none",
        **kw: Any,
    ):
        super().__init__(**kw)
        if not model:
            raise ConfigError("the openai backend needs a model name, e.g. 'openai:gpt-4o-mini@https://api.openai.com/v1'")
        if structured not in ("json_schema", "json_object", "none"):
            raise ConfigError(f"unknown structured mode {structured!r}; expected one of json_schema, json_object, none")
        self._model = model
        self.base_url = base_url.rstrip("/") if base_url else None
        key = api_key or os.environ.get(api_key_env) or os.environ.get("OPENAI_API_KEY")
        if not key:
            if self.base_url is None:
                raise ConfigError(f"no API key for OpenAI: set {api_key_env} (or OPENAI_API_KEY), or give a base_url of your own server")
            key = "EMPTY"  # vLLM, Ollama and friends accept any key
        self._api_key = key
        self.timeout = timeout
        self.structured = structured
        if token_param not in ("auto", "max_tokens", "max_completion_tokens"):
            raise ConfigError(f"unknown token_param {token_param!r}; expected auto, max_tokens or max_completion_tokens")
        # OpenAI's newer models only take max_completion_tokens; most other servers know max_tokens
        self.token_param = token_param if token_param != "auto" else ("max_completion_tokens" if self.base_url is None else "max_tokens")
        self.extra_body = extra_body or None
        if grammar_field not in ("none", "structured_outputs", "guided_grammar"):
            raise ConfigError(f"unknown grammar_field {grammar_field!r}; expected none, structured_outputs or guided_grammar")
        self.grammar_field = grammar_field
        self._client = None
        self._client_lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self._model, "base_url": self.base_url or "https://api.openai.com/v1"}

    def describe(self) -> str:
        return f"openai:{self._model}@{self.base_url or 'https://api.openai.com/v1'}"

    def _get_client(self):
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = openai_client(self.base_url, self._api_key, self.timeout)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # pragma: no cover
                pass
            self._client = None
        super().close()

    def _request_kwargs(self, prompt: ChatPrompt, sampling: Sampling) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "model": self._model,
            "messages": prompt.to_openai(),
            "temperature": sampling.temperature,
            self.token_param: sampling.max_tokens,
        }
        if sampling.top_p != 1.0:
            kw["top_p"] = sampling.top_p
        if sampling.seed is not None:
            kw["seed"] = sampling.seed
        if sampling.stop:
            kw["stop"] = list(sampling.stop)
        if sampling.json_schema is not None:
            if self.structured == "json_schema":
                kw["response_format"] = {"type": "json_schema", "json_schema": {"name": sampling.schema_name, "schema": sampling.json_schema}}
            elif self.structured == "json_object":
                kw["response_format"] = {"type": "json_object"}
        extra = dict(self.extra_body or {})
        if sampling.grammar and self.grammar_field == "structured_outputs":
            extra["structured_outputs"] = {"grammar": sampling.grammar}
        elif sampling.grammar and self.grammar_field == "guided_grammar":
            extra["guided_grammar"] = sampling.grammar
        if extra:
            kw["extra_body"] = extra
        return kw

    def _complete_one(self, prompt: ChatPrompt, sampling: Sampling) -> str:
        client = self._get_client()
        try:
            # the timeout per request, so a caller may tighten it between calls (the search agent
            # bounds it by the time left to the search)
            resp = client.chat.completions.create(**self._request_kwargs(prompt, sampling), timeout=self.timeout)
        except Exception as e:
            err = request_error(e, self.timeout)
            if err is None:
                raise
            raise err from e
        try:
            choice = resp.choices[0]
            content = choice.message.content
        except (AttributeError, IndexError, TypeError) as e:
            raise TransientError(FailureKind.SERVER, f"response without a choice: {e}") from e
        if content is None:
            refusal = getattr(choice.message, "refusal", None)
            raise PermanentError(FailureKind.CLIENT, f"no content in the response (refusal: {refusal!r})" if refusal else "no content in the response")
        return content

