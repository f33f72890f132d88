"""Cleaning maps: exact outputs on hand-written cases, edge cases, invariants."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ._util import col, mapped, run, step

# ================================================================ clean.html


@pytest.mark.parametrize(
    "src,want",
    [
        ("<p>Hi</p><p>there &amp; you</p>", "Hi\n\nthere & you"),
        ("line1<br>line2", "line1\nline2"),
        ("line1<br/>line2<BR >line3", "line1\nline2\nline3"),
        ("<script>var x=1;</script>visible", "visible"),
        ("<style type='text/css'>p {color: red}</style>text", "text"),
        ("a<script>\nif (a < b) { x = '</p>' }\n</script>b", "ab"),
        ("x<y and y>z", "x<y and y>z"),
        ("a < b and c > d", "a < b and c > d"),
        ("if a<b && c>d then", "if a<b && c>d then"),
        ("&lt;tag&gt;", "<tag>"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"),
        ("<!-- a comment -->text<!--x-->", "text"),
        ("<!-- unclosed comment", ""),
        ("<ul><li>one</li><li>two</li></ul>", "- one\n- two"),
        ("<html><body><p>Hello <b>world</b></p><style>p{}</style></body></html>", "Hello world"),
        ('<div class="a > b">x</div>', "x"),
        ("<a href='https://x.org'>link</a> text", "link text"),
        ("a<b>c</b>", "ac"),
        ("<br/>", ""),
        ("<p>a</p>\n\n   <p>b</p>", "a\n\nb"),
        ("<h2>Title</h2>Body<hr>End", "Title\n\nBody\n\nEnd"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a  b\nc"),
        ("AT&T and R&D &c", "AT&T and R&D &c"),
        ("&#39;&#x2019;&nbsp;&foo;&amp;lt;&copy;&#0;&#128;", "'’\u00a0&foo;&lt;©\ufffd€"),
        ("&amp", "&amp"),  # entities need their `;`
        ("<!DOCTYPE html><?xml version='1.0'?><p>x</p>", "x"),
        ("<my-widget>w</my-widget><o:p>q</o:p><svg><path d='M0'/></svg>", "wq"),
        ("3 <5 and 7> 2", "3 <5 and 7> 2"),
        ("<p >spaced attr</p >", "spaced attr"),
        ("< p>not a tag</ p>", "< p>not a tag</ p>"),
        ("<unknown>kept</unknown>", "<unknown>kept</unknown>"),
        ("no markup  here ", "no markup  here "),
        ("", ""),
        (None, None),
        ("<b>\ufdd0</b>marker", "marker"),  # the internal markers cannot be smuggled in
        ("中文<b>粗体</b>😀", "中文粗体😀"),
    ],
)
def test_clean_html(src, want):
    assert mapped("clean.html", [src]) == [want]


def test_clean_html_bullets_param():
    assert mapped("clean.html", ["<ol><li>a<li>b</ol>"], bullets="* ") == ["* a\n* b"]


def test_clean_html_very_long_text():
    body = "<p>" + "word &amp; " * 50_000 + "</p>"
    out = mapped("clean.html", [body * 4])[0]
    assert out.count("&") == 200_000 and "<" not in out and out.count("\n\n") == 3


@given(st.text(alphabet="abc <>/&;#x1p!-\n", max_size=40))
def test_clean_html_is_idempotent_on_its_output_when_no_entities_decode_to_markup(t):
    once = mapped("clean.html", [t])[0]
    if "&" not in t:  # decoding can create new markup ("&lt;p&gt;" -> "<p>"), by design
        assert mapped("clean.html", [once]) == [once]


@given(st.text(alphabet="abc xyz.,!?\n\t0123é", max_size=60))
def test_clean_html_leaves_text_without_markup_alone(t):
    assert mapped("clean.html", [t]) == [t]


# ================================================================ clean.whitespace


@pytest.mark.parametrize(
    "src,want",
    [
        (" a\u00a0\u00a0b \r\n\n\n\nc\u200b ", "a b\n\nc"),
        ("code:\n    x  =  1\n\ty", "code:\n    x = 1\n y"),
        ("a\u2028b\u2029c", "a\nb\n\nc"),
        ("\u3000x\u200dy\u2060z\ufeff", "x\u200dyz"),
        ("a\t\tb\x0bc\x0cd", "a b c d"),
        ("line  \nnext   \n\n\n\n\nend", "line\nnext\n\nend"),
        ("   \n\n  ", ""),
        ("fine text", "fine text"),
        ("", ""),
        (None, None),
    ],
)
def test_clean_whitespace(src, want):
    assert mapped("clean.whitespace", [src]) == [want]


def test_clean_whitespace_params():
    assert mapped("clean.whitespace", ["code:\n    x  =  1"], keep_indent=False) == ["code:\nx = 1"]
    assert mapped("clean.whitespace", ["a\n\n\n\nb"], max_blank_lines=0) == ["a\nb"]
    assert mapped("clean.whitespace", ["a\n\n\n\nb"], max_blank_lines=2) == ["a\n\n\nb"]
    assert mapped("clean.whitespace", ["x\u200dy\u200cz"], remove_joiners=True) == ["xyz"]


@given(st.text(alphabet="ab \t\n\r\u00a0\u3000\u200b\u2028\u2029x", max_size=40))
def test_clean_whitespace_invariants(t):
    (out,) = mapped("clean.whitespace", [t])
    assert out == out.strip()
    assert "\r" not in out and "\t" not in out and "\u00a0" not in out and "\u200b" not in out
    assert "\n\n\n" not in out and " \n" not in out
    assert mapped("clean.whitespace", [out]) == [out]  # idempotent
    assert out.replace(" ", "").replace("\n", "") == "".join(c for c in t if c in "abx")


# ================================================================ clean.unicode


def test_clean_unicode_repairs_mojibake_only():
    src = ["donâ€™t", "cafÃ©", "plain", None, "“curly” ﬁ ｆｕｌｌ", "Ã©tÃ© &amp;", ""]
    assert mapped("clean.unicode", src) == ["don’t", "café", "plain", None, "“curly” ﬁ ｆｕｌｌ", "été &amp;", ""]


def test_clean_unicode_normalization():
    decomposed = "e\u0301"
    assert mapped("clean.unicode", [decomposed]) == ["\u00e9"]
    assert mapped("clean.unicode", [decomposed], normalization="none") == [decomposed]
    assert mapped("clean.unicode", ["ﬁ"], normalization="NFKC") == ["fi"]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), min_codepoint=0x20, max_codepoint=0x3000), max_size=30))
def test_clean_unicode_prefilter_never_skips_a_text_ftfy_would_change(t):
    import ftfy

    from stdlib_ops.cleaning import MOJIBAKE_CLASS

    cfg = ftfy.TextFixerConfig(unescape_html=False, remove_terminal_escapes=False, fix_latin_ligatures=False, fix_character_width=False,
                               uncurl_quotes=False, fix_line_breaks=False, remove_control_chars=False, normalization=None, explain=False)
    if ftfy.fix_text(t, cfg) != t:
        assert pl.Series([t]).str.contains(MOJIBAKE_CLASS)[0]


# ================================================================ clean.links / clean.pii


def test_clean_links():
    src = ["See https://x.org/a?b=1. Or www.y.com!", "[docs](https://d.io/x) here", "(http://a.b/c)", "ftp://f.net/x, y", "no link.", None]
    assert mapped("clean.links", src) == ["See . Or !", "docs here", "()", ", y", "no link.", None]
    assert mapped("clean.links", ["go to https://a.b now"], placeholder="[URL]") == ["go to [URL] now"]
    assert mapped("clean.links", ["[docs](https://d.io/x)"], markdown=False) == ["[docs]()"]


def test_clean_pii_default_kinds():
    src = [
        "mail me: jo.doe@ex.com, +44 20 7946 0958",
        "ip 10.0.0.1 2.2.2.2 v1.2.3.4.5 and 999.1.1.1",
        "call (555) 123-4567 or 555-123-4567.",
        "bp 120/80 in 2020-2021, dose 2.5 mg, ISBN 978-3-16-148410-0",
        "ssn 123-45-6789 card 4111 1111 1111 1111",
        "IBAN GB82 WEST 1234 5698 7654 32",
        "v6 2001:0db8:85a3:0000:0000:8a2e:0370:7334 ok",
        None,
        "",
    ]
    assert mapped("clean.pii", src) == [
        "mail me: [EMAIL], [PHONE]",
        "ip [IP] [IP] v1.2.3.4.5 and 999.1.1.1",
        "call [PHONE] or [PHONE].",
        "bp 120/80 in 2020-2021, dose 2.5 mg, ISBN 978-3-16-148410-0",
        "ssn [SSN] card [CREDIT_CARD]",
        "IBAN [IBAN]",
        "v6 [IP] ok",
        None,
        "",
    ]


def test_clean_pii_kinds_and_placeholder():
    src = ["a@b.org 10.0.0.1 $x"]
    assert mapped("clean.pii", src, kinds=["email"], placeholder="<{kind}>") == ["<EMAIL> 10.0.0.1 $x"]
    assert mapped("clean.pii", src, kinds=["ip"], placeholder="$1") == ["a@b.org $1 $x"]  # no regex group expansion


def test_clean_pii_rejects_unknown_or_repeated_kinds():
    from pydantic import ValidationError

    from stdlib_ops.cleaning import PiiParams

    with pytest.raises(ValidationError):
        PiiParams(kinds=["mail"])
    with pytest.raises(ValidationError):
        PiiParams(kinds=["ip", "ip"])


# ================================================================ clean.strip_heading


@pytest.mark.parametrize(
    "src,want",
    [
        ("What are the signs and symptoms of X? The Human Phenotype Ontology ...", "The Human Phenotype Ontology ..."),
        ("What are the symptoms of Bell's palsy?", "What are the symptoms of Bell's palsy?"),  # nothing follows
        ("Key Points\n                    - Adult acute", "- Adult acute"),
        ("Pleurisy\n                \nThe main symptom", "The main symptom"),
        ("# Title.\nBody", "Body"),
        ("Hello there.\nNext", "Hello there.\nNext"),  # a sentence, not a heading
        ("Here are the steps:\n1. a", "Here are the steps:\n1. a"),
        ("- item\nmore", "- item\nmore"),
        ("How is it treated? \n\nRest. What helps? Ice.", "Rest. What helps? Ice."),
        ("Gout is arthritis. Why? Uric acid.", "Gout is arthritis. Why? Uric acid."),
        ("", ""),
        (None, None),
    ],
)
def test_clean_strip_heading(src, want):
    assert mapped("clean.strip_heading", [src]) == [want]


def test_clean_strip_heading_switches():
    src = ["What is X? Summary\nBody text."]
    assert mapped("clean.strip_heading", src) == ["Body text."]
    assert mapped("clean.strip_heading", src, lines=False) == ["Summary\nBody text."]
    assert mapped("clean.strip_heading", ["What is X? It is Y."], questions=False) == ["What is X? It is Y."]
    assert mapped("clean.strip_heading", ["Summary\nBody text."], lines=False) == ["Summary\nBody text."]


# ================================================================ clean.repeated_sentences


@pytest.mark.parametrize(
    "src,want",
    [
        ("Rest well and drink. Drink water. Rest well and drink. See a doctor.", "Rest well and drink. Drink water. See a doctor."),
        ("One two three.\nOne two three.\n", "One two three."),
        ("A b c. A B C! a b c?", "A b c."),  # case and final punctuation do not matter
        ("e.g. X. e.g. Y.", "e.g. X. e.g. Y."),  # short pieces are never removed
        ("Same   spacing here. Same spacing here.", "Same   spacing here."),
        ("no repeats here", "no repeats here"),
        ("", ""),
        (None, None),
    ],
)
def test_clean_repeated_sentences(src, want):
    assert mapped("clean.repeated_sentences", [src]) == [want]


def test_clean_repeated_sentences_params():
    assert mapped("clean.repeated_sentences", ["Go home. Go home."], min_words=2) == ["Go home."]
    assert mapped("clean.repeated_sentences", ["Go home now. GO HOME NOW."], lowercase=False) == ["Go home now. GO HOME NOW."]


def test_clean_repeated_sentences_rows_are_independent():
    src = ["Alpha beta gamma. Delta.", "Alpha beta gamma. Epsilon."]
    assert mapped("clean.repeated_sentences", src) == src


# ================================================================ clean.boilerplate_lines


def test_clean_boilerplate_lines():
    df = pl.DataFrame(
        {
            "output": [
                "Intro\nClick here to subscribe to our newsletter\nBody one",
                "Body two\nclick here to  subscribe to our newsletter",
                "x\nClick here to subscribe to our newsletter",
                "no boilerplate",
                None,
                "Source: web\nkeep",
            ]
        }
    )
    out, _ = run(df, step("clean.boilerplate_lines", col("output"), min_rows=3, patterns=["^Source: "]))
    assert out["output"].to_list() == ["Intro\nBody one", "Body two", "x", "no boilerplate", None, "keep"]
    # a fraction of the rows: 3 of 6 rows is not 60%
    out, _ = run(df, step("clean.boilerplate_lines", col("output"), min_rows=2, min_fraction=0.6))
    assert out["output"].to_list() == df["output"].to_list()
    # a text made only of boilerplate stays, unless never_empty=false
    df2 = pl.DataFrame({"output": ["The same stock answer line here.", "The same stock answer line here.", "Other\nThe same stock answer line here."]})
    out, _ = run(df2, step("clean.boilerplate_lines", col("output"), min_rows=3))
    assert out["output"].to_list() == ["The same stock answer line here.", "The same stock answer line here.", "Other"]
    out, _ = run(df2, step("clean.boilerplate_lines", col("output"), min_rows=3, never_empty=False))
    assert out["output"].to_list() == ["", "", "Other"]
    # short lines are never boilerplate
    out, _ = run(pl.DataFrame({"output": ["a\nSee", "b\nSee", "c\nSee"]}), step("clean.boilerplate_lines", col("output"), min_rows=2))
    assert out["output"].to_list() == ["a\nSee", "b\nSee", "c\nSee"]


def test_clean_boilerplate_rejects_bad_pattern():
    from pydantic import ValidationError

    from stdlib_ops.cleaning import BoilerplateParams

    with pytest.raises(ValidationError):
        BoilerplateParams(patterns=["(unclosed"])


def test_maps_rewrite_every_target_and_keep_other_columns():
    df = pl.DataFrame({"instruction": ["<b>Q</b>"], "output": [" <p>A</p> "], "other": ["<i>x</i>"]})
    out, _ = run(df, step("clean.html", col("instruction"), col("output")), step("clean.whitespace", col("instruction"), col("output")))
    assert out.select("instruction", "output", "other").row(0) == ("Q", "A", "<i>x</i>")


def test_several_batch_operators_in_one_step_do_not_deadlock():
    """Regression: vectorised batch functions must not wait on their own Python threads (that
    deadlocked once every Polars worker was inside one of them)."""
    import threading

    from ._util import op

    words = ("alpha beta gamma. delta epsilon zeta! " * 30).strip()
    df = pl.DataFrame({"a": [f"{words} {i}" for i in range(5000)]}).with_columns(b=pl.col("a").str.reverse(), c=pl.col("a"))
    rs, wr = op("clean.repeated_sentences"), op("word_repetition_ratio")
    plan = df.lazy().with_columns(
        rs.map_expr(pl.col("a"), rs.Params()).alias("a"),
        rs.map_expr(pl.col("b"), rs.Params()).alias("b"),
        wr.expr([pl.col("c")], wr.Params()).alias("w"),
        wr.expr([pl.col("a")], wr.Params()).alias("w2"),
    )
    done = []
    t = threading.Thread(target=lambda: done.append(plan.collect().height), daemon=True)
    t.start()
    t.join(timeout=120)
    assert done == [5000]
