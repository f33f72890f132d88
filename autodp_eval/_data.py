"""Data in: rows with ``instruction``, optional ``input``, ``output`` and an optional category column.

Accepted sources: a polars DataFrame or LazyFrame, a sequence of mappings, or a path to a
``.jsonl`` / ``.json`` / ``.parquet`` file. The prompt of a row is its instruction, plus ``"\\n\\n"``
and the input when the input is non-empty.
"""

from __future__ import annotations

import json
import os
import random
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import polars as pl

from ._config import canonical_hash
from .errors import EvalInputError

__all__ = [
    "DataSource",
    "Row",
    "fingerprint_rows",
    "load_rows",
    "normalize_prompt",
    "prompt_text",
    "read_records",
    "split_heldout",
]

DataSource: TypeAlias = "pl.DataFrame | pl.LazyFrame | Sequence[Mapping[str, Any]] | str | os.PathLike[str]"
#: A normalised row: ``instruction``, ``input``, ``output`` (str) and ``category`` (str or None).
Row: TypeAlias = dict[str, Any]

_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet")


def prompt_text(instruction: str, input: str | None = None) -> str:  # noqa: A002 - the column is called input
    """The prompt of a row: the instruction, plus ``"\\n\\n" + input`` when input is non-empty."""
    if input and input.strip():
        return f"{instruction}\n\n{input}"
    return instruction


_WS = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([?!.,;:])")


