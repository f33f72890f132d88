"""A hostile review of issue 12 ("nothing lost"): reproductions of the ways the ``autodp`` CLI still
destroys, overwrites or leaks user files, changes data silently or breaks its own rules.

Each test fails on the code it was written against and states in its docstring what should happen.
Everything runs in ``tmp_path``; the cache goes to a folder of the test (``AUTODP_CACHE_DIR``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autodp_dsl.cli import main

ROOT = Path(__file__).resolve().parent.parent

DP = """dp: 1
name: hostile
steps:
  - clean.whitespace(instruction, output)
  - filter: words(output) >= 3
  - dedup.exact(instruction, output)
"""


def _rows(n: int = 20) -> list[dict]:
    return [{"id": i, "instruction": f"question {i} about topic {i % 7}?", "output": f"this is the answer number {i} with words {i * 13}"}
            for i in range(n)]


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A strategy, a data file and a cache folder of this test; the working folder is ``tmp_path``."""
    monkeypatch.setenv("AUTODP_CACHE_DIR", str(tmp_path / "default-cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.dp").write_text(DP)
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    return tmp_path


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


# ---------------------------------------------------------------- outputs and the cache folder


def test_output_inside_a_cache_folder_that_does_not_exist_yet_is_refused(work):
    """``-o cache/x.jsonl --cache cache`` must be refused (exit 2) like it is once ``cache`` exists:
    the cache is read as an input and no output lands in it. Today the check only treats an
    *existing* folder as a folder, so the first run writes x.jsonl (and its sidecars and the outputs
    index) into the new cache folder, exit 0 -- and the same command is refused on the second run."""
    rc = main(["run", "s.dp", "d.jsonl", "-o", "cache/x.jsonl", "--cache", "cache", "-q"])
    assert rc == 2
    assert not (work / "cache" / "x.jsonl").exists()


def test_output_dot_in_an_empty_folder_leaves_no_stray_folder(work, capsys):
    """``-o .`` (with the sidecars elsewhere) in an empty working folder: either refused before
    anything is written or done; it must not fail half-way with a raw ``[Errno 16] Device or
    resource busy`` and leave a hidden ``..old.*`` folder in the user's folder."""
    sub = work / "e"
    sub.mkdir()
    os.chdir(sub)
    rc = main(["run", "../s.dp", "../d.jsonl", "-o", ".", "--dropped", "../dr.jsonl", "--quarantine", "../q.jsonl", "-q", "--no-cache"])
    err = capsys.readouterr().err
    left = sorted(p.name for p in sub.iterdir())
    assert rc == 2 or rc == 0, err
    assert not [n for n in left if n.startswith("..old.")], left
    assert "Errno" not in err


@pytest.mark.parametrize("argv", [["cache", "clear"], ["cache", "ls"], ["cache", "verify"], ["explain", "s.dp", "--data", "d.jsonl"]],
                         ids=["cache-clear", "cache-ls", "cache-verify", "explain"])
def test_inspection_and_maintenance_do_not_create_a_cache_at_a_mistyped_path(work, argv):
    """``autodp cache clear --cache /some/typo`` (or ``cache ls``, ``cache verify``, ``explain
    --cache``) should say there is no cache there rather than create the folder tree (FORMAT, lock,
    objects/, tmp/, memo/) and report "removed 0 entries" / "0 entries ok". Likewise they must not
    chmod an existing empty folder of the user to 0700 and turn it into a cache: only a run that
    stores results creates a cache."""
    main([*argv, "--cache", str(work / "typo")])
    assert not (work / "typo").exists()
    empty = work / "empty"
    empty.mkdir()
    empty.chmod(0o755)
    main([*argv, "--cache", str(empty)])
    assert list(empty.iterdir()) == []
    assert (empty.stat().st_mode & 0o777) == 0o755


# ---------------------------------------------------------------- rows and columns


def test_duplicate_keys_in_one_json_record_are_not_silently_collapsed(work, capsys):
    """A JSON record with the same key twice (``"output": "first", "output": "second"``) loses
    the earlier value without a word (the last one wins, exit 0, nothing quarantined). Every
    row-level problem should be a quarantined row with a reason -- or at least a reported change."""
    (work / "dup.jsonl").write_text(
        '{"instruction": "q1", "output": "first answer is long here", "output": "second answer long here"}\n'
        '{"instruction": "q2", "output": "another answer is long here"}\n')
    rc = main(["run", "s.dp", "dup.jsonl", "-o", "o.jsonl", "-q", "--no-cache"])
    err = capsys.readouterr().err
    quarantined = (work / "o.jsonl.quarantine.jsonl").read_text().splitlines()
    assert rc in (0, 1)
    assert len(quarantined) == 1 or "duplicate" in err.lower(), (err, quarantined)


# ---------------------------------------------------------------- search --out


def _search(work: Path, out: str, *extra: str) -> subprocess.CompletedProcess:
    data = work / "big.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(60)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTODP_CACHE_DIR": str(work / "default-cache"), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "autodp_dsl.cli", "search", str(data), "--out", out, "--max-finetunes", "1", "--no-final",
           "--noise-replicates", "0",  # else the band (8 fine-tunes) makes a budget of 1 a usage error
           "--rounds", "1", "--quiet", "--heldout", "5", "--final-heldout", "5", *extra]
    return subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, timeout=600)


