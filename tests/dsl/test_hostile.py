"""The language front end under careless and hostile input (issue 12): a lossless `fmt`, duplicate
keys, bounds on size, aliases, steps and nesting, regexes judged by Polars, and diagnostics that say
where the problem is."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from autodp_dsl import compile_file, compile_text, format_source
from autodp_dsl.document import Limits
from autodp_dsl.types import STR

HEAD = "dp: 1\nname: t\n"


def doc(*steps: str, extra: str = "") -> str:
    return HEAD + extra + "steps:\n" + "".join(f"  - {s}\n" for s in steps)


def diags(src: str, **kw):
    return compile_text(src, **kw).diagnostics


def codes(src: str, **kw) -> list[str]:
    return [d.code for d in diags(src, **kw)]


def fmt(src: str) -> str:
    out, problems = format_source(src)
    assert out is not None, [d.headline() for d in problems]
    assert format_source(out)[0] == out  # idempotent
    return out


def same_ir(a: str, b: str) -> None:
    ra, rb = compile_text(a, level="none"), compile_text(b, level="none")
    assert [d.code for d in ra.diagnostics] == [d.code for d in rb.diagnostics]
    assert ra.strategy == rb.strategy


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "autodp_dsl.cli", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


# ---------------------------------------------------------------- fmt loses nothing


def test_fmt_keeps_a_misspelled_top_level_key():
    src = HEAD + "stesp:\n  - clean.html(output)\n  - {filter: 'words(output) > 3'}\nsteps:\n  - clean.whitespace(output)\n"
    out = fmt(src)
    assert yaml.safe_load(out)["stesp"] == yaml.safe_load(src)["stesp"]
    assert codes(out) == codes(src) == ["unknown-key"]


def test_fmt_keeps_comments_next_to_what_they_annotate(tmp_path):
    src = ("# cleaning for the Q&A set\ndp: 1\nname:   t  # short\nstesp:  # misspelled\n  - a  # inner\nsteps:\n"
           "  # cheap steps first\n  - filter:   words(output) > 3  # keep real answers\n  - where: words(output) < 3\n"
           "    # a gate\n    do:\n      - clean.html(output)  # markup\n  - {filter: \"output != '#x'\"}\n# the end\n")
    out = fmt(src)
    assert out == (
        "# cleaning for the Q&A set\ndp: 1\nname: t  # short\nsteps:\n  # cheap steps first\n"
        "  - filter: words(output) > 3  # keep real answers\n  - where: words(output) < 3\n    # a gate\n    do:\n"
        "      - clean.html(output)  # markup\n  - filter: output != \"#x\"\n# misspelled\n# inner\nstesp:\n- a\n# the end\n"
    )
    f = tmp_path / "c.dp"
    f.write_text(src)
    r = _cli("fmt", "--write", str(f))
    assert r.returncode == 0 and f.read_text() == out
    # a `#` inside a step string or a quoted scalar is not a comment
    assert "#" not in fmt(doc("filter: output != \"#1\"", extra="description: 'issue #12'\n")).replace("#1", "").replace("#12", "")


def test_fmt_keeps_number_literals_exactly():
    src = doc("filter: words(output) > 1e309", "filter: words(output) < 123456789012345678901234567890123456789012",
              "filter: chars(output) > 0.1 + 2.5e+300 - 1e-07")
    out = fmt(src)
    assert "1e309" in out and "inf" not in out
    assert "123456789012345678901234567890123456789012" in out
    assert "0.1 + 2.5e+300 - 1e-07" in out
    same_ir(doc("filter: chars(output) > 0.1 + 2.5e+300 - 1e-07"), fmt(doc("filter: chars(output) > 0.1 + 2.5e+300 - 1e-07")))


@pytest.mark.parametrize(
    ("step", "kept"),
    [
        ("filter: -(-1) < words(output)", "-(-1)"),
        ("filter: (words(output) > 1) == (chars(output) > 2)", "(words(output) > 1) == (chars(output) > 2)"),
        ("filter: (words(output) > 1) != (not (chars(output) > 2))", "(words(output) > 1) != (not chars(output) > 2)"),
        ("x = -(-(words(output)))", "x = -(-words(output))"),
        ("x = 2 - (3 - words(output))", "x = 2 - (3 - words(output))"),
        ("x = -(2 * words(output))", "x = -(2 * words(output))"),
    ],
)
def test_fmt_writes_the_parentheses_precedence_needs(step, kept):
    src = doc(step)
    out = fmt(src)
    assert kept in out
    same_ir(src, out)


def test_strategy_to_text_writes_the_parentheses_too():
    from autodp_dsl import strategy_to_text

    for step in ("filter: (words(output) > 1) == (chars(output) > 2)", "x = -(-words(output))"):
        s = compile_text(doc(step), level="none").strategy
        assert compile_text(strategy_to_text(s), level="none").strategy == s


def test_fmt_keeps_an_empty_do_list():
    src = doc("where: words(output) > 3\n    do: []")
    out = fmt(src)
    assert "do: []" in out
    assert codes(out) == codes(src)


@pytest.mark.parametrize("text", ["one\u2028two", "a\nb\n\nc", "tab\there ", " lead", "nel\x85x", "p\u2029q\ufeff", "x\r\ny", "it's: #1", "- dash", "ünï 😀"])
def test_fmt_writes_descriptions_as_yaml_that_reads_back_the_same(text):
    src = HEAD + yaml.safe_dump({"description": text}, width=1 << 30) + "steps:\n  - clean.html(output)\n"
    assert yaml.safe_load(src)["description"] == text
    out = fmt(src)
    assert yaml.safe_load(out)["description"] == text
    assert compile_text(out).strategy.description == text


@pytest.mark.parametrize("lit", ['"\\u2028"', '"a\\x85b"', '"\\x00"', '"\\ufeff"', '"q\\"uote\\\\"', '"\\U0001F600é"'])
def test_fmt_writes_string_literals_that_survive_yaml(lit):
    src = doc(f"filter: output != {lit}")
    out = fmt(src)
    same_ir(src, out)


def test_column_names_that_yaml_reads_as_other_types_are_errors_not_merged():
    # `yes` is true and `1` is 1 in YAML; as Python keys true == 1, so one column silently vanished
    src = HEAD + "columns: {yes: str, output: str, 1: int}\nsteps:\n  - filter: words(output) > 1\n"
    assert codes(src) == ["invalid-document", "invalid-document"]
    assert format_source(src)[0] is None
    quoted = src.replace("yes:", "'yes':").replace("1:", "'1':")
    assert codes(quoted) == [] and yaml.safe_load(fmt(quoted))["columns"] == {"yes": "str", "output": "str", "1": "int"}


def test_fmt_quotes_list_items_that_flow_syntax_would_split():
    src = HEAD + 'require: ["a,b", "c]", "{d}", output]\ncolumns: {"a,b": str, "c]": str, "{d}": str, output: str, instruction: str}\n' \
        "steps:\n  - clean.html(output)\n"
    out = fmt(src)
    assert yaml.safe_load(out)["require"] == ["a,b", "c]", "{d}", "output"]
    assert list(yaml.safe_load(out)["columns"]) == ["a,b", "c]", "{d}", "output", "instruction"]


# ---------------------------------------------------------------- duplicate keys


@pytest.mark.parametrize(
    ("src", "where"),
    [
        (HEAD + "steps:\n  - clean.html(output)\nsteps:\n  - clean.whitespace(output)\n", (5, 1)),
        (doc("filter: words(output) > 3\n    filter: chars(output) > 3"), (5, 5)),
        (doc("where: words(output) > 3\n    do: [clean.html(output)]\n    do: [clean.whitespace(output)]"), (6, 5)),
        (HEAD + "name: u\nsteps:\n  - clean.html(output)\n", (3, 1)),
        (HEAD + "columns: {output: str, output: int}\nsteps:\n  - clean.html(output)\n", (3, 24)),
    ],
)
def test_duplicate_keys_are_located_errors(src, where):
    ds = [d for d in diags(src) if d.code == "duplicate-key"]
    assert len(ds) == 1 and (ds[0].line, ds[0].column) == where
    assert format_source(src)[0] is None  # fmt would collapse them: it refuses


# ---------------------------------------------------------------- bounds


def _bomb() -> str:
    """The issue's shape: a ~2 KB document whose aliases expand to a quarter of a million steps."""
    lines = [HEAD.rstrip("\n"), "x0: &x0 [" + ", ".join(["clean.html(output)"] * 9) + "]"]
    for i in range(1, 6):
        lines.append(f"x{i}: &x{i} [" + ", ".join([f"{{where: 'words(output) > {i}', do: *x{i - 1}}}"] * 9) + "]")
    lines.append("steps: *x5")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_rejected_before_it_expands(tmp_path):
    src = _bomb()
    assert len(src) < 2500
    ds = diags(src)
    assert [d.code for d in ds] == ["limit-exceeded"] and "aliases expand" in ds[0].message and ds[0].line > 1
    assert format_source(src)[0] is None
    f = tmp_path / "bomb.dp"
    f.write_text(src)
    r = _cli("fmt", "--write", str(f))
    assert r.returncode == 2 and f.read_text() == src


