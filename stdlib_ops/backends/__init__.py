"""Model backends: one ``ModelBackend`` protocol, four implementations.

- ``OpenAIBackend``: any OpenAI-compatible chat-completions server (``openai:MODEL@BASE_URL``).
- ``VLLMBackend``: an in-process vLLM engine (``vllm:MODEL``; GPU, optional extra).
- ``TransformersBackend``: a local causal LM on CPU (``local:smollm2`` or ``local:/path``).
- ``ScriptedBackend``: a Python callable answers (tests and dry runs; ``scripted``).

``Embedder`` (MiniLM by default) embeds texts for the ``novelty`` signal (service ``embedder``).

Operators find theirs with ``resolve_backend(ctx, "model_backend")`` (the run's service, else
``default_backend()`` from the environment); see ``config`` for spec strings and variables and
``base`` for the semantics (memo, retries, statistics). The parts shared with the evaluator live in
the leaf package ``autodp_backends``: the exception tree and failure kinds (``errors``), the memo,
the counters (``stats``), the retry policy, the OpenAI client, and the fake OpenAI-compatible
server for tests (``autodp_backends.testing``; ``stdlib_ops.backends.testing`` names the same one).

Importing this package imports neither torch, transformers, vllm nor openai.
"""

from __future__ import annotations

from autodp_backends.errors import (
    BackendError,
    ConfigError,
    FailureKind,
    MalformedOutput,
    PermanentError,
    RequestError,
    TransientError,
    UnsupportedError,
)
from autodp_backends.memo import Memo, cache_root, default_memo_dir, memo_key
from autodp_backends.stats import BackendStats

from .base import (
    BaseBackend,
    ChatPrompt,
    Message,
    ModelBackend,
    Result,
    Sampling,
    ScoreItem,
    ScoreResult,
    Validator,
)
from .config import (
    KINDS,
    default_backend,
    default_score_backend,
    from_config,
    parse_spec,
    resolve_backend,
    services_from_env,
    services_stats,
)
from .embed import Embedder, default_embedder
from .local import TransformersBackend
from .openai_backend import OpenAIBackend
from .scripted import ScriptedBackend
from .vllm_backend import VLLMBackend

__all__ = [
    "BackendError",
    "BackendStats",
    "BaseBackend",
    "ChatPrompt",
    "ConfigError",
    "Embedder",
    "FailureKind",
    "KINDS",
    "MalformedOutput",
    "Memo",
    "Message",
    "ModelBackend",
    "OpenAIBackend",
    "PermanentError",
    "RequestError",
    "Result",
    "Sampling",
    "ScoreItem",
    "ScoreResult",
    "ScriptedBackend",
    "TransformersBackend",
    "TransientError",
    "UnsupportedError",
    "VLLMBackend",
    "Validator",
    "cache_root",
    "default_backend",
    "default_embedder",
    "default_memo_dir",
    "default_score_backend",
    "from_config",
    "memo_key",
    "parse_spec",
    "resolve_backend",
    "services_from_env",
    "services_stats",
]
