"""Output safety (issue 12): autodp never deletes or overwrites what it did not write, never writes onto
its input, keeps modes, symlinks and hard links, and checks every output before writing any."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import polars as pl
import pytest

from autodp_dsl.atomic import RefusedWrite, write_bytes_atomic, write_text_atomic
from autodp_dsl.cli import main
from autodp_dsl.outputs import INDEX, MARKER, is_ours, write_data

DP = """dp: 1
name: outputs-test
steps:
  - filter: chars(output) >= 12
"""

ROOT = os.geteuid() == 0


@pytest.fixture
def files(tmp_path):
    rows = [{"instruction": f"question {i}", "output": "long enough answer" if i % 3 else "short"} for i in range(12)]
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    dp = tmp_path / "s.dp"
    dp.write_text(DP)
    return tmp_path, data, dp


def run(dp, data, *args):
    return main(["run", str(dp), str(data), "--no-cache", "-q", *map(str, args)])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def tree(root):
    """Every path under ``root``: kind, mode and bytes (or link target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            body = os.readlink(p) if stat.S_ISLNK(st.st_mode) else Path(p).read_bytes() if stat.S_ISREG(st.st_mode) else None
            out[os.path.relpath(p, root)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), body)
    return out


# ---------------------------------------------------------------- the reproductions of the issue


@pytest.mark.parametrize("force", [False, True])
def test_existing_folder_with_files_is_never_deleted(files, capsys, force):
    tmp, data, dp = files
    victim = tmp / "project"
    (victim / ".git" / "objects").mkdir(parents=True)
    (victim / ".git" / "objects" / "ab").write_text("blob")
    (victim / "notes.txt").write_text("mine")
    before = tree(tmp)
    assert run(dp, data, "-o", victim, *(["--force"] if force else [])) == 2
    assert "did not write" in one_error_line(capsys)
    assert tree(tmp) == before


def test_existing_file_without_data_suffix_is_not_moved_aside(files, capsys):
    tmp, data, dp = files
    notes = tmp / "notes"
    notes.write_text("my notes")
    before = tree(tmp)
    assert run(dp, data, "-o", notes) == 2
    assert "--force" in one_error_line(capsys)
    assert tree(tmp) == before  # no hidden .notes.old.PID either
    assert run(dp, data, "-o", notes, "--force") == 0  # asked for: the file becomes a datasets folder
    assert (notes / MARKER).is_file() and not [p for p in os.listdir(tmp) if ".old." in p]


@pytest.mark.parametrize("opt", ["-o", "--dropped", "--quarantine", "--report"])
def test_no_output_onto_the_input(files, capsys, opt):
    tmp, data, dp = files
    before = tree(tmp)
    args = ["-o", tmp / "out.jsonl"] if opt != "-o" else []
    assert run(dp, data, *args, opt, data, "--force") == 2
    assert "input" in one_error_line(capsys)
    assert tree(tmp) == before


def test_no_output_onto_the_strategy(files, capsys):
    tmp, data, dp = files
    assert run(dp, data, "-o", tmp / "out.jsonl", "--report", dp, "--force") == 2
    assert "is the strategy" in one_error_line(capsys)
    assert dp.read_text() == DP


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_no_output_onto_a_link_to_the_input(files, capsys, link):
    tmp, data, dp = files
    alias = tmp / "alias.jsonl"
    (os.symlink if link == "symlink" else os.link)(data, alias)
    before = tree(tmp)
    assert run(dp, data, "-o", alias, "--force") == 2
    assert "input" in one_error_line(capsys)
    assert tree(tmp) == before


def test_report_equal_to_output_is_refused_before_anything_is_written(files, capsys):
    tmp, data, dp = files
    out = tmp / "out.jsonl"
    assert run(dp, data, "-o", out, "--report", out) == 2
    assert "same file" in one_error_line(capsys)
    assert not out.exists() and not (tmp / "out.jsonl.dropped.jsonl").exists()


