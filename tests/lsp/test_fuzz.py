"""The analysis behind hover, completion, signature help and definition never raises, whatever the
text and the cursor: random text, and curated strategies cut and spliced at random."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from autodp_dsl.catalog import registry
from autodp_dsl.lsp import analysis as A
from tests.conftest import ROOT

CURATED = [p.read_text() for p in sorted((ROOT / "strategies").glob("*.dp"))]
PIECES = ["(", ")", ",", "=", "==", "'", '"', "`", "\n", "  - ", "filter: ", "where: ", "    do:\n", "words(", "dedup.minhash(",
          "clean.", "n=", "normalization=", "[", "]", "#", ": ", "\t", "\x00", "\udcff", "é😀", "and ", "x = "]


@st.composite
def documents(draw):
    if draw(st.booleans()):
        return "".join(draw(st.lists(st.sampled_from(PIECES) | st.text(max_size=5), max_size=60)))
    text = draw(st.sampled_from(CURATED))
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 40)))
        text = text[:i] + draw(st.sampled_from(["", *PIECES])) + text[j:]
    return text


@given(documents(), st.integers(-1, 30), st.integers(-1, 120))
def test_no_request_raises(text, line, col):
    reg = registry()
    a = A.analyze(text)
    line = max(line, 0)
    A.complete(a, line, max(col, 0))
    A.hover(a, line, max(col, 0))
    before = a.lines[line][: max(col, 0)] if line < len(a.lines) else ""
    call = A.call_context(A.step_body(before))
    if call is not None and (spec := reg.spec(call.name)) is not None:
        A.active_parameter(spec, call)
    if (w := A.word_at(a.lines[line] if line < len(a.lines) else "", max(col, 0))) is not None:
        a.column(w[0], line)
    if not A.not_text(text):
        A.diagnostics(text)
