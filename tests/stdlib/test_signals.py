"""Signals: exact values on hand-written cases, and agreement with plain-Python references."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import stdlib_ops.signals
from stdlib_ops._text import dj_word_hashes, text_slices

from ._util import dj_char_rep_ratio, dj_special_char_ratio, dj_word_rep_ratio, dj_words, signal, signal2

# text drawn from an alphabet with the interesting cases: DJ specials, digits, all kinds of
# whitespace, non-ASCII letters, emoji, CJK
ALPHABET = "ab cd\n\tE.,!?-'\"0123456789é★😀中\u00a0\u3000\u200b\r\x0b\x0c\u2028\x85#*"
texts = st.text(alphabet=ALPHABET, max_size=60)
wordy = st.lists(st.sampled_from(["a", "b", "a.", "B!", "--", "12", "é", "x\ny", "a\tb", "😀"]), max_size=30).map(" ".join)


def close(a, b):
    return all(math.isclose(x, y, rel_tol=0, abs_tol=1e-12) for x, y in zip(a, b, strict=True))


# ---------------------------------------------------------------- lengths


def test_chars_counts_code_points_and_null_is_zero():
    assert signal("chars", ["héllo", "", None, "😀a", "a\r\nb"]) == [5, 0, 0, 2, 4]


def test_words():
    assert signal("words", ["  a b\tc ", "", None, "one", "x\u00a0y"]) == [3, 0, 0, 1, 2]


def test_tokens_documented_examples():
    assert signal("tokens", ["Hello, world!", "photosynthesis 12345", "", None, "a\n\n\nb", "!!!!!"]) == [4, 5, 0, 0, 3, 3]


@pytest.mark.parametrize(
    "text,lines,maxc,mean",
    [
        ("", 0, 0, 0.0),
        (None, 0, 0, 0.0),
        ("a", 1, 1, 1.0),
        ("a\n", 1, 1, 1.0),
        ("\n", 1, 0, 0.0),
        ("a\n\nb", 3, 1, 2 / 3),
        ("ab\ncde\n", 2, 3, 2.5),
        ("ab\r\ncdef", 2, 4, 3.0),
        ("a\u2028bb\x85ccc", 3, 3, 2.0),
    ],
)
def test_line_stats(text, lines, maxc, mean):
    assert signal("lines", [text]) == [lines]
    assert signal("max_line_chars", [text]) == [maxc]
    assert close(signal("mean_line_chars", [text]), [mean])


@given(texts)
def test_lines_and_max_line_match_python_splitlines(t):
    ls = t.splitlines()
    assert signal("lines", [t]) == [len(ls)]
    assert signal("max_line_chars", [t]) == [max(map(len, ls)) if ls else 0]


# ---------------------------------------------------------------- character ratios


def test_special_char_ratio_documented_examples():
    assert close(signal("special_char_ratio", ["Hello world", "Hello, world! 123", "", None, "\u00a0"]), [1 / 11, 7 / 17, 0.0, 0.0, 0.0])


def test_special_char_ratio_custom_set():
    assert close(signal("special_char_ratio", ["a-b_c", "xyz"], chars="-_"), [0.4, 0.0])


@given(texts)
def test_special_char_ratio_equals_data_juicer(t):
    assert signal("special_char_ratio", [t]) == [dj_special_char_ratio(t)]


def test_alnum_digit_uppercase():
    assert close(signal("alnum_ratio", ["ab, 12!", "", "é٣"]), [4 / 7, 0.0, 1.0])
    assert close(signal("digit_ratio", ["a1b2", "", "٣x"]), [0.5, 0.0, 0.5])
    assert close(signal("uppercase_ratio", ["ABc 12", "123", "", None]), [2 / 3, 0.0, 0.0, 0.0])


@given(texts)
def test_alnum_ratio_is_python_isalnum(t):
    want = sum(c.isalnum() for c in t) / len(t) if t else 0.0
    assert close(signal("alnum_ratio", [t]), [want])


# ---------------------------------------------------------------- word-level


def test_word_repetition_ratio_examples():
    got = signal("word_repetition_ratio", ["a b a b", "a b c d", "", None, "a"], n=2)
    assert close(got, [2 / 3, 0.0, 0.0, 0.0, 0.0])
    # DJ words: lowercased, special characters stripped from the ends ("A." == "a")
    assert close(signal("word_repetition_ratio", ["A. b! a b"], n=2), [2 / 3])
    # default n=10: fewer than 10 words -> 0
    assert signal("word_repetition_ratio", ["x " * 9]) == [0.0]
    assert signal("word_repetition_ratio", ["x " * 12]) == [1.0]


@given(wordy, st.integers(1, 4))
def test_word_repetition_ratio_equals_data_juicer(t, n):
    assert signal("word_repetition_ratio", [t], n=n) == [dj_word_rep_ratio(t, n)]


# rows of words that repeat (so the ratios are not all 0), joined by DJ's separators and by the
# whitespace that is not one; ASCII-only rows and rows with other characters take different paths
rep_words = st.sampled_from(["a", "b", "A.", "b!", "--", "12", "(c)", "d\r", "\x0be", "x'y", "é", "★f", "g😀", "中", "İ"])
rep_rows = st.lists(st.lists(st.tuples(rep_words, st.sampled_from([" ", "\n", "\t", "  ", " \r "])), max_size=40)
                    .map(lambda ws: "".join(w + sep for w, sep in ws)) | texts | st.none(), max_size=8)


@given(rep_rows)
def test_dj_word_hashes_are_the_words_of_dj_words(rows):
    # the flat fast path (split + strip on ASCII rows) finds the same words, in order, as DJ
    rid, h = dj_word_hashes(pl.Series(rows, dtype=pl.String))
    for i, t in enumerate(rows):
        want = pl.Series(dj_words(t or ""), dtype=pl.String).hash(0).to_list()
        assert h[rid == i].tolist() == want


@given(rep_rows, st.integers(1, 4), st.sampled_from([1, 16, 1 << 22]))
def test_word_repetition_ratio_on_many_rows_equals_data_juicer(rows, n, budget):
    # also with the batch cut into slices of a few bytes: slicing must not change a row's value
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stdlib_ops.signals, "text_slices", lambda s: text_slices(s, budget))
        assert signal("word_repetition_ratio", rows, n=n) == [dj_word_rep_ratio(t or "", n) for t in rows]


@given(st.lists(st.text(alphabet="ab é") | st.none(), max_size=12), st.integers(1, 20))
def test_text_slices_cover_the_rows_in_order(rows, budget):
    s = pl.Series(rows, dtype=pl.String)
    parts = text_slices(s, budget)
    assert all(len(p) for p in parts)
    assert (pl.concat(parts).to_list() if parts else []) == rows


def test_word_repetition_ratio_many_rows_do_not_mix():
    rows = ["a b a b", "a b c d", "c d e f"]  # identical n-grams across rows must not count
    assert close(signal("word_repetition_ratio", rows, n=2), [2 / 3, 0.0, 0.0])


def test_char_repetition_ratio_examples():
    assert close(signal("char_repetition_ratio", ["aaaa", "abcd", "a", "", None], n=2), [1.0, 0.0, 0.0, 0.0, 0.0])


@given(texts, st.integers(1, 4))
def test_char_repetition_ratio_equals_data_juicer(t, n):
    assert close(signal("char_repetition_ratio", [t], n=n), [dj_char_rep_ratio(t, n)])


def test_stopword_and_flagged_and_unique():
    assert close(signal("stopword_ratio", ["The cat is on the mat.", "", "don't stop"]), [4 / 6, 0.0, 0.5])
    assert close(signal("stopword_ratio", ["cat dog"], words=["cat"]), [0.5])
    assert close(signal("flagged_words_ratio", ["what the FUCK.", "Scunthorpe", ""]), [1 / 3, 0.0, 0.0])
    assert close(signal("flagged_words_ratio", ["darn it"], words=["darn"]), [0.5])
    assert close(signal("unique_word_ratio", ["the cat the hat", "", "A a a."]), [0.75, 0.0, 1 / 3])


@given(wordy)
def test_dj_words_reference_matches_the_shared_tokeniser(t):
    # unique_word_ratio uses the same DJ words as word_repetition_ratio
    ws = dj_words(t)
    assert close(signal("unique_word_ratio", [t]), [len(set(ws)) / len(ws) if ws else 0.0])


# ---------------------------------------------------------------- answer shape


def test_echoes_question():
    got = signal2("echoes_question", ["What is gout?", "What is gout?", "What is gout?", None, "q"], ["Gout", "Gout is arthritis", "What is gout?", "x", ""])
    assert close(got, [1.0, 2 / 3, 1.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "text,want",
    [
        ("What are the symptoms of gout?", True),
        ("Signs and symptoms", True),
        ("Key Points:", True),
        ("# Gout.", True),
        ("  Treatment options  ", True),
        ("Gout is a form of arthritis.", False),
        ("Yes", False),  # one word
        ("Symptoms\nPain in the joints.", False),  # two lines
        ("It hurts!", False),
        ("one two three four five six seven eight nine ten eleven twelve thirteen", False),
        ("", False),
        (None, False),
    ],
)
def test_heading_only(text, want):
    assert signal("heading_only", [text]) == [want]


def test_very_long_text():
    t = "word " * 200_000 + "é"
    assert signal("chars", [t]) == [1_000_001]
    assert signal("word_repetition_ratio", [t]) == [199_991 / 199_992]  # all but the last 10-gram repeat
    assert signal("lines", [t]) == [1]


def test_batch_signals_in_parallel_in_a_fresh_process():
    # NumPy loads lazily; its first use must not happen in two Polars workers at once (Python
    # 3.11's LazyLoader is not thread-safe): four word-repetition plans collected together
    code = (
        "import polars as pl\n"
        "from autodp_dsl.ops import registry\n"
        "o = registry().get('word_repetition_ratio')()\n"
        "rows = ['a b c d e f g h i j k ' * 30] * 2000\n"
        "lfs = [pl.LazyFrame({'t': rows}).select(o.expr([pl.col('t')], o.Params(n=2))) for _ in range(4)]\n"
        "print([d.to_series().sum() for d in pl.collect_all(lfs)])\n"
    )
    env = {**os.environ, "POLARS_MAX_THREADS": "2"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() == "[2000.0, 2000.0, 2000.0, 2000.0]"
