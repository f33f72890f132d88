"""Language-server latency, in process: the diagnostics handler and completion on a 20-step document.

    python bench/bench_lsp.py [--runs 300]

Diagnostics: what the server does once the debounce has passed (``analysis.diagnostics``, i.e. the
lint of the whole document, then conversion to LSP diagnostics with the position codec), on a
20-step document with three errors. Completion: the registered ``textDocument/completion`` handler,
called directly (no JSON-RPC), at three places: operators at a step's start, columns and signals
inside ``words(``, parameters inside ``dedup.minhash(text, ``; once right after a change (the
document's ``Analysis`` is rebuilt) and again on the same version (cached). Hover on an operator for
comparison. Loading the same document with libyaml's ``CSafeLoader`` (the loader autodp uses) is
the baseline measured in the same run, as in ``bench_lint.py``.
Targets (issue 18): diagnostics < 20 ms after the debounce; completion < 10 ms.

``--stdio`` also times the whole round trip through a real server process (`autodp lsp
--debounce 0`): a ``didChange`` sent to the ``publishDiagnostics`` of that version read back, and a
completion request to its reply (JSON-RPC over pipes, the worker thread, the event loop).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import yaml  # noqa: E402
from bench_lint import make_doc  # noqa: E402
from lsprotocol import types as T  # noqa: E402
from pygls.workspace import Workspace  # noqa: E402

from autodp_dsl.lsp import analysis as A  # noqa: E402
from autodp_dsl.lsp.server import build_server  # noqa: E402


def stats(fn, runs: int) -> tuple[float, float]:
    xs = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
    xs.sort()
    return statistics.median(xs), xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]


class Wire:
    """A minimal JSON-RPC client over a server process's pipes."""

    def __init__(self, cmd: list[str]):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})

    def send(self, **msg) -> None:
        body = json.dumps({"jsonrpc": "2.0", **msg}).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.p.stdin.flush()

    def read(self) -> dict:
        n = 0
        while (line := self.p.stdout.readline().strip()):
            if line.lower().startswith(b"content-length"):
                n = int(line.split(b":")[1])
        return json.loads(self.p.stdout.read(n))

    def until(self, pred) -> dict:
        while not pred(m := self.read()):
            pass
        return m


def stdio_rows(text: str, good: str, where: tuple[int, int], runs: int) -> list[tuple]:
    w = Wire([sys.executable, "-m", "autodp_dsl.cli", "lsp", "--debounce", "0"])
    w.send(id=0, method="initialize", params={"capabilities": {}})
    w.until(lambda m: m.get("id") == 0)
    w.send(method="initialized", params={})
    uri = "file:///bench-stdio.dp"
    w.send(method="textDocument/didOpen", params={"textDocument": {"uri": uri, "languageId": "dp", "version": 1, "text": text}})
    w.until(lambda m: m.get("method") == "textDocument/publishDiagnostics")
    change, complete = [], []
    for v in range(2, runs + 2):
        t = time.perf_counter()
        w.send(method="textDocument/didChange", params={"textDocument": {"uri": uri, "version": v},
                                                        "contentChanges": [{"text": text if v % 2 else good}]})
        w.until(lambda m, v=v: m.get("method") == "textDocument/publishDiagnostics" and m["params"].get("version") == v)
        change.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        w.send(id=v, method="textDocument/completion", params={"textDocument": {"uri": uri}, "position": {"line": where[0], "character": where[1]}})
        w.until(lambda m, v=v: m.get("id") == v)
        complete.append((time.perf_counter() - t) * 1000)
    w.send(id=-1, method="shutdown")
    w.until(lambda m: m.get("id") == -1)
    w.send(method="exit")
    w.p.wait(timeout=30)

    def row(name, xs):
        xs.sort()
        return name, statistics.median(xs), xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]

    return [row("stdio: didChange -> publishDiagnostics (debounce 0)", change),
            row("stdio: completion request -> reply (after a change)", complete)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--stdio", action="store_true", help="also time round trips through a server process")
    args = ap.parse_args()

    base = make_doc(20)
    # three errors (an unknown operator, column, parameter) and three lines to complete on
    text = (base.replace("clean.whitespace(", "clean.whitespce(", 1).replace("words(output) >= 5", "words(ouptut) >= 5", 1)
            .replace("n=10)", "nn=10)", 1)
            + "  - dedup.\n  - filter: words(\n  - dedup.minhash(output, \n")
    lines = text.splitlines()
    n_steps = sum(1 for ln in base.splitlines() if ln.startswith("  - "))
    server = build_server()
    server.protocol._workspace = Workspace(None)  # what `initialize` sets up, for a client with snippets
    server.protocol.client_capabilities = T.ClientCapabilities(text_document=T.TextDocumentClientCapabilities(
        completion=T.CompletionClientCapabilities(completion_item=T.ClientCompletionItemOptions(snippet_support=True))))
    uri = "file:///bench.dp"
    server.workspace.put_text_document(T.TextDocumentItem(uri=uri, language_id="dp", version=1, text=text))
    doc = server.workspace.get_text_document(uri)
    complete = server.protocol.fm.features[T.TEXT_DOCUMENT_COMPLETION]
    hover = server.protocol.fm.features[T.TEXT_DOCUMENT_HOVER]

    def check():
        return server.lsp_diagnostics(doc, A.diagnostics(doc.source))

    assert {d.code for d in check()} == {"unknown-op", "unknown-column", "unknown-parameter", "syntax-error"}  # + the 3 lines being typed
    where = {
        "operators at a step's start": (len(lines) - 3, len("  - dedup.")),
        "columns + signals in `words(`": (len(lines) - 2, len("  - filter: words(")),
        "parameters in `dedup.minhash(output, `": (len(lines) - 1, len("  - dedup.minhash(output, ")),
    }
    requests = {k: T.CompletionParams(text_document=T.TextDocumentIdentifier(uri), position=T.Position(line=ln, character=c))
                for k, (ln, c) in where.items()}
    for k, p in requests.items():
        assert complete(p).items, k
    hover_op = T.HoverParams(text_document=T.TextDocumentIdentifier(uri), position=T.Position(line=lines.index(next(
        ln for ln in lines if "dedup.exact" in ln)), character=6))
    assert hover(hover_op) is not None
    version = [1]

    def changed():  # a new version: the next request rebuilds the analysis
        version[0] += 1
        server.workspace.get_text_document(uri).version = version[0]

    rows = [("yaml.load with CSafeLoader (baseline)", *stats(lambda: yaml.load(text, Loader=yaml.CSafeLoader), args.runs)),
            ("diagnostics handler (lint + conversion)", *stats(check, args.runs))]
    for k, p in requests.items():
        rows.append((f"completion after a change: {k}", *stats(lambda p=p: (changed(), complete(p)), args.runs)))
        rows.append((f"completion, same version: {k}", *stats(lambda p=p: complete(p), args.runs)))
    rows.append(("hover on an operator, same version", *stats(lambda: hover(hover_op), args.runs)))
    if args.stdio:
        good = text.replace("whitespce", "whitespace")
        rows += stdio_rows(text, good, where["columns + signals in `words(`"], min(args.runs, 200))
    print(f"{n_steps}-step document, {len(lines)} lines, {args.runs} runs each")
    print(f"{'':66} {'median':>9} {'p95':>9}")
    for name, med, p95 in rows:
        print(f"{name:66} {med:7.2f}ms {p95:7.2f}ms")


if __name__ == "__main__":
    main()
