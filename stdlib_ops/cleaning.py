"""Cleaning maps: rewrite text columns in place, row by row, never dropping rows.

All of them are vectorised Polars (regex passes over whole columns; the few steps that need a
per-batch table, such as decoding the distinct numeric entities of a batch, run once per batch,
not per row). The one exception is ``clean.unicode``: mojibake repair needs ftfy, which is Python,
so it runs per row - but only on the rows that contain a non-ASCII character (ASCII text cannot
be mojibake), each distinct text once.

Maps written as expressions of one column are ``commutes = True`` (row-wise, only their targets
change); ``clean.boilerplate_lines`` looks at every row (how many rows share a line) and does not
commute.
"""

from __future__ import annotations

import html
import re
from typing import Literal

from pydantic import Field, field_validator

from autodp_dsl.lazy import lazy_import
from autodp_dsl.lazy import polars as pl  # loaded on first use: `autodp lint` needs no Polars
from autodp_dsl.ops import ROW_ID, Arg, Family, FrameMapOp, MapOp, Params
from autodp_dsl.types import STR

from ._text import HTML_ELEMENTS, SENT_BLOCK, SENT_LINE, batch, mix64, non_ascii, on_rows

np = lazy_import("numpy")  # loaded on first use: `autodp lint` needs no NumPy

__all__ = ["OPS", "clean_html_series"]


class _Map(MapOp):
    family = Family.CLEANING
    version = 1
    args = (Arg("target", STR, column=True, variadic=True, doc="the text columns to rewrite"),)
    commutes = True


# ================================================================ clean.html

_NAME = "(?:" + "|".join(sorted(HTML_ELEMENTS, key=len, reverse=True)) + r"|[a-z][a-z0-9]*-[a-z0-9._-]*|[a-z][a-z0-9]*:[a-z][a-z0-9]*)"
# attributes: name[=value], names as in HTML/XML/Vue (`data-x`, `@click`, `:prop`), quoted or bare values
_ATTRS = r"""(?:\s+[a-z_:@][-a-z0-9_:.@]*(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*\s*/?"""
_OPEN = rf"<{_NAME}{_ATTRS}>"
_CLOSE = rf"</{_NAME}\s*>"
_BLOCK = (
    "address article aside blockquote body caption center details dialog dir div dl fieldset figcaption "
    "figure footer form h1 h2 h3 h4 h5 h6 head header hgroup hr html legend listing main menu nav ol p "
    "plaintext pre section summary table tbody tfoot thead title ul xmp"
).split()
_LINE = "br dd dt li option tr".split()
_CELL = "td th".split()
_DROP_CONTENT = ("script", "style", "noscript", "template", "svg", "math", "iframe", "object")


def _tag_of(names) -> str:
    alt = "|".join(sorted(names, key=len, reverse=True))
    return rf"(?i)</?(?:{alt}){_ATTRS}>"


_RE_COMMENT = r"(?s)<!--.*?(?:-->|$)"
_RE_DROP = [rf"(?is)<{n}(?:\s[^>]*)?>.*?</{n}\s*>" for n in _DROP_CONTENT]
_RE_LI = rf"(?i)<li{_ATTRS}>"
_RE_BLOCK = _tag_of(_BLOCK)
_RE_LINE = _tag_of(_LINE)
_RE_CELL = _tag_of(_CELL)
_RE_TAG = rf"(?i){_OPEN}|{_CLOSE}"
_RE_DECL = r"(?i)<![a-z][^>]*>|<\?xml[^>]*>|<!\[CDATA\[|\]\]>"
_RE_ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
_SENT = f"{SENT_BLOCK}{SENT_LINE}"


def _decode_entities(s: pl.Series) -> pl.Series:
    """Decode ``&name;``, ``&#N;`` and ``&#xH;`` as HTML5 does (Python's ``html.unescape`` of each
    distinct entity of the batch, then one Aho-Corasick pass). Entities without ``;`` stay."""
    found = s.str.extract_all(_RE_ENTITY).explode(empty_as_null=False, keep_nulls=False).unique()
    table = {e: html.unescape(e) for e in found.to_list()}
    table = {k: v for k, v in table.items() if k != v}
    if not table:
        return s
    return s.str.replace_many(list(table), list(table.values()))


