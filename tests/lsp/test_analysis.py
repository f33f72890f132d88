"""The language server's analysis without the protocol: scopes, the cursor's context, limits."""

from __future__ import annotations

import subprocess
import sys

from autodp_dsl.lsp import analysis as A
from autodp_dsl.types import FLOAT, STR
from tests.conftest import ROOT

DOC = """\
dp: 1
name: t
steps:
  - score = words(output) * 2
  - where: score > 3
    do:
      - flag = true
  - filter: flag and score > 1
"""


def test_scopes_follow_the_steps():
    a = A.analyze(DOC)
    assert set(a.columns_at(3)) == {"instruction", "input", "output"}  # before `score = ...`
    assert "score" in a.columns_at(4) and "flag" not in a.columns_at(4)
    assert {"score", "flag"} <= set(a.columns_at(7)) and {"score", "flag"} <= set(a.final)
    assert a.column("score", 7).origin.startswith("defined by step 1")
    assert (a.column("score", 7).line, a.column("score", 7).col) == (3, 4)
    assert "Alpaca" in a.column("output", 3).origin


def test_columns_given_on_the_command_line_win():
    a = A.analyze(DOC.replace("output", "text"), {"text": STR, "weight": FLOAT})
    assert set(a.columns_at(3)) == {"text", "weight"} and "from the data" in a.column("weight", 3).origin
    assert A.diagnostics(DOC, None, {"text": STR})[0].code == "unknown-column"
    labels = {c.label for c in A.complete(A.analyze("dp: 1\nname: t\nsteps:\n  - filter: words(\n", {"text": STR}), 3, 19)}
    assert "text" in labels and "output" not in labels


def test_call_context_reads_nested_calls_lists_and_strings():
    c = A.call_context('dedup.minhash(output, threshold=0.8, ng')
    assert (c.name, c.arg_index, c.keyword, c.used) == ("dedup.minhash", 2, None, {"threshold"})
    assert A.call_context("words(output) > 3 and chars(").name == "chars"
    assert A.call_context('clean.pii(output, kinds=["email", ').keyword == "kinds"
    assert A.call_context('words(output) > 3') is None
    assert A.call_context('gen.fill(output, instruction, role="ans').keyword == "role"


def test_limits_and_non_text():
    big = "dp: 1\nname: x\nsteps:\n" + "  - clean.html(output)\n" * (A.MAX_BYTES // 20)
    assert A.diagnostics(big)[0].code == "limit-exceeded"  # the language core's bound, as `autodp lint` says
    assert A.analyze(big).steps == []
    assert A.diagnostics("dp: 1\x00")[0].code == "yaml-syntax"
    (d,) = A.diagnostics("dp: 1\nname: \udcff\n")
    assert (d.code, d.line, d.column) == ("invalid-encoding", 2, 7) and "not UTF-8" in d.message


def test_lsp_command_usage_errors_are_one_line():
    r = subprocess.run([sys.executable, "-m", "autodp_dsl.cli", "lsp", "--columns", "a:nosuchtype"], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error: --columns") and len(r.stderr.strip().splitlines()) == 1
