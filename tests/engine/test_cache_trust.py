"""The cache as a trust boundary (issue 12): only folders autodp created are caches, paths from
metadata stay inside, operator manifests name only installed code, every entry and input is
checked by its xxh3-128, cache files are private, and a cache problem degrades a run, not fails it.

The threat model (docs/language.md, "The cache"): accidental corruption and crafted metadata or
manifests; not someone who may write anything into the cache folder.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import sys
from pathlib import Path

import polars as pl
import pytest

from autodp_dsl.cli import main
from autodp_dsl.engine import CacheStore, Executor, NotACache
from autodp_dsl.engine import cache as cache_mod

from .helpers import col, filt, make_registry, strategy

REG = make_registry()
KEY = "ab" + "c" * 62

DP = """dp: 1
name: trust
steps:
  - filter: chars(output) >= 12
  - dedup.exact(instruction, output)
"""


def _frame(n=200):
    return pl.DataFrame({"__rid": pl.Series(range(n), dtype=pl.UInt64), "value": [f"v{i}" * 5 for i in range(n)]})


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its kind and content: what "untouched" means."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[str(p)] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[str(p)] = ("dir",)
            else:
                out[str(p)] = ("file", p.read_bytes(), st.st_mtime_ns)
    return out


def _one_error_line(err: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err


@pytest.fixture
def files(tmp_path):
    rows = [{"instruction": f"question number {i % 7}", "output": f"an answer that is long enough {i % 5}"} for i in range(40)]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dp = tmp_path / "s.dp"
    dp.write_text(DP)
    (tmp_path / "out").mkdir()
    return tmp_path, data, dp


def _run(files, cache: Path, name: str, *extra: str) -> int:
    tmp, data, dp = files
    return main(["run", str(dp), str(data), "-o", str(tmp / "out" / f"{name}.jsonl"), "--cache", str(cache), "-q", *extra])


def _git_like(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "objects" / "ab").mkdir(parents=True)
    (repo / "objects" / "ab" / ("cd" * 19)).write_bytes(b"blob")
    (repo / "tmp").mkdir()
    (repo / "tmp" / "work.txt").write_text("mine")
    (repo / "memo").mkdir()
    (repo / "memo" / "notes.json").write_text("{}")
    (repo / "HEAD").write_text("ref: refs/heads/main\n")
    return repo


# ---------------------------------------------------------------- a cache only when autodp made it


@pytest.mark.parametrize("action", [["clear"], ["gc"], ["verify", "--fix"]])
def test_maintenance_refuses_a_folder_that_is_not_a_cache(tmp_path, capsys, action):
    repo = _git_like(tmp_path)
    before = _snapshot(repo)
    assert main(["cache", *action, "--cache", str(repo)]) == 1
    _one_error_line(capsys.readouterr().err)
    assert _snapshot(repo) == before


def test_an_old_format_marker_does_not_make_any_folder_a_cache(tmp_path, capsys):
    """The previous version wrote FORMAT "autodp-cache 1" into whatever folder it was given: that
    marker alone proves nothing, the folder must have exactly that version's layout."""
    repo = _git_like(tmp_path)
    (repo / "FORMAT").write_text("autodp-cache 1\n")
    before = _snapshot(repo)
    assert main(["cache", "clear", "--cache", str(repo)]) == 1
    err = capsys.readouterr().err
    _one_error_line(err)
    assert "remove just that file" in err
    assert _snapshot(repo) == before


def test_run_with_a_foreign_folder_as_cache_goes_on_without_it(files, capsys):
    repo = _git_like(files[0])
    before = _snapshot(repo)
    assert _run(files, repo, "a") == 0
    err = capsys.readouterr().err
    assert "warning: cannot use the cache" in err and "Traceback" not in err
    assert _snapshot(repo) == before
    assert (files[0] / "out" / "a.jsonl").exists()


def test_new_and_empty_folders_become_caches(tmp_path):
    for root in (tmp_path / "new" / "cache", tmp_path / "empty"):
        if root.name == "empty":
            root.mkdir()
        st = CacheStore(root)
        assert (root / "FORMAT").read_text() == "autodp-cache 2\n"
        st.put(KEY, _frame(), {"kind": "statistic", "op": "x"})
        assert st.get(KEY).frame.equals(_frame())
    assert stat.S_IMODE((tmp_path / "new" / "cache").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "empty").stat().st_mode) == 0o700
    # what other parts of autodp keep beside the cache (the operator manifest) does not stop it
    shared = tmp_path / "shared"
    (shared / "ops").mkdir(parents=True)
    (shared / "ops" / "0123abcd.json").write_text("{}")
    CacheStore(shared)
    assert (shared / "ops" / "0123abcd.json").read_text() == "{}"


