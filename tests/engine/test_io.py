"""Readers: quarantine with reasons instead of failure; formats; the accounting identity on broken rows."""

from __future__ import annotations

import json

import polars as pl
import pytest

from autodp_dsl.engine import Executor
from autodp_dsl.io import DataError, peek_columns, read_data, write_data

from .helpers import call, col, filt, make_registry, step, strategy

REG = make_registry()

GOOD = {"instruction": "What is X?", "output": "X is a thing that exists."}


def _broken_bytes() -> tuple[bytes, dict[int, str]]:
    """A jsonl file with every kind of broken row; returns the bytes and rid -> expected reason."""
    rows: list[bytes] = []
    expect: dict[int, str] = {}

    def add(b: bytes, reason: str | None = None):
        if reason:
            expect[len(rows)] = reason
        rows.append(b)

    add(json.dumps(GOOD).encode())
    add(b'{"instruction": "broken", "output": ', "invalid-json")
    add(json.dumps({"instruction": "q", "output": "caf\u00e9"}).encode().replace(b"caf", b"caf\xff\xfe"), "invalid-utf8")
    add(json.dumps({"instruction": "q", "output": 5}).encode(), "wrong-type")
    add(json.dumps({"instruction": "q", "output": ["a", "b"]}).encode(), "wrong-type")
    add(json.dumps({"instruction": "q"}).encode(), "missing-field")
    add(json.dumps({"instruction": "q", "output": None}).encode(), "missing-field")
    add(json.dumps({"instruction": "q", "output": "x" * 5000}).encode(), "row-too-large")
    add(b"[1, 2, 3]", "not-an-object")
    add(b'"just a string"', "not-an-object")
    add(b'{"instruction": "q", "output": "ok", "score": NaN}', "invalid-json")
    add(json.dumps({"instruction": "nested only", "meta": {"output": "s"}}).encode(), "missing-field")
    add(json.dumps({**GOOD, "extra": {"k": 1}}).encode())
    add(json.dumps({**GOOD, "output": "An answer with \\\"output\\\": \"quotes\" inside"}).encode())
    return b"\n".join(rows[:4]) + b"\n\n   \n" + b"\n".join(rows[4:]) + b"\n", expect


def test_broken_rows_are_quarantined_with_reasons(tmp_path):
    b, expect = _broken_bytes()
    p = tmp_path / "broken.jsonl"
    p.write_bytes(b)
    L = read_data(p, max_row_bytes=4096)
    q = dict(zip(L.quarantine["rid"].to_list(), L.quarantine["reason"].to_list(), strict=True))
    assert q == expect
    assert L.rows_total == 14 == L.frame.height + L.quarantine.height
    assert sorted(L.frame["__rid"].to_list() + L.quarantine["rid"].to_list()) == list(range(14))
    lines = dict(zip(L.quarantine["rid"].to_list(), L.quarantine["line"].to_list(), strict=True))
    assert lines[1] == 2 and lines[4] == 7  # blank lines are not records, but line numbers count them
    assert all(isinstance(r, str) and r for r in L.quarantine["raw"].to_list())


def test_accounting_identity_on_broken_file(tmp_path):
    b, expect = _broken_bytes()
    p = tmp_path / "broken.jsonl"
    p.write_bytes(b)
    s = strategy("b", step("t.strip", col("output")), filt(">=", call("t.len", col("output")), 12))
    r = Executor(tmp_path / "cache", registry=REG, max_row_bytes=4096).run(s, p)
    acc = r.accounting
    assert acc.balanced and acc.rows_in == 14 and acc.quarantined == len(expect)
    ids = set(r.ids.to_list()) | set(acc.dropped_ids["rid"].to_list()) | set(r.quarantine["rid"].to_list())
    assert ids == set(range(14))


def test_fast_and_slow_paths_agree(tmp_path):
    rows = [{"instruction": f"q{i}", "output": f"a{i}", "n": i, "tags": ["x"] * (i % 3)} for i in range(50)]
    p = tmp_path / "ok.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    fast = read_data(p)
    p2 = tmp_path / "ok_bad.jsonl"
    p2.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    slow = read_data(p2)
    assert slow.quarantine.height == 1 and slow.quarantine["rid"][0] == 50
    assert fast.frame.equals(slow.frame)
    assert fast.fingerprint != slow.fingerprint


def test_mixed_types_in_unrequired_fields_do_not_quarantine(tmp_path):
    p = tmp_path / "mixed.jsonl"
    p.write_text("\n".join(json.dumps({**GOOD, "id": v}) for v in (1, "two", 3.5, None, [1])) + "\n")
    L = read_data(p)
    assert L.frame.height == 5 and L.quarantine.height == 0


