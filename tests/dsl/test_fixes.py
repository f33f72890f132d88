"""Structured fixes and `autodp lint --fix`.

The corpus below was written as a person (or an LLM) would get things wrong: names misspelt by a
letter or two, neighbours swapped, across the snapshot families (names: operators, signals, columns;
params: parameter names; structure: top-level and step keys; syntax: `and`/`or`; types: column
types). Fixing must give back the intended document, comments and layout included, and leave the
ambiguous mistakes as they are.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autodp_dsl.compiler import lint_text
from autodp_dsl.fixes import MACHINE, MAYBE, apply_fixes, edit_distance, fix_text
from tests.conftest import ROOT

INTENDED = """\
# comments and this layout must survive --fix
dp: 1
name: fixable   # trailing comment
description: "each step below gets misspelt in the test"
columns:
  instruction: str
  input:    str
  output: str
  score: float
require: [instruction, output]
steps:
  - clean.whitespace(instruction, output)   # whitespace first
  - clean.html(output)
  - clean.unicode(output, normalization="NFKC")
  - n_words = words(output)
  - filter: n_words >= 3 and chars(output) <= 20000
  - filter: special_char_ratio(output) <= 0.25 or score > 0.5
  - filter: digit_ratio(instruction) < 0.5
  - where: score < 0.2
    do:
      - clean.links(output, placeholder="")
  - dedup.exact(instruction, output)
  - dedup.minhash(output, threshold=0.8, num_perm=128)
