"""The signal vector of each row: the numbers the search profiles, samples on and selects targets with.

``signal_frame(frame)`` returns one numeric column per signal per text column, named
``<column>.<signal>`` (``output.chars``, ``instruction.words``, ``output.special_char_ratio``...),
plus row-level columns (``dup.exact``, ``dup.instruction``, ``dup.output``,
``output.echoes_question``), in the input's row order. Flags are Boolean, counts Int64, ratios
Float64; nulls never occur (a null text counts as empty).

Where the values come from:

- **Registry signal operators** (``autodp_dsl.ops.registry()``), with their default parameters, so
  a number in the profile means exactly what the same operator means in a ``.dp`` filter
  (``output.special_char_ratio`` is ``special_char_ratio(output)``). Every vectorised signal that
  takes one ``str`` argument and has default-constructible parameters can be used (``ops="all"``);
  the default set is ``DEFAULT_OPS``, the ones cheap enough for every search. ``heading_only`` is
  applied to the output only; ``echoes_question(instruction, output)`` gives
  ``output.echoes_question``. An operator named here that the registry lacks is an error: no
  built-in stand-in replaces it.
- **Search-only signals** that are not operators: ``empty`` (null or whitespace only), ``html``
  (has markup: a tag or an HTML entity), ``mojibake`` (typical UTF-8-read-as-cp1252 sequences),
  ``messy_ws`` (leading/trailing whitespace or a run of 3+ spaces), ``dup.*`` flags (an equal,
  whitespace-normalised value occurs in an earlier row) and, on request, ``dup.near`` (MinHash-LSH
  estimate, see ``near_duplicate_flags``).

Nothing here imports torch or an LLM client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from autodp_dsl.ops import Cost, OpKind, registry
from autodp_dsl.types import STR

__all__ = [
    "TEXT_COLUMNS",
    "DEFAULT_OPS",
    "STOPWORDS_EN",
    "signal_frame",
    "signal_sources",
    "text_columns",
    "language_labels",
    "near_duplicate_flags",
]

log = logging.getLogger(__name__)

TEXT_COLUMNS = ("instruction", "input", "output")

# A fixed English stopword list (not derived from any data set).
STOPWORDS_EN = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves may also can't cannot""".split()
)

_P = 2_147_483_647  # 2^31 - 1: polynomial/MinHash arithmetic stays inside Int64 (ENVIRONMENT.md)
_BASE = 1_000_003

# signal names whose registry operator (one str argument) is applied to the output column only
_OUTPUT_ONLY = {"heading_only"}
# two-argument question/answer signals, applied to (instruction, output)
_PAIR = {"echoes_question", "heading_only"}


def text_columns(frame: pl.DataFrame, columns: Sequence[str] | None = None) -> list[str]:
    """The text columns signals are computed on: ``columns`` if given, else those of
    instruction/input/output present, else every String column not starting with ``__``."""
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"unknown column(s) {missing}; available: {frame.columns}")
        return list(columns)
    cols = [c for c in TEXT_COLUMNS if c in frame.columns and frame.schema[c] == pl.String]
    if cols:
        return cols
    return [c for c, t in frame.schema.items() if t == pl.String and not c.startswith("__")]


# ---------------------------------------------------------------- search-only signals

_STOP_RE = (
    r"(?i)\b(?:" + "|".join(sorted((w for w in STOPWORDS_EN if "'" not in w), key=len, reverse=True)) + r")\b"
)


def _english_stopword_share(e: pl.Expr) -> pl.Expr:
    """Share of words (runs of letters) that are in ``STOPWORDS_EN``, ignoring case; 0 for no words.
    ``language_labels``' test for English (not the ``stopword_ratio`` operator: its own words and list)."""
    n = e.str.count_matches(r"\p{L}+").cast(pl.Float64)
    return pl.when(n > 0).then(e.str.count_matches(_STOP_RE).cast(pl.Float64) / n).otherwise(0.0)


def html_flag(e: pl.Expr) -> pl.Expr:
    return e.str.contains(r"(?i)</?[a-z][a-z0-9]*(\s[^<>]*)?/?>|&(#\d+|#x[0-9a-f]+|[a-z]{2,8});")


def mojibake_flag(e: pl.Expr) -> pl.Expr:
    return e.str.contains(r"â€|Ã[\x{80}-\x{BF}]|Â[\x{A0}-\x{BF}]|\x{FFFD}")


def messy_ws_flag(e: pl.Expr) -> pl.Expr:
    return e.str.contains(r"^\s|\s$| {3,}|\t|\n\s*\n\s*\n")


