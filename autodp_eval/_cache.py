"""The memo cache: a directory of content-addressed entries, written atomically.

Layout under the cache directory::

    tokenizers/<key>/   locally trained tokenizers
    models/<name>/      re-saved base models (e.g. SmolLM2 converted from GGUF), tiny LoRA bases
    arms/<key>/         trained arms, one per (data, recipe, seed): a full model or a LoRA adapter + arm.json
    answers/<key>.json  generated answers
    scores/<key>.json   per-question reference likelihoods
    pairs/<key>.json    the verdicts of one pair of trained arms (an evaluation is rebuilt from these)

Files are written to a temporary file in the same directory, fsynced, then ``os.replace``d; a
directory entry is built in a temporary directory and renamed into place (``atomic_dir``), so a
reader never sees half an entry and two writers racing for the same key both end with a complete
one. Both are ``autodp_backends.atomic``'s, the project's one atomic write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from autodp_backends.atomic import atomic_dir, write_bytes_atomic

from ._config import EVAL_VERSION, EvalConfig, canonical_hash

__all__ = [
    "CACHE_ENV",
    "arm_entry",
    "atomic_dir",
    "atomic_write_json",
    "read_json",
    "read_list",
    "resolve_cache_dir",
]

CACHE_ENV = "AUTODP_CACHE_DIR"
DEFAULT_CACHE = Path(".autodp") / "eval-cache"


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache directory: the argument, else ``$AUTODP_CACHE_DIR/eval``, else ``./.autodp/eval-cache``.

    ``$AUTODP_CACHE_DIR`` is the root every part of autodp shares (the run cache keeps its FORMAT,
    objects/ and memo/ right in it and refuses a root holding folders it does not know), so the
    evaluator keeps to its own subfolder of it. Entries an older version wrote at the root itself
    (answers/, arms/, ...) are not read: they are recomputed once, and those folders may be removed."""
    if cache_dir is not None:
        path = Path(cache_dir)
    elif os.environ.get(CACHE_ENV):
        path = Path(os.environ[CACHE_ENV]) / "eval"
    else:
        path = Path.cwd() / DEFAULT_CACHE
    path = path.expanduser().absolute()
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as UTF-8 JSON to ``path`` atomically."""
    write_bytes_atomic(path, json.dumps(obj, ensure_ascii=False, indent=1, default=str).encode("utf-8"))


def read_json(path: str | os.PathLike[str]) -> Any | None:
    """The JSON content of ``path``, or None when it is missing or unreadable (a corrupt entry is a miss)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_list(path: str | os.PathLike[str], n: int) -> list[Any] | None:
    """The list memoised at ``path`` when it holds ``n`` entries, else None (a miss)."""
    hit = read_json(path)
    return hit if isinstance(hit, list) and len(hit) == n else None


def arm_entry(
    cache_dir: str | os.PathLike[str] | None, folder: str, arm_key: str, cfg: EvalConfig, work: dict[str, Any]
) -> Path:
    """The file memoising what the arm ``arm_key`` made of ``work`` (``answers/``, ``scores/``). Its
    key also covers what every forward pass of an arm depends on (chat template, dtype, device,
    EVAL_VERSION), named here once so that no kind of entry can forget one of them."""
    tc = cfg.train
    key = canonical_hash(
        {
            "arm": arm_key,
            **work,
            "template": tc.chat_template,
            "dtype": tc.dtype,
            "device": cfg.device,
            "v": EVAL_VERSION,
        }
    )
    return resolve_cache_dir(cache_dir) / folder / f"{key[:32]}.json"
