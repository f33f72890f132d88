"""`autodp lsp` end to end: a real LSP client (pytest-lsp) over stdio."""

from __future__ import annotations

import asyncio

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")
from lsprotocol import types as T  # noqa: E402

from autodp_dsl.compiler import lint_text  # noqa: E402
from autodp_dsl.fmt import format_source  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")

BAD = """\
dp: 1
name: typos  # comments stay
columns:
  instruction: str
  output: str
steps:
  - clean.whitespce(output)
  - filter: words(outptu) >= 3
  - n = words(output)
  - filter: n > 2
  - dedup.minhash(output, thresold=0.7)
"""
GOOD = BAD.replace("whitespce", "whitespace").replace("outptu", "output").replace("thresold", "threshold")


async def _open(client, name: str, text: str) -> str:
    uri = f"file:///tmp/autodp-lsp-tests/{name}.dp"
    client.diagnostics.pop(uri, None)
    client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri=uri, language_id="dp", version=1, text=text)))
    return uri


async def _diagnostics(client, uri: str, until=lambda ds: True, timeout: float = 10.0) -> list[T.Diagnostic]:
    """The diagnostics published for ``uri`` once ``until`` holds for them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if uri in client.diagnostics and until(client.diagnostics[uri]):
            return client.diagnostics[uri]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no matching diagnostics for {uri}: {client.diagnostics.get(uri)}")


def _change(client, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        T.VersionedTextDocumentIdentifier(uri=uri, version=version), [T.TextDocumentContentChangeWholeDocument(text=text)]))


def _where(line: int, col: int, uri: str) -> dict:
    return {"text_document": T.TextDocumentIdentifier(uri), "position": T.Position(line, col)}


def _lint_view(text: str) -> list[tuple]:
    return sorted((d.code, d.line - 1, d.column - 1, d.end_column - 1) for d in lint_text(text))


async def test_diagnostics_are_lints_at_the_same_ranges(client):
    uri = await _open(client, "errors", BAD)
    diags = await _diagnostics(client, uri, lambda ds: len(ds) > 0)
    got = sorted((d.code, d.range.start.line, d.range.start.character, d.range.end.character) for d in diags)
    assert got == _lint_view(BAD)
    assert {d.code for d in diags} == {"unknown-op", "unknown-column", "unknown-parameter"}
    col = next(d for d in diags if d.code == "unknown-column")
    assert (col.range.start.line, col.range.start.character, col.range.end.character) == (7, 18, 24)  # `outptu`
    assert "did you mean `output`" in col.message and col.severity == T.DiagnosticSeverity.Error


async def test_a_change_updates_the_diagnostics(client):
    uri = await _open(client, "change", BAD)
    await _diagnostics(client, uri, lambda ds: len(ds) == 3)
    _change(client, uri, 2, GOOD)
    await _diagnostics(client, uri, lambda ds: len(ds) == 0)
    _change(client, uri, 3, GOOD.replace("steps:", "stesp:"))
    diags = await _diagnostics(client, uri, lambda ds: len(ds) > 0)
    assert {d.code for d in diags} == {"unknown-key", "missing-key"}


async def test_ranges_are_in_utf16_units(client):
    text = 'dp: 1\nname: u\nsteps:\n  - filter: chars(output) > 0 and "é😀" != outptu\n'
    uri = await _open(client, "utf16", text)
    (d,) = await _diagnostics(client, uri, lambda ds: len(ds) > 0)
    line = text.splitlines()[3]
    start = len(line[: line.index("outptu")].encode("utf-16-le")) // 2  # 😀 is two UTF-16 units
    assert (d.range.start.character, d.range.end.character) == (start, start + 6)
    hover = await client.text_document_hover_async(T.HoverParams(**_where(3, start + 2, uri)))
    assert hover is None  # `outptu` is no column: nothing to say, and no crash


async def test_yaml_errors_are_diagnostics_too(client):
    uri = await _open(client, "yaml", "dp: 1\nname: x\nsteps:\n  - clean.html(output\n - [\n")
    diags = await _diagnostics(client, uri, lambda ds: len(ds) > 0)
    assert diags[0].code == "yaml-syntax" and diags[0].range.start.line == 4


async def test_hover_operator_parameter_and_column(client):
    uri = await _open(client, "hover", GOOD)
    op = await client.text_document_hover_async(T.HoverParams(**_where(10, 8, uri)))  # dedup.minhash
    assert "dedup.minhash(text: str, threshold: float = 0.7" in op.contents.value
    assert "Drop near-duplicates" in op.contents.value and "cost: vectorised" in op.contents.value
    assert (op.range.start.character, op.range.end.character) == (4, 17)
    param = await client.text_document_hover_async(T.HoverParams(**_where(10, 28, uri)))  # threshold=
    assert "threshold" in param.contents.value and "default: `0.7`" in param.contents.value
    assert "allowed: > 0.0, < 1.0" in param.contents.value
    column = await client.text_document_hover_async(T.HoverParams(**_where(9, 12, uri)))  # n in `filter: n > 2`
    assert "**n**: `int`" in column.contents.value and "defined by step 3" in column.contents.value
    declared = await client.text_document_hover_async(T.HoverParams(**_where(7, 20, uri)))  # output
    assert "`str`" in declared.contents.value and "columns:" in declared.contents.value


async def test_completion_operator_parameter_column_and_values(client):
    text = GOOD + "  - dedup.\n  - filter: words(\n  - dedup.minhash(output, \n  - clean.unicode(output, normalization=\n  - \n"
    uri = await _open(client, "complete", text)
    n = len(GOOD.splitlines())

    async def labels(line, col):
        r = await client.text_document_completion_async(T.CompletionParams(**_where(line, col, uri)))
        return {i.label: i for i in r.items}

    ops = await labels(n, len("  - dedup."))
    assert {"dedup.exact", "dedup.minhash"} <= set(ops) and "words" not in ops  # a signal is not a step
    assert ops["dedup.minhash"].insert_text_format == T.InsertTextFormat.Snippet
    assert ops["dedup.minhash"].text_edit.new_text.startswith("dedup.minhash(${1:text}")
    assert ops["dedup.minhash"].text_edit.range.start.character == 4  # replaces the whole `dedup.` prefix
    cols = await labels(n + 1, len("  - filter: words("))
    assert {"instruction", "output", "n"} <= set(cols) and cols["n"].detail == "int"
    params = await labels(n + 2, len("  - dedup.minhash(output, "))
    assert {"threshold", "num_perm", "ngram"} <= set(params)
    values = await labels(n + 3, len("  - clean.unicode(output, normalization="))
    assert set(values) == {'"NFC"', '"NFKC"', '"none"'}
    keys = await labels(n + 4, len("  - "))
    assert {"filter", "where", "clean.html"} <= set(keys)


async def test_signature_help_definition_and_symbols(client):
    uri = await _open(client, "nav", GOOD + "  - filter: chars(output) > 3 and words(n, \n")
    n = len(GOOD.splitlines())
    sig = await client.text_document_signature_help_async(T.SignatureHelpParams(**_where(n, len("  - filter: chars(output) > 3 and words(n, "), uri)))
    assert sig.signatures[0].label.startswith("words(")
    loc = await client.text_document_definition_async(T.DefinitionParams(**_where(9, 12, uri)))
    assert (loc.range.start.line, loc.range.start.character, loc.range.end.character) == (8, 4, 5)  # `n = ...`
    syms = await client.text_document_document_symbol_async(T.DocumentSymbolParams(T.TextDocumentIdentifier(uri)))
    assert [s.name.split()[0] for s in syms][:5] == ["1", "2", "3", "4", "5"]


async def test_formatting_is_autodp_fmt(client):
    text = "dp: 1\nname:   spaced\nsteps:\n  -   clean.html( output )\n  - filter:   words(output)>=3\n"
    uri = await _open(client, "fmt", text)
    edits = await client.text_document_formatting_async(T.DocumentFormattingParams(T.TextDocumentIdentifier(uri), T.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert len(edits) == 1 and edits[0].new_text == format_source(text)[0]
    assert edits[0].range.start == T.Position(0, 0) and edits[0].range.end == T.Position(5, 0)


async def test_code_action_fixes_an_unknown_column(client):
    uri = await _open(client, "action", BAD)
    diags = await _diagnostics(client, uri, lambda ds: len(ds) == 3)
    col = next(d for d in diags if d.code == "unknown-column")
    actions = await client.text_document_code_action_async(T.CodeActionParams(
        T.TextDocumentIdentifier(uri), col.range, T.CodeActionContext(diagnostics=[col], only=[T.CodeActionKind.QuickFix])))
    (fix,) = actions
    assert fix.is_preferred and fix.kind == T.CodeActionKind.QuickFix
    (edit,) = fix.edit.changes[uri]
    assert edit.new_text == "output" and edit.range == col.range
    everything = await client.text_document_code_action_async(T.CodeActionParams(
        T.TextDocumentIdentifier(uri), col.range, T.CodeActionContext(diagnostics=[], only=[T.CodeActionKind.SourceFixAll])))
    assert everything[0].edit.changes[uri][0].new_text == GOOD


@pytest.mark.parametrize("name, text", [
    ("binary", "\x00\x01\x02\xff\xfe" * 100),
    ("controls", "dp: 1\nname: \x07\x1b[31m\nsteps: [clean.html(output)]\n"),
    ("surrogates", "dp: 1\nname: x\nsteps:\n  - clean.html(\udcff\udc80)\n"),
    ("huge", "dp: 1\nname: big\nsteps:\n" + "  - clean.html(output)\n" * 60_000),
    ("deep", "steps: " + "[" * 5000 + "]" * 5000 + "\n"),
    ("empty", ""),
])
async def test_bad_input_gives_diagnostics_or_nothing(client, name, text):
    uri = await _open(client, f"bad-{name}", text)
    diags = await _diagnostics(client, uri)
    assert all(d.source == "autodp" for d in diags)
    if name == "huge":
        assert diags[0].code == "limit-exceeded"
    for line, col in ((0, 0), (3, 10), (10**6, 10**6)):  # requests on it are answered too
        await client.text_document_hover_async(T.HoverParams(**_where(line, col, uri)))
        await client.text_document_completion_async(T.CompletionParams(**_where(line, col, uri)))
    await client.text_document_formatting_async(T.DocumentFormattingParams(T.TextDocumentIdentifier(uri), T.FormattingOptions(tab_size=2, insert_spaces=True)))


async def test_changes_faster_than_checks_end_with_the_last_version(client):
    uri = await _open(client, "rapid", BAD)
    for v in range(2, 60):
        _change(client, uri, v, BAD[: (v * 7) % len(BAD)])
    _change(client, uri, 60, GOOD)
    await _diagnostics(client, uri, lambda ds: len(ds) == 0)
    await asyncio.sleep(0.3)  # no stale check publishes after it
    assert len(client.diagnostics[uri]) == 0
    hover = await client.text_document_hover_async(T.HoverParams(**_where(10, 8, uri)))
    assert "dedup.minhash" in hover.contents.value