def empty_flag(e: pl.Expr) -> pl.Expr:
    return e.str.strip_chars().str.len_chars() == 0


def _norm_key(e: pl.Expr) -> pl.Expr:
    """Whitespace-normalised text: runs collapse to one space, ends stripped. Only runs other than a
    single space are replaced, which are rare, so this is several times faster than ``\\s+``."""
    return e.fill_null("").str.replace_all(r"\s\s+|[^\S ]", " ").str.strip_chars()


_PUNCT = r"""!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"""


def _word_frame(s: pl.Series, *, strip_punct: bool) -> pl.DataFrame:
    """(row, pos, nw, h): one row per lowercase word (whitespace-separated; with ``strip_punct``
    leading/trailing ASCII punctuation stripped and words left empty dropped), h a 31-bit hash."""
    words = s.fill_null("").str.to_lowercase().str.extract_all(r"\S+")
    lens = words.list.len().fill_null(0).to_numpy().astype(np.int64)
    w = words.explode()
    row = np.repeat(np.arange(len(s), dtype=np.int64), lens)
    w = w.filter(w.is_not_null())
    if strip_punct:
        w = w.str.strip_chars(_PUNCT)
        keep = (w.str.len_bytes() > 0).to_numpy()
        w, row = w.filter(keep), row[keep]
    lens = np.bincount(row, minlength=len(s)).astype(np.int64)
    starts = np.cumsum(lens) - lens
    pos = np.arange(len(row), dtype=np.int64) - starts[row]
    return pl.DataFrame({"row": row, "pos": pos, "nw": lens[row], "h": (w.hash(seed=7) % _P).cast(pl.Int64)})


