"""Signals: per-row numbers and flags computed from text, used by filters, gates and scores.

Every signal is vectorised: a Polars expression, or (for the n-gram signals, which need a hash
table per row) one eager Polars/NumPy pass over a whole batch of rows behind ``map_batches``.
Filters on signals are split by the executor into the signal column (a shared, cached statistic)
and the threshold.

Shared conventions:

- a null text is treated as the empty text (``chars(null) == 0``, every ratio of it is ``0.0``);
- lengths count Unicode code points;
- ratios of an empty text are ``0.0`` (as Data-Juicer's filters do), never null;
- "DJ words" are Data-Juicer's refined words: split on space, LF and TAB, lowercased, special
  characters stripped from both ends, empty words dropped (``word_repetition_ratio``,
  ``stopword_ratio``, ``flagged_words_ratio``, ``unique_word_ratio``).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from autodp_dsl.lazy import lazy_import
from autodp_dsl.lazy import polars as pl  # loaded on first use: `autodp lint` needs no Polars
from autodp_dsl.ops import Arg, Family, Params, SignalOp
from autodp_dsl.types import BOOL, FLOAT, INT, STR

from ._text import (
    FLAGGED_WORDS_EN,
    STOPWORDS_EN,
    batch,
    char_class,
    dj_word_hashes,
    dj_words,
    duplicate_counts,
    flat_word_hashes,
    ngram_hashes,
    special_class,
    text_slices,
)

np = lazy_import("numpy")  # loaded on first use: `autodp lint` needs no NumPy

# Python's str.splitlines() boundaries ("\r\n" counts as one).
LINE_BREAK = r"\r\n|[\n\r\x0B\x0C\x1C\x1D\x1E\x{85}\x{2028}\x{2029}]"


def _text(e: pl.Expr) -> pl.Expr:
    return e.fill_null("")


def _ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """num / den as Float64, 0.0 where den is 0 (the empty-text convention)."""
    return pl.when(den > 0).then(num.cast(pl.Float64) / den.cast(pl.Float64)).otherwise(0.0)


class _TextSignal(SignalOp):
    family = Family.CLEANING
    version = 1
    commutes = True  # a value of the row alone: filters on it may be reordered
    args = (Arg("text", STR, doc="the text to measure"),)
    returns = FLOAT


# ---------------------------------------------------------------- lengths and counts


class Chars(_TextSignal):
    """Length of the text in Unicode code points (Data-Juicer's ``text_len``).

    Exactly Python's ``len(text)``; null counts as 0. ``chars("héllo") == 5``.
    Example: ``filter: chars(output) >= 20 and chars(output) <= 20000``.
    """

    name = "chars"
    returns = INT

    def expr(self, args, params):
        return args[0].str.len_chars().fill_null(0).cast(pl.Int64)


class Words(_TextSignal):
    """Number of whitespace-separated words (any run of Unicode whitespace separates).

    ``words("  a b\\tc ") == 3``; empty or null text has 0 words.
    Example: ``filter: words(output) >= 5``.
    """

    name = "words"
    returns = INT

    def expr(self, args, params):
        return args[0].str.count_matches(r"\S+").fill_null(0).cast(pl.Int64)


# A cheap stand-in for a BPE tokenizer: runs of up to 6 letters, up to 3 digits, up to 2 other
# visible characters, and each run of newlines count one token each; other whitespace is free.
TOKEN_PATTERN = r"\p{L}{1,6}|\p{N}{1,3}|[^\s\p{L}\p{N}]{1,2}|\n+"


class Tokens(_TextSignal):
    """Approximate LLM token count: pieces of a fixed, tokenizer-free segmentation.

    Counts the non-overlapping matches, left to right, of
    ``\\p{L}{1,6} | \\p{N}{1,3} | [^\\s\\p{L}\\p{N}]{1,2} | \\n+``: a letter run costs one token per
    6 letters (rounded up), a number one per 3 digits (as GPT-4-style tokenizers split digits),
    punctuation and symbols one per 2 characters, each run of newlines one; spaces and other
    whitespace cost nothing (BPE merges them into the next word). ``tokens("Hello, world!") == 4``,
    ``tokens("photosynthesis 12345") == 5``. Not a real tokenizer: use it for budgets and length
    filters, not for exact context-window arithmetic.
    Example: ``filter: tokens(instruction + " " + output) <= 2048``.
    """

    name = "tokens"
    returns = INT

    def expr(self, args, params):
        return _text(args[0]).str.count_matches(TOKEN_PATTERN).cast(pl.Int64)


class LinesCount(_TextSignal):
    """Number of lines, as Python's ``len(text.splitlines())``.

    Line breaks are ``\\n``, ``\\r\\n``, ``\\r``, VT, FF, FS, GS, RS, NEL, U+2028 and U+2029; a final
    line break ends the last line instead of starting a new one. ``lines("") == 0``,
    ``lines("a") == 1``, ``lines("a\\n") == 1``, ``lines("a\\n\\nb") == 3``.
    Example: ``filter: lines(output) <= 200``.
    """

    name = "lines"
    returns = INT

    def expr(self, args, params):
        t = _text(args[0])
        breaks = t.str.count_matches(LINE_BREAK)
        ends = t.str.contains(f"(?:{LINE_BREAK})$")
        return (
            pl.when(t.str.len_bytes() == 0)
            .then(0)
            .otherwise(breaks + 1 - ends.cast(pl.UInt32))
            .cast(pl.Int64)
        )


def _line_lengths(t: pl.Expr) -> pl.Expr:
    return t.str.replace_all(LINE_BREAK, "\n").str.split("\n").list.eval(pl.element().str.len_chars())


class MaxLineChars(_TextSignal):
    """Length (code points) of the longest line, line breaks excluded; 0 for the empty text.

    Lines as in ``lines``: equals Data-Juicer's ``max_line_length`` (``max(map(len, text.splitlines()))``).
    ``max_line_chars("ab\\ncde\\n") == 3``.
    Example: ``filter: max_line_chars(output) <= 1000``.
    """

    name = "max_line_chars"
    returns = INT

    def expr(self, args, params):
        return _line_lengths(_text(args[0])).list.max().fill_null(0).cast(pl.Int64)


class MeanLineChars(_TextSignal):
    """Mean length (code points) of the lines, line breaks excluded; 0.0 for the empty text.

    ``(chars of the text - chars of its line breaks) / lines(text)``. ``mean_line_chars("ab\\ncdef") == 3.0``.
    Data-Juicer's ``avg_line_length`` divides ``len(text)``, line breaks included (3.5 here).
    Example: ``filter: mean_line_chars(output) >= 10``.
    """

    name = "mean_line_chars"

    def expr(self, args, params):
        t = _text(args[0])
        n = LinesCount().expr([t], params)
        body = t.str.replace_all(LINE_BREAK, "").str.len_chars()
        return _ratio(body, n)


# ---------------------------------------------------------------- character ratios


class SpecialCharsParams(Params):
    chars: str = Field(
        "",
        max_length=10_000,
        description="the characters that count as special (a set); empty = Data-Juicer's SPECIAL_CHARACTERS",
    )


class SpecialCharRatio(_TextSignal):
    """Fraction of the characters that are "special" (Data-Juicer's ``special_char_ratio``).

    ``count(c in text if c in SET) / len(text)``, 0.0 for the empty text. By default SET is
    Data-Juicer 1.6.1's SPECIAL_CHARACTERS: ASCII punctuation, **digits**, ASCII whitespace
    (space, TAB, LF, CR, VT, FF), 191 typographic/CJK/control characters and every single-code-point
    emoji of emoji 2.2.0 (1,618 code points); U+00A0 is not in it. So ``"Hello world"`` gives
    1/11 and ``"Hello, world! 123"`` gives 7/17. ``chars="..."`` replaces the set.
    Example: ``filter: special_char_ratio(output) <= 0.25``.
    """

    name = "special_char_ratio"
    Params = SpecialCharsParams

    def expr(self, args, params):
        t = _text(args[0])
        cls = char_class(params.chars) if params.chars else special_class()
        return _ratio(t.str.count_matches(cls), t.str.len_chars())


class AlnumRatio(_TextSignal):
    """Fraction of the characters that are letters or numbers (Data-Juicer's ``alnum_ratio``).

    ``count(c.isalnum()) / len(text)`` with Unicode letters ``\\p{L}`` and numbers ``\\p{N}``
    (Python's ``str.isalnum``); 0.0 for the empty text. ``alnum_ratio("ab, 12!") == 4/7``.
    Example: ``filter: alnum_ratio(output) >= 0.25``.
    """

    name = "alnum_ratio"

    def expr(self, args, params):
        t = _text(args[0])
        return _ratio(t.str.count_matches(r"[\p{L}\p{N}]"), t.str.len_chars())


class DigitRatio(_TextSignal):
    """Fraction of the characters that are decimal digits (Unicode ``\\p{Nd}``, e.g. ``0-9``, ``٣``).

    0.0 for the empty text. ``digit_ratio("a1b2") == 0.5``.
    Example: ``filter: digit_ratio(output) <= 0.3``.
    """

    name = "digit_ratio"

    def expr(self, args, params):
        t = _text(args[0])
        return _ratio(t.str.count_matches(r"\p{Nd}"), t.str.len_chars())


class UppercaseRatio(_TextSignal):
    """Fraction of the *letters* that are upper case (``\\p{Lu}`` over ``\\p{L}``).

    0.0 when the text has no letters. ``uppercase_ratio("ABc 12") == 2/3``; shouting is near 1.0.
    Example: ``filter: uppercase_ratio(output) <= 0.5``.
    """

    name = "uppercase_ratio"

    def expr(self, args, params):
        t = _text(args[0])
        return _ratio(t.str.count_matches(r"\p{Lu}"), t.str.count_matches(r"\p{L}"))


# ---------------------------------------------------------------- word-level signals


class NgramParams(Params):
    n: int = Field(10, ge=1, le=100, description="n-gram length")


def _word_repetition_batch(n: int):
    def ratios(s: pl.Series) -> np.ndarray:
        rid, h = dj_word_hashes(s)
        out = np.zeros(len(s), dtype=np.float64)
        r, g = ngram_hashes(rid, h, n, mix=False)
        if len(g):
            tot, rep = duplicate_counts(r, g, len(s))
            np.divide(rep, tot, out=out, where=tot > 0)
        return out

    def run(s: pl.Series) -> pl.Series:
        out = np.concatenate([ratios(part) for part in text_slices(s)] or [np.zeros(0)])
        return pl.Series(s.name, out, dtype=pl.Float64)

    return run


class WordRepetitionRatio(_TextSignal):
    """Fraction of word n-gram occurrences whose n-gram occurs more than once in the text.

    Data-Juicer's ``word_rep_ratio`` exactly (``tokenization=False``): words are DJ words (split on
    space/LF/TAB, lowercased, special characters stripped from both ends, empties dropped);
    n-grams are the ``len(words) - n + 1`` windows; ratio = sum of counts of n-grams seen more
    than once / number of n-grams; 0.0 when there are fewer than ``n`` words. n-grams are compared
    by a hash of at least 40 bits of their word hashes (a false match inside one text of m n-grams
    has probability below m^2 / 2^41).
    ``word_repetition_ratio("a b a b", n=2) == 2/3``.
    Example: ``filter: word_repetition_ratio(output, n=10) <= 0.5``.
    """

    name = "word_repetition_ratio"
    Params = NgramParams

    def expr(self, args, params):
        return batch(_word_repetition_batch(params.n), pl.Float64)(args[0])


def _char_repetition_batch(n: int):
    def run(s: pl.Series) -> pl.Series:
        chars = s.fill_null("").str.split("")
        rid, h, _ = flat_word_hashes(chars)
        out = np.zeros(len(s), dtype=np.float64)
        r, g = ngram_hashes(rid, h, n)
        if len(g):
            counts = (
                pl.DataFrame({"r": r, "g": g})
                .group_by("r", "g")
                .len()
                .with_columns(
                    u=pl.len().over("r"),
                    single=(pl.col("len") == 1).sum().over("r"),
                    rank=pl.col("len").rank("ordinal", descending=True).over("r"),
                )
                .with_columns(k=pl.min_horizontal(pl.col("u").cast(pl.Float64).sqrt().floor().cast(pl.Int64), pl.col("u") - pl.col("single")))
                .group_by("r")
                .agg(top=pl.col("len").filter(pl.col("rank") <= pl.col("k")).sum(), tot=pl.col("len").sum())
            )
            idx = counts["r"].to_numpy()
            out[idx] = counts["top"].to_numpy() / counts["tot"].to_numpy()
        return pl.Series(s.name, out, dtype=pl.Float64)

    return run


class CharRepetitionRatio(_TextSignal):
    """Share of character n-gram occurrences taken by the most repeated n-grams (Data-Juicer's ``char_rep_ratio``).

    Over the ``len(text) - n + 1`` character n-grams (code points): with U distinct n-grams of
    which S occur once, take the ``k = min(floor(sqrt(U)), U - S)`` largest counts; ratio = their
    sum / number of n-grams; 0.0 for texts shorter than ``n``. The BigScience/Data-Juicer
    definition, exactly. ``char_repetition_ratio("aaaa", n=2) == 1.0``, ``("abcd", n=2) == 0.0``.
    Example: ``filter: char_repetition_ratio(output, n=10) <= 0.5``.
    """

    name = "char_repetition_ratio"
    Params = NgramParams

    def expr(self, args, params):
        return batch(_char_repetition_batch(params.n), pl.Float64)(args[0])


class WordListParams(Params):
    words: list[str] = Field([], max_length=100_000, description="the word list (lower case); empty = the built-in list")


def _word_share(text: pl.Expr, words: tuple[str, ...] | list[str]) -> pl.Expr:
    ws = dj_words(text)
    lst = pl.Series(sorted({w.lower() for w in words}), dtype=pl.String)
    hits = ws.list.eval(pl.element().is_in(lst.implode())).list.sum()
    return _ratio(hits, ws.list.len())


class StopwordRatio(_TextSignal):
    """Fraction of the DJ words that are stopwords (NLTK's 179 English stopwords by default).

    Words as in ``word_repetition_ratio`` (lowercased, special characters stripped from the ends,
    so ``"don't"`` stays one word); 0.0 without words. ``words=[...]`` replaces the list.
    ``stopword_ratio("The cat is on the mat.") == 4/6``. Natural English prose is around 0.4-0.5;
    keyword lists and code are far lower.
    Example: ``filter: stopword_ratio(output) >= 0.2``.
    """

    name = "stopword_ratio"
    Params = WordListParams

    def expr(self, args, params):
        return _word_share(args[0], params.words or STOPWORDS_EN)


class FlaggedWordsRatio(_TextSignal):
    """Fraction of the DJ words that are flagged words (a small built-in English profanity list).

    Words as in ``word_repetition_ratio``; a word counts when it equals a listed word exactly (no
    substring matches: "Scunthorpe" is clean). The built-in list has 27 common profanities and no
    slurs; pass ``words=[...]`` (lower case) for a real list. 0.0 without words.
    Example: ``filter: flagged_words_ratio(output) <= 0.01``.
    """

    name = "flagged_words_ratio"
    Params = WordListParams

    def expr(self, args, params):
        return _word_share(args[0], params.words or FLAGGED_WORDS_EN)


class UniqueWordRatio(_TextSignal):
    """Distinct DJ words / DJ words (type-token ratio); 0.0 without words.

    ``unique_word_ratio("the cat the hat") == 0.75``. Low values mean repetitive text.
    Example: ``filter: unique_word_ratio(output) >= 0.3``.
    """

    name = "unique_word_ratio"

    def expr(self, args, params):
        ws = dj_words(args[0])
        return _ratio(ws.list.n_unique(), ws.list.len())


# ---------------------------------------------------------------- answer shape


def _content_words(e: pl.Expr) -> pl.Expr:
    return _text(e).str.to_lowercase().str.extract_all(r"[\p{L}\p{N}]+").list.unique()


class EchoesQuestion(SignalOp):
    """How much of the answer merely repeats the question: share of the answer's distinct words found in the question.

    Words are lowercased runs of letters/digits (``[\\p{L}\\p{N}]+``), compared as sets:
    ``|W(answer) & W(question)| / |W(answer)|``, in [0, 1]; 0.0 when the answer has no words.
    An answer that restates the question ("What is X?" -> "What is X?") scores 1.0; a real answer
    adds words of its own and scores low. ``echoes_question("What is gout?", "Gout") == 1.0``,
    ``echoes_question("What is gout?", "Gout is arthritis") == 2/3``.
    Example: ``filter: echoes_question(instruction, output) < 0.9``.
    """

    commutes = True  # a value of the row alone

    name = "echoes_question"
    version = 1
    family = Family.CLEANING
    args = (Arg("question", STR), Arg("answer", STR))
    returns = FLOAT

    def expr(self, args, params):
        q, a = _content_words(args[0]), _content_words(args[1])
        return _ratio(a.list.set_intersection(q).list.len(), a.list.len())


class HeadingParams(Params):
    min_words: int = Field(2, ge=1, le=100, description="fewest words of a heading")
    max_words: int = Field(12, ge=1, le=100, description="most words of a heading")

    @model_validator(mode="after")
    def _bounds(self):
        if self.min_words > self.max_words:
            raise ValueError(f"contradictory bounds: min_words ({self.min_words}) > max_words ({self.max_words})")
        return self


# a sentence ends with . ! ; , or an ellipsis, possibly followed by closing quotes/brackets
_SENTENCE_END = r"[.!;,\x{2026}][\"'\x{201D}\x{2019})\]]*$"


class HeadingOnly(_TextSignal):
    """True when the whole text is just a heading or a restated question, not an answer.

    After stripping surrounding whitespace the text must be one line of ``min_words`` to
    ``max_words`` whitespace-separated words that is a Markdown heading (``# ...``) or does not end
    like a sentence (``.``, ``!``, ``;``, ``,`` or ``…``, optionally followed by closing quotes or
    brackets). Questions (``...?``) and labels ("Signs and symptoms", "Key Points:") are headings.
    False for null/empty text. ``heading_only("What are the symptoms of gout?")`` is true,
    ``heading_only("Gout is a form of arthritis.")`` and ``heading_only("Yes")`` (1 word) are false.
    Example: ``filter: not heading_only(output)``.
    """

    name = "heading_only"
    returns = BOOL
    Params = HeadingParams

    def expr(self, args, params):
        t = _text(args[0]).str.strip_chars()
        n = t.str.count_matches(r"\S+")
        one_line = ~t.str.contains(LINE_BREAK)
        md = t.str.contains(r"^#{1,6}\s")
        not_sentence = ~t.str.contains(_SENTENCE_END)
        return one_line & n.is_between(params.min_words, params.max_words) & (md | not_sentence)


OPS = (
    Chars,
    Words,
    Tokens,
    LinesCount,
    MaxLineChars,
    MeanLineChars,
    SpecialCharRatio,
    AlnumRatio,
    DigitRatio,
    UppercaseRatio,
    WordRepetitionRatio,
    CharRepetitionRatio,
    StopwordRatio,
    FlaggedWordsRatio,
    UniqueWordRatio,
    EchoesQuestion,
    HeadingOnly,
)
