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
"""

from __future__ import annotations

import argparse
import statistics
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args()

    base = make_doc(20)
    # three errors (an unknown operator, column, parameter) and three lines to complete on
    text = (base.replace("clean.whitespace(", "clean.whitespce(", 1).replace("words(output) >= 5", "words(ouptut) >= 5", 1)
            .replace("n=10)", "nn=10)", 1)
            + "  - dedup.\n  - filter: words(\n  - dedup.minhash(output, \n")
    lines = text.splitlines()
    n_steps = sum(1 for ln in base.splitlines() if ln.startswith("  - "))
    server = build_server()
    server.protocol._workspace = Workspace(None)  # what `initialize` sets up
    uri = "file:///bench.dp"
    server.workspace.put_text_document(T.TextDocumentItem(uri=uri, language_id="dp", version=1, text=text))
    doc = server.workspace.get_text_document(uri)
    complete = server.protocol.fm.features[T.TEXT_DOCUMENT_COMPLETION]
    hover = server.protocol.fm.features[T.TEXT_DOCUMENT_HOVER]

    def check():
        return [server.lsp_diagnostic(doc, d) for d in A.diagnostics(doc.source)]

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
    print(f"{n_steps}-step document, {len(lines)} lines, {args.runs} runs each")
    print(f"{'':66} {'median':>9} {'p95':>9}")
    for name, med, p95 in rows:
        print(f"{name:66} {med:7.2f}ms {p95:7.2f}ms")


if __name__ == "__main__":
    main()
