"""A client without snippet support (Neovim 0.10's built-in client) gets completions without
placeholders, and the same diagnostics."""

from __future__ import annotations

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")
from lsprotocol import types as T  # noqa: E402

from tests.conftest import ROOT  # noqa: E402

from .conftest import CONFIG  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(config=CONFIG, scope="module")
async def client(lsp_client: pytest_lsp.LanguageClient):
    await lsp_client.initialize_session(T.InitializeParams(capabilities=pytest_lsp.client_capabilities("neovim@v0.10.0"),
                                                           root_uri=ROOT.as_uri()))
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