def clean_html_series(s: pl.Series, bullets: str = "- ") -> pl.Series:
    """The body of ``clean.html`` on one batch (exposed for tests and the docs)."""
    s = s.cast(pl.String)
    return on_rows(s, s.str.contains("<", literal=True) | s.str.contains("&", literal=True), lambda t: _clean_html(t, bullets))


def _clean_html(t: pl.Series, bullets: str) -> pl.Series:
    t = t.str.replace_all(f"[{_SENT}]", "")
    t = t.str.replace_all(_RE_COMMENT, "")
    for rx in _RE_DROP:
        t = t.str.replace_all(rx, "")
    t = t.str.replace_all(_RE_DECL, "")
    t = t.str.replace_all(_RE_LI, SENT_LINE + bullets.replace("$", "$$"))
    t = t.str.replace_all(_RE_BLOCK, SENT_BLOCK)
    t = t.str.replace_all(_RE_LINE, SENT_LINE)
    t = t.str.replace_all(_RE_CELL, " ")
    t = t.str.replace_all(_RE_TAG, "")
    # separators: dropped at the ends; inside, a run of separators and whitespace becomes one
    # blank line if it holds a block boundary, else one line break
    t = t.str.replace_all(rf"^\s*[{_SENT}][\s{_SENT}]*", "")
    t = t.str.replace_all(rf"[\s{_SENT}]*[{_SENT}]\s*$", "")
    t = t.str.replace_all(rf"\s*(?:{SENT_LINE}\s*)*{SENT_BLOCK}[\s{_SENT}]*", "\n\n")
    t = t.str.replace_all(rf"\s*{SENT_LINE}[\s{SENT_LINE}]*", "\n")
    return _decode_entities(t)


class HtmlParams(Params):
    bullets: str = Field("- ", max_length=8, description="what starts the line of a list item (<li>)")


class CleanHtml(_Map):
    """Strip HTML markup, keeping the visible text and its block structure.

    In order: comments ``<!-- -->`` are removed; ``<script>``, ``<style>``, ``<noscript>``,
    ``<template>``, ``<svg>``, ``<math>``, ``<iframe>`` and ``<object>`` are removed with their
    content (only when closed; a lone opening tag is removed as a tag); ``<!DOCTYPE>``, ``<?xml>``
    and CDATA markers are removed; list items start a line with ``bullets``; block elements
    (``p``, ``div``, ``h1``-``h6``, ``ul``, ``table``, ``pre``, ...) become a blank line and ``br``,
    ``li``, ``tr``, ``dt``, ``dd`` a line break (collapsed with the whitespace around them, dropped
    at the start and end); ``td``/``th`` become a space; every other tag is removed; finally
    entities ending in ``;`` are decoded (``&amp;``, ``&nbsp;`` -> U+00A0, ``&#39;``, ``&#x2019;``,
    all HTML5 names). A *tag* is ``<`` or ``</`` directly followed by a known HTML element name (or
    a custom ``a-b`` / prefixed ``o:p`` name), then well-formed attributes, then ``>``: so
    ``a < b``, ``x<y and y>z`` and ``if a<b && c>d`` are text and survive, and ``&lt;tag&gt;``
    becomes the text ``<tag>``. Text without ``<`` or ``&`` is returned unchanged. Not a browser:
    whitespace inside the text is kept as is (``clean.whitespace`` normalises it).
    ``clean.html`` of ``<p>Hi</p><p>there &amp; you</p>`` is ``"Hi\\n\\nthere & you"``.
    Example: ``clean.html(output)``.
    """

    name = "clean.html"
    version = 1
    Params = HtmlParams

    def map_expr(self, col, params):
        bullets = params.bullets
        return batch(lambda s: clean_html_series(s, bullets), pl.String)(col)


