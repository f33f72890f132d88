"""``autodp eval``: the subcommand, its errors (one line, exit 2) and its output."""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from autodp_eval.cli import register, run
from autodp_eval.testing import FakeOpenAIServer

PKG = Path(__file__).resolve().parents[2] / "autodp_eval"


@pytest.fixture(autouse=True)
def _no_cache_in_the_repo(tmp_path, monkeypatch):
    """Runs without --cache-dir must not leave a cache in the working tree."""
    monkeypatch.setenv("AUTODP_CACHE_DIR", str(tmp_path / "env-cache"))


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="autodp")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["eval", *argv])
    assert args.func is run
    return args.func(args)


@pytest.fixture(scope="module")
def files(qa_split, tmp_path_factory):
    clean, corrupted, held = qa_split
    d = tmp_path_factory.mktemp("cli")
    for name, rows in (("clean", clean), ("corrupted", corrupted), ("held", held)):
        (d / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return d


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("autodp eval: error: ")
    return err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["missing.jsonl", "--baseline", "{d}/corrupted.jsonl"], "candidate file not found: missing.jsonl"),
        (["{d}/clean.jsonl", "--baseline", "{d}/none.jsonl"], "baseline file not found"),
        (
            ["{d}/clean.jsonl", "--baseline", "{d}/corrupted.jsonl", "--preset", "huge"],
            "unknown preset 'huge'",
        ),
        (
            ["{d}/clean.jsonl", "--baseline", "{d}/corrupted.jsonl", "--set", "train.epochs=0"],
            "invalid configuration: train.epochs",
        ),
        (
            ["{d}/clean.jsonl", "--baseline", "{d}/corrupted.jsonl", "--set", "nonsense"],
            "--set expects KEY=VALUE",
        ),
        (["{d}/clean.jsonl", "--baseline", "{d}/corrupted.jsonl", "--judge", "openai"], "needs a model name"),
        (
            ["{d}/clean.jsonl", "--baseline", "{d}/corrupted.jsonl", "--heldout-n", "5000"],
            "cannot hold out 5000",
        ),
        (
            ["{d}/clean.jsonl", "--baseline", "{d}/corrupted.jsonl", "--config", "{d}/nope.yaml"],
            "no such config file",
        ),
        (["{d}/held.jsonl", "--baseline", "{d}/bad.jsonl"], "bad.jsonl:1: invalid JSON"),
        (["{d}/clean.jsonl"], "give CANDIDATE and --baseline BASELINE (or --calibrate DATA)"),
        ([], "give CANDIDATE and --baseline"),
        (["{d}/clean.jsonl", "--calibrate", "{d}/clean.jsonl"], "--calibrate DATA takes no CANDIDATE"),
        (["--calibrate", "{d}/none.jsonl"], "calibration data file not found"),
        (["--calibrate", "{d}/clean.jsonl", "--comparisons", "1"], "at least 2 null comparisons"),
        (["--calibrate", "{d}/clean.jsonl", "--drop-fraction", "1.5"], "drop fraction must lie"),
        (
            ["{d}/clean.jsonl", "--baseline", "{d}/corrupted.jsonl", "--replicates", "0"],
            "invalid configuration: replicates",
        ),
    ],
)
def test_errors_exit_2_with_one_line(argv, message, files, capsys):
    (files / "bad.jsonl").write_text("{nope\n")
    assert cli([a.format(d=files) for a in argv]) == 2
    assert message in one_error_line(capsys)


def test_bad_config_file(files, capsys):
    (files / "cfg.yaml").write_text("train:\n  epochs: many\n")
    assert (
        cli(
            [
                str(files / "clean.jsonl"),
                "--baseline",
                str(files / "corrupted.jsonl"),
                "--config",
                str(files / "cfg.yaml"),
            ]
        )
        == 2
    )
    assert "invalid configuration: train.epochs" in one_error_line(capsys)