def test_two_sidecars_on_one_file_are_refused(files, capsys):
    tmp, data, dp = files
    assert run(dp, data, "-o", tmp / "out.jsonl", "--dropped", tmp / "x.jsonl", "--quarantine", tmp / "x.jsonl") == 2
    assert "same file" in one_error_line(capsys)
    assert not (tmp / "out.jsonl").exists()


def test_output_inside_an_input_folder_is_refused(files, capsys):
    tmp, data, dp = files
    hf = tmp / "in_hf"
    write_data(pl.DataFrame({"instruction": ["q a"], "output": ["long enough answer"]}), hf)
    before = tree(tmp)
    assert run(dp, hf, "-o", hf / "out.parquet") == 2
    assert "inside the input" in one_error_line(capsys)
    assert tree(tmp) == before


def test_no_output_into_the_cache_folder(files, capsys):
    tmp, data, dp = files
    cache = tmp / "cache"
    assert main(["run", str(dp), str(data), "-o", str(tmp / "out.jsonl"), "--cache", str(cache), "-q"]) == 0
    before = tree(cache)
    for out in (cache, cache / "x.jsonl"):
        assert main(["run", str(dp), str(data), "-o", str(out), "--cache", str(cache), "-q", "--force"]) == 2
        assert "cache folder" in one_error_line(capsys)
    assert tree(cache) == before


def test_special_files_are_refused_even_with_force(files, capsys):
    tmp, data, dp = files
    fifo = tmp / "full"
    os.mkfifo(fifo)
    for name in (fifo, tmp / "full.jsonl"):
        if name != fifo:
            os.mkfifo(name)
        assert run(dp, data, "-o", name, "--force") == 2  # returns: the fifo is never opened
        assert "fifo" in one_error_line(capsys)
        assert stat.S_ISFIFO(os.lstat(name).st_mode)


def test_a_device_node_is_refused_even_with_force(files, capsys):
    """The issue's ``-o /dev/full`` as root, on a device node made in the test's folder."""
    tmp, data, dp = files
    dev = tmp / "full"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    except (PermissionError, AttributeError):
        pytest.skip("cannot make a device node here")
    assert run(dp, data, "-o", dev, "--force") == 2
    assert "character device" in one_error_line(capsys)
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


# ---------------------------------------------------------------- earlier outputs are ours


@pytest.mark.parametrize("name", ["out.jsonl", "out.parquet", "out.json", "out_folder"])
def test_rerun_onto_its_own_output_needs_no_force(files, name):
    tmp, data, dp = files
    out = tmp / name
    assert run(dp, data, "-o", out) == 0
    assert is_ours(out)
    assert run(dp, data, "-o", out) == 0
    assert not [p for p in os.listdir(tmp) if ".old." in p or p.endswith(".tmp")]


def test_an_output_changed_since_is_no_longer_ours(files, capsys):
    tmp, data, dp = files
    out = tmp / "out.jsonl"
    assert run(dp, data, "-o", out) == 0
    out.write_text('{"hand": "edited"}\n')
    assert run(dp, data, "-o", out) == 2
    assert "--force" in one_error_line(capsys)
    assert out.read_text() == '{"hand": "edited"}\n'


def test_a_file_added_to_an_output_folder_keeps_it_from_being_replaced(files, capsys):
    tmp, data, dp = files
    out = tmp / "ds"
    assert run(dp, data, "-o", out) == 0
    (out / "mine.txt").write_text("keep me")
    assert run(dp, data, "-o", out, "--force") == 2
    one_error_line(capsys)
    assert (out / "mine.txt").read_text() == "keep me"


def test_a_foreign_file_named_like_the_index_is_not_overwritten(files, capsys):
    tmp, data, dp = files
    (tmp / INDEX).write_text("my own file")
    assert run(dp, data, "-o", tmp / "out.jsonl") == 2
    assert "index" in one_error_line(capsys)
    assert (tmp / INDEX).read_text() == "my own file"