# ================================================================ clean.whitespace

# horizontal spaces: Unicode Zs (all but U+0020 handled apart), TAB, VT, FF
_HSPACE = r"\t\x0B\x0C\x{A0}\x{1680}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}"
_ZERO_WIDTH = r"\x{200B}\x{2060}\x{FEFF}\x{180E}"
_JOINERS = r"\x{200C}\x{200D}"


class WhitespaceParams(Params):
    max_blank_lines: int = Field(1, ge=0, le=10, description="longest run of empty lines kept")
    keep_indent: bool = Field(True, description="keep the leading spaces of lines (code, nested lists)")
    remove_joiners: bool = Field(False, description="also remove ZWNJ/ZWJ (U+200C/U+200D), which some scripts and emoji need")


class CleanWhitespace(_Map):
    """Normalise whitespace: one kind of space, collapsed runs, tidy line breaks, stripped ends.

    In order: ``\\r\\n``, ``\\r``, NEL and U+2028 become ``\\n``, U+2029 ``\\n\\n``; zero-width
    characters (U+200B, U+2060, U+FEFF, U+180E; with ``remove_joiners`` also U+200C/U+200D) are
    removed; every other Unicode space (U+00A0, U+2000-U+200A, U+202F, U+205F, U+3000, U+1680),
    TAB, VT and FF becomes a space; runs of spaces inside a line collapse to one (leading
    indentation is kept unless ``keep_indent=false``); spaces at line ends are removed; runs of
    more than ``max_blank_lines`` empty lines shrink to that many; the text is stripped.
    ``clean.whitespace`` of ``" a\\u00a0\\u00a0b \\r\\n\\n\\n\\nc\\u200b "`` is ``"a b\\n\\nc"``.
    Example: ``clean.whitespace(instruction, output)``.
    """

    name = "clean.whitespace"
    version = 1
    Params = WhitespaceParams

    def map_expr(self, col, params):
        return batch(lambda s: _whitespace_series(s, params), pl.String)(col)


def _whitespace_series(s: pl.Series, params: WhitespaceParams) -> pl.Series:
    s = s.cast(pl.String)
    k = params.max_blank_lines

    def lit(x):
        return s.str.contains(x, literal=True)

    # the rows that can change: cheap literal searches (odd spaces are all non-ASCII, or TAB/VT/FF/CR)
    needs = non_ascii(s) | (s.str.strip_chars().str.len_bytes() != s.str.len_bytes())
    for x in ("  ", " \n", "\n" * (k + 2), "\t", "\r", "\x0b", "\x0c") + (() if params.keep_indent else ("\n ",)):
        needs = needs | lit(x)
    return on_rows(s, needs, lambda t: _whitespace(t, params))


def _whitespace(t: pl.Series, params: WhitespaceParams) -> pl.Series:
    zw = _ZERO_WIDTH + (_JOINERS if params.remove_joiners else "")
    t = (
        t.str.replace_all(r"\r\n?|\x{85}|\x{2028}", "\n")
        .str.replace_all(r"\x{2029}", "\n\n")
        .str.replace_all(f"[{zw}]", "")
        .str.replace_all(f"[{_HSPACE}]", " ")
    )
    if params.keep_indent:
        t = t.str.replace_all(r"([^\n ])  +", "${1} ")
    else:
        t = t.str.replace_all(r"(?m)^ +", "").str.replace_all(r"  +", " ")
    t = t.str.replace_all(r" +\n", "\n")
    k = params.max_blank_lines
    t = t.str.replace_all(f"\n{{{k + 2},}}", "\n" * (k + 1))
    return t.str.strip_chars()


# ================================================================ clean.unicode


class UnicodeParams(Params):
    normalization: Literal["NFC", "NFKC", "none"] = Field("NFC", description="Unicode normal form of the result")


