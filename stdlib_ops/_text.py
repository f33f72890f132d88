"""Shared text machinery of the vectorised operators: character sets, word lists, tokenisers, hashes.

Private to ``stdlib_ops``. Everything here works on whole columns (Polars expressions, or eager
Polars/NumPy on one batch of rows): no per-row Python.

Conventions used by every signal and cleaner built on these helpers:

- a null text is treated as the empty text;
- lengths count Unicode code points (Polars ``len_chars``, Python ``len``);
- word hashes come from Polars' ``Series.hash``, which is fast but not guaranteed stable across
  Polars versions: a statistic built from them puts ``polars.__version__`` in its spec
  (``hash_identity()``), so a Polars upgrade recomputes it instead of mixing hash families.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from autodp_dsl.lazy import lazy_import
from autodp_dsl.lazy import polars as pl  # loaded on first use: `autodp lint` needs no Polars

np = lazy_import("numpy")  # loaded on first use: `autodp lint` needs no NumPy

DATA = Path(__file__).resolve().parent / "data"

# Private-use noncharacters: never valid in interchange text, used as in-band markers while a
# cleaner works (removed from the input first, so they cannot collide with real text).
SENT_BLOCK = "\ufdd0"  # a block boundary: becomes a blank line
SENT_LINE = "\ufdd1"  # a line boundary: becomes a newline
SENT_CUT = "\ufdd2"  # a sentence/line cut point


# ---------------------------------------------------------------- character sets


@cache
def dj_special_characters() -> frozenset[str]:
    """Data-Juicer 1.6.1's SPECIAL_CHARACTERS, restricted to single code points (1,618 of them).

    Multi-code-point emoji sequences in DJ's set can never equal one character, so for a
    per-character ratio the single code points are the whole set. Copied as data from
    Data-Juicer (``data/dj_special_characters.json``).
    """
    d = json.loads((DATA / "dj_special_characters.json").read_text(encoding="utf-8"))
    return frozenset(d["special_characters_single_codepoints"])


@cache
def dj_various_whitespaces() -> frozenset[str]:
    d = json.loads((DATA / "dj_special_characters.json").read_text(encoding="utf-8"))
    return frozenset(chr(int(h, 16)) for h in d["various_whitespaces_hex"])


def char_class(chars, negate: bool = False) -> str:
    """A regex character class matching exactly the given characters (ranges merged, all escaped)."""
    cps = sorted({ord(c) for c in chars})
    if not cps:
        return r"[^\s\S]" if not negate else r"[\s\S]"
    ranges: list[list[int]] = []
    for c in cps:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return f"[{'^' if negate else ''}{body}]"


@cache
def special_class() -> str:
    return char_class(dj_special_characters())


@cache
def non_special_class() -> str:
    return char_class(dj_special_characters(), negate=True)


# ---------------------------------------------------------------- word lists

# NLTK's English stopword list (179 words), lower case.
STOPWORDS_EN: tuple[str, ...] = tuple(
    """i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves
    he him his himself she she's her hers herself it it's its itself they them their theirs themselves
    what which who whom this that that'll these those am is are was were be been being have has had
    having do does did doing a an the and but if or because as until while of at by for with about
    against between into through during before after above below to from up down in out on off over
    under again further then once here there when where why how all any both each few more most other
    some such no nor not only own same so than too very s t can will just don don't should should've
    now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn
    hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn
    shouldn't wasn wasn't weren weren't won won't wouldn wouldn't""".split()
)

# A deliberately small list of English profanity (no slurs): a starting point; pass ``words=`` to
# ``flagged_words_ratio`` for a real list.
FLAGGED_WORDS_EN: tuple[str, ...] = tuple(
    """fuck fucked fucker fucking fucks motherfucker shit shitty bullshit bitch bitches bastard
    asshole arsehole dick cunt twat wanker slut whore crap piss pissed porn porno xxx""".split()
)

