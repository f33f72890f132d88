"""Reading and writing data sets, with quarantine instead of failure.

``read_data`` reads jsonl, json, parquet and Hugging Face ``datasets`` folders (written by
``save_to_disk``: arrow files plus ``dataset_info.json``/``state.json``; read with Polars, without
importing ``datasets``). Every input record gets a stable row id (``__rid``, UInt64): its 0-based
record index in the input (blank lines of a jsonl file are not records). A record that cannot be
used -- bad JSON, invalid UTF-8, not an object, a required field missing or null or of the wrong
type, a line over the size limit, an object with a key twice (``duplicate-key``: JSON readers
silently keep one value), a string holding a lone surrogate escape (``"\\udc00"``: not
encodable as UTF-8), whatever column it is in -- is *quarantined* with its id, line number, reason and
a raw excerpt instead of failing the run or vanishing, so ``rows in = kept + dropped + quarantined``.

Columns pass through unchanged, or the change is reported (``Loaded.changes``, column -> what
changed). A frame holds one type per column, so JSON that mixes types in a column is coerced (ints
and strings become text, ints and floats become floats), objects get the keys other rows' objects
have (as null), and a key absent from a record is written back as null; Categorical and Enum
columns are read as plain strings. Names starting with ``__`` are the engine's own (row id, keep
flags, statistics, scratch columns): an input column named so is escaped inside the engine
(``escape_column``) and gets its name back in the result, so it passes through untouched.

The fingerprint is a sha256 over the file bytes (for a folder: over each data file's sha256) and the
reader's settings: it is the root of every node key.

Reading jsonl has a fast path (Polars parses the whole file; cheap regex checks prove every line has
each required field exactly once, as a JSON string, and token counts prove that Polars coerced no
value: ``_read_unchanged``) and an exact slow path (``json.loads`` per line) that runs whenever the
fast path cannot prove a file clean.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import stat
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from .declarations import ROW_ID
from .errors import DataError, NoUsableRows
from .plan_keys import stable_hash
from .types import ANY, STR, Type, from_polars, parse_type

__all__ = [
    "DataError",
    "NoUsableRows",
    "Loaded",
    "Source",
    "open_source",
    "check_regular",
    "bounded_blocks",
    "parse_source",
    "source_stat",
    "validate_lazy",
    "normalise_required",
    "read_data",
    "read_jsonl_bytes",
    "first_line",
    "write_data",
    "peek_columns",
    "data_format",
    "QUARANTINE_SCHEMA",
    "DEFAULT_MAX_ROW_BYTES",
    "escape_column",
    "unescape_column",
]

READER_VERSION = 3  # 3: duplicate keys are quarantined (cached reads of version 2 collapsed them)
DEFAULT_MAX_ROW_BYTES = 8 * 1024 * 1024
EXCERPT_CHARS = 200
QUARANTINE_SCHEMA = {"rid": pl.UInt64, "line": pl.Int64, "reason": pl.String, "detail": pl.String, "raw": pl.String}


# ---------------------------------------------------------------- column names

_ESCAPE = "_~"


def escape_column(name: str) -> str:
    """A data column's name inside the engine, where ``__*`` names are internal: a name that starts
    with ``__`` (or with ``_~``, to keep the mapping one to one) gets ``_~`` in place of its first
    ``_`` (``__meta`` -> ``_~_meta``). ``unescape_column`` undoes it."""
    return _ESCAPE + name[1:] if name[:2] in ("__", _ESCAPE) else name


def unescape_column(name: str) -> str:
    return "_" + name[2:] if name.startswith(_ESCAPE) else name


def _escape_frame(df):
    """``df`` (a DataFrame or LazyFrame of input columns) with its columns renamed by ``escape_column``."""
    names = df.collect_schema().names() if isinstance(df, pl.LazyFrame) else df.columns
    mapping = {c: escape_column(c) for c in names if escape_column(c) != c}
    return df.rename(mapping) if mapping else df


def _plain_strings(df):
    """Categorical and Enum columns cast to String (what the engine's ``str`` is), with a note each."""
    schema = df.collect_schema() if isinstance(df, pl.LazyFrame) else df.schema
    cats = {c: dt for c, dt in schema.items() if isinstance(dt, pl.Categorical | pl.Enum)}
    if not cats:
        return df, {}
    notes = {c: f"{'Enum' if isinstance(dt, pl.Enum) else 'Categorical'} read as str (written as plain strings)" for c, dt in cats.items()}
    return df.with_columns([pl.col(c).cast(pl.String) for c in cats]), notes


@dataclass(slots=True)
class Loaded:
    frame: pl.DataFrame  # __rid (UInt64) first, then the data's columns; sorted by __rid
    quarantine: pl.DataFrame  # rid, line, reason, detail, raw (QUARANTINE_SCHEMA)
    fingerprint: str  # sha256 over content + reader settings: the root of node keys
    path: str = ""
    format: str = ""
    rows_total: int = 0  # records in the input = frame.height + quarantine.height
    dropped_columns: list[str] = field(default_factory=list)  # input columns left out (none since reader v2: "__*" ones are escaped)
    content_sha256: str = ""
    changes: dict[str, str] = field(default_factory=dict)  # column (as in the input) -> how reading changed it

    @property
    def columns(self) -> dict[str, Type]:
        """The columns a strategy can read (escaped ``__*`` columns only pass through)."""
        return {n: from_polars(t) for n, t in self.frame.schema.items() if n != ROW_ID and not n.startswith(_ESCAPE)}


# ---------------------------------------------------------------- formats


_FOLDER_FORMATS = ("hf", "shards")  # inputs that are folders: a datasets folder, Parquet shards


def data_format(path: str | Path) -> str:
    p = Path(path)
    if p.is_dir():
        if (p / "dataset_dict.json").exists() or (p / "state.json").exists() or (p / "dataset_info.json").exists() or any(p.glob("*.arrow")):
            return "hf"
        if _shard_files(p):
            return "shards"
        raise DataError(f"{p} is a folder but neither a Hugging Face datasets folder (no state.json or *.arrow) nor a folder of Parquet shards")
    name = p.name.lower()
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"), (".parquet", "parquet"), (".arrow", "arrow")):
        if name.endswith(suffix):
            return fmt
    raise DataError(f"unknown data format of {p}: expected .jsonl, .ndjson, .json, .parquet or a datasets folder")


def normalise_required(required) -> dict[str, Type]:
    if required is None:
        return {}
    if isinstance(required, Mapping):
        return {k: (parse_type(v) if isinstance(v, str) else v) for k, v in required.items()}
    return {name: STR for name in required}


def _type_ok(v: Any, t: Type) -> bool:
    match t.name:
        case "any":
            return True
        case "str":
            return isinstance(v, str)
        case "int":
            return isinstance(v, int) and not isinstance(v, bool)
        case "float" | "number":
            return isinstance(v, int | float) and not isinstance(v, bool)
        case "bool":
            return isinstance(v, bool)
        case "list":
            return isinstance(v, list) and (t.item is None or all(x is None or _type_ok(x, t.item) for x in v))
    return True


_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "object"}


