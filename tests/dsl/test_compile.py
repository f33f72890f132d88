"""The front end: parsing, type checking, locations, IR round-trip, CLI behaviour."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autodp_dsl import compile_text, format_source, json_schema, strategy_to_text
from autodp_dsl.ir import Strategy
from autodp_dsl.types import FLOAT, INT, STR


def doc(*steps: str, extra: str = "") -> str:
    body = "\n".join(f"  - {s}" for s in steps)
    return f"dp: 1\nname: t\n{extra}steps:\n{body}\n"


def codes(src: str, **kw) -> list[str]:
    return [d.code for d in compile_text(src, **kw).diagnostics]


def test_valid_strategy_compiles_to_typed_ir():
    r = compile_text(doc("filter: words(output) >= 5 and chars(output) < 100", "score = words(output) / 2", "dedup.exact(instruction, output)"))
    assert r.ok, r.diagnostics
    f, a, d = r.strategy.steps
    assert str(f.predicate.type) == "bool"
    assert a.value.type == FLOAT
    assert d.op == "dedup.exact" and dict(d.params) == {"ignore_whitespace": True, "lowercase": False}  # defaults filled


def test_error_location_points_inside_the_step_string():
    src = doc("filter: words(ouput) >= 5")
    (d,) = compile_text(src).diagnostics
    assert d.code == "unknown-column"
    line = src.splitlines()[d.line - 1]
    assert line[d.column - 1 : d.end_column - 1] == "ouput"
    assert any("output" in h for h in d.hints)


def test_location_inside_quoted_yaml_scalar():
    src = doc("'filter: x'", extra="").replace("'filter: x'", "\"dedup.exact(outptu)\"")
    (d,) = compile_text(src).diagnostics
    line = src.splitlines()[d.line - 1]
    assert line[d.column - 1 : d.end_column - 1] == "outptu"


def test_all_errors_in_one_pass():
    src = doc("filter: words(ouput) >= 5", "frobnicate(output)", "dedup.exact(output, lowercas=true)", "filter: chars(output) > \"x\"")
    got = codes(src)
    assert got == ["unknown-column", "unknown-op", "unknown-parameter", "type-mismatch"]


@pytest.mark.parametrize(
    ("step", "code"),
    [
        ("words(output)", "wrong-op-kind"),
        ("filter: dedup.exact(output)", "wrong-op-kind"),
        ("filter: chars() > 1", "missing-argument"),
        ("filter: chars(output, input) > 1", "too-many-arguments"),
        ("dedup.exact(output, lowercase=\"yes\")", "invalid-parameter-type"),
        ("dedup.exact(output, lowercase=instruction)", "non-literal-parameter"),
        ("dedup.exact(output, lowercase=true, lowercase=false)", "duplicate-parameter"),
        ("filter: words(output)", "type-mismatch"),
        ("filter: not words(output)", "type-mismatch"),
        ("x = output * 2", "type-mismatch"),
        ("filter: words(output) >=", "syntax-error"),
        ("__x = 1", "reserved-name"),
        ("output = words(output)", "lost-required-column"),
    ],
)
def test_error_codes(step, code):
    assert code in codes(doc(step))


def test_global_op_inside_where_is_rejected():
    src = "dp: 1\nname: t\nsteps:\n  - where: words(output) < 3\n    do:\n      - dedup.exact(output)\n"
    assert codes(src) == ["global-in-where"]


def test_where_block_columns_are_visible_after_the_block():
    src = "dp: 1\nname: t\nsteps:\n  - where: words(output) < 3\n    do:\n      - s = words(output)\n  - filter: s > 0 or words(output) >= 3\n"
    assert compile_text(src).ok


def test_columns_from_data_replace_the_default():
    src = doc("filter: score > 0.5 and chars(question) > 3")
    assert "unknown-column" in codes(src)
    r = compile_text(src, columns={"question": STR, "answer": STR, "score": FLOAT})
    assert r.ok, r.diagnostics


def test_declared_columns_and_require():
    src = doc("filter: n > 1", extra="columns:\n  output: str\n  n: int\nrequire: [output]\n")
    r = compile_text(src)
    assert r.ok and dict(r.strategy.columns)["n"] == INT and r.strategy.require == ("output",)


def test_warnings_do_not_fail():
    r = compile_text(doc("filter: 1 < 2"))
    assert r.ok and [d.code for d in r.diagnostics] == ["constant-predicate"]


def test_ir_round_trips_through_json():
    r = compile_text(doc("filter: words(output) >= 5", "where: chars(output) < 10\n    do:\n      - s = -words(output) * 2.5"))
    assert r.ok
    j = json.loads(json.dumps(r.strategy.to_json()))
    assert Strategy.from_json(j) == r.strategy


def test_strategy_to_text_recompiles_to_the_same_ir():
    r = compile_text(doc("filter: (words(output) + 1) * 2 >= 5 or not chars(instruction) > 3", "dedup.exact(instruction + \" \" + output)"))
    again = compile_text(strategy_to_text(r.strategy))
    assert again.ok and again.strategy == r.strategy


def test_fmt_is_canonical_and_idempotent():
    messy = "dp: 1\nname:   t\nsteps:\n  -   filter:   words( output )>=5\n  - \"dedup.exact(output,lowercase = true)\"\n"
    out, diags = format_source(messy)
    assert not diags
    assert out == "dp: 1\nname: t\nsteps:\n  - filter: words(output) >= 5\n  - dedup.exact(output, lowercase=true)\n"
    assert format_source(out)[0] == out


def test_nothing_raises_on_garbage():
    for src in ["", "\x00", "[", "dp: 1\nsteps: 3", "dp: 1\nsteps:\n  - {filter: [1]}", "dp: 1\nsteps:\n  - 12", "a: !!python/object:os.system x"]:
        compile_text(src)


def test_json_schema_is_valid_json_with_step_defs():
    s = json_schema()
    assert s["$defs"]["step"]["oneOf"][0]["type"] == "string"
    json.dumps(s)


def _cli(*args, input_text=None):
    return subprocess.run([sys.executable, "-m", "autodp_dsl.cli", *args], capture_output=True, text=True, input=input_text, timeout=60)


def test_cli_lint_exit_codes_and_json(tmp_path):
    good, bad = tmp_path / "good.dp", tmp_path / "bad.dp"
    good.write_text(doc("filter: words(output) >= 5"))
    bad.write_text(doc("filter: words(ouput) >= 5"))
    assert _cli("lint", str(good)).returncode == 0
    r = _cli("lint", str(bad), "--format", "json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["diagnostics"][0]["code"] == "unknown-column" and out["diagnostics"][0]["line"] == 4
    r = _cli("lint", str(bad))
    assert "^^^^^" in r.stderr and "Traceback" not in r.stderr
    r = _cli("lint", str(tmp_path / "missing.dp"))
    assert r.returncode == 1 and "cannot read" in r.stderr and "Traceback" not in r.stderr


def test_cli_compile_fmt_schema_ops(tmp_path):
    f = tmp_path / "s.dp"
    f.write_text(doc("filter: words(output) >= 5"))
    r = _cli("compile", str(f))
    assert r.returncode == 0 and "== IR ==" in r.stdout and "FILTER" in r.stdout
    r = _cli("fmt", "--check", str(f))
    assert r.returncode == 0
    assert json.loads(_cli("schema").stdout)["title"] == ".dp strategy"
    r = _cli("ops")
    assert "words" in r.stdout
    r = _cli("ops", "words")
    assert r.returncode == 0 and "words(text: str) -> int" in r.stdout
    r = _cli("ops", "wrods")
    assert r.returncode == 1 and "did you mean" in r.stderr


def test_language_core_does_not_import_heavy_modules():
    code = (
        "import sys; import autodp_dsl; from autodp_dsl import compile_text; "
        "compile_text('dp: 1\\nname: t\\nsteps:\\n  - filter: words(output) > 1\\n'); "
        "bad = [m for m in ('torch', 'transformers', 'openai', 'peft', 'vllm') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""