# Element names that make `<name ...>` a real tag for clean.html. A `<` followed by any other word
# (`x<y and y>z`, `a<b2`) is text. Custom elements (`<my-widget>`) and prefixed names (`<o:p>`)
# are recognised separately.
HTML_ELEMENTS: tuple[str, ...] = tuple(
    """a abbr acronym address applet area article aside audio b base basefont bdi bdo bgsound big
    blink blockquote body br button canvas caption center cite code col colgroup data datalist dd
    del details dfn dialog dir div dl dt em embed fieldset figcaption figure font footer form frame
    frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe image img input ins isindex kbd
    keygen label legend li link listing main map mark marquee math menu menuitem meta meter nav
    nobr noembed noframes noscript object ol optgroup option output p param picture plaintext pre
    progress q rb rp rt rtc ruby s samp script search section select slot small source spacer span
    strike strong style sub summary sup svg table tbody td template textarea tfoot th thead time
    title tr track tt u ul var video wbr xmp""".split()
)


# ---------------------------------------------------------------- hashing (NumPy, uint64, wrapping)

# plain ints (numpy loads lazily); wrapped as np.uint64 where used
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def mix64(x: np.ndarray, inplace: bool = False) -> np.ndarray:
    """splitmix64's finaliser: a bijective, well-mixing map of uint64 (wrapping arithmetic)."""
    x = x if inplace and x.dtype == np.uint64 else x.astype(np.uint64, copy=True)
    t = np.empty_like(x)
    np.right_shift(x, np.uint64(30), out=t)
    x ^= t
    x *= np.uint64(_M1)
    np.right_shift(x, np.uint64(27), out=t)
    x ^= t
    x *= np.uint64(_M2)
    np.right_shift(x, np.uint64(31), out=t)
    x ^= t
    return x


@cache
def position_multipliers(n: int) -> np.ndarray:
    """Fixed odd 64-bit multipliers, one per position of an n-gram (deterministic, seed 0x5EED)."""
    rng = np.random.Generator(np.random.PCG64(0x5EED))
    return rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def hash_identity() -> dict[str, str]:
    """What hash-based statistics depend on besides their parameters (see the module docstring)."""
    return {"polars": pl.__version__, "hash": "polars-hash+splitmix64"}