def test_existing_foreign_data_file_needs_force(files, capsys):
    tmp, data, dp = files
    out = tmp / "out.jsonl"
    out.write_text("precious\n")
    assert run(dp, data, "-o", out) == 2
    one_error_line(capsys)
    assert out.read_text() == "precious\n"
    assert run(dp, data, "-o", out, "--force") == 0
    assert out.read_text() != "precious\n"


# ---------------------------------------------------------------- links and modes


def test_hard_linked_output_is_refused_without_force(files, capsys):
    tmp, data, dp = files
    out = tmp / "out.jsonl"
    assert run(dp, data, "-o", out) == 0
    twin = tmp / "twin.jsonl"
    os.link(out, twin)
    old = twin.read_bytes()
    assert run(dp, data, "-o", out) == 2  # the hard link changed nothing the index knows, but splitting it is refused
    assert "hard links" in one_error_line(capsys)
    assert run(dp, data, "-o", out, "--force") == 0
    assert twin.read_bytes() == old and os.stat(out).st_nlink == 1


def test_symlinked_output_is_written_through(files):
    tmp, data, dp = files
    (tmp / "real").mkdir()
    link = tmp / "link.jsonl"
    os.symlink(tmp / "real" / "out.jsonl", link)
    assert run(dp, data, "-o", link, "--dropped", tmp / "d.jsonl") == 0
    assert link.is_symlink() and (tmp / "real" / "out.jsonl").stat().st_size > 0
    assert run(dp, data, "-o", link, "--dropped", tmp / "d.jsonl") == 0  # the target is an earlier output
    assert link.is_symlink()


def test_mode_of_an_output_is_kept(files):
    tmp, data, dp = files
    out = tmp / "out.parquet"
    assert run(dp, data, "-o", out) == 0
    os.chmod(out, 0o640)
    assert run(dp, data, "-o", out) == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o640


def test_streaming_run_follows_the_same_rules(files, capsys):
    tmp, data, dp = files
    out = tmp / "s.parquet"
    out.write_bytes(b"not ours")
    assert run(dp, data, "-o", out, "--streaming") == 2
    one_error_line(capsys)
    assert out.read_bytes() == b"not ours"
    out.unlink()
    link = tmp / "link.parquet"
    os.symlink(out, link)
    assert run(dp, data, "-o", link, "--streaming") == 0
    os.chmod(out, 0o604)
    assert run(dp, data, "-o", link, "--streaming") == 0
    assert link.is_symlink() and stat.S_IMODE(os.stat(out).st_mode) == 0o604
    assert pl.read_parquet(out).height == 8


# ---------------------------------------------------------------- checked up front, no stale sidecars


def test_unwritable_report_fails_before_the_output_is_replaced(files, capsys):
    tmp, data, dp = files
    out = tmp / "out.jsonl"
    assert run(dp, data, "-o", out) == 0
    before = out.read_bytes()
    (tmp / "afile").write_text("x")
    assert run(dp, data, "-o", out, "--report", tmp / "afile" / "r.json") == 2
    assert "not a folder" in one_error_line(capsys)
    assert out.read_bytes() == before


@pytest.mark.skipif(ROOT, reason="root writes into read-only folders")
def test_read_only_report_folder_fails_before_the_output_is_written(files, capsys):
    tmp, data, dp = files
    ro = tmp / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert run(dp, data, "-o", tmp / "out.jsonl", "--report", ro / "r.json") == 1
        assert "does not take new files" in one_error_line(capsys)
        assert not (tmp / "out.jsonl").exists()
    finally:
        ro.chmod(0o700)


