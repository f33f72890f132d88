"""Shared plumbing of the model-backed operators (scoring, generation, optimization).

- ``ModelOp``: the base class: prompt version, backend lookup, statistics tag, identity for keys.
- ``struct_udf``: run a Python function over a batch of rows inside a Polars plan
  (``Expr.map_batches`` with ``is_elementwise=True``, so pushdown and schema checks keep working;
  the model is called when the plan is collected).
- Lenient parsers of model output: ``parse_score``, ``parse_json``, ``clean_reply``.

Nothing here imports torch, transformers or openai.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, ClassVar

from autodp_backends.errors import MalformedOutput
from autodp_dsl.lazy import polars as pl  # loaded on first use: `autodp lint` needs no Polars
from autodp_dsl.ops import Op, Params

from .backends.base import ModelBackend
from .backends.config import resolve_backend

__all__ = ["ModelOp", "struct_udf", "parse_score", "parse_json", "clean_reply", "truncate", "text_or_empty"]


class ModelOp(Op):
    """Base of operators that call a model backend.

    ``prompt_version`` is part of every memo key and of the op's identity: bump it whenever a
    prompt or its parser changes. ``backend_role`` names the service the op asks the context for
    (``model_backend`` for generation, ``score_backend`` for log-likelihoods).
    """

    prompt_version: ClassVar[int] = 1
    backend_role: ClassVar[str] = "model_backend"

    def backend(self, ctx: Any) -> ModelBackend:
        return resolve_backend(ctx, self.backend_role)

    def tag(self) -> str:
        """The statistics/memo tag: ``name/pN``."""
        return f"{self.name}/p{self.prompt_version}"

    def identity(self, params: Params, ctx: Any) -> dict[str, Any]:
        return {"backend": self.backend(ctx).identity(), "prompt_version": self.prompt_version}

    def is_deterministic(self, params: Params) -> bool:
        """True when the op gives the same output for the same input: greedy decoding (temperature 0)."""
        return getattr(params, "temperature", 0.0) == 0.0


def struct_udf(exprs: list[pl.Expr], fn: Callable[[list[tuple[Any, ...]]], list[Any]], return_dtype: pl.DataType) -> pl.Expr:
    """An expression computing ``fn(rows)`` on batches; ``rows`` are tuples of the ``exprs`` values.

    ``fn`` must return one value per row, in order (None for null).
    """
    fields = [e.alias(f"_a{i}") for i, e in enumerate(exprs)]
    n = len(fields)

    def run(s: pl.Series) -> pl.Series:
        if len(s) == 0:
            return pl.Series(s.name, [], dtype=return_dtype)
        cols = [s.struct.field(f"_a{i}").to_list() for i in range(n)]
        rows = list(zip(*cols, strict=True))
        return pl.Series(s.name, fn(rows), dtype=return_dtype)

    return pl.struct(fields).map_batches(run, return_dtype=return_dtype, is_elementwise=True)


def replace_replies(out: list[Any], idx: list[int], results, stats, tag: str, done: str) -> list[Any]:
    """Put each successful reply at its row (``out[idx[j]]``); a failed call keeps the original
    value. Counts ``done`` and ``kept_original`` per tag: failures are reported, never defaulted."""
    for k, r in zip(idx, results, strict=True):
        if r.ok:
            out[k] = r.value
            stats.add(tag, done)
        else:
            stats.add(tag, "kept_original")
    return out


def text_or_empty(v: Any) -> str:
    return "" if v is None else str(v)


def truncate(text: str, max_chars: int) -> str:
    """Cut ``text`` to ``max_chars`` characters, marking the cut with " [...]"."""
    return text if len(text) <= max_chars else text[:max_chars] + " [...]"


_NUM = r"(-?\d+(?:\.\d+)?)"
_SCORE_KEYS = ("score", "rating", "quality", "grade")


def parse_json(text: str) -> Any:
    """The JSON value in ``text``: the whole text, a fenced ```json block, or the first {...}/[...] span.

    Raises ``MalformedOutput`` when there is none.
    """
    t = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", t, re.S)
    candidates = [t]
    if fence:
        candidates.append(fence.group(1).strip())
    for open_, close in (("{", "}"), ("[", "]")):
        i, j = t.find(open_), t.rfind(close)
        if 0 <= i < j:
            candidates.append(t[i : j + 1])
    for c in candidates:
        try:
            return json.loads(c)
        except ValueError:
            continue
    raise MalformedOutput(f"no JSON in the reply: {t[:80]!r}")


def parse_score(text: str, lo: float = 1.0, hi: float = 10.0) -> float:
    """A score on the scale ``lo..hi`` read leniently from a model's reply, mapped to ``[0, 1]``.

    Accepted, in order: JSON with a ``score``/``rating``/``quality``/``grade`` key (number or numeric
    string); ``score: 7`` / ``rating = 7.5`` / ``score is 7`` / ``"score": 7`` anywhere (so
    JSON cut off by the token limit still counts); ``7/10`` or ``7 out of 10``; a bare number
    (``"8"``, ``"8."``). A number outside ``[lo, hi]`` or no number at all raises ``MalformedOutput``.
    ``parse_score('{"score": 7}') == 6/9``.
    """
    t = text.strip()
    value: float | None = None
    try:
        obj = parse_json(t)
    except MalformedOutput:
        obj = None
    if isinstance(obj, dict):
        for k, v in obj.items():
            if str(k).lower() in _SCORE_KEYS and not isinstance(v, bool):
                try:
                    value = float(v)
                except (TypeError, ValueError):
                    raise MalformedOutput(f"score is not a number: {v!r}") from None
                break
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        value = float(obj)
    if value is None:
        m = re.search(r"""(?i)\b(?:score|rating|grade)\b["']?\s*(?:[:=]|is)?\s*["']?""" + _NUM, t)
        m = m or re.search(_NUM + r"\s*(?:/|out of)\s*" + re.escape(f"{hi:g}") + r"\b", t)
        m = m or re.fullmatch(r"\s*" + _NUM + r"\s*[.!]?\s*", t)
        if m:
            value = float(m.group(1))
    if value is None:
        raise MalformedOutput(f"no score in the reply: {t[:80]!r}")
    if not lo <= value <= hi:
        raise MalformedOutput(f"score {value:g} is outside {lo:g}..{hi:g}")
    return (value - lo) / (hi - lo)


_LABEL = re.compile(r"^(?:here is |here's )?(?:the )?(?:rewritten|improved|revised|new|final)?\s*(?:answer|response|output|text|instruction|question|version)\s*:\s*", re.I)


def clean_reply(text: str) -> str:
    """A free-text reply without decoration: surrounding ``` fences, a leading label line
    (``Rewritten answer:``), matching surrounding quotes, outer whitespace. Raises
    ``MalformedOutput`` if nothing is left."""
    t = text.strip()
    m = re.fullmatch(r"```[\w-]*\n(.*?)\n?```", t, re.S)
    if m:
        t = m.group(1).strip()
    first, nl, rest = t.partition("\n")
    if len(first) <= 60 and _LABEL.match(first):
        t = (_LABEL.sub("", first, count=1) + nl + rest).strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'" and t.count(t[0]) == 2:
        t = t[1:-1].strip()
    if not t:
        raise MalformedOutput("empty reply")
    return t