def flat_word_hashes(words: pl.Series, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Explode a ``list[str]`` column: (row index of each word, uint64 hash of each word, words per row).

    Null lists count as empty. The flat arrays keep the row order, words of one row contiguous.
    """
    words = words.fill_null([])
    counts = words.list.len().to_numpy().astype(np.int64)
    flat = words.explode(empty_as_null=False, keep_nulls=False)
    h = flat.hash(seed).to_numpy()
    rid = np.repeat(np.arange(len(words), dtype=np.int64), counts)
    return rid, h, counts


_BASE = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2^64 (a plain int: numpy loads lazily)
_BASE_INV = pow(_BASE, -1, 2**64)
_POWERS: list[tuple[np.ndarray, np.ndarray] | None] = [None]


def _powers(length: int) -> tuple[np.ndarray, np.ndarray]:
    """(B^t, B^-t) for t < length, modulo 2^64 (cached, grown as needed; thread-safe: the pair is
    replaced in one assignment)."""
    if _POWERS[0] is None:
        _POWERS[0] = (np.ones(0, np.uint64), np.ones(0, np.uint64))
    pw, ipw = _POWERS[0]
    if len(pw) < length:
        size = max(length, 2 * len(pw), 1 << 16)
        block = 4096
        out = []
        for base in (_BASE, _BASE_INV):
            small = np.full(block, base, dtype=np.uint64)
            small[0] = 1
            small = np.cumprod(small, dtype=np.uint64)  # base^0 .. base^4095
            step = np.full(-(-size // block), pow(int(base), block, 2**64), dtype=np.uint64)
            step[0] = 1
            step = np.cumprod(step, dtype=np.uint64)  # base^(4096 j)
            out.append(np.multiply.outer(step, small).ravel()[:size])
        pw, ipw = out
        _POWERS[0] = (pw, ipw)
    return pw[:length], ipw[:length]


def ngram_hashes(rid: np.ndarray, h: np.ndarray, n: int, mix: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every window of ``n`` consecutive words inside one row: (row index, uint64 hash).

    A polynomial hash of the word hashes, ``sum_k h_{i+k} * B^(n-1-k)`` modulo 2^64 with a fixed
    odd B, computed for all windows at once from prefix sums (``B`` is invertible modulo 2^64), then
    (``mix``) passed through splitmix64. Order-sensitive; for random word hashes two different
    n-grams collide with probability about 2^-64.
    """
    m = len(h) - n + 1
    if m <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    pw, ipw = _powers(len(h))
    prefix = np.empty(len(h) + 1, dtype=np.uint64)
    prefix[0] = 0
    np.multiply(h, ipw, out=prefix[1:])
    np.cumsum(prefix[1:], out=prefix[1:])
    acc = prefix[n:] - prefix[:m]
    acc *= pw[n - 1 :]
    ok = rid[n - 1 :] == rid[:m]
    if not ok.all():
        acc, r = acc[ok], rid[:m][ok]
    else:
        r = rid[:m]
    return r, (mix64(acc, inplace=True) if mix else acc)


def duplicate_counts(rid: np.ndarray, g: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (number of items, number of items whose hash occurs more than once in that row).

    One sort of (row, hash) keys packed in 64 bits: the row index in the high bits, the hash's
    top bits below it (at least 40 of them for batches up to 2^24 rows).
    """
    bits = max(1, int(max(n_rows - 1, 1)).bit_length())
    key = rid.astype(np.uint64)  # in place from here: these arrays are as long as the text has words
    key <<= np.uint64(64 - bits)
    key |= g >> np.uint64(bits)
    key.sort()
    dup = np.zeros(len(key), dtype=bool)
    eq = key[1:] == key[:-1]
    dup[1:] |= eq
    dup[:-1] |= eq
    rows = (key[dup] >> np.uint64(64 - bits)).astype(np.int64)
    return np.bincount(rid, minlength=n_rows), np.bincount(rows, minlength=n_rows)


def prefix_hashes(rid: np.ndarray, h: np.ndarray, counts: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For the given rows, the hash of *all* their words as one sequence (the n-gram scheme with
    n = the row's word count, plus the count, so it never equals a real n-gram's hash)."""
    if len(rows) == 0:
        return np.zeros(0, np.uint64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    nmax = int(counts[rows].max())
    out = np.zeros(len(rows), np.uint64)
    for k in range(nmax):  # nmax is small (< n): a loop over positions, not rows
        has = counts[rows] > k
        out[has] = out[has] * np.uint64(_BASE) + h[starts[rows[has]] + k]
    return mix64(out + counts[rows].astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93))


# ---------------------------------------------------------------- tokenisers (expressions)


def dj_words(text: pl.Expr) -> pl.Expr:
    """Data-Juicer's refined words (``words_refinement(lower_case=True, strip_chars=SPECIAL_CHARACTERS)``).

    DJ splits on `` ``, ``\\n`` and ``\\t`` only, lowercases, strips special characters from both
    ends of each word and drops the words that become empty. Equivalently: a word is a run of
    characters other than space/LF/TAB that starts and ends with a non-special character, found
    left to right; that is what the regex below extracts in one pass.
    """
    return text.fill_null("").str.to_lowercase().str.extract_all(_dj_word_pattern())


@cache
def _dj_word_pattern() -> str:
    ns = non_special_class()
    return f"{ns}(?:[^ \\n\\t]*{ns})?"


@cache
def ascii_special_characters() -> str:
    return "".join(sorted(c for c in dj_special_characters() if c < "\x80"))


def dj_word_hashes(s: pl.Series, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The words of ``dj_words``, flat: (row index, uint64 hash) of each, a row's words contiguous and in order.

    The same words as ``dj_words`` (the signals tests compare the two on random text), found a
    cheaper way where the text allows: ``extract_all`` pays per match and the regex carries DJ's
    1,618-character class, while in ASCII text (most rows) a DJ word is simply a piece of
    ``split`` on space/LF/TAB with the ASCII special characters stripped from its ends -- which
    ``str.split`` and ``strip_chars`` do at a fraction of the cost. Rows with other characters
    take the regex of ``dj_words``. Hashes as in ``flat_word_hashes`` (Polars' string hash).
    """
    low = s.fill_null("").str.to_lowercase()
    wide = (low.str.len_bytes() != low.str.len_chars()).to_numpy()
    rids, hashes = [], []
    rows = np.flatnonzero(~wide)
    if len(rows):
        pieces = low.gather(rows).str.replace_all("[\n\t]", " ").str.split(" ")
        counts = pieces.list.len().to_numpy()
        words = pieces.explode(empty_as_null=False, keep_nulls=False).str.strip_chars(ascii_special_characters())
        real = (words.str.len_bytes() > 0).to_numpy()
        rids.append(np.repeat(rows.astype(np.int64), counts)[real])
        hashes.append(words.hash(seed).to_numpy()[real])  # not words.filter(real): that copies every word's view
    rows = np.flatnonzero(wide)
    if len(rows):
        words = low.gather(rows).str.extract_all(_dj_word_pattern())
        rid, h, _ = flat_word_hashes(words, seed)
        rids.append(rows.astype(np.int64)[rid])
        hashes.append(h)
    if not rids:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    return np.concatenate(rids), np.concatenate(hashes)


def batch(fn, dtype) -> callable:
    """Wrap a vectorised row-wise ``Series -> Series`` function as an elementwise expression mapper.

    The function runs in the calling Polars thread. Do not fan out to Python threads from inside
    it: when every Polars worker is waiting in such a function, the threads' own Polars calls
    cannot get a worker and the query deadlocks (seen with two of these maps in one step).
    """

    def apply(e: pl.Expr) -> pl.Expr:
        # Load NumPy now, in the thread that builds the plan. Its first use inside ``fn`` would
        # run the lazy import in a Polars worker while another worker calls ``fn`` too, and
        # Python 3.11's LazyLoader is not thread-safe: the other thread sees an empty module
        # ("module 'numpy' has no attribute ...").
        np.ndarray  # noqa: B018
        return e.map_batches(fn, return_dtype=dtype, is_elementwise=True)

    return apply


def text_slices(s: pl.Series, budget: int = 1 << 22) -> list[pl.Series]:
    """``s`` cut into consecutive slices of about ``budget`` bytes of text each (at least one row each).

    For the signals that build per-word arrays (eight or more bytes per word, several of them):
    slice by slice their working memory stays a few times the budget instead of growing with the
    batch, and the allocators reuse it instead of faulting in fresh pages for every array.
    """
    if len(s) == 0:
        return []
    ends = np.cumsum(s.str.len_bytes().fill_null(0).to_numpy()) // budget
    cuts = np.flatnonzero(np.diff(ends)) + 1
    bounds = [0, *cuts.tolist(), len(s)]
    return [s.slice(a, b - a) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def on_rows(s: pl.Series, mask: pl.Series, fn) -> pl.Series:
    """Apply the vectorised ``fn`` to the rows where ``mask`` holds; the others pass unchanged.

    Cleaners use it with a cheap prefilter (a literal search) so the expensive regex passes only
    touch the rows that can change.
    """
    mask = mask.fill_null(False)
    if not mask.any():
        return s
    if mask.all():
        return fn(s)
    return s.scatter(mask.arg_true(), fn(s.filter(mask)))


def non_ascii(s: pl.Series) -> pl.Series:
    """Rows with a character outside ASCII (byte length differs from character length: fast)."""
    return s.str.len_bytes() != s.str.len_chars()
