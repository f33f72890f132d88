"""One exit-code table for the whole ``autodp`` command, the evaluator's use of it and its docs;
the guard that turns an unexpected exception into one line; argparse's errors as one line."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autodp_backends import exitcodes
from autodp_dsl.cli import CORE, PLUGINS_FALLBACK, main

ROOT = Path(__file__).resolve().parents[1]
GUARD = re.compile(r"^error: internal error: (\w+): (.+) \(set AUTODP_DEBUG=1 for the traceback\)$")


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------- the table


def test_the_table_names_every_code():
    for name, code in exitcodes.TABLE.items():
        assert getattr(exitcodes, name) == code


def test_codes_are_distinct_and_fit_a_process_status():
    codes = list(exitcodes.TABLE.values())
    assert len(set(codes)) == len(codes)
    assert all(0 <= c <= 255 for c in codes) and exitcodes.OK == 0


def test_the_module_is_a_leaf():
    tree = ast.parse((ROOT / "autodp_backends" / "exitcodes.py").read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert all(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in imports)


def test_the_docs_state_the_table_for_every_command():
    doc = (ROOT / "docs" / "cli.md").read_text()
    rows = dict(re.findall(r"^\| (\d+) \| `([A-Z_]+)` \|", doc, re.M))
    assert {name: int(code) for code, name in rows.items()} == exitcodes.TABLE
    for command in (*CORE, *PLUGINS_FALLBACK):
        if command not in ("schema",):  # schema has no failure of its own
            assert f"| `{command}` |" in doc, command
    assert "docs/cli.md" in (ROOT / "README.md").read_text()


# ---------------------------------------------------------------- the guard


def _recurse(args):
    return _recurse(args)


def _raise(exc):
    def run(args):
        raise exc

    return run


@pytest.mark.parametrize(
    ("func", "kind", "message"),
    [
        (_raise(ValueError("boom\n  on a second line")), "ValueError", "boom on a second line"),
        (_recurse, "RecursionError", "maximum recursion depth exceeded"),
        (_raise(MemoryError()), "MemoryError", "(no message)"),
        (_raise(KeyError("k")), "KeyError", "'k'"),
    ],
)
def test_an_unexpected_exception_is_one_line(func, kind, message, monkeypatch, capsys, tmp_path):
    import autodp_dsl.commands.language as language

    monkeypatch.delenv("AUTODP_DEBUG", raising=False)
    monkeypatch.setattr(language, "run_lint", func)
    assert main(["lint", str(tmp_path / "x.dp")]) == exitcodes.INTERNAL
    m = GUARD.match(one_line(capsys.readouterr().err))
    assert m and m.group(1) == kind and m.group(2).startswith(message), m


def test_the_guard_covers_every_command(monkeypatch, capsys, tmp_path):
    import autodp_dsl.commands.run as run_cmd
    import autodp_search.cli as search_cli

    monkeypatch.delenv("AUTODP_DEBUG", raising=False)
    monkeypatch.setattr(search_cli, "run", _raise(TypeError("search bug")))
    assert main(["search", str(tmp_path / "d.jsonl")]) == exitcodes.INTERNAL
    assert GUARD.match(one_line(capsys.readouterr().err))
    monkeypatch.setattr(run_cmd, "run", _raise(AttributeError("run bug")))
    assert main(["run", "s.dp", "d.jsonl", "-o", str(tmp_path / "o.jsonl")]) == exitcodes.INTERNAL
    assert GUARD.match(one_line(capsys.readouterr().err))


def test_autodp_debug_shows_the_traceback(monkeypatch, tmp_path):
    import autodp_dsl.commands.language as language

    monkeypatch.setenv("AUTODP_DEBUG", "1")
    monkeypatch.setattr(language, "run_lint", _raise(ValueError("boom")))
    with pytest.raises(ValueError, match="boom"):
        main(["lint", str(tmp_path / "x.dp")])


def test_interrupted(monkeypatch, capsys, tmp_path):
    import autodp_dsl.commands.language as language

    monkeypatch.setattr(language, "run_lint", _raise(KeyboardInterrupt()))
    assert main(["lint", str(tmp_path / "x.dp")]) == exitcodes.INTERRUPTED
    assert one_line(capsys.readouterr().err) == "interrupted"


# ---------------------------------------------------------------- argparse's own errors


@pytest.mark.parametrize(
    "argv",
    [["nope"], ["lint"], ["fmt", "--write", "--check", "a.dp"], ["run", "s.dp"], ["cache", "wipe"],
     ["search", "d.jsonl", "--rounds", "three"], ["eval", "c.jsonl", "--replicates", "x"], ["lint", "a.dp", "--bogus"]],
)
def test_usage_errors_are_one_line_with_code_2(argv, capsys):
    assert main(argv) == exitcodes.USAGE
    line = one_line(capsys.readouterr().err)
    assert line.startswith("error: autodp") and line.endswith("--help`)")


@pytest.mark.parametrize("command", ["lint", "compile"])
@pytest.mark.parametrize(("option", "said"), [(["--columns", "a:nosuchtype"], "error: --columns: unknown type 'nosuchtype'"),
                                             (["--data", "nope.jsonl"], "error: cannot read the columns of nope.jsonl")])
def test_unusable_input_columns_are_a_usage_error_in_one_line(command, option, said, capsys, tmp_path):
    """--data / --columns are resolved before the command runs (lsp's case: tests/lsp/test_analysis.py)."""
    dp = tmp_path / "s.dp"
    dp.write_text("steps:\n  - filter: words(output) > 3\n")
    assert main([command, str(dp), *option]) == exitcodes.USAGE
    assert one_line(capsys.readouterr().err).startswith(said)


def test_eval_without_a_baseline_is_a_usage_error_in_one_line(capsys):
    # --baseline is optional for argparse since `--calibrate DATA` needs none; eval says what it needs
    assert main(["eval", "c.jsonl"]) == exitcodes.USAGE
    assert "give CANDIDATE and --baseline" in one_line(capsys.readouterr().err)


def test_help_and_version_exit_0(capsys):
    assert main(["--version"]) == exitcodes.OK
    assert main(["search", "--help"]) == exitcodes.OK
    assert "--max-finetunes" in capsys.readouterr().out


def test_the_process_status_is_the_code(tmp_path):
    """The console script's real exit status, through a subprocess."""
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n')
    r = subprocess.run([sys.executable, "-m", "autodp_dsl.cli", "search", str(data), "--rounds", "-1",
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == exitcodes.USAGE and "--rounds: must be at least 1" in one_line(r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl"]