def _pytype(v: Any) -> str:
    return _TYPE_NAMES.get(type(v), type(v).__name__)


def _check_record(obj: Any, required: dict[str, Type]) -> tuple[str, str] | None:
    if not isinstance(obj, dict):
        return "not-an-object", f"expected a JSON object, got {_pytype(obj)}"
    for name, t in required.items():
        v = obj.get(name)
        if v is None:
            return "missing-field", f"required field {name!r} is {'null' if name in obj else 'missing'}"
        if not _type_ok(v, t):
            return "wrong-type", f"field {name!r} should be {t}, got {_pytype(v)}"
    return None


def _excerpt(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        raw = raw[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    return raw[:EXCERPT_CHARS].encode("utf-8", errors="backslashreplace").decode("utf-8")  # a lone surrogate as "\\udc00"


# a \uD800-\uDFFF escape: a surrogate pair is fine (json.loads joins it), a lone one is not UTF-8
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_HIGH, _LOW = r"\\u[dD][89abAB][0-9a-fA-F]{2}", r"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
_PAIR = _HIGH + _LOW


def _lone_surrogate(obj: Any, where: str = "") -> str | None:
    """Where a parsed JSON value holds a lone surrogate (in a string or a key), or None."""
    if isinstance(obj, str):
        return where or "the value" if _SURROGATE.search(obj) else None
    if isinstance(obj, dict):
        for k, v in obj.items():
            if _SURROGATE.search(k):
                return f"a key of {where}" if where else "a field name"
            found = _lone_surrogate(v, f"{where}.{k}" if where else f"field {k!r}")
            if found:
                return found
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found = _lone_surrogate(v, f"{where}[{i}]")
            if found:
                return found
    return None


def _surrogate_problem(obj: Any) -> tuple[str, str] | None:
    where = _lone_surrogate(obj)
    return ("invalid-unicode", f"lone surrogate escape in {where} (not encodable as UTF-8)") if where else None


def _quarantine_frame(rows: list[tuple[int, int, str, str, str]]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    rid, line, reason, detail, raw = zip(*rows, strict=True)
    return pl.DataFrame({"rid": list(rid), "line": list(line), "reason": list(reason), "detail": list(detail), "raw": list(raw)}, schema=QUARANTINE_SCHEMA)


# ---------------------------------------------------------------- frames from records


def _frame_from_records(records: list[dict[str, Any]]) -> pl.DataFrame:
    """Like ``pl.read_ndjson`` on the records' JSON (the fast path's semantics), falling back to a
    column-wise build where Polars cannot merge the types (mixed types become JSON text)."""
    if not records:
        return pl.DataFrame()
    try:
        return pl.read_ndjson(io.BytesIO("\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode("utf-8")), infer_schema_length=None)
    except BaseException as e:  # Polars may panic on types it cannot merge
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
    names: dict[str, None] = {}
    for r in records:
        for k in r:
            names.setdefault(k, None)
    cols = {}
    for name in names:
        vals = [r.get(name) for r in records]
        kinds = {_pytype(v) for v in vals if v is not None}
        if kinds <= {"int", "float"} and kinds:
            vals = [None if v is None else (float(v) if "float" in kinds else v) for v in vals]
            cols[name] = pl.Series(name, vals, strict=False)
            continue
        if len(kinds) <= 1:
            try:
                col = pl.Series(name, vals, strict=False)
                if col.len() == len(vals):  # Polars may mis-build nested values it cannot merge
                    cols[name] = col
                    continue
            except BaseException as e:
                if isinstance(e, KeyboardInterrupt | SystemExit):
                    raise
        vals = [None if v is None else (v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)) for v in vals]
        cols[name] = pl.Series(name, vals, dtype=pl.String)
    return pl.DataFrame(cols)


# ---------------------------------------------------------------- jsonl


def _field_patterns(name: str) -> tuple[str, str, str]:
    # Plain patterns keep Polars' literal-prefix search fast. An occurrence inside a JSON string
    # cannot match (its quotes are escaped); a nested key of the same name makes the count differ
    # from 1, and a top-level key that is absent shows up as a null after parsing: both send the
    # file to the exact slow path.
    k = re.escape(json.dumps(name, ensure_ascii=False))
    return (rf"{k}\s*:", rf'{k}\s*:\s*"', rf"{k}\s*:\s*null")


def _jsonl_fast(b: bytes, required: dict[str, Type], max_row_bytes: int) -> pl.DataFrame | None:
    """The whole file parsed by Polars, or None when a line needs the exact slow path."""
    if not b or any(t.name not in ("str", "any") for t in required.values()):
        return None
    n_lines = b.count(b"\n") + (0 if b.endswith(b"\n") else 1)
    try:
        lines = pl.read_csv(
            io.BytesIO(b), has_header=False, separator="\x1f", quote_char=None, new_columns=["line"], schema={"line": pl.String}
        )
        if lines.height != n_lines:
            return None
        line = pl.col("line")
        checks = [
            line.is_null().any().alias("null"),
            (~line.str.contains(r"^\s*\{")).any().alias("not_object"),  # blank lines too
            (line.str.len_bytes().max() > max_row_bytes).alias("big"),
            line.str.contains(r"\\u[dD][89a-fA-F]").any().alias("surrogates"),
        ]
        for i, (name, t) in enumerate(required.items()):
            any_p, str_p, null_p = _field_patterns(name)
            checks.append((line.str.count_matches(any_p) != 1).any().alias(f"f{i}"))
            if t.name == "str":
                checks.append((line.str.count_matches(str_p) != 1).any().alias(f"s{i}"))
            else:
                checks.append((line.str.count_matches(null_p) != 0).any().alias(f"n{i}"))
        found = lines.select(checks).row(0, named=True)
        surrogates = found.pop("surrogates")
        if any(found.values()):
            return None
        if surrogates:
            # every \uD800-\uDBFF escape directly followed by a \uDC00-\uDFFF one (a pair, as Python's
            # json.dumps writes an emoji): fine; a lone one is quarantined by the slow path
            pairs = line.str.count_matches(_PAIR)
            if lines.select(((line.str.count_matches(_HIGH) != pairs) | (line.str.count_matches(_LOW) != pairs)).any()).item():
                return None
        df = pl.read_ndjson(io.BytesIO(b), infer_schema_length=None)
    except BaseException as e:  # invalid UTF-8, a separator byte, a Polars panic: the slow path decides
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        return None
    if df.height != n_lines:
        return None
    for name, t in required.items():
        if name not in df.columns or df[name].null_count() > 0:
            return None
        if t.name == "str" and df.schema[name] != pl.String:
            return None
    return df if _read_unchanged(lines, df) else None


def _number_leaf(dt) -> bool:
    if isinstance(dt, pl.List | pl.Array):
        return _number_leaf(dt.inner)
    if isinstance(dt, pl.Struct):
        return any(_number_leaf(f.dtype) for f in dt.fields)
    return dt.is_numeric()


def _strict_equal(a: Any, b: Any) -> bool:
    """``a == b`` with JSON's types kept apart (``True == 1 == 1.0`` in Python)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_strict_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _read_unchanged(lines: pl.DataFrame, df: pl.DataFrame) -> bool:
    """Whether Polars read every line of the fast path without coercing a value. Each coercion it
    makes changes a count in the line: a value read as text, or a key added (one absent from the
    line, or another row's in an object, as null), adds quotes; an integer read as a float adds a
    dot; a bool read as a number loses its word. So each line must have as many of each as Polars'
    encoding of its row; else (also for a float written without a dot, like ``1e5``, or a quote
    written as ``\\u0022``) the slow path decides. About a quarter of ``read_ndjson``'s time, one
    pass whatever the number of columns (``bench/bench_reader_checks.py``)."""
    if df.width == 0:
        return True
    tokens = ('"', r"\.", "true|false", "null")  # null: a key added as null must not hide a duplicate key's quotes
    encoded = df.select(pl.struct(pl.all()).struct.json_encode().alias("line"))
    counts = [frame.select([pl.col("line").str.count_matches(t).alias(str(i)) for i, t in enumerate(tokens)]) for frame in (lines, encoded)]
    return counts[0].equals(counts[1])


class _Duplicated(dict):
    """An object that had a key more than once: ``json.loads`` would keep the last value without a word."""

    __slots__ = ("duplicate",)


def _object_hook(seen: list[str]):
    """A ``json.loads`` ``object_pairs_hook`` that notes (in ``seen``) and marks each object with a
    duplicate key, at any depth: such a record is quarantined as ``duplicate-key``, not collapsed."""

    def hook(pairs: list[tuple[str, Any]]) -> dict:
        d = dict(pairs)
        if len(d) == len(pairs):
            return d
        keys: set[str] = set()
        dup = next(k for k, _ in pairs if k in keys or keys.add(k))
        seen.append(dup)
        marked = _Duplicated(d)
        marked.duplicate = dup
        return marked

    return hook


def _duplicate_key(obj: Any) -> str | None:
    """The first duplicated key inside ``obj`` (parsed with ``_object_hook``), iteratively."""
    todo = [obj]
    while todo:
        o = todo.pop()
        if isinstance(o, _Duplicated):
            return o.duplicate
        if isinstance(o, dict):
            todo.extend(o.values())
        elif isinstance(o, list):
            todo.extend(o)
    return None


def _duplicate_detail(key: str) -> str:
    return f"key {key!r} appears more than once in one object (JSON readers would keep only one value)"


def _jsonl_slow(b: bytes, required: dict[str, Type], max_row_bytes: int) -> tuple[list[int], list[dict], list[tuple]]:
    rids: list[int] = []
    records: list[dict] = []
    quarantine: list[tuple] = []
    duplicates: list[str] = []
    hook = _object_hook(duplicates)
    rid = 0
    for lineno, raw in enumerate(b.split(b"\n"), 1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw.strip():
            continue
        this = rid
        rid += 1
        if len(raw) > max_row_bytes:
            # a line of max_row_bytes + 1 may have been cut there while reading (bounded_blocks)
            size = f"more than {max_row_bytes}" if len(raw) == max_row_bytes + 1 else str(len(raw))
            quarantine.append((this, lineno, "row-too-large", f"{size} bytes > limit {max_row_bytes}", _excerpt(raw)))
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            quarantine.append((this, lineno, "invalid-utf8", f"invalid UTF-8 at byte {e.start}", _excerpt(raw)))
            continue
        try:
            obj = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=hook)
        except ValueError as e:
            quarantine.append((this, lineno, "invalid-json", str(e)[:200], _excerpt(text)))
            continue
        if duplicates:
            quarantine.append((this, lineno, "duplicate-key", _duplicate_detail(duplicates[0]), _excerpt(text)))
            duplicates.clear()
            continue
        problem = _check_record(obj, required)
        if problem:
            quarantine.append((this, lineno, problem[0], problem[1], _excerpt(text)))
            continue
        if _has_non_finite(obj):
            quarantine.append((this, lineno, "invalid-json", "number out of range (inf or nan)", _excerpt(text)))
            continue
        if _SURROGATE_ESCAPE.search(raw) and (problem := _surrogate_problem(obj)):
            quarantine.append((this, lineno, problem[0], problem[1], _excerpt(text)))
            continue
        rids.append(this)
        records.append(obj)
    return rids, records, quarantine


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _has_non_finite(obj) -> bool:
    if isinstance(obj, float):
        return not math.isfinite(obj)
    if isinstance(obj, dict):
        return any(_has_non_finite(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_has_non_finite(v) for v in obj)
    return False


def read_jsonl_bytes(b: bytes, required: dict[str, Type], max_row_bytes: int) -> tuple[pl.DataFrame, pl.DataFrame, int, dict[str, str]]:
    """(usable rows with ``__rid`` first, quarantine, records in the input, column changes)."""
    if b.startswith(b"\xef\xbb\xbf"):
        b = b[3:]
    fast = _jsonl_fast(b, required, max_row_bytes)
    if fast is not None:
        frame = _escape_frame(fast).with_row_index(ROW_ID).with_columns(pl.col(ROW_ID).cast(pl.UInt64))
        return frame, _quarantine_frame([]), frame.height, {}
    rids, records, quarantine = _jsonl_slow(b, required, max_row_bytes)
    return _assemble(rids, records, quarantine)


def _changes(df: pl.DataFrame, records: list[dict]) -> dict[str, str]:
    """How the frame differs from the records it was built from, per column (see the module doc).
    About 10-25% of the slow path's time (``bench/bench_reader_checks.py``)."""
    out = {}
    n = len(records)
    present = Counter(k for r in records for k in r)
    for name, dt in df.schema.items():
        notes = []
        if dt == pl.String or dt.is_float():
            kinds = {type(r.get(name)) for r in records} - {type(None)}
            if dt == pl.String and kinds - {str}:
                notes.append(f"values of types {', '.join(sorted(_TYPE_NAMES.get(k, k.__name__) for k in kinds))} read as text")
            elif dt.is_float() and int in kinds:
                notes.append("integers read as floats")
        elif dt.is_nested() and _nested_changed(df[name], [r.get(name) for r in records]):
            notes.append("nested values reshaped to one type (objects get the keys of other rows' objects, as null; mixed types become text)")
        if present[name] < n:
            notes.append(f"absent from {n - present[name]:,} of {n:,} rows, written as null")
        if notes:
            out[name] = "; ".join(notes)
    return out


def _nested_changed(read: pl.Series, originals: list) -> bool:
    values = read.to_list()
    if values != originals:
        return True
    return _number_leaf(read.dtype) and not all(_strict_equal(a, b) for a, b in zip(values, originals, strict=True))


def _assemble(rids: list[int], records: list[dict], quarantine: list[tuple]) -> tuple[pl.DataFrame, pl.DataFrame, int, dict[str, str]]:
    df = _frame_from_records(records)
    changes = _changes(df, records) if df.width else {}
    df = _escape_frame(df)
    df = df.with_columns(pl.Series(ROW_ID, rids, dtype=pl.UInt64)) if df.width else pl.DataFrame({ROW_ID: pl.Series(rids, dtype=pl.UInt64)})
    df = df.select(ROW_ID, pl.exclude(ROW_ID))
    return df, _quarantine_frame(quarantine), len(rids) + len(quarantine), changes


def _read_json_bytes(b: bytes, required: dict[str, Type], max_row_bytes: int) -> tuple[pl.DataFrame, pl.DataFrame, int, dict[str, str]]:
    if b.startswith(b"\xef\xbb\xbf"):
        b = b[3:]
    head = b.lstrip()[:1]
    if head == b"[" or head == b"{":
        duplicates: list[str] = []
        try:
            doc = json.loads(b.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_object_hook(duplicates))
        except (UnicodeDecodeError, ValueError):
            doc = None
        if isinstance(doc, _Duplicated):  # the wrapper object itself: which list holds the records is ambiguous
            raise DataError(f"not a usable JSON document: {_duplicate_detail(doc.duplicate)}")
        if isinstance(doc, dict):  # {"data": [...]} style: the one list of records
            lists = [v for v in doc.values() if isinstance(v, list)]
            doc = lists[0] if len(doc) == 1 and len(lists) == 1 else None
            if doc is None:
                return read_jsonl_bytes(b, required, max_row_bytes)
        if isinstance(doc, list):
            rids, records, quarantine = [], [], []
            surrogates = _SURROGATE_ESCAPE.search(b) is not None
            for i, obj in enumerate(doc):
                raw = None
                dup = _duplicate_key(obj) if duplicates else None
                problem = ("duplicate-key", _duplicate_detail(dup)) if dup is not None else None
                problem = problem or _check_record(obj, required) or (_surrogate_problem(obj) if surrogates else None)
                if problem is None:
                    raw = json.dumps(obj, ensure_ascii=False)
                    if len(raw.encode("utf-8")) > max_row_bytes:
                        problem = ("row-too-large", f"{len(raw.encode('utf-8'))} bytes > limit {max_row_bytes}")
                    elif _has_non_finite(obj):
                        problem = ("invalid-json", "number out of range (inf or nan)")
                if problem:
                    raw = raw or json.dumps(obj, ensure_ascii=False, default=str)
                    quarantine.append((i, i + 1, problem[0], problem[1], _excerpt(raw)))
                else:
                    rids.append(i)
                    records.append(obj)
            return _assemble(rids, records, quarantine)
        if head == b"[":
            raise DataError("not valid JSON (a .json file must hold an array of objects, or JSON lines)")
    return read_jsonl_bytes(b, required, max_row_bytes)


# ---------------------------------------------------------------- columnar (parquet, arrow, hf)


def validate_lazy(lf: pl.LazyFrame, required: dict[str, Type], max_row_bytes: int) -> tuple[pl.LazyFrame, pl.LazyFrame | None]:
    """(usable rows, quarantined rows as QUARANTINE_SCHEMA) of a columnar input that has ``__rid``;
    lazy, so the streaming engine can validate an input larger than memory."""
    schema = lf.collect_schema()
    reasons = []  # (mask expr, reason, detail expr)
    for name, t in required.items():
        if name not in schema:
            reasons.append((pl.lit(True), "missing-field", pl.lit(f"required field {name!r} is missing")))
            continue
        dt = schema[name]
        if t.name != "any" and not _dtype_ok(dt, t):
            got = f"{from_polars(dt)} ({dt})" if str(from_polars(dt)) == str(t) else str(from_polars(dt))  # never "should be str, got str"
            reasons.append((pl.col(name).is_not_null(), "wrong-type", pl.lit(f"field {name!r} should be {t}, got {got}")))
        reasons.append((pl.col(name).is_null(), "missing-field", pl.lit(f"required field {name!r} is null")))
    strs = [c for c, t in schema.items() if t == pl.String]
    if strs:
        size = pl.sum_horizontal([pl.col(c).str.len_bytes().fill_null(0) for c in strs])
        reasons.append((size > max_row_bytes, "row-too-large", pl.format("{} bytes of text > limit " + str(max_row_bytes), size)))
    if not reasons:
        return lf, None
    reason = pl.when(reasons[0][0]).then(pl.lit(reasons[0][1]))
    detail = pl.when(reasons[0][0]).then(reasons[0][2])
    for mask, r, d in reasons[1:]:
        reason = reason.when(mask).then(pl.lit(r))
        detail = detail.when(mask).then(d)
    marked = lf.with_columns(reason.otherwise(None).alias("__q_reason"), detail.otherwise(None).alias("__q_detail"))
    good = marked.filter(pl.col("__q_reason").is_null()).drop("__q_reason", "__q_detail")
    user = [c for c in schema.names() if c != ROW_ID]
    raw = pl.struct([pl.col(c).alias(unescape_column(c)) for c in user]).struct.json_encode().str.slice(0, EXCERPT_CHARS) if user else pl.lit("")
    bad = marked.filter(pl.col("__q_reason").is_not_null()).select(
        pl.col(ROW_ID).alias("rid"),
        (pl.col(ROW_ID).cast(pl.Int64) + 1).alias("line"),
        pl.col("__q_reason").alias("reason"),
        pl.col("__q_detail").alias("detail"),
        raw.alias("raw"),
    )
    return good, bad


def columnar_input(lf: pl.LazyFrame, escape: bool = True) -> tuple[pl.LazyFrame, dict[str, str]]:
    """A columnar input as the engine reads it: ``__*`` names escaped (``escape=False``: the names
    are the engine's already), Categorical/Enum as String, ``__rid`` (the row position) first; with
    the notes of what changed."""
    lf, changes = _plain_strings(_escape_frame(lf) if escape else lf)
    return lf.with_row_index(ROW_ID).with_columns(pl.col(ROW_ID).cast(pl.UInt64)), {unescape_column(c): v for c, v in changes.items()}


def _validate_columnar(df: pl.DataFrame, required: dict[str, Type], max_row_bytes: int, escape: bool = True) -> tuple[pl.DataFrame, pl.DataFrame, int, dict[str, str]]:
    n = df.height
    lf, changes = columnar_input(df.lazy(), escape)
    good, bad = validate_lazy(lf, required, max_row_bytes)
    if bad is None:
        return good.collect(), _quarantine_frame([]), n, changes
    g, q = pl.collect_all([good, bad])
    return g, q.cast(QUARANTINE_SCHEMA), n, changes


def _dtype_ok(dt, t: Type) -> bool:
    if t.name == "any":
        return True
    if t.name in ("float", "number"):
        return dt.is_float() or dt.is_integer()
    if t.name == "int":
        return dt.is_integer()
    if t.name == "list":
        return isinstance(dt, pl.List | pl.Array)
    return dt == t.to_polars()


def _shard_files(p: Path) -> list[Path]:
    """The Parquet files of a folder of shards (``--format parquet-shards``), in name order, which
    is row order (each is named after its first row id); hidden files (a write in progress) are not."""
    return sorted(f for f in p.glob("*.parquet") if not f.name.startswith("."))


def _folder_files(p: Path, fmt: str, split: str | None) -> list[Path]:
    return _shard_files(p) if fmt == "shards" else _hf_files(p, split)


def _hf_files(p: Path, split: str | None) -> list[Path]:
    if (p / "dataset_dict.json").exists():
        splits = json.loads((p / "dataset_dict.json").read_text()).get("splits", [])
        if split is None:
            split = "train" if "train" in splits else (splits[0] if len(splits) == 1 else None)
        if split is None or split not in splits:
            raise DataError(f"{p} holds the splits {', '.join(splits)}; name one (e.g. {p}/train)")
        p = p / split
    state = p / "state.json"
    if state.exists():
        files = [p / f["filename"] for f in json.loads(state.read_text()).get("_data_files", [])]
        if files:
            return files
    files = sorted(p.glob("*.arrow"))
    if not files:
        raise DataError(f"{p} holds no .arrow files")
    return files


def _read_parquet(b: bytes, name: str) -> pl.DataFrame:
    try:
        return pl.read_parquet(io.BytesIO(b))
    except Exception as e:
        raise DataError(f"cannot read {name}: {first_line(e)}") from e


def _read_arrow(f, name: str | None = None) -> pl.DataFrame:
    """An arrow file: the IPC stream format ``save_to_disk`` writes, or the IPC file format."""
    try:
        return pl.read_ipc_stream(f)
    except Exception:
        try:
            if hasattr(f, "seek"):
                f.seek(0)
            return pl.read_ipc(f)
        except Exception as e:
            raise DataError(f"cannot read arrow file {name or f}: {first_line(e)}") from e


# ---------------------------------------------------------------- public


@dataclass(slots=True)
class Source:
    """An input opened and hashed but not parsed yet (the executor looks up a parsed copy first)."""

    path: Path
    format: str
    content_sha256: str
    payload: bytes | list[tuple[str, bytes]] | None  # file bytes, or (name, bytes) of each arrow file
    split: str | None = None
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES  # a jsonl payload's lines are cut above this

    def load_payload(self) -> None:
        if self.payload is None:
            fresh = open_source(self.path, self.split, max_row_bytes=self.max_row_bytes)
            if fresh.content_sha256 != self.content_sha256:
                raise DataError(f"{self.path} changed while it was being read")
            self.payload = fresh.payload

    def fingerprint(self, required=("instruction", "output"), max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> str:
        req = normalise_required(required)
        reader = {"v": READER_VERSION, "required": {k: str(v) for k, v in sorted(req.items())}, "max_row_bytes": max_row_bytes, "split": self.split}
        return stable_hash({"content": self.content_sha256, "reader": reader})


def check_regular(path: str | Path) -> None:
    """``DataError`` unless ``path`` is a regular file: a device (``/dev/zero``, ``/dev/urandom``), a
    fifo or a socket never ends or cannot be read twice, so it is refused before a byte is read."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from e
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"cannot read {path}: not a regular file (a device, a fifo or a socket); save the data to a file first")


def _may_have_long_line(data: bytes, limit: int) -> bool:
    """False when no line of ``data`` can be longer than ``limit``: a line of 2h bytes or more (h =
    limit // 2) covers a whole h-aligned window, so each window holding a newline rules it out --
    a few ``find`` calls per block instead of splitting it into lines."""
    h = max(limit // 2, 1)
    return any(data.find(b"\n", i, i + h) < 0 for i in range(0, len(data) - h + 1, h))


def bounded_blocks(f, max_row_bytes: int, digest, chunk_bytes: int = 64 << 20) -> Iterator[bytes]:
    """The bytes of a jsonl file ``f`` (each hashed into ``digest``) as blocks of whole lines; a line
    longer than ``max_row_bytes`` is cut to ``max_row_bytes + 1`` bytes, enough for the reader to
    quarantine it as ``row-too-large``, so one huge line costs the bound, not its size."""
    carry = b""  # the start of a line whose end is not read yet (at most max_row_bytes + 1 bytes)
    cutting = False  # carry is a cut line: its bytes up to its newline are skipped
    try:  # read no more than the file holds: read(n) allocates n bytes first (64 MiB: +13 ms)
        left = os.fstat(f.fileno()).st_size + 1
    except (AttributeError, OSError, io.UnsupportedOperation):
        left = chunk_bytes
    while True:
        block = f.read(min(chunk_bytes, left) if left > 0 else chunk_bytes)  # left <= 0: the file grew
        left -= len(block)
        digest.update(block)
        if not block:
            if carry:
                yield carry
            return
        if cutting:
            nl = block.find(b"\n")
            if nl < 0:
                continue
            block, cutting = block[nl:], False
        data = carry + block if carry else block
        end = data.rfind(b"\n") + 1
        whole, carry = data[:end], data[end:]
        if len(carry) > max_row_bytes:
            carry, cutting = carry[: max_row_bytes + 1], True
        if _may_have_long_line(whole, max_row_bytes) and max(map(len, whole.split(b"\n"))) > max_row_bytes:
            whole = b"\n".join(line[: max_row_bytes + 1] for line in whole.split(b"\n"))
        if whole:
            yield whole


def open_source(path: str | Path, split: str | None = None, known_sha256: str | None = None,
                max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> Source:
    """Read the input's bytes and hash them (raises ``DataError`` when it cannot be read, or is not a
    regular file). A jsonl line over ``max_row_bytes`` is kept cut (``bounded_blocks``): pass the
    bound ``parse_source`` will use.

    With ``known_sha256`` (the caller vouches for the content, e.g. from a stat memo) nothing is read
    until ``Source.payload`` is needed."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"no such file or folder: {p}")
    fmt = data_format(p)
    if fmt not in _FOLDER_FORMATS:
        check_regular(p)
    if known_sha256 is not None:
        return Source(p, fmt, known_sha256, None, split, max_row_bytes)
    try:
        if fmt in _FOLDER_FORMATS:
            files = _folder_files(p, fmt, split)
            digest = hashlib.sha256()
            payload = []
            for f in files:
                check_regular(f)
                b = f.read_bytes()
                digest.update(f.name.encode() + b"\0" + hashlib.sha256(b).digest())
                payload.append((str(f), b))
            return Source(p, fmt, digest.hexdigest(), payload, split)
        if fmt == "jsonl":
            digest = hashlib.sha256()
            with open(p, "rb") as f:
                blocks = list(bounded_blocks(f, max_row_bytes, digest))
            b = blocks[0] if len(blocks) == 1 else b"".join(blocks)
            del blocks
            return Source(p, fmt, digest.hexdigest(), b, split, max_row_bytes)
        b = p.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {p}: {e.strerror or e}") from e
    return Source(p, fmt, hashlib.sha256(b).hexdigest(), b, split)


def source_stat(path: str | Path, split: str | None = None) -> list:
    """What identifies an input's bytes without reading them: path, size, mtime_ns, inode of each file."""
    p = Path(path).resolve()
    files = _folder_files(p, data_format(p), split) if p.is_dir() else [p]
    out = []
    for f in files:
        st = os.stat(f)
        out.append([str(f), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev])
    return out


def parse_source(src: Source, required=("instruction", "output"), max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> Loaded:
    req = normalise_required(required)
    src.load_payload()
    fmt = src.format
    if fmt in _FOLDER_FORMATS:
        frames = [_read_parquet(b, name) if fmt == "shards" else _read_arrow(io.BytesIO(b), name) for name, b in src.payload]
        df = pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()
        frame, quarantine, total, changes = _validate_columnar(df, req, max_row_bytes)
    elif fmt == "jsonl":
        frame, quarantine, total, changes = read_jsonl_bytes(src.payload, req, max_row_bytes)
    elif fmt == "json":
        frame, quarantine, total, changes = _read_json_bytes(src.payload, req, max_row_bytes)
    else:
        try:
            df = pl.read_parquet(io.BytesIO(src.payload)) if fmt == "parquet" else _read_arrow(io.BytesIO(src.payload), str(src.path))
        except DataError:
            raise
        except Exception as e:
            raise DataError(f"cannot read {src.path}: {first_line(e)}") from e
        frame, quarantine, total, changes = _validate_columnar(df, req, max_row_bytes)
    missing = [n for n in req if n not in frame.columns]
    if missing and frame.height == 0:  # no usable row: still the columns a strategy reads, so it runs on none
        frame = frame.with_columns([pl.Series(n, [], dtype=req[n].to_polars()) for n in missing])
    return Loaded(frame, quarantine, src.fingerprint(req, max_row_bytes), str(src.path), fmt, total, [], src.content_sha256, changes)


def first_line(e: BaseException) -> str:
    """A library error's first line (Polars appends multi-line context)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def read_data(
    path: str | Path,
    required: Iterable[str] | Mapping[str, Type | str] | None = ("instruction", "output"),
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
    split: str | None = None,
) -> Loaded:
    """Read a data set; unusable records go to ``quarantine``. ``required``: the fields every record
    must have (non-null), as names (type ``str``) or a mapping name -> type (``any`` accepts every type).

    Raises ``DataError`` (a ``ValueError``) only when the input cannot be read as a whole.
    """
    return parse_source(open_source(path, split, max_row_bytes=max_row_bytes), required, max_row_bytes)


def loaded_from_frame(df: pl.DataFrame, required: Iterable[str] | Mapping[str, Type | str] | None = None, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> Loaded:
    """A ``Loaded`` from an in-memory frame (tests, the search's samples); ids are row positions
    unless the frame already has ``__rid`` (then it comes from a ``Loaded``: its names are the
    engine's, not escaped again)."""
    req = normalise_required(required)
    if ROW_ID in df.columns:
        base = df.drop(ROW_ID)
        frame, q, total, changes = _validate_columnar(base, req, max_row_bytes, escape=False)
        ids = df[ROW_ID].cast(pl.UInt64)
        frame = frame.with_columns(ids.gather(frame[ROW_ID].cast(pl.Int64)).alias(ROW_ID))
        q = q.with_columns(ids.gather(q["rid"].cast(pl.Int64)).alias("rid"))
    else:
        frame, q, total, changes = _validate_columnar(df, req, max_row_bytes)
    buf = io.BytesIO()
    df.write_ipc(buf, compression="uncompressed")
    content = hashlib.sha256(buf.getvalue()).hexdigest()
    fp = stable_hash({"content": content, "frame": True, "reader": {"v": READER_VERSION, "required": {k: str(v) for k, v in sorted(req.items())}, "max_row_bytes": max_row_bytes}})
    return Loaded(frame.sort(ROW_ID), q, fp, "<frame>", "frame", total, [], content, changes)


def peek_columns(path: str | Path, n: int = 1000) -> dict[str, Type]:
    """The data's columns and types from its first records (cheap; for type-checking strategies).

    Empty when the head holds no usable record (an empty file, only broken lines, a first record
    larger than the 4 MiB read): the caller then reads the whole input (see ``commands.run``).
    Raises ``DataError`` when the input cannot be read."""
    p = Path(path)
    fmt = data_format(p)
    if fmt not in _FOLDER_FORMATS:
        check_regular(p)
    try:
        if fmt in ("parquet", "shards"):
            schema = pl.read_parquet_schema(_shard_files(p)[0] if fmt == "shards" else p)
        elif fmt in ("hf", "arrow"):
            f = _hf_files(p, None)[0] if fmt == "hf" else p
            schema = _read_arrow(f).schema
        elif fmt == "json":  # read whole anyway, and ``{"data": [...]}`` is only known from the whole
            schema = {unescape_column(c): t for c, t in read_data(p, required=()).frame.schema.items() if c != ROW_ID}
        else:
            with open(p, "rb") as fh:
                head = fh.read(4 * 1024 * 1024)
            if head.startswith(b"\xef\xbb\xbf"):
                head = head[3:]
            lines = [ln for ln in head.split(b"\n")[:n] if ln.strip()]
            if len(head) >= 4 * 1024 * 1024 - 3 and lines:
                lines = lines[:-1]  # possibly cut
            recs = []
            for ln in lines:
                try:
                    obj = json.loads(ln.decode("utf-8"), parse_constant=_reject_constant)
                except ValueError:  # invalid UTF-8 or JSON: quarantined by the reader, no column of its own
                    continue
                if isinstance(obj, dict) and not (_SURROGATE_ESCAPE.search(ln) and _lone_surrogate(obj)):
                    recs.append(obj)
            schema = _frame_from_records(recs).schema if recs else {}
    except DataError:
        raise
    except OSError as e:
        raise DataError(f"cannot read {p}: {e.strerror or e}") from e
    except Exception as e:  # a corrupt Parquet or arrow file
        raise DataError(f"cannot read {p}: {first_line(e)}") from e
    out = {}
    for name, dt in dict(schema).items():
        if escape_column(name) != name:  # "__*" (and "_~*"): passes through, but a strategy cannot name it
            continue
        t = from_polars(dt)
        out[name] = t if t is not None else ANY
    return out


# writing lives with the output rules; kept importable from here
from .outputs import write_data  # noqa: E402