def test_a_recursive_alias_is_an_error():
    src = HEAD + "steps: &s\n  - where: words(output) > 1\n    do: *s\n"
    assert codes(src) == ["limit-exceeded"]


def test_aliases_within_the_bound_still_work():
    src = HEAD + "x: &c clean.html(output)\nsteps:\n  - *c\n  - clean.whitespace(output)\n"
    assert codes(src) == ["unknown-key"]


def test_document_size_is_bounded():
    src = doc("clean.html(output)", extra="description: " + "x" * (1 << 20) + "\n")
    ds = diags(src)
    assert [d.code for d in ds] == ["limit-exceeded"] and ds[0].line == 3
    assert codes(src, limits=Limits(document_bytes=2 << 20)) == []


def test_step_count_is_bounded():
    ok = doc(*[f"filter: words(output) > {i}" for i in range(500)])
    assert codes(ok) == []
    ds = diags(doc(*[f"filter: words(output) > {i}" for i in range(10_000)]))
    assert [d.code for d in ds] == ["limit-exceeded"] and ds[0].line == 4 + 500 and ds[0].step == "501"
    assert codes(doc("clean.html(output)", "clean.whitespace(output)"), limits=Limits(steps=1)) == ["limit-exceeded"]


def test_a_thousand_adjacent_filters_give_a_diagnostic_and_fewer_run():
    assert codes(doc(*[f"filter: words(output) > {i}" for i in range(1000)]), level="full") == ["limit-exceeded"]
    import polars as pl

    from autodp_dsl.lower import lower_strategy

    r = compile_text(doc(*[f"filter: words(output) > {i % 7}" for i in range(500)]), level="full")
    assert r.ok
    frame = pl.DataFrame({"instruction": ["q", "q"], "input": ["", ""], "output": ["a b c d e f g h", "a"]})
    assert lower_strategy(r.strategy, frame.lazy()).collect().height == 1


