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


def test_hover_on_signals_their_parameters_and_columns():
    src = "dp: 1\nname: t\nsteps:\n  - filter: word_repetition_ratio(output, n=10) <= 0.5\n"
    a = A.analyze(src)
    text, start, end = A.hover(a, 3, 14)
    assert "word_repetition_ratio(text: str, n: int = 10) -> float" in text and "kind: signal" in text
    assert src.splitlines()[3][start:end] == "word_repetition_ratio"
    param, *_ = A.hover(a, 3, 42)
    assert param.startswith("**n**") and "default: `10`" in param
    col, *_ = A.hover(a, 3, 36)
    assert col.startswith("**output**: `str`")
    assert A.hover(a, 3, 51) is None and A.hover(a, 3, 500) is None and A.hover(a, 99, 0) is None


def test_active_parameter_of_signature_help():
    from autodp_dsl.catalog import registry

    spec = registry().spec("dedup.minhash")
    names = [p.strip() for p in spec.signature[spec.signature.index("(") + 1 : spec.signature.rindex(")")].split(", ")]

    def active(before):
        i = A.active_parameter(spec, A.call_context(before))
        return None if i is None else names[i].split(":")[0]

    assert active("dedup.minhash(out") == "text"
    assert active("dedup.minhash(output, ngram=") == "ngram"
    assert active("dedup.minhash(output, threshold=0.8, ") == "num_perm"  # the first one not given yet
    assert [s for s, _ in A.signature_parts(spec.signature)][:2] == [len("dedup.minhash("), len("dedup.minhash(text: str, ")]


def test_completion_of_keys_types_and_required_columns():
    src = "dp: 1\nname: t\ncolumns:\n  text: str\n  score: float\nrequire: [text, \nst\n"
    a = A.analyze(src)
    assert {c.label for c in A.complete(a, 6, 2)} == {"dp", "name", "description", "columns", "require", "steps"}
    assert "list[str]" in {c.label for c in A.complete(a, 3, 8)}
    assert {c.label for c in A.complete(a, 5, len("require: [text, "))} == {"text", "score"}


def test_scopes_survive_the_yaml_error_of_the_line_being_typed():
    src = "dp: 1\nname: t\ncolumns:\n  text: str\nsteps:\n  - n = words(text)\n  - filter: n > [1, \n  - filter: \n"
    a = A.analyze(src)
    assert {"text", "n"} <= {c.label for c in A.complete(a, 7, len("  - filter: "))}


def test_without_pygls_the_command_says_what_to_install():
    code = ("import sys; sys.modules['pygls'] = sys.modules['lsprotocol'] = None\n"
            "from autodp_dsl.cli import main; sys.exit(main(['lsp']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error: `autodp lsp` needs pygls") and "autodp[lsp]" in r.stderr