def test_json_array_parquet_and_datasets_folder(tmp_path):
    recs = [GOOD, {"instruction": "q2", "output": None}, {"instruction": "q3", "output": "a3"}]
    pj = tmp_path / "d.json"
    pj.write_text(json.dumps(recs))
    L = read_data(pj)
    assert L.frame.height == 2 and L.quarantine["reason"].to_list() == ["missing-field"] and L.format == "json"

    df = pl.DataFrame(recs)
    pq = tmp_path / "d.parquet"
    df.write_parquet(pq)
    Lq = read_data(pq)
    assert Lq.frame.height == 2 and Lq.quarantine["rid"].to_list() == [1]

    hf = tmp_path / "hf"
    write_data(df, hf)  # save_to_disk layout: arrow stream + dataset_info.json + state.json
    assert (hf / "state.json").exists() and (hf / "dataset_info.json").exists()
    Lh = read_data(hf)
    assert Lh.format == "hf" and Lh.frame.height == 2 and Lh.frame.drop("__rid").equals(Lq.frame.drop("__rid"))
    assert peek_columns(hf) == peek_columns(pq)

    # a DatasetDict folder: pick train
    dd = tmp_path / "dd"
    write_data(df, dd / "train")
    write_data(df.head(1), dd / "test")
    (dd / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    assert read_data(dd).rows_total == 3
    assert read_data(dd, split="test").rows_total == 1


def test_wrong_column_type_in_parquet_quarantines_rows(tmp_path):
    pq = tmp_path / "d.parquet"
    pl.DataFrame({"instruction": ["a", "b"], "output": [1, 2]}).write_parquet(pq)
    L = read_data(pq)
    assert L.frame.height == 0 and L.quarantine["reason"].to_list() == ["wrong-type", "wrong-type"]


def test_write_data_round_trips(tmp_path):
    # an input column named like an engine column ("__rid", "__meta") is the data's: it round trips
    df = pl.DataFrame({"instruction": ["a", "b"], "output": ["x", "y"], "__rid": [7, 9], "__meta": [{"k": 1}, {"k": 2}]})
    for name in ("o.jsonl", "o.json", "o.parquet"):
        write_data(df, tmp_path / name)
        back = read_data(tmp_path / name)
        assert back.frame["__rid"].to_list() == [0, 1]  # the engine's row ids
        assert back.frame.drop("__rid").rename({"_~_rid": "__rid", "_~_meta": "__meta"}).equals(df)


def test_unreadable_inputs_raise_data_error(tmp_path):
    with pytest.raises(DataError):
        read_data(tmp_path / "missing.jsonl")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError):
        read_data(tmp_path / "x.csv")
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(DataError):
        read_data(tmp_path / "bad.json")


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
def test_bounded_blocks_cut_only_the_lines_over_the_bound(chunk):
    """Whole lines come out in order; a line over the bound keeps bound + 1 bytes (so the reader
    quarantines it as row-too-large) whatever the chunk boundaries; the hash covers every byte."""
    import hashlib
    import io as _io

    from autodp_dsl.io import bounded_blocks

    raw = b'{"a":1}\n' + b"x" * 40 + b"\n\n" + b'{"b":2}\r\n' + b"y" * 13 + b"\n" + b"z" * 30
    digest = hashlib.sha256()
    out = b"".join(bounded_blocks(_io.BytesIO(raw), 12, digest, chunk_bytes=chunk))
    assert out == b"\n".join(line[:13] for line in raw.split(b"\n"))
    assert digest.hexdigest() == hashlib.sha256(raw).hexdigest()


def test_a_duplicate_key_is_quarantined_in_jsonl_and_json(tmp_path):
    """A record with a key twice (json.loads keeps the last value, Polars the first) is quarantined as
    duplicate-key, at any depth, also where the fast path's quote count would balance (another row
    adds a key as null to the duplicated row)."""
    from autodp_dsl.io import read_data

    lines = '{"instruction": "q", "output": "a", "x": 1, "x": 2}\n{"instruction": "q", "output": "b", "b": 3}\n'
    (tmp_path / "d.jsonl").write_text(lines)
    (tmp_path / "d.json").write_text('[{"instruction": "q", "output": "a", "m": {"y": 1, "y": 2}}, {"instruction": "q", "output": "b"}]')
    for name, key in (("d.jsonl", "x"), ("d.json", "y")):
        loaded = read_data(tmp_path / name)
        assert loaded.frame.height == 1 and loaded.quarantine["reason"].to_list() == ["duplicate-key"], name
        assert repr(key) in loaded.quarantine["detail"][0]


def test_a_folder_of_parquet_shards_is_an_input(tmp_path):
    """The output of ``--format parquet-shards``: its files in name order (= row order), hidden
    files (a write in progress) left out; a folder of neither shards nor a datasets layout is refused."""
    from autodp_dsl.io import data_format

    folder = tmp_path / "kept"
    folder.mkdir()
    pl.DataFrame({"instruction": ["c", "d"], "output": ["3", "4"]}).write_parquet(folder / "part-00000000000000000010.parquet")
    pl.DataFrame({"instruction": ["a", "b"], "output": ["1", "2"]}).write_parquet(folder / "part-00000000000000000000.parquet")
    pl.DataFrame({"instruction": ["x"], "output": ["x"]}).write_parquet(folder / ".part-00000000000000000020.parquet.ab12cd34.tmp.parquet")
    (folder / ".autodp-output").write_text("{}")
    assert data_format(folder) == "shards" and set(peek_columns(folder)) == {"instruction", "output"}
    got = read_data(folder)
    assert got.frame["instruction"].to_list() == ["a", "b", "c", "d"] and got.frame["__rid"].to_list() == [0, 1, 2, 3]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="nor a folder of Parquet shards"):
        read_data(empty)