def _nested_where(depth: int) -> str:
    lines, pad = [], "  "
    for i in range(depth):
        lines.append(f"{pad}- where: words(output) > {i}\n{pad}  do:")
        pad += "    "
    lines.append(f"{pad}- clean.html(output)")
    return HEAD + "steps:\n" + "\n".join(lines) + "\n"


def test_where_nesting_is_bounded():
    assert codes(_nested_where(32)) == []
    ds = diags(_nested_where(33))
    assert [d.code for d in ds] == ["limit-exceeded"] and ds[0].line == 4 + 2 * 32 and "`where:` blocks nest" in ds[0].message
    ds = diags(_nested_where(300))  # deeper than the YAML bound itself: stopped before the steps are read
    assert [d.code for d in ds] == ["limit-exceeded"] and 4 + 2 * 32 < ds[0].line < 4 + 2 * 300
    assert format_source(_nested_where(300))[0] is None
    assert codes(_nested_where(3), limits=Limits(where_depth=2)) == ["limit-exceeded"]


@pytest.mark.parametrize("key", ["columns:", "require:", "description:", "stesp:", "x: &a"])
def test_yaml_nesting_is_bounded_for_every_key(key):
    src = HEAD + f"{key} " + "[" * 900 + "]" * 900 + "\nsteps:\n  - clean.html(output)\n"
    ds = diags(src)
    assert [d.code for d in ds] == ["limit-exceeded"] and ds[0].line == 3 and "nest more than 100" in ds[0].message
    assert format_source(src)[0] is None