# Every encoding ftfy repairs turns UTF-8 lead bytes (0xC2-0xF4) into one of these: Latin-1/
# Windows-125x letters, modifiers and punctuation (U+0080-U+024F, U+02B0-U+02FF, U+2000-U+20CF,
# U+2100-U+2122), Greek and
# Cyrillic (cp437, MacRoman, Windows-1251/1253), arrows/math/box drawing (cp437, MacRoman), U+F8FF
# and ligatures (MacRoman); lossy decodes leave U+FFFD. A text
# with none of them is left unchanged by the fixes ``clean.unicode`` enables (tested).
MOJIBAKE_CLASS = r"[\x{80}-\x{24F}\x{370}-\x{4FF}\x{2B0}-\x{2FF}\x{2000}-\x{20CF}\x{2100}-\x{2122}\x{2190}-\x{21FF}\x{2200}-\x{22FF}\x{2300}-\x{23FF}\x{2500}-\x{25FF}\x{F8FF}\x{FB00}-\x{FB4F}\x{FFFD}]"


def _ftfy_batch(normalization: str):
    def run(s: pl.Series) -> pl.Series:
        import ftfy

        cfg = ftfy.TextFixerConfig(
            unescape_html=False,
            remove_terminal_escapes=False,
            fix_latin_ligatures=False,
            fix_character_width=False,
            uncurl_quotes=False,
            fix_line_breaks=False,
            remove_control_chars=False,
            normalization=None,
            explain=False,
        )
        def fix(sub: pl.Series) -> pl.Series:
            # ftfy is pure Python: one call per *distinct* candidate text (unavoidable per-row work)
            fixed = {u: ftfy.fix_text(u, cfg) for u in sub.unique().to_list()}
            return pl.Series([fixed[u] for u in sub.to_list()], dtype=pl.String)

        s = s.cast(pl.String)
        cand = non_ascii(s)
        if cand.any():
            # mojibake always contains a character of these blocks (see MOJIBAKE_CLASS)
            cand = cand & s.str.contains(MOJIBAKE_CLASS)
        s = on_rows(s, cand, fix)
        if normalization != "none":
            s = s.str.normalize(normalization)
        return s

    return run


class CleanUnicode(_Map):
    """Repair mojibake and broken Unicode with ftfy, then normalise (NFC by default).

    ftfy's encoding repairs only (``fix_encoding``, ``restore_byte_a0``, ``replace_lossy_sequences``,
    ``decode_inconsistent_utf8``, ``fix_c1_controls``, ``fix_surrogates``): ``"donâ€™t"`` -> ``"don’t"``,
    ``"cafÃ©"`` -> ``"café"``. Curly quotes, ligatures, full-width forms, HTML entities, line
    breaks and control characters are left alone (other operators own those). Then the text is
    put in ``normalization`` form (``NFC``, ``NFKC`` or ``none``). Pure-ASCII rows skip ftfy.
    Example: ``clean.unicode(instruction, output)``.
    """

    name = "clean.unicode"
    version = 1
    Params = UnicodeParams

    def map_expr(self, col, params):
        return batch(_ftfy_batch(params.normalization), pl.String)(col)


# ================================================================ clean.links / clean.pii

_URL = (
    r"(?i)\b(?:(?:https?|ftp)://|www\d{0,3}\.)"  # scheme or www.
    r"[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]}]"  # no trailing punctuation
)
_MD_LINK = r"\[([^\]\n]{1,500})\]\((?:https?|ftp)://[^\s)]*\)"


def _placeholder(p: str) -> str:
    return p.replace("$", "$$")


class LinksParams(Params):
    placeholder: str = Field("", max_length=64, description="what replaces each link")
    markdown: bool = Field(True, description="reduce Markdown links [text](url) to their text")