def _ngram_hash(df: pl.DataFrame, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, g): for every word position with n words to go in its text, a polynomial hash
    (mod 2^31-1) of the n words starting there."""
    h = df["h"].to_numpy()
    row = df["row"].to_numpy()
    valid = (df["pos"].to_numpy() + n) <= df["nw"].to_numpy()
    m = len(h) - n + 1
    if m <= 0 or not valid.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    g = np.zeros(m, dtype=np.int64)
    for i in range(n):
        g = (g * _BASE + h[i : i + m]) % _P
    v = valid[:m]
    return row[:m][v], g[v]


def near_duplicate_flags(
    texts: pl.Series,
    *,
    ngram: int = 5,
    bands: int = 8,
    rows_per_band: int = 4,
    seed: int = 0,
    words: pl.DataFrame | None = None,
) -> np.ndarray:
    """Near-duplicate estimate: True where a row shares a MinHash-LSH bucket with an earlier row.

    Shingles are word ``ngram``-grams (lowercase, edge punctuation stripped, hashed mod 2^31-1);
    ``bands * rows_per_band`` permutations ``(a*h + b) mod (2^31-1)``. With 8 bands of 4 the
    collision probability is 50% near a Jaccard similarity of 0.59 and over 95% above 0.8. Exact
    duplicates (after whitespace normalisation) are always flagged; texts with fewer than ``ngram``
    words only through exact equality.
    """
    n = len(texts)
    if n == 0:
        return np.zeros(0, dtype=bool)
    exact = (
        pl.DataFrame({"t": texts}).select(~_norm_key(pl.col("t")).is_first_distinct()).to_series().to_numpy()
    )
    df = words if words is not None else _word_frame(texts, strip_punct=True)
    row, g = _ngram_hash(df, ngram)
    if len(row) == 0:
        return exact
    rows_u, starts = np.unique(row, return_index=True)  # row is sorted: texts in order
    rng = np.random.default_rng(seed)
    k = bands * rows_per_band
    a = rng.integers(1, _P, size=k)
    b = rng.integers(0, _P, size=k)
    sig = np.empty((len(rows_u), k), dtype=np.int64)
    for i in range(k):  # (a*g + b) < 2^62: exact in int64; the min is unaffected by repeated shingles
        sig[:, i] = np.minimum.reduceat((g * a[i] + b[i]) % _P, starts)
    hit = np.zeros(len(rows_u), dtype=bool)
    for j in range(bands):
        band = np.ascontiguousarray(sig[:, j * rows_per_band : (j + 1) * rows_per_band])
        _, first = np.unique(band, axis=0, return_index=True)
        dup = np.ones(len(rows_u), dtype=bool)
        dup[first] = False  # np.unique returns the first occurrence of each band key
        hit |= dup
    flags = np.zeros(n, dtype=bool)
    flags[rows_u] = hit
    return flags | exact


# ---------------------------------------------------------------- registry ops


@dataclass(frozen=True)
class _Spec:
    name: str
    op: object  # an instantiated registry op
    params: object | None
    arity: int


def _registry_signals() -> dict[str, _Spec]:
    """Usable registry signal ops: vectorised, 1 or 2 str args, default params, numeric/bool value."""
    out: dict[str, _Spec] = {}
    for cls in registry():
        try:
            if cls.kind != OpKind.SIGNAL or cls.cost != Cost.VECTORISED or not cls.deterministic:
                continue
            args = cls.args
            if not (1 <= len(args) <= 2) or any(a.variadic for a in args):
                continue
            if any(a.type.name not in ("str", "any") for a in args):
                continue
            if len(args) == 2 and cls.name not in _PAIR:
                continue
            params = cls.Params()
            op = cls()
            rt = op.result_type([STR] * len(args), params)
            if rt.name not in ("int", "float", "bool", "number"):
                continue
            out[cls.name] = _Spec(cls.name, op, params, len(args))
        except Exception:  # required params, odd declarations: not usable as a default signal
            continue
    return out


_BUILTIN_FLAGS = {
    "empty": empty_flag,
    "html": html_flag,
    "mojibake": mojibake_flag,
    "messy_ws": messy_ws_flag,
}


# The default signal set: cheap enough together for ~16k rows in a few seconds. Other registry
# signals (char_repetition_ratio, unique_word_ratio, ... : seconds each on 16k long answers) are
# added with ``ops="all"`` or by naming them in ``ops``.
DEFAULT_OPS = (
    "chars",
    "words",
    "lines",
    "special_char_ratio",
    "alnum_ratio",
    "digit_ratio",
    "stopword_ratio",
    "word_repetition_ratio",
    "heading_only",
    "echoes_question",
)


def _plan(frame: pl.DataFrame, cols: list[str], repetition: bool, ops: Sequence[str] | str | None = None):
    """[(out name, expr, source)] in a stable order; source "op" (a registry operator) or "builtin"
    (a search-only signal)."""
    reg = _registry_signals()
    if ops is None:
        wanted = list(DEFAULT_OPS)
    elif ops == "all":
        wanted = list(DEFAULT_OPS) + [n for n in sorted(reg) if n not in DEFAULT_OPS]
    else:
        wanted = list(ops)
    if not repetition:
        wanted = [w for w in wanted if w != "word_repetition_ratio"]
    missing = [w for w in wanted if w not in reg]
    if missing:
        raise ValueError(f"signal operator(s) {missing} are not usable signals of the operator registry "
                         "(vectorised, deterministic, text arguments, default parameters)")
    plan: list[tuple[str, pl.Expr, str]] = []
    has_q, has_a = "instruction" in cols, "output" in cols
    for c in cols:
        e = pl.col(c).fill_null("")
        for name, fn in _BUILTIN_FLAGS.items():
            plan.append((f"{c}.{name}", fn(e), "builtin"))
        for name in wanted:
            spec = reg[name]
            if name not in _PAIR and name not in _OUTPUT_ONLY and spec.arity == 1:
                plan.append((f"{c}.{name}", spec.op.expr([e], spec.params), "op"))
    if has_a:
        out = pl.col("output").fill_null("")
        q = pl.col("instruction").fill_null("") if has_q else None
        if "heading_only" in wanted:
            hspec = reg["heading_only"]
            if hspec.arity == 1:
                plan.append(("output.heading_only", hspec.op.expr([out], hspec.params), "op"))
            elif q is not None:
                plan.append(("output.heading_only", hspec.op.expr([q, out], hspec.params), "op"))
        if q is not None and "echoes_question" in wanted:
            espec = reg["echoes_question"]
            if espec.arity == 2:
                plan.append(("output.echoes_question", espec.op.expr([q, out], espec.params), "op"))
    # row-level duplicate flags (an equal normalised value in an earlier row)
    if cols:
        row_key = pl.concat_str([_norm_key(pl.col(c)) for c in cols], separator="\x1f")
        plan.append(("dup.exact", ~row_key.is_first_distinct(), "builtin"))
        for c in ("instruction", "output"):
            if c in cols:
                plan.append((f"dup.{c}", ~_norm_key(pl.col(c)).is_first_distinct(), "builtin"))
    return plan


def _normalise_dtype(s: pl.Series) -> pl.Series:
    if s.dtype == pl.Boolean:
        return s.fill_null(False)
    if s.dtype.is_integer():
        return s.cast(pl.Int64).fill_null(0)
    return s.cast(pl.Float64).fill_nan(0.0).fill_null(0.0)


def signal_frame(
    frame: pl.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    ops: Sequence[str] | str | None = None,
    repetition: bool = True,
    near_dup: bool = False,
) -> pl.DataFrame:
    """One numeric column per signal per text column, same rows and order as ``frame``.

    ``columns``: the text columns (default: instruction/input/output present). ``ops``: the signal
    operators to use (default ``DEFAULT_OPS``; ``"all"``: every usable registry signal). ``repetition``:
    include ``<col>.word_repetition_ratio``. ``near_dup``: add ``dup.near`` (MinHash estimate on
    the output, or on the last text column). The source of each column (``op`` or ``builtin``) is in
    ``signal_sources``.
    """
    cols = text_columns(frame, columns)
    plan = _plan(frame, cols, repetition, ops)
    exprs = [e.alias(name) for name, e, _src in plan]
    try:
        out = frame.select(exprs) if exprs else pl.DataFrame()
    except Exception as err:
        # one broken operator must not break the whole vector: evaluate one by one, drop failures
        log.warning("signal evaluation failed (%s); retrying column by column", err)
        parts = []
        for e in exprs:
            try:
                parts.append(frame.select(e))
            except Exception as e2:  # noqa: PERF203
                log.warning("dropping signal %s: %s", e.meta.output_name(), e2)
        out = pl.concat(parts, how="horizontal") if parts else pl.DataFrame()
    if out.height == 0 and frame.height:
        out = pl.DataFrame({"__tmp": np.zeros(frame.height)}).drop("__tmp")
    if near_dup and cols:
        tcol = "output" if "output" in cols else cols[-1]
        near = pl.Series("dup.near", near_duplicate_flags(frame[tcol]))
        out = out.with_columns(near) if out.width else pl.DataFrame([near])
    order = [n for n, _, _ in plan if n in out.columns] + (["dup.near"] if "dup.near" in out.columns else [])
    return out.select([_normalise_dtype(out[n]) for n in order])


def signal_sources(
    frame: pl.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    ops: Sequence[str] | str | None = None,
    repetition: bool = True,
) -> dict[str, str]:
    """``{signal column: "op" | "builtin"}``: which columns come from registry operators (the others
    are the search's own flags)."""
    cols = text_columns(frame, columns)
    src = {name: s for name, _, s in _plan(frame, cols, repetition, ops)}
    src["dup.near"] = "builtin"
    return src


def language_labels(frame: pl.DataFrame, columns: Sequence[str] | None = None) -> pl.Series:
    """A coarse per-row language/script guess over all text columns joined, from a fixed set of
    labels: ``en`` (mostly Latin letters and >= 15% of words English stopwords), ``latin_other``,
    ``cyrillic``, ``greek``, ``arabic``, ``hebrew``, ``cjk``, ``indic``, ``other`` (no script has half
    of the letters) and ``none`` (no letters)."""
    cols = text_columns(frame, columns)
    if not cols:
        return pl.Series("lang", ["none"] * frame.height)
    t = pl.concat_str([pl.col(c).fill_null("") for c in cols], separator="\n")
    df = frame.select(
        (t.str.len_chars() - t.str.count_matches(r"\P{L}")).alias("letters"),
        t.str.count_matches(r"[\p{L}&&\P{Latin}]").alias("nonlatin"),
        _english_stopword_share(t).alias("stop"),
        t.alias("t"),
    )
    letters = df["letters"].to_numpy()
    nonlatin = df["nonlatin"].to_numpy()
    stop = df["stop"].to_numpy()
    lab = np.where(stop >= 0.15, "en", "latin_other").astype(object)
    idx = np.flatnonzero(nonlatin * 2 > letters)
    if len(idx):
        scripts = {
            "cyrillic": r"\p{Cyrillic}",
            "greek": r"\p{Greek}",
            "arabic": r"\p{Arabic}",
            "hebrew": r"\p{Hebrew}",
            "cjk": r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]",
            "indic": r"[\p{Devanagari}\p{Bengali}\p{Tamil}\p{Telugu}\p{Gujarati}\p{Gurmukhi}\p{Kannada}\p{Malayalam}]",
        }
        sub = (
            df[idx].select([pl.col("t").str.count_matches(p).alias(k) for k, p in scripts.items()]).to_numpy()
        )
        best = np.argmax(sub, axis=1)
        share = sub[np.arange(len(idx)), best] / np.maximum(letters[idx], 1)
        lab[idx] = np.where(share >= 0.5, np.array(list(scripts), dtype=object)[best], "other")
    lab = np.where(letters == 0, "none", lab)
    return pl.Series("lang", lab.astype(str))
