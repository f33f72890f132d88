"""Rows and columns: every input row is kept, dropped or quarantined (never lost to an abort), and
columns pass through unchanged or the change is reported. End to end through ``autodp run`` (batch
and ``--streaming``) and ``autodp explain``, plus the reader's own contract."""

from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autodp_dsl.cli import main
from autodp_dsl.io import escape_column, peek_columns, read_data, unescape_column

DP = """dp: 1
name: rows-test
steps:
  - filter: words(output) >= 2
"""

MODES = [pytest.param([], id="batch"), pytest.param(["--streaming"], id="streaming")]


def _lines(path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []


def _run(tmp_path, data, mode, *extra, out_name="out.jsonl"):
    dp = tmp_path / "s.dp"
    dp.write_text(DP)
    out, rep = tmp_path / out_name, tmp_path / "report.json"
    rc = main(["run", str(dp), str(data), "-o", str(out), "--no-cache", "-q", "--report", str(rep), *mode, *extra])
    return rc, out, rep


def _accounted(out, rep, n_in: int) -> dict:
    """in = kept + dropped + quarantined, in the report and in the files written."""
    r = json.loads(rep.read_text())
    acc = r["accounting"]
    kept = (pl.read_parquet(out).height if out.suffix == ".parquet" else len(_lines(out))) if out.exists() else 0
    dropped = len(_lines(out.with_name(out.name + ".dropped.jsonl")))
    quarantined = len(_lines(out.with_name(out.name + ".quarantine.jsonl")))
    assert acc["balanced"] and acc["rows_in"] == n_in
    assert (acc["kept"], acc["dropped"], acc["quarantined"]) == (kept, dropped, quarantined)
    assert kept + dropped + quarantined == n_in
    return r


def _rows(n: int) -> list[dict]:
    return [{"id": i, "instruction": f"question {i}", "output": "a long answer" if i % 3 else "short", "extra": "x"} for i in range(n)]


def _write_jsonl(path, rows, raw: dict[int, str] | None = None):
    lines = [json.dumps(r) for r in rows]
    for i, text in (raw or {}).items():
        lines[i] = text
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------- lone surrogates


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("line", [1, 1500])
def test_lone_surrogate_in_an_unread_column_quarantines_that_row(tmp_path, mode, line, capsys):
    rows = _rows(2000)
    bad = json.dumps(rows[line - 1]).replace('"extra": "x"', '"extra": "\\udc00"')
    assert "\\udc00" in bad
    data = _write_jsonl(tmp_path / "data.jsonl", rows, {line - 1: bad})
    rc, out, rep = _run(tmp_path, data, mode)
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "Traceback" not in err
    _accounted(out, rep, 2000)
    q = pl.read_ndjson(out.with_name(out.name + ".quarantine.jsonl"))
    assert q["rid"].to_list() == [line - 1] and q["line"].to_list() == [line]
    assert q["reason"].to_list() == ["invalid-unicode"] and "extra" in q["detail"][0]
    assert "\\udc00" in q["raw"][0]  # the excerpt keeps the escape, readable
    kept = pl.read_ndjson(out)
    assert line - 1 not in kept["id"].to_list() and set(kept["extra"]) == {"x"}


def test_lone_surrogates_anywhere_are_quarantined_and_pairs_are_kept(tmp_path):
    rows = [
        '{"instruction": "q", "output": "a b \\ud83d\\ude00"}',  # a pair: one emoji, fine
        '{"instruction": "q", "output": "a b \\ud83d"}',  # high surrogate alone
        '{"instruction": "q", "output": "a b", "n": {"k": ["\\ude00"]}}',  # nested
        '{"instruction": "q", "output": "a b", "\\udc80": 1}',  # in a key
        '{"instruction": "q", "output": "a b \\\\udc00"}',  # an escaped backslash, then text: fine
    ]
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(rows) + "\n")
    loaded = read_data(p)
    assert loaded.frame["output"].to_list() == ["a b \U0001f600", "a b \\udc00"]
    assert loaded.quarantine["rid"].to_list() == [1, 2, 3]
    assert set(loaded.quarantine["reason"]) == {"invalid-unicode"}
    assert loaded.frame.height + loaded.quarantine.height == loaded.rows_total == 5
    # the same records as a JSON array
    j = tmp_path / "d.json"
    j.write_text("[" + ",".join(rows) + "]")
    loaded = read_data(j)
    assert loaded.quarantine["rid"].to_list() == [1, 2, 3] and loaded.frame.height == 2
    assert "extra" not in peek_columns(p) and set(peek_columns(p)) == {"instruction", "output"}


