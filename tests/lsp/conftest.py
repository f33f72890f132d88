"""A real LSP client (pytest-lsp) talking to `autodp lsp` in a subprocess over stdio.

One server per test module (starting Python and the catalog is most of the cost); each test opens
its own document URI, so tests do not see each other's documents.
"""

from __future__ import annotations

import os
import sys

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")
from lsprotocol import types as T  # noqa: E402

from tests.conftest import ROOT  # noqa: E402

# a short debounce keeps the tests fast; the rapid-change test still sends changes faster than it
CONFIG = pytest_lsp.ClientServerConfig(
    server_command=[sys.executable, "-m", "autodp_dsl.cli", "lsp", "--debounce", "0.05"],
    server_env={**os.environ, "PYTHONPATH": str(ROOT)},
)


@pytest_lsp.fixture(config=CONFIG, scope="module")
async def client(lsp_client: pytest_lsp.LanguageClient):
    await lsp_client.initialize_session(T.InitializeParams(capabilities=pytest_lsp.client_capabilities("visual-studio-code"),
                                                           root_uri=ROOT.as_uri()))
    yield
    await lsp_client.shutdown_session()