def test_search_out_with_a_journal_subfolder_does_not_overwrite_the_users_reports(work):
    """A user's folder that happens to hold a ``journal/`` sub-folder (a diary, notes) is taken for
    an earlier search run: ``autodp search DATA --out notes`` (no --force) overwrites the user's
    ``notes/report.html`` and ``notes/report.json`` and writes into ``notes/journal/``. Only a
    folder autodp wrote (a journal with autodp's meta.json) may be reused; otherwise exit 2."""
    notes = work / "notes"
    (notes / "journal").mkdir(parents=True)
    (notes / "journal" / "day1.md").write_text("my diary\n")
    (notes / "report.html").write_text("<html>mine</html>\n")
    (notes / "report.json").write_text('{"mine": true}\n')
    before = _snapshot(notes)
    res = _search(work, "notes")
    after = _snapshot(notes)
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert changed == [], (changed, res.returncode, res.stderr[-500:])
    assert res.returncode == 2


def test_search_force_does_not_delete_user_files_in_journal(work):
    """``--force`` means "start over", yet ``Journal.clear`` unlinks *every* file in ``OUT/journal/``:
    with a ``journal/meta.json`` of any JSON (not autodp's), the user's ``journal/day1.md`` is
    deleted. autodp never deletes what it did not create: only its own journal files may go."""
    notes = work / "notes"
    (notes / "journal").mkdir(parents=True)
    (notes / "journal" / "day1.md").write_text("my diary\n")
    (notes / "journal" / "meta.json").write_text("{}\n")
    res = _search(work, "notes", "--force")
    assert (notes / "journal" / "day1.md").exists(), (res.returncode, res.stderr[-500:])


# ---------------------------------------------------------------- outputs: autodp's own bookkeeping names


@pytest.mark.parametrize("option", ["-o", "--report"])
def test_an_output_named_like_the_outputs_index_is_refused_before_anything_is_written(work, option):
    """``-o .autodp-outputs.json`` (or ``--report .autodp-outputs.json``) in a fresh folder passes the
    up-front check, the output is written, then recording it fails (exit 1, "is not autodp's index of
    outputs"): the run fails after writing, its sidecars are missing, and every later run into that
    folder is refused. The index's own name should be refused up front (exit 2), nothing written."""
    out = work / "f"
    out.mkdir()
    argv = ["run", "s.dp", "d.jsonl", "-q", "--no-cache"]
    argv += ["-o", "f/.autodp-outputs.json"] if option == "-o" else ["-o", "f/o.jsonl", "--report", "f/.autodp-outputs.json"]
    rc = main(argv)
    assert rc == 2
    assert sorted(p.name for p in out.iterdir()) == []