class CleanLinks(_Map):
    """Remove URLs (``http://``, ``https://``, ``ftp://``, ``www.``) or replace them with ``placeholder``.

    A URL runs to the next whitespace, quote, ``<`` or ``>``, and never ends with ``.,;:!?)]}`` (so
    the sentence's full stop survives). Markdown links ``[text](https://...)`` keep their text
    when ``markdown`` is true. Spaces around a removed link are left to ``clean.whitespace``.
    ``clean.links`` of ``"See https://x.org/a?b=1. Or www.y.com!"`` is ``"See . Or !"``.
    Example: ``clean.links(output, placeholder="[URL]")``.
    """

    name = "clean.links"
    Params = LinksParams

    def map_expr(self, col, params):
        if params.markdown:
            col = col.str.replace_all(_MD_LINK, "${1}")
        return col.str.replace_all(_URL, _placeholder(params.placeholder))


# Each kind: a regex whose group 1 and last group are the context kept around the match (the
# Rust regex engine has no look-around). Bounded and linear-time.
_PII = {
    # kind: (prefilter: a cheap regex or literal that every match contains, full pattern, label)
    "email": ("@", r"(?i)(^|[^\w.+-])[\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}([^\w-]|$)", "EMAIL"),
    "ip": (
        r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]",
        r"(^|[^\w.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])([^\w.]|\.\s|\.$|$)",
        "IP",
    ),
    "ipv6": (r"(?i)[0-9a-f]:[0-9a-f]{1,4}:[0-9a-f]", r"(?i)(^|[^\w:])(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}([^\w:]|$)", "IP"),
    "phone": (
        r"\+[1-9]|[0-9]{3}[ .-][0-9]{3}",
        r"(^|[^\w+])(?:\+[1-9][0-9]{0,2}[ .-]?(?:\(?[0-9]{1,4}\)?[ .-]?){2,4}[0-9]{2,4}"
        r"|\(?[0-9]{3}\)?[ .-][0-9]{3}[ .-][0-9]{4})([^\w]|$)",
        "PHONE",
    ),
    "credit_card": (r"[0-9]{4}[ -][0-9]{4}[ -]", r"(^|[^\w-])(?:[0-9]{4}[ -]){3}[0-9]{4}(?:[0-9]{0,3})([^\w-]|$)", "CREDIT_CARD"),
    "ssn": (r"[0-9]{3}-[0-9]{2}-[0-9]{4}", r"(^|[^\w-])[0-9]{3}-[0-9]{2}-[0-9]{4}([^\w-]|$)", "SSN"),
    "iban": (r"[A-Z]{2}[0-9]{2}", r"(^|[^\w])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?([^\w]|$)", "IBAN"),
}
PII_KINDS = tuple(_PII)


class PiiParams(Params):
    kinds: list[Literal["email", "ip", "ipv6", "phone", "credit_card", "ssn", "iban"]] = Field(
        ["email", "phone", "ip", "ipv6", "credit_card", "ssn", "iban"],
        min_length=1,
        description="which kinds of personal data to replace",
    )
    placeholder: str = Field("[{kind}]", max_length=64, description="replacement; {kind} becomes EMAIL, PHONE, IP, ...")

    @field_validator("kinds")
    @classmethod
    def _unique(cls, v):
        if len(set(v)) != len(v):
            raise ValueError("kinds must not repeat")
        return v


class CleanPii(_Map):
    """Replace personal data (e-mails, phone numbers, IPs, card numbers, SSNs, IBANs) by a placeholder.

    ``kinds`` picks the detectors; each match becomes ``placeholder`` with ``{kind}`` replaced by
    the kind's label (``EMAIL``, ``PHONE``, ``IP``, ``CREDIT_CARD``, ``SSN``, ``IBAN``). Patterns:
    e-mail ``local@domain.tld``; IPv4 dotted quads 0-255 not inside a longer dotted number
    (``1.2.3.4.5`` is kept); full 8-group IPv6; phone ``+CC ...`` (international, 2-4 groups) or
    North-American ``(555) 123-4567`` / ``555-123-4567`` / ``555.123.4567``; card numbers as four
    groups of four digits separated by space or ``-`` (no Luhn check); US SSN ``123-45-6789``;
    IBAN-shaped ``CC00 XXXX ...``. Detectors run in the order of ``kinds``; e-mail runs before URLs
    or IPs would see its domain. Plain numbers, dates and measurements (``120/80``, ``2020-2021``)
    are not touched.
    ``clean.pii`` of ``"mail me: jo.doe@ex.com, +44 20 7946 0958"`` is ``"mail me: [EMAIL], [PHONE]"``.
    Example: ``clean.pii(output, kinds=["email", "phone"], placeholder="<{kind}>")``.
    """

    name = "clean.pii"
    Params = PiiParams

    def map_expr(self, col, params):
        return batch(lambda s: _pii_series(s, params), pl.String)(col)