"""

# (as intended, as written): each occurs once in INTENDED; 24 pairs, 26 misspelt names
MISTAKES = [
    ("description:", "descripton:"),  # structure: top-level keys
    ("columns:", "colums:"),
    ("require:", "reqiure:"),
    ("steps:", "stpes:"),
    ("score: float", "score: flaot"),  # types
    ("instruction: str", "instruction: sttr"),
    ("clean.whitespace(", "clean.whitespce("),  # names: step operators
    ("clean.html(", "clean.hmtl("),
    ("clean.unicode(", "clean.unicdoe("),
    ("clean.links(", "clean.lniks("),
    ("dedup.exact(instruction", "dedup.exatc(instrcution"),  # an operator and a column in one step
    ("normalization=", "normalisation="),  # params
    ("threshold=", "threshlod="),
    ("num_perm=", "num_prem="),
    ("placeholder=", "placehodler="),
    ("= words(output)", "= wrods(output)"),  # names: signals
    ("chars(output) <=", "chras(output) <="),
    ("special_char_ratio(", "special_char_ration("),
    ("digit_ratio(", "digit_raito("),
    ("n_words >= 3", "n_wrods >= 3"),  # names: columns (a defined one, a declared one)
    ("or score > 0.5", "ro scroe > 0.5"),  # syntax: `or`, then the column it hid
    ("3 and", "3 adn"),
    ("- where:", "- wheer:"),  # structure: step keys
    ("filter: digit", "fliter: digit"),
]


def _written(text: str = INTENDED) -> str:
    """``text`` with every mistake made (those whose place ``text`` has changed are left out)."""
    for right, wrong in MISTAKES:
        assert text.count(right) <= 1 and (text is not INTENDED or text.count(right) == 1), right
        text = text.replace(right, wrong)
    return text


def test_the_corpus_has_at_least_20_mistakes_and_each_is_reported():
    assert len(MISTAKES) >= 20
    assert lint_text(INTENDED) == []
    for right, wrong in MISTAKES:  # alone, each mistake is reported with a machine-applicable fix
        broken = INTENDED.replace(right, wrong)
        diags = lint_text(broken)
        assert diags, wrong
        assert any(f.applicability == MACHINE for d in diags for f in d.fixes), (wrong, [d.code for d in diags])
        assert fix_text(broken)[0] == INTENDED, wrong


def test_fix_gives_back_the_intended_document_with_its_comments():
    fixed, n = fix_text(_written())
    assert fixed == INTENDED
    assert n >= len(MISTAKES)
    assert lint_text(fixed) == []


AMBIGUOUS = [
    ("- clean.html(output)", "- clean.html(ouput)"),  # `output` and `input` are both 1-2 edits away
    ("- filter: digit_ratio(instruction) < 0.5", "- filter: words(output) > 1 an chars(output) > 1"),  # `and` or `or`
    ("- dedup.exact(instruction, output)", "- select.sample(ked=3)"),  # `k` or `seed`
    ("n_words >= 3", "mex_line_chars(output) >= 3"),  # `max_line_chars` or `mean_line_chars`
    ("- clean.html(output)", "- clean.everything(output)"),  # nothing close
]


@pytest.mark.parametrize("right, wrong", AMBIGUOUS, ids=[w for _, w in AMBIGUOUS])
def test_ambiguous_mistakes_are_left_alone(right, wrong):
    expected = INTENDED.replace(right, wrong)
    fixed, _ = fix_text(_written(expected))
    assert fixed == expected
    assert lint_text(fixed)  # still reported
    assert all(f.applicability == MAYBE for d in lint_text(fixed) for f in d.fixes)


def test_fixes_in_lint_json_and_lint_fix_writes_atomically(tmp_path):
    f = tmp_path / "s.dp"
    f.write_text(_written())
    env_cmd = [sys.executable, "-m", "autodp_dsl.cli", "lint"]
    out = subprocess.run([*env_cmd, "--format", "json", str(f)], capture_output=True, text=True, cwd=ROOT)
    report = json.loads(out.stdout)
    fixes = [fx for d in report["diagnostics"] for fx in d["fixes"]]
    assert fixes and set(fixes[0]) == {"line", "column", "end_line", "end_column", "replacement", "applicability", "message"}
    assert out.returncode == 1
    done = subprocess.run([*env_cmd, "--fix", str(f)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert f.read_text() == INTENDED and "applied" in done.stderr
    again = subprocess.run([*env_cmd, "--fix", str(f)], capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0 and "applied" not in again.stderr


def test_lint_fix_on_a_file_that_cannot_be_written(tmp_path):
    f = tmp_path / "s.dp"
    f.write_text(INTENDED.replace("clean.html(", "clean.hmtl("))
    (tmp_path / "other-name.dp").hardlink_to(f)  # replacing it would split the links: refused
    r = subprocess.run([sys.executable, "-m", "autodp_dsl.cli", "lint", "--fix", str(f)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and r.stderr.startswith("error: cannot write") and "Traceback" not in r.stderr
    assert "clean.hmtl(" in f.read_text()


def test_apply_fixes_skips_overlaps_and_out_of_range_edits():
    from autodp_dsl.diagnostics import Diagnostic, Fix

    d = Diagnostic("x", "m", fixes=[Fix(1, 1, 1, 4, "abc", MACHINE), Fix(1, 2, 1, 3, "Z", MACHINE),
                                      Fix(9, 1, 9, 2, "?", MACHINE), Fix(1, 5, 1, 6, "Q", MAYBE)])
    assert apply_fixes("xyz w\n", [d]) == ("abc w\n", 1)


@pytest.mark.parametrize("a, b, d", [("abc", "abc", 0), ("abc", "acb", 1), ("outptu", "output", 1), ("ouput", "input", 2),
                                     ("kitten", "sitting", 3), ("", "ab", 2)])
def test_edit_distance(a, b, d):
    assert edit_distance(a, b) == min(d, 3)


def test_a_look_alike_column_is_fixed_to_the_one_it_looks_like():
    text = "dp: 1\nname: u\ncolumns:\n  output: str\nsteps:\n  - filter: words(`\u043eutput`) > 1  # Cyrillic o\n"
    (d,) = lint_text(text)
    assert d.code == "unknown-column" and [f.applicability for f in d.fixes] == [MACHINE]
    assert fix_text(text) == (text.replace("`\u043eutput`", "output"), 1)