def test_a_datasets_folder_output_with_files_the_user_edited_is_not_replaced_without_force(work, capsys):
    """A file output edited since autodp wrote it counts as the user's (refused without --force);
    a datasets-folder output is judged by its marker's list of *names* only, so a user's edit to
    ``OUT/dataset_info.json`` (or a replaced arrow file) is deleted by the next run, exit 0. The
    folder's files should be recorded by identity like file outputs and an edited folder refused."""
    assert main(["run", "s.dp", "d.jsonl", "-o", "hfo", "-q", "--no-cache"]) == 0
    info = work / "hfo" / "dataset_info.json"
    info.write_text(info.read_text() + "\n# my hand-edited notes\n")
    rc = main(["run", "s.dp", "d.jsonl", "-o", "hfo", "-q", "--no-cache"])
    assert "my hand-edited notes" in info.read_text(), "the user's edit was deleted"
    assert rc == 2


# ---------------------------------------------------------------- the default cache folder


def test_the_evaluator_and_the_run_cache_can_share_the_default_cache_folder(work, capsys):
    """``autodp eval`` keeps its memo cache (answers/, arms/, pairs/, scores/, tokenizers/) in
    ``$AUTODP_CACHE_DIR`` -- the same default folder as the run cache. After one ``autodp eval`` on a
    fresh machine, every ``autodp run`` warns "not an autodp cache (... it holds 'answers')" and runs
    without a cache, forever. (Real reproduction: ``autodp eval A --baseline B --heldout-n 5`` then
    ``autodp run``; here the evaluator's own cache writer stands in for the 20 s of training.)"""
    from autodp_eval._cache import atomic_write_json, resolve_cache_dir

    atomic_write_json(resolve_cache_dir() / "answers" / "0123456789abcdef.json", ["an answer"])
    rc = main(["run", "s.dp", "d.jsonl", "-o", "o.jsonl", "-q"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "cannot use the cache" not in err, err


# ---------------------------------------------------------------- exit codes against docs/cli.md


def test_fmt_check_on_an_unreadable_file_exits_with_the_documented_code(work):
    """docs/cli.md said ``fmt`` exits 1 when "a file cannot be read" while docs/language.md and the
    code said 2. ``fmt --check`` keeps 1 for "needs formatting", so a file it could not check at
    all (missing, unreadable) is 2 -- the code and both pages now agree on that."""
    assert main(["fmt", "--check", "missing.dp"]) == 2
    cli = (ROOT / "docs" / "cli.md").read_text()
    row = next(line for line in cli.splitlines() if line.startswith("| `fmt` |"))
    assert "cannot be read" in row.split("|")[3] and "cannot be read" not in row.split("|")[2], row


@pytest.mark.parametrize("argv", [
    ["run", "s.dp", "d.jsonl", "-o", "o.jsonl", "-q", "--cache-max-size", "abc"],
    ["run", "s.dp", "d.jsonl", "-o", "o.jsonl", "-q", "--cache-max-size", "1e400"],
    ["run", "s.dp", "d.jsonl", "-o", "o.jsonl", "-q", "--max-row-bytes", "-1"],
    ["cache", "gc", "--max-size", "abc"],
    ["cache", "gc", "--max-size", "-5"],
], ids=["cache-max-size-abc", "cache-max-size-1e400", "max-row-bytes-negative", "gc-max-size-abc", "gc-max-size-negative"])
def test_out_of_domain_sizes_are_usage_errors(work, argv, capsys):
    """Bad sizes are bad arguments (exit 2, one line naming the option), like ``search``'s options
    are checked while parsing. Today: ``--cache-max-size abc`` -> exit 1 "could not convert string
    to float: 'abc'"; ``1e400`` -> exit 1 "OverflowError: cannot convert float infinity to integer";
    ``--max-row-bytes -1`` quarantines every row (exit 1, "no usable row"); ``cache gc --max-size abc``
    -> exit 1 blaming the cache ("cannot open cache"); ``cache gc --max-size -5`` -> exit 0 after
    evicting every entry."""
    assert main(["run", "s.dp", "d.jsonl", "-o", "warm.jsonl", "-q"]) == 0
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    opt = next(a for a in argv if a.startswith("--"))
    assert opt in err, err


# ---------------------------------------------------------------- failing after the output was written


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_a_report_path_that_cannot_be_written_fails_before_the_output_is_replaced(work, capsys):
    """The up-front check asks ``os.access`` whether ``--report``'s folder is writable; a folder
    that says yes and still refuses the file (``/proc``; likewise a read-only bind mount or an
    immutable folder for root) passes, the run writes ``-o`` and its sidecars, then fails on the
    report with a raw ``[Errno 2] No such file or directory: '/proc/.autodp-r.json.XXXX.tmp'``
    (exit 1). Expected: the output is not replaced when the run fails on one of its outputs
    (write every output to a temporary file first, commit them together), and one clear line."""
    rc = main(["run", "s.dp", "d.jsonl", "-o", "o.jsonl", "-q", "--no-cache", "--report", "/proc/autodp-r.json"])
    err = capsys.readouterr().err
    assert rc != 0
    assert not (work / "o.jsonl").exists(), "the output was written although the run failed"
    assert ".tmp" not in err, err


def test_a_csv_output_of_nested_columns_is_refused_before_the_run(work, capsys):
    """``-o out.csv`` with a list or struct column passes every check, runs every step, then fails
    with ``ComputeError: CSV format does not support nested data`` (exit 1): no output, no
    quarantine, no report, and an earlier run's sidecars stay next to nothing. The format's limits
    are known from the input's columns: refuse it before the run (exit 2, naming the column), or
    write the nested columns as JSON text and report that change."""
    (work / "n.jsonl").write_text("".join(json.dumps({**r, "tags": ["a", "b"]}) + "\n" for r in _rows(5)))
    rc = main(["run", "s.dp", "n.jsonl", "-o", "n.csv", "-q", "--no-cache"])
    err = capsys.readouterr().err
    assert "ComputeError" not in err, err
    assert rc == 2 or (rc == 0 and "tags" in err), (rc, err)


# ---------------------------------------------------------------- unbounded input


def _run_limited(work: Path, argv: list[str], address_space: int, timeout: int = 120) -> subprocess.CompletedProcess:
    """``autodp ARGV`` in a child process whose address space is capped (so that a reader that
    loads without bound fails here instead of eating the machine's memory)."""
    import resource

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTODP_CACHE_DIR": str(work / "default-cache"), "RUST_BACKTRACE": "0"}
    return subprocess.run([sys.executable, "-m", "autodp_dsl.cli", *argv], env=env, cwd=work, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=cap)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_an_input_that_never_ends_is_refused(work):
    """``DATA`` that is a character device (here ``z.jsonl -> /dev/zero``; ``/dev/urandom`` reads
    forever) is read without bound: exit 70 "internal error: MemoryError" under a 2 GiB cap (or
    the machine's memory without one). Outputs that are devices are refused; inputs should be too
    (exit 1, "not a regular file"), or read with a bound."""
    (work / "z.jsonl").symlink_to("/dev/zero")
    res = _run_limited(work, ["run", "s.dp", "z.jsonl", "-o", "o.jsonl", "-q", "--no-cache"], 2 * 1024**3, timeout=90)
    assert res.returncode == 1, (res.returncode, res.stderr[-400:])
    assert "internal error" not in res.stderr


def test_one_huge_line_is_quarantined_without_loading_it_whole(work):
    """Rows over ``--max-row-bytes`` (8 MiB) are to be quarantined, but the JSONL reader first loads
    the line: a 1 GiB file without a newline (sparse, no disk used) aborts the process inside
    Polars under a 3 GiB address-space cap (exit 134, a Rust panic backtrace on stderr, no quarantine
    file). Expected: the line is quarantined as row-too-large, memory bounded by the cap, and the
    run ends with the documented "no usable row" error (exit 1)."""
    with open(work / "huge.jsonl", "wb") as f:
        f.truncate(1024**3)
    res = _run_limited(work, ["run", "s.dp", "huge.jsonl", "-o", "o.jsonl", "-q", "--no-cache"], 3 * 1024**3)
    assert res.returncode == 1, (res.returncode, res.stderr[-400:])
    assert "row-too-large" in (work / "o.jsonl.quarantine.jsonl").read_text()


@pytest.mark.parametrize("case", ["into-the-input-folder", "onto-the-input-file"])
def test_search_cache_dir_is_checked_against_the_data(work, case):
    """``--out`` is checked against the data, ``--cache-dir`` is not. ``autodp search ds --cache-dir ds``
    (``ds`` a datasets folder) writes the evaluator's cache -- trained models, answers -- into the input
    folder (exit 3 after the search); ``autodp search d.jsonl --cache-dir d.jsonl`` fine-tunes and then
    ends with exit 4 "the baseline cannot be evaluated: NotADirectoryError" (a back-end failure) for
    what is a bad argument. Both should be refused up front (exit 2), the input left as it was."""
    data = work / "big.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(60)))
    if case == "into-the-input-folder":
        assert main(["run", "s.dp", "big.jsonl", "-o", "ds", "-q", "--no-cache"]) == 0
        target = "ds"
    else:
        target = "big.jsonl"
    before = _snapshot(work / target) if case == "into-the-input-folder" else {"": data.read_bytes()}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTODP_CACHE_DIR": str(work / "default-cache"), "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-m", "autodp_dsl.cli", "search", target, "--out", "sr", "--cache-dir", target,
                          "--max-finetunes", "1", "--no-final", "--rounds", "1", "--quiet", "--heldout", "5", "--final-heldout", "5"],
                         env=env, cwd=work, capture_output=True, text=True, timeout=600)
    after = _snapshot(work / target) if case == "into-the-input-folder" else {"": data.read_bytes()}
    assert res.returncode == 2, (res.returncode, res.stderr[-400:])
    assert after == before


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("argv", [["lint", "z.dp"], ["fmt", "--write", "z.dp"], ["run", "z.dp", "d.jsonl", "-o", "o.jsonl", "-q"],
                                  ["run", "z.json", "d.jsonl", "-o", "o.jsonl", "-q"]],
                         ids=["lint", "fmt-write", "run-dp", "run-ir-json"])