def test_surrogate_pairs_keep_the_fast_path():
    from autodp_dsl.io import _jsonl_fast, normalise_required

    req = normalise_required(("instruction", "output"))
    pair = json.dumps({"instruction": "q \U0001f600", "output": "a \U0001f680 b"}).encode()  # json.dumps writes pairs
    assert b"\\ud83d\\ude00" in pair
    assert _jsonl_fast(pair + b"\n", req, 1 << 20)["instruction"].to_list() == ["q \U0001f600"]
    for lone in (b'{"instruction": "q", "output": "a \\ud83d b"}', b'{"instruction": "q", "output": "a \\ude00"}', b'{"instruction": "\\ude00\\ud83d", "output": "a"}'):
        assert _jsonl_fast(pair + b"\n" + lone + b"\n", req, 1 << 20) is None


# ---------------------------------------------------------------- no usable row


def _all_null_output(p):
    return _write_jsonl(p, [{"instruction": "q", "output": None}] * 3)


def _text(text: str):
    def make(p):
        p.write_text(text)
        return p

    return make


NO_USABLE = {
    "empty": (_text(""), 0, None),
    "blank lines": (_text("\n\n  \n"), 0, None),
    "broken lines": (_text('{"instruction": "x\nnot json\n[1, 2]\n'), 3, {"invalid-json": 2, "not-an-object": 1}),
    "all-null output": (_all_null_output, 3, {"missing-field": 3}),
    "surrogates only": (_text('{"instruction": "q", "output": "\\udc00"}\n'), 1, {"invalid-unicode": 1}),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(NO_USABLE))
def test_no_usable_row_is_a_data_error_and_every_row_is_written(tmp_path, mode, case, capsys):
    make, n, reasons = NO_USABLE[case]
    data = make(tmp_path / "data.jsonl")
    rc, out, rep = _run(tmp_path, data, mode)
    err = capsys.readouterr().err
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {data}: no usable row"), err
    assert "unknown column" not in err and "Traceback" not in err
    r = _accounted(out, rep, n)  # the quarantine and the report are written anyway
    assert r["error"] == lines[0].removeprefix("error: ")
    assert not out.exists()
    if reasons:
        assert r["quarantine"]["by_reason"] == reasons
        for reason, count in reasons.items():
            assert f"{reason}: {count}" in err
    assert out.with_name(out.name + ".quarantine.jsonl").exists()


def test_no_usable_row_never_writes_its_quarantine_onto_the_input(tmp_path, capsys):
    # the outputs are checked before the data is read, so the no-usable-row path obeys them too
    data = tmp_path / "data.jsonl"
    data.write_text("nope\nstill nope\n")
    before = data.read_bytes()
    dp = tmp_path / "s.dp"
    dp.write_text(DP)
    rc = main(["run", str(dp), str(data), "-o", str(tmp_path / "out.jsonl"), "--quarantine", str(data), "--no-cache", "-q"])
    assert rc == 2 and data.read_bytes() == before
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_the_engine_runs_on_no_usable_row_with_every_row_accounted(tmp_path):
    from autodp_dsl.engine import Executor
    from autodp_dsl.engine.render import load_strategy

    data = _all_null_output(tmp_path / "data.jsonl")
    dp = tmp_path / "s.dp"
    dp.write_text(DP)
    res = Executor().run(load_strategy(str(dp), peek_columns(data)), data)
    acc = res.accounting
    assert acc.balanced and (acc.rows_in, acc.kept, acc.dropped, acc.quarantined) == (3, 0, 0, 3)