@pytest.mark.parametrize("term, joiner", [("words(output) > 1", " and "), ("words(output)", " + "), ("chars(output) > 2", " or ")])
def test_long_expressions_give_a_diagnostic_not_a_recursion_error(term, joiner):
    expr = joiner.join([term] * 1000)
    step = f"filter: {expr}" if "+" not in joiner else f"x = {expr}"
    ds = diags(doc(step))
    assert [d.code for d in ds] == ["limit-exceeded"] and ds[0].line == 4
    assert ds[0].column == (13 if step.startswith("filter") else 5)  # the whole expression (or step)
    assert format_source(doc(step))[0] is None
    # within the bound (or with a higher one) the same shape compiles
    assert compile_text(doc(step.replace(expr, joiner.join([term] * 60)))).ok
    assert compile_text(doc(step.replace(expr, joiner.join([term] * 150))), limits=Limits(expr_depth=200)).ok


def test_deep_parentheses_and_signs_are_bounded():
    assert codes(doc("filter: " + "not " * 100 + "words(output) > 1")) == ["limit-exceeded"]
    assert codes(doc("x = " + "-(" * 100 + "words(output)" + ")" * 100)) == ["limit-exceeded"]
    assert codes(doc("filter: " + "(" * 500 + "words(output) > 1" + ")" * 500)) == []  # parentheses add no depth


@pytest.mark.parametrize("lit", ["12345678901234567890123456789012345678901", "9223372036854775808", "-9223372036854775809"])
def test_integer_literals_outside_int64_are_located_errors(lit):
    src = doc(f"filter: words(output) > {lit}")
    (d,) = diags(src)
    assert d.code == "out-of-range" and d.line == 4
    assert src.splitlines()[3][d.column - 1 : d.end_column - 1] == lit


def test_int64_bounds_and_huge_parameters():
    assert codes(doc("filter: words(output) > -9223372036854775808 and words(output) < 9223372036854775807")) == []
    src = doc("dedup.minhash(output, num_perm=12345678901234567890123456789012345678901)")
    (d,) = diags(src)
    assert d.code == "out-of-range" and src.splitlines()[3][d.column - 1 : d.end_column - 1].startswith("1234")
    assert codes(doc("filter: chars(output) > 1e309")) == ["out-of-range"]


def test_compile_with_a_41_digit_literal_is_one_located_error(tmp_path):
    f = tmp_path / "big.dp"
    f.write_text(doc("filter: words(output) > 12345678901234567890123456789012345678901"))
    r = _cli("compile", str(f))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "big.dp:4:29" in r.stderr and "out-of-range" in r.stderr


# ---------------------------------------------------------------- regex parameters


def test_regex_parameters_are_judged_by_polars():
    src = doc('clean.boilerplate_lines(output, patterns=["^Source -", "(?=x)"])')
    (d,) = diags(src)
    assert d.code == "invalid-parameter" and "look-around" in d.message
    assert src.splitlines()[3][d.column - 1 : d.end_column - 1].startswith("patterns=")
    assert codes(doc(r'clean.boilerplate_lines(output, patterns=["\\p{Lu}{3,}", "^(?i)source:"])')) == []
    assert codes(doc('clean.boilerplate_lines(output, patterns=["("])')) == ["invalid-parameter"]


def test_a_pattern_that_lints_clean_runs():
    import polars as pl

    from autodp_dsl.lower import lower_strategy

    r = compile_text(doc('clean.boilerplate_lines(output, patterns=["^\\\\p{Lu}+$"])'))
    assert r.ok and not r.diagnostics
    frame = pl.DataFrame({"instruction": ["q"], "input": [""], "output": ["HEADING\nbody text"]})
    assert lower_strategy(r.strategy, frame.lazy()).collect()["output"].to_list() == ["body text"]


PROBE = """
import sys
from autodp_dsl import compile_text
r = compile_text(sys.stdin.read(), level="none")
print(",".join(d.code for d in r.diagnostics) + "|" + str("polars.dataframe" in sys.modules))  # `polars` itself may be a lazy module
"""


