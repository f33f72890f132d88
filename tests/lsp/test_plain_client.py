"""A client without snippet support (Neovim 0.10's built-in client) gets completions without
placeholders; its settings (``initializationOptions``) name the input columns."""

from __future__ import annotations

import asyncio

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")
from lsprotocol import types as T  # noqa: E402

from tests.conftest import ROOT  # noqa: E402

from .conftest import CONFIG  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(config=CONFIG, scope="module")
async def client(lsp_client: pytest_lsp.LanguageClient):
    await lsp_client.initialize_session(T.InitializeParams(capabilities=pytest_lsp.client_capabilities("neovim@v0.10.0"),
                                                           root_uri=ROOT.as_uri(),
                                                           initialization_options={"columns": "text:str,score:float"}))
    yield
    await lsp_client.shutdown_session()


async def test_completion_without_snippets(client):
    uri = "file:///tmp/autodp-lsp-tests/plain.dp"
    text = "dp: 1\nname: p\nsteps:\n  - dedup.\n"
    client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri=uri, language_id="dp", version=1, text=text)))
    r = await client.text_document_completion_async(T.CompletionParams(text_document=T.TextDocumentIdentifier(uri),
                                                                       position=T.Position(line=3, character=10)))
    items = {i.label: i for i in r.items}
    assert items["dedup.minhash"].text_edit.new_text == "dedup.minhash(text)"
    assert all(i.insert_text_format != T.InsertTextFormat.Snippet for i in r.items)


async def test_the_settings_name_the_input_columns(client):
    uri = "file:///tmp/autodp-lsp-tests/settings.dp"
    text = "dp: 1\nname: p\nsteps:\n  - filter: words(output) > 1 and score > 0.5\n  - filter: chars(\n"
    client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri=uri, language_id="dp", version=1, text=text)))
    r = await client.text_document_completion_async(T.CompletionParams(text_document=T.TextDocumentIdentifier(uri),
                                                                       position=T.Position(line=4, character=len("  - filter: chars("))))
    labels = {i.label for i in r.items}
    assert {"text", "score"} <= labels and "output" not in labels
    for _ in range(500):
        if client.diagnostics.get(uri):
            break
        await asyncio.sleep(0.02)
    unknown = [d.message for d in client.diagnostics[uri] if d.code == "unknown-column"]
    assert len(unknown) == 1 and unknown[0].startswith("unknown column `output`")  # `score` is known, `output` is not