def normalize_prompt(text: str) -> str:
    """A key under which two prompts count as the same question (case, spacing, Unicode form ignored)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _WS.sub(" ", text).strip()


def _read_path(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise EvalInputError(f"no such file: {path}")
    if path.is_dir():
        raise EvalInputError(f"expected a data file, got a directory: {path}")
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise EvalInputError(
            f"unknown data format {suffix or '(no suffix)'!r} for {path}; use .jsonl, .json or .parquet"
        )
    if suffix == ".parquet":
        try:
            return pl.read_parquet(path).to_dicts()
        except Exception as e:  # polars raises several error types for bad files
            raise EvalInputError(f"cannot read parquet file {path}: {e}") from None
    text = path.read_text(encoding="utf-8")
    if suffix == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None  # maybe JSON Lines with a .json suffix
        if obj is not None:
            if isinstance(obj, Mapping):
                for key in ("data", "rows", "examples", "records"):
                    if isinstance(obj.get(key), list):
                        obj = obj[key]
                        break
                else:
                    obj = [obj]
            if not isinstance(obj, list):
                raise EvalInputError(f"{path}: expected a JSON array of objects")
            return _check_objects(obj, str(path))
    rows: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise EvalInputError(f"{path}:{lineno}: invalid JSON: {e.msg} (column {e.colno})") from None
    return _check_objects(rows, str(path))


def _check_objects(objs: list[Any], where: str) -> list[dict[str, Any]]:
    for i, o in enumerate(objs):
        if not isinstance(o, Mapping):
            raise EvalInputError(f"{where}: record {i} is a {type(o).__name__}, expected an object")
    return [dict(o) for o in objs]


def read_records(source: Any) -> list[dict[str, Any]]:
    """Every record of ``source`` as a dict, all columns kept."""
    if isinstance(source, pl.LazyFrame):
        source = source.collect()
    if isinstance(source, pl.DataFrame):
        return source.to_dicts()
    if isinstance(source, str | os.PathLike):
        return _read_path(Path(source))
    if isinstance(source, Mapping):
        raise EvalInputError("expected a sequence of rows, got a single mapping")
    if isinstance(source, Sequence) and not isinstance(source, str | bytes):
        return _check_objects(list(source), "data")
    # pandas and friends, without importing them
    if hasattr(source, "to_dict") and hasattr(source, "columns"):
        return [dict(r) for r in source.to_dict(orient="records")]
    raise EvalInputError(
        f"unsupported data source {type(source).__name__}; pass a polars DataFrame, a list of dicts "
        "or a path to a .jsonl, .json or .parquet file"
    )


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(value)


def load_rows(
    source: Any, *, category_column: str | None = "category", what: str = "data", require_output: bool = True
) -> list[Row]:
    """Normalised rows (instruction, input, output, category) of ``source``.

    Raises :class:`EvalInputError` when the instruction column (or, with ``require_output``, the
    output column) is missing. A missing value reads as "".
    """
    records = read_records(source)
    if records:
        columns: set[str] = set()
        for r in records:
            columns.update(r)
        for needed in ("instruction", "output") if require_output else ("instruction",):
            if needed not in columns:
                raise EvalInputError(
                    f"{what} has no {needed!r} column; columns: {', '.join(sorted(columns)) or '(none)'}"
                )
    use_category = category_column is not None and any(category_column in r for r in records)
    rows: list[Row] = []
    for r in records:
        cat = r.get(category_column) if use_category and category_column else None
        rows.append(
            {
                "instruction": _as_text(r.get("instruction")),
                "input": _as_text(r.get("input")),
                "output": _as_text(r.get("output")),
                "category": None if cat is None else _as_text(cat),
            }
        )
    return rows


def fingerprint_rows(rows: Sequence[Row]) -> str:
    """sha256 over the canonical content of ``rows`` (order matters: it sets the training order)."""
    return canonical_hash(
        [[r["instruction"], r.get("input") or "", r["output"], r.get("category")] for r in rows]
    )


def _frame(source: Any) -> pl.DataFrame:
    if isinstance(source, pl.LazyFrame):
        return source.collect()
    if isinstance(source, pl.DataFrame):
        return source
    records = read_records(source)
    try:
        return pl.DataFrame(records, infer_schema_length=None, strict=False)
    except Exception:
        # heterogeneous nested columns: keep what is plain
        keys: list[str] = []
        for r in records:
            keys.extend(k for k in r if k not in keys)
        plain = [
            k
            for k in keys
            if all(isinstance(r.get(k), str | int | float | bool | type(None)) for r in records)
        ]
        return pl.DataFrame(
            [{k: r.get(k) for k in plain} for r in records], infer_schema_length=None, strict=False
        )


def split_heldout(data: Any, n: int = 200, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``n`` held-out questions off ``data`` with a fixed seed: ``(train, heldout)``.

    Questions are drawn among distinct prompts (compared after :func:`normalize_prompt`); the held-out
    row of a question is its first occurrence, and every row asking a held-out question leaves the
    training part, so no held-out question is trained on. All columns are kept. Raises
    :class:`EvalInputError` when the data has fewer than ``n + 1`` distinct questions.
    """
    df = _frame(data)
    for needed in ("instruction", "output"):
        if needed not in df.columns:
            raise EvalInputError(
                f"data has no {needed!r} column; columns: {', '.join(df.columns) or '(none)'}"
            )
    instr = [_as_text(v) for v in df.get_column("instruction").to_list()]
    inputs = (
        [_as_text(v) for v in df.get_column("input").to_list()] if "input" in df.columns else [""] * df.height
    )
    keys = [normalize_prompt(prompt_text(i, x)) for i, x in zip(instr, inputs, strict=True)]
    first: dict[str, int] = {}
    for idx, k in enumerate(keys):
        first.setdefault(k, idx)
    distinct = list(first)
    if n >= len(distinct):
        raise EvalInputError(
            f"cannot hold out {n} questions: the data has {len(distinct)} distinct questions "
            f"({df.height} rows); lower the held-out count"
        )
    chosen = set(random.Random(seed).sample(distinct, n))
    held_idx = sorted(first[k] for k in chosen)
    train_mask = [k not in chosen for k in keys]
    train = df.filter(pl.Series(train_mask, dtype=pl.Boolean))
    heldout = df[held_idx]
    return train, heldout