def test_lint_imports_polars_only_for_a_regex_parameter(tmp_path):
    env = {**os.environ, "AUTODP_CACHE_DIR": str(tmp_path / "cache")}

    def probe(src):
        out = subprocess.run([sys.executable, "-c", PROBE], input=src, capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
        return out.stdout.strip()

    probe(doc("clean.html(output)"))  # builds the operator manifest
    assert probe(doc("clean.boilerplate_lines(output, min_rows=10)", "filter: words(output) > 2")) == "|False"
    assert probe(doc('clean.boilerplate_lines(output, patterns=["(?=x)"])')) == "invalid-parameter|True"


# ---------------------------------------------------------------- diagnostics


def test_invalid_utf8_is_reported_where_it_is(tmp_path):
    f = tmp_path / "u.dp"
    f.write_bytes(doc("filter: words(output) > 1", "clean.html(output)").encode() .replace(b"clean", b"cl\xc3\xa9\xffan"))
    (d,) = compile_file(f).diagnostics
    assert d.code == "invalid-encoding" and (d.line, d.column) == (5, 8)


def test_a_nul_byte_is_reported_where_it_is():
    src = doc("filter: words(output) > 1", "clean.html(output)é\x00")
    (d,) = diags(src)
    assert d.code == "yaml-syntax" and (d.line, d.column) == (5, 24) and "U+0000" in d.message


@pytest.mark.parametrize("kind", ["missing", "folder", "unreadable"])
def test_unreadable_files_get_a_file_level_diagnostic(tmp_path, kind, monkeypatch):
    f = tmp_path / "s.dp"
    if kind == "folder":
        f.mkdir()
    elif kind == "unreadable":
        f.write_text(doc("clean.html(output)"))
        f.chmod(0)
    as_root = kind == "unreadable" and os.access(f, os.R_OK)
    if as_root:  # permissions are not enforced for root: the read fails as it would for anyone else
        import pathlib

        def denied(self, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(pathlib.Path, "open", denied)
    (d,) = compile_file(f).diagnostics
    assert d.code == "unreadable-file" and d.line is None and d.column is None
    assert ":0" not in d.headline() and d.headline().startswith(f"{f}: error[unreadable-file]")
    if kind == "unreadable":
        assert "permission denied" in d.message
    if as_root:
        return
    r = _cli("lint", "--format", "json", str(f))
    assert r.returncode == 1 and json.loads(r.stdout)["diagnostics"][0]["line"] is None
    r = _cli("lint", str(f))
    assert ":0:0" not in r.stderr and "Traceback" not in r.stderr


def test_look_alike_column_names_are_named():
    cyrillic = "\u043eutput"  # о, not o
    (d,) = diags(doc(f"filter: words(`{cyrillic}`) > 1"))
    assert d.code == "unknown-column" and "looks like `output`" in d.message and "CYRILLIC SMALL LETTER O" in d.message
    # declared next to (or instead of) the real column of the data: a warning naming it
    ds = diags(doc("filter: words(output) > 1", extra=f"columns: {{{cyrillic}: str, instruction: str}}\n"),
               columns={"output": STR, "instruction": STR})
    assert [d.code for d in ds] == ["confusable-column"] and "`output`" in ds[0].message
    nfd, nfc = "cafe\u0301", "caf\u00e9"
    ds = diags(doc(f"filter: words(`{nfc}`) > 1"), columns={nfd: STR, nfc: STR, "instruction": STR, "output": STR})
    assert [(d.code, d.severity) for d in ds] == [("confusable-column", "warning")] and "`café`" in ds[0].message
    (d,) = diags(doc("clean.html(output)", extra=f"require: [{cyrillic}]\n"))
    assert d.code == "unknown-column" and any("looks like `output`" in h for h in d.hints)


def test_fmt_check_exit_codes(tmp_path):
    good, messy, broken = tmp_path / "good.dp", tmp_path / "messy.dp", tmp_path / "broken.dp"
    good.write_text(doc("filter: words(output) >= 5"))
    messy.write_text(doc("filter:   words( output )>=5"))
    broken.write_text(doc("filter: words(output >= 5"))
    assert _cli("fmt", "--check", str(good)).returncode == 0
    assert _cli("fmt", "--check", str(messy)).returncode == 1
    r = _cli("fmt", "--check", str(broken))
    assert r.returncode == 2 and "syntax-error" in r.stderr
    assert _cli("fmt", "--check", str(messy), str(broken)).returncode == 2
    assert _cli("fmt", "--check", str(tmp_path / "missing.dp")).returncode == 2


def test_run_shows_a_look_alike_column_warning(tmp_path):
    cyrillic = "\u043eutput"
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"instruction": "q", "output": "a b c", cyrillic: "x"}, ensure_ascii=False) + "\n" for _ in range(3)))
    strategy = tmp_path / "s.dp"
    strategy.write_text(doc(f"filter: words(`{cyrillic}`) > 0"))
    r = _cli("run", str(strategy), str(data), "-o", str(tmp_path / "out.jsonl"), "--no-cache", "--quiet")
    assert r.returncode == 0 and "confusable-column" in r.stderr and "looks like `output`" in r.stderr, r.stderr