def test_an_interrupted_initialisation_is_resumed(tmp_path):
    (tmp_path / "c" / "tmp").mkdir(parents=True)  # killed after the first folder, before FORMAT
    CacheStore(tmp_path / "c").put(KEY, _frame(), {"kind": "statistic", "op": "x"})


def _old_cache(root: Path) -> bytes:
    """A cache exactly as the previous version wrote it (FORMAT 1, sha256, world-readable)."""
    import io

    df = _frame(30)

    buf = io.BytesIO()
    df.write_parquet(buf)
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    sub = root / "objects" / KEY[:2]
    sub.mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / "memo").mkdir()
    (root / "memo" / ("e" * 64 + ".json")).write_text(json.dumps({"sha256": "0" * 64}))
    (root / "FORMAT").write_text("autodp-cache 1\n")
    (root / "lock").write_text("")
    (root / "tmp" / f"{KEY}.json.123.0123abcd.tmp").write_text("interrupted")
    (sub / f"{KEY}.{'9' * 16}.parquet").write_bytes(b"an orphan")
    name = f"{KEY}.{sha[:16]}.parquet"
    (sub / name).write_bytes(data)
    (sub / f"{KEY}.json").write_text(json.dumps({"format": 1, "key": KEY, "data": name, "sha256": sha, "size": len(data), "rows": 30, "created": 1.0, "kind": "statistic", "op": "x"}))
    return data


def test_a_cache_of_the_previous_format_is_migrated_when_its_layout_is_exact(tmp_path):
    root = tmp_path / "old"
    _old_cache(root)
    st = CacheStore(root)
    assert (root / "FORMAT").read_text() == "autodp-cache 2\n"
    e = st.get(KEY)
    assert e is not None and e.frame.equals(_frame(30)) and "sha256" not in e.meta and len(e.meta["xxh3"]) == 32
    assert not list((root / "memo").iterdir())  # old memos had no content checksum
    for p in root.rglob("*"):
        assert stat.S_IMODE(p.stat().st_mode) in ((0o700,) if p.is_dir() else (0o600,)), p
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_a_previous_format_cache_with_a_stranger_inside_is_refused(tmp_path):
    root = tmp_path / "old"
    _old_cache(root)
    (root / "objects" / KEY[:2] / "notes.txt").write_text("mine")
    before = _snapshot(root)
    with pytest.raises(NotACache, match="if it is an old cache, remove the folder"):
        CacheStore(root)
    assert _snapshot(root) == before


def test_a_previous_format_cache_with_a_linked_lock_is_refused(tmp_path, victim):
    root = tmp_path / "old"
    _old_cache(root)
    (root / "lock").unlink()
    (root / "lock").symlink_to(victim / "precious.txt")  # migration would chmod it
    mode = (victim / "precious.txt").stat().st_mode
    with pytest.raises(NotACache, match="lock is not a file"):
        CacheStore(root)
    assert (victim / "precious.txt").stat().st_mode == mode


# ---------------------------------------------------------------- paths from metadata stay inside


@pytest.fixture
def victim(tmp_path):
    v = tmp_path / "victim"
    v.mkdir()
    (v / "precious.txt").write_text("do not delete")
    (v / f"{KEY}.json").write_text("looks like metadata")
    return v


