"""``autodp run``, ``autodp explain`` and ``autodp cache`` end to end (in-process)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from autodp_dsl.cli import main

DP = """dp: 1
name: cli-test
steps:
  - filter: chars(output) >= 12
  - filter: words(instruction) >= 2
  - dedup.exact(instruction, output)
"""


@pytest.fixture
def files(tmp_path):
    rows = [{"instruction": f"question number {i % 7}", "output": f"an answer that is long enough {i % 5}"} for i in range(40)]
    rows[3]["output"] = "short"
    lines = [json.dumps(r) for r in rows]
    lines.insert(10, '{"instruction": "broken')
    lines.insert(20, json.dumps({"instruction": "q", "output": 7}))
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(lines) + "\n")
    dp = tmp_path / "s.dp"
    dp.write_text(DP)
    return tmp_path, data, dp


def test_run_writes_output_report_dropped_and_quarantine(files, capsys):
    tmp, data, dp = files
    out = tmp / "out.jsonl"
    rc = main(["run", str(dp), str(data), "-o", str(out), "--cache", str(tmp / "c"), "--report", str(tmp / "r.json")])
    assert rc == 0
    rep = json.loads((tmp / "r.json").read_text())
    acc = rep["accounting"]
    assert acc["balanced"] and acc["rows_in"] == 42 and acc["quarantined"] == 2
    assert acc["kept"] + acc["dropped"] + acc["quarantined"] == 42
    # steps are reported in execution order (commuting filters run in canonical order), by user path
    assert sorted(s["step"] for s in acc["steps"]) == ["1", "2", "3"]
    assert rep["quarantine"]["by_reason"] == {"invalid-json": 1, "wrong-type": 1}
    kept = pl.read_ndjson(out)
    assert kept.height == acc["kept"] and kept.columns == ["instruction", "output"]
    dropped = pl.read_ndjson(str(out) + ".dropped.jsonl")
    assert dropped.height == acc["dropped"] and set(dropped.columns) == {"rid", "step", "reason"}
    q = pl.read_ndjson(str(out) + ".quarantine.jsonl")
    assert sorted(q["rid"].to_list()) == [10, 20]
    err = capsys.readouterr().err
    assert "balanced" in err
    # second run: everything from the cache
    rc = main(["run", str(dp), str(data), "-o", str(tmp / "out2.parquet"), "--cache", str(tmp / "c"), "--report", str(tmp / "r2.json"), "-q"])
    assert rc == 0
    rep2 = json.loads((tmp / "r2.json").read_text())
    assert rep2["cache_hits"] == 3 and rep2["final_key"] == rep["final_key"]
    assert pl.read_parquet(tmp / "out2.parquet").equals(kept)


def test_explain_json_and_text(files, capsys):
    tmp, data, dp = files
    dp2 = tmp / "s2.dp"
    dp2.write_text(DP.replace("name: cli-test", "name: other").replace("chars(output) >= 12", "chars(output) >= 20"))
    # explain only reads a cache: a --cache with none there is a mistyped path, and none is made
    assert main(["explain", str(dp), "--cache", str(tmp / "c")]) == 1
    assert "no cache at" in capsys.readouterr().err and not (tmp / "c").exists()
    rc = main(["explain", str(dp), str(dp2), "--data", str(data), "--format", "json"])  # no default cache yet: nothing cached
    assert rc == 0
    e = json.loads(capsys.readouterr().out)
    assert set(e["strategies"]) == {"cli-test", "other"}
    # the commuting filters are put in canonical order, so both strategies share the words() filter
    assert e["hits"] == 0 and len(e["nodes"]) == 5
    main(["run", str(dp), str(data), "-o", str(tmp / "o.jsonl"), "--cache", str(tmp / "c"), "-q"])
    capsys.readouterr()
    assert main(["explain", str(dp), str(dp2), "--data", str(data), "--cache", str(tmp / "c")]) == 0
    text = capsys.readouterr().out
    assert "hit" in text and "miss" in text and "materialise" in text
    assert main(["explain", str(dp)]) == 0  # no data: keys on an unbound root


def test_cache_subcommands(files, capsys):
    tmp, data, dp = files
    c = str(tmp / "c")
    main(["run", str(dp), str(data), "-o", str(tmp / "o.jsonl"), "--cache", c, "-q"])
    capsys.readouterr()
    assert main(["cache", "ls", "--cache", c, "--format", "json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert {e["kind"] for e in entries} >= {"node", "statistic", "input"}
    assert main(["cache", "stats", "--cache", c, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == len(entries)
    assert main(["cache", "verify", "--cache", c]) == 0
    assert "0 damaged" in capsys.readouterr().out
    # damage one entry: verify fails, --fix repairs
    meta = next((tmp / "c" / "objects").rglob("*.json"))
    data_file = meta.parent / json.loads(meta.read_text())["data"]
    data_file.write_bytes(data_file.read_bytes()[:-5] + b"xxxxx")
    assert main(["cache", "verify", "--cache", c]) == 1
    assert main(["cache", "verify", "--cache", c, "--fix"]) == 0
    assert main(["cache", "gc", "--cache", c, "--max-size", "1"]) == 0
    assert main(["cache", "clear", "--cache", c]) == 0
    capsys.readouterr()
    main(["cache", "ls", "--cache", c, "--format", "json"])
    assert json.loads(capsys.readouterr().out) == []


def test_errors_are_one_line_not_tracebacks(files, capsys):
    tmp, data, dp = files
    assert main(["run", str(dp), str(tmp / "nope.jsonl"), "-o", str(tmp / "o.jsonl"), "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    bad = tmp / "bad.dp"
    bad.write_text("dp: 1\nname: bad\nsteps:\n  - filter: chars(nope) >= 3\n")
    assert main(["run", str(bad), str(data), "-o", str(tmp / "o.jsonl"), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err


def test_run_accepts_ir_json_and_datasets_folder(files, capsys):
    tmp, data, dp = files
    from autodp_dsl.compiler import compile_file
    from autodp_dsl.io import peek_columns, write_data

    s = compile_file(dp, peek_columns(data)).strategy
    ir_path = tmp / "s.json"
    ir_path.write_text(json.dumps(s.to_json()))
    hf = tmp / "hf_in"
    good = [json.loads(x) for x in data.read_text().splitlines() if x.startswith('{"instruction": "question')]
    write_data(pl.DataFrame(good), hf)
    assert main(["run", str(ir_path), str(hf), "-o", str(tmp / "hf_out"), "--no-cache", "-q", "--report", str(tmp / "r.json")]) == 0
    rep = json.loads((tmp / "r.json").read_text())
    assert rep["accounting"]["balanced"] and rep["input"]["format"] == "hf"
    from autodp_dsl.io import read_data

    assert read_data(tmp / "hf_out").frame.height == rep["accounting"]["kept"]
