from __future__ import annotations

import os

from autodp_eval._cache import atomic_dir, atomic_write_json, read_json, resolve_cache_dir


def test_cache_dir_priority(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTODP_CACHE_DIR", raising=False)
    assert resolve_cache_dir() == tmp_path / ".autodp" / "eval-cache"
    monkeypatch.setenv("AUTODP_CACHE_DIR", str(tmp_path / "env"))
    assert resolve_cache_dir() == tmp_path / "env" / "eval"  # its own folder of the root autodp shares
    assert resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert (tmp_path / "arg").is_dir()


def test_atomic_json_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "sub" / "x.json"
    atomic_write_json(path, {"a": [1, 2]})
    atomic_write_json(path, {"a": [3]})
    assert read_json(path) == {"a": [3]}
    assert os.listdir(path.parent) == ["x.json"]


def test_corrupt_entry_reads_as_a_miss(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    assert read_json(tmp_path / "bad.json") is None
    assert read_json(tmp_path / "missing.json") is None


def test_atomic_dir_keeps_the_first_complete_entry(tmp_path):
    final = tmp_path / "entry"
    with atomic_dir(final) as tmp:
        (tmp / "f.txt").write_text("first")
    with atomic_dir(final) as tmp:  # a racing writer finishing second
        (tmp / "f.txt").write_text("second")
    assert (final / "f.txt").read_text() == "first"
    assert sorted(os.listdir(tmp_path)) == ["entry"]


def test_atomic_dir_discards_on_error(tmp_path):
    final = tmp_path / "entry"
    try:
        with atomic_dir(final) as tmp:
            (tmp / "f.txt").write_text("partial")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert not final.exists() and os.listdir(tmp_path) == []