def test_the_document_size_bound_holds_while_reading(work, argv):
    """Documents are bounded (1 MiB by default), but the file is read whole before the bound is
    checked: a strategy that is a link to ``/dev/zero`` (or any multi-GiB file) ends in
    ``internal error: MemoryError`` (exit 70) under a 2 GiB cap. Read at most the bound plus one
    byte and report the located size diagnostic (lint exit 1, run/fmt exit 2)."""
    (work / "z.dp").symlink_to("/dev/zero")
    (work / "z.json").symlink_to("/dev/zero")
    res = _run_limited(work, argv, 2 * 1024**3, timeout=90)
    assert res.returncode in (1, 2), (res.returncode, res.stderr[-400:])
    assert "internal error" not in res.stderr


def _ir_with_steps(n: int) -> str:
    words = {"call": "words", "args": [{"col": "output", "type": "str"}], "params": {}, "type": "int"}
    steps = [{"filter": {"binop": ">=", "left": words, "right": {"lit": i % 3, "type": "int"}, "type": "bool"}} for i in range(n)]
    return json.dumps({"dp": 1, "ir_version": 1, "name": "many", "description": "", "columns": {}, "require": ["instruction", "output"], "steps": steps})


@pytest.mark.parametrize("command", ["run", "explain"])
def test_the_step_bound_also_holds_for_a_strategy_given_as_ir_json(work, command):
    """``run`` and ``explain`` take the strategy "as a .dp file (or the IR as .json)". The bounds of
    issue 12 (500 steps, 1 MiB) are enforced for .dp documents -- ``lint many.json`` refuses it --
    but the IR path skips them: a 3.6 MB IR of 20,000 steps *runs* (102 s, exit 0), and ``explain``
    of an IR of only 600 steps does not finish in 100 s. Expected for 600 steps: exit 2 with the
    same limit-exceeded diagnostic, at once, before any data is read."""
    (work / "many.json").write_text(_ir_with_steps(600))
    argv = ["run", "many.json", "d.jsonl", "-o", "o.jsonl", "-q", "--no-cache"] if command == "run" else ["explain", "many.json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTODP_CACHE_DIR": str(work / "default-cache")}
    try:
        res = subprocess.run([sys.executable, "-m", "autodp_dsl.cli", *argv], env=env, cwd=work, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"autodp {command} of a 600-step IR did not finish in 60 s")
    assert res.returncode == 2, res.stderr[-300:]
    assert not (work / "o.jsonl").exists()
