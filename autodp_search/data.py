"""The search's data side: reading the data set, content fingerprints, and the three steps that
prepare it (the k-anonymous profile, the sample, the processing-target selector).

The steps themselves live in ``profile``, ``sampling`` and ``targets``; this module adapts their
results to what the loop keeps (plain JSON for the journal, the selector's column).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from autodp_dsl.io import read_data
from autodp_dsl.ops import ROW_ID
from autodp_dsl.plan_keys import stable_hash
from autodp_dsl.types import Type, from_polars

from .profile import profile
from .sampling import sample
from .targets import train_selector

__all__ = [
    "TARGET_COLUMN",
    "DataSet",
    "Selector",
    "frame_fingerprint",
    "load_data",
    "make_profile",
    "make_sample",
    "make_selector",
    "output_fingerprint",
    "tidy_text_columns",
    "user_columns",
]

TARGET_COLUMN = "lowq"  # the selector's score of a row (1 = a processing target), usable in strategies

_PLAIN = (pl.String, pl.Int64, pl.Int32, pl.Float64, pl.Float32, pl.Boolean, pl.UInt64, pl.UInt32, pl.Int16, pl.Int8)


@dataclass
class DataSet:
    frame: pl.DataFrame  # __rid first, plain columns only
    fingerprint: str
    path: str = ""
    quarantined: int = 0
    dropped_columns: list[str] = field(default_factory=list)


def load_data(path: str | Path) -> DataSet:
    """Read a data set (jsonl/json/parquet/HF folder) with stable row ids; nested columns are set aside."""
    loaded = read_data(path)
    frame = loaded.frame
    keep = [c for c, t in frame.schema.items() if c == ROW_ID or isinstance(t, _PLAIN) or t in _PLAIN]
    dropped = [c for c in frame.columns if c not in keep]
    return DataSet(frame.select(keep), loaded.fingerprint, str(path), loaded.quarantine.height, dropped)


def tidy_text_columns(frame: pl.DataFrame, columns=("instruction", "input", "output")) -> pl.DataFrame:
    """Whitespace only: runs of spaces/tabs become one space, blank lines and indentation around line
    breaks go, ends are stripped. Used on held-out questions and reference answers, so that the
    likelihood judge scores answers, not scraped indentation (no word is changed)."""
    exprs = []
    for c in columns:
        if c in frame.columns and frame.schema[c] == pl.String:
            e = pl.col(c).str.replace_all(r"[ \t\u00a0]+", " ").str.replace_all(r" ?\n[\s]*", "\n").str.strip_chars()
            exprs.append(e.alias(c))
    return frame.with_columns(exprs) if exprs else frame


def _sha256(body: str | bytes) -> str:
    return hashlib.sha256(body.encode("utf-8") if isinstance(body, str) else body).hexdigest()


def output_fingerprint(frame: pl.DataFrame) -> str:
    """sha256 of what the evaluator trains on (instruction, input, output, category; row order)."""
    cols = [c for c in ("instruction", "input", "output", "category") if c in frame.columns]
    return _sha256(frame.select(cols).write_ndjson())


def frame_fingerprint(frame: pl.DataFrame) -> str:
    """Content hash of a frame (column names + row hashes), for derived frames (samples, targets)."""
    digest = _sha256(frame.write_ndjson())
    return stable_hash({"columns": [f"{n}:{t}" for n, t in frame.schema.items()], "rows": digest})


def user_columns(frame: pl.DataFrame) -> dict[str, Type]:
    return {n: from_polars(t) for n, t in frame.schema.items() if not n.startswith("__")}


def _jsonable(x: Any) -> Any:
    """A step's report (pydantic models, dataclasses, lists of them) as plain JSON for the journal."""
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if hasattr(x, "model_dump"):
        return x.model_dump(mode="json")
    if hasattr(x, "to_dict"):
        try:
            return x.to_dict()
        except TypeError:
            pass
    if hasattr(x, "__dataclass_fields__"):
        return json.loads(json.dumps(asdict(x), default=str))
    try:
        return json.loads(json.dumps(x, default=str))
    except (TypeError, ValueError):
        return str(x)


# ---------------------------------------------------------------- profile


def make_profile(frame: pl.DataFrame, k: int = 20) -> tuple[str, dict[str, Any], list[tuple[str, str, tuple]]]:
    """(prompt text, JSON, signal quantiles) of an aggregate profile of ``frame``."""
    data = frame.select([c for c in frame.columns if not c.startswith("__")])
    p = profile(data, k=k)
    stats = []
    for name, s in p.signals.items():
        if s.source != "op" or "." not in name:
            continue
        col, sig = name.split(".", 1)
        qs = tuple((q, float(v)) for q, v in (s.quantiles or {}).items() if v is not None)
        if qs:
            stats.append((sig, col, qs))
    return p.to_prompt_text(), json.loads(p.model_dump_json()), stats


# ---------------------------------------------------------------- sampling


def make_sample(frame: pl.DataFrame, fraction: float, seed: int) -> tuple[pl.DataFrame, dict[str, Any], str]:
    """(sample frame, fidelity JSON, fidelity report text)."""
    s = sample(frame, fraction=fraction, seed=seed)
    return s.frame, _jsonable(s.fidelity), s.report()


# ---------------------------------------------------------------- target selection


@dataclass
class Selector:
    model: Any  # a trained ``targets`` selector; None: target selection is off
    metrics: dict[str, Any]
    seconds: float

    def add(self, frame: pl.DataFrame, name: str) -> pl.DataFrame:
        if self.model is None:
            return frame.with_columns(pl.lit(1.0, pl.Float64).alias(name))
        return self.model.add_column(frame, name=name)


def make_selector(frame: pl.DataFrame, seed: int, enabled: bool, judge: str = "weak", *, embedder: Any = None,
                  memo: bool = True) -> Selector:
    """A low-quality-row classifier trained on ``frame``; disabled: every row is a target (score 1).
    ``judge``: "weak" (labelling functions over cheap signals) or "offline" (``judges.OfflineJudge``
    labels a few hundred rows; see docs/selector.md)."""
    if not enabled:
        return Selector(None, {"enabled": False, "note": "target selection off: every row is a target (lowq = 1)"}, 0.0)
    t = time.perf_counter()
    rows = frame.select([c for c in frame.columns if c != ROW_ID])
    if judge == "offline":
        from autodp_backends.errors import ConfigError
        from stdlib_ops.backends.embed import default_embedder

        from .errors import BackendFailure
        from .judges import OfflineJudge

        try:
            if embedder is None:
                embedder = default_embedder(memo=memo)
            sel = train_selector(rows, seed=seed, judge=OfflineJudge(embedder))
        except (ConfigError, ValueError) as e:
            raise BackendFailure(f"the offline target judge cannot label the data: {e}") from e
    else:
        sel = train_selector(rows, seed=seed)
    metrics = _jsonable(sel.metrics)
    if not isinstance(metrics, dict):
        metrics = {"metrics": metrics}
    metrics["enabled"] = True
    metrics["trained_on"] = sel.judge_name or "weak labels"
    return Selector(sel, metrics, time.perf_counter() - t)