def test_no_usable_row_in_explain_names_the_data(tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    data.write_text("nope\n")
    dp = tmp_path / "s.dp"
    dp.write_text(DP)
    assert main(["explain", str(dp), "--data", str(data), "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {data}: no usable row") and "unknown column" not in err


@pytest.mark.parametrize("mode", MODES)
def test_a_first_record_over_4_mib_does_not_hide_the_columns(tmp_path, mode):
    big = {"instruction": "q", "output": "word " * (1 << 20)}  # 5 MiB: under the 8 MiB row limit
    data = _write_jsonl(tmp_path / "data.jsonl", [big, {"instruction": "q", "output": "a b"}, {"instruction": "q", "output": "a"}])
    rc, out, rep = _run(tmp_path, data, mode)
    assert rc == 0
    r = _accounted(out, rep, 3)
    assert r["accounting"]["kept"] == 2 and r["accounting"]["dropped"] == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_first_record_over_the_row_limit_alone_is_no_usable_row(tmp_path, mode, capsys):
    data = _write_jsonl(tmp_path / "data.jsonl", [{"instruction": "q", "output": "word " * (1 << 20)}])
    rc, out, rep = _run(tmp_path, data, mode, "--max-row-bytes", "1000")
    assert rc == 1 and "no usable row" in capsys.readouterr().err
    r = _accounted(out, rep, 1)
    assert r["quarantine"]["by_reason"] == {"row-too-large": 1}


@pytest.mark.parametrize("indent", [None, 2])
def test_data_key_json_is_read_as_its_records(tmp_path, indent):
    data = tmp_path / "data.json"
    doc = {"data": [{"instruction": "q", "output": "a b"}, {"instruction": "q", "output": "a"}, {"instruction": "q", "output": None}]}
    data.write_text(json.dumps(doc, indent=indent))
    rc, out, rep = _run(tmp_path, data, [])
    assert rc == 0
    r = _accounted(out, rep, 3)
    assert (r["accounting"]["kept"], r["accounting"]["dropped"], r["accounting"]["quarantined"]) == (1, 1, 1)


# ---------------------------------------------------------------- columns


@pytest.mark.parametrize("out_name", ["out.jsonl", "out.parquet"])
@pytest.mark.parametrize("mode", MODES)
def test_dunder_columns_and_int_ids_pass_through(tmp_path, mode, out_name, capsys):
    rows = [{"id": i, "__meta": {"src": "web", "n": i}, "__rid": f"user-{i}", "_~x": i, "instruction": "q", "output": "a long answer" if i % 2 else "x"} for i in range(6)]
    data = _write_jsonl(tmp_path / "data.jsonl", rows)
    rc, out, rep = _run(tmp_path, data, mode, out_name=out_name)
    assert rc == 0, capsys.readouterr().err
    r = _accounted(out, rep, 6)
    kept = pl.read_parquet(out) if out.suffix == ".parquet" else pl.read_ndjson(out)
    assert kept.columns == ["id", "__meta", "__rid", "_~x", "instruction", "output"]
    assert kept.schema["id"] == pl.Int64 and kept["id"].to_list() == [1, 3, 5]
    assert kept["__meta"].to_list() == [{"src": "web", "n": i} for i in (1, 3, 5)]
    assert kept["__rid"].to_list() == ["user-1", "user-3", "user-5"]
    assert r["columns_changed"] == {}
    if out.suffix == ".jsonl":  # byte for byte the input's records
        assert [json.loads(x) for x in _lines(out)] == [rows[i] for i in (1, 3, 5)]


@pytest.mark.parametrize("name", ["__meta", "_~x"])
def test_passed_through_columns_cannot_be_named_in_a_strategy(tmp_path, name, capsys):
    data = _write_jsonl(tmp_path / "data.jsonl", [{"instruction": "q", "output": "a b", name: "v"}])
    assert name not in peek_columns(data) and name not in read_data(data).columns
    dp = tmp_path / "s.dp"
    dp.write_text(f"dp: 1\nname: n\nsteps:\n  - filter: chars(`{name}`) >= 1\n")
    assert main(["run", str(dp), str(data), "-o", str(tmp_path / "o.jsonl"), "--no-cache", "-q"]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("mode", MODES)
def test_dunder_columns_of_parquet_pass_through(tmp_path, mode):
    df = pl.DataFrame({"__rid": ["u0", "u1", "u2"], "id": [10, 11, 12], "instruction": ["q"] * 3, "output": ["a b", "a", "c d"], "__meta": [{"k": 1}, {"k": 2}, {"k": 3}]})
    df.write_parquet(tmp_path / "d.parquet")
    rc, out, rep = _run(tmp_path, tmp_path / "d.parquet", mode, out_name="out.parquet")
    assert rc == 0
    r = _accounted(out, rep, 3)
    assert r["columns_changed"] == {}
    assert pl.read_parquet(out).equals(df.filter(pl.col("id") != 11))


def test_int_ids_stay_int_in_json_and_parquet(tmp_path):
    rows = [{"id": i, "instruction": "q", "output": "a b"} for i in range(4)]
    (tmp_path / "d.json").write_text(json.dumps(rows))
    pl.DataFrame(rows).write_parquet(tmp_path / "d.parquet")
    for name in ("d.json", "d.parquet"):
        loaded = read_data(tmp_path / name)
        assert loaded.frame.schema["id"] == pl.Int64 and loaded.changes == {}


@pytest.mark.parametrize("mode", MODES)
def test_coerced_columns_are_reported(tmp_path, mode, capsys):
    rows = [
        {"id": 1, "instruction": "q", "output": "a b", "n": {"a": 1}, "score": 1},
        {"id": "x-2", "instruction": "q", "output": "a b", "n": {"b": "s"}, "score": 0.5},
        {"id": 3, "instruction": "q", "output": "a b", "n": {"a": 2}},
    ]
    data = _write_jsonl(tmp_path / "data.jsonl", rows)
    rc, out, rep = _run(tmp_path, data, mode)
    err = capsys.readouterr().err
    assert rc == 0
    r = _accounted(out, rep, 3)
    changed = r["columns_changed"]
    assert set(changed) == {"id", "n", "score"}
    assert "int, str read as text" in changed["id"]
    assert "objects get the keys of other rows' objects" in changed["n"]
    assert "integers read as floats" in changed["score"] and "absent from 1 of 3 rows" in changed["score"]
    assert "warning: column 'id' changed on reading" in err


def test_uniform_nested_values_are_not_reported(tmp_path):
    rows = [{"instruction": "q", "output": "a b", "messages": [{"role": "user", "content": f"m{i}"}], "meta": {"k": i, "v": None}} for i in range(3)]
    p = _write_jsonl(tmp_path / "d.jsonl", rows)
    loaded = read_data(p)
    assert loaded.changes == {}
    assert loaded.frame.drop("__rid").to_dicts() == rows


@pytest.mark.parametrize(
    "values, noted",
    [
        ([[1, "a"], [2]], True),  # a list read as List(String)
        ([{"a": 1}, {"b": 2}], True),  # objects with other keys
        ([[{"role": "u", "tool": None}], [{"role": "a", "tool": "x"}]], False),  # explicit nulls: no change
        ([{"a": {"b": 1}}, {"a": {"b": "s"}}], True),  # deep
    ],
)
@pytest.mark.parametrize("slow", [False, True])
def test_nested_coercions_are_noted_on_both_paths(tmp_path, values, noted, slow):
    rows = [{"instruction": "q", "output": "a b", "x": v} for v in values]
    p = _write_jsonl(tmp_path / "d.jsonl", rows + ([{"broken": 1}] if slow else []))  # a quarantined row forces the slow path
    loaded = read_data(p)
    assert loaded.quarantine.height == int(slow)
    assert ("x" in loaded.changes) == noted
    if not noted:
        assert loaded.frame.drop("__rid").to_dicts() == rows


def test_fast_and_slow_paths_agree_on_changes(tmp_path):
    rows = [{"instruction": "q", "output": "a b", "id": 1}, {"instruction": "q", "output": "a b", "id": "2"}]
    p = _write_jsonl(tmp_path / "d.jsonl", rows)
    fast_candidate = read_data(p)
    p2 = _write_jsonl(tmp_path / "e.jsonl", rows + [{"instruction": "q"}])  # a quarantined line: the slow path
    slow = read_data(p2)
    assert fast_candidate.changes == slow.changes == {"id": "values of types int, str read as text"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["categorical", "enum"])
def test_categorical_and_enum_parquet_columns_are_strings(tmp_path, mode, kind):
    dt = pl.Categorical if kind == "categorical" else pl.Enum(["q1", "q2", "q3"])
    df = pl.DataFrame({"instruction": ["q1", "q2", "q3"], "output": ["a b", "c", "d e"], "tag": ["x", "y", "x"]})
    df.with_columns(pl.col("instruction", "tag").cast(dt) if kind == "categorical" else pl.col("instruction").cast(dt)).write_parquet(tmp_path / "d.parquet")
    dp = tmp_path / "s.dp"
    dp.write_text(DP + "  - filter: words(instruction) >= 1\n")
    out, rep = tmp_path / "out.jsonl", tmp_path / "report.json"
    assert main(["run", str(dp), str(tmp_path / "d.parquet"), "-o", str(out), "--no-cache", "-q", "--report", str(rep), *mode]) == 0
    r = _accounted(out, rep, 3)
    assert r["accounting"]["quarantined"] == 0 and r["accounting"]["kept"] == 2
    assert "read as str" in r["columns_changed"]["instruction"]
    assert pl.read_ndjson(out)["instruction"].to_list() == ["q1", "q3"]


@pytest.mark.parametrize("compat", ["oldest", "newest"])  # large_string / string_view
def test_arrow_string_kinds_are_strings(tmp_path, compat):
    df = pl.DataFrame({"instruction": ["q"], "output": ["a b"], "tag": ["t"]}).with_columns(pl.col("tag").cast(pl.Categorical))
    level = pl.CompatLevel.oldest() if compat == "oldest" else pl.CompatLevel.newest()
    df.write_ipc(tmp_path / "file.arrow", compat_level=level)  # the IPC file format
    df.write_ipc_stream(tmp_path / "stream.arrow", compat_level=level)  # the stream format save_to_disk writes
    for name in ("file.arrow", "stream.arrow"):
        loaded = read_data(tmp_path / name, required={"instruction": "str", "tag": "str"})
        assert loaded.quarantine.height == 0 and loaded.frame.schema["tag"] == pl.String
        assert set(loaded.changes) == {"tag"}


@given(st.text(max_size=8))
def test_column_escape_is_one_to_one_and_never_internal(name):
    e = escape_column(name)
    assert unescape_column(e) == name and not e.startswith("__")
    assert e == name or e.startswith("_~")


# ---------------------------------------------------------------- corrupt files


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("content", [b"PAR1garbagegarbagePAR1", b"not parquet at all", b""])
def test_corrupt_parquet_is_one_line(tmp_path, mode, content, capsys):
    data = tmp_path / "bad.parquet"
    data.write_bytes(content)
    rc, out, rep = _run(tmp_path, data, mode)
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1 and err.startswith("error: ") and str(data) in err and "Traceback" not in err
    dp = tmp_path / "s.dp"
    assert main(["explain", str(dp), "--data", str(data), "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and str(data) in err


def test_corrupt_arrow_is_one_line(tmp_path, capsys):
    data = tmp_path / "bad.arrow"
    data.write_bytes(b"ARROW1\x00\x00garbage")
    dp = tmp_path / "s.dp"
    dp.write_text(DP)
    assert main(["run", str(dp), str(data), "-o", str(tmp_path / "o.jsonl"), "--no-cache", "-q"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(data) in err


def test_surrogate_in_a_later_streaming_chunk_keeps_ids_and_lines(tmp_path):
    from autodp_dsl.engine import Executor
    from autodp_dsl.engine.render import load_strategy

    rows = _rows(300)
    bad = json.dumps(rows[250]).replace('"extra": "x"', '"extra": "\\udc00"')
    data = _write_jsonl(tmp_path / "data.jsonl", rows, {250: bad})
    dp = tmp_path / "s.dp"
    dp.write_text(DP)
    s = load_strategy(str(dp), peek_columns(data))
    res = Executor().run_streaming(s, data, tmp_path / "out.parquet", chunk_bytes=2048)  # many chunks
    assert res.quarantine["rid"].to_list() == [250] and res.quarantine["line"].to_list() == [251]
    acc = res.accounting
    assert acc.balanced and acc.rows_in == 300 and acc.kept + acc.dropped + acc.quarantined == 300
    assert 250 not in pl.read_parquet(tmp_path / "out.parquet")["id"].to_list()


def test_column_changes_are_reported_on_a_cache_hit_too(tmp_path):
    rows = [{"id": 1, "instruction": "q", "output": "a b"}, {"id": "two", "instruction": "q", "output": "a b"}]
    data = _write_jsonl(tmp_path / "data.jsonl", rows)
    dp = tmp_path / "s.dp"
    dp.write_text(DP)
    reports = []
    for i in range(2):
        rep = tmp_path / f"r{i}.json"
        assert main(["run", str(dp), str(data), "-o", str(tmp_path / f"o{i}.jsonl"), "--cache", str(tmp_path / "c"), "-q", "--report", str(rep)]) == 0
        reports.append(json.loads(rep.read_text()))
    assert reports[1]["cache_hits"] == 1
    assert reports[0]["columns_changed"] == reports[1]["columns_changed"] == {"id": "values of types int, str read as text"}


# ---------------------------------------------------------------- the contract, fuzzed

_texts = st.text(max_size=4) | st.text(st.characters(categories=["Cs", "Ll", "So"]), max_size=3)  # lone surrogates too
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False, width=32), _texts)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["k", "v", "w"]), inner, max_size=3), max_leaves=6)
_records = st.lists(st.dictionaries(st.sampled_from(["a", "b", "__c", "output"]), _json, max_size=4), min_size=1, max_size=6)


def _same(read, original) -> bool:
    """Equal with JSON types kept apart (1 is not "1", 1.0 nor true); floats within float32 noise."""
    if isinstance(original, dict):
        return isinstance(read, dict) and read.keys() == original.keys() and all(_same(read[k], v) for k, v in original.items())
    if isinstance(original, list):
        return isinstance(read, list) and len(read) == len(original) and all(_same(r, o) for r, o in zip(read, original, strict=True))
    if isinstance(original, float) and isinstance(read, float):
        return read == pytest.approx(original, rel=1e-6, abs=1e-30)
    return type(read) is type(original) and read == original


@settings(max_examples=min(150, settings.default.max_examples))  # a file written and read per example
@given(_records, st.booleans())
def test_every_column_passes_through_or_its_change_is_reported(tmp_path_factory, records, slow):
    p = tmp_path_factory.mktemp("fuzz") / "d.jsonl"
    lines = [json.dumps(r) for r in records] + (["{broken"] if slow else [])
    p.write_text("\n".join(lines) + "\n")
    loaded = read_data(p, required=())
    assert loaded.rows_total == len(lines) == loaded.frame.height + loaded.quarantine.height
    parsed = [json.loads(x) for x in lines[: len(records)]]  # json.loads joins a surrogate pair
    lone = {i for i, r in enumerate(parsed) if any("\ud800" <= ch <= "\udfff" for ch in json.dumps(r, ensure_ascii=False))}
    q = dict(zip(loaded.quarantine["rid"].to_list(), loaded.quarantine["reason"].to_list(), strict=True))
    assert {i for i, r in q.items() if r == "invalid-unicode"} == lone
    assert set(q) == lone | ({len(records)} if slow else set())
    read = loaded.frame.sort("__rid").to_dicts()
    for row in read:
        original = parsed[row.pop("__rid")]
        assert {unescape_column(c) for c in row} >= set(original)
        for col, value in row.items():
            name = unescape_column(col)
            if name not in loaded.changes:
                assert name in original, (name, loaded.changes)
                assert _same(value, original[name]), (name, value, original[name], loaded.changes)


def test_streaming_chunks_report_types_joined_across_chunks(tmp_path):
    from autodp_dsl.engine import Executor
    from autodp_dsl.engine.render import load_strategy

    rows = [{"id": i if i < 100 else f"s{i}", "instruction": "q", "output": "a b c", **({"late": {"k": 1}} if i > 150 else {})} for i in range(200)]
    data = _write_jsonl(tmp_path / "data.jsonl", rows)
    dp = tmp_path / "s.dp"
    dp.write_text(DP)
    s = load_strategy(str(dp), peek_columns(data))
    res = Executor().run_streaming(s, data, tmp_path / "out.jsonl", chunk_bytes=1024)  # the first chunks hold only ints
    assert res.accounting.balanced and res.accounting.kept == 200
    assert "joined as String" in res.columns_changed["id"]
    assert res.columns_changed["late"] == "absent from some rows, written as null"
    one = Executor().run_streaming(s, data, tmp_path / "out2.jsonl")  # one chunk: the same notes as a batch read
    assert one.columns_changed == read_data(data).changes