def _pii_series(s: pl.Series, params: PiiParams) -> pl.Series:
    s = s.cast(pl.String)
    for kind in params.kinds:
        pre, rx, label = _PII[kind]
        sub = "${1}" + _placeholder(params.placeholder.replace("{kind}", label)) + "${" + str(re.compile(rx).groups) + "}"
        # twice: a match consumes one character of context, which may be the next match's
        s = on_rows(s, s.str.contains(pre, literal=pre == "@"), lambda t, rx=rx, sub=sub: t.str.replace_all(rx, sub).str.replace_all(rx, sub))
    return s


# ================================================================ clean.strip_heading

_QWORDS = (
    "what|how|who|whom|whose|where|when|why|which|is|are|was|were|can|could|do|does|did|should|"
    "will|would|has|have|may|might"
)


class StripHeadingParams(Params):
    questions: bool = Field(True, description="strip a leading question sentence (`What are the symptoms of X? ...`)")
    lines: bool = Field(True, description="strip a leading heading line (`Key Points\\n...`, `# Title\\n...`)")
    max_words: int = Field(12, ge=1, le=40, description="longest heading line, in words")
    max_question_chars: int = Field(200, ge=10, le=1000, description="longest leading question, in characters")


class CleanStripHeading(_Map):
    """Remove a leading heading or restated question from an answer, when text follows it.

    With ``questions``: a first sentence that starts with a question word (what, how, who, where,
    when, why, which, is, are, can, do, does, ...; any case) and ends with ``?`` within
    ``max_question_chars`` characters, on one line, is removed with the whitespace after it - as in
    MedQuAD's ``"What are the signs and symptoms of X? The Human Phenotype Ontology ..."``. With
    ``lines``: a first line that is a Markdown heading (``# ...``) or a short label (1 to
    ``max_words`` words, not starting with a list marker, not ending with ``.``, ``!``, ``?``,
    ``:``, ``;``, ``,``) followed by a line break is removed with the blank lines after it - as in
    ``"Key Points\\n  - Adult acute ..."``. Question first, then one heading line. Nothing is
    removed when nothing would follow it (``heading_only`` flags those rows).
    Example: ``clean.strip_heading(output)``.
    """

    name = "clean.strip_heading"
    Params = StripHeadingParams

    def map_expr(self, col, params):
        t = col
        if params.questions:
            q = rf"(?i)^\s*(?:{_QWORDS})[ \t][^?\n]{{0,{params.max_question_chars}}}\?[ \t]*(?:\n\s*)?(\S)"
            t = t.str.replace(q, "${1}")
        if params.lines:
            first = t.str.extract(r"^[ \t]*([^\n]*?)[ \t]*\n", 1)
            markdown = first.str.contains(r"^#{1,6}[ \t]")
            label = first.str.contains(r"^[^\s#*\x{2022}+\-0-9](?:.*[^\s.!?:;,])?$") & (
                first.str.count_matches(r"\S+") <= params.max_words
            )
            strip = (markdown | label).fill_null(False)
            t = pl.when(strip).then(t.str.replace(r"^[ \t]*[^\n]*\n\s*(\S)", "${1}")).otherwise(t)
        return t


# ================================================================ clean.repeated_sentences


class RepeatedSentencesParams(Params):
    min_words: int = Field(3, ge=1, le=100, description="shorter sentences are never removed (list markers, 'e.g.')")
    lowercase: bool = Field(True, description="compare sentences case-insensitively")