def _craft(cache: Path, victim: Path) -> None:
    """Point every entry's data at the victim, by a relative path, an absolute path and a link."""
    metas = sorted((cache / "objects").rglob("*.json"))
    assert len(metas) >= 3
    targets = [os.path.relpath(victim / "precious.txt", metas[0].parent), str(victim / "precious.txt"), "../../../victim/precious.txt"]
    for i, m in enumerate(metas):
        meta = json.loads(m.read_text())
        meta["data"] = targets[i % len(targets)]
        m.write_text(json.dumps(meta))
    # a data file replaced by a link to the victim, and a sub-folder replaced by a link to it
    sub = sorted(p for p in (cache / "objects").iterdir())[0]
    for f in sub.iterdir():
        if f.suffix in (".parquet", ".arrow"):
            f.unlink()
            f.symlink_to(victim / "precious.txt")
    free = next(n for n in (f"{i:02x}" for i in range(256)) if not (cache / "objects" / n).exists())
    (cache / "objects" / free).symlink_to(victim, target_is_directory=True)
    (victim / f"{free}{'0' * 62}.json").write_text("looks like metadata")
    (cache / "memo" / ("f" * 64 + ".json")).unlink(missing_ok=True)
    (cache / "memo" / ("f" * 64 + ".json")).symlink_to(victim / "precious.txt")


@pytest.mark.parametrize("action", [["clear"], ["gc", "--max-size", "1"], ["verify", "--fix"], ["run"]])
def test_crafted_metadata_touches_nothing_outside_the_cache(files, victim, capsys, action):
    cache = files[0] / "c"
    assert _run(files, cache, "first") == 0
    _craft(cache, victim)
    before = _snapshot(victim)
    if action == ["run"]:
        rc = _run(files, cache, "second")
        assert rc == 0
        kept = pl.read_ndjson(files[0] / "out" / "second.jsonl")
        assert kept.equals(pl.read_ndjson(files[0] / "out" / "first.jsonl"))  # recomputed, same result
    else:
        main(["cache", *action, "--cache", str(cache)])
    assert "Traceback" not in capsys.readouterr().err
    assert _snapshot(victim) == before


def test_a_crafted_data_name_is_damage_not_a_path(tmp_path, victim, capsys):
    st = CacheStore(tmp_path / "c")
    st.put(KEY, _frame(), {"kind": "statistic", "op": "x"})
    m = tmp_path / "c" / "objects" / KEY[:2] / f"{KEY}.json"
    m.write_text(json.dumps({**json.loads(m.read_text()), "data": "../../../victim/precious.txt"}))
    assert st.verify().corrupt == [(KEY, "metadata names a file outside the entry")]
    assert st.get(KEY) is None and not m.exists()
    assert "damaged" in capsys.readouterr().err
    assert (victim / "precious.txt").read_text() == "do not delete"


# ---------------------------------------------------------------- the operator manifest


PLANTED = """
from pathlib import Path
Path(__file__).with_name("IMPORTED").write_text("the planted module ran")
def register(reg):
    pass
class Op:
    name = "clean.whitespace"
"""


@pytest.mark.parametrize("where, entry_point", [("planted_mod:Op", "stdlib_ops:register"), (None, "planted_mod:register"), ("os:system", "os:system")])
def test_a_manifest_naming_other_code_is_not_imported(tmp_path, monkeypatch, where, entry_point):
    from autodp_dsl import manifest
    from autodp_dsl.catalog import load_entry_points

    plant = tmp_path / "plant"
    plant.mkdir()
    (plant / "planted_mod.py").write_text(PLANTED)
    monkeypatch.syspath_prepend(str(plant))
    monkeypatch.setenv("AUTODP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AUTODP_NO_OPS_CACHE", raising=False)
    classes, sources = load_entry_points()
    manifest.save(classes, sources)
    path = manifest.manifest_path()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    for entry in data["ops"]:
        if entry["spec"]["name"] == "clean.whitespace":
            entry["class"], entry["entry_point"] = where, entry_point
    path.write_text(json.dumps(data))
    reg = manifest.load()
    assert reg is not None and not reg._ops  # the crafted manifest is current: it is what is read
    op = reg.get("clean.whitespace")
    assert op is classes.get("clean.whitespace")  # from the installed entry point instead
    assert "planted_mod" not in sys.modules and not (plant / "IMPORTED").exists()
    rewritten = {e["spec"]["name"]: e for e in json.loads(path.read_text())["ops"]}
    assert rewritten["clean.whitespace"]["entry_point"] == "stdlib_ops:register"


# ---------------------------------------------------------------- checksums on every read