def test_run_prints_a_summary_and_json(files, tmp_path, capsys):
    common = [
        str(files / "clean.jsonl"),
        "--baseline",
        str(files / "corrupted.jsonl"),
        "--preset",
        "smoke",
        "--heldout",
        str(files / "held.jsonl"),
        "--set",
        "train.max_steps=4",
        "--cache-dir",
        str(tmp_path),
    ]
    assert cli([*common, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "win rate of the candidate" in out and "stage times" in out
    assert cli([*common, "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["from_cache"] is True and data["n"] == 60 and 0 <= data["win_rate"] <= 1
    assert "[eval]" in captured.err  # progress goes to stderr

    with FakeOpenAIServer(lambda req: '{"rationale": "same", "winner": "tie"}') as server:
        rc = cli(
            [
                *common,
                "--quiet",
                "--json",
                "--judge",
                "openai",
                "--base-url",
                server.base_url,
                "--model",
                "fake-judge",
                "--set",
                "judge.backoff_s=0.001",
            ]
        )
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["judge"] == "pairwise:fake-judge" and data["ties"] == 60 and data["win_rate"] == 0.5


def test_replicates_placebo_and_calibrate(files, tmp_path, capsys):
    common = [
        "--preset",
        "smoke",
        "--heldout",
        str(files / "held.jsonl"),
        "--set",
        "train.max_steps=3",
        "--set",
        "generate.enabled=false",
        "--cache-dir",
        str(tmp_path),
        "--quiet",
    ]
    rc = cli(
        [
            str(files / "clean.jsonl"),
            "--baseline",
            str(files / "corrupted.jsonl"),
            "--replicates",
            "2",
            "--placebo",
            *common,
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "2 paired replicates" in out and "placebo: the candidate" in out and "A/A" in out
    assert cli(["--calibrate", str(files / "clean.jsonl"), "--comparisons", "2", "--json", *common]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["comparisons"]) == 2 and data["dropped"] == 12 and data["win"]["detectable"] > 0
    assert cli(["--calibrate", str(files / "clean.jsonl"), "--comparisons", "2", *common]) == 0
    assert "smallest effect detectable" in capsys.readouterr().out


def test_every_question_failing_exits_1(files, tmp_path, capsys):
    with FakeOpenAIServer(lambda req: "no verdict here") as server:
        rc = cli(
            [
                str(files / "clean.jsonl"),
                "--baseline",
                str(files / "corrupted.jsonl"),
                "--preset",
                "smoke",
                "--heldout",
                str(files / "held.jsonl"),
                "--set",
                "train.max_steps=2",
                "--cache-dir",
                str(tmp_path),
                "--quiet",
                "--judge",
                "openai",
                "--base-url",
                server.base_url,
                "--model",
                "m",
                "--set",
                "judge.max_retries=0",
                "--set",
                "generate.max_new_tokens=2",
            ]
        )
    assert rc == 1
    captured = capsys.readouterr()
    assert "unparseable 60" in captured.out
    assert "no question could be judged (60 failures)" in captured.err


def test_entry_point_is_declared():
    eps = [ep for ep in entry_points(group="autodp.commands") if ep.name == "eval"]
    if not eps:
        pytest.skip("the autodp distribution's entry points are not installed in this environment")
    assert eps[0].value == "autodp_eval.cli:register"


def test_import_is_light():
    code = (
        "import sys, autodp_eval, autodp_eval.cli, autodp_eval.testing; "
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'tokenizers', 'openai', 'vllm') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PKG.parent
    ).stdout
    assert out.strip() == "[]"


def test_no_imports_from_the_language_or_the_search():
    forbidden = {"autodp_dsl", "stdlib_ops", "autodp_search"}
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in forbidden, f"{path.name} imports {n}"


# --------------------------------------------------------------- held-out checked before training


@pytest.fixture
def reached(monkeypatch):
    """Replaces evaluate() (where training starts) by a stand-in that records its held-out argument
    and stops the command as Ctrl-C would (exit 130): a list of the held-out arguments it got."""
    import autodp_eval._evaluate as ev

    calls = []

    def evaluate(candidate, baseline, heldout, *a, **kw):
        calls.append(heldout)
        raise KeyboardInterrupt

    monkeypatch.setattr(ev, "evaluate", evaluate)
    return calls


@pytest.mark.parametrize(
    ("rows", "argv", "message"),
    [
        # wrong columns: no questions
        ([{"question": "q?", "answer": "a"}], [], "held-out data {h} has no 'instruction' column; columns: answer, question"),
        # no reference answers, which the likelihood judge (the default) scores
        ([{"instruction": "q?"}], [], "held-out data {h} has no 'output' column; columns: instruction"),
        ([{"instruction": "q?", "output": ""}], [], "held-out data {h} has no reference answers in its 'output' column"),
        ([], [], "the held-out set {h} is empty"),
        # a pairwise judge compares the answers: references are optional
        ([{"instruction": "q?", "topic": "t"}], ["--judge", "openai", "--model", "m"], None),
        ([{"instruction": "q?", "output": "a"}], [], None),
    ],
)
def test_heldout_columns_are_checked_before_training(rows, argv, message, files, tmp_path, reached, capsys):
    h = tmp_path / "held.jsonl"
    h.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc = cli([str(files / "clean.jsonl"), "--baseline", str(files / "corrupted.jsonl"), "--heldout", str(h), "--quiet",
              *argv])
    if message is None:  # accepted: evaluate() gets the records, read once, every column kept
        assert rc == 130 and reached == [rows]
    else:
        assert rc == 2 and message.format(h=h) in one_error_line(capsys) and reached == []


# --------------------------------------------------------------- exit codes and the guard


def test_an_unexpected_error_is_one_line_with_the_internal_code(files, monkeypatch, capsys):
    import autodp_eval._evaluate as ev
    from autodp_eval.cli import INTERNAL

    def recurse(*a, **kw):
        return recurse(*a, **kw)

    monkeypatch.delenv("AUTODP_DEBUG", raising=False)
    monkeypatch.setattr(ev, "evaluate", recurse)
    assert cli([str(files / "clean.jsonl"), "--baseline", str(files / "corrupted.jsonl"), "--quiet"]) == INTERNAL
    line = one_error_line(capsys)
    assert "internal error: RecursionError: maximum recursion depth exceeded" in line
    assert line.endswith("(set AUTODP_DEBUG=1 for the traceback)")


@pytest.mark.parametrize("exc", [MemoryError(), ValueError("bad\nvalue")])
def test_python_m_autodp_eval_has_the_same_guard(exc, files, monkeypatch, capsys):
    import autodp_eval.cli as eval_cli
    from autodp_eval.__main__ import main

    def boom(args):
        raise exc

    monkeypatch.delenv("AUTODP_DEBUG", raising=False)
    monkeypatch.setattr(eval_cli, "run", boom)
    assert main(["eval", str(files / "clean.jsonl"), "--baseline", str(files / "corrupted.jsonl")]) == eval_cli.INTERNAL
    line = one_error_line(capsys)
    assert f"internal error: {type(exc).__name__}: " in line
    monkeypatch.setenv("AUTODP_DEBUG", "1")
    with pytest.raises(type(exc)):
        main(["eval", str(files / "clean.jsonl"), "--baseline", str(files / "corrupted.jsonl")])


def test_python_m_autodp_eval_usage_errors_are_one_line(capsys):
    from autodp_eval.__main__ import main

    assert main(["eval", "c.jsonl"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--baseline" in err and "Traceback" not in err
    assert main(["eval", "c.jsonl", "--baseline", "b.jsonl", "--heldout-n", "x"]) == 2
    assert "invalid int value: 'x'" in capsys.readouterr().err