class CleanRepeatedSentences(_Map):
    """Keep only the first occurrence of each sentence within a text.

    The text is cut after each sentence end (``.``, ``!``, ``?`` runs, with closing quotes or
    brackets, and the spaces/tabs after them) and after each run of line breaks; the pieces keep their trailing
    whitespace, so joining them gives the text back. A piece is dropped when an earlier piece of
    the same text has the same key - the piece with whitespace runs collapsed to one space, stripped, its final
    ``.``/``!``/``?`` removed and (with ``lowercase``) lowercased - and it has at least
    ``min_words`` space-separated words. If anything was dropped,
    trailing whitespace is stripped. Other rows are not consulted (that is ``clean.boilerplate_lines``).
    ``clean.repeated_sentences`` of ``"Rest well. Drink water. Rest well. See a doctor."`` is
    ``"Rest well. Drink water. See a doctor."`` (with ``min_words=2``).
    Example: ``clean.repeated_sentences(output)``.
    """

    name = "clean.repeated_sentences"
    Params = RepeatedSentencesParams

    def map_expr(self, col, params):
        return batch(lambda s: _repeated_sentences_series(s, params), pl.String)(col)


# a piece ends after a sentence end and the spaces after it, or after a run of line breaks
_CUT_AFTER = r"[.!?]+[\"'\x{201D}\x{2019})\]]*[ \t]+|\n+[ \t]*"


def _repeated_sentences_series(s: pl.Series, params: RepeatedSentencesParams) -> pl.Series:
    s = s.cast(pl.String)
    pieces = s.fill_null("").str.split(_CUT_AFTER, inclusive=True, literal=False)
    counts = pieces.list.len().to_numpy()
    flat = pieces.explode(empty_as_null=False, keep_nulls=False)
    rid = np.repeat(np.arange(len(s), dtype=np.int64), counts)
    key = flat.str.replace_all(r"\s{2,}|[^\S ]", " ").str.strip_chars().str.strip_chars_end(".!?")
    if params.lowercase:
        key = key.str.to_lowercase()
    words = np.where(key.str.len_bytes().to_numpy() > 0, key.str.count_matches(" ", literal=True).to_numpy() + 1, 0)
    # first occurrence of each (row, key): one hash table over the batch, the row folded into the key
    tagged = key.hash(7).to_numpy() + mix64(rid.astype(np.uint64))
    keep = pl.Series(tagged).is_first_distinct().to_numpy() | (words < params.min_words)
    rows = np.unique(rid[~keep])
    if len(rows) == 0:
        return s
    sel = np.isin(rid, rows) & keep
    rebuilt = (
        pl.DataFrame({"r": rid[sel], "p": flat.filter(pl.Series(sel))})
        .group_by("r", maintain_order=True)
        .agg(pl.col("p").str.join(""))
    )
    return s.scatter(rebuilt["r"].to_numpy(), rebuilt["p"].str.strip_chars_end())


# ================================================================ clean.boilerplate_lines


def polars_regex_problem(pattern: str) -> str | None:
    """Why Polars cannot compile ``pattern`` (the regex error's own words), or None."""
    try:
        pl.select(pl.lit("").str.contains(pattern))
    except pl.exceptions.PolarsError as e:
        lines = [x.strip() for x in str(e).splitlines()]
        return next((x.removeprefix("error: ") for x in lines if x.startswith("error:")), lines[0] if lines else "invalid regex")
    return None


class BoilerplateParams(Params):
    min_rows: int = Field(5, ge=2, le=10_000_000, description="a line is boilerplate when at least this many rows contain it")
    min_fraction: float = Field(0.0, ge=0.0, le=1.0, description="... and at least this fraction of the rows")
    min_chars: int = Field(20, ge=1, le=100_000, description="shorter lines are never boilerplate (headings, list markers)")
    patterns: list[str] = Field([], max_length=100, description="regexes: matching lines are removed too")
    never_empty: bool = Field(True, description="leave a text unchanged when all of its lines are boilerplate")

    @field_validator("patterns")
    @classmethod
    def _compile(cls, v):
        # judged by the engine that runs them (Rust's regex crate through Polars, not Python's `re`:
        # no look-around, but `\p{Lu}`); Polars is imported only when there is a pattern to check
        for p in v:
            problem = polars_regex_problem(p)
            if problem:
                raise ValueError(f"invalid pattern {p!r}: {problem}")
        return v