def test_a_flipped_byte_with_size_and_mtime_kept_is_caught(tmp_path, capsys):
    st = CacheStore(tmp_path / "c")
    st.put(KEY, _frame(), {"kind": "statistic", "op": "x"})
    meta = json.loads((tmp_path / "c" / "objects" / KEY[:2] / f"{KEY}.json").read_text())
    data = tmp_path / "c" / "objects" / KEY[:2] / meta["data"]
    before = data.stat()
    b = bytearray(data.read_bytes())
    b[len(b) // 2] ^= 0x01
    with open(data, "r+b") as f:
        f.write(bytes(b))
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert data.stat().st_size == before.st_size and data.stat().st_mtime_ns == before.st_mtime_ns
    assert st.get(KEY) is None
    assert "cache entry abccccccccccccc" in capsys.readouterr().err  # one warning line names it
    assert not st.contains(KEY)


def test_a_run_over_a_flipped_byte_recomputes_the_same_output(files, capsys):
    cache = files[0] / "c"
    assert _run(files, cache, "first", "--report", str(files[0] / "out" / "r1.json")) == 0
    for m in (cache / "objects").rglob("*.json"):  # flip a byte in every entry, keeping size and mtime
        d = m.parent / json.loads(m.read_text())["data"]
        st = d.stat()
        b = bytearray(d.read_bytes())
        b[len(b) // 2] ^= 0x01
        with open(d, "r+b") as f:
            f.write(bytes(b))
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
    capsys.readouterr()
    assert _run(files, cache, "second", "--report", str(files[0] / "out" / "r2.json")) == 0
    assert "damaged (checksum mismatch)" in capsys.readouterr().err
    assert (files[0] / "out" / "second.jsonl").read_bytes() == (files[0] / "out" / "first.jsonl").read_bytes()
    assert json.loads((files[0] / "out" / "r2.json").read_text())["cache_hits"] == 0


def test_an_input_edited_in_place_with_its_mtime_restored_is_read_again(files):
    tmp, data, dp = files
    cache = tmp / "c"
    assert _run(files, cache, "first", "--report", str(tmp / "out" / "r1.json")) == 0
    st = data.stat()
    text = data.read_text().replace("question number 3", "question number 9")
    with open(data, "r+") as f:  # same inode, same size
        f.write(text)
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert data.stat().st_size == st.st_size and data.stat().st_ino == st.st_ino
    assert _run(files, cache, "second", "--report", str(tmp / "out" / "r2.json")) == 0
    rep = json.loads((tmp / "out" / "r2.json").read_text())
    assert rep["input"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert rep["input"]["sha256"] != json.loads((tmp / "out" / "r1.json").read_text())["input"]["sha256"]
    assert "question number 3" not in (tmp / "out" / "second.jsonl").read_text()


def test_an_unchanged_input_keeps_its_sha256_without_hashing_it_again(files, monkeypatch):
    tmp, data, dp = files
    import autodp_dsl.engine.executor as executor_mod

    s = strategy("s", filt(">=", col("output"), col("instruction")))
    first = Executor(tmp / "c", registry=REG).load(data, [s])
    vouched = []
    real = executor_mod.open_source
    monkeypatch.setattr(executor_mod, "open_source", lambda p, known_sha256=None, **kw: vouched.append(known_sha256) or real(p, known_sha256=known_sha256, **kw))
    again = Executor(tmp / "c", registry=REG).load(data, [s])
    assert vouched == [first.content_sha256]  # the memo, confirmed by the xxh3 of the bytes: no sha256 pass
    assert again.content_sha256 == first.content_sha256 and again.frame.equals(first.frame)


# ---------------------------------------------------------------- permissions


def test_cache_files_are_private(files):
    cache = files[0] / "c"
    assert _run(files, cache, "first") == 0
    paths = [cache, *cache.rglob("*")]
    assert len(paths) > 5
    for p in paths:
        assert stat.S_IMODE(p.lstat().st_mode) == (0o700 if p.is_dir() else 0o600), p


# ---------------------------------------------------------------- a cache problem degrades the run


def _eacces(*a, **k):
    raise PermissionError(errno.EACCES, "Permission denied")


def test_a_cache_that_cannot_be_written_degrades_to_no_cache(files, capsys, monkeypatch):
    cache = files[0] / "c"
    CacheStore(cache)
    monkeypatch.setattr(CacheStore, "_atomic_write", lambda self, *a, **k: _eacces())  # as a read-only folder
    assert _run(files, cache, "ro", "--report", str(files[0] / "out" / "r.json")) == 0
    err = capsys.readouterr().err
    assert err.count("warning: cache") == 1 and "going on without it" in err and "Traceback" not in err
    acc = json.loads((files[0] / "out" / "r.json").read_text())["accounting"]
    assert acc["balanced"] and not any(s["persisted"] for s in acc["steps"])  # nothing claimed stored


def test_an_unreadable_entry_degrades_to_no_cache(files, capsys, monkeypatch):
    cache = files[0] / "c"
    assert _run(files, cache, "first") == 0
    real = cache_mod._read_file
    monkeypatch.setattr(cache_mod, "_read_file", lambda p: _eacces() if p.suffix in (".parquet", ".arrow") else real(p))
    capsys.readouterr()
    assert _run(files, cache, "second") == 0
    assert "going on without it" in capsys.readouterr().err
    assert (files[0] / "out" / "second.jsonl").read_bytes() == (files[0] / "out" / "first.jsonl").read_bytes()


def test_a_cache_cleared_under_a_run_degrades_to_no_cache(files, capsys):
    import shutil

    tmp, data, dp = files
    ex = Executor(tmp / "c", registry=REG)
    assert main(["cache", "clear", "--cache", str(tmp / "c")]) == 0
    shutil.rmtree(tmp / "c")  # cleared and removed while the executor holds it
    r = ex.run(strategy("s", filt(">=", col("output"), col("instruction"))), data)
    assert r.accounting.balanced
    assert "going on without it" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["gc", "clear"])
def test_gc_and_clear_on_a_read_only_cache_say_so_in_one_line(files, capsys, monkeypatch, action):
    cache = files[0] / "c"
    assert _run(files, cache, "first") == 0
    for m in (cache / "objects").rglob("*.json"):  # something to remove: damaged entries
        m.write_text("{")
    (cache / "tmp" / "x.json.1.0123abcd.tmp").write_text("")
    os.utime(cache / "tmp" / "x.json.1.0123abcd.tmp", (0, 0))
    capsys.readouterr()
    monkeypatch.setattr(cache_mod.os, "unlink", _eacces)  # as on a read-only folder (chmod does not stop root)
    assert main(["cache", action, "--cache", str(cache)]) == 1
    _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("action", ["gc", "clear"])
def test_a_folder_in_tmp_is_left_alone_and_said_in_one_line(files, capsys, action):
    cache = files[0] / "c"
    assert _run(files, cache, "first") == 0
    (cache / "tmp" / "sub").mkdir()
    (cache / "tmp" / "sub" / "keep.txt").write_text("x")
    capsys.readouterr()
    assert main(["cache", action, "--cache", str(cache)]) == 1
    err = capsys.readouterr().err
    _one_error_line(err)
    assert "tmp/sub" in err and (cache / "tmp" / "sub" / "keep.txt").read_text() == "x"


def test_an_entry_behind_a_linked_sub_folder_is_not_served(tmp_path, capsys):
    st = CacheStore(tmp_path / "c")
    st.put(KEY, _frame(), {"kind": "statistic", "op": "x"})
    outside = tmp_path / "outside"
    (tmp_path / "c" / "objects" / KEY[:2]).rename(outside)  # a valid entry, but outside the cache
    (tmp_path / "c" / "objects" / KEY[:2]).symlink_to(outside, target_is_directory=True)
    before = _snapshot(outside)
    assert st.get(KEY) is None and not st.contains(KEY) and st.entries() == []
    st.put(KEY, _frame(), {"kind": "statistic", "op": "x"})  # not written through the link either
    assert _snapshot(outside) == before
    assert "going on without it" in capsys.readouterr().err


@pytest.mark.parametrize("memo", [{"sha256": "0" * 64}, {"sha256": "0" * 64, "xxh3": None}, {"sha256": "0" * 64, "xxh3": "0" * 32}])
def test_a_memo_without_the_inputs_checksum_does_not_vouch_for_it(files, memo):
    tmp, data, dp = files
    s = strategy("s", filt(">=", col("output"), col("instruction")))
    Executor(tmp / "c", registry=REG).load(data, [s])
    memos = list((tmp / "c" / "memo").iterdir())
    assert len(memos) == 1
    memos[0].write_text(json.dumps(memo))  # e.g. written by the previous format, or crafted
    again = Executor(tmp / "c", registry=REG).load(data, [s])
    assert again.content_sha256 == hashlib.sha256(data.read_bytes()).hexdigest()
