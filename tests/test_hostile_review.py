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


def test_cache_maintenance_does_not_create_a_cache_at_a_mistyped_path(work):
    """``autodp cache clear --cache /some/typo`` is a maintenance command: it should say there is no
    cache there (exit 1) rather than create the folder tree (FORMAT, lock, objects/, tmp/, memo/)
    and report "removed 0 entries". Likewise it must not chmod an existing empty folder of the
    user to 0700 and turn it into a cache."""
    rc = main(["cache", "clear", "--cache", str(work / "typo")])
    assert not (work / "typo").exists()
    assert rc == 1
    empty = work / "empty"
    empty.mkdir()
    empty.chmod(0o755)
    main(["cache", "clear", "--cache", str(empty)])
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