class CleanBoilerplateLines(FrameMapOp):
    """Remove lines that recur across many rows (site chrome, disclaimers, sign-offs), and lines matching ``patterns``.

    A line's key is the line with whitespace runs collapsed, stripped and lowercased. A line is
    boilerplate when its key has at least ``min_chars`` characters and occurs in at least
    ``max(min_rows, ceil(min_fraction * rows))`` distinct rows of the column (in the frame this
    step sees), or when the line matches one of ``patterns`` (Polars regexes, searched anywhere in
    the line; anchor them with ``^...$`` for whole lines). Boilerplate lines are removed with their
    line break; the remaining lines keep their order and text. With ``never_empty`` (default) a
    text made only of boilerplate lines is left unchanged (a stock answer repeated across rows is
    still an answer: filter or dedup such rows explicitly). Depends on the other rows, so it does
    not commute with filters. Targets are handled one column at a time.
    Example: ``clean.boilerplate_lines(output, min_rows=10, patterns=["^Source: "])``.
    """

    name = "clean.boilerplate_lines"
    version = 1
    family = Family.CLEANING
    args = (Arg("target", STR, column=True, variadic=True, doc="the text columns to rewrite"),)
    Params = BoilerplateParams
    commutes = False

    def lower(self, lf, args, params, ctx):
        from autodp_dsl.ir import Col

        for a in args:
            if isinstance(a, Col):
                lf = self._one(lf, a.name, params)
        return lf

    def _one(self, lf: pl.LazyFrame, c: str, params: BoilerplateParams) -> pl.LazyFrame:
        lines = (
            lf.select(ROW_ID, pl.col(c).str.split("\n").alias("__line"))
            .with_columns(pl.int_ranges(pl.col("__line").list.len()).alias("__pos"))
            .explode("__line", "__pos")
            .with_columns(pl.col("__line").str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase().alias("__key"))
        )
        total = lf.select(pl.len().alias("__n"))
        need = pl.max_horizontal(pl.lit(params.min_rows), (pl.col("__n") * params.min_fraction).ceil().cast(pl.Int64))
        freq = (
            lines.filter(pl.col("__key").str.len_chars() >= params.min_chars)
            .group_by("__key")
            .agg(pl.col(ROW_ID).n_unique().alias("__rows"))
            .join(total, how="cross")
            .filter(pl.col("__rows") >= need)
            .select("__key", pl.lit(True).alias("__bp"))
        )
        bad = pl.col("__bp").fill_null(False)
        for p in params.patterns:
            bad = bad | pl.col("__line").str.contains(p).fill_null(False)
        kept = (
            lines.join(freq, on="__key", how="left")
            .with_columns(bad.alias("__drop"))
            .group_by(ROW_ID)
            .agg(
                pl.col("__line").filter(~pl.col("__drop")).sort_by(pl.col("__pos").filter(~pl.col("__drop"))).str.join("\n").alias("__new"),
                pl.col("__drop").any().alias("__any"),
                pl.col("__drop").all().alias("__all"),
            )
        )
        change = pl.col("__any") & ~pl.col("__all") if params.never_empty else pl.col("__any")
        return (
            lf.join(kept, on=ROW_ID, how="left", maintain_order="left")
            .with_columns(pl.when(change).then(pl.col("__new")).otherwise(pl.col(c)).alias(c))
            .drop("__new", "__any", "__all")
        )


OPS = (
    CleanHtml,
    CleanWhitespace,
    CleanUnicode,
    CleanLinks,
    CleanPii,
    CleanStripHeading,
    CleanRepeatedSentences,
    CleanBoilerplateLines,
)