def test_stale_quarantine_sidecar_does_not_survive(files):
    tmp, data, dp = files
    out = tmp / "out.jsonl"
    assert run(dp, data, "-o", out) == 0
    assert pl.read_ndjson(str(out) + ".quarantine.jsonl").height == 1  # the broken line
    clean = tmp / "clean.jsonl"
    clean.write_text(json.dumps({"instruction": "q", "output": "long enough answer"}) + "\n")
    assert run(dp, clean, "-o", out) == 0
    assert (tmp / "out.jsonl.quarantine.jsonl").read_bytes() == b""  # this run's: nothing quarantined


# ---------------------------------------------------------------- the atomic writer itself (fmt uses it)


def test_atomic_write_refuses_folders_and_special_files(tmp_path):
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "f")
    for p in ("d", "f"):
        with pytest.raises(RefusedWrite):
            write_bytes_atomic(tmp_path / p, b"x")
    assert (tmp_path / "d").is_dir() and stat.S_ISFIFO(os.lstat(tmp_path / "f").st_mode)


def test_atomic_write_keeps_mode_symlink_and_hard_links(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    real.chmod(0o644)
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new" and stat.S_IMODE(real.stat().st_mode) == 0o644
    os.link(real, tmp_path / "twin.txt")
    with pytest.raises(RefusedWrite, match="hard links"):
        write_text_atomic(real, "newer")
    assert (tmp_path / "twin.txt").read_text() == "new"


UNFORMATTED = "dp: 1\nname: x\nsteps:\n  - filter:   chars(output) >= 3\n"


def test_fmt_write_keeps_mode_and_symlink_and_refuses_to_split_hard_links(tmp_path, capsys):
    real = tmp_path / "s.dp"
    real.write_text(UNFORMATTED)
    real.chmod(0o664)
    link = tmp_path / "link.dp"
    link.symlink_to(real)
    assert main(["fmt", "--write", str(link)]) == 0
    assert link.is_symlink() and real.read_text() != UNFORMATTED and stat.S_IMODE(real.stat().st_mode) == 0o664
    real.write_text(UNFORMATTED)
    os.link(real, tmp_path / "twin.dp")
    assert main(["fmt", "--write", str(real)]) == 1
    assert "hard links" in one_error_line(capsys)
    assert real.read_text() == UNFORMATTED
    assert main(["fmt", "--write", "--force", str(real)]) == 0
    assert (tmp_path / "twin.dp").read_text() == UNFORMATTED and real.read_text() != UNFORMATTED


# ---------------------------------------------------------------- search --out


def test_search_out_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n')
    out = tmp_path / "proj"
    (out / ".git").mkdir(parents=True)
    before = tree(tmp_path)
    assert main(["search", str(data), "--out", str(out), "--force"]) == 2
    assert "not an autodp search run" in one_error_line(capsys)
    assert main(["search", str(data), "--out", str(tmp_path)]) == 2  # the data is inside --out
    assert "inside --out" in one_error_line(capsys)
    (tmp_path / "f").write_text("x")
    assert main(["search", str(data), "--out", str(tmp_path / "f")]) == 2
    assert "not a folder" in one_error_line(capsys)
    before["f"] = tree(tmp_path)["f"]
    assert tree(tmp_path) == before


_LOOP = """
import sys
from autodp_dsl.cli import main
rcs = [main(["run", sys.argv[1], sys.argv[2], "-o", sys.argv[3], "--no-cache", "-q"]) for _ in range(6)]
print(rcs)
"""


def test_concurrent_runs_onto_one_output_both_succeed(files):
    """Two runs re-writing the same output: each sees the other's file as autodp's (the check, the
    write and the index update happen under the folder's lock)."""
    import subprocess
    import sys

    tmp, data, dp = files
    out = tmp / "out.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", _LOOP, str(dp), str(data), str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    for stdout, stderr in results:
        assert stdout.strip() == "[0, 0, 0, 0, 0, 0]", stderr
    assert is_ours(out) and pl.read_ndjson(out).height == 8


def test_search_out_refuses_a_run_folder_whose_outputs_it_cannot_replace(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n')
    out = tmp_path / "run"
    (out / "journal").mkdir(parents=True)
    (out / "journal" / "meta.json").write_text('{"version": 1, "identity": {}, "config": {}}')  # an earlier run's
    (out / "best.dp").write_text("dp: 1\n")
    os.link(out / "best.dp", tmp_path / "elsewhere.dp")
    assert main(["search", str(data), "--out", str(out), "--force"]) == 2
    assert "hard links" in one_error_line(capsys)
    os.unlink(tmp_path / "elsewhere.dp")
    (out / "best.dp").unlink()
    (out / "best.dp").mkdir()
    assert main(["search", str(data), "--out", str(out), "--force"]) == 2
    assert "is a folder" in one_error_line(capsys)
    (out / "best.dp").rmdir()
    (out / "processed.jsonl").symlink_to(data)  # the search would write its processed data through it
    assert main(["search", str(data), "--out", str(out)]) == 2
    assert "is the data" in one_error_line(capsys)
    assert data.read_text() == '{"instruction": "q", "output": "a"}\n'



def test_a_csv_output_holds_list_and_record_columns_as_json_text(tmp_path):
    import polars as pl

    from autodp_dsl.outputs import nested_columns

    frame = pl.DataFrame({"a": ["x", "y"], "t": [[1, 2], None], "m": [{"k": [1], "s": "é"}, None]})
    assert nested_columns(frame) == ["t", "m"]
    write_data(frame, tmp_path / "o.csv")
    back = pl.read_csv(tmp_path / "o.csv")
    assert back["t"].to_list() == ["[1, 2]", None]
    assert json.loads(back["m"][0]) == {"k": [1], "s": "é"} and back["m"][1] is None


def test_a_datasets_folder_output_with_a_replaced_file_is_the_users(tmp_path):
    """The marker records each file's inode, size and mtime: a file replaced by another of the same
    name (a new inode) makes the folder the user's, refused even with force."""
    frame = pl.DataFrame({"a": [1, 2]})
    write_data(frame, tmp_path / "hf")
    assert is_ours(tmp_path / "hf")
    arrow = tmp_path / "hf" / "data-00000-of-00001.arrow"
    content = arrow.read_bytes()
    arrow.unlink()
    arrow.write_bytes(content)
    assert not is_ours(tmp_path / "hf")
    with pytest.raises(RefusedWrite, match="changed"):
        write_data(frame, tmp_path / "hf", force=True)
    assert arrow.read_bytes() == content


def test_replacing_a_datasets_folder_keeps_a_file_edited_after_the_check(tmp_path, capsys):
    """Between the check and the swap a listed file may change: it is not deleted, the old folder is
    kept aside with a warning."""
    from autodp_dsl.outputs import _remove_aside

    write_data(pl.DataFrame({"a": [1]}), tmp_path / "hf")
    aside = tmp_path / ".hf.old.x"
    aside.mkdir()
    os.replace(tmp_path / "hf", aside / "x")
    with open(aside / "x" / "state.json", "a") as f:
        f.write("\n")
    _remove_aside(aside, tmp_path / "hf")
    assert sorted(os.listdir(aside / "x")) == [MARKER, "state.json"]
    assert "kept" in capsys.readouterr().err


@pytest.mark.parametrize("out", [".", "..", "../e"])
def test_a_folder_output_that_is_or_holds_the_working_folder_is_refused(files, monkeypatch, capsys, out):
    tmp, data, dp = files
    (tmp / "e").mkdir()
    monkeypatch.chdir(tmp / "e")
    before = tree(tmp)
    assert run(dp, data, "-o", out, "--dropped", tmp / "dr.jsonl", "--quarantine", tmp / "q.jsonl", "--no-cache") == 2
    err = one_error_line(capsys)
    assert "working folder" in err or (out == ".." and "holds the input" in err), err
    assert tree(tmp) == before
